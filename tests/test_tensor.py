"""Tensor: constructors and dtype rules, random generators, operators, indexing, conversions."""

from __future__ import annotations

import json

import numpy as np
import pytest

import nurinet
from nurinet import Parameter, Tensor


def leaf(values, dtype=np.float64) -> Tensor:
    return Tensor(np.asarray(values, dtype=dtype), requires_grad=True)


# ----- construction and dtype rules -----------------------------------------------------------


def test_tensor_copies_and_Tensor_shares() -> None:
    a = np.arange(3.0)
    copied, shared = nurinet.tensor(a), Tensor(a)
    a[0] = 100.0
    assert copied.array[0] == 0.0
    assert shared.array[0] == 100.0


@pytest.mark.parametrize(
    ("data", "dtype"),
    [
        (1.5, np.float32),
        ([1.0, 2.0], np.float32),
        ([1, 2.5], np.float32),
        ([[1, 2], [3, 4]], np.int64),
        (3, np.int64),
        ([True, False], np.bool_),
        (np.ones(2), np.float64),
        (np.ones(2, np.float32), np.float32),
        (np.ones(2, np.int32), np.int32),
        (np.float64(2.0), np.float64),
    ],
)
def test_dtype_rules(data, dtype) -> None:
    assert nurinet.tensor(data).dtype == dtype
    assert Tensor(data).dtype == dtype


def test_explicit_dtype_and_requires_grad() -> None:
    t = nurinet.tensor([1, 2], dtype="float64", requires_grad=True)
    assert t.dtype == np.float64 and t.requires_grad and t.is_leaf
    assert nurinet.tensor(np.ones(2), dtype=np.float32).dtype == np.float32


def test_zeros_ones_full() -> None:
    assert nurinet.zeros(2, 3).shape == (2, 3)
    assert nurinet.zeros((2, 3)).shape == (2, 3)
    assert nurinet.ones([4]).shape == (4,)
    assert nurinet.zeros(2).dtype == np.float32 and nurinet.ones(2).dtype == np.float32
    np.testing.assert_array_equal(nurinet.ones(2, 2, dtype="float64").array, np.ones((2, 2)))
    full = nurinet.full((2,), 3.5)
    assert full.dtype == np.float32
    np.testing.assert_array_equal(full.array, [3.5, 3.5])
    assert nurinet.full(3, 1).shape == (3,)
    assert nurinet.zeros(2, requires_grad=True).requires_grad


def test_arange_and_eye() -> None:
    assert nurinet.arange(5).dtype == np.int64
    np.testing.assert_array_equal(nurinet.arange(5).array, np.arange(5))
    steps = nurinet.arange(0, 1, 0.25)
    assert steps.dtype == np.float32
    np.testing.assert_allclose(steps.array, [0.0, 0.25, 0.5, 0.75])
    assert nurinet.arange(3.0).dtype == np.float32
    assert nurinet.arange(3, dtype="float64").dtype == np.float64
    np.testing.assert_array_equal(nurinet.eye(3).array, np.eye(3))
    assert nurinet.eye(3, 2).shape == (3, 2) and nurinet.eye(2).dtype == np.float32


def test_random_constructors() -> None:
    u = nurinet.rand(1000)
    assert u.dtype == np.float32 and 0.0 <= u.array.min() and u.array.max() < 1.0
    n = nurinet.randn(2000, dtype="float64")
    assert n.dtype == np.float64 and abs(n.array.mean()) < 0.1 and abs(n.array.std() - 1) < 0.1
    assert nurinet.randn(2, 3).shape == (2, 3)
    r = nurinet.randint(2, 5, (50,))
    assert r.dtype == np.int64 and r.array.min() >= 2 and r.array.max() < 5
    assert nurinet.randint(0, 3, 4).shape == (4,)


