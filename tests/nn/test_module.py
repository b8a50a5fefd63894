"""Module: registration, traversal, modes, freezing, state_dict, devices, dtypes, repr; containers."""

from __future__ import annotations

import numpy as np
import pytest

import nurinet
import nurinet.functional as F
from nurinet import Parameter, Tensor, backend, nn


class TwoLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(2, 3)
        self.scale = Parameter(np.ones(3, np.float32))
        self.register_buffer("steps", nurinet.zeros(()))
        self.register_buffer("cache", nurinet.zeros(2), persistent=False)
        self.out = nn.Linear(3, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(F.tanh(self.hidden(x)) * self.scale)


# ----- registration ------------------------------------------------------------------------------
def test_parameters_in_assignment_order_with_dotted_names() -> None:
    model = TwoLayer()
    names = [name for name, _ in model.named_parameters()]
    assert names == ["scale", "hidden.weight", "hidden.bias", "out.weight", "out.bias"]
    assert [id(p) for p in model.parameters()] == [id(p) for _, p in model.named_parameters()]
    assert [name for name, _ in model.named_parameters(recurse=False)] == ["scale"]
    assert model.num_parameters() == 3 + 2 * 3 + 3 + 3 + 1


def test_buffers_and_children() -> None:
    model = TwoLayer()
    assert [name for name, _ in model.named_buffers()] == ["steps", "cache"]
    assert all(not b.requires_grad for b in model.buffers())
    assert [name for name, _ in model.named_children()] == ["hidden", "out"]
    assert list(model.children()) == [model.hidden, model.out]
    assert [name for name, _ in model.named_modules()] == ["", "hidden", "out"]
    assert next(model.modules()) is model


def test_reassignment_moves_between_registries() -> None:
    model = TwoLayer()
    model.hidden = None  # a declared but absent submodule
    assert "hidden" not in dict(model.named_children())
    model.steps = nurinet.ones(())
    assert model.steps.item() == 1.0
    model.scale = None
    assert "scale" not in dict(model.named_parameters())
    model.scale = Parameter(np.zeros(3, np.float32))
    assert "scale" in dict(model.named_parameters())
    del model.scale
    assert "scale" not in dict(model.named_parameters())
    with pytest.raises(AttributeError, match="'TwoLayer' object has no attribute 'scale'"):
        _ = model.scale


def test_replacing_keeps_the_position() -> None:
    model = TwoLayer()
    model.hidden = nn.Linear(2, 3)
    model.scale = Parameter(np.zeros(3, np.float32))
    names = [name for name, _ in model.named_parameters()]
    assert names == ["scale", "hidden.weight", "hidden.bias", "out.weight", "out.bias"]


def test_plain_attributes_are_not_registered() -> None:
    model = TwoLayer()
    model.note = Tensor(np.ones(2))  # a plain Tensor attribute is neither parameter nor buffer
    model.layers = [nn.Linear(1, 1)]  # a plain list hides its modules: use ModuleList
    assert len(list(model.parameters())) == 5
    assert "note" not in model.state_dict()


def test_shared_parameter_and_module_counted_once() -> None:
    shared = nn.Linear(2, 2)
    model = nn.Sequential(shared, nn.Identity(), shared)
    assert len(list(model.parameters())) == 2
    assert len(list(model.modules())) == 3
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_registration_errors() -> None:
    model = TwoLayer()
    with pytest.raises(TypeError, match="wrap it as nurinet.Parameter"):
        model.scale = Tensor(np.ones(3, np.float32))
    with pytest.raises(TypeError, match="must be a Tensor"):
        model.register_buffer("b", np.zeros(2))
    with pytest.raises(KeyError, match="contain no '.'"):
        model.register_parameter("a.b", Parameter(np.zeros(1)))
    with pytest.raises(KeyError, match="already has an attribute"):
        model.register_buffer("forward", nurinet.zeros(1))
    with pytest.raises(TypeError, match="is not a Module"):
        model.add_module("x", F.tanh)
    with pytest.raises(TypeError, match="is not a Module"):
        model.out = "not a module"


def test_forgetting_super_init_is_explained() -> None:
    class Broken(nn.Module):
        def __init__(self) -> None:
            self.weight = Parameter(np.zeros(2))

    with pytest.raises(AttributeError, match=r"call super\(\).__init__\(\)"):
        Broken()


def test_forward_must_be_defined() -> None:
    with pytest.raises(NotImplementedError, match="does not define forward"):
        nn.Module()(1)


# ----- modes, freezing, gradients --------------------------------------------------------------
def test_train_eval_propagate_and_stay_per_module() -> None:
    generator, discriminator = TwoLayer(), TwoLayer()
    assert discriminator.eval() is discriminator
    assert all(not m.training for m in discriminator.modules())
    assert all(m.training for m in generator.modules())  # no global mode
    discriminator.hidden.train()
    assert discriminator.hidden.training and not discriminator.training
    with pytest.raises(TypeError, match="expects a bool"):
        generator.train("no")


def test_zero_grad_sets_none() -> None:
    model = TwoLayer()
    model(nurinet.randn(4, 2)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_freeze_with_requires_grad_() -> None:
    model = TwoLayer()
    model.hidden.requires_grad_(False)
    model(nurinet.randn(4, 2)).sum().backward()
    assert model.hidden.weight.grad is None and model.hidden.bias.grad is None
    assert model.out.weight.grad is not None
    assert model.num_parameters(trainable_only=True) == model.num_parameters() - 9
    model.requires_grad_()
    assert all(p.requires_grad for p in model.parameters())


def test_apply_visits_children_first() -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Linear(2, 2)))
    visited = []
    assert model.apply(lambda m: visited.append(type(m).__name__)) is model
    assert visited == ["Linear", "Linear", "Sequential", "Sequential"]

    def init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.constant_(m.weight, 0.5)

    model.apply(init_weights)
    assert np.all(model[1][0].weight.array == 0.5)


