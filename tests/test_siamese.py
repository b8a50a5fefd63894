"""Siamese networks: shared weights, distances, pair making, training on digits pairs, saving."""

from __future__ import annotations

import numpy as np
import pytest

import nurinet as nt
from nurinet import nn, optim
from nurinet.data import load_digits
from nurinet.models import SiameseNetwork, make_pairs
from nurinet.training import roc_auc_score


def _mlp(seed: int = 0, out: int = 8) -> nn.Sequential:
    g = nt.Generator(seed)
    return nn.Sequential(nn.Linear(64, 32, generator=g), nn.ReLU(), nn.Linear(32, out, generator=g))


@pytest.fixture(scope="module")
def split_digits() -> tuple[np.ndarray, ...]:
    """Digits split by image: pairs for training and for testing never share an image."""
    x, y = load_digits(normalize=True)
    order = np.random.default_rng(0).permutation(len(x))
    return x[order[:1200]], y[order[:1200]], x[order[1200:]], y[order[1200:]]


def test_both_branches_use_one_set_of_parameters() -> None:
    embedding = _mlp()
    model = SiameseNetwork(embedding)
    assert [id(p) for p in model.parameters()] == [id(p) for p in embedding.parameters()]
    assert len(model.state_dict()) == len(embedding.state_dict())
    x = np.random.default_rng(1).random((5, 64), dtype=np.float32)
    e1, e2 = model(x, x)
    np.testing.assert_array_equal(e1.numpy(), e2.numpy())