def test_like_constructors() -> None:
    x = nurinet.randn(2, 3, dtype="float64")
    for made in (nurinet.zeros_like(x), nurinet.ones_like(x), nurinet.full_like(x, 7.0),
                 nurinet.rand_like(x), nurinet.randn_like(x)):
        assert made.shape == (2, 3) and made.dtype == np.float64
    np.testing.assert_array_equal(nurinet.full_like(x, 7.0).array, np.full((2, 3), 7.0))
    np.testing.assert_array_equal(nurinet.zeros_like(x).array, 0.0)
    np.testing.assert_array_equal(nurinet.ones_like(x).array, 1.0)
    assert nurinet.ones_like(x, dtype="float32").dtype == np.float32
    assert nurinet.zeros_like(x, requires_grad=True).requires_grad


# ----- random generators -------------------------------------------------------------------------


def test_manual_seed_reproduces_draws() -> None:
    nurinet.manual_seed(7)
    first = (nurinet.randn(5).array, nurinet.rand(3).array, nurinet.randint(0, 100, 4).array)
    nurinet.manual_seed(7)
    second = (nurinet.randn(5).array, nurinet.rand(3).array, nurinet.randint(0, 100, 4).array)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    nurinet.manual_seed(8)
    assert not np.array_equal(nurinet.randn(5).array, first[0])


def test_manual_seed_rejects_non_integers() -> None:
    with pytest.raises(TypeError, match="integer seed"):
        nurinet.manual_seed(1.5)


def test_generator_is_reproducible_and_independent_of_the_default() -> None:
    g1, g2 = nurinet.Generator(3), nurinet.Generator(3)
    a = nurinet.randn(4, generator=g1)
    nurinet.randn(10)  # Draws from the default generator must not disturb g2.
    b = nurinet.randn(4, generator=g2)
    np.testing.assert_array_equal(a.array, b.array)


def test_generator_state_round_trip() -> None:
    g = nurinet.Generator(5)
    nurinet.rand(2, generator=g)
    state = json.loads(json.dumps(g.get_state()))  # Plain data, JSON-serializable.
    first = nurinet.rand(3, generator=g).array
    g.set_state(state)
    np.testing.assert_array_equal(nurinet.rand(3, generator=g).array, first)


# ----- operators ---------------------------------------------------------------------------------


def test_arithmetic_operators_and_reflected_forms() -> None:
    x = nurinet.tensor([1.0, 2.0, 4.0])
    v = x.array
    cases = {
        "add": (x + 1.0, v + 1), "radd": (1.0 + x, 1 + v),
        "sub": (x - 1.0, v - 1), "rsub": (2.0 - x, 2 - v),
        "mul": (x * 3.0, v * 3), "rmul": (3 * x, 3 * v),
        "div": (x / 2.0, v / 2), "rdiv": (1.0 / x, 1 / v),
        "pow": (x**2, v**2), "rpow": (2.0**x, 2.0**v),
        "neg": (-x, -v), "pos": (+x, v), "abs": (abs(-x), v),
        "matmul": (x @ x, v @ v),
    }
    for name, (got, want) in cases.items():
        assert isinstance(got, Tensor), name
        np.testing.assert_allclose(got.array, want, rtol=1e-6, err_msg=name)


@pytest.mark.parametrize("op", ["add", "sub", "mul", "truediv", "pow", "matmul"])
def test_ndarray_op_tensor_gives_a_tensor(op) -> None:
    import operator

    a = np.array([1.0, 2.0, 3.0])
    x = leaf([0.5, 1.5, 2.5])
    fn = getattr(operator, op)
    result = fn(a, x)
    assert isinstance(result, Tensor)
    np.testing.assert_allclose(result.array, fn(a, x.array))
    assert result.requires_grad


def test_python_scalars_keep_float32() -> None:
    x = nurinet.tensor([1.0, 2.0])
    for y in (x * 2.0, 2.0 * x, x + 1, x / 3.0, 1.0 - x, x**2.0, 2.0**x, x * True):
        assert y.dtype == np.float32


