"""Neural-network layers: ``Module`` and the layers built on it.

Every layer is a :class:`Module`; the differentiable math lives in
``nurinet.functional`` and a layer's ``forward`` calls it.
"""

from nurinet.autograd.tensor import Parameter
from nurinet.nn import functional, init, regularizers, utils
from nurinet.nn.activation import (
    CELU,
    ELU,
    GELU,
    SELU,
    Activation,
    Cube,
    Hardsigmoid,
    HardsigmoidKeras,
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
from nurinet.nn.activity import ActivityRegularization
from nurinet.nn.attention import MultiheadAttention
from nurinet.nn.clip import clip_grad_norm_, clip_grad_value_
from nurinet.nn.container import ModuleDict, ModuleList, Sequential
from nurinet.nn.conv import Conv1d, Conv2d, ConvTranspose2d
from nurinet.nn.dropout import Dropout
from nurinet.nn.dropout_channel import Dropout2d
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
from nurinet.nn.normalization import BatchNorm1d, BatchNorm2d, GroupNorm, LayerNorm
from nurinet.nn.output import OutputLayer
from nurinet.nn.perceptron import Perceptron, PerceptronFit
from nurinet.nn.pooling import (
    AdaptiveAvgPool2d,
    AdaptiveMaxPool2d,
    AvgPool1d,
    AvgPool2d,
    GlobalAvgPool2d,
    GlobalMaxPool2d,
    MaxPool1d,
    MaxPool2d,
    Upsample,
)
from nurinet.nn.recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
from nurinet.nn.regularizers import add_constraint, add_regularizer, regularization_loss
from nurinet.nn.transformer import (
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)

__all__ = [
    "CELU",
    "ELU",
    "GELU",
    "GRU",
    "LSTM",
    "RNN",
    "SELU",
    "Activation",
    "ActivityRegularization",
    "AdaptiveAvgPool2d",
    "AdaptiveMaxPool2d",
    "AvgPool1d",
    "AvgPool2d",
    "BCELoss",
    "BCEWithLogitsLoss",
    "BatchNorm1d",
    "BatchNorm2d",
    "ContrastiveLoss",
    "Conv1d",
    "Conv2d",
    "ConvTranspose2d",
    "CosineEmbeddingLoss",
    "CrossEntropyLoss",
    "Cube",
    "Dropout",
    "Dropout2d",
    "Embedding",
    "Flatten",
    "GRUCell",
    "GlobalAvgPool2d",
    "GlobalMaxPool2d",
    "GroupNorm",
    "Hardsigmoid",
    "HardsigmoidKeras",
    "Hardtanh",
    "HingeLoss",
    "HuberLoss",
    "Identity",
    "KLDivLoss",
    "L1Loss",
    "LSTMCell",
    "LayerNorm",
    "LeakyReLU",
    "LearnedPositionalEncoding",
    "Linear",
    "LogSoftmax",
    "MSELoss",
    "MaxPool1d",
    "MaxPool2d",
    "Maxout",
    "Mish",
    "Module",
    "ModuleDict",
    "ModuleList",
    "MultiheadAttention",
    "NLLLoss",
    "OutputLayer",
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
    "TransformerDecoder",
    "TransformerDecoderLayer",
    "TransformerEncoder",
    "TransformerEncoderLayer",
    "Upsample",
    "add_constraint",
    "add_regularizer",
    "clip_grad_norm_",
    "clip_grad_value_",
    "functional",
    "init",
    "regularization_loss",
    "regularizers",
    "utils",
]
