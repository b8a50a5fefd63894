"""Data: datasets, samplers, mini-batch loading (in worker processes if asked), splits, CSV files,
bundled small datasets and the IDX (MNIST) format. The names of ``torch.utils.data`` mean what they
mean in PyTorch (see docs/porting.md).

Example:
    >>> from nurinet.data import DataLoader, TensorDataset, load_iris, train_val_test_split
    >>> x, y = load_iris()
    >>> (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = train_val_test_split(x, y, 0.15, 0.15, stratify=True)
    >>> loader = DataLoader(TensorDataset(x_tr, y_tr), batch_size=16, shuffle=True)
"""

from nurinet.data.dataloader import DataLoader, default_collate, default_convert
from nurinet.data.dataset import (
    ConcatDataset,
    Dataset,
    IterableDataset,
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
from nurinet.data.samplers import (
    BatchSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)
from nurinet.data.tabular import load_csv, to_array
from nurinet.data.vision import ImageFolder
from nurinet.data.workers import WorkerInfo, get_worker_info

__all__ = [
    "MNIST_MD5",
    "MNIST_MIRRORS",
    "BatchSampler",
    "ConcatDataset",
    "DataLoader",
    "Dataset",
    "ImageFolder",
    "IterableDataset",
    "RandomSampler",
    "Sampler",
    "SequentialSampler",
    "Subset",
    "SubsetRandomSampler",
    "TensorDataset",
    "WeightedRandomSampler",
    "WorkerInfo",
    "default_collate",
    "default_convert",
    "download_mnist",
    "get_worker_info",
    "load_csv",
    "load_digits",
    "load_iris",
    "load_logic_gate",
    "load_mnist",
    "make_blobs",
    "make_moons",
    "make_spiral",
    "random_split",
    "read_idx",
    "to_array",
    "train_val_test_split",
    "write_idx",
]