def test_gradients_from_both_branches_add_up_on_the_shared_weights() -> None:
    rng = np.random.default_rng(2)
    x1, x2 = rng.random((6, 64), dtype=np.float32), rng.random((6, 64), dtype=np.float32)
    label = np.array([1, 0, 1, 0, 0, 1], dtype=np.float32)
    loss_fn = nn.ContrastiveLoss(margin=2.0)
    model = SiameseNetwork(_mlp())
    loss_fn(*model(x1, x2), label).backward()
    # The same computation with two separate copies of the weights: one copy per branch.
    left, right = _mlp(), _mlp()
    left.load_state_dict(model.embedding.state_dict())
    right.load_state_dict(model.embedding.state_dict())
    loss_fn(left(nt.tensor(x1)), right(nt.tensor(x2)), label).backward()
    for shared, p_left, p_right in zip(model.parameters(), left.parameters(), right.parameters(), strict=True):
        assert np.abs(p_left.grad.numpy()).max() > 0 and np.abs(p_right.grad.numpy()).max() > 0
        np.testing.assert_allclose(shared.grad.numpy(), p_left.grad.numpy() + p_right.grad.numpy(),
                                   rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("kind", ["euclidean", "cosine"])
def test_distance_of_the_embeddings(kind: str) -> None:
    rng = np.random.default_rng(3)
    model = SiameseNetwork(_mlp(), distance=kind)
    a, b = rng.random((7, 64), dtype=np.float32), rng.random((7, 64), dtype=np.float32)
    ea, eb = (model.embedding(nt.tensor(v)).numpy().astype(np.float64) for v in (a, b))
    if kind == "euclidean":
        expected = np.linalg.norm(ea - eb + 1e-6, axis=1)  # pairwise_distance's eps, as PyTorch
    else:
        expected = 1.0 - (ea * eb).sum(1) / (np.linalg.norm(ea, axis=1) * np.linalg.norm(eb, axis=1))
    distance = model.distance(a, b).numpy()
    assert distance.shape == (7,)
    np.testing.assert_allclose(distance, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.distance(b, a).numpy(), distance, rtol=1e-5, atol=1e-6)
    assert np.abs(model.distance(a, a).numpy()).max() < 1e-4


def test_siamese_names_bad_inputs() -> None:
    with pytest.raises(TypeError, match="embedding must be a nurinet.nn.Module"):
        SiameseNetwork(lambda x: x)
    with pytest.raises(ValueError, match="distance must be one of"):
        SiameseNetwork(_mlp(), distance="manhattan")
    model = SiameseNetwork(_mlp())
    with pytest.raises(ValueError, match="must pair up, got 3 and 4"):
        model(np.zeros((3, 64), np.float32), np.zeros((4, 64), np.float32))
    images = SiameseNetwork(nn.Conv2d(1, 2, 3))
    with pytest.raises(ValueError, match=r"must return \(N, D\) embeddings.*nn.Flatten"):
        images.distance(np.zeros((2, 1, 8, 8), np.float32), np.zeros((2, 1, 8, 8), np.float32))


def test_make_pairs_labels_and_balance() -> None:
    x = np.arange(40, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    y = np.repeat(np.arange(4), 10)
    x1, x2, label = make_pairs(x, y, 200, generator=nt.Generator(0))
    assert x1.shape == x2.shape == (200, 3) and label.shape == (200,) and label.dtype == np.float32
    first, second = x1[:, 0].astype(int), x2[:, 0].astype(int)
    np.testing.assert_array_equal(label, (y[first] == y[second]).astype(np.float32))
    assert label.sum() == 100
    assert not np.any(first == second)  # a positive pair is two different items of one class
    assert 0 < label[:100].sum() < 100  # positives and negatives are mixed, not in two blocks
    _, _, label = make_pairs(x, y, 10, positive_fraction=0.3, generator=nt.Generator(0))
    assert label.sum() == 3


def test_make_pairs_names_bad_inputs() -> None:
    x = np.zeros((6, 2), np.float32)
    with pytest.raises(ValueError, match="at least two classes"):
        make_pairs(x, np.zeros(6, np.int64), 4)
    with pytest.raises(ValueError, match="one label per item: x has 6 items"):
        make_pairs(x, np.zeros(5, np.int64), 4)
    with pytest.raises(ValueError, match="n_pairs must be a positive integer"):
        make_pairs(x, np.arange(6) % 2, 0)
    with pytest.raises(ValueError, match="positive_fraction must be in"):
        make_pairs(x, np.arange(6) % 2, 4, positive_fraction=1.5)


def _auc(model: SiameseNetwork, x1: np.ndarray, x2: np.ndarray, label: np.ndarray) -> float:
    with nt.no_grad():
        return roc_auc_score(label, -model.distance(x1, x2).numpy())  # a small distance means "same"


def _train(model: SiameseNetwork, loss_fn, pairs, epochs: int, lr: float = 3e-3) -> None:
    x1, x2, label = pairs
    opt = optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        for start in range(0, len(label), 64):
            batch = slice(start, start + 64)
            loss = loss_fn(*model(x1[batch], x2[batch]), label[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()


def test_contrastive_training_separates_held_out_pairs(split_digits) -> None:
    x_train, y_train, x_test, y_test = split_digits
    train = make_pairs(x_train, y_train, 3000, generator=nt.Generator(0))
    test = make_pairs(x_test, y_test, 1000, generator=nt.Generator(1))
    model = SiameseNetwork(_mlp())
    before = _auc(model, *test)
    pixels = roc_auc_score(test[2], -np.linalg.norm(test[0] - test[1], axis=1))
    _train(model, nn.ContrastiveLoss(margin=1.0), train, epochs=4)
    after = _auc(model, *test)
    assert after > 0.9
    assert after > max(before, pixels) + 0.05  # learned: better than the random net and than raw pixels


def test_cosine_embedding_training_separates_held_out_pairs(split_digits) -> None:
    x_train, y_train, x_test, y_test = split_digits
    x1, x2, label = make_pairs(x_train, y_train, 3000, generator=nt.Generator(2))
    test = make_pairs(x_test, y_test, 1000, generator=nt.Generator(3))
    model = SiameseNetwork(_mlp(seed=1), distance="cosine")
    _train(model, nn.CosineEmbeddingLoss(margin=0.0), (x1, x2, 2.0 * label - 1.0), epochs=3)
    assert _auc(model, *test) > 0.9


def test_siamese_save_load_round_trip(tmp_path) -> None:
    model = SiameseNetwork(_mlp(4), distance="cosine")
    nt.save(model, tmp_path / "siamese.safetensors")
    loaded = nt.load(tmp_path / "siamese.safetensors")
    assert isinstance(loaded, SiameseNetwork) and loaded.distance_kind == "cosine"
    x = np.random.default_rng(5).random((4, 64), dtype=np.float32)
    np.testing.assert_array_equal(loaded.distance(x, x[::-1]).numpy(), model.distance(x, x[::-1]).numpy())


def test_siamese_example_quick(tmp_path) -> None:
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "examples" / "siamese_digits.py"
    spec = importlib.util.spec_from_file_location("_example_siamese_digits", path)
    example = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = example
    spec.loader.exec_module(example)
    result = example.main(["--quick", "--out", str(tmp_path / "r.json")])
    seen = result["test_seen_digits"]
    assert seen["roc_auc"] > seen["roc_auc_untrained"]
    assert 0.0 <= result["test_unseen_digits"]["roc_auc"] <= 1.0
    assert (tmp_path / "r.json").is_file()
