"""``torch.backends.cuda``: ``is_built()`` and the ``matmul`` switches (stored, no effect)."""

from __future__ import annotations

from nurinet import backend


class _MatmulSettings:
    """``torch.backends.cuda.matmul``: switches accepted so PyTorch code runs; they change nothing.

    nurinet's matrix products run at the arrays' own precision (float32 stays float32, no TF32 or
    reduced-precision reductions are turned on by these switches).
    """

    def __init__(self) -> None:
        self.allow_tf32 = False
        self.allow_fp16_reduced_precision_reduction = True
        self.allow_bf16_reduced_precision_reduction = True

    def __repr__(self) -> str:
        return f"nurinet.backends.cuda.matmul({vars(self)})"


matmul = _MatmulSettings()


def is_built() -> bool:
    """True when CuPy is installed (nurinet's CUDA backend); whether a GPU is there is ``nurinet.cuda.is_available()``."""
    return backend._load_cupy() is not None


__all__ = ["is_built", "matmul"]
