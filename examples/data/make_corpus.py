"""Rebuild ``python_docs.txt``, the training text of ``examples/char_lm.py``.

The text is The Zen of Python (from the standard library's ``this`` module; PEP 20 is in the
public domain) followed by the docstrings of a fixed list of pure-Python standard library
modules and of their public functions and classes (Python Software Foundation License, see
README.md). Run it with the Python whose docstrings you want::

    python examples/data/make_corpus.py
"""

from __future__ import annotations

import codecs
import importlib
import inspect
from pathlib import Path

MODULES = ("textwrap", "string", "json", "functools", "itertools", "collections", "random", "statistics",
           "fractions", "heapq", "bisect", "shutil", "glob", "fnmatch", "argparse", "csv", "calendar",
           "difflib", "pprint", "contextlib", "dataclasses", "enum", "abc", "copy", "tempfile")
OUT = Path(__file__).resolve().parent / "python_docs.txt"


def zen() -> str:
    """The Zen of Python, decoded from ``this.s`` without printing it (importing ``this`` prints)."""
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        import this
    return codecs.decode(this.s, "rot13")


def docstrings(name: str) -> list[str]:
    """The module's docstring, then those of its public functions and classes, in name order."""
    module = importlib.import_module(name)
    texts = [inspect.getdoc(module) or ""]
    for attr in sorted(vars(module)):
        obj = getattr(module, attr)
        if attr.startswith("_") or getattr(obj, "__module__", None) != name:
            continue
        if inspect.isfunction(obj) or inspect.isclass(obj):
            doc = inspect.getdoc(obj)
            if doc:
                texts.append(f"{attr}: {doc}")
    return [t for t in texts if t]


def build() -> str:
    parts = [zen()]
    for name in MODULES:
        parts.extend(docstrings(name))
    # Keep plain ASCII so the vocabulary stays small.
    text = "\n\n".join(parts)
    return "".join(c for c in text if c == "\n" or 32 <= ord(c) < 127) + "\n"


if __name__ == "__main__":
    OUT.write_text(build(), encoding="utf-8")
    print(f"wrote {OUT} ({OUT.stat().st_size:,} bytes)")
