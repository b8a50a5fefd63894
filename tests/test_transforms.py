"""Augmentation transforms: exact behaviour, seeded reproducibility, and the data-pipeline wrappers."""

from __future__ import annotations

import numpy as np
import pytest

from nurinet import Tensor
from nurinet.data import DataLoader, TensorDataset
from nurinet.data.transforms import (
    Compose,
    GaussianNoise,
    Normalize,
    RandomAffine,
    RandomCrop,
    RandomHorizontalFlip,
    RandomRotation,
    RandomShift,
    TransformDataset,
    TransformLoader,
    affine_sample,
)
from nurinet.random import Generator

IMAGES = np.arange(4 * 2 * 5 * 6, dtype=np.float32).reshape(4, 2, 5, 6) + 1.0  # all non-zero


def test_flip_with_p1_reverses_columns_and_p0_is_identity() -> None:
    np.testing.assert_array_equal(RandomHorizontalFlip(1.0)(IMAGES), IMAGES[..., ::-1])
    np.testing.assert_array_equal(RandomHorizontalFlip(0.0)(IMAGES), IMAGES)
    single = RandomHorizontalFlip(1.0)(IMAGES[0])
    assert single.shape == (2, 5, 6)
    np.testing.assert_array_equal(single, IMAGES[0, :, :, ::-1])


def test_flip_chooses_per_image() -> None:
    batch = np.repeat(IMAGES[:1], 200, axis=0)
    out = RandomHorizontalFlip(0.5, generator=Generator(0))(batch)
    flipped = np.array([np.array_equal(o, batch[0, :, :, ::-1]) for o in out])
    kept = np.array([np.array_equal(o, batch[0]) for o in out])
    assert np.all(flipped | kept) and 60 < flipped.sum() < 140


def test_crop_with_padding_keeps_shape_and_shifts_content() -> None:
    out = RandomCrop((5, 6), padding=2, generator=Generator(1))(IMAGES)
    assert out.shape == IMAGES.shape and out.dtype == IMAGES.dtype
    padded = np.pad(IMAGES, ((0, 0), (0, 0), (2, 2), (2, 2)))
    for i in range(len(IMAGES)):  # each output is some 5x6 window of the padded image
        windows = [(t, l) for t in range(5) for l in range(5)
                   if np.array_equal(out[i], padded[i, :, t:t + 5, l:l + 6])]
        assert windows, f"image {i} is not a window of its padded image"


def test_crop_without_padding_to_a_smaller_size() -> None:
    out = RandomCrop(3, generator=Generator(2))(IMAGES)
    assert out.shape == (4, 2, 3, 3)
    i = 0
    hits = [(t, l) for t in range(3) for l in range(4) if np.array_equal(out[i], IMAGES[i, :, t:t + 3, l:l + 3])]
    assert len(hits) == 1


def test_rotation_by_zero_is_identity_and_by_90_is_rot90() -> None:
    square = IMAGES[:, :, :5, :5].copy()
    for interpolation in ("nearest", "bilinear"):
        np.testing.assert_allclose(RandomRotation(0, interpolation=interpolation)(square), square)
        turned = RandomRotation((90, 90), interpolation=interpolation)(square)
        np.testing.assert_allclose(turned, np.rot90(square, axes=(-2, -1)), atol=1e-4)


def test_shift_moves_content_and_fills() -> None:
    out = affine_sample(IMAGES, np.zeros(4), np.full(4, 2.0), np.full(4, -1.0), "nearest", fill=-1.0)
    np.testing.assert_array_equal(out[:, :, :-1, 2:], IMAGES[:, :, 1:, :-2])  # right 2, up 1
    assert np.all(out[:, :, :, :2] == -1.0) and np.all(out[:, :, -1, :] == -1.0)
    bilinear = affine_sample(IMAGES, np.zeros(4), np.full(4, 0.5), np.zeros(4), "bilinear")
    np.testing.assert_allclose(bilinear[..., 1:], (IMAGES[..., 1:] + IMAGES[..., :-1]) / 2)


def test_random_shift_is_by_whole_pixels() -> None:
    out = RandomShift(1, generator=Generator(3))(IMAGES)
    for i in range(len(IMAGES)):
        matches = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                   if np.array_equal(out[i], affine_sample(IMAGES[i:i + 1], np.zeros(1), np.array([float(dx)]),
                                                           np.array([float(dy)]), "nearest")[0])]
        assert matches


