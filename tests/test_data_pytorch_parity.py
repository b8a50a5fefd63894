"""torch.utils.data parity: IterableDataset, ConcatDataset, the samplers, DataLoader's sampler rules
and worker processes, load_csv, and pandas data in TensorDataset and Model.fit.

Where torch is installed, the batch structure (lengths, order where it is deterministic) and the
argument errors are compared with torch.utils.data for the same settings; random orders are
checked by their statistics, since the two libraries draw different streams.
"""

from __future__ import annotations

import gc
import os
import time

import numpy as np
import pytest

import nurinet
from nurinet import nn
from nurinet.data import (
    BatchSampler,
    ConcatDataset,
    DataLoader,
    Dataset,
    IterableDataset,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    TensorDataset,
    WeightedRandomSampler,
    get_worker_info,
    load_csv,
    to_array,
)


# ----- helpers (module level, so that worker processes can use them under any start method) -------------
class Numbers(Dataset):
    """Sample i is ``(i, pid of the process that read it, worker id or -1)``."""

    def __init__(self, n: int, delay: float = 0.0, fail_at: int | None = None) -> None:
        self.n, self.delay, self.fail_at = n, delay, fail_at

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i):
        if i == self.fail_at:
            raise ValueError(f"sample {i} is broken")
        if self.delay:
            time.sleep(self.delay)
        info = get_worker_info()
        return np.int64(i), np.int64(os.getpid()), np.int64(-1 if info is None else info.id)


class Stream(IterableDataset):
    """``0..n-1``; with ``shard`` each worker yields only every num_workers-th value, from its id."""

    def __init__(self, n: int, shard: bool = True) -> None:
        self.n, self.shard = n, shard

    def __iter__(self):
        info = get_worker_info()
        if info is None or not self.shard:
            return iter(range(self.n))
        return iter(range(info.id, self.n, info.num_workers))


class SizedStream(Stream):
    def __len__(self) -> int:
        return self.n


class Draws(Dataset):
    """Each sample is a draw from the reading process's default generator."""

    def __len__(self) -> int:
        return 8

    def __getitem__(self, i):
        return np.float64(nurinet.rand(1).array[0])


_INIT_MARK = {"value": -1}


def _mark_init(worker_id: int) -> None:
    _INIT_MARK["value"] = 100 + worker_id


class InitMarked(Dataset):
    def __len__(self) -> int:
        return 6

    def __getitem__(self, i):
        return np.int64(_INIT_MARK["value"])


def _first_items(samples):
    return [int(s[0]) for s in samples]


def _values(batches):
    return [np.asarray(getattr(b, "array", b)).tolist() for b in batches]


def _torch():
    return pytest.importorskip("torch")


# ----- IterableDataset ----------------------------------------------------------------------------------
def test_iterable_dataset_is_batched_in_order():
    assert _values(DataLoader(Stream(10), batch_size=4)) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert _values(DataLoader(Stream(10), batch_size=4, drop_last=True)) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert [int(v) for v in DataLoader(Stream(3), batch_size=None)] == [0, 1, 2]
    assert _values(DataLoader(Stream(5), batch_size=2)) == _values(DataLoader(Stream(5), batch_size=2))  # restarts
    assert get_worker_info() is None  # in the main process


def test_iterable_dataset_length_and_indexing():
    assert len(DataLoader(SizedStream(10), batch_size=4)) == 3
    assert len(DataLoader(SizedStream(10), batch_size=4, drop_last=True)) == 2
    with pytest.raises(TypeError):
        len(DataLoader(Stream(10), batch_size=4))
    with pytest.raises(TypeError, match="no indices"):
        Stream(3)[0]
    assert list(Stream(3)) == [0, 1, 2]


@pytest.mark.parametrize("option", [{"shuffle": True}, {"sampler": [0, 1]}, {"batch_sampler": [[0]]}])
def test_iterable_dataset_rejects_shuffle_and_samplers(option):
    with pytest.raises(ValueError, match="IterableDataset: expected unspecified"):
        DataLoader(Stream(4), **option)
    DataLoader(Stream(4), shuffle=False)  # False is the same as unspecified, as in PyTorch


