"""Small datasets shipped with nurinet and toy-data generators.

``load_iris`` and ``load_digits`` read compressed files inside the package
(attribution in ``nurinet/data/files/README.md``), so they work offline.
``load_logic_gate`` gives the truth tables that a perceptron does or does not
learn; ``make_moons``, ``make_spiral`` and ``make_blobs`` draw 2-D toy problems
from a seedable generator. Every loader returns ``(x float32, y int64)``.
"""

from __future__ import annotations

from importlib import resources
from types import SimpleNamespace
from typing import Any

import numpy as np

from nurinet.random import Generator, resolve


def _read_bundled(name: str) -> dict[str, np.ndarray]:
    with resources.files("nurinet.data").joinpath("files", name).open("rb") as f, \
            np.load(f, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def load_iris(as_namespace: bool = False) -> Any:
    """Fisher's Iris data: 150 flowers, 4 measurements in cm, 3 species (50 each).

    Args:
        as_namespace: Return a namespace with ``x``, ``y``, ``feature_names``
            and ``target_names`` instead of ``(x, y)``.

    Returns:
        ``x`` float32 (150, 4) (sepal length, sepal width, petal length, petal
        width) and ``y`` int64 (150,) with 0 setosa, 1 versicolor, 2 virginica.

    Example:
        >>> x, y = load_iris()
        >>> iris = load_iris(as_namespace=True); iris.target_names[y[0]]
        'setosa'
    """
    data = _read_bundled("iris.npz")
    x, y = data["x"], data["y"].astype(np.int64)
    if not as_namespace:
        return x, y
    return SimpleNamespace(x=x, y=y, feature_names=data["feature_names"].tolist(),
                           target_names=data["target_names"].tolist())


def load_digits(as_namespace: bool = False, flatten: bool = True, normalize: bool = False) -> Any:
    """The UCI 8x8 handwritten digits: 1,797 images of the digits 0-9.

    Each pixel counts the set pixels in a 4x4 block of a 32x32 bitmap, so it
    lies in 0..16.

    Args:
        as_namespace: Return a namespace with ``x``, ``y``, ``images`` (always
            (N, 8, 8)), ``feature_names`` and ``target_names`` instead of ``(x, y)``.
        flatten: ``x`` as (1797, 64) rows; otherwise as (1797, 1, 8, 8) images
            (NCHW, ready for ``Conv2d``).
        normalize: Divide the pixels by 16 so they lie in [0, 1].

    Returns:
        ``x`` float32 and ``y`` int64 (1797,).
    """
    data = _read_bundled("digits.npz")
    images = data["images"].astype(np.float32)
    if normalize:
        images /= np.float32(16.0)
    x = images.reshape(len(images), 64) if flatten else images[:, None]
    y = data["y"].astype(np.int64)
    if not as_namespace:
        return x, y
    names = [f"pixel_{r}_{c}" for r in range(8) for c in range(8)]
    return SimpleNamespace(x=x, y=y, images=images, feature_names=names,
                           target_names=data["target_names"].tolist())


_GATES = {
    "AND": (0, 0, 0, 1),
    "OR": (0, 1, 1, 1),
    "NAND": (1, 1, 1, 0),
    "NOR": (1, 0, 0, 0),
    "XOR": (0, 1, 1, 0),
}


def load_logic_gate(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The truth table of a two-input logic gate.

    AND, OR, NAND and NOR are linearly separable (one perceptron learns them);
    XOR is not (it needs a hidden layer).

    Args:
        name: "AND", "OR", "NAND", "NOR" or "XOR" (any case).

    Returns:
        ``x`` float32 (4, 2): the inputs (0,0), (0,1), (1,0), (1,1); ``y`` int64
        (4,): the gate's output for each row. Use ``y.astype(np.float32)`` as a
        target for binary cross-entropy.
    """
    key = str(name).upper()
    if key not in _GATES:
        raise ValueError(f"load_logic_gate: unknown gate {name!r}; choose one of {sorted(_GATES)}")
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    return x, np.array(_GATES[key], dtype=np.int64)


def _check_count(name: str, value: Any, minimum: int = 1) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_noise(where: str, noise: float) -> float:
    if not noise >= 0:
        raise ValueError(f"{where}: noise must be >= 0 (a standard deviation), got {noise!r}")
    return float(noise)


def _finish(x: np.ndarray, y: np.ndarray, shuffle: bool, rng: np.random.Generator) -> tuple:
    if shuffle:
        order = rng.permutation(len(x))
        x, y = x[order], y[order]
    return x.astype(np.float32), y.astype(np.int64)


def make_moons(
    n_samples: int = 100, noise: float = 0.0, shuffle: bool = True, generator: Generator | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles, a classic problem no straight line separates.

    The upper moon (class 0) is the unit half circle above the x axis; the lower
    moon (class 1) is the same shape mirrored and shifted to (1, 0.5).

    Args:
        n_samples: Total number of points (the upper moon gets ``n_samples // 2``).
        noise: Standard deviation of Gaussian noise added to every coordinate.
        shuffle: Mix the two classes; otherwise class 0 comes first.
        generator: Source of randomness; the default generator when omitted.

    Returns:
        ``x`` float32 (n_samples, 2) and ``y`` int64 (n_samples,).
    """
    n = _check_count("make_moons: n_samples", n_samples)
    noise = _check_noise("make_moons", noise)
    rng = resolve(generator)
    n_upper = n // 2
    angle_upper = np.linspace(0.0, np.pi, n_upper)
    angle_lower = np.linspace(0.0, np.pi, n - n_upper)
    upper = np.stack([np.cos(angle_upper), np.sin(angle_upper)], axis=1)
    lower = np.stack([1.0 - np.cos(angle_lower), 0.5 - np.sin(angle_lower)], axis=1)
    x = np.concatenate([upper, lower])
    if noise > 0:
        x = x + rng.normal(0.0, noise, size=x.shape)
    y = np.repeat([0, 1], [n_upper, n - n_upper])
    return _finish(x, y, shuffle, rng)


def make_spiral(
    n_samples_per_class: int = 100,
    n_classes: int = 3,
    noise: float = 0.2,
    shuffle: bool = True,
    generator: Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Interleaved spiral arms, one per class, a standard test for non-linear classifiers.

    Arm ``k`` has points at radius ``r`` in [0, 1] and angle ``4 * (k + r)``
    plus Gaussian noise of standard deviation ``noise`` (in radians).

    Args:
        n_samples_per_class: Points on each arm.
        n_classes: Number of arms (classes).
        noise: Standard deviation of the noise on the angle.
        shuffle: Mix the classes; otherwise class 0 comes first.
        generator: Source of randomness; the default generator when omitted.

    Returns:
        ``x`` float32 (n_samples_per_class * n_classes, 2) and ``y`` int64.
    """
    n = _check_count("make_spiral: n_samples_per_class", n_samples_per_class)
    k = _check_count("make_spiral: n_classes", n_classes)
    noise = _check_noise("make_spiral", noise)
    rng = resolve(generator)
    radius = np.tile(np.linspace(0.0, 1.0, n), k)
    y = np.repeat(np.arange(k), n)
    angle = 4.0 * (y + radius) + rng.normal(0.0, noise, size=n * k)
    x = np.stack([radius * np.sin(angle), radius * np.cos(angle)], axis=1)
    return _finish(x, y, shuffle, rng)


def make_blobs(
    n_samples: int = 100,
    centers: int | Any = 3,
    n_features: int = 2,
    cluster_std: float = 1.0,
    center_box: tuple[float, float] = (-10.0, 10.0),
    shuffle: bool = True,
    generator: Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Isotropic Gaussian clusters, one class per cluster.

    Args:
        n_samples: Total number of points, shared as evenly as possible.
        centers: The number of clusters (centers drawn uniformly from
            ``center_box``) or an array (n_clusters, n_features) of centers.
        n_features: Dimension of each point when ``centers`` is a number.
        cluster_std: Standard deviation of each cluster.
        center_box: Bounds for the random centers.
        shuffle: Mix the clusters; otherwise cluster 0 comes first.
        generator: Source of randomness; the default generator when omitted.

    Returns:
        ``x`` float32 (n_samples, n_features) and ``y`` int64 (n_samples,).
    """
    n = _check_count("make_blobs: n_samples", n_samples)
    if not cluster_std >= 0:
        raise ValueError(f"make_blobs: cluster_std must be >= 0, got {cluster_std!r}")
    rng = resolve(generator)
    if isinstance(centers, (int, np.integer)):
        k = _check_count("make_blobs: centers", centers)
        d = _check_count("make_blobs: n_features", n_features)
        centers = rng.uniform(center_box[0], center_box[1], size=(k, d))
    centers = np.asarray(centers, dtype=np.float64)
    if centers.ndim != 2:
        raise ValueError(f"make_blobs: centers must be a number or a 2-d array, got shape {centers.shape}")
    counts = np.full(len(centers), n // len(centers))
    counts[: n % len(centers)] += 1
    y = np.repeat(np.arange(len(centers)), counts)
    x = centers[y] + rng.normal(0.0, cluster_std, size=(n, centers.shape[1]))
    return _finish(x, y, shuffle, rng)
