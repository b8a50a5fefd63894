"""The engine's compiled parts (native/engine.c): used by default where they build, and the same results.

tests/test_engine.py, test_engine_fast_paths.py and test_version_counter.py run every case with
both the C and the Python engine (``conftest.engine_loop``); these tests check that the C parts are
what runs by default, and compare the two on whole training steps.
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import numpy as np
import pytest

import nurinet as nt
import nurinet.functional as F
from nurinet import Function, Tensor, nn
from nurinet._runtime import extension, settings
from nurinet._runtime.modes import reference_only
from nurinet.autograd import compiled, engine, function

needs_extension = pytest.mark.skipif(extension.load("engine") is None,
                                     reason=f"no compiled engine here: {extension.reason('engine')}")


class _Identity(Function):
    """``x * 1`` with both backward forms."""

    def forward(self, a):
        return a * 1.0

    def backward(self, gy):
        return gy

    def backward_arrays(self, gy):
        return gy


def _python_call_ran(run) -> bool:
    """Whether ``run()`` entered the Python ``Function.__call__`` (seen by a profile hook: the C one
    makes no Python frame)."""
    seen = []

    def hook(frame, event, arg):
        if event == "call" and frame.f_code is function._python_call.__code__:
            seen.append(1)

    sys.setprofile(hook)
    try:
        run()
    finally:
        sys.setprofile(None)
    return bool(seen)


def _uses_c_call() -> bool:
    return type(Function.__dict__["__call__"]).__name__ == "method_descriptor"


def _step_results(seed: int = 0) -> list[np.ndarray]:
    """Gradients and output of a small network with a branch, a shared weight and a hook-free graph."""
    rng = np.random.default_rng(seed)
    x = Tensor(rng.standard_normal((5, 4)), requires_grad=True)
    w = Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    b = Tensor(rng.standard_normal(3), requires_grad=True)
    h = F.tanh(F.linear(x, w, b))
    y = F.sigmoid(F.linear(h, w[:, :3], None)) + h * 2.0  # w used twice: gradients summed at a leaf
    loss = F.mse_loss(y, Tensor(np.zeros((5, 3))))
    loss.backward()
    return [loss.array, x.grad.array, w.grad.array, b.grad.array]


@needs_extension
def test_the_compiled_parts_run_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    _step_results()  # the first op chooses Function.__call__
    assert _uses_c_call() and not _python_call_ran(_step_results)

    def python_loop(self: object) -> None:
        raise AssertionError("the Python node loop ran although the compiled one is available")

    monkeypatch.setattr(engine._Pass, "drain_arrays", python_loop)
    _step_results()


@needs_extension
def test_python_and_compiled_engines_agree() -> None:
    _step_results()
    assert _uses_c_call()
    ours = _step_results()
    old = compiled.use_compiled(False)
    try:
        assert Function.__dict__["__call__"] is function._python_call
        theirs = _step_results()
    finally:
        compiled.use_compiled(old)
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a, b)


@needs_extension
def test_native_code_switched_off_runs_the_python_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    _step_results()
    calls = []
    original = engine._Pass.drain_arrays
    monkeypatch.setattr(engine._Pass, "drain_arrays", lambda self: calls.append(1) or original(self))
    with reference_only():
        assert _python_call_ran(_step_results)  # the C __call__ reads the switch and hands over
    assert calls, "native code off must run the Python node loop"
    assert not _python_call_ran(_step_results)  # and back in C once it is on again


@needs_extension
def test_where_the_extension_cannot_be_built_the_python_engine_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    original = engine._Pass.drain_arrays
    monkeypatch.setattr(engine._Pass, "drain_arrays", lambda self: calls.append(1) or original(self))
    saved = compiled._state["module"]
    compiled._state["module"] = None  # as after a failed build
    try:
        compiled.use_compiled(True)
        assert Function.__dict__["__call__"] is function._python_call
        ours = _step_results()
        assert calls
    finally:
        compiled._state["module"] = saved
        compiled.use_compiled(True)
    assert _uses_c_call()
    for a, b in zip(ours, _step_results()):
        np.testing.assert_array_equal(a, b)


@needs_extension
def test_native_code_off_from_the_start_then_on(fresh_python) -> None:
    done = fresh_python(
        "import os; os.environ['NURINET_NATIVE'] = '0'\n"
        "import numpy as np, nurinet as nt, nurinet.functional as F\n"
        "from nurinet.autograd import function\n"
        "from nurinet._runtime import native\n"
        "x = nt.tensor(np.ones(3), requires_grad=True)\n"
        "F.tanh(x).sum().backward()\n"
        "assert function.Function.__dict__['__call__'] is function._python_call\n"
        "native.set_enabled(True)\n"
        "F.tanh(x).sum().backward()  # the first backward with native code on loads the extension\n"
        "print(type(function.Function.__dict__['__call__']).__name__)\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "method_descriptor"


@needs_extension
def test_a_training_loop_neither_leaks_nor_keeps_the_graph() -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    opt = nt.optim.SGD(model.parameters(), lr=0.1)
    x, y = nt.tensor(np.ones((6, 4), np.float32)), nt.tensor(np.zeros((6, 1), np.float32))
    refs = [sys.getrefcount(p) for p in model.parameters()]
    for _ in range(50):
        opt.zero_grad()
        F.mse_loss(model(x), y).backward()
        opt.step()
    gc.collect()
    counted = len(gc.get_objects())
    for _ in range(200):
        opt.zero_grad()
        F.mse_loss(model(x), y).backward()
        opt.step()
    gc.collect()
    assert [sys.getrefcount(p) for p in model.parameters()] == refs
    assert len(gc.get_objects()) <= counted + 10


@needs_extension
def test_errors_raised_inside_the_compiled_parts_propagate() -> None:
    class Fails(Function):
        def forward(self, x):
            raise ValueError("forward failed")

    class FailsBackward(_Identity):
        def backward_arrays(self, gy):
            raise ValueError("backward failed")

    x = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ValueError, match="forward failed"):
        Fails()(x)
    with pytest.raises(ValueError, match="backward failed"):
        FailsBackward()(x).sum().backward()


@needs_extension
def test_non_tensor_inputs_and_unrecorded_calls_take_the_python_rules() -> None:
    class Add(Function):
        def forward(self, a, b):
            return a + b

        def backward(self, gy):
            return gy, gy

    out = Add()(Tensor(np.ones(2), requires_grad=True), 2.0)  # a float: converted as Python's __call__ does
    assert out.requires_grad and np.array_equal(out.array, [3.0, 3.0])
    with nt.no_grad():
        quiet = Add()(Tensor(np.ones(2), requires_grad=True), Tensor(np.ones(2)))
    assert not quiet.requires_grad and quiet.creator is None

    class Scalar(Function):
        def forward(self, a):
            return np.float64(a.sum())  # a NumPy scalar becomes a 0-d array

    assert Scalar()(Tensor(np.ones(3))).array.shape == ()


@needs_extension
def test_a_tensor_subclass_that_overrides_a_slot_is_served_through_it() -> None:
    slot = Tensor.__dict__["grad"]

    class Recording(Tensor):
        __slots__ = ("sets",)

        @property
        def grad(self):
            return slot.__get__(self)

        @grad.setter
        def grad(self, value):
            self.sets = getattr(self, "sets", 0) + 1
            slot.__set__(self, value)

    w = Recording(np.ones(3), requires_grad=True)
    assert w.sets == 1  # __init__
    (F.tanh(w) * 2.0).sum().backward()
    assert w.sets == 2 and w.grad is not None
    np.testing.assert_allclose(w.grad.array, 2.0 / np.cosh(1.0) ** 2)


# ----- the C parts follow the Python code in its corners (each test runs with both engines) ---------------
@pytest.mark.usefixtures("engine_loop")
def test_recording_is_decided_after_forward() -> None:
    x = Tensor(np.ones(3))

    class Enables(Function):  # a forward that switches on the gradient of the tensor it was given
        def forward(self, a):
            x.requires_grad = True
            return a * 2.0

        def backward(self, gy):
            return gy * 2.0

    y = Enables()(x)
    assert y.requires_grad and isinstance(y.creator, Enables)
    assert y.creator.needs_input_grad == (True,)


@pytest.mark.usefixtures("engine_loop")
def test_an_op_that_overrides_link_or_record_is_called_through_them() -> None:
    calls = []

    class Linked(_Identity):
        def _link(self, inputs, needs):
            calls.append("_link")
            return super()._link(inputs, needs)

    class Recorded(_Identity):
        def forward(self, a):
            return a.sum()  # a NumPy scalar: the output goes through _record

        def _record(self, inputs, needs, ys):
            calls.append("_record")
            return super()._record(inputs, needs, ys)

    x = Tensor(np.ones(3), requires_grad=True)
    Linked()(x)
    Recorded()(x)
    assert calls == ["_link", "_record"]


@pytest.mark.usefixtures("engine_loop")
def test_keyword_arguments_get_python_s_error() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'foo'"):
        _Identity()(Tensor(np.ones(3), requires_grad=True), foo=1)


@pytest.mark.usefixtures("engine_loop")
def test_a_node_whose_inputs_are_a_list_still_back_propagates() -> None:
    x = Tensor(np.ones(3), requires_grad=True)
    y = _Identity()(x)
    y.creator.inputs = list(y.creator.inputs)
    F.exp(y).sum().backward()
    np.testing.assert_allclose(x.grad.array, np.e)


@pytest.mark.usefixtures("engine_loop")
def test_a_node_s_gradient_is_freed_once_its_backward_has_run() -> None:
    import weakref

    seen: dict[str, object] = {}

    class Watching(np.ndarray):
        def __add__(self, other):  # in forward, then while the node's second gradient is routed to the leaf
            if "gy" in seen:
                seen["alive while routing"] = seen["gy"]() is not None
            return np.add(np.asarray(self), np.asarray(other)).view(Watching)

    class Twice(Function):
        def forward(self, a, b):
            return a + b

        def backward(self, gy):
            return gy, gy

        def backward_arrays(self, gy):
            seen["gy"] = weakref.ref(gy)
            return np.array(gy).view(Watching), np.array(gy).view(Watching)

    x = Tensor(np.ones(3), requires_grad=True)
    x.array = x.array.view(Watching)
    F.exp(Twice()(x, x)).backward(Tensor(np.ones(3)))
    assert seen["alive while routing"] is False


# ----- building the extension (nurinet._runtime.extension) ------------------------------------------------
@pytest.fixture
def fresh_extensions(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The extension loader with nothing loaded yet, building into an empty cache folder (the engine in
    use keeps its own module: only the loader's memory of it is cleared here)."""
    monkeypatch.setenv("NURINET_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(settings, "NATIVE", True)  # also under NURINET_NATIVE=0
    monkeypatch.setattr(extension, "_modules", {})
    monkeypatch.setattr(extension, "_reasons", {})
    return tmp_path


def test_a_missing_compiler_gives_none_and_a_reason(fresh_extensions, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC", "no-such-compiler-for-nurinet")
    assert extension.load("engine") is None
    assert "no-such-compiler-for-nurinet" in extension.reason("engine")
    assert list(fresh_extensions.iterdir()) == []


def test_a_failing_compiler_leaves_no_file(fresh_extensions, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC", "false")  # on PATH, exits 1
    assert extension.load("engine") is None
    assert "failed" in extension.reason("engine")
    assert list(fresh_extensions.iterdir()) == []


def test_a_python_without_headers_gives_a_reason(fresh_extensions, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    import sysconfig

    paths = dict(sysconfig.get_paths(), include=str(tmp_path / "no-headers"))
    monkeypatch.setattr(sysconfig, "get_paths", lambda *args, **kwargs: paths)
    assert extension.load("engine") is None
    assert "python3-dev" in extension.reason("engine")


def test_switched_off_native_code_builds_nothing(fresh_extensions) -> None:
    with reference_only():
        assert extension.load("engine") is None
        assert "disabled" in extension.reason("engine")
    assert list(fresh_extensions.iterdir()) == []


@needs_extension
def test_the_build_is_cached_and_whole(fresh_extensions, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    module = extension.load("engine")
    assert module is not None and hasattr(module, "drain") and hasattr(module, "configure_call")
    built = list(fresh_extensions.iterdir())
    assert len(built) == 1 and built[0].name.startswith("engine-")  # no temporary file left
    stamp = os.stat(built[0]).st_mtime_ns
    monkeypatch.setattr(extension, "_modules", {})
    assert extension.load("engine") is not None  # from the cache, not rebuilt
    assert os.stat(built[0]).st_mtime_ns == stamp and list(fresh_extensions.iterdir()) == built