def test_numpy_scalars_do_not_promote_float32() -> None:
    # NumPy 2 would promote float32 with a float64 scalar; nurinet, like PyTorch, keeps float32.
    x = nurinet.tensor([1.0, 2.0])
    for y in (x + np.float64(1.0), np.float64(1.0) + x, x * np.float64(0.5), x - np.int64(1),
              x / np.float64(2.0), np.float64(3.0) - x, x ** np.float64(2.0),
              nurinet.F.maximum(x, np.float64(1.5)), x < np.float64(1.5)):
        assert y.dtype in (np.float32, np.bool_)
        assert y.dtype != np.float64
    np.testing.assert_allclose((x + np.float64(1.0)).array, [2.0, 3.0])


def test_numpy_scalar_ops_keep_float32_gradients() -> None:
    x = leaf([1.0, 2.0], np.float32)
    (x * np.float64(3.0) + np.float64(1.0)).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.array, [3.0, 3.0])


def test_float64_tensor_keeps_float64_with_scalars() -> None:
    x = nurinet.tensor(np.array([1.0, 2.0]))
    assert (x * 2.0).dtype == np.float64
    assert (x + np.float32(1.0)).dtype == np.float64


def test_integer_tensors_and_floats() -> None:
    i = nurinet.arange(4)
    assert (i + 1).dtype == np.int64
    assert (i * 2).dtype == np.int64
    assert (i + 1.5).dtype == np.float32
    assert (i * np.float64(0.5)).dtype == np.float32
    assert (i / 2).dtype == np.float32
    np.testing.assert_allclose((i / 2).array, [0.0, 0.5, 1.0, 1.5])
    assert (i / nurinet.arange(1, 5)).dtype == np.float32
    assert (i**2).dtype == np.int64
    assert (i**0.5).dtype == np.float32
    np.testing.assert_allclose((2.5**i).array, 2.5 ** np.arange(4), rtol=1e-6)
    w = nurinet.tensor([0.5, 0.5, 0.5, 0.5])
    assert (i * w).dtype == np.float32  # Not NumPy's float64 for int64 * float32.


def test_mixed_float_tensors_take_the_common_type() -> None:
    a, b = nurinet.tensor([1.0]), nurinet.tensor(np.array([1.0]))
    assert (a + b).dtype == np.float64
    assert (a + np.ones(1)).dtype == np.float64  # An array keeps its dtype, as a tensor does.


def test_gradient_flows_through_a_mixed_dtype_op_in_each_dtype() -> None:
    a, b = leaf([1.0, 2.0], np.float32), leaf([3.0, 4.0])
    (a * b).sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64
    np.testing.assert_allclose(a.grad.array, [3.0, 4.0])


def test_comparisons_give_bool_tensors_without_graph() -> None:
    x = leaf([1.0, 2.0, 3.0])
    results = {
        "eq": (x == 2.0, [False, True, False]), "ne": (x != 2.0, [True, False, True]),
        "lt": (x < 2.0, [True, False, False]), "le": (x <= 2.0, [True, True, False]),
        "gt": (x > 2.0, [False, False, True]), "ge": (x >= 2.0, [False, True, True]),
        "reflected": (2.0 < x, [False, False, True]),
        "tensor": (x > Tensor(np.array([0.0, 5.0, 1.0])), [True, False, True]),
    }
    for name, (got, want) in results.items():
        assert isinstance(got, Tensor) and got.dtype == np.bool_, name
        assert not got.requires_grad and got.creator is None, name
        np.testing.assert_array_equal(got.array, want, err_msg=name)


def test_any_and_all() -> None:
    x = nurinet.tensor([0.0, 1.0])
    assert bool((x > 0.5).any()) and not bool((x > 0.5).all())


# ----- indexing ----------------------------------------------------------------------------------


