"""The op base class: a ``Function`` instance is both a graph node and its backward context.

The op contract (see docs/autograd.md):

* ``forward(self, *arrays)`` receives raw arrays (NumPy or CuPy) and returns an
  array or a tuple of arrays. It may keep on ``self`` whatever backward needs.
* ``backward(self, *grads)`` receives one gradient Tensor per output and returns
  one gradient per input (a Tensor, or ``None`` for an input that needs none),
  written with differentiable Tensor ops so that gradients of gradients work.
  It may return a gradient in the *broadcast* shape of the output: the engine
  sums it back to the input's shape, once, centrally.
* ``self.inputs`` holds the input Tensors, ``self.needs_input_grad`` says which
  of them need a gradient, and ``self.output(i)`` gives an output Tensor.
* Optionally, a hot op also defines ``backward_arrays(self, *grad_arrays)``:
  the same gradients computed on raw arrays. The engine uses it for a plain
  ``backward()`` (no ``create_graph``), where no gradient of the gradient is
  needed, and skips making a Tensor and a node for every step of the gradient
  arithmetic. ``backward`` stays the definition: a registry test checks the two
  agree for every op that has both.
* Each op has a one-line lowercase wrapper in ``nurinet.functional``.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from nurinet._runtime import settings
from nurinet.autograd import compiled, grad_mode
from nurinet.autograd.tensor import Tensor, as_tensor
from nurinet.autograd.versions import CLOCK

_grad_state = grad_mode._state  # one thread-local object for the life of the process
_wrap = Tensor._wrap


class Function:
    """Base class of every differentiable op.

    Subclasses implement :meth:`forward` on arrays and :meth:`backward` with
    Tensor ops; an instance is called once, on Tensors, and records itself as
    the ``creator`` of its outputs when any input requires a gradient.
    """

    inputs: tuple[Tensor, ...] | None = ()
    outputs: tuple[weakref.ref, ...] = ()
    generation = 0
    needs_input_grad: tuple[bool, ...] = ()
    # Version bookkeeping (nurinet.autograd.versions): the clock when the op ran, and whether one of
    # its outputs has been changed in place since.
    recorded_at = -1
    outputs_modified = False

    backward_arrays: Any = None  # Optional array fast path of backward (see module docstring).

    def __call__(self, *inputs: Any) -> Any:
        for x in inputs:
            if not isinstance(x, Tensor):
                inputs = tuple(as_tensor(v) for v in inputs)
                break
        count = len(inputs)
        # Spelled out for up to three inputs: a list built per call to unpack costs more than the op.
        if count == 1:
            a = inputs[0]
            ys = self.forward(a.array)
            needs: tuple[bool, ...] = (a._requires_grad,)
        elif count == 2:
            a, b = inputs
            ys = self.forward(a.array, b.array)
            needs = (a._requires_grad, b._requires_grad)
        elif count == 3:
            a, b, c = inputs
            ys = self.forward(a.array, b.array, c.array)
            needs = (a._requires_grad, b._requires_grad, c._requires_grad)
        else:
            ys = self.forward(*[x.array for x in inputs])
            needs = tuple([x._requires_grad for x in inputs])
        if True in needs and _grad_state.enabled:
            if type(ys) is not np.ndarray:
                return self._record(inputs, needs, ys)
            # _record's common case, one array output, without its branches.
            generation = self._link(inputs, needs)
            y = _wrap(ys, True)
            y.creator = self
            y.generation = generation + 1
            self.outputs = (weakref.ref(y),)
            return y
        return _unrecorded(ys)

    def _link(self, inputs: tuple[Tensor, ...], needs: tuple[bool, ...]) -> int:
        """Keep the inputs and what backward needs to know of them; returns their highest generation."""
        generation = 0
        for x in inputs:
            if x.generation > generation:  # noqa: PLR1730 - a plain comparison beats max() here
                generation = x.generation
        self.inputs = inputs
        self.recorded_at = CLOCK.ticks  # what the version check compares with (autograd.versions)
        self.needs_input_grad = needs
        self.generation = generation
        return generation

    def _record(self, inputs: tuple[Tensor, ...], needs: tuple[bool, ...], ys: Any) -> Any:
        """Link this node into the graph: strong refs to inputs, weak refs to outputs."""
        generation = self._link(inputs, needs)
        if type(ys) is not tuple:
            y = _wrap(ys if type(ys) is np.ndarray else _as_array(ys), True)
            y.creator, y.generation = self, generation + 1
            self.outputs = (weakref.ref(y),)
            return y
        outputs = tuple(_wrap(_as_array(y), True) for y in ys)
        # Kept so a missing output gradient can be filled with zeros of the right kind.
        self.output_meta = tuple((y.array.shape, y.array.dtype) for y in outputs)
        for index, y in enumerate(outputs):
            y.creator, y.generation, y.output_index = self, generation + 1, index
        self.outputs = tuple(weakref.ref(y) for y in outputs)
        return outputs

    def forward(self, *xs: Any) -> Any:
        """Compute the outputs from raw arrays."""
        raise NotImplementedError(f"{type(self).__name__} does not define forward")

    def backward(self, *gys: Tensor) -> Any:
        """Return the gradient of each input from the gradients of the outputs."""
        raise NotImplementedError(
            f"{type(self).__name__} does not define backward: it is not differentiable"
        )

    def output(self, index: int = 0) -> Tensor:
        """Output ``index`` as a Tensor (alive for as long as backward may run)."""
        y = self.outputs[index]()
        if y is None:
            raise RuntimeError(
                f"{type(self).__name__}: output {index} was freed before its backward ran"
            )
        return y

    def release(self) -> None:
        """Drop the references that keep the graph alive (after a backward)."""
        self.inputs = None

    @property
    def name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        return f"<{self.name} generation={self.generation}>"


def _unrecorded(ys: Any) -> Any:
    """The outputs of a call that records nothing, as Tensors (what ``Function.__call__`` returns)."""
    if type(ys) is tuple:
        return tuple(_wrap(_as_array(y), False) for y in ys)
    return _wrap(ys if type(ys) is np.ndarray else _as_array(ys), False)


def _as_array(y: Any) -> Any:
    # NumPy reductions return scalars (np.float32), not 0-d arrays: keep everything an ndarray.
    if isinstance(y, np.generic):
        return np.asarray(y)
    return y


# Function.__call__ runs in C where the engine's extension builds (nurinet.autograd.compiled): the
# method above is its definition, and what the C code hands anything uncommon back to. The first call
# chooses, so importing nurinet builds nothing.
_python_call = Function.__call__


def _first_call(self: Function, *inputs: Any, **keywords: Any) -> Any:
    """``Function.__call__`` until the first op runs: chooses the C or the Python version, then calls."""
    compiled.engine_module(active_only=False)  # a first load chooses, through the on_switch listener
    if Function.__dict__["__call__"] is _first_call:
        _choose_call()
    return _python_call(self, *inputs, **keywords)


def _choose_call() -> None:
    """Point ``Function.__call__`` at the C version where the extension is loaded (or can be built now),
    else at the Python one; :mod:`nurinet.autograd.compiled` calls this again when that changes."""
    module = compiled.engine_module(active_only=False)
    if module is None:
        Function.__call__ = _python_call
        return
    Function.__call__ = module.configure_call(Function, _grad_state, _python_call, Function._record, _unrecorded,
                                              vars(settings))


Function.__call__ = _first_call
compiled.on_switch(_choose_call)
