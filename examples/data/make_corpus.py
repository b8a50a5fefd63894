"""Rebuild ``alice.txt``, the training text of ``examples/char_lm.py``, from its source file.

The source is ``alice29.txt`` of the Canterbury Corpus: Lewis Carroll's *Alice's Adventures in
Wonderland* (1865, public domain), Project Gutenberg's Millennium Fulcrum Edition 2.9, as shipped
in the Brotli source distribution on PyPI (``tests/testdata/alice29.txt``; see README.md). The
file carries no Project Gutenberg header or licence. This script only normalizes it: DOS line ends
become ``\\n``, the DOS end-of-file mark (Ctrl-Z) and the blank lines before the title are dropped,
and the result is checked to be plain ASCII::

    pip download brotli==1.2.1 --no-deps --no-binary :all: -d /tmp/brotli
    tar xzf /tmp/brotli/brotli-1.2.1.tar.gz -C /tmp/brotli brotli-1.2.1/tests/testdata/alice29.txt
    python examples/data/make_corpus.py /tmp/brotli/brotli-1.2.1/tests/testdata/alice29.txt
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "alice.txt"
# SHA-256 of alice29.txt in brotli-1.2.1.tar.gz, so that a different source file is noticed.
SOURCE_SHA256 = "7467306ee0feed4971260f3c87421154a05be571d944e9cb021a5713700c38f0"


def normalize(raw: bytes) -> str:
    """Plain ASCII text with ``\\n`` line ends, no end-of-file mark, starting at the title."""
    text = raw.decode("ascii").replace("\r\n", "\n").replace("\x1a", "")
    text = text.lstrip("\n").rstrip() + "\n"
    stray = sorted({c for c in text if c != "\n" and not 32 <= ord(c) < 127})
    if stray:
        raise ValueError(f"make_corpus: unexpected control characters {stray!r} in the source text")
    return text


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        raise SystemExit("usage: python examples/data/make_corpus.py PATH/TO/alice29.txt")
    raw = Path(argv[0]).read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != SOURCE_SHA256:
        print(f"warning: {argv[0]} has SHA-256 {digest}, not that of brotli 1.2.1's alice29.txt", file=sys.stderr)
    OUT.write_text(normalize(raw), encoding="ascii", newline="\n")
    print(f"wrote {OUT} ({OUT.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main(sys.argv[1:])
