"""Data: datasets, mini-batch loading, splits, bundled small datasets and the IDX (MNIST) format.

Example:
    >>> from nurinet.data import DataLoader, TensorDataset, load_iris, train_val_test_split
    >>> x, y = load_iris()
    >>> (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = train_val_test_split(x, y, 0.15, 0.15, stratify=True)
    >>> loader = DataLoader(TensorDataset(x_tr, y_tr), batch_size=16, shuffle=True)
"""

from nurinet.data.dataloader import DataLoader, default_collate
from nurinet.data.dataset import (
    Dataset,
    Subset,
    TensorDataset,
    random_split,
    train_val_test_split,
)
from nurinet.data.datasets import (
    load_digits,
    load_iris,
    load_logic_gate,
    make_blobs,
    make_moons,
    make_spiral,
)
from nurinet.data.idx import (
    MNIST_MD5,
    MNIST_MIRRORS,
    download_mnist,
    load_mnist,
    read_idx,
    write_idx,
)

__all__ = [
    "MNIST_MD5",
    "MNIST_MIRRORS",
    "DataLoader",
    "Dataset",
    "Subset",
    "TensorDataset",
    "default_collate",
    "download_mnist",
    "load_digits",
    "load_iris",
    "load_logic_gate",
    "load_mnist",
    "make_blobs",
    "make_moons",
    "make_spiral",
    "random_split",
    "read_idx",
    "train_val_test_split",
    "write_idx",
]
