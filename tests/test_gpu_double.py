"""nurinet's GPU code path, run on the CuPy double of tests/fake_cupy.py.

Every test here moves its data to ``"cuda"`` with nurinet's own API (``nurinet.tensor(...,
device="cuda")``, ``Module.to("cuda")``) and runs it on device arrays that refuse to become NumPy
arrays implicitly, as CuPy's do. A code path that hands a device array to NumPy (a fast path, a
reference formula, an ``np.`` call in an op) fails here, on a machine without a GPU.

With ``NURINET_TEST_REAL_CUPY=1`` on a machine with a GPU the same tests run on real CuPy.

Fast paths are forced (every size floor at its minimum, elementwise threads on) so that their
array checks are reached with device arrays: the C kernels, MKL and OpenBLAS must turn them away.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import nurinet
import nurinet.functional as F
from nurinet import Tensor, backend, models, nn
from nurinet._runtime.modes import forced
from nurinet.functional.recurrent import rnn_step
from nurinet.summary import summary
from tests.nn.harness import check_layer
from tests.op_db import OPS, OpSpec

DEVICE = "cuda"
IDS = [spec.name for spec in OPS]


@pytest.fixture(autouse=True)
def gpu(request: pytest.FixtureRequest) -> Any:
    """The array module behind ``"cuda"``: the double, or real CuPy when asked for and present."""
    if os.environ.get("NURINET_TEST_REAL_CUPY") == "1":
        if not backend.cupy_available():
            pytest.skip("NURINET_TEST_REAL_CUPY=1, but CuPy sees no GPU here")
        return backend.get_array_module(backend.to_device(np.zeros(1), DEVICE))
    return request.getfixturevalue("fake_cupy")


@pytest.fixture(autouse=True)
def fast_paths_forced() -> Iterator[None]:
    """Every fast path switched on at any size (the runtime's forced mode), so that small test arrays
    reach the array checks that must send device arrays away from NumPy."""
    with forced():
        yield


# ----- helpers -----------------------------------------------------------------------------------
def _outputs(result: Any) -> list[Tensor]:
    return list(result) if isinstance(result, (tuple, list)) else [result]


def _on_device(spec: OpSpec, arrays: list[np.ndarray], dtype: Any = np.float64, grad: bool = True) -> list[Tensor]:
    """The op's inputs as device tensors (leaves), in ``dtype``; those the spec names require a gradient."""
    wanted = spec.grad_inputs if spec.grad_inputs is not None else range(len(arrays))
    return [nurinet.tensor(a.astype(dtype), requires_grad=grad and i in wanted, device=DEVICE)
            for i, a in enumerate(arrays)]


def _on_cpu(spec: OpSpec, arrays: list[np.ndarray], dtype: Any = np.float64) -> list[Tensor]:
    wanted = spec.grad_inputs if spec.grad_inputs is not None else range(len(arrays))
    return [Tensor(a.astype(dtype), requires_grad=i in wanted) for i, a in enumerate(arrays)]


def _host(t: Tensor, what: str) -> np.ndarray:
    """The values of a tensor that must be on the device: a silent fall back to the host is a bug too."""
    assert t.device == backend.normalize_device(DEVICE), f"{what} is on {t.device}, not on the GPU"
    return t.numpy()


def _gradients(spec: OpSpec, inputs: list[Tensor], upstream: list[np.ndarray], device: str,
               create_graph: bool = False) -> list[Tensor | None]:
    """The gradients of the op's differentiable outputs, weighted by ``upstream``, w.r.t. its inputs."""
    outputs = [y for y in _outputs(spec.fn(*inputs)) if y.requires_grad]
    targets = [x for x in inputs if x.requires_grad]
    weights = [nurinet.tensor(v, device=device) for v in upstream]
    return list(nurinet.grad(outputs, targets, weights, create_graph=create_graph, allow_unused=True,
                             retain_graph=create_graph))


def _upstream(spec: OpSpec, arrays: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """One random weight per differentiable output (shapes found on the CPU)."""
    outputs = _outputs(spec.fn(*_on_cpu(spec, arrays)))
    return [rng.standard_normal(y.shape) for y in outputs if y.requires_grad]


def _evaluate(spec: OpSpec, arrays: list[np.ndarray], differentiable: list[int]) -> list[np.ndarray]:
    with nurinet.no_grad():
        outputs = _outputs(spec.fn(*_on_device(spec, arrays, grad=False)))
    return [_host(outputs[i], f"{spec.name} output {i}") for i in differentiable]


# ----- the double itself -------------------------------------------------------------------------
def test_the_double_behaves_as_cupy_where_it_matters(gpu: Any) -> None:
    x = nurinet.tensor([[1.0, 2.0], [3.0, 4.0]], device=DEVICE)
    assert backend.is_cupy_array(x.array) and x.xp is gpu and x.device == "cuda:0"
    assert gpu.get_array_module(x.array) is gpu and gpu.cuda.runtime.getDeviceCount() >= 1
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array is not allowed"):
        np.asarray(x.array)
    with pytest.raises(TypeError):
        gpu.add(x.array, np.ones(2, np.float32))  # a host operand in a kernel
    total = x.array.sum()
    assert backend.is_cupy_array(total) and total.shape == ()  # reductions stay on the device
    np.testing.assert_array_equal(gpu.asnumpy(x.array), [[1, 2], [3, 4]])
    assert x.to("cpu").device == "cpu" and isinstance(x.cpu().array, np.ndarray)
    assert backend.get_array_module(x) is gpu and backend.get_array_module(x.data) is gpu  # a Tensor
    assert x.data.device == "cuda:0" and x.data.array is x.array


def test_modules_and_parameters_move_to_the_device() -> None:
    layer = nn.Linear(3, 2).to(DEVICE)
    assert all(p.device == "cuda:0" for p in layer.parameters())
    assert all(isinstance(v, np.ndarray) for v in layer.state_dict().values())  # state_dict copies to host
    layer.to("cpu")
    assert all(isinstance(p.array, np.ndarray) for p in layer.parameters())


# ----- (1) the op registry -----------------------------------------------------------------------
@pytest.mark.parametrize("spec", OPS, ids=IDS)
def test_op_forward_on_device(spec: OpSpec) -> None:
    """Device inputs give device outputs equal to the NumPy reference."""
    arrays = spec.sample(np.random.default_rng(0))
    got = _outputs(spec.fn(*_on_device(spec, arrays, grad=False)))
    want = _outputs(spec.reference(*[a.copy() for a in arrays]))
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_allclose(_host(g, f"output {i}"), w, atol=spec.atol, rtol=1e-7)


@pytest.mark.parametrize("spec", OPS, ids=IDS)
def test_op_gradient_on_device(spec: OpSpec) -> None:
    """First-order gradients on the device: a directional finite-difference check, and the CPU's values."""
    rng = np.random.default_rng(1)
    arrays = spec.sample(rng)
    upstream = _upstream(spec, arrays, rng)
    if not upstream:
        pytest.skip("no differentiable output")
    inputs = _on_device(spec, arrays)
    grads = _gradients(spec, inputs, upstream, DEVICE)
    cpu_grads = _gradients(spec, _on_cpu(spec, arrays), upstream, "cpu")
    differentiable = [i for i, y in enumerate(_outputs(spec.fn(*_on_cpu(spec, arrays)))) if y.requires_grad]
    checked = [i for i, x in enumerate(inputs) if x.requires_grad]
    for k, (i, g, g_cpu) in enumerate(zip(checked, grads, cpu_grads)):
        analytic = np.zeros(arrays[i].shape) if g is None else _host(g, f"gradient of input {i}")
        expected = np.zeros(arrays[i].shape) if g_cpu is None else g_cpu.numpy()
        np.testing.assert_allclose(analytic, expected, rtol=1e-9, atol=1e-10,
                                   err_msg=f"input {i}: device and CPU gradients differ")
        u = rng.standard_normal(arrays[i].shape)
        u /= max(np.linalg.norm(u), 1e-12)
        step = spec.eps * u
        plus = _evaluate(spec, [a + step if j == i else a for j, a in enumerate(arrays)], differentiable)
        minus = _evaluate(spec, [a - step if j == i else a for j, a in enumerate(arrays)], differentiable)
        numeric = sum(float(np.sum(v * (p - m))) for v, p, m in zip(upstream, plus, minus)) / (2 * spec.eps)
        assert np.isclose(float(np.sum(analytic * u)), numeric, rtol=1e-4, atol=1e-5), \
            f"input {k}: analytic {np.sum(analytic * u)} vs numerical {numeric}"


@pytest.mark.parametrize("spec", [s for s in OPS if s.gradgrad], ids=[s.name for s in OPS if s.gradgrad])
def test_op_tensor_backward_on_device(spec: OpSpec) -> None:
    """The Tensor-mode backward (create_graph, as double backprop uses it) runs on the device too."""
    rng = np.random.default_rng(2)
    arrays = spec.sample(rng)
    upstream = _upstream(spec, arrays, rng)
    fast = _gradients(spec, _on_device(spec, arrays), upstream, DEVICE)
    slow = _gradients(spec, _on_device(spec, arrays), upstream, DEVICE, create_graph=True)
    for i, (f, s) in enumerate(zip(fast, slow)):
        assert (f is None) == (s is None)
        if f is not None:
            np.testing.assert_allclose(_host(s, f"gradient {i}"), _host(f, f"gradient {i}"), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("spec", OPS, ids=IDS)
def test_op_float32_on_device_matches_cpu(spec: OpSpec) -> None:
    """Float32, where the native kernels and threaded splits would take over on the CPU."""
    rng = np.random.default_rng(3)
    arrays = spec.sample(rng)
    upstream = [v.astype(np.float32) for v in _upstream(spec, arrays, rng)]
    dtype = None if "changes_dtype" in spec.tags else np.float32
    device_out = _outputs(spec.fn(*_on_device(spec, arrays, np.float32, grad=False)))
    cpu_out = _outputs(spec.fn(*_on_cpu(spec, arrays, np.float32)))
    for i, (d, c) in enumerate(zip(device_out, cpu_out)):
        assert dtype is None or d.dtype == c.dtype
        np.testing.assert_allclose(_host(d, f"output {i}"), c.numpy(), rtol=1e-5, atol=1e-5)
    if upstream:
        device_grads = _gradients(spec, _on_device(spec, arrays, np.float32), upstream, DEVICE)
        cpu_grads = _gradients(spec, _on_cpu(spec, arrays, np.float32), upstream, "cpu")
        for i, (d, c) in enumerate(zip(device_grads, cpu_grads)):
            if c is not None:
                assert d is not None and d.dtype == c.dtype
                np.testing.assert_allclose(_host(d, f"gradient {i}"), c.numpy(), rtol=1e-4, atol=1e-5)


# ----- (2) the layer harness ---------------------------------------------------------------------
N, T, I, H = 3, 5, 4, 6  # batch, steps, input width, hidden width (as tests/test_recurrent.py)
L, E = 5, 8  # attention: sequence length, embedding width


def _gated(gates: int, width: int) -> int:
    """The parameter count of one direction of one recurrent layer."""
    return gates * H * (width + H + 2)


def _mha(e: int) -> int:
    return 3 * e * e + 3 * e + e * e + e


def _floats(*shape: int, seed: int = 0) -> Tensor:
    return Tensor(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


LAYER_CASES = [  # name, make, input shape, output shape, parameter count, train/eval differ, inputs
    ("linear", lambda: nn.Linear(4, 3), (5, 4), (5, 3), 15, False, None),
    ("linear_tanh_float64", lambda: nn.Linear(4, 2, activation=F.tanh, dtype=np.float64), (3, 4), (3, 2), 10,
     False, None),
    ("maxout", lambda: nn.Maxout(4, 3, pieces=2), (5, 4), (5, 3), 2 * 15, False, None),
    ("mlp_with_dropout", lambda: nn.Sequential(nn.Linear(6, 8, activation=F.relu), nn.Dropout(0.3), nn.Linear(8, 2)),
     (4, 6), (4, 2), 6 * 8 + 8 + 8 * 2 + 2, True, None),
    ("conv2d", lambda: nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=1, groups=2), (2, 4, 7, 6), (2, 6, 4, 7),
     6 * 2 * 3 * 2 + 6, False, None),
    ("conv2d_stride1_large", lambda: nn.Conv2d(3, 8, 3, padding=1), (4, 3, 16, 16), (4, 8, 16, 16), 8 * 27 + 8,
     False, None),
    ("conv1d", lambda: nn.Conv1d(3, 5, 3, padding="same", dilation=2), (2, 3, 8), (2, 5, 8), 5 * 9 + 5, False, None),
    ("conv_transpose2d", lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2,
                                                    bias=False), (2, 4, 3, 4), (2, 6, 6, 8), 4 * 3 * 9, False, None),
    ("batch_norm1d", lambda: nn.BatchNorm1d(3), (5, 3, 4), (5, 3, 4), 6, True, None),
    ("batch_norm2d", lambda: nn.BatchNorm2d(4), (3, 4, 3, 3), (3, 4, 3, 3), 8, True, None),
    ("layer_norm", lambda: nn.LayerNorm((3, 4)), (2, 3, 4), (2, 3, 4), 24, False, None),
    ("group_norm", lambda: nn.GroupNorm(2, 4), (2, 4, 3, 3), (2, 4, 3, 3), 8, False, None),
    ("lstm_bidirectional", lambda: nn.LSTM(I, H, bidirectional=True), (N, T, I), (N, T, 2 * H),
     2 * _gated(4, I), False, None),
    ("gru_two_layers_dropout", lambda: nn.GRU(I, H, num_layers=2, dropout=0.3), (N, T, I), (N, T, H),
     _gated(3, I) + _gated(3, H), True, None),
    ("rnn_relu", lambda: nn.RNN(I, H, nonlinearity="relu"), (N, T, I), (N, T, H), _gated(1, I), False, None),
    ("lstm_cell", lambda: nn.LSTMCell(I, H), (N, I), (N, H), _gated(4, I), False, None),
    ("multihead_attention", lambda: nn.MultiheadAttention(E, 2), None, (2, L, E), _mha(E), False,
     lambda: [_floats(2, L, E)] * 3),
    ("transformer_encoder_layer", lambda: nn.TransformerEncoderLayer(E, 2, dim_feedforward=16, dropout=0.2),
     (2, L, E), (2, L, E), _mha(E) + (E * 16 + 16) + (16 * E + E) + 4 * E, True, None),
    ("embedding", lambda: nn.Embedding(8, 3), None, (2, 3, 3), 24, False,
     lambda: Tensor(np.array([[1, 4, 0], [7, 7, 2]]))),
    ("max_pool2d", lambda: nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True), (2, 3, 6, 7), (2, 3, 4, 4), 0,
     False, None),
    ("max_pool2d_disjoint", lambda: nn.MaxPool2d(2), (2, 3, 6, 8), (2, 3, 3, 4), 0, False, None),
    ("avg_pool2d", lambda: nn.AvgPool2d((2, 3), padding=(1, 1), count_include_pad=False), (2, 3, 6, 7),
     (2, 3, 4, 3), 0, False, None),
    ("adaptive_avg_pool2d", lambda: nn.AdaptiveAvgPool2d((3, 2)), (2, 3, 7, 5), (2, 3, 3, 2), 0, False, None),
    ("adaptive_max_pool2d", lambda: nn.AdaptiveMaxPool2d(2), (2, 3, 7, 5), (2, 3, 2, 2), 0, False, None),
    ("upsample_bilinear", lambda: nn.Upsample(scale_factor=2, mode="bilinear"), (2, 3, 4, 5), (2, 3, 8, 10), 0,
     False, None),
    ("dropout2d", lambda: nn.Dropout2d(0.5), (2, 8, 3, 3), (2, 8, 3, 3), 0, True, None),
    ("small_cnn", lambda: nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3),
                                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)),
     (3, 1, 8, 8), (3, 2), 4 * 9 + 4 + 4 * 4 * 9 + 4 + 4 * 2 + 2, False, None),
]


