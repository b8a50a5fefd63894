"""Tests for nurinet.data: datasets, splits, DataLoader, bundled data, generators and the IDX format."""

import gzip
import hashlib
import io
import struct
import urllib.error
import urllib.request
from collections import namedtuple

import numpy as np
import pytest

import nurinet
from nurinet import Tensor
from nurinet.data import (
    DataLoader,
    Dataset,
    Subset,
    TensorDataset,
    default_collate,
    download_mnist,
    load_digits,
    load_iris,
    load_logic_gate,
    load_mnist,
    make_blobs,
    make_moons,
    make_spiral,
    random_split,
    read_idx,
    train_val_test_split,
    write_idx,
)


class Squares(Dataset):
    """A plain Dataset returning (float, int) Python numbers."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return float(i), i * i


def _rows(batches):
    """The first-field values of every batch, concatenated."""
    return np.concatenate([b[0].numpy().reshape(len(b[0]), -1)[:, 0] for b in batches])


# ----- Dataset, TensorDataset, Subset ---------------------------------------------------------------------------
def test_dataset_is_abstract():
    class NoLen(Dataset):
        def __getitem__(self, i):
            return i

    with pytest.raises(TypeError, match="abstract"):
        NoLen()
    assert len(Squares(3)) == 3


def test_tensor_dataset_items_and_dtypes():
    x = np.arange(12, dtype=np.float64).reshape(6, 2)
    y = np.arange(6)
    ds = TensorDataset(x, Tensor(y))
    assert len(ds) == 6
    xi, yi = ds[4]
    assert isinstance(xi, Tensor) and xi.dtype == np.float64 and xi.tolist() == [8.0, 9.0]
    assert yi.shape == () and yi.dtype == np.int64 and yi.item() == 4
    assert ds[-1][1].item() == 5
    assert TensorDataset([[0.5], [1.5]]).tensors[0].dtype == np.float32  # Python floats become float32


def test_tensor_dataset_errors():
    with pytest.raises(ValueError, match=r"same first dimension.*lengths \[5, 4\]"):
        TensorDataset(np.zeros((5, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="at least one array"):
        TensorDataset()
    with pytest.raises(ValueError, match="0-d"):
        TensorDataset(np.float32(1.0))
    ds = TensorDataset(np.zeros(3))
    with pytest.raises(IndexError, match="index 3 is out of range for 3"):
        ds[3]
    with pytest.raises(TypeError, match="indices must be integers"):
        ds[0.5]


def test_subset():
    ds = TensorDataset(np.arange(10) * 10)
    sub = Subset(ds, [3, -1, 0])
    assert len(sub) == 3
    assert [sub[i][0].item() for i in range(3)] == [30, 90, 0]
    assert sub[-1][0].item() == 0
    with pytest.raises(IndexError, match="index 10 is out of range for a dataset of 10"):
        Subset(ds, [1, 10])
    with pytest.raises(IndexError, match="out of range for 3"):
        sub[3]


# ----- random_split ---------------------------------------------------------------------------------------------
def test_random_split_counts_are_disjoint_and_cover():
    ds = TensorDataset(np.arange(20))
    parts = random_split(ds, [12, 5, 3], generator=nurinet.Generator(0))
    assert [len(p) for p in parts] == [12, 5, 3]
    seen = np.concatenate([p.indices for p in parts])
    assert sorted(seen.tolist()) == list(range(20))


def test_random_split_fractions_and_seeding():
    ds = TensorDataset(np.arange(11))
    parts = random_split(ds, [0.5, 0.3, 0.2], generator=nurinet.Generator(1))
    assert [len(p) for p in parts] == [6, 3, 2]  # floor gives 5, 3, 2; the one left over goes to the first
    again = random_split(ds, [0.5, 0.3, 0.2], generator=nurinet.Generator(1))
    other = random_split(ds, [0.5, 0.3, 0.2], generator=nurinet.Generator(2))
    assert all(np.array_equal(a.indices, b.indices) for a, b in zip(parts, again))
    assert not all(np.array_equal(a.indices, b.indices) for a, b in zip(parts, other))


def test_random_split_errors():
    ds = TensorDataset(np.arange(10))
    with pytest.raises(ValueError, match="sum to 9, but the dataset has 10"):
        random_split(ds, [5, 4])
    with pytest.raises(ValueError, match="sum to 0.9"):
        random_split(ds, [0.5, 0.4])
    with pytest.raises(ValueError, match="non-negative"):
        random_split(ds, [11, -1])


# ----- train_val_test_split -------------------------------------------------------------------------------------
def test_split_sizes_disjoint_and_aligned():
    x = np.arange(100, dtype=np.float32).reshape(50, 2)
    y = np.arange(50)
    (xtr, ytr), (xva, yva), (xte, yte) = train_val_test_split(x, y, 0.2, 0.1, generator=nurinet.Generator(0))
    assert (len(xtr), len(xva), len(xte)) == (35, 10, 5)
    ids = np.concatenate([ytr, yva, yte])
    assert sorted(ids.tolist()) == list(range(50))
    for xs, ys in ((xtr, ytr), (xva, yva), (xte, yte)):
        np.testing.assert_array_equal(xs, x[ys])  # each feature row stays with its target
    assert xtr.dtype == np.float32


def test_split_without_shuffle_is_consecutive():
    y = np.arange(10)
    (_, ytr), (_, yva), (_, yte) = train_val_test_split(y, y, 0.2, 0.3, shuffle=False)
    assert ytr.tolist() == [0, 1, 2, 3, 4] and yva.tolist() == [5, 6] and yte.tolist() == [7, 8, 9]


def test_split_is_seeded():
    x, y = np.arange(30), np.arange(30)
    a = train_val_test_split(x, y, 0.2, 0.2, generator=nurinet.Generator(5))
    b = train_val_test_split(x, y, 0.2, 0.2, generator=nurinet.Generator(5))
    c = train_val_test_split(x, y, 0.2, 0.2, generator=nurinet.Generator(6))
    assert all(np.array_equal(p[1], q[1]) for p, q in zip(a, b))
    assert not np.array_equal(a[0][1], c[0][1])


def test_stratified_split_keeps_class_balance():
    x, y = load_iris()
    (_, ytr), (_, yva), (_, yte) = train_val_test_split(x, y, 0.2, 0.2, stratify=True,
                                                        generator=nurinet.Generator(0))
    assert np.bincount(ytr).tolist() == [30, 30, 30]
    assert np.bincount(yva).tolist() == [10, 10, 10]
    assert np.bincount(yte).tolist() == [10, 10, 10]
    assert len(set(ytr[:6].tolist())) > 1  # the classes are interleaved, not in blocks


def test_stratified_split_unbalanced_classes():
    y = np.array([0] * 80 + [1] * 20)
    x = np.arange(100)
    (xtr, ytr), (xva, yva), (xte, yte) = train_val_test_split(x, y, 0.1, 0.25, stratify=True,
                                                              generator=nurinet.Generator(3))
    assert (len(ytr), len(yva), len(yte)) == (65, 10, 25)
    assert np.bincount(yva).tolist() == [8, 2]
    assert np.bincount(yte).tolist() == [20, 5]
    assert np.intersect1d(xtr, np.concatenate([xva, xte])).size == 0


def test_split_keeps_tensors_and_converts_lists():
    x = nurinet.tensor(np.arange(10.0, dtype=np.float32))
    (xtr, _), (xva, _), _ = train_val_test_split(x, list(range(10)), 0.2, 0.2, generator=nurinet.Generator(0))
    assert isinstance(xtr, Tensor) and isinstance(xva, Tensor) and xtr.dtype == np.float32
    (_, ytr), _, _ = train_val_test_split([[0.5]] * 10, [1.5] * 10, 0.2, 0.2)
    assert isinstance(ytr, np.ndarray) and ytr.dtype == np.float32


def test_split_errors():
    with pytest.raises(ValueError, match="x has 10 samples but y has 9"):
        train_val_test_split(np.zeros(10), np.zeros(9))
    with pytest.raises(ValueError, match=r"val_fraction must be in \[0, 1\)"):
        train_val_test_split(np.zeros(10), np.zeros(10), val_fraction=1.2)
    with pytest.raises(ValueError, match="leaves no training data"):
        train_val_test_split(np.zeros(10), np.zeros(10), 0.5, 0.5)
    with pytest.raises(ValueError, match="stratify=True needs shuffle=True"):
        train_val_test_split(np.zeros(10), np.zeros(10), stratify=True, shuffle=False)
    with pytest.raises(ValueError, match="1-d class labels"):
        train_val_test_split(np.zeros(10), np.zeros((10, 2)), stratify=True)


# ----- DataLoader -----------------------------------------------------------------------------------------------
def test_loader_partial_last_batch_and_drop_last():
    ds = TensorDataset(np.arange(10, dtype=np.float32), np.arange(10))
    loader = DataLoader(ds, batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 and [len(b[0]) for b in batches] == [4, 4, 2]
    assert _rows(batches).tolist() == list(range(10))  # no shuffle: in order
    dropped = DataLoader(ds, batch_size=4, drop_last=True)
    assert len(dropped) == 2 and [len(b[0]) for b in dropped] == [4, 4]
    assert len(DataLoader(ds, batch_size=5, drop_last=True)) == 2
    assert len(DataLoader(ds, batch_size=20, drop_last=True)) == 0 and list(DataLoader(ds, 20, drop_last=True)) == []


def test_loader_batch_types():
    ds = TensorDataset(np.zeros((7, 3), np.float32), np.arange(7))
    xb, yb = next(iter(DataLoader(ds, batch_size=5)))
    assert isinstance(xb, Tensor) and xb.shape == (5, 3) and xb.dtype == np.float32
    assert yb.dtype == np.int64 and not xb.requires_grad


def test_loader_seeded_shuffling():
    ds = TensorDataset(np.arange(50))
    first = DataLoader(ds, batch_size=8, shuffle=True, generator=nurinet.Generator(42))
    second = DataLoader(ds, batch_size=8, shuffle=True, generator=nurinet.Generator(42))
    epoch1, epoch2 = _rows(first), _rows(first)
    np.testing.assert_array_equal(epoch1, _rows(second))  # same seed, same order
    np.testing.assert_array_equal(epoch2, _rows(second))
    assert not np.array_equal(epoch1, epoch2)  # a new permutation each epoch
    assert sorted(epoch1.tolist()) == list(range(50)) == sorted(epoch2.tolist())
    assert not np.array_equal(epoch1, np.arange(50))


def test_loader_default_generator_follows_manual_seed():
    ds = TensorDataset(np.arange(30))
    nurinet.manual_seed(7)
    a = _rows(DataLoader(ds, batch_size=4, shuffle=True))
    nurinet.manual_seed(7)
    b = _rows(DataLoader(ds, batch_size=4, shuffle=True))
    np.testing.assert_array_equal(a, b)


def test_loader_fast_path_matches_per_sample_path():
    class Counting(TensorDataset):
        calls = 0

        def __getitem__(self, index):
            Counting.calls += 1
            return super().__getitem__(index)

    x = np.random.default_rng(0).normal(size=(23, 2, 3)).astype(np.float32)
    ds = Counting(x, np.arange(23))
    fast = list(DataLoader(ds, batch_size=5, shuffle=True, generator=nurinet.Generator(9)))
    assert Counting.calls == 0  # whole batches were sliced, no per-sample __getitem__
    slow = list(DataLoader(ds, batch_size=5, shuffle=True, generator=nurinet.Generator(9),
                           collate_fn=default_collate))
    assert Counting.calls == 23
    for (xf, yf), (xs, ys) in zip(fast, slow, strict=True):
        np.testing.assert_array_equal(xf.numpy(), xs.numpy())
        np.testing.assert_array_equal(yf.numpy(), ys.numpy())
        np.testing.assert_array_equal(xf.numpy(), x[yf.numpy()])


def test_loader_fast_path_through_subsets():
    ds = TensorDataset(np.arange(40) * 2, np.arange(40))
    train, val = random_split(ds, [30, 10], generator=nurinet.Generator(0))
    inner = Subset(val, [9, 0, 4])
    rows = [b for b in DataLoader(inner, batch_size=2)]
    got = np.concatenate([r[1].numpy() for r in rows])
    assert got.tolist() == [val.indices[9], val.indices[0], val.indices[4]]
    assert np.concatenate([r[0].numpy() for r in rows]).tolist() == (2 * got).tolist()
    assert sorted(_rows(DataLoader(train, batch_size=7)).tolist()) == sorted((2 * train.indices).tolist())


def test_loader_generic_dataset_and_python_numbers():
    loader = DataLoader(Squares(5), batch_size=2)
    batches = list(loader)
    assert len(loader) == 3 and len(batches) == 3
    xb, yb = batches[0]
    assert xb.dtype == np.float32 and yb.dtype == np.int64  # Python floats -> float32, ints -> int64
    assert xb.tolist() == [0.0, 1.0] and batches[2][1].tolist() == [16]


def test_loader_custom_collate_fn():
    loader = DataLoader(Squares(4), batch_size=3, collate_fn=lambda samples: [s[1] for s in samples])
    assert list(loader) == [[0, 1, 4], [9]]


def test_loader_errors():
    ds = TensorDataset(np.arange(4))
    for bad in (0, -2, 2.5, True):
        with pytest.raises(ValueError, match="batch_size must be a positive integer"):
            DataLoader(ds, batch_size=bad)
    with pytest.raises(TypeError, match="needs a dataset with __getitem__ and __len__"):
        DataLoader(iter(range(3)))
    with pytest.raises(TypeError, match="collate_fn must be callable"):
        DataLoader(ds, collate_fn=3)


# ----- default_collate ------------------------------------------------------------------------------------------
def test_collate_dtypes():
    assert default_collate([np.zeros(2), np.ones(2)]).dtype == np.float64  # arrays keep their dtype
    assert default_collate([np.zeros(2, np.float16)] * 3).shape == (3, 2)
    assert default_collate([1.5, 2]).dtype == np.float32
    assert default_collate([1, 2]).dtype == np.int64
    assert default_collate([True, False]).dtype == np.bool_
    assert default_collate([np.float64(1.0), np.float64(2.0)]).dtype == np.float64
    stacked = default_collate([nurinet.ones(2, 3), nurinet.zeros(2, 3)])
    assert stacked.shape == (2, 2, 3) and stacked.dtype == np.float32


def test_collate_structures():
    Pair = namedtuple("Pair", "image label")
    batch = default_collate([Pair(np.zeros(3, np.float32), 1), Pair(np.ones(3, np.float32), 2)])
    assert isinstance(batch, Pair) and batch.image.shape == (2, 3) and batch.label.tolist() == [1, 2]
    d = default_collate([{"x": 1.0, "name": "a"}, {"x": 2.0, "name": "b"}])
    assert d["x"].tolist() == [1.0, 2.0] and d["name"] == ["a", "b"]
    as_list = default_collate([[1, 2.0], [3, 4.0]])
    assert isinstance(as_list, list) and as_list[0].tolist() == [1, 3]
    nested = default_collate([(np.zeros(2), (1, "a"))] * 2)
    assert isinstance(nested, tuple) and nested[1][0].tolist() == [1, 1] and nested[1][1] == ["a", "a"]


def test_collate_errors():
    with pytest.raises(ValueError, match=r"different shapes \[\(2,\), \(3,\)\]"):
        default_collate([np.zeros(2), np.zeros(3)])
    with pytest.raises(ValueError, match="different numbers of fields"):
        default_collate([(1, 2), (1, 2, 3)])
    with pytest.raises(TypeError, match="cannot batch samples of type object"):
        default_collate([object(), object()])


# ----- bundled datasets and generators --------------------------------------------------------------------------
def test_load_iris():
    x, y = load_iris()
    assert x.shape == (150, 4) and x.dtype == np.float32 and y.dtype == np.int64
    assert np.bincount(y).tolist() == [50, 50, 50]
    np.testing.assert_allclose(x[0], [5.1, 3.5, 1.4, 0.2], rtol=1e-6)  # the first flower in Fisher's table
    assert 4.0 < x[:, 0].min() < x[:, 0].max() < 8.0
    iris = load_iris(as_namespace=True)
    assert iris.target_names == ["setosa", "versicolor", "virginica"]
    assert iris.feature_names[2] == "petal length (cm)"
    np.testing.assert_array_equal(iris.x, x)


def test_load_digits():
    x, y = load_digits()
    assert x.shape == (1797, 64) and x.dtype == np.float32 and y.dtype == np.int64
    assert len(np.bincount(y)) == 10 and np.bincount(y).min() >= 170
    assert x.min() == 0 and x.max() == 16 and np.array_equal(x, np.round(x))
    images, _ = load_digits(flatten=False, normalize=True)
    assert images.shape == (1797, 1, 8, 8) and images.max() == 1.0
    np.testing.assert_allclose(images.reshape(1797, 64) * 16, x)
    digits = load_digits(as_namespace=True)
    assert digits.images.shape == (1797, 8, 8) and digits.target_names[3] == "3"
    assert len(digits.feature_names) == 64


@pytest.mark.parametrize("name, rule", [
    ("AND", lambda a, b: a and b), ("OR", lambda a, b: a or b), ("NAND", lambda a, b: not (a and b)),
    ("NOR", lambda a, b: not (a or b)), ("xor", lambda a, b: a != b),
])
def test_logic_gates(name, rule):
    x, y = load_logic_gate(name)
    assert x.shape == (4, 2) and x.dtype == np.float32 and y.shape == (4,) and y.dtype == np.int64
    assert y.tolist() == [int(rule(bool(a), bool(b))) for a, b in x]


def test_logic_gate_error():
    with pytest.raises(ValueError, match="unknown gate 'XNOR'"):
        load_logic_gate("XNOR")


def test_make_moons():
    x, y = make_moons(101, generator=nurinet.Generator(0))
    assert x.shape == (101, 2) and x.dtype == np.float32 and y.dtype == np.int64
    assert np.bincount(y).tolist() == [50, 51]
    np.testing.assert_allclose(np.linalg.norm(x[y == 0], axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(x[y == 1] - [1.0, 0.5], axis=1), 1.0, rtol=1e-5)
    assert (x[y == 0, 1] >= -1e-6).all() and (x[y == 1, 1] <= 0.5 + 1e-6).all()
    a, _ = make_moons(50, noise=0.1, generator=nurinet.Generator(3))
    b, _ = make_moons(50, noise=0.1, generator=nurinet.Generator(3))
    np.testing.assert_array_equal(a, b)
    ordered, labels = make_moons(10, shuffle=False)
    assert labels.tolist() == [0] * 5 + [1] * 5 and ordered[0].tolist() == [1.0, 0.0]
    with pytest.raises(ValueError, match="noise must be >= 0"):
        make_moons(10, noise=-1.0)
    with pytest.raises(ValueError, match="n_samples must be an integer >= 1"):
        make_moons(0)


def test_make_spiral():
    x, y = make_spiral(40, n_classes=4, noise=0.3, generator=nurinet.Generator(0))
    assert x.shape == (160, 2) and x.dtype == np.float32 and np.bincount(y).tolist() == [40] * 4
    # The noise is on the angle, so each arm's radii are exactly 0..1.
    radii = np.sort(np.linalg.norm(x[y == 2], axis=1))
    np.testing.assert_allclose(radii, np.linspace(0, 1, 40), atol=1e-6)
    clean, labels = make_spiral(5, n_classes=2, noise=0.0, shuffle=False)
    angle = 4.0 * (1 + 0.5)  # class 1, radius 0.5
    np.testing.assert_allclose(clean[7], [0.5 * np.sin(angle), 0.5 * np.cos(angle)], rtol=1e-6)
    assert labels.tolist() == [0] * 5 + [1] * 5
    a, _ = make_spiral(10, generator=nurinet.Generator(1))
    b, _ = make_spiral(10, generator=nurinet.Generator(1))
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="n_classes must be an integer >= 1"):
        make_spiral(10, n_classes=0)


def test_make_blobs():
    centers = np.array([[0.0, 0.0, 0.0], [10.0, -10.0, 5.0]])
    x, y = make_blobs(1001, centers=centers, cluster_std=0.5, generator=nurinet.Generator(0))
    assert x.shape == (1001, 3) and x.dtype == np.float32 and np.bincount(y).tolist() == [501, 500]
    for k in range(2):
        np.testing.assert_allclose(x[y == k].mean(axis=0), centers[k], atol=0.1)
        np.testing.assert_allclose(x[y == k].std(axis=0), 0.5, rtol=0.15)
    x2, y2 = make_blobs(30, centers=4, n_features=5, generator=nurinet.Generator(0))
    assert x2.shape == (30, 5) and set(y2.tolist()) == {0, 1, 2, 3}
    assert np.abs(x2).max() < 10 + 6  # centers inside the default box, std 1
    with pytest.raises(ValueError, match="centers must be a number or a 2-d array"):
        make_blobs(10, centers=np.zeros(3))
    with pytest.raises(ValueError, match="cluster_std must be >= 0"):
        make_blobs(10, cluster_std=-1)


# ----- IDX ------------------------------------------------------------------------------------------------------
def _idx_bytes(code, shape, payload):
    """An IDX file built by hand (independent of write_idx)."""
    return bytes([0, 0, code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape) + payload


def test_read_idx_handmade_ubyte_raw_and_gzip(tmp_path):
    values = bytes(range(24))
    raw = _idx_bytes(0x08, (2, 3, 4), values)
    (tmp_path / "a.idx").write_bytes(raw)
    (tmp_path / "a.idx.gz").write_bytes(gzip.compress(raw))
    (tmp_path / "gz-named-plainly").write_bytes(gzip.compress(raw))  # detected by content, not name
    for name in ("a.idx", "a.idx.gz", "gz-named-plainly"):
        array = read_idx(tmp_path / name)
        assert array.dtype == np.uint8 and array.shape == (2, 3, 4)
        assert array[1, 2, 3] == 23 and array.flags.writeable


def test_read_idx_handmade_big_endian_types(tmp_path):
    cases = [(0x09, ">b", [-3, 7], np.int8), (0x0B, ">h", [-300, 2], np.int16),
             (0x0C, ">i", [-70000, 5], np.int32), (0x0D, ">f", [1.5, -2.25], np.float32),
             (0x0E, ">d", [1e-300, 3.0], np.float64)]
    for code, fmt, values, dtype in cases:
        path = tmp_path / f"t{code}.idx"
        path.write_bytes(_idx_bytes(code, (2,), struct.pack(f">{len(values)}{fmt[1]}", *values)))
        array = read_idx(path)
        assert array.dtype == dtype and array.dtype.isnative and array.tolist() == values


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_write_idx_round_trip(tmp_path, dtype):
    array = (np.arange(30).reshape(2, 5, 3) - 7).astype(dtype)
    for name in ("x.idx", "x.idx.gz"):
        write_idx(tmp_path / name, array)
        back = read_idx(tmp_path / name)
        assert back.dtype == dtype
        np.testing.assert_array_equal(back, array)
    with pytest.raises(TypeError, match="IDX has no type for int64"):
        write_idx(tmp_path / "bad.idx", np.zeros(3, np.int64))


def test_read_idx_errors(tmp_path):
    cases = {
        "magic.idx": (b"\x01\x02\x08\x01" + bytes(8), "bad IDX magic number 0x01020801"),
        "type.idx": (_idx_bytes(0x0A, (2,), bytes(2)), "bad IDX magic number 0x00000A01"),
        "short.idx": (b"\x00\x00", "too short"),
        "header.idx": (bytes([0, 0, 8, 3]) + bytes(6), "truncated IDX header: 3 dimensions need 16 bytes"),
        "trunc.idx": (_idx_bytes(0x0C, (2, 3), bytes(20)),
                      r"truncated: shape \(2, 3\) of int32 needs 24 bytes .* there are 20"),
        "extra.idx": (_idx_bytes(0x08, (2,), bytes(3)), "has extra bytes.*needs 2 bytes.*there are 3"),
        "trunc.gz": (gzip.compress(_idx_bytes(0x08, (50,), bytes(50)))[:-10], "gzip stream is truncated"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError, match=message) as info:
            read_idx(tmp_path / name)
        assert name in str(info.value)  # the message names the file


def _fake_mnist(directory, kind="t10k", n=5, compress=True, dotted=False):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    for base, array, code, shape in ((f"{kind}-images-idx3-ubyte", images, 0x08, images.shape),
                                     (f"{kind}-labels-idx1-ubyte", labels, 0x08, labels.shape)):
        name = base.replace("-idx", ".idx") if dotted else base
        content = _idx_bytes(code, shape, array.tobytes())
        (directory / (name + ".gz" if compress else name)).write_bytes(
            gzip.compress(content) if compress else content)
    return images, labels


def test_load_mnist(tmp_path):
    images, labels = _fake_mnist(tmp_path)
    x, y = load_mnist(tmp_path, kind="t10k")
    assert x.shape == (5, 1, 28, 28) and x.dtype == np.float32 and y.dtype == np.int64
    assert 0.0 <= x.min() and x.max() <= 1.0
    np.testing.assert_allclose(x[:, 0] * 255, images, atol=1e-4)
    assert y.tolist() == labels.tolist()
    flat, _ = load_mnist(tmp_path, kind="test", normalize=False, flatten=True)
    assert flat.shape == (5, 784) and flat.dtype == np.float32
    np.testing.assert_array_equal(flat, images.reshape(5, 784))


@pytest.mark.parametrize("compress, dotted", [(False, False), (False, True)])
def test_load_mnist_name_variants(tmp_path, compress, dotted):
    images, _ = _fake_mnist(tmp_path, kind="train", n=3, compress=compress, dotted=dotted)
    x, y = load_mnist(tmp_path, kind="train", normalize=False)
    assert x.shape == (3, 1, 28, 28) and len(y) == 3
    np.testing.assert_array_equal(x[:, 0], images)


def test_load_mnist_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="download_mnist"):
        load_mnist(tmp_path, kind="train")
    with pytest.raises(ValueError, match="kind must be 'train' or 't10k'"):
        load_mnist(tmp_path, kind="validation")
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        load_mnist(tmp_path / "missing")
    _fake_mnist(tmp_path, n=4)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(3, np.uint8))
    with pytest.raises(ValueError, match=r"\(4, 28, 28\) and t10k-labels-idx1-ubyte.gz \(3,\)"):
        load_mnist(tmp_path, kind="t10k")


# ----- download_mnist (the network is simulated) ----------------------------------------------------------------
_FAKE_FILES = {"t10k-images-idx3-ubyte.gz": gzip.compress(_idx_bytes(0x08, (1, 28, 28), bytes(784))),
               "t10k-labels-idx1-ubyte.gz": gzip.compress(_idx_bytes(0x08, (1,), b"\x07"))}
_FAKE_MD5 = {name: hashlib.md5(data).hexdigest() for name, data in _FAKE_FILES.items()}


def _serve(calls, payloads=_FAKE_FILES, fail_hosts=()):
    def urlopen(url, timeout=None):
        calls.append(url)
        if any(host in url for host in fail_hosts):
            raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")
        return io.BytesIO(payloads[url.rsplit("/", 1)[1]])
    return urlopen


def test_download_mnist_success_and_skip(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(urllib.request, "urlopen", _serve(calls, fail_hosts=("mirror-a",)))
    target = tmp_path / "mnist"
    out = download_mnist(target, urls=["https://mirror-a.example/mnist", "https://mirror-b.example/mnist/"],
                         checksums=_FAKE_MD5)
    assert out == target
    assert calls == ["https://mirror-a.example/mnist/t10k-images-idx3-ubyte.gz",
                     "https://mirror-b.example/mnist/t10k-images-idx3-ubyte.gz",
                     "https://mirror-a.example/mnist/t10k-labels-idx1-ubyte.gz",
                     "https://mirror-b.example/mnist/t10k-labels-idx1-ubyte.gz"]
    assert sorted(p.name for p in target.iterdir()) == sorted(_FAKE_FILES)  # no temporary files left
    x, y = load_mnist(target, kind="t10k")
    assert x.shape == (1, 1, 28, 28) and y.tolist() == [7]
    calls.clear()
    download_mnist(target, urls="https://mirror-b.example/", checksums=_FAKE_MD5)
    assert calls == []  # files already present with the right checksum are kept


def test_download_mnist_no_network(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(urllib.request, "urlopen", _serve(calls, fail_hosts=("example",)))
    with pytest.raises(ConnectionError, match="no network") as info:
        download_mnist(tmp_path, urls=["https://a.example/", "https://b.example/"], checksums=_FAKE_MD5)
    message = str(info.value)
    assert "by hand" in message and str(tmp_path) in message and "name resolution" in message
    assert len(calls) == 2 and list(tmp_path.iterdir()) == []  # nothing half-written


def test_download_mnist_checksum_mismatch(tmp_path, monkeypatch):
    corrupt = {name: data[:-1] + bytes([data[-1] ^ 0xFF]) for name, data in _FAKE_FILES.items()}
    monkeypatch.setattr(urllib.request, "urlopen", _serve([], payloads=corrupt))
    with pytest.raises(ValueError, match="wrong checksum.*expected " + _FAKE_MD5["t10k-images-idx3-ubyte.gz"]):
        download_mnist(tmp_path, urls=["https://a.example/"], checksums=_FAKE_MD5)
    assert list(tmp_path.iterdir()) == []


def test_default_mnist_checksums_cover_the_standard_files():
    from nurinet.data import MNIST_MD5

    assert sorted(MNIST_MD5) == sorted(f"{k}-{p}.gz" for k in ("train", "t10k")
                                       for p in ("images-idx3-ubyte", "labels-idx1-ubyte"))
    assert MNIST_MD5["t10k-images-idx3-ubyte.gz"] == "9fb629c4189551a2d022fa330f9573f3"
