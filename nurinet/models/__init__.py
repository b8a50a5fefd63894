"""Ready-made networks built from ``nurinet.nn`` layers."""

from nurinet.models.autoencoder import Autoencoder
from nurinet.models.cdbn import CDBN, ProbabilisticMaxPool2d
from nurinet.models.cnn import LeNet5, MnistCNN, SmallVGG
from nurinet.models.conv_rbm import ConvRBM
from nurinet.models.cyclegan import CycleGAN, CycleGANGenerator, PatchDiscriminator
from nurinet.models.gan import GAN, DCGANDiscriminator, DCGANGenerator
from nurinet.models.rbm import DBN, RBM
from nurinet.models.seq2seq import Seq2SeqTransformer
from nurinet.models.sequence import CharLanguageModel, CharVocab, SequenceClassifier
from nurinet.models.siamese import SiameseNetwork, make_pairs
from nurinet.models.transformer import TransformerClassifier

__all__ = [
    "CDBN",
    "DBN",
    "GAN",
    "RBM",
    "Autoencoder",
    "CharLanguageModel",
    "CharVocab",
    "ConvRBM",
    "CycleGAN",
    "CycleGANGenerator",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "LeNet5",
    "MnistCNN",
    "PatchDiscriminator",
    "ProbabilisticMaxPool2d",
    "Seq2SeqTransformer",
    "SequenceClassifier",
    "SiameseNetwork",
    "SmallVGG",
    "TransformerClassifier",
    "make_pairs",
]
