"""Counter-based random streams.

Every random number in smda is a pure function of a key (seed, purpose, global cell or lattice
point, member, time step, draw), so a field is the same whatever the MPI decomposition and a
restart continues the same streams without storing any generator state.

The generator hashes the key with the SplitMix64 finaliser (Steele, Lea & Flood 2014,
doi:10.1145/2714064.2660195), chained over the key words: each word is added to the running
state with the golden-ratio increment and mixed. The 53 high bits give a uniform in (0, 1);
normals come from the Box-Muller transform of two uniforms of the same key (draw 2k and 2k+1).

Purposes are named by strings (``"forcing.precip"``), turned into integers with CRC32, so new
components need no central registry.
"""

import zlib

import numpy as np

from smda.jit import inline, kernel

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_INV53 = 1.0 / 9007199254740992.0  # 2**-53


def purpose_id(name: str) -> int:
    """Stable integer for a purpose name (CRC32 of its UTF-8 bytes)."""
    return zlib.crc32(name.encode()) & 0xFFFFFFFF


@inline
def _mix(z):
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@kernel
def key_hash(seed, purpose, cell, member, step, draw):
    """64-bit hash of the key (all int64 >= 0 or any int; reinterpreted as uint64)."""
    h = _mix(np.uint64(seed) + _GOLDEN)
    h = _mix(h + np.uint64(purpose) + _GOLDEN)
    h = _mix(h + np.uint64(cell) + _GOLDEN)
    h = _mix(h + np.uint64(member) + _GOLDEN)
    h = _mix(h + np.uint64(step) + _GOLDEN)
    h = _mix(h + np.uint64(draw) + _GOLDEN)
    return h


@kernel
def uniform(seed, purpose, cell, member, step, draw):
    """Uniform deviate in the open interval (0, 1)."""
    h = key_hash(seed, purpose, cell, member, step, draw)
    return (np.float64(h >> _S11) + 0.5) * _INV53


@kernel
def normal(seed, purpose, cell, member, step, draw):
    """Standard normal deviate (Box-Muller, cosine branch, from draws 2*draw and 2*draw+1)."""
    u1 = uniform(seed, purpose, cell, member, step, 2 * draw)
    u2 = uniform(seed, purpose, cell, member, step, 2 * draw + 1)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


@kernel
def _normal_field(seed, purpose, cells, n_members, step, draw, out):
    for i in range(cells.shape[0]):
        for m in range(n_members):
            out[i, m] = normal(seed, purpose, cells[i], m, step, draw)


@kernel
def _uniform_field(seed, purpose, cells, n_members, step, draw, out):
    for i in range(cells.shape[0]):
        for m in range(n_members):
            out[i, m] = uniform(seed, purpose, cells[i], m, step, draw)


def _field(fill, seed, purpose, cells, n_members, step, draw, out):
    pid = purpose_id(purpose) if isinstance(purpose, str) else int(purpose)
    cells = np.ascontiguousarray(cells, dtype=np.int64)
    if out is None:
        out = np.empty((cells.shape[0], n_members))
    fill(int(seed), pid, cells, int(n_members), int(step), int(draw), out)
    return out


def normal_field(seed, purpose, cells, n_members, step, draw=0, out=None):
    """Standard normals of shape (len(cells), n_members) keyed by global ``cells`` indices.

    ``purpose`` is a name or an integer id; ``out`` may be given to avoid allocation.
    """
    return _field(_normal_field, seed, purpose, cells, n_members, step, draw, out)


def uniform_field(seed, purpose, cells, n_members, step, draw=0, out=None):
    """Uniforms in (0, 1) of shape (len(cells), n_members); see :func:`normal_field`."""
    return _field(_uniform_field, seed, purpose, cells, n_members, step, draw, out)