def test_iterable_dataset_errors_match_torch():
    torch = _torch()

    class TorchStream(torch.utils.data.IterableDataset):
        def __iter__(self):
            return iter(range(4))

    for option in ({"shuffle": True}, {"sampler": [0, 1]}, {"batch_sampler": [[0]]}):
        with pytest.raises(ValueError):
            torch.utils.data.DataLoader(TorchStream(), **option)
        with pytest.raises(ValueError):
            DataLoader(Stream(4), **option)


def test_iterable_dataset_workers_shard_with_worker_info():
    loader = DataLoader(Stream(11), batch_size=2, num_workers=2)
    batches = _values(loader)
    # Each worker runs its own copy; batches alternate between the workers, as in PyTorch.
    assert batches == [[0, 2], [1, 3], [4, 6], [5, 7], [8, 10], [9]]
    unsharded = sorted(v for b in _values(DataLoader(Stream(5, shard=False), batch_size=2, num_workers=2))
                       for v in b)
    assert unsharded == sorted(list(range(5)) * 2)  # without sharding every worker yields everything


def test_iterable_dataset_workers_match_torch_order():
    torch = _torch()
    from torch.utils.data import get_worker_info as torch_worker_info

    class TorchStream(torch.utils.data.IterableDataset):
        def __iter__(self):
            info = torch_worker_info()
            return iter(range(11) if info is None else range(info.id, 11, info.num_workers))

    for kwargs in ({"batch_size": 2}, {"batch_size": 3, "drop_last": True}, {"batch_size": None}):
        theirs = [np.asarray(b).tolist() for b in torch.utils.data.DataLoader(TorchStream(), num_workers=2, **kwargs)]
        ours = _values(DataLoader(Stream(11), num_workers=2, **kwargs))
        assert ours == theirs, kwargs


# ----- ConcatDataset --------------------------------------------------------------------------------------
def test_concat_dataset_indexing_and_sizes():
    a = TensorDataset(np.arange(3))
    b = TensorDataset(np.arange(10, 15))
    both = ConcatDataset([a, b])
    assert len(both) == 8 and both.cumulative_sizes == [3, 8]
    assert [int(both[i][0].item()) for i in range(8)] == [0, 1, 2, 10, 11, 12, 13, 14]
    assert int(both[-1][0].item()) == 14 and int(both[-8][0].item()) == 0 and int(both[-6][0].item()) == 2
    for bad in (8, -9):
        with pytest.raises(IndexError):
            both[bad]
    assert (a + b).cumulative_sizes == [3, 8]
    assert len(ConcatDataset([a, TensorDataset(np.zeros((0,))), b])) == 8  # an empty part is skipped over
    assert int(ConcatDataset([a, TensorDataset(np.zeros((0,))), b])[3][0].item()) == 10
    assert sorted(int(v) for xb, in DataLoader(both, batch_size=3, shuffle=True) for v in xb.array) == \
        [0, 1, 2, 10, 11, 12, 13, 14]
    with pytest.raises(ValueError, match="empty"):
        ConcatDataset([])
    with pytest.raises(TypeError, match="IterableDataset"):
        ConcatDataset([a, Stream(3)])


def test_concat_dataset_matches_torch():
    torch = _torch()
    parts = [list(range(3)), list(range(100, 101)), [], list(range(200, 205))]
    theirs = torch.utils.data.ConcatDataset(parts)
    ours = ConcatDataset(parts)
    assert ours.cumulative_sizes == theirs.cumulative_sizes and len(ours) == len(theirs)
    assert [ours[i] for i in range(-len(ours), len(ours))] == [theirs[i] for i in range(-len(theirs), len(theirs))]


# ----- samplers -------------------------------------------------------------------------------------------
def test_sequential_sampler_order():
    assert list(SequentialSampler(range(7))) == list(range(7)) and len(SequentialSampler(range(7))) == 7


def test_random_sampler_without_replacement_is_a_permutation():
    sampler = RandomSampler(range(50), generator=nurinet.Generator(0))
    first, second = list(sampler), list(sampler)
    assert sorted(first) == list(range(50)) == sorted(second) and first != second and len(sampler) == 50
    assert list(RandomSampler(range(50), generator=nurinet.Generator(0))) == first  # seeded
    longer = list(RandomSampler(range(10), num_samples=25, generator=nurinet.Generator(1)))
    assert len(longer) == 25 and sorted(longer[:10]) == sorted(longer[10:20]) == list(range(10))
    assert len(set(longer[20:])) == 5