def test_seeded_transforms_are_reproducible() -> None:
    make = lambda seed: Compose([RandomCrop((5, 6), 1, generator=Generator(seed)),
                                 RandomAffine(15, (0.1, 0.1), generator=Generator(seed)),
                                 GaussianNoise(0.1, generator=Generator(seed))])
    a, b, c = make(5)(IMAGES), make(5)(IMAGES), make(6)(IMAGES)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.dtype == np.float32


def test_normalize_math_per_channel() -> None:
    out = Normalize([1.0, 2.0], [2.0, 4.0])(IMAGES)
    np.testing.assert_allclose(out[:, 0], (IMAGES[:, 0] - 1) / 2)
    np.testing.assert_allclose(out[:, 1], (IMAGES[:, 1] - 2) / 4)
    np.testing.assert_allclose(Normalize(0.5, 0.25)(IMAGES[0]), (IMAGES[0] - 0.5) / 0.25)
    assert out.dtype == np.float32


def test_gaussian_noise_statistics() -> None:
    zeros = np.zeros((50, 1, 20, 20), np.float32)
    noise = GaussianNoise(0.3, generator=Generator(0))(zeros)
    assert abs(noise.mean()) < 0.01 and abs(noise.std() - 0.3) < 0.01


def test_transform_loader_augments_each_batch_and_keeps_labels() -> None:
    labels = np.arange(4)
    loader = DataLoader(TensorDataset(IMAGES, labels), batch_size=3)
    wrapped = TransformLoader(loader, RandomHorizontalFlip(1.0))
    assert len(wrapped) == 2
    batches = list(wrapped)
    assert isinstance(batches[0][0], Tensor)
    np.testing.assert_array_equal(batches[0][0].array, IMAGES[:3, :, :, ::-1])
    np.testing.assert_array_equal(batches[1][1].array, labels[3:])


def test_transform_dataset_transforms_samples() -> None:
    dataset = TransformDataset(TensorDataset(IMAGES, np.arange(4)), RandomHorizontalFlip(1.0))
    image, label = dataset[2]
    np.testing.assert_array_equal(image.array, IMAGES[2, :, :, ::-1])
    assert int(label.item()) == 2 and len(dataset) == 4
    xb, _ = next(iter(DataLoader(dataset, batch_size=4)))
    np.testing.assert_array_equal(xb.array, IMAGES[..., ::-1])


def test_fit_augments_the_training_batches_only() -> None:
    """Wrapped around the training loader, augmentation never touches validation, evaluation or prediction."""
    from nurinet import nn
    from nurinet.training import Model

    rng = np.random.default_rng(0)
    x_train, y_train = rng.random((10, 1, 4, 4)).astype(np.float32) + 1.0, rng.integers(0, 2, 10)
    x_val, y_val = -rng.random((6, 1, 4, 4)).astype(np.float32) - 1.0, rng.integers(0, 2, 6)  # all negative
    seen: list[np.ndarray] = []
    flip = RandomHorizontalFlip(0.5, generator=Generator(0))

    def augment(batch: np.ndarray) -> np.ndarray:
        seen.append(batch)
        return Compose([flip, GaussianNoise(0.01, generator=Generator(1))])(batch)

    model = Model(nn.Sequential(nn.Flatten(), nn.Linear(16, 2)))
    model.compile(optimizer="sgd", loss="cross_entropy", metrics=["accuracy"], lr=0.1)
    train = TransformLoader(DataLoader(TensorDataset(x_train, y_train), batch_size=4, shuffle=True,
                                       generator=Generator(2)), augment)
    model.fit(train, epochs=2, verbose=0, validation_data=(x_val, y_val))
    model.evaluate(x_val, y_val, verbose=0)
    model.predict(x_val)
    assert len(seen) == 2 * 3  # three training batches per epoch, nothing else
    assert all(b.min() >= 1.0 for b in seen)  # only training images (the validation ones are negative)
    assert sum(len(b) for b in seen) == 2 * len(x_train)


def test_errors() -> None:
    with pytest.raises(ValueError, match=r"image \(C, H, W\) or a batch \(N, C, H, W\)"):
        RandomHorizontalFlip()(np.zeros((5, 5)))
    with pytest.raises(ValueError, match="larger than the padded image"):
        RandomCrop(8)(IMAGES)
    with pytest.raises(ValueError, match="3 values but the images have 2 channels"):
        Normalize([0, 0, 0], [1, 1, 1])(IMAGES)
    with pytest.raises(ValueError, match="std must be positive"):
        Normalize(0, 0)
    with pytest.raises(ValueError, match="interpolation must be"):
        RandomRotation(10, interpolation="cubic")
    with pytest.raises(ValueError, match="p must be in"):
        RandomHorizontalFlip(1.5)
