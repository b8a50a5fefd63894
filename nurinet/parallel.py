"""Moved to :mod:`nurinet._runtime.parallel`; this module re-exports its public names.

Large elementwise NumPy work split over a few threads; ``NURINET_NUM_THREADS`` and
:func:`set_elementwise_threads` set how many.
"""

from nurinet._runtime.parallel import (
    bounds,
    get_elementwise_threads,
    get_min_elements,
    over_ranges,
    parts,
    run,
    set_elementwise_threads,
    set_min_elements,
    split,
)

__all__ = ["bounds", "get_elementwise_threads", "get_min_elements", "over_ranges", "parts", "run",
           "set_elementwise_threads", "set_min_elements", "split"]
