"""The ``nurinet`` command line.

``nurinet train CONFIG`` treats the configuration as untrusted input: the run writes
to ``runs/<name>`` (the configuration's ``name``, a plain name, or the file's) or to an
explicit ``--output-dir``, and its callbacks' files go inside that directory. A wrong
configuration is reported as one message naming the setting, its value and what is
allowed, with exit status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nurinet.training.config import PreparedRun

# The errors a wrong configuration raises while it is read and built (not while training).
CONFIG_ERRORS = (ValueError, TypeError, ImportError, FileNotFoundError)
RUNS_DIR = "runs"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``nurinet`` console script."""
    parser = argparse.ArgumentParser(prog="nurinet", description="nurinet command line")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="train the demo MLP on the bundled digits and report its accuracy",
                   add_help=False)
    train = sub.add_parser("train", help="train the model a configuration file (YAML or JSON) describes")
    train.add_argument("config", help="a .yaml, .yml or .json training configuration")
    train.add_argument("--epochs", type=int, default=None, help="override training.epochs")
    train.add_argument("--output-dir", default=None,
                       help="where the checkpoint and the final model go (default: runs/<name>)")
    train.add_argument("--checkpoint-every", type=int, default=1, help="epochs between checkpoints")
    train.add_argument("--resume", default=None, metavar="CHECKPOINT",
                       help="continue the run saved in this checkpoint (exactly as if never stopped)")
    train.add_argument("--quiet", action="store_true", help="no progress bar, only the report")
    train.add_argument("--debug", action="store_true",
                       help="show the traceback of a configuration error instead of one message")
    args, rest = parser.parse_known_args(argv)
    if args.command == "demo":
        from nurinet.demo import main as demo_main

        demo_main(rest)
    elif args.command == "train":
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        return _train(args)
    return 0


def _train(args: argparse.Namespace) -> int:
    try:
        prepared, out_dir, name = _prepare(args)
    except CONFIG_ERRORS as error:
        if args.debug:
            raise
        print(f"nurinet train: configuration error in {args.config}: {error}\n"
              "(run with --debug for the traceback)", file=sys.stderr)
        return 2
    return _report(args, prepared, out_dir, name)


def _prepare(args: argparse.Namespace) -> tuple[PreparedRun, str, str]:
    """Read, check and build the run (every configuration error is raised here)."""
    from nurinet.training import config as cfg

    if not os.path.isfile(args.config):
        raise FileNotFoundError(f"configuration file {args.config!r} does not exist")
    config = cfg.load_config(args.config)
    name = cfg.run_name(config, args.config)
    out_dir = args.output_dir or _run_directory(name)
    config = cfg.confine_callback_paths(config, out_dir)
    os.makedirs(out_dir, exist_ok=True)
    checkpoint = os.path.join(out_dir, "checkpoint.safetensors")
    prepared = cfg.prepare_run(config, epochs=args.epochs, verbose=0 if args.quiet else None,
                               checkpoint=checkpoint, checkpoint_every=args.checkpoint_every,
                               resume=args.resume)
    return prepared, out_dir, name


def _run_directory(name: str) -> str:
    """``runs/<name>``, refused if it would leave ``runs/`` (``name`` is checked already; this
    is the last line of defence)."""
    root = os.path.abspath(RUNS_DIR)
    out_dir = os.path.join(RUNS_DIR, name)
    if os.path.commonpath([root, os.path.abspath(out_dir)]) != root or os.path.abspath(out_dir) == root:
        raise ValueError(f"name = {name!r}: the run directory must be inside {RUNS_DIR}/")
    return out_dir


def _report(args: argparse.Namespace, prepared: PreparedRun, out_dir: str, name: str) -> int:
    from nurinet.io import save
    from nurinet.summary import summary
    from nurinet.training.metrics import format_confusion_matrix

    print(f"nurinet train: {name} ({args.config})")
    result = prepared.train()
    model = result["model"]
    input_size = (prepared.built.config.get("model") or {}).get("input_size")
    if input_size is not None:
        print(summary(model, (int(input_size),)))
    final = os.path.join(out_dir, "model.safetensors")
    save(model, final)
    matrix = result["confusion_matrix"]
    print(f"trained on {result['train_size']} samples; test accuracy on {result['test_size']} "
          f"held-out samples: {result['accuracy']:.4f}")
    print("confusion matrix (rows: true class, columns: predicted class):")
    print(format_confusion_matrix(matrix))
    print(f"checkpoint: {os.path.join(out_dir, 'checkpoint.safetensors')}\nmodel: {final}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
