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
* Each op has a one-line lowercase wrapper in ``nurinet.functional``.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from nurinet.autograd import grad_mode
from nurinet.autograd.tensor import Tensor, as_tensor


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

    def __call__(self, *inputs: Any) -> Any:
        inputs = tuple(x if isinstance(x, Tensor) else as_tensor(x) for x in inputs)
        ys = self.forward(*[x.data for x in inputs])
        single = not isinstance(ys, tuple)
        if single:
            ys = (ys,)
        record = grad_mode._state.enabled and any(x.requires_grad for x in inputs)
        outputs = tuple(Tensor._wrap(_as_array(y), record) for y in ys)
        if record:
            self._connect(inputs, outputs)
        return outputs[0] if single else outputs

    def _connect(self, inputs: tuple[Tensor, ...], outputs: tuple[Tensor, ...]) -> None:
        """Link this node into the graph: strong refs to inputs, weak refs to outputs."""
        self.inputs = inputs
        self.needs_input_grad = tuple(x.requires_grad for x in inputs)
        self.generation = max(x.generation for x in inputs)
        self.outputs = tuple(weakref.ref(y) for y in outputs)
        self.output_meta = tuple((y.data.shape, y.data.dtype) for y in outputs)
        for index, y in enumerate(outputs):
            y.creator = self
            y.generation = self.generation + 1
            y.output_index = index

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


def _as_array(y: Any) -> Any:
    # NumPy reductions return scalars (np.float32), not 0-d arrays: keep everything an ndarray.
    if isinstance(y, np.generic):
        return np.asarray(y)
    return y
