"""Shared test fixtures."""

import numpy as np
import pytest

import nurinet


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _seed() -> None:
    nurinet.manual_seed(0)