def test_random_sampler_with_replacement_is_uniform():
    n, draws = 10, 100_000
    idx = np.array(list(RandomSampler(range(n), replacement=True, num_samples=draws,
                                      generator=nurinet.Generator(2))))
    assert idx.min() >= 0 and idx.max() < n
    counts = np.bincount(idx, minlength=n)
    p = 1 / n
    assert np.all(np.abs(counts - draws * p) <= 5 * np.sqrt(draws * p * (1 - p)))


def test_random_sampler_uses_nurinet_generators_only():
    nurinet.manual_seed(5)
    a = list(RandomSampler(range(30)))
    state = np.random.get_state()
    nurinet.manual_seed(5)
    assert list(RandomSampler(range(30))) == a  # the default generator follows manual_seed
    assert np.array_equal(np.random.get_state()[1], state[1])  # NumPy's global state untouched


def test_random_sampler_errors():
    with pytest.raises(ValueError, match="num_samples should be a positive integer"):
        RandomSampler(range(3), num_samples=0)
    with pytest.raises(TypeError, match="replacement should be a boolean"):
        RandomSampler(range(3), replacement=1)
    empty = TensorDataset(np.zeros((0, 2)))
    assert list(RandomSampler(empty)) == [] and list(DataLoader(empty, batch_size=2, shuffle=True)) == []


def test_weighted_random_sampler_frequencies():
    w = np.array([1.0, 2.0, 0.0, 7.0, 0.5])
    draws = 100_000
    sampler = WeightedRandomSampler(w, draws, generator=nurinet.Generator(3))
    idx = np.array(list(sampler))
    assert len(sampler) == len(idx) == draws
    counts = np.bincount(idx, minlength=len(w))
    p = w / w.sum()
    assert counts[2] == 0  # a zero weight is never drawn
    assert np.all(np.abs(counts - draws * p) <= 5 * np.sqrt(draws * p * (1 - p)))


def test_weighted_random_sampler_without_replacement_and_errors():
    once = list(WeightedRandomSampler([1, 5, 1, 0, 2], 4, replacement=False, generator=nurinet.Generator(4)))
    assert sorted(once) == [0, 1, 2, 4]  # distinct, and the zero weight left out
    with pytest.raises(ValueError, match="without replacement"):
        WeightedRandomSampler([1, 0, 1], 3, replacement=False)
    with pytest.raises(ValueError, match="non-negative"):
        WeightedRandomSampler([1, -1], 2)
    with pytest.raises(ValueError, match="sum to 0"):
        WeightedRandomSampler([0, 0], 2)
    with pytest.raises(ValueError, match="num_samples should be a positive integer"):
        WeightedRandomSampler([1, 1], 0)


def test_subset_random_sampler():
    sampler = SubsetRandomSampler([3, 9, 4, 7], generator=nurinet.Generator(0))
    orders = [list(sampler) for _ in range(20)]
    assert all(sorted(o) == [3, 4, 7, 9] for o in orders) and len(sampler) == 4
    assert len({tuple(o) for o in orders}) > 1  # a new order each epoch


def test_batch_sampler_lengths_and_contents():
    keep = BatchSampler(SequentialSampler(range(10)), batch_size=3, drop_last=False)
    drop = BatchSampler(range(10), batch_size=3, drop_last=True)
    assert list(keep) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]] and len(keep) == 4
    assert list(drop) == [[0, 1, 2], [3, 4, 5], [6, 7, 8]] and len(drop) == 3
    assert len(BatchSampler(range(9), 3, True)) == len(BatchSampler(range(9), 3, False)) == 3
    with pytest.raises(ValueError, match="batch_size should be a positive integer"):
        BatchSampler(range(4), 0, False)
    with pytest.raises(TypeError, match="drop_last should be a boolean"):
        BatchSampler(range(4), 2, 0)


def test_custom_sampler_subclass():
    class Evens(Sampler):
        def __init__(self, n):
            self.n = n

        def __iter__(self):
            return iter(range(0, self.n, 2))

        def __len__(self):
            return (self.n + 1) // 2

    loader = DataLoader(TensorDataset(np.arange(9)), batch_size=2, sampler=Evens(9))
    assert len(loader) == 3 and _values(b[0] for b in loader) == [[0, 2], [4, 6], [8]]


