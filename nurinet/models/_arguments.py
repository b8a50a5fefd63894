"""Ready-made networks keep their constructor arguments, so a saved model rebuilds from its config."""

from __future__ import annotations

from typing import Any

from nurinet import nn

# The random source is never saved: a rebuilt model uses the default generator (its weights are loaded anyway).
_NOT_SAVED = ("self", "__class__", "generator")


class _KeepsArguments(nn.Module):
    """A Module whose ``get_config()`` returns the arguments its constructor was called with."""

    def _keep_arguments(self, arguments: dict[str, Any]) -> None:
        """Record ``locals()`` as taken at the top of ``__init__`` (after ``super().__init__()``)."""
        self._arguments = {k: v for k, v in arguments.items() if k not in _NOT_SAVED}

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments (Keras's convention); ``nurinet.io`` rebuilds the model from them."""
        return dict(self._arguments)
