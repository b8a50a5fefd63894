"""PyTorch's ``torch.utils`` places: ``nurinet.utils.data`` (Dataset, DataLoader, ...)."""

from nurinet.utils import data

__all__ = ["data"]