@pytest.mark.parametrize("n,batch_size,drop_last", [(10, 3, False), (10, 3, True), (9, 3, True), (1, 4, False),
                                                     (7, 7, True)])
def test_batch_structure_matches_torch(n, batch_size, drop_last):
    torch = _torch()
    tdata = torch.utils.data
    data = list(range(n))
    for ours_sampler, their_sampler in (
        (SequentialSampler(data), tdata.SequentialSampler(data)),
        (RandomSampler(data), tdata.RandomSampler(data)),
        (RandomSampler(data, replacement=True, num_samples=2 * n + 1),
         tdata.RandomSampler(data, replacement=True, num_samples=2 * n + 1)),
        (WeightedRandomSampler([1.0] * n, 3 * n), tdata.WeightedRandomSampler([1.0] * n, 3 * n)),
        (SubsetRandomSampler(data[::2]), tdata.SubsetRandomSampler(data[::2])),
    ):
        ours = BatchSampler(ours_sampler, batch_size, drop_last)
        theirs = tdata.BatchSampler(their_sampler, batch_size, drop_last)
        assert len(ours) == len(theirs)
        assert [len(b) for b in ours] == [len(b) for b in theirs]
        ours_loader = DataLoader(TensorDataset(np.arange(n)), batch_size=batch_size, drop_last=drop_last,
                                 sampler=ours_sampler)
        theirs_loader = tdata.DataLoader(data, batch_size=batch_size, drop_last=drop_last, sampler=their_sampler)
        assert len(ours_loader) == len(theirs_loader)
        assert [len(b[0]) for b in ours_loader] == [len(b) for b in theirs_loader]
    # Sequential order is deterministic: the batches themselves agree.
    ours = _values(b[0] for b in DataLoader(TensorDataset(np.arange(n)), batch_size, drop_last=drop_last))
    theirs = [b.tolist() for b in tdata.DataLoader(data, batch_size, drop_last=drop_last)]
    assert ours == theirs


# ----- DataLoader's sampler rules -------------------------------------------------------------------------
_CONFLICTS = [
    {"batch_sampler": [[0, 1]], "batch_size": 2},
    {"batch_sampler": [[0, 1]], "shuffle": True},
    {"batch_sampler": [[0, 1]], "sampler": [0, 1]},
    {"batch_sampler": [[0, 1]], "drop_last": True},
    {"sampler": [0, 1], "shuffle": True},
    {"batch_size": None, "drop_last": True},
    {"num_workers": -1},
    {"prefetch_factor": 2},
    {"persistent_workers": True},
    {"timeout": -1},
]


@pytest.mark.parametrize("kwargs", _CONFLICTS)
def test_loader_argument_errors(kwargs):
    with pytest.raises(ValueError):
        DataLoader(TensorDataset(np.arange(4)), **kwargs)


@pytest.mark.parametrize("kwargs", _CONFLICTS)
def test_loader_argument_errors_match_torch(kwargs):
    torch = _torch()
    with pytest.raises(ValueError):
        torch.utils.data.DataLoader(list(range(4)), **kwargs)


def test_loader_batch_sampler_and_unbatched():
    ds = TensorDataset(np.arange(10) * 10)
    loader = DataLoader(ds, batch_sampler=[[3, 1], [0], [9, 8, 7]])
    assert loader.batch_size is None and loader.drop_last is False and len(loader) == 3
    assert _values(b[0] for b in loader) == [[30, 10], [0], [90, 80, 70]]
    unbatched = list(DataLoader(Numbers(3), batch_size=None))
    assert [int(s[0].item() if hasattr(s[0], "item") else s[0]) for s in unbatched] == [0, 1, 2]
    arrays = list(DataLoader(TensorDataset(np.arange(6).reshape(3, 2)), batch_size=None))
    assert [a[0].shape for a in arrays] == [(2,)] * 3  # no batch axis
    assert len(DataLoader(ds, batch_size=None)) == 10


def test_loader_unbatched_matches_torch():
    torch = _torch()
    data = [np.arange(i, i + 2) for i in range(3)]
    theirs = list(torch.utils.data.DataLoader(data, batch_size=None))
    ours = list(DataLoader(data, batch_size=None))
    assert len(ours) == len(theirs) and [tuple(o.shape) for o in ours] == [tuple(t.shape) for t in theirs]


