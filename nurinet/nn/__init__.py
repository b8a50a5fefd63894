"""Neural-network layers: ``Module`` and the layers built on it.

Every layer is a :class:`Module`; the differentiable math lives in
``nurinet.functional`` and a layer's ``forward`` calls it.
"""

from nurinet.autograd.tensor import Parameter
from nurinet.nn import init
from nurinet.nn.activation import (
    CELU,
    ELU,
    GELU,
    SELU,
    Activation,
    Cube,
    Hardsigmoid,
    Hardtanh,
    LeakyReLU,
    LogSoftmax,
    Mish,
    PReLU,
    RationalTanh,
    ReLU,
    ReLU6,
    RReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Softsign,
    Swish,
    Tanh,
)
from nurinet.nn.clip import clip_grad_norm_, clip_grad_value_
from nurinet.nn.container import ModuleDict, ModuleList, Sequential
from nurinet.nn.dropout import Dropout
from nurinet.nn.embedding import (
    Embedding,
    LearnedPositionalEncoding,
    SinusoidalPositionalEncoding,
)
from nurinet.nn.linear import Flatten, Identity, Linear, Maxout
from nurinet.nn.loss import (
    BCELoss,
    BCEWithLogitsLoss,
    ContrastiveLoss,
    CosineEmbeddingLoss,
    CrossEntropyLoss,
    HingeLoss,
    HuberLoss,
    KLDivLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
    SmoothL1Loss,
    SquaredHingeLoss,
)
from nurinet.nn.module import Module
from nurinet.nn.perceptron import Perceptron, PerceptronFit
from nurinet.nn.recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell

__all__ = [
    "CELU",
    "ELU",
    "GELU",
    "GRU",
    "LSTM",
    "RNN",
    "SELU",
    "Activation",
    "BCELoss",
    "BCEWithLogitsLoss",
    "ContrastiveLoss",
    "CosineEmbeddingLoss",
    "CrossEntropyLoss",
    "Cube",
    "Dropout",
    "Embedding",
    "Flatten",
    "GRUCell",
    "Hardsigmoid",
    "Hardtanh",
    "HingeLoss",
    "HuberLoss",
    "Identity",
    "KLDivLoss",
    "L1Loss",
    "LSTMCell",
    "LeakyReLU",
    "LearnedPositionalEncoding",
    "Linear",
    "LogSoftmax",
    "MSELoss",
    "Maxout",
    "Mish",
    "Module",
    "ModuleDict",
    "ModuleList",
    "NLLLoss",
    "PReLU",
    "Parameter",
    "Perceptron",
    "PerceptronFit",
    "RNNCell",
    "RReLU",
    "RationalTanh",
    "ReLU",
    "ReLU6",
    "Sequential",
    "SiLU",
    "Sigmoid",
    "SinusoidalPositionalEncoding",
    "SmoothL1Loss",
    "Softmax",
    "Softplus",
    "Softsign",
    "SquaredHingeLoss",
    "Swish",
    "Tanh",
    "clip_grad_norm_",
    "clip_grad_value_",
    "init",
]
