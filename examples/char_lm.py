"""Train a character-level language model and sample text from it at a few temperatures.

Text: ``examples/data/alice.txt``, Lewis Carroll's *Alice's Adventures in Wonderland* (1865, public
domain; about 148 KB of ASCII, source in ``examples/data/README.md``), or any UTF-8 file given with
``--text``. The first 90% trains, the last 10% measures the validation loss.

Model: ``CharLanguageModel`` (a 32-wide character embedding, one LSTM layer of 256 units, a
linear layer to the next character's scores), trained with Adam on random windows of 100
characters (batch 32), predicting each next character (cross-entropy, reported in nats and
bits per character), with dropout 0.2 before the output layer. The training and validation loss
curves and samples at temperatures 0.5, 0.8 and 1.0 (each continuing the prompt ``--prompt``) are
printed and written to a JSON file.

Usage::

    python examples/char_lm.py                     # full run (1,000 steps, a few minutes)
    python examples/char_lm.py --quick             # smoke test (seconds)
    python examples/char_lm.py --text my.txt --steps 3000 --cell gru
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # so that the example runs from a checkout without installing nurinet

import nurinet as nt
from examples import _common as common
from nurinet.models import CharLanguageModel, CharVocab

DEFAULT_TEXT = ROOT / "examples" / "data" / "alice.txt"
TEMPERATURES = (0.5, 0.8, 1.0)


def batches(ids: np.ndarray, seq_len: int, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Random windows: inputs ``(B, seq_len)`` and the targets one character later."""
    starts = rng.integers(0, len(ids) - seq_len - 1, batch_size)
    index = starts[:, None] + np.arange(seq_len + 1)[None, :]
    chunk = ids[index]
    return chunk[:, :-1], chunk[:, 1:]


def sequence_loss(model: CharLanguageModel, x: np.ndarray, y: np.ndarray) -> Any:
    logits, _ = model(nt.tensor(x))
    return nt.F.cross_entropy(logits.reshape(-1, logits.shape[-1]), nt.tensor(y.reshape(-1)))


def validation_loss(model: CharLanguageModel, ids: np.ndarray, seq_len: int) -> float:
    """Mean next-character loss over consecutive windows of the validation text."""
    count = (len(ids) - 1) // seq_len
    x = ids[: count * seq_len].reshape(count, seq_len)
    y = ids[1: count * seq_len + 1].reshape(count, seq_len)
    model.eval()
    with nt.no_grad():
        losses = [float(sequence_loss(model, x[i:i + 64], y[i:i + 64]).item()) * len(x[i:i + 64])
                  for i in range(0, count, 64)]
    model.train()
    return sum(losses) / count


def train(ids: np.ndarray, vocab: CharVocab, args: argparse.Namespace) -> tuple[CharLanguageModel, dict]:
    cut = int(0.9 * len(ids))
    train_ids, val_ids = ids[:cut], ids[cut:]
    nt.manual_seed(args.seed)
    model = CharLanguageModel(len(vocab), args.embedding, args.hidden, kind=args.cell, dropout=args.dropout)
    opt = nt.optim.Adam(model.parameters(), lr=args.lr)
    rng = np.random.default_rng(args.seed)
    curve, recent, every = [], [], max(1, args.steps // 15)
    for step in range(1, args.steps + 1):
        loss = sequence_loss(model, *batches(train_ids, args.seq_len, args.batch_size, rng))
        opt.zero_grad()
        loss.backward()
        nt.nn.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        recent.append(float(loss.item()))
        if step % every == 0 or step == args.steps:
            curve.append({"step": step, "train_loss": sum(recent) / len(recent),
                          "val_loss": validation_loss(model, val_ids, args.seq_len)})
            recent = []
            print(f"  step {step:5d}: train loss {curve[-1]['train_loss']:.3f}, validation loss "
                  f"{curve[-1]['val_loss']:.3f} nats/char", flush=True)
    val = curve[-1]["val_loss"]
    return model, {"loss_curve": curve, "val_loss": val, "val_bits_per_char": val / math.log(2)}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--text", default=str(DEFAULT_TEXT), help="UTF-8 training text")
    parser.add_argument("--cell", choices=("lstm", "gru", "rnn"), default="lstm")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--embedding", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--dropout", type=float, default=0.2, help="dropout before the output layer")
    parser.add_argument("--prompt", default="Alice", help="text the samples continue (falls back to the "
                        "text's first character when it holds a character the text lacks)")
    parser.add_argument("--sample-length", type=int, default=300)
    common.add_run_options(parser, seed="the initialization, batches and sampling",
                           quick="20 steps of a small model on 20,000 chars", out="char_lm[_quick].json",
                           threads_help=common.SMALL_STEPS)
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.hidden, args.seq_len, args.sample_length = 20, 64, 50, 80
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    text = Path(args.text).read_text(encoding="utf-8")
    if args.quick:
        text = text[:20_000]
    vocab = CharVocab(text)
    ids = vocab.encode(text)
    if len(ids) < 10 * (args.seq_len + 2):
        raise SystemExit(f"char_lm: the text has {len(ids)} characters; it needs at least {10 * (args.seq_len + 2)}")
    print(f"Char LM: {len(ids):,} characters, {len(vocab)} distinct, {args.cell.upper()} {args.hidden} units, "
          f"{args.steps} steps of {args.batch_size} x {args.seq_len}", flush=True)
    start = time.perf_counter()
    with common.blas_threads(args.threads):
        model, result = train(ids, vocab, args)
    print(f"validation loss {result['val_loss']:.3f} nats/char ({result['val_bits_per_char']:.2f} bits/char; "
          f"uniform guessing: {math.log2(len(vocab)):.2f} bits/char)")
    prompt = args.prompt if args.prompt and set(args.prompt) <= set(vocab.chars) else text[:1]
    samples = {}
    for temperature in TEMPERATURES:
        samples[str(temperature)] = prompt + model.generate(prompt, args.sample_length, temperature,
                                                            nt.Generator(args.seed), vocab=vocab)
        print(f"\n--- temperature {temperature} ---\n{samples[str(temperature)]}")
    result.update(samples=samples, seconds=round(time.perf_counter() - start, 2),
                  config=common.config(args) | {"characters": len(ids), "vocabulary": len(vocab)})
    out = common.write_result(result, args.out, common.result_name("char_lm", args.quick))
    print(f"\nwrote {out}")
    return result


if __name__ == "__main__":
    main()
