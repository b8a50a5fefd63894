"""The public namespaces export what their ``__all__`` promises: functions and classes, never a
submodule; and ``import nurinet`` loads no application package."""

from __future__ import annotations

import types

import pytest

import nurinet
import nurinet.functional as F
from nurinet import nn, optim

NAMESPACES = [nurinet, F, nn, optim]
# Submodules exported on purpose, as PyTorch exports torch.nn.init.
SUBPACKAGES = {"data", "functional", "io", "nn", "optim", "F", "init", "regularizers", "utils", "backends"}


@pytest.mark.parametrize("namespace", NAMESPACES, ids=lambda module: module.__name__)
def test_every_exported_name_exists_and_is_not_a_module(namespace):
    for name in namespace.__all__:
        value = getattr(namespace, name)  # AttributeError names the missing export
        if name in SUBPACKAGES:
            continue
        assert not isinstance(value, types.ModuleType), f"{namespace.__name__}.{name} is a module, not the function"


def test_functional_dropout_is_the_function():
    x = nurinet.ones(2000)
    y = F.dropout(x, 0.5)
    kept = y.numpy() != 0
    assert 0.4 < kept.mean() < 0.6
    assert set(y.numpy()[kept].tolist()) == {2.0}
    assert F.dropout(x, 0.5, training=False) is x


# ``import nurinet`` loads the core and io, never the application layer (training, models,
# configurations, ...): the core never imports it, and io imports it only by name, when a file
# names one of its classes.
APPLICATION_PACKAGES = ("training", "models", "rl", "distributed", "onnx", "sklearn", "config", "plots", "keras",
                        "integrations")


def test_import_nurinet_loads_no_application_package(fresh_python):
    code = (
        "import sys, nurinet\n"
        f"print(','.join(p for p in {APPLICATION_PACKAGES!r} if 'nurinet.' + p in sys.modules))\n"
    )
    done = fresh_python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"import nurinet loaded nurinet.{{{done.stdout.strip()}}}"