def test_getitem_variants() -> None:
    a = np.arange(12.0).reshape(3, 4)
    x = Tensor(a)
    for index in (0, -1, (1, 2), slice(1, None), (slice(None), 1), (Ellipsis, None, 0),
                  [0, 2, 0], np.array([True, False, True]), (np.array([0, 2]), np.array([1, 3]))):
        np.testing.assert_array_equal(x[index].array, a[index])
    np.testing.assert_array_equal(x[nurinet.tensor([2, 0])].array, a[[2, 0]])
    np.testing.assert_array_equal(x[x > 6.0].array, a[a > 6.0])


def test_getitem_out_of_range_names_the_shape() -> None:
    with pytest.raises(IndexError, match=r"shape \(3, 4\)"):
        Tensor(np.zeros((3, 4)))[5]


def test_getitem_gradient_accumulates_repeated_indices() -> None:
    x = leaf([1.0, 2.0, 3.0])
    x[[0, 0, 2, 0]].sum().backward()
    np.testing.assert_array_equal(x.grad.array, [3.0, 0.0, 1.0])


def test_setitem_on_a_plain_tensor() -> None:
    x = nurinet.zeros(2, 3)
    x[0, 1] = 5.0
    x[1] = nurinet.tensor([1.0, 2.0, 3.0])
    x[x > 2.5] = -1.0
    np.testing.assert_array_equal(x.array, [[0, -1, 0], [1, 2, -1]])


def test_setitem_on_a_tensor_that_requires_grad() -> None:
    w = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"in-place assignment.*requires a gradient.*no_grad"):
        w[0] = 5.0
    with nurinet.no_grad():
        w[0] = 5.0  # Parameter updates happen this way.
    np.testing.assert_array_equal(w.array, [5.0, 2.0])
    assert w.requires_grad


# ----- conversions -------------------------------------------------------------------------------


def test_python_conversions() -> None:
    x = nurinet.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert len(x) == 2
    assert x.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert x.numpy() is x.array and isinstance(x.numpy(), np.ndarray)
    assert np.asarray(x).shape == (2, 2)
    s = nurinet.tensor(2.5)
    assert s.item() == 2.5 and isinstance(s.item(), float)
    assert float(s) == 2.5 and int(nurinet.tensor(3)) == 3
    assert isinstance(nurinet.tensor(3).item(), int)
    assert bool(nurinet.tensor([1.0])) and not bool(nurinet.tensor(0.0))
    assert [10, 20, 30][nurinet.tensor(1)] == 20  # __index__
    assert x.shape == (2, 2) and x.ndim == 2 and x.size() == (2, 2) and x.size(1) == 2 and x.numel() == 4 and x.dim() == 2


def test_conversion_errors() -> None:
    with pytest.raises(ValueError, match=r"one element.*shape \(2,\)"):
        nurinet.tensor([1.0, 2.0]).item()
    with pytest.raises(TypeError, match="0-d"):
        len(nurinet.tensor(1.0))
    with pytest.raises(ValueError, match="ambiguous"):
        bool(nurinet.tensor([1.0, 2.0]))
    with pytest.raises(TypeError, match="integer tensors"):
        [1, 2][nurinet.tensor(1.0)]


def test_repr() -> None:
    assert repr(nurinet.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert "dtype=float64" in repr(Tensor(np.ones(2)))
    assert "requires_grad=True" in repr(leaf([1.0]))
    assert "grad_fn=<MulScalar>" in repr(leaf([1.0]) * 2.0)
    assert "grad_fn=<Mul>" in repr(leaf([1.0]) * leaf([2.0]))
    assert "name='w'" in repr(Tensor(np.ones(1), name="w"))
    assert repr(Parameter(np.ones(1, np.float32))).startswith("Parameter containing:\ntensor(")


def test_parameter_requires_grad_by_default() -> None:
    p = Parameter(np.zeros(2, np.float32))
    assert p.requires_grad and p.is_leaf and isinstance(p, Tensor)


def test_astype_float_double() -> None:
    x = nurinet.tensor([1.5, 2.5])
    assert x.double().dtype == np.float64
    assert x.double().float().dtype == np.float32
    assert x.astype("float64").dtype == np.float64
    assert x.astype(np.int32).dtype == np.int32
    assert x.astype("float32") is x


def test_astype_gradient_is_cast_back() -> None:
    x = leaf([1.0, 2.0], np.float32)
    y = x.double()
    assert y.requires_grad
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.array, [2.0, 4.0])
    assert not x.astype("int64").requires_grad


