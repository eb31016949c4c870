"""The one place where numba compilation flags are set.

``kernel`` compiles a function in nopython mode, cached on disk, without the GIL, with numpy's
floating-point error model (division by zero gives inf/nan instead of raising, and no checks slow
the loops); ``inline`` is the same for small helpers inlined into their callers at the numba IR level.
Set ``NUMBA_DISABLE_JIT=1`` to run every kernel as plain Python (the tests have a lane for it).

The first run after an install compiles every kernel (1-3 min) and caches the machine code beside the
sources (or in ``NUMBA_CACHE_DIR``); :func:`cache_is_warm` tells whether that is still to come.
"""

from pathlib import Path

import numba as nb

FLAGS = {"cache": True, "nogil": True, "error_model": "numpy"}

KERNELS = []  # every dispatcher made by kernel() in the modules imported so far


def kernel(fn):
    """Compile ``fn`` with :data:`FLAGS` (a numba dispatcher; a plain function with NUMBA_DISABLE_JIT=1)."""
    d = nb.njit(**FLAGS)(fn)
    KERNELS.append(d)
    return d


inline = nb.njit(inline="always", **FLAGS)


def cache_is_warm() -> bool:
    """Whether every kernel imported so far has cached machine code at least as new as its source."""
    for d in KERNELS:
        cache = getattr(d, "_cache", None)
        index = getattr(getattr(cache, "_cache_file", None), "_index_path", None)
        if index is None:  # JIT disabled, or a numba without this cache layout: nothing to announce
            continue
        index, source = Path(index), Path(d.py_func.__code__.co_filename)
        if not index.exists() or index.stat().st_mtime < source.stat().st_mtime:
            return False
    return True
