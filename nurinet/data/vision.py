"""Images in class folders, as torchvision's ``datasets.ImageFolder`` (needs Pillow: the ``vision`` extra).

A root laid out as ``root/<class>/<...>/<image>`` gives one class per sub-folder of ``root``
(sorted by name), and each image's class index::

    from nurinet.data import DataLoader, ImageFolder
    train = ImageFolder("photos/train")          # train.classes == ["cat", "dog"]
    loader = DataLoader(train, batch_size=32, shuffle=True, num_workers=2)

Images are opened lazily in ``__getitem__`` with Pillow (``Image.open(path).convert("RGB")``). Without a
transform a sample is ``(image, class_index)`` with ``image`` a float32 array ``(C, H, W)`` scaled to
[0, 1] (what torchvision's ``ToTensor()`` gives); :func:`to_array` / :class:`ToArray` do that
conversion for a transform of your own. A ``transform`` gets the PIL image, as in torchvision, except
nurinet's own array transforms (:class:`nurinet.data.transforms.Transform`: ``Compose``, ``Normalize``,
``RandomCrop``...), which take arrays: they get the ``(C, H, W)`` array.

Pillow is imported only when an image is opened (or :func:`to_array` called), so importing
``nurinet.data`` never imports it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nurinet.data.dataset import Dataset
from nurinet.data.transforms import Transform

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def _pil_image() -> Any:
    """The ``PIL.Image`` module, or an ImportError that says how to install it."""
    try:
        from PIL import Image
    except ImportError as err:
        raise ImportError(
            "nurinet.data.ImageFolder reads images with Pillow, which is not installed: "
            "pip install 'nurinet[vision]' (or pip install Pillow)"
        ) from err
    return Image


def pil_loader(path: str) -> Any:
    """Open ``path`` with Pillow as an RGB image (torchvision's default loader).

    Raises:
        PIL.UnidentifiedImageError: the file is not an image Pillow can read (the message names it).
    """
    image_module = _pil_image()
    from PIL import UnidentifiedImageError

    try:
        with open(path, "rb") as f:
            image = image_module.open(f)
            return image.convert("RGB")
    except UnidentifiedImageError as err:
        raise UnidentifiedImageError(f"ImageFolder: {path!r} is not an image Pillow can read") from err


def to_array(image: Any) -> np.ndarray:
    """A PIL image (or an ``(H, W)`` / ``(H, W, C)`` uint8 array) as a float32 ``(C, H, W)`` array in [0, 1].

    As torchvision's ``ToTensor``: uint8 pixels are divided by 255; other dtypes are only transposed and cast.
    """
    if not isinstance(image, np.ndarray):
        image = np.asarray(image)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3:
        raise ValueError(f"to_array expects an image (H, W) or (H, W, C), got shape {image.shape}")
    chw = np.ascontiguousarray(image.transpose(2, 0, 1))
    if chw.dtype == np.uint8:
        return chw.astype(np.float32) / np.float32(255)
    return chw.astype(np.float32, copy=False)


class ToArray:
    """A transform: PIL image -> float32 ``(C, H, W)`` array in [0, 1], then ``transforms`` in order.

    ``ToArray(RandomCrop(28, padding=2), Normalize(0.5, 0.5))`` is torchvision's
    ``Compose([ToTensor(), RandomCrop(...), Normalize(...)])`` (nurinet's ``Compose`` takes arrays only).
    The DataLoader's collate turns the arrays into a Tensor batch.
    """

    def __init__(self, *transforms: Callable[[np.ndarray], Any]) -> None:
        self.transforms = list(transforms)

    def __call__(self, image: Any) -> Any:
        out: Any = to_array(image)
        for t in self.transforms:
            out = t(out)
        return out

    def __repr__(self) -> str:
        return f"ToArray({', '.join(map(repr, self.transforms))})"


ToTensor = ToArray  # torchvision's name; it returns the array that default_collate makes a Tensor of


def has_file_allowed_extension(filename: str, extensions: str | Sequence[str]) -> bool:
    """True when ``filename`` ends with one of ``extensions`` (case-insensitive), as torchvision's."""
    ends = (extensions,) if isinstance(extensions, str) else tuple(extensions)
    return filename.lower().endswith(tuple(e.lower() for e in ends))


def find_classes(directory: str | os.PathLike[str]) -> tuple[list[str], dict[str, int]]:
    """The sorted sub-folder names of ``directory`` and their indices (torchvision's rule).

    Raises:
        FileNotFoundError: ``directory`` does not exist or has no sub-folder.
    """
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"ImageFolder: root {directory!r} is not a directory")
    classes = sorted(entry.name for entry in os.scandir(directory) if entry.is_dir())
    if not classes:
        raise FileNotFoundError(
            f"ImageFolder: no class folder in {directory!r}: expected one sub-folder per class "
            "(root/<class>/<image>)"
        )
    return classes, {name: i for i, name in enumerate(classes)}


def make_dataset(
    directory: str | os.PathLike[str],
    class_to_idx: dict[str, int],
    extensions: str | Sequence[str] | None = None,
    is_valid_file: Callable[[str], bool] | None = None,
    allow_empty: bool = False,
) -> list[tuple[str, int]]:
    """``(path, class_index)`` for every accepted file, classes in sorted order, files sorted per folder.

    Raises:
        ValueError: both or neither of ``extensions`` and ``is_valid_file`` given.
        FileNotFoundError: a class folder holds no accepted file (unless ``allow_empty``).
    """
    directory = os.path.expanduser(os.fspath(directory))
    if (extensions is None) == (is_valid_file is None):
        raise ValueError("ImageFolder: give exactly one of extensions and is_valid_file")
    if is_valid_file is None:
        exts = extensions

        def is_valid_file(path: str) -> bool:
            return has_file_allowed_extension(path, exts)  # type: ignore[arg-type]

    samples: list[tuple[str, int]] = []
    found: set[str] = set()
    for name in sorted(class_to_idx):
        index = class_to_idx[name]
        folder = os.path.join(directory, name)
        if not os.path.isdir(folder):
            continue
        for base, _, files in sorted(os.walk(folder, followlinks=True)):
            for fname in sorted(files):
                path = os.path.join(base, fname)
                if is_valid_file(path):
                    samples.append((path, index))
                    found.add(name)
    empty = sorted(set(class_to_idx) - found)
    if empty and not allow_empty:
        what = f"extensions {', '.join(extensions)}" if isinstance(extensions, (list, tuple)) else (
            f"extension {extensions}" if extensions is not None else "is_valid_file")
        raise FileNotFoundError(
            f"ImageFolder: no valid file in the class folder(s) {', '.join(empty)} of {directory!r} "
            f"(accepted by {what})"
        )
    return samples


class ImageFolder(Dataset):
    """torchvision's ``ImageFolder``: ``root/<class>/<image>``, classes the sorted sub-folder names.

    Args:
        root: The folder holding one sub-folder per class (images may sit deeper inside it).
        transform: Applied to each image. It gets the PIL image (torchvision's convention), except a
            :class:`nurinet.data.transforms.Transform`, which gets the float32 ``(C, H, W)`` array.
            None: the sample is that array (values in [0, 1]).
        target_transform: Applied to the class index.
        loader: ``loader(path)`` opens one image; default :func:`pil_loader` (RGB).
        is_valid_file: ``is_valid_file(path)`` picks the files; default: the image extensions
            (:data:`IMG_EXTENSIONS`, case-insensitive).
        allow_empty: Accept class folders without any valid file.

    Attributes:
        classes: Sorted class names. class_to_idx: ``{name: index}``. samples (alias ``imgs``):
        ``[(path, class_index)]``. targets: the class index of each sample.

    Raises:
        FileNotFoundError: ``root`` is missing, has no class folder, or a class folder has no image.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        transform: Callable[[Any], Any] | None = None,
        target_transform: Callable[[int], Any] | None = None,
        loader: Callable[[str], Any] | None = None,
        is_valid_file: Callable[[str], bool] | None = None,
        allow_empty: bool = False,
    ) -> None:
        self.root = os.fspath(root)
        self.transform = transform
        self.target_transform = target_transform
        self.loader = pil_loader if loader is None else loader
        self.extensions = IMG_EXTENSIONS if is_valid_file is None else None
        classes, class_to_idx = self.find_classes(self.root)
        self.samples = make_dataset(self.root, class_to_idx, self.extensions, is_valid_file, allow_empty)
        self.classes = classes
        self.class_to_idx = class_to_idx
        self.imgs = self.samples
        self.targets = [target for _, target in self.samples]

    @staticmethod
    def find_classes(directory: str | os.PathLike[str]) -> tuple[list[str], dict[str, int]]:
        """The sorted sub-folder names of ``directory`` and ``{name: index}``."""
        return find_classes(directory)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        path, target = self.samples[index]
        image = self.loader(path)
        if self.transform is None:
            sample: Any = to_array(image)
        elif isinstance(self.transform, Transform):
            sample = self.transform(to_array(image))
        else:
            sample = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return sample, target

    def __repr__(self) -> str:
        return (f"ImageFolder(root={self.root!r}, classes={len(self.classes)}, samples={len(self.samples)}, "
                f"transform={self.transform!r})")


__all__ = [
    "IMG_EXTENSIONS",
    "ImageFolder",
    "ToArray",
    "ToTensor",
    "find_classes",
    "has_file_allowed_extension",
    "make_dataset",
    "pil_loader",
    "to_array",
]
