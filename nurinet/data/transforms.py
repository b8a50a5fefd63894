"""Data augmentation on NumPy image arrays, vectorized over the batch.

Every transform takes a batch ``(N, C, H, W)`` or a single image ``(C, H, W)`` and
returns an array of the same kind; the random ones draw one set of parameters per
image, all at once, from a seedable ``generator`` (default: the generator seeded by
``nurinet.manual_seed``). Geometric transforms sample by inverse mapping: each output
pixel looks up where it comes from in the input (nearest neighbour or bilinear), and
pixels that come from outside the image get ``fill``.

Augment only the training data: wrap a dataset in :class:`TransformDataset`, or,
faster, wrap the training DataLoader in :class:`TransformLoader`, which transforms
each whole batch at once::

    augment = Compose([RandomCrop(28, padding=2), RandomRotation(10, generator=g)])
    train = TransformLoader(DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True), augment)
    model.fit(train, epochs=10, validation_data=(x_val, y_val))
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from nurinet import backend
from nurinet.autograd.tensor import Tensor
from nurinet.random import Generator, resolve


def _as_batch(x: Any, where: str) -> tuple[np.ndarray, bool]:
    """``x`` as a (N, C, H, W) array and whether it was a single (C, H, W) image."""
    x = np.asarray(x)
    if x.ndim == 3:
        return x[None], True
    if x.ndim != 4:
        raise ValueError(f"{where} expects an image (C, H, W) or a batch (N, C, H, W), got shape {x.shape}")
    return x, False


def _pair(value: Any, name: str, where: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or any(int(v) < 0 for v in pair):
        raise ValueError(f"{where}: {name} must be a non-negative int or a pair (height, width), got {value!r}")
    return int(pair[0]), int(pair[1])


class Transform:
    """Base class: ``transform(x)`` returns the transformed image or batch."""

    def __call__(self, x: Any) -> np.ndarray:
        batch, single = _as_batch(x, type(self).__name__)
        out = self.apply(batch)
        return out[0] if single else out

    def apply(self, batch: np.ndarray) -> np.ndarray:
        """Transform a batch ``(N, C, H, W)``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if k != "generator")
        return f"{type(self).__name__}({settings})"


class Compose(Transform):
    """Apply ``transforms`` one after the other.

    Args:
        transforms: Callables taking and returning an image array (or batch).
    """

    def __init__(self, transforms: Sequence[Callable[[np.ndarray], np.ndarray]]) -> None:
        self.transforms = list(transforms)

    def apply(self, batch: np.ndarray) -> np.ndarray:
        for t in self.transforms:
            batch = t(batch)
        return batch


class Normalize(Transform):
    """``(x - mean) / std`` per channel.

    Args:
        mean: One value per channel (or one for all).
        std: One positive value per channel (or one for all).
    """

    def __init__(self, mean: float | Sequence[float], std: float | Sequence[float]) -> None:
        self.mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
        self.std = np.atleast_1d(np.asarray(std, dtype=np.float64))
        if np.any(self.std <= 0):
            raise ValueError(f"Normalize: std must be positive, got {std!r}")

    def apply(self, batch: np.ndarray) -> np.ndarray:
        c = batch.shape[1]
        for name, v in (("mean", self.mean), ("std", self.std)):
            if v.size not in (1, c):
                raise ValueError(f"Normalize: {name} has {v.size} values but the images have {c} channels")
        dtype = batch.dtype if batch.dtype.kind == "f" else np.dtype(np.float32)
        mean, std = self.mean.astype(dtype).reshape(1, -1, 1, 1), self.std.astype(dtype).reshape(1, -1, 1, 1)
        return (batch - mean) / std


