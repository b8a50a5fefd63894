"""nurinet's runtime: everything that makes it fast, in one private package.

Layers, each module importing only those above it in this list (``tests/test_runtime_layers.py``
and ``.importlinter`` check it):

* :mod:`.settings` -- every size floor and switch, read once from the environment; :mod:`.probe` --
  counts which fast paths ran (tests only);
* :mod:`.libraries` -- finding OpenBLAS and MKL with :mod:`ctypes` (no other nurinet import);
  :mod:`.compiled` -- building, caching and loading the C library (``native/*.c``);
* :mod:`.gemm` -- the matrix-product provider (nurinet's own GEMM, NumPy's BLAS or MKL); :mod:`.spin` -- shortening the
  idle spin of NumPy's OpenBLAS threads;
* :mod:`.blas` -- one-pass ``axpby``/``axpy``; :mod:`.parallel` -- the elementwise thread pool;
  :mod:`.native` -- the C kernels and their loader; :mod:`.allocator` -- glibc's ``mallopt``;
  :mod:`.buffers` -- the one pool of spare large work arrays, with explicit ownership;
* :mod:`.fast` -- the ops' array-level fast routines (one module per kind of op: activation,
  attention, conv and conv_wide, lstm, normalization, optim, pooling), each returning None where it
  does not apply;
* :mod:`.modes` -- :func:`~.modes.reference_only` and :func:`~.modes.forced` for tests.

:mod:`nurinet.threads` is the public front over it. The old top-level modules (``nurinet.gemm``,
``nurinet._blas``, ``nurinet.parallel``, ``nurinet.allocator``, ``nurinet._native``) re-export the
public names of their new homes. Importing :mod:`nurinet` loads :mod:`.spin` itself (its setting
applies from import on) and the rest, but :mod:`.modes`, through the ops that use it.
"""
