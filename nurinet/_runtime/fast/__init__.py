"""Array-level fast routines: the threaded, native and BLAS versions of an op's array code.

Each routine takes the op's arrays and returns its result, or ``None`` when it does not apply (CuPy
arrays, float64, strided or small inputs, the switch in :mod:`nurinet._runtime.settings` off, no
compiler). An op therefore keeps one readable NumPy path plus at most one line that tries its routine::

    y = fast.pooling.max_pool_forward(x, kernel)
    if y is None:
        y = ...  # the op's own code, which stays the reference

The test op registry reaches every routine through :func:`nurinet._runtime.modes.forced`, and
:mod:`nurinet._runtime.probe` counts which ones ran.
"""