class GaussianNoise(Transform):
    """Add ``N(0, std^2)`` noise to every pixel.

    Args:
        std: Standard deviation of the noise.
        generator: Source of the noise.
    """

    def __init__(self, std: float, generator: Generator | None = None) -> None:
        if std < 0:
            raise ValueError(f"GaussianNoise: std must be non-negative, got {std}")
        self.std, self.generator = float(std), generator

    def apply(self, batch: np.ndarray) -> np.ndarray:
        noise = resolve(self.generator).standard_normal(batch.shape, dtype=np.float32) * self.std
        return batch + noise.astype(batch.dtype, copy=False)


class RandomHorizontalFlip(Transform):
    """Mirror each image left to right with probability ``p``.

    Args:
        p: Probability of flipping an image.
        generator: Source of the coin flips.
    """

    def __init__(self, p: float = 0.5, generator: Generator | None = None) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomHorizontalFlip: p must be in [0, 1], got {p}")
        self.p, self.generator = float(p), generator

    def apply(self, batch: np.ndarray) -> np.ndarray:
        flip = resolve(self.generator).random(len(batch)) < self.p
        return np.where(flip[:, None, None, None], batch[..., ::-1], batch)


class RandomCrop(Transform):
    """Pad each image with ``fill`` on every side, then cut a random ``size`` window out of it.

    With ``padding=p`` and ``size`` equal to the image size, this shifts each image by
    up to ``p`` pixels in each direction.

    Args:
        size: Output size ``(height, width)`` or one int for a square.
        padding: Pixels added on each side before cropping (int or (vertical, horizontal)).
        fill: Value of the padding.
        generator: Source of the crop positions.
    """

    def __init__(self, size: int | Sequence[int], padding: int | Sequence[int] = 0, fill: float = 0.0,
                 generator: Generator | None = None) -> None:
        self.size = _pair(size, "size", "RandomCrop")
        self.padding = _pair(padding, "padding", "RandomCrop")
        self.fill, self.generator = fill, generator

    def apply(self, batch: np.ndarray) -> np.ndarray:
        (ph, pw), (h, w) = self.padding, self.size
        padded = np.pad(batch, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=self.fill)
        n, _, hp, wp = padded.shape
        if h > hp or w > wp:
            raise ValueError(f"RandomCrop: crop size {self.size} is larger than the padded image {(hp, wp)}")
        rng = resolve(self.generator)
        top, left = rng.integers(0, hp - h + 1, n), rng.integers(0, wp - w + 1, n)
        rows = (top[:, None] + np.arange(h))[:, None, :, None]
        cols = (left[:, None] + np.arange(w))[:, None, None, :]
        return padded[np.arange(n)[:, None, None, None], np.arange(batch.shape[1])[None, :, None, None],
                      rows, cols]


