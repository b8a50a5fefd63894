"""``torch.backends``'s switches and queries, answered truthfully for nurinet.

Tutorials write ``torch.backends.cudnn.benchmark = True``, ``torch.backends.mps.is_available()`` or
``import torch.backends.cudnn as cudnn``; with ``torch`` replaced by ``nurinet`` these run:

- :mod:`nurinet.backends.mps`: ``is_available()`` and ``is_built()`` are False (nurinet has no
  Apple-GPU backend; its GPU is CUDA through CuPy).
- :mod:`nurinet.backends.cudnn`: ``is_available()`` is True only when CuPy sees a GPU and its
  cuDNN bindings load; ``version()`` is cuDNN's version or None. nurinet's layers do not call cuDNN,
  so ``enabled``, ``benchmark``, ``deterministic`` and ``allow_tf32`` are stored and have no effect.
- :mod:`nurinet.backends.cuda`: ``is_built()`` is True when CuPy is installed;
  ``matmul.allow_tf32`` (and ``matmul.allow_fp16_reduced_precision_reduction``) are stored and have
  no effect: nurinet's products run at the arrays' own precision.

Nothing here imports CuPy until a query is called.
"""

from nurinet.backends import cuda, cudnn, mps

__all__ = ["cuda", "cudnn", "mps"]