def test_deep_nesting_is_traversed_without_recursion() -> None:
    model: nn.Module = nn.Linear(1, 1)
    for _ in range(1500):
        model = nn.Sequential(model)
    assert len(list(model.parameters())) == 2
    assert len(model.state_dict()) == 2
    model.eval()
    assert not model.training


# ----- state_dict ------------------------------------------------------------------------------
def test_state_dict_keys_and_copies() -> None:
    model = TwoLayer()
    state = model.state_dict()
    # As in PyTorch: a module's own parameters, then its buffers, then each child's.
    assert list(state) == ["scale", "steps", "hidden.weight", "hidden.bias", "out.weight", "out.bias"]
    assert "cache" not in state  # non-persistent
    assert all(isinstance(v, np.ndarray) for v in state.values())
    state["scale"][:] = 7.0
    assert np.all(model.scale.array == 1.0)


def test_load_state_dict_round_trip_keeps_parameter_objects() -> None:
    source, target = TwoLayer(), TwoLayer()
    x = nurinet.randn(5, 2)
    weight = target.hidden.weight
    result = target.load_state_dict(source.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert target.hidden.weight is weight
    np.testing.assert_array_equal(target(x).array, source(x).array)


def test_load_state_dict_casts_to_the_tensor_dtype() -> None:
    model = nn.Linear(2, 2)
    state = {k: v.astype(np.float64) for k, v in model.state_dict().items()}
    model.load_state_dict(state)
    assert model.weight.dtype == np.float32


def test_strict_load_lists_every_problem_together() -> None:
    model = TwoLayer()
    state = model.state_dict()
    del state["out.bias"]
    state["extra.weight"] = np.zeros(2)
    state["hidden.weight"] = np.zeros((5, 2))
    with pytest.raises(RuntimeError) as info:
        model.load_state_dict(state)
    message = str(info.value)
    assert "missing keys" in message and "out.bias" in message
    assert "unexpected keys" in message and "extra.weight" in message
    assert "shape mismatches" in message and "hidden.weight: saved (5, 2), model (3, 2)" in message
    assert "TwoLayer" in message


def test_non_strict_load_reports_keys_but_rejects_shapes() -> None:
    model = TwoLayer()
    state = model.state_dict()
    del state["out.bias"]
    state["extra"] = np.zeros(1)
    result = model.load_state_dict(state, strict=False)
    assert result.missing_keys == ["out.bias"] and result.unexpected_keys == ["extra"]
    state["scale"] = np.zeros(4)
    with pytest.raises(RuntimeError, match=r"scale: saved \(4,\), model \(3,\)"):
        model.load_state_dict(state, strict=False)
    with pytest.raises(TypeError, match="expects a mapping"):
        model.load_state_dict([("scale", np.zeros(3))])


# ----- devices and dtypes ------------------------------------------------------------------------
def test_double_and_float_convert_parameters_and_buffers() -> None:
    model = TwoLayer()
    model(nurinet.randn(3, 2)).sum().backward()
    scale = model.scale
    assert model.double() is model
    assert all(p.dtype == np.float64 for p in model.parameters())
    assert all(p.grad.dtype == np.float64 for p in model.parameters())
    assert model.steps.dtype == np.float64 and model.scale is scale
    y = model(Tensor(np.ones((3, 2))))
    assert y.dtype == np.float64
    model.float()
    assert all(p.dtype == np.float32 for p in model.parameters())


def test_to_cpu_and_device_errors() -> None:
    model = TwoLayer()
    weight = model.hidden.weight
    assert model.to("cpu") is model and model.cpu() is model
    assert model.hidden.weight is weight and weight.device == "cpu"
    with pytest.raises(ValueError, match="unknown device"):
        model.to("tpu")
    if backend.cupy_available():
        model.to("cuda")
        assert all(p.device == "cuda:0" for p in model.parameters())
        assert all(b.device == "cuda:0" for b in model.buffers())
        y = model(nurinet.randn(4, 2, device="cuda"))
        assert y.device == "cuda:0"
        state = model.state_dict()
        assert all(isinstance(v, np.ndarray) for v in state.values())
        model.load_state_dict(state)
        assert model.hidden.weight.device == "cuda:0"
    else:
        with pytest.raises(backend.DeviceError, match="no CUDA GPU is usable"):
            model.to("cuda")
        assert weight.device == "cpu"


# ----- repr ------------------------------------------------------------------------------------
def test_repr_nests_like_pytorch() -> None:
    model = nn.Sequential(nn.Linear(2, 3), nn.Dropout(0.25), nn.Sequential(nn.Identity()))
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Linear(in_features=2, out_features=3, bias=True)\n"
        "  (1): Dropout(p=0.25)\n"
        "  (2): Sequential(\n"
        "    (0): Identity()\n"
        "  )\n"
        ")"
    )
    assert repr(nn.Sequential()) == "Sequential()"


