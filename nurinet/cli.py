"""The ``nurinet`` command line."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``nurinet`` console script."""
    parser = argparse.ArgumentParser(prog="nurinet", description="nurinet command line")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="train the demo MLP on the bundled digits and report its accuracy",
                   add_help=False)
    args, rest = parser.parse_known_args(argv)
    if args.command == "demo":
        from nurinet.demo import main as demo_main

        demo_main(rest)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
