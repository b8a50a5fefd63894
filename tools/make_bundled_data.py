"""One-off conversion of the small datasets that nurinet ships in ``nurinet/data/files/``.

This script is not part of the package and nurinet does not depend on scikit-learn:
it documents how the bundled files were made. scikit-learn's package data holds
copies of two UCI Machine Learning Repository datasets (CC BY 4.0); this script
reads them once and writes them as compressed ``.npz`` archives with only
NumPy arrays inside (no pickled objects), so ``numpy.load(allow_pickle=False)``
reads them.

Run from the repository root::

    python3 -m pip install scikit-learn   # only for this conversion
    python3 tools/make_bundled_data.py

Files written:
    iris.npz    x float32 (150, 4), y uint8 (150,), feature_names, target_names
    digits.npz  images uint8 (1797, 8, 8) with values 0..16, y uint8 (1797,),
                target_names
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "nurinet" / "data" / "files"


def convert_iris() -> Path:
    from sklearn.datasets import load_iris

    bunch = load_iris()
    x = bunch.data.astype(np.float32)
    # The measurements have one decimal: float32 keeps every value to the nearest representable number.
    assert np.allclose(x, bunch.data, atol=1e-6)
    path = OUT / "iris.npz"
    np.savez_compressed(
        path,
        x=x,
        y=bunch.target.astype(np.uint8),
        feature_names=np.array(bunch.feature_names),
        target_names=np.array(bunch.target_names),
    )
    return path


def convert_digits() -> Path:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # Pixel counts are integers 0..16 (the number of set pixels in each 4x4 block of the 32x32 bitmap).
    images = bunch.images.astype(np.uint8)
    assert np.array_equal(images, bunch.images)
    path = OUT / "digits.npz"
    np.savez_compressed(
        path,
        images=images,
        y=bunch.target.astype(np.uint8),
        target_names=np.array([str(t) for t in bunch.target_names]),
    )
    return path


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for path in (convert_iris(), convert_digits()):
        print(f"{path.relative_to(OUT.parent.parent.parent)}: {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
