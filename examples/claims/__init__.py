"""Experiments that reproduce the concept catalog's claims (see docs/claims.md).

Running ``python -m examples.claims.<script>`` imports this package first, so
the line below limits BLAS to one thread before NumPy loads: these small
matrices gain nothing from threads, and on a shared machine idle BLAS threads
spinning on busy cores made training 10-30 times slower.
"""

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
