"""``nurinet.data.ImageFolder`` follows torchvision's rules: sorted class folders, sorted files, lazy
Pillow loading, float32 (C, H, W) images in [0, 1], transforms and errors that name the path."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from nurinet.data import DataLoader, ImageFolder
from nurinet.data.transforms import Normalize
from nurinet.data.vision import IMG_EXTENSIONS, ToArray, to_array

PIL = pytest.importorskip("PIL")
from PIL import Image


def _pixels(seed: int, h: int = 4, w: int = 5) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """root/{cat,dog,bird}/... with PNGs; the class names are created out of order on purpose."""
    layout = {"dog": ["b.png", "a.png"], "cat": ["z.png", "sub/y.png"], "bird": ["x.PNG"]}
    for seed, (cls, files) in enumerate(layout.items()):
        for k, name in enumerate(files):
            path = tmp_path / cls / name
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(_pixels(10 * seed + k)).save(path, format="PNG")
    (tmp_path / "dog" / "notes.txt").write_text("not an image")  # skipped: not an image extension
    (tmp_path / "README").write_text("a file at the root is not a class")
    return tmp_path


def test_classes_samples_and_targets_follow_torchvision_order(root):
    ds = ImageFolder(root)
    assert ds.classes == ["bird", "cat", "dog"]
    assert ds.class_to_idx == {"bird": 0, "cat": 1, "dog": 2}
    expected = [
        (os.path.join(root, "bird", "x.PNG"), 0),
        (os.path.join(root, "cat", "z.png"), 1),  # os.walk: the folder's own files before its sub-folders
        (os.path.join(root, "cat", "sub", "y.png"), 1),
        (os.path.join(root, "dog", "a.png"), 2),
        (os.path.join(root, "dog", "b.png"), 2),
    ]
    assert ds.samples == expected
    assert ds.imgs is ds.samples
    assert ds.targets == [0, 1, 1, 2, 2]
    assert len(ds) == 5
    assert ".png" in IMG_EXTENSIONS


def test_pixels_round_trip_as_float32_chw_in_unit_range(root):
    ds = ImageFolder(root)
    image, target = ds[3]  # dog/a.png: dog is the first folder written (seed 10 * 0), a.png its second file
    assert target == 2
    assert image.dtype == np.float32 and image.shape == (3, 4, 5)
    expected = _pixels(1).transpose(2, 0, 1).astype(np.float32) / 255
    np.testing.assert_array_equal(image, expected)
    assert 0.0 <= image.min() and image.max() <= 1.0


def test_grayscale_is_converted_to_rgb(tmp_path):
    (tmp_path / "a").mkdir()
    Image.fromarray(np.full((3, 3), 51, dtype=np.uint8), mode="L").save(tmp_path / "a" / "g.png")
    image, _ = ImageFolder(tmp_path)[0]
    assert image.shape == (3, 3, 3)
    np.testing.assert_allclose(image, 0.2, rtol=1e-6)


def test_dataloader_with_two_workers_batches_the_images(root):
    ds = ImageFolder(root)
    loader = DataLoader(ds, batch_size=2, num_workers=2)
    batches = list(loader)
    assert [tuple(b[0].shape) for b in batches] == [(2, 3, 4, 5), (2, 3, 4, 5), (1, 3, 4, 5)]
    images = np.concatenate([b[0].numpy() for b in batches])
    targets = np.concatenate([np.asarray(b[1].numpy()) for b in batches])
    np.testing.assert_array_equal(images, np.stack([ds[i][0] for i in range(len(ds))]))
    assert targets.tolist() == ds.targets


def test_a_transform_gets_the_pil_image_and_target_transform_the_index(root):
    seen = []

    def transform(image):
        seen.append(type(image))
        return np.asarray(image).shape

    ds = ImageFolder(root, transform=transform, target_transform=lambda t: t * 10)
    shape, target = ds[1]
    assert issubclass(seen[0], Image.Image)
    assert shape == (4, 5, 3) and target == 10


def test_nurinet_array_transforms_and_to_array(root):
    plain = ImageFolder(root)[0][0]
    normalized = ImageFolder(root, transform=Normalize(0.5, 0.5))[0][0]  # a nurinet Transform gets the array
    np.testing.assert_allclose(normalized, (plain - 0.5) / 0.5, rtol=1e-6)
    chained = ImageFolder(root, transform=ToArray(Normalize(0.5, 0.5)))[0][0]
    np.testing.assert_allclose(chained, normalized, rtol=1e-6)
    assert to_array(np.zeros((2, 2), dtype=np.uint8)).shape == (1, 2, 2)


def test_is_valid_file_picks_the_files(root):
    (root / "dog" / "c.array").write_bytes(b"")
    ds = ImageFolder(root, is_valid_file=lambda p: p.endswith(("a.png", "z.png", "x.PNG")), allow_empty=False)
    assert [os.path.basename(p) for p, _ in ds.samples] == ["x.PNG", "z.png", "a.png"]
    assert ds.targets == [0, 1, 2]
    with pytest.raises(FileNotFoundError, match="cat"):
        ImageFolder(root, is_valid_file=lambda p: "cat" not in p)
    ds = ImageFolder(root, is_valid_file=lambda p: "cat" not in p and p.endswith((".png", ".PNG")),
                     allow_empty=True)
    assert ds.classes == ["bird", "cat", "dog"] and ds.targets == [0, 2, 2]


def test_a_custom_loader_is_used(root):
    ds = ImageFolder(root, loader=lambda path: os.path.basename(path), transform=str.upper)
    assert ds[0] == ("X.PNG", 0)


def test_errors_name_the_root_or_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a directory"):
        ImageFolder(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="no class folder"):
        ImageFolder(tmp_path)  # empty root
    (tmp_path / "loose.png").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="no class folder"):
        ImageFolder(tmp_path)  # files but no sub-folder
    (tmp_path / "a").mkdir()
    with pytest.raises(FileNotFoundError, match="no valid file"):
        ImageFolder(tmp_path)  # a class folder without images
    bad = tmp_path / "a" / "broken.png"
    bad.write_bytes(b"this is not a PNG")
    ds = ImageFolder(tmp_path)  # listing does not open the files
    with pytest.raises(PIL.UnidentifiedImageError, match="broken.png"):
        ds[0]


def test_importing_nurinet_data_does_not_import_pil(fresh_python):
    done = fresh_python("import sys, nurinet.data\nnurinet.data.ImageFolder\nprint('PIL' in sys.modules)\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_missing_pillow_names_the_extra(root, monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)  # `from PIL import Image` now raises ImportError
    ds = ImageFolder(root)
    with pytest.raises(ImportError, match=r"nurinet\[vision\]"):
        ds[0]
