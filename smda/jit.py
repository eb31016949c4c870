"""The one place where numba compilation flags are set.

``kernel`` compiles a function in nopython mode, cached on disk, without the GIL, with numpy's
floating-point error model (division by zero gives inf/nan instead of raising, and no checks slow
the loops); ``inline`` is the same for small helpers inlined into their callers at the numba IR level.
Set ``NUMBA_DISABLE_JIT=1`` to run every kernel as plain Python (the tests have a lane for it).
"""

import numba as nb

FLAGS = {"cache": True, "nogil": True, "error_model": "numpy"}

kernel = nb.njit(**FLAGS)
inline = nb.njit(inline="always", **FLAGS)
