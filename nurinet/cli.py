"""The ``nurinet`` command line."""

from __future__ import annotations

import argparse
import os


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
    args, rest = parser.parse_known_args(argv)
    from nurinet import allocator

    allocator.keep_freed_memory()  # an entry point: freed activations stay for the next step
    if args.command == "demo":
        from nurinet.demo import main as demo_main

        demo_main(rest)
    elif args.command == "train":
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        return _train(args)
    return 0


def _train(args: argparse.Namespace) -> int:
    from nurinet import config as cfg
    from nurinet.io import save
    from nurinet.summary import summary
    from nurinet.training.metrics import format_confusion_matrix

    config = cfg.load_config(args.config)
    name = str(config.get("name") or os.path.splitext(os.path.basename(args.config))[0])
    out_dir = args.output_dir or os.path.join("runs", name)
    os.makedirs(out_dir, exist_ok=True)
    checkpoint = os.path.join(out_dir, "checkpoint.safetensors")
    print(f"nurinet train: {name} ({args.config})")
    result = cfg.run(config, epochs=args.epochs, verbose=0 if args.quiet else None,
                     checkpoint=checkpoint, checkpoint_every=args.checkpoint_every, resume=args.resume)
    model = result["model"]
    input_size = (config.get("model") or {}).get("input_size")
    if input_size is not None:
        print(summary(model, (int(input_size),)))
    final = os.path.join(out_dir, "model.safetensors")
    save(model, final)
    matrix = result["confusion_matrix"]
    print(f"trained on {result['train_size']} samples; test accuracy on {result['test_size']} "
          f"held-out samples: {result['accuracy']:.4f}")
    print("confusion matrix (rows: true class, columns: predicted class):")
    print(format_confusion_matrix(matrix))
    print(f"checkpoint: {checkpoint}\nmodel: {final}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