@pytest.mark.parametrize(("make", "shape", "out", "count", "differ", "inputs"), [c[1:] for c in LAYER_CASES],
                         ids=[c[0] for c in LAYER_CASES])
def test_layer_harness_on_device(make: Callable[[], nn.Module], shape: Any, out: tuple[int, ...], count: int,
                                 differ: bool, inputs: Callable[[], Any] | None) -> None:
    layer = make()
    check_layer(layer, shape, out, count, train_eval_differ=differ, inputs=None if inputs is None else inputs(),
                device=DEVICE)
    assert all(p.device == "cuda:0" for p in layer.parameters())


# ----- (3) one training step of each reference model ---------------------------------------------
def _device_tensor(array: np.ndarray) -> Tensor:
    return nurinet.tensor(array, device=DEVICE)


def _images(rng: np.random.Generator, *shape: int) -> Tensor:
    return _device_tensor(rng.uniform(-1.0, 1.0, shape).astype(np.float32))


def _labels(rng: np.random.Generator, high: int, *shape: int) -> Tensor:
    return _device_tensor(rng.integers(0, high, shape))


def _classifier_step(model: nn.Module, inputs: Callable[[np.random.Generator], tuple[Any, ...]],
                     classes: int) -> Tensor:
    """Forward, cross-entropy against random labels (on the device), for a model returning logits."""
    rng = np.random.default_rng(0)
    args = inputs(rng)
    logits = model(*args)
    logits = logits[0] if isinstance(logits, tuple) else logits
    return F.cross_entropy(logits.reshape(-1, classes), _labels(rng, classes, logits.numel() // classes))


def _tokens(rng: np.random.Generator, vocab: int, *shape: int) -> Tensor:
    return _device_tensor(rng.integers(1, vocab, shape))


def _reconstruction_loss(model: nn.Module, x: Tensor) -> Tensor:
    return F.mse_loss(model(x), x)


SEQ2SEQ_OPTIONS = {"d_model": 16, "nhead": 2, "num_encoder_layers": 1, "num_decoder_layers": 1,
                   "dim_feedforward": 32, "dropout": 0.1, "max_len": 16}

# name, model factory, loss of one forward pass (model -> scalar Tensor), optimizer factory.
SUPERVISED_MODELS = [
    ("lenet5", lambda: models.LeNet5(num_classes=4),
     lambda m: _classifier_step(m, lambda r: (_images(r, 2, 1, 28, 28),), 4)),
    ("mnist_cnn", lambda: models.MnistCNN(num_classes=3, in_channels=2, input_size=(12, 10)),
     lambda m: _classifier_step(m, lambda r: (_images(r, 2, 2, 12, 10),), 3)),
    ("small_vgg_batch_norm", lambda: models.SmallVGG(in_channels=1, input_size=16, widths=(8, 16), hidden=32,
                                                     batch_norm=True),
     lambda m: _classifier_step(m, lambda r: (_images(r, 2, 1, 16, 16),), 10)),
    ("transformer_classifier", lambda: models.TransformerClassifier(12, 3, d_model=16, nhead=2, num_layers=2,
                                                                    dim_feedforward=32),
     lambda m: _classifier_step(m, lambda r: (_device_tensor(np.array([[1, 2, 3, 0, 0], [4, 5, 6, 7, 8]])),), 3)),
    ("seq2seq_transformer", lambda: models.Seq2SeqTransformer(9, 11, **SEQ2SEQ_OPTIONS),
     lambda m: _classifier_step(m, lambda r: (_device_tensor(np.array([[3, 4, 5, 0], [6, 7, 8, 3]])),
                                              _tokens(r, 11, 2, 3)), 11)),
    ("sequence_classifier_lstm_lengths", lambda: models.SequenceClassifier("lstm", num_classes=3, input_size=4,
                                                                           hidden_size=5, bidirectional=True),
     lambda m: _classifier_step(m, lambda r: (_images(r, 2, 6, 4), np.array([6, 3])), 3)),
    ("sequence_classifier_gru_tokens", lambda: models.SequenceClassifier("gru", num_classes=2, vocab_size=7,
                                                                         embedding_dim=3, hidden_size=4,
                                                                         num_layers=2, pooling="mean"),
     lambda m: _classifier_step(m, lambda r: (_tokens(r, 7, 2, 5),), 2)),
    ("char_language_model", lambda: models.CharLanguageModel(6, 3, 4, kind="lstm"),
     lambda m: _classifier_step(m, lambda r: (_tokens(r, 6, 2, 5),), 6)),
    ("autoencoder_tied_denoising", lambda: models.Autoencoder([16, 8, 4], tied_weights=True, noise_std=0.1),
     lambda m: _reconstruction_loss(m, _images(np.random.default_rng(0), 4, 16))),
    ("siamese", lambda: models.SiameseNetwork(nn.Sequential(nn.Linear(6, 5, activation="relu"), nn.Linear(5, 3))),
     lambda m: F.contrastive_loss(m.distance(_images(np.random.default_rng(0), 4, 6),
                                             _images(np.random.default_rng(1), 4, 6)),
                                  _device_tensor(np.array([1.0, 0.0, 1.0, 0.0], np.float32)))),
]

OPTIMIZERS = {
    "adam": lambda params: nurinet.optim.Adam(params, lr=1e-3),
    "sgd_momentum": lambda params: nurinet.optim.SGD(params, lr=1e-2, momentum=0.9),
}


def _snapshot(model: nn.Module) -> list[np.ndarray]:
    return [p.numpy().copy() for p in model.parameters()]


def _assert_trained_on_device(model: nn.Module, before: list[np.ndarray]) -> None:
    params = list(model.parameters())
    assert all(p.device == "cuda:0" for p in params), "a parameter left the GPU"
    assert all(b.device == "cuda:0" for b in model.buffers() if b is not None), "a buffer left the GPU"
    changed = [not np.array_equal(p.numpy(), b) for p, b in zip(params, before)]
    assert any(changed), "the step changed no parameter"


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize(("make", "loss_of"), [c[1:] for c in SUPERVISED_MODELS], ids=[c[0] for c in SUPERVISED_MODELS])
def test_model_training_step_on_device(make: Callable[[], nn.Module], loss_of: Callable[[nn.Module], Tensor],
                                       optimizer: str) -> None:
    model = make().to(DEVICE).train()
    opt = OPTIMIZERS[optimizer](model.parameters())
    before = _snapshot(model)
    opt.zero_grad()
    loss = loss_of(model)
    assert loss.device == "cuda:0" and np.isfinite(loss.item())
    loss.backward()
    assert all(p.grad is None or p.grad.device == "cuda:0" for p in model.parameters())
    opt.step()
    _assert_trained_on_device(model, before)


def test_gan_training_step_on_device() -> None:
    gan = models.GAN(models.DCGANGenerator(16, 1, 8, 16), models.DCGANDiscriminator(1, 8, 16)).to(DEVICE)
    before = _snapshot(gan)
    logs = gan.train_step(_images(np.random.default_rng(0), 4, 1, 8, 8))
    assert all(np.isfinite(v) for v in logs.values())
    _assert_trained_on_device(gan, before)


def test_cyclegan_training_step_on_device() -> None:
    model = models.CycleGAN.default(width=4).to(DEVICE)
    before = _snapshot(model)
    rng = np.random.default_rng(0)
    logs = model.train_step(_images(rng, 2, 1, 8, 8), _images(rng, 2, 1, 8, 8))
    assert all(np.isfinite(v) for v in logs.values())
    _assert_trained_on_device(model, before)


def test_rbm_contrastive_divergence_step_on_device() -> None:
    rbm = models.RBM(6, 4).to(DEVICE)
    before = _snapshot(rbm)
    opt = nurinet.optim.SGD(rbm.parameters(), lr=0.05, momentum=0.5)
    error = rbm.contrastive_divergence(_device_tensor((np.random.default_rng(0).random((8, 6)) > 0.5)
                                                      .astype(np.float32)))
    opt.step()
    assert np.isfinite(error)
    _assert_trained_on_device(rbm, before)


def test_dbn_pretraining_epoch_on_device() -> None:
    dbn = models.DBN([6, 5, 3]).to(DEVICE)
    before = _snapshot(dbn)
    data = _device_tensor((np.random.default_rng(0).random((8, 6)) > 0.5).astype(np.float32))
    dbn.pretrain(data, epochs=1, batch_size=4)
    assert dbn(data).device == "cuda:0"
    _assert_trained_on_device(dbn, before)
    classifier = dbn.to_classifier(2)  # fine-tuning starts on the DBN's device
    assert classifier(data).device == "cuda:0"


# ----- moves between devices, and host data meeting device tensors -------------------------------
def test_to_device_is_differentiable_both_ways() -> None:
    """ToDevice, the one op the registry leaves out for want of a GPU."""
    x = nurinet.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    on_gpu = x.to(DEVICE)
    assert on_gpu.device == "cuda:0" and on_gpu.requires_grad
    (on_gpu * 2.0).cpu().sum().backward()
    assert x.grad.device == "cpu"
    np.testing.assert_array_equal(x.grad.numpy(), np.full((2, 3), 2.0))
    leaf = nurinet.tensor(np.ones(3), requires_grad=True, device=DEVICE)
    (leaf.cpu() ** 2).sum().backward()
    assert leaf.grad.device == "cuda:0"
    np.testing.assert_array_equal(leaf.grad.numpy(), [2.0, 2.0, 2.0])


def test_host_constants_follow_the_tensor_to_the_device() -> None:
    """NumPy operands, targets and masks beside a GPU tensor go to its device, as on the CPU they just work."""
    rng = np.random.default_rng(0)
    x = nurinet.tensor(rng.standard_normal((2, 3, 4)).astype(np.float32), device=DEVICE, requires_grad=True)
    target = np.zeros((2, 3, 4), np.float32)
    assert (x - target).device == "cuda:0" and (target * x).device == "cuda:0"
    assert F.mse_loss(x, target).device == "cuda:0"
    assert F.binary_cross_entropy_with_logits(x, target).device == "cuda:0"
    mask = np.tril(np.ones((3, 3), bool))
    assert F.scaled_dot_product_attention(x, x, x, mask).device == "cuda:0"
    attention = nn.MultiheadAttention(4, 2).to(DEVICE)
    padding = np.array([[False, False, True], [False, True, True]])
    assert attention(x, x, x, key_padding_mask=padding, attn_mask=~mask)[0].device == "cuda:0"
    step_mask = np.array([[1.0], [0.0]], np.float32)
    h = nurinet.zeros(2, 4, device=DEVICE)
    w = nurinet.tensor(rng.standard_normal((4, 4)).astype(np.float32), device=DEVICE)
    assert rnn_step(x[:, 0], h, w, mask=step_mask).device == "cuda:0"
    stats = np.zeros(3, np.float32), np.ones(3, np.float32)
    assert F.batch_norm(x, *stats, training=False).device == "cuda:0"


def test_model_helpers_work_on_a_device_model() -> None:
    rng = np.random.default_rng(0)
    layer = nn.Linear(4, 3).to(DEVICE)
    x = nurinet.tensor(rng.standard_normal((2, 4)).astype(np.float32), device=DEVICE)
    assert (layer(x).sum() + nn.regularization_loss(layer)).device == "cuda:0"
    assert "Linear" in str(summary(layer, (4,)))
    gan = models.GAN(models.DCGANGenerator(16, 1, 8, 16), models.DCGANDiscriminator(1, 8, 16)).to(DEVICE)
    history = gan.fit(rng.uniform(-1, 1, (4, 1, 8, 8)).astype(np.float32), epochs=1, batch_size=2)  # host images
    assert np.isfinite(history["d_loss"]).all() and gan.sample(2).device == "cuda:0"
    rbm = models.RBM(6, 4).to(DEVICE)
    errors = rbm.fit((rng.random((8, 6)) > 0.5).astype(np.float32), epochs=1, batch_size=4, persistent=True)
    assert np.isfinite(errors).all() and np.isfinite(rbm.log_likelihood(np.ones((2, 6), np.float32)))


# ----- the checker and the loops on the device ------------------------------------------------------
def test_gradcheck_takes_device_inputs() -> None:
    from nurinet.autograd.gradcheck import gradcheck, gradgradcheck

    x = nurinet.tensor(np.random.default_rng(0).standard_normal((3, 4)), requires_grad=True, device=DEVICE)
    assert gradcheck(F.exp, [x], mode="fast") and gradcheck(F.tanh, [x])
    assert gradgradcheck(F.tanh, [x], mode="fast")


def test_model_fit_trains_a_device_model_on_numpy_data() -> None:
    from nurinet.training import Model

    model = Model(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).to(DEVICE))
    model.compile("adam", "cross_entropy")
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((20, 4)).astype(np.float32), rng.integers(0, 3, 20)
    model.fit(x, y, batch_size=5, epochs=1, verbose=0, validation_data=(x, y))
    assert all(p.device == "cuda:0" for p in model.parameters())
    assert model.predict_proba(x).shape == (20, 3) and np.isfinite(model.evaluate(x, y)["loss"])