def test_loader_weighted_sampler_and_default_samplers():
    ds = TensorDataset(np.arange(4))
    loader = DataLoader(ds, batch_size=8, sampler=WeightedRandomSampler([0, 0, 1, 0], 16))
    assert len(loader) == 2 and all((b[0].array == 2).all() for b in loader)
    assert isinstance(DataLoader(ds).sampler, SequentialSampler)
    shuffled = DataLoader(ds, shuffle=True, generator=nurinet.Generator(0))
    assert isinstance(shuffled.sampler, RandomSampler) and shuffled.sampler.generator is shuffled.generator
    assert isinstance(shuffled.batch_sampler, BatchSampler)


def test_loader_fast_path_with_a_sampler():
    class Counting(TensorDataset):
        calls = 0

        def __getitem__(self, index):
            Counting.calls += 1
            return super().__getitem__(index)

    ds = Counting(np.arange(20) * 2, np.arange(20))
    batches = list(DataLoader(ds, batch_size=4, sampler=SubsetRandomSampler(range(0, 20, 3))))
    assert Counting.calls == 0  # still sliced as whole batches
    ys = np.concatenate([b[1].array for b in batches])
    assert sorted(ys.tolist()) == list(range(0, 20, 3))
    np.testing.assert_array_equal(np.concatenate([b[0].array for b in batches]), 2 * ys)


# ----- worker processes -----------------------------------------------------------------------------------
def test_workers_read_in_other_processes_in_order():
    loader = DataLoader(Numbers(64, delay=0.001), batch_size=8, num_workers=2)
    batches = list(loader)
    assert np.concatenate([b[0].array for b in batches]).tolist() == list(range(64))  # in order
    pids = {int(p) for b in batches for p in b[1].array}
    assert os.getpid() not in pids and len(pids) == 2
    assert {int(w) for b in batches for w in b[2].array} == {0, 1}
    single = list(DataLoader(Numbers(64), batch_size=8))
    assert {int(p) for b in single for p in b[1].array} == {os.getpid()}
    assert len(loader) == 8


def test_workers_give_the_same_batches_as_the_main_process():
    ds = TensorDataset(np.arange(30, dtype=np.float32).reshape(15, 2), np.arange(15))
    kwargs = {"batch_size": 4, "shuffle": True}
    ours = [(x.array, y.array) for x, y in DataLoader(ds, num_workers=2, generator=nurinet.Generator(7), **kwargs)]
    main = [(x.array, y.array) for x, y in DataLoader(ds, generator=nurinet.Generator(7), **kwargs)]
    assert len(ours) == len(main) == 4
    for (xo, yo), (xm, ym) in zip(ours, main, strict=True):  # same shuffled order, same batches
        np.testing.assert_array_equal(xo, xm)
        np.testing.assert_array_equal(yo, ym)
    assert sorted(np.concatenate([y for _, y in ours]).tolist()) == list(range(15))


def test_worker_exception_carries_its_traceback():
    loader = DataLoader(Numbers(20, fail_at=9), batch_size=4, num_workers=2)
    it = iter(loader)
    assert next(it)[0].array.tolist() == [0, 1, 2, 3] and next(it)[0].array.tolist() == [4, 5, 6, 7]
    with pytest.raises(ValueError) as err:
        next(it)
    message = str(err.value)
    assert "sample 9 is broken" in message and "in DataLoader worker process" in message
    assert "Original Traceback" in message and "__getitem__" in message
    assert not any(w.is_alive() for w in it._pool.workers)  # shut down after the error


def test_workers_stop_at_the_end_and_when_collected():
    it = iter(DataLoader(Numbers(12), batch_size=4, num_workers=2))
    workers = it._pool.workers
    assert all(w.is_alive() for w in workers)
    assert len(list(it)) == 3
    assert not any(w.is_alive() for w in workers)
    half = iter(DataLoader(Numbers(40), batch_size=2, num_workers=2))
    next(half)
    workers = half._pool.workers
    del half
    gc.collect()
    assert not any(w.is_alive() for w in workers)


