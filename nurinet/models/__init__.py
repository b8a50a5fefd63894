"""Ready-made networks built from ``nurinet.nn`` layers."""

from nurinet.models.autoencoder import Autoencoder
from nurinet.models.cnn import LeNet5, MnistCNN, SmallVGG
from nurinet.models.rbm import DBN, RBM
from nurinet.models.seq2seq import Seq2SeqTransformer
from nurinet.models.sequence import CharLanguageModel, CharVocab, SequenceClassifier
from nurinet.models.transformer import TransformerClassifier

__all__ = [
    "DBN",
    "RBM",
    "Autoencoder",
    "CharLanguageModel",
    "CharVocab",
    "LeNet5",
    "MnistCNN",
    "Seq2SeqTransformer",
    "SequenceClassifier",
    "SmallVGG",
    "TransformerClassifier",
]