def test_detach_shares_data_outside_the_graph() -> None:
    x = leaf([1.0, 2.0])
    y = x * 2.0
    d = y.detach()
    assert not d.requires_grad and d.creator is None and d.array is y.array


def test_requires_grad_() -> None:
    t = nurinet.zeros(2)
    assert t.requires_grad_() is t and t.requires_grad
    t.requires_grad_(False)
    assert not t.requires_grad


# ----- shape methods -------------------------------------------------------------------------------


def test_transpose_properties() -> None:
    a = np.arange(24.0).reshape(2, 3, 4)
    x = Tensor(a)
    np.testing.assert_array_equal(Tensor(a[0]).T.array, a[0].T)
    assert x.T.shape == (4, 3, 2)
    assert x.mT.shape == (2, 4, 3)
    assert x.transpose(1, 0).shape == (3, 2, 4)  # PyTorch's: swap two axes
    assert x.transpose(0, 2).shape == (4, 3, 2)
    assert Tensor(a[0]).transpose(0, 1).shape == (4, 3)
    assert x.permute().shape == (4, 3, 2)  # no dims: reversed, as NumPy's transpose
    assert x.permute(2, 0, 1).shape == (4, 2, 3)
    assert x.swapaxes(0, 2).shape == (4, 3, 2)


def test_reshape_and_view_variants() -> None:
    a = np.arange(12.0)
    x = Tensor(a)
    for shape_args, want in [((3, 4), (3, 4)), (((3, 4),), (3, 4)), (([2, 6],), (2, 6)),
                             ((-1, 3), (4, 3)), ((-1,), (12,)), ((2, -1, 2), (2, 3, 2))]:
        assert x.reshape(*shape_args).shape == want
        assert x.view(*shape_args).shape == want
    np.testing.assert_array_equal(x.reshape(3, 4).array, a.reshape(3, 4))
    y = x.reshape(3, 4)
    assert y.flatten().shape == (12,)
    assert y.unsqueeze(0).shape == (1, 3, 4) and y.unsqueeze(-1).shape == (3, 4, 1)
    assert y.unsqueeze(1).squeeze().shape == (3, 4)
    assert y.unsqueeze(1).squeeze(1).shape == (3, 4)


def test_reshape_errors() -> None:
    x = Tensor(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"shape \(2, 3\) \(6 elements\) into \(4, 2\)"):
        x.reshape(4, 2)
    with pytest.raises(ValueError, match="axis 1 has length 3"):
        x.squeeze(1)


def test_reshape_gradient() -> None:
    x = leaf(np.arange(6.0))
    (x.reshape(2, 3) * Tensor(np.arange(6.0).reshape(2, 3))).sum().backward()
    np.testing.assert_array_equal(x.grad.array, np.arange(6.0))


def test_setitem_of_a_tensor_needing_grad_is_refused() -> None:
    w = nurinet.tensor([1.0, 2.0], requires_grad=True)
    target = nurinet.zeros(3)
    with pytest.raises(RuntimeError, match="drop its gradient"):
        target[0:2] = w * 2.0
    target[0:2] = (w * 2.0).detach()
    np.testing.assert_array_equal(target.numpy(), [2.0, 4.0, 0.0])


def test_retain_grad_on_a_tensor_without_grad_is_refused() -> None:
    with pytest.raises(RuntimeError, match="does not require a gradient"):
        nurinet.ones(2).retain_grad()