def test_repr_uses_extra_repr_with_children() -> None:
    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(1, 1, bias=False)

        def extra_repr(self) -> str:
            return "width=1"

    assert repr(Block()) == "Block(\n  width=1\n  (fc): Linear(in_features=1, out_features=1, bias=False)\n)"


@pytest.mark.torch
def test_repr_and_state_dict_keys_match_pytorch() -> None:
    torch = pytest.importorskip("torch")
    ours = nn.Sequential(nn.Linear(2, 3), nn.Identity(), nn.Sequential(nn.Linear(3, 1), nn.Flatten(0)))
    theirs = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Identity(),
                                 torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Flatten(0)))
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]


# ----- containers --------------------------------------------------------------------------------
def test_sequential_indexing_and_editing() -> None:
    a, b, c = nn.Linear(2, 3), nn.Identity(), nn.Linear(3, 1)
    model = nn.Sequential(a, b)
    assert model.append(c) is model
    assert len(model) == 3 and list(model) == [a, b, c]
    assert model[0] is a and model[-1] is c
    assert list(model[1:]) == [b, c] and isinstance(model[1:], nn.Sequential)
    assert model(nurinet.randn(4, 2)).shape == (4, 1)
    del model[1]
    assert list(model.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias"]
    model.insert(1, nn.Identity())
    assert [type(m).__name__ for m in model] == ["Linear", "Identity", "Linear"]
    model[1] = nn.Flatten()
    assert isinstance(model[1], nn.Flatten)
    with pytest.raises(IndexError, match="index 3 is out of range for a Sequential of 3"):
        _ = model[3]
    with pytest.raises(TypeError, match="indices must be integers"):
        _ = model["0"]


def test_sequential_from_mapping_keeps_names() -> None:
    model = nn.Sequential({"fc": nn.Linear(2, 2), "act": nn.Identity()})
    assert list(model.state_dict()) == ["fc.weight", "fc.bias"]
    assert model.fc is model[0]
    assert list(dict(model[:1].named_children())) == ["fc"]


def test_sequential_names_the_failing_layer() -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.Identity(), nn.Linear(5, 2))
    with pytest.raises(ValueError, match=r"Sequential layer \[2\] \(Linear\).*in_features=5.*\(3, 8\)"):
        model(nurinet.randn(3, 4))
    named = nn.Sequential({"enc": nn.Linear(4, 8)})
    with pytest.raises(ValueError, match=r"layer \[0\] 'enc' \(Linear\)"):
        named(nurinet.randn(3, 5))


def test_module_list() -> None:
    layers = nn.ModuleList(nn.Linear(2, 2) for _ in range(2))
    layers += [nn.Linear(2, 1)]
    layers.append(nn.Identity())
    assert len(layers) == 4 and isinstance(layers[1:3], nn.ModuleList)
    assert list(layers.state_dict())[-2:] == ["2.weight", "2.bias"]
    del layers[0]
    assert next(iter(layers.state_dict())) == "0.weight" and len(layers) == 3
    with pytest.raises(NotImplementedError, match="iterate over it"):
        layers(nurinet.randn(1, 2))


def test_module_dict() -> None:
    heads = nn.ModuleDict({"a": nn.Linear(2, 1)})
    heads["b"] = nn.Linear(2, 3)
    heads.update([("c", nn.Identity())])
    assert list(heads) == ["a", "b", "c"] and "b" in heads and len(heads) == 3
    assert list(heads.state_dict()) == ["a.weight", "a.bias", "b.weight", "b.bias"]
    assert heads.pop("c").__class__ is nn.Identity
    del heads["a"]
    assert heads.keys() == ["b"] and heads.values()[0] is heads["b"]
    with pytest.raises(KeyError, match="has no module 'z'"):
        _ = heads["z"]
    with pytest.raises(NotImplementedError, match="look up its modules"):
        heads(1)