def test_persistent_workers_are_kept_between_epochs():
    loader = DataLoader(Numbers(16), batch_size=4, num_workers=2, persistent_workers=True)
    first = {int(p) for b in loader for p in b[1].array}
    pool = loader._pool
    second = {int(p) for b in loader for p in b[1].array}
    assert first == second and len(first) == 2 and loader._pool is pool
    assert all(w.is_alive() for w in pool.workers)
    it = iter(loader)
    next(it)  # an epoch left half way does not disturb the next one
    assert np.concatenate([b[0].array for b in loader]).tolist() == list(range(16))
    workers = pool.workers
    del loader, it, pool
    gc.collect()
    assert not any(w.is_alive() for w in workers)


def test_worker_init_fn_seeds_and_pin_memory():
    marks = np.concatenate([b.array for b in DataLoader(InitMarked(), batch_size=2, num_workers=2,
                                                       worker_init_fn=_mark_init, pin_memory=True)])
    assert set(marks.tolist()) == {100, 101}
    draws = np.concatenate([b.array for b in DataLoader(Draws(), batch_size=1, num_workers=2,
                                                       generator=nurinet.Generator(0))])
    assert len(set(draws.tolist())) == 8  # each worker has its own random stream


def test_worker_collate_fn_and_prefetch():
    loader = DataLoader(Numbers(10), batch_size=3, num_workers=2, prefetch_factor=1, collate_fn=_first_items)
    assert list(loader) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]


def test_worker_timeout():
    loader = DataLoader(Numbers(4, delay=1.0), batch_size=1, num_workers=1, timeout=0.2)
    with pytest.raises(RuntimeError, match="timed out"):
        next(iter(loader))


def test_workers_with_spawn():
    loader = DataLoader(Numbers(6), batch_size=3, num_workers=1, multiprocessing_context="spawn")
    batches = list(loader)
    assert _values(b[0] for b in batches) == [[0, 1, 2], [3, 4, 5]]
    assert os.getpid() not in {int(p) for b in batches for p in b[1].array}


# ----- CSV files and pandas -------------------------------------------------------------------------------
def _write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_load_csv(tmp_path):
    path = _write(tmp_path, "a,b,label,c\n1,2.5,0,3\n4,5,1,6\n\n7,8,2,9\n")
    x, y = load_csv(path, target="label")
    assert x.dtype == np.float32 and x.tolist() == [[1, 2.5, 3], [4, 5, 6], [7, 8, 9]]
    assert y.dtype == np.int64 and y.tolist() == [0, 1, 2]  # whole numbers: class labels
    x, y = load_csv(path, target="c", features=["b", "a"])
    assert x.tolist() == [[2.5, 1], [5, 4], [8, 7]] and y.tolist() == [3, 6, 9]
    x, y = load_csv(path)  # the last column by default
    assert x.shape == (3, 3) and y.tolist() == [3, 6, 9]
    _, y = load_csv(path, target="b")
    assert y.dtype == np.float32 and y.tolist() == [2.5, 5, 8]
    x, y = load_csv(path, target=None, features=[0, -1])
    assert y is None and x.tolist() == [[1, 3], [4, 6], [7, 9]]
    x, y = load_csv(_write(tmp_path, "1;2\n3;4\n", "plain.csv"), target=0, header=False, delimiter=";")
    assert x.tolist() == [[2], [4]] and y.tolist() == [1, 3]


def test_load_csv_text_target_and_missing_values(tmp_path):
    path = _write(tmp_path, "x,species\n1,setosa\n2,virginica\n3,setosa\n")
    x, y = load_csv(path, target="species", target_classes=["setosa", "versicolor", "virginica"])
    assert y.dtype == np.int64 and y.tolist() == [0, 2, 0] and x.tolist() == [[1], [2], [3]]
    with pytest.raises(ValueError, match="not among target_classes"):
        load_csv(path, target="species", target_classes=["setosa"])
    holes = _write(tmp_path, "a,b\n1,\n2,3\n", "holes.csv")
    with pytest.raises(ValueError, match="column 'b' is empty in row 2"):
        load_csv(holes, target="a")
    x, _ = load_csv(holes, target="a", missing=float("nan"))
    assert np.isnan(x[0, 0]) and x[1, 0] == 3


