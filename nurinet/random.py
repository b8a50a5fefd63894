"""Random number generators the user can seed.

Every random draw in nurinet (initializers, dropout, shuffling, ``rand``) takes an
optional ``generator=`` and otherwise uses the default generator, which
``manual_seed`` resets. NumPy's global random state is never used.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class Generator:
    """A seedable source of random numbers (wraps ``numpy.random.Generator``).

    Args:
        seed: Initial seed; ``None`` draws one from the operating system.
        device: Accepted for PyTorch's ``Generator(device=...)``; draws are made on the host and
            moved to the device of the tensor they fill, so one generator serves every device.
    """

    def __init__(self, seed: int | None = None, device: Any = None) -> None:
        self.device = "cpu" if device is None else str(device)
        self.manual_seed(seed)

    def manual_seed(self, seed: int | None) -> Generator:
        """Reset the stream to the one that ``seed`` starts."""
        self.initial_seed = seed
        self.np = np.random.Generator(np.random.PCG64(seed))
        return self

    def get_state(self) -> dict[str, Any]:
        """The generator's full state as plain data (JSON-serializable)."""
        return self.np.bit_generator.state

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore a state returned by :meth:`get_state`."""
        self.np.bit_generator.state = state


default_generator = Generator()


def manual_seed(seed: int) -> Generator:
    """Seed the default generator so every later draw is reproducible."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"manual_seed expects an integer seed, got {seed!r}")
    return default_generator.manual_seed(int(seed))


def resolve(generator: Generator | None) -> np.random.Generator:
    """The NumPy generator behind ``generator``, or the default one."""
    return (generator or default_generator).np


def keep_mask(generator: Generator | None, shape: tuple[int, ...], p: float) -> np.ndarray:
    """A boolean array of ``shape`` whose elements are True (kept) with probability ``1 - p``.

    The draws are 32-bit integers taken straight from the bit generator's raw 64-bit outputs (two
    per output), compared with ``p`` scaled to 2**32: the same resolution as a float32 uniform
    (finer, in fact) for a third of the work of drawing floats, which is what dropout spends most
    of its time on.

    Args:
        generator: The source of the draws (None: the default generator).
        shape: The shape of the mask.
        p: The probability of False (dropping), in [0, 1).
    """
    count = int(np.prod(shape, dtype=np.int64))
    bits = resolve(generator).bit_generator.random_raw((count + 1) // 2).view(np.uint32)[:count]
    threshold = np.uint32(min(round(p * 2.0**32), 2**32 - 1))
    return (bits >= threshold).reshape(shape)