class RandomAffine(Transform):
    """Rotate each image by a random angle and shift it by a random offset (about its centre).

    The angle is drawn uniformly from ``[-degrees, degrees]`` (counter-clockwise on the
    screen for a positive angle) and the shift from ``[-fx * W, fx * W]`` and
    ``[-fy * H, fy * H]``. The output is sampled by inverse mapping with
    ``interpolation`` "nearest" or "bilinear"; pixels from outside get ``fill``.

    Args:
        degrees: Largest rotation in degrees (or a range ``(low, high)``).
        translate: Largest shift as fractions ``(fx, fy)`` of the width and height, or ``None``.
        interpolation: "nearest" or "bilinear".
        fill: Value of pixels that come from outside the image.
        generator: Source of the angles and shifts.
    """

    def __init__(self, degrees: float | Sequence[float] = 0.0, translate: Sequence[float] | None = None,
                 interpolation: str = "bilinear", fill: float = 0.0, generator: Generator | None = None) -> None:
        name = type(self).__name__
        low, high = (-abs(degrees), abs(degrees)) if np.isscalar(degrees) else tuple(degrees)
        if low > high:
            raise ValueError(f"{name}: degrees range {degrees!r} has low > high")
        if interpolation not in ("nearest", "bilinear"):
            raise ValueError(f"{name}: interpolation must be 'nearest' or 'bilinear', got {interpolation!r}")
        if translate is not None and (len(translate) != 2 or not all(0 <= t <= 1 for t in translate)):
            raise ValueError(f"{name}: translate must be a pair of fractions in [0, 1], got {translate!r}")
        self.degrees = (float(low), float(high))
        self.translate = None if translate is None else (float(translate[0]), float(translate[1]))
        self.interpolation, self.fill, self.generator = interpolation, fill, generator

    def _draw(self, n: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = resolve(self.generator)
        angle = np.deg2rad(rng.uniform(*self.degrees, n))
        if self.translate is None:
            return angle, np.zeros(n), np.zeros(n)
        fx, fy = self.translate
        return angle, rng.uniform(-fx * w, fx * w, n), rng.uniform(-fy * h, fy * h, n)

    def apply(self, batch: np.ndarray) -> np.ndarray:
        n, _, h, w = batch.shape
        angle, dx, dy = self._draw(n, h, w)
        return affine_sample(batch, angle, dx, dy, self.interpolation, self.fill)


class RandomRotation(RandomAffine):
    """Rotate each image by a random angle in ``[-degrees, degrees]`` about its centre.

    See :class:`RandomAffine` for the sampling.
    """

    def __init__(self, degrees: float | Sequence[float], interpolation: str = "bilinear", fill: float = 0.0,
                 generator: Generator | None = None) -> None:
        super().__init__(degrees, None, interpolation, fill, generator)


class RandomShift(RandomAffine):
    """Shift each image by a random whole number of pixels, up to ``max_shift`` in each direction.

    Args:
        max_shift: Largest shift in pixels (int, or (vertical, horizontal)).
        fill: Value of the pixels shifted in.
        generator: Source of the shifts.
    """

    def __init__(self, max_shift: int | Sequence[int], fill: float = 0.0, generator: Generator | None = None) -> None:
        super().__init__(0.0, None, "nearest", fill, generator)
        self.max_shift = _pair(max_shift, "max_shift", "RandomShift")

    def _draw(self, n: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = resolve(self.generator)
        sy, sx = self.max_shift
        return np.zeros(n), rng.integers(-sx, sx + 1, n).astype(float), rng.integers(-sy, sy + 1, n).astype(float)


def affine_sample(batch: np.ndarray, angle: np.ndarray, dx: np.ndarray, dy: np.ndarray,
                  interpolation: str = "bilinear", fill: float = 0.0) -> np.ndarray:
    """Rotate image ``i`` by ``angle[i]`` radians about its centre, then shift it by ``(dx[i], dy[i])``.

    Output pixel ``p`` takes the input at ``R(-angle) (p - c - d) + c`` (inverse mapping),
    where ``c`` is the image centre; rows grow downwards, so a positive angle turns the
    picture counter-clockwise as seen on screen.

    Args:
        batch: Images ``(N, C, H, W)``.
        angle: Angles in radians, ``(N,)``.
        dx: Horizontal shifts in pixels (right positive), ``(N,)``.
        dy: Vertical shifts in pixels (down positive), ``(N,)``.
        interpolation: "nearest" or "bilinear".
        fill: Value of pixels that come from outside the image.
    """
    n, c, h, w = batch.shape
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    ys = np.arange(h, dtype=np.float64)[None, :, None] - cy - dy[:, None, None]
    xs = np.arange(w, dtype=np.float64)[None, None, :] - cx - dx[:, None, None]
    cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    src_x = cos * xs - sin * ys + cx  # (N, H, W): where each output pixel comes from
    src_y = sin * xs + cos * ys + cy
    flat = batch.reshape(n, c, h * w)
    if interpolation == "nearest":
        return _gather(flat, np.rint(src_y), np.rint(src_x), h, w, fill).reshape(batch.shape)
    y0, x0 = np.floor(src_y), np.floor(src_x)
    dtype = batch.dtype if batch.dtype.kind == "f" else np.dtype(np.float32)
    wy, wx = ((src - low).reshape(n, 1, -1).astype(dtype) for src, low in ((src_y, y0), (src_x, x0)))
    out = (_gather(flat, y0, x0, h, w, fill) * ((1 - wy) * (1 - wx))
           + _gather(flat, y0, x0 + 1, h, w, fill) * ((1 - wy) * wx)
           + _gather(flat, y0 + 1, x0, h, w, fill) * (wy * (1 - wx))
           + _gather(flat, y0 + 1, x0 + 1, h, w, fill) * (wy * wx))
    return out.reshape(batch.shape)


def _gather(flat: np.ndarray, y: np.ndarray, x: np.ndarray, h: int, w: int, fill: float) -> np.ndarray:
    """``image[y, x]`` for integer-valued float coordinates ``(N, H, W)``; ``fill`` outside."""
    inside = (y >= 0) & (y < h) & (x >= 0) & (x < w)
    index = (np.clip(y, 0, h - 1) * w + np.clip(x, 0, w - 1)).astype(np.intp).reshape(len(flat), 1, -1)
    values = np.take_along_axis(flat, np.broadcast_to(index, (len(flat), flat.shape[1], index.shape[2])), 2)
    return np.where(inside.reshape(len(flat), 1, -1), values, flat.dtype.type(fill))


# ----- plugging transforms into the data pipeline -------------------------------------------


class TransformDataset:
    """A dataset whose samples pass through ``transform`` (applied to field ``index`` of each sample).

    Generic but per sample; for arrays in memory :class:`TransformLoader` is faster.

    Args:
        dataset: Any dataset whose samples are ``(image, target, ...)`` tuples or images.
        transform: Applied to the image (a NumPy array ``(C, H, W)``).
        index: Which field of a tuple sample is the image.
    """

    def __init__(self, dataset: Any, transform: Callable[[np.ndarray], np.ndarray], index: int = 0) -> None:
        self.dataset, self.transform, self.index = dataset, transform, index

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> Any:
        sample = self.dataset[i]
        if not isinstance(sample, (tuple, list)):
            return _apply(self.transform, sample)
        fields = list(sample)
        fields[self.index] = _apply(self.transform, fields[self.index])
        return tuple(fields)


class TransformLoader:
    """Wraps a DataLoader (or any iterable of batches) and transforms field ``index`` of each batch.

    The transform sees the whole batch ``(N, C, H, W)`` at once, so augmentation costs a
    few vectorized NumPy calls per batch. ``len()`` is the wrapped loader's, so
    ``Model.fit`` can show progress.

    Args:
        loader: Yields batches ``(x, y, ...)`` (or bare ``x``).
        transform: Applied to ``x`` as a NumPy array.
        index: Which field of a batch is transformed.
    """

    def __init__(self, loader: Any, transform: Callable[[np.ndarray], np.ndarray], index: int = 0) -> None:
        self.loader, self.transform, self.index = loader, transform, index

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Any]:
        for batch in self.loader:
            if not isinstance(batch, (tuple, list)):
                yield _apply(self.transform, batch)
                continue
            fields = list(batch)
            fields[self.index] = _apply(self.transform, fields[self.index])
            yield tuple(fields)


def _apply(transform: Callable[[np.ndarray], np.ndarray], x: Any) -> Any:
    """Run ``transform`` on the NumPy array behind ``x``; a Tensor stays a Tensor on its device."""
    if not isinstance(x, Tensor):
        return transform(backend.to_numpy(x) if backend.is_cupy_array(x) else x)
    out = np.ascontiguousarray(transform(backend.to_numpy(x.array)))
    if x.device != "cpu":
        out = backend.to_device(out, x.device)
    return Tensor._wrap(out, False)


__all__ = [
    "Compose",
    "GaussianNoise",
    "Normalize",
    "RandomAffine",
    "RandomCrop",
    "RandomHorizontalFlip",
    "RandomRotation",
    "RandomShift",
    "Transform",
    "TransformDataset",
    "TransformLoader",
    "affine_sample",
]
