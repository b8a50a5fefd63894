"""Tests of the sequence models (nurinet.models.sequence, nurinet.models.seq2seq) and of the
quick modes of their examples (on tiny synthetic data; nothing under /work/shared is read)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import nurinet as nt
from nurinet.data import write_idx
from nurinet.models import (
    CharLanguageModel,
    CharVocab,
    Seq2SeqTransformer,
    SequenceClassifier,
    TransformerClassifier,
)
from tests.nn.harness import check_layer

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _lstm_params(inputs: int, hidden: int, directions: int = 1) -> int:
    return directions * (4 * hidden * (inputs + hidden) + 8 * hidden)


# ----- SequenceClassifier ------------------------------------------------------------------
def test_classifier_features_harness() -> None:
    model = SequenceClassifier("lstm", num_classes=3, input_size=4, hidden_size=5)
    check_layer(model, (2, 6, 4), (2, 3), _lstm_params(4, 5) + 5 * 3 + 3)


def test_classifier_tokens_bidirectional_gru_harness() -> None:
    model = SequenceClassifier("gru", num_classes=2, vocab_size=7, embedding_dim=3, hidden_size=4,
                               bidirectional=True, pooling="mean", padding_idx=0)
    gru = 2 * (3 * 4 * (3 + 4) + 6 * 4)
    ids = nt.tensor(np.array([[1, 2, 3, 4], [5, 6, 1, 2]], np.int64))
    check_layer(model, None, (2, 2), 7 * 3 + gru + 8 * 2 + 2, inputs=ids)


def test_classifier_two_layers_rnn_shapes() -> None:
    model = SequenceClassifier("rnn", num_classes=4, input_size=3, hidden_size=6, num_layers=2)
    assert model(np.zeros((5, 7, 3), np.float32)).shape == (5, 4)
    assert sum(p.numel() for p in model.parameters()) == (6 * 3 + 36 + 12) + (36 + 36 + 12) + 6 * 4 + 4


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_classifier_with_lengths_ignores_padding(kind: str, pooling: str, rng: np.random.Generator) -> None:
    model = SequenceClassifier(kind, num_classes=3, input_size=4, hidden_size=5, num_layers=2,
                               bidirectional=True, pooling=pooling).eval()
    lengths = np.array([6, 2, 4])
    x = rng.standard_normal((3, 6, 4)).astype(np.float32)
    scores = model(x, lengths=lengths).numpy()
    garbage = x.copy()
    garbage[np.arange(6)[None, :] >= lengths[:, None]] = 1e3  # junk in the padded steps
    np.testing.assert_allclose(model(garbage, lengths=lengths).numpy(), scores, rtol=1e-5, atol=1e-5)
    for i, n in enumerate(lengths):  # each sequence alone, unpadded
        np.testing.assert_allclose(model(x[i:i + 1, :n]).numpy()[0], scores[i], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_classifier_learns_a_sign_task(kind: str) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 5, 2)).astype(np.float32)
    y = (x[:, :, 0].sum(1) > 0).astype(np.int64)
    model = SequenceClassifier(kind, num_classes=2, input_size=2, hidden_size=8, generator=nt.Generator(0))
    opt = nt.optim.Adam(model.parameters(), lr=0.05)
    first = None
    for _ in range(40):
        loss = nt.F.cross_entropy(model(x), nt.tensor(y))
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first


def test_classifier_errors() -> None:
    with pytest.raises(ValueError, match="kind must be one of"):
        SequenceClassifier("transformer", input_size=3)
    with pytest.raises(ValueError, match="exactly one of input_size"):
        SequenceClassifier("lstm", input_size=3, vocab_size=5, embedding_dim=2)
    with pytest.raises(ValueError, match="exactly one of input_size"):
        SequenceClassifier("lstm")
    with pytest.raises(ValueError, match="need embedding_dim"):
        SequenceClassifier("lstm", vocab_size=5)
    with pytest.raises(ValueError, match="pooling must be"):
        SequenceClassifier("lstm", input_size=3, pooling="max")
    tokens = SequenceClassifier("lstm", vocab_size=5, embedding_dim=2)
    with pytest.raises(ValueError, match=r"token ids must be in 0\.\.4"):
        tokens(np.array([[1, 5]]))
    with pytest.raises(ValueError, match=r"integer token ids of shape \(N, T\)"):
        tokens(np.zeros((2, 3), np.float32))


# ----- CharVocab and CharLanguageModel ---------------------------------------------------------
def test_char_vocab_round_trip_and_errors() -> None:
    vocab = CharVocab("hello world")
    assert len(vocab) == 8 and vocab.chars[0] == " "
    ids = vocab.encode("low")
    assert ids.dtype == np.int64 and vocab.decode(ids) == "low"
    with pytest.raises(ValueError, match="not in the vocabulary: \\['z'\\]"):
        vocab.encode("hz")
    with pytest.raises(ValueError, match=r"ids must be in 0\.\.7"):
        vocab.decode([8])
    with pytest.raises(ValueError, match="non-empty string"):
        CharVocab("")


def test_char_lm_shapes_and_harness() -> None:
    model = CharLanguageModel(vocab_size=6, embedding_dim=3, hidden_size=4, kind="lstm")
    ids = nt.tensor(np.array([[0, 1, 2], [3, 4, 5]], np.int64))
    logits, (h, c) = model(ids)
    assert logits.shape == (2, 3, 6) and h.shape == c.shape == (1, 2, 4)
    check_layer(model, None, (2, 3, 6), 6 * 3 + _lstm_params(3, 4) + 4 * 6 + 6, inputs=ids)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_generate_is_reproducible_and_has_the_requested_length(kind: str) -> None:
    vocab = CharVocab("abcdefg ")
    model = CharLanguageModel(len(vocab), 4, 8, kind=kind, generator=nt.Generator(1))
    a = model.generate("ab", 25, 1.0, nt.Generator(7), vocab=vocab)
    b = model.generate("ab", 25, 1.0, nt.Generator(7), vocab=vocab)
    assert isinstance(a, str) and len(a) == 25 and a == b and set(a) <= set(vocab.chars)
    ids = model.generate([0, 1], 10, 0.8, nt.Generator(3))
    assert ids.shape == (10,) and ids.dtype == np.int64
    assert len(model.generate([0], 0)) == 0
    greedy = model.generate([2], 12, 0.0)
    np.testing.assert_array_equal(greedy, model.generate([2], 12, 0.0, nt.Generator(99)))


def test_generate_continues_the_state() -> None:
    """Sampling step by step must match the scores of the whole sequence run at once."""
    model = CharLanguageModel(5, 3, 6, kind="gru", generator=nt.Generator(2))
    out = model.generate([1, 2], 6, 0.0)
    full = np.concatenate([[1, 2], out])
    logits, _ = model.eval()(full[None])
    np.testing.assert_array_equal(logits.numpy()[0, 1:-1].argmax(-1), out)


def test_char_lm_learns_a_periodic_text() -> None:
    """After a few dozen steps on "abcd" repeated, greedy sampling continues the cycle."""
    text = "abcd" * 60
    vocab = CharVocab(text)
    ids = vocab.encode(text)
    model = CharLanguageModel(len(vocab), 4, 16, kind="lstm", generator=nt.Generator(0))
    opt = nt.optim.Adam(model.parameters(), lr=0.05)
    x, y = ids[:-1].reshape(1, -1)[:, :48], ids[1:].reshape(1, -1)[:, :48]
    for _ in range(40):
        logits, _ = model(np.repeat(x, 4, axis=0))
        loss = nt.F.cross_entropy(logits.reshape(-1, len(vocab)), nt.tensor(np.repeat(y, 4, axis=0).reshape(-1)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1
    assert model.generate("ab", 10, 0.0, vocab=vocab) == "cdabcdabcd"


def test_generate_errors() -> None:
    model = CharLanguageModel(4, 2, 3)
    with pytest.raises(ValueError, match="needs vocab="):
        model.generate("ab", 3)
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        model.generate([1], 3, -1.0)
    with pytest.raises(ValueError, match="at least one character"):
        model.generate([], 3)
    with pytest.raises(ValueError, match="length must be a non-negative integer"):
        model.generate([1], -2)


# ----- Seq2SeqTransformer ------------------------------------------------------------------
def _seq2seq(**kwargs) -> Seq2SeqTransformer:
    options = {"d_model": 16, "nhead": 2, "num_encoder_layers": 1, "num_decoder_layers": 1,
               "dim_feedforward": 32, "dropout": 0.0, "max_len": 16, "generator": nt.Generator(0)}
    return Seq2SeqTransformer(9, 11, **(options | kwargs))


def test_seq2seq_shapes_and_harness() -> None:
    model = _seq2seq()
    src = nt.tensor(np.array([[3, 4, 5, 0], [6, 7, 8, 3]], np.int64))
    tgt = nt.tensor(np.array([[1, 5, 4], [1, 3, 0]], np.int64))
    d, ff = 16, 32
    attention = 3 * d * d + 3 * d + d * d + d
    feed_forward = d * ff + ff + ff * d + d
    encoder = attention + feed_forward + 2 * 2 * d
    decoder = 2 * attention + feed_forward + 3 * 2 * d
    count = 9 * d + 11 * d + encoder + decoder + 2 * 2 * d + d * 11 + 11
    # A fresh model rather than a perturbed copy: the positional table is a non-persistent buffer.
    check_layer(model, None, (2, 3, 11), count, inputs=(src, tgt),
                make_fresh=lambda: _seq2seq(generator=nt.Generator(5)))


def test_seq2seq_target_is_causal_and_padding_is_ignored(rng: np.random.Generator) -> None:
    model = _seq2seq().eval()
    src = rng.integers(3, 9, (2, 5))
    tgt = rng.integers(3, 11, (2, 4))
    out = model(src, tgt).numpy()
    changed = tgt.copy()
    changed[:, 3] = 1  # a later target token must not change earlier positions
    np.testing.assert_allclose(model(src, changed).numpy()[:, :3], out[:, :3], rtol=1e-5, atol=1e-5)
    padded = np.concatenate([src, np.zeros((2, 3), np.int64)], axis=1)  # source padding is masked out
    np.testing.assert_allclose(model(padded, tgt).numpy(), out, rtol=1e-4, atol=1e-5)


def test_greedy_decode_stops_at_eos() -> None:
    model = _seq2seq()
    src = np.array([[3, 4, 5], [6, 7, 8]])
    model.generator_head.bias.array[2] = 100.0  # EOS (2) wins at every step
    out = model.greedy_decode(src, 10, bos=1, eos=2)
    np.testing.assert_array_equal(out, [[2], [2]])
    model.generator_head.bias.array[2] = 0.0
    model.generator_head.bias.array[5] = 100.0  # never EOS: runs to max_len
    assert model.greedy_decode(src, 7, bos=1, eos=2).shape == (2, 7)
    assert model.training  # the mode is restored


def test_greedy_decode_pads_after_eos() -> None:
    model = _seq2seq()
    script = {1: [5, 6], 2: [2, 7], 3: [4, 2], 4: [3, 3]}  # step -> argmax of each sequence; EOS = 2

    def scripted(tgt, memory, padding=None):
        step = np.asarray(tgt).shape[1]
        scores = np.zeros((2, step, 11), np.float32)
        scores[[0, 1], -1, script[step]] = 1.0
        return nt.tensor(scores)

    model.decode = scripted
    out = model.greedy_decode(np.array([[3, 4], [5, 6]]), 10, bos=1, eos=2)
    # Sequence 0 ends at step 2, then holds padding (0); decoding stops when sequence 1 ends at step 3.
    np.testing.assert_array_equal(out, [[5, 2, 0], [6, 7, 2]])


def test_seq2seq_learns_to_copy() -> None:
    rng = np.random.default_rng(0)
    model = _seq2seq(d_model=32, dim_feedforward=64)
    opt = nt.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(100):
        src = rng.integers(3, 9, (32, 4))
        tgt = np.concatenate([np.ones((32, 1), np.int64), src, np.full((32, 1), 2)], axis=1)
        logits = model(src, tgt[:, :-1])
        loss = nt.F.cross_entropy(logits.reshape(-1, 11), nt.tensor(tgt[:, 1:].reshape(-1)))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.25 * np.mean(losses[:3]), losses
    src = rng.integers(3, 9, (50, 4))
    copied = (model.greedy_decode(src, 5, bos=1, eos=2)[:, :4] == src).all(axis=1).mean()
    assert copied > 0.25  # chance is 6 ** -4


def test_seq2seq_errors() -> None:
    model = _seq2seq()
    with pytest.raises(ValueError, match=r"src must be integer token ids of shape \(N, length\)"):
        model(np.zeros((2, 3), np.float32), np.ones((2, 2), np.int64))
    with pytest.raises(ValueError, match="more than max_len=16"):
        model(np.ones((1, 17), np.int64), np.ones((1, 2), np.int64))
    with pytest.raises(ValueError, match=r"tgt ids must be in 0\.\.10"):
        model(np.ones((1, 3), np.int64), np.full((1, 2), 11))
    with pytest.raises(ValueError, match=r"max_len must be in 1\.\.15"):
        model.greedy_decode(np.ones((1, 3), np.int64), 16, 1, 2)


# ----- saving and loading the ready-made models ------------------------------------------------
def _round_trip_models() -> list:
    g = nt.Generator
    tokens2 = np.array([[1, 2, 3, 0], [4, 5, 6, 7]], np.int64)
    return [
        pytest.param(lambda: SequenceClassifier("lstm", num_classes=3, vocab_size=9, embedding_dim=4,
                                                hidden_size=5, num_layers=2, bidirectional=True, dropout=0.1,
                                                padding_idx=0, generator=g(1)), (tokens2,), id="lstm_classifier"),
        pytest.param(lambda: SequenceClassifier("gru", num_classes=2, input_size=3, hidden_size=4, pooling="mean",
                                                generator=g(2)),
                     (np.random.default_rng(0).standard_normal((2, 5, 3)).astype(np.float32),), id="gru_classifier"),
        pytest.param(lambda: CharLanguageModel(9, 4, 6, kind="gru", generator=g(3)), (tokens2,), id="char_lm"),
        pytest.param(lambda: TransformerClassifier(9, 3, d_model=8, nhead=2, num_layers=1, dim_feedforward=16,
                                                   generator=g(4)), (tokens2,), id="transformer_classifier"),
        pytest.param(lambda: _seq2seq(generator=g(5)), (tokens2, np.array([[1, 3], [1, 4]], np.int64)),
                     id="seq2seq"),
    ]


def _first_output(out):
    return (out[0] if isinstance(out, tuple) else out).numpy()


@pytest.mark.parametrize(("make", "inputs"), _round_trip_models())
def test_models_round_trip_through_save_and_load(make, inputs, tmp_path: Path) -> None:
    model = make().eval()
    for p in model.parameters():  # moved away from any initialization a rebuild could reproduce
        p.array += 0.01 * np.arange(p.numel(), dtype=p.dtype).reshape(p.shape) % 0.07
    expected = _first_output(model(*inputs))
    nt.save(model, tmp_path / "model.safetensors")
    loaded = nt.load(tmp_path / "model.safetensors")
    assert type(loaded) is type(model) and not loaded.training
    assert loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(_first_output(loaded(*inputs)), expected)
    fresh = make()  # a same-shaped model with other weights gives other scores ...
    assert not np.allclose(_first_output(fresh.eval()(*inputs)), expected)
    nt.load(tmp_path / "model.safetensors", model=fresh)  # ... until the file's weights are loaded into it
    np.testing.assert_array_equal(_first_output(fresh(*inputs)), expected)


# ----- the examples' quick modes -----------------------------------------------------------
def _example(name: str):
    spec = importlib.util.spec_from_file_location(f"_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_time_series_example_quick(tmp_path: Path) -> None:
    result = _example("time_series_forecast").main(["--quick", "--out", str(tmp_path / "r.json")])
    assert set(result["test_mse"]) == {"lstm", "naive_last_value", "seasonal_naive"}
    assert all(np.isfinite(v) and v > 0 for v in result["test_mse"].values())
    assert (tmp_path / "r.json").is_file()


def test_mnist_rows_example_quick(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (50, 28, 28)).astype(np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", rng.integers(0, 10, 50).astype(np.uint8))
    result = _example("mnist_rows_rnn").main([str(tmp_path), "--quick", "--cell", "gru", "--hidden", "8",
                                              "--out", str(tmp_path / "r.json")])
    assert result["config"]["train_images"] == 40 and result["config"]["test_images"] == 10
    assert 0.0 <= result["final_test_accuracy"] <= 1.0


def test_char_lm_example_quick(tmp_path: Path) -> None:
    text = tmp_path / "text.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 40, encoding="utf-8")
    result = _example("char_lm").main(["--text", str(text), "--quick", "--steps", "5", "--out",
                                       str(tmp_path / "r.json")])
    assert result["loss_curve"] and np.isfinite(result["val_loss"])
    assert set(result["samples"]) == {"0.5", "0.8", "1.0"}
    assert all(len(s) == 1 + 80 for s in result["samples"].values())  # the prompt "t" and 80 more


def test_char_lm_default_text_is_the_shipped_public_domain_book() -> None:
    module = _example("char_lm")
    text = module.DEFAULT_TEXT.read_text(encoding="ascii")
    assert module.DEFAULT_TEXT.name == "alice.txt" and 100_000 < len(text) < 300_000
    assert text.lstrip().startswith("ALICE'S ADVENTURES IN WONDERLAND") and text.rstrip().endswith("THE END")
    assert "\r" not in text and "\x1a" not in text
    assert set(module.parse_args([]).prompt) <= set(text)  # the default prompt can be encoded


def test_seq2seq_example_quick(tmp_path: Path) -> None:
    result = _example("seq2seq_reverse").main(["--quick", "--max-len", "4", "--out", str(tmp_path / "r.json")])
    assert 0.0 <= result["test"]["exact_match"] <= result["test"]["token_accuracy"] <= 1.0
    assert len(result["loss_curve"]) >= 1
