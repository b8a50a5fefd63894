"""``torch.utils.data``'s names, so ``from nurinet.utils.data import DataLoader`` works as in PyTorch.

The classes live in :mod:`nurinet.data`; this module re-exports them.
"""

from nurinet.data import (
    DataLoader,
    Dataset,
    Subset,
    TensorDataset,
    default_collate,
    random_split,
)

__all__ = ["DataLoader", "Dataset", "Subset", "TensorDataset", "default_collate", "random_split"]
