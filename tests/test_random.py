"""nurinet.random: the keep mask that dropout draws."""

import numpy as np
import pytest

from nurinet.random import Generator, keep_mask


@pytest.mark.parametrize("p", [0.0, 1e-9, 0.1, 0.5, 0.9, 1 - 1e-12])
def test_keep_mask_keeps_each_element_with_probability_one_minus_p(p):
    n = 400_000
    kept = keep_mask(Generator(3), (n,), p).mean()
    sd = max((p * (1 - p) / n) ** 0.5, 1e-12)
    assert abs(kept - (1 - p)) < 6 * sd + 1e-9
    assert keep_mask(Generator(3), (5, 7), p).shape == (5, 7)


def test_keep_mask_is_reproducible_and_advances_the_stream():
    g = Generator(11)
    first, second = keep_mask(g, (101,), 0.5), keep_mask(g, (101,), 0.5)
    np.testing.assert_array_equal(first, keep_mask(Generator(11), (101,), 0.5))
    assert not np.array_equal(first, second)