def test_load_csv_errors(tmp_path):
    path = _write(tmp_path, "a,b,c\n1,2,3\n4,oops,6\n")
    with pytest.raises(KeyError, match="no column named 'd'.*'a', 'b', 'c'"):
        load_csv(path, target="d")
    with pytest.raises(KeyError, match="no column named 'z'"):
        load_csv(path, target="a", features=["z"])
    with pytest.raises(ValueError, match="column 'b' has the non-numeric value 'oops' in row 3"):
        load_csv(path, target="c")
    assert load_csv(path, target="c", features=["a"])[0].tolist() == [[1], [4]]  # leave the column out
    with pytest.raises(ValueError, match="row 3 .* has 2 fields"):
        load_csv(_write(tmp_path, "a,b,c\n1,2,3\n4,5\n", "ragged.csv"))
    with pytest.raises(ValueError, match="no data rows"):
        load_csv(_write(tmp_path, "a,b\n", "empty.csv"))
    with pytest.raises(KeyError, match="out of range"):
        load_csv(path, target=5)
    with pytest.raises(FileNotFoundError):
        load_csv(tmp_path / "missing.csv")


def test_to_array_leaves_other_data_alone():
    a = np.arange(3)
    assert to_array(a) is a and to_array([1, 2]) == [1, 2] and to_array(None) is None


def test_pandas_in_tensor_dataset():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [4, 5, 6]})
    target = pd.Series([0, 1, 0], name="y")
    ds = TensorDataset(df, target)
    np.testing.assert_array_equal(ds.tensors[0].array, df.to_numpy())
    assert ds.tensors[0].dtype == np.float64 and ds.tensors[1].dtype == np.int64
    nullable = pd.DataFrame({"a": pd.array([1, None, 3], dtype="Int64")})
    assert np.isnan(to_array(nullable)[1, 0])
    with pytest.raises(ValueError, match=r"columns \['name'\] hold values that are not numbers"):
        TensorDataset(pd.DataFrame({"name": ["x", "y"], "v": [1.0, 2.0]}))
    with pytest.raises(ValueError, match="Series 'y' holds values that are not numbers"):
        to_array(pd.Series(["a", "b"], name="y"))


def _regressor():
    from nurinet.training import Model

    nurinet.manual_seed(0)
    model = Model(nn.Linear(2, 1))
    model.compile("sgd", "mse")
    return model


def test_pandas_in_fit_evaluate_predict():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 2)).astype(np.float32)
    y = (x @ np.array([[1.5], [-2.0]], np.float32)).astype(np.float32)
    df, target = pd.DataFrame(x, columns=["p", "q"]), pd.DataFrame(y, columns=["t"])
    kwargs = {"epochs": 3, "batch_size": 8, "verbose": 0, "validation_split": 0.25}
    from_arrays = _regressor().fit(x, y, generator=nurinet.Generator(1), **kwargs).history
    model = _regressor()
    from_pandas = model.fit(df, target, generator=nurinet.Generator(1), **kwargs).history
    assert from_pandas == from_arrays
    np.testing.assert_allclose(model.predict(df), model.predict(x))
    assert model.evaluate(df, target) == model.evaluate(x, y)
    model.fit(df, target["t"].to_numpy()[:, None], epochs=1, verbose=0, validation_data=(df, target),
              sample_weight=pd.Series(np.ones(40)))


class PairStream(IterableDataset):
    """Rows ``(x, y)`` of a fixed linear problem, sharded across workers."""

    def __iter__(self):
        rng = np.random.default_rng(0)
        x = rng.normal(size=(32, 2)).astype(np.float32)
        y = x @ np.array([[1.0], [-1.0]], np.float32)
        info = get_worker_info()
        rows = range(32) if info is None else range(info.id, 32, info.num_workers)
        return ((x[i], y[i]) for i in rows)


def test_fit_takes_a_loader_with_workers_over_a_stream():
    history = _regressor().fit(DataLoader(PairStream(), batch_size=8, num_workers=2), epochs=3, verbose=0)
    losses = history.history["loss"]
    assert len(losses) == 3 and losses[-1] < losses[0]


class SlowStart(Dataset):
    """The first batch's samples are slow, so the second batch is ready first."""

    def __len__(self) -> int:
        return 12

    def __getitem__(self, i):
        if i < 4:
            time.sleep(0.05)
        return np.int64(i)


def test_workers_keep_the_order_when_a_later_batch_is_ready_first():
    batches = _values(DataLoader(SlowStart(), batch_size=4, num_workers=2))
    assert batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
