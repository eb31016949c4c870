"""Footprint aggregation under mpiexec -n 2: the model equivalents of two ranks equal one rank's, bit for bit."""

import textwrap

import pytest

from tests.test_driver import mpi_python

SCRIPT = textwrap.dedent("""
    import numpy as np
    from types import SimpleNamespace
    from mpi4py import MPI
    from smda.model.grid import GRIDS, Domain
    from smda.run.aggregate import PixelAggregator
    from smda.run.decomp import decompose

    comm = MPI.COMM_WORLD
    d = Domain.from_centre(36.6, -97.5, 140, 140)
    rr, cc = np.unique(np.stack(d.parent("M36"), axis=1), axis=0).T  # the domain's 4 x 4 pixels
    x, y = GRIDS["M36"].xy(rr, cc)
    geo = SimpleNamespace(x=x, y=y, footprint=np.full(rr.size, "gauss"), row=rr, col=cc)
    field = 250 + (d.global_index() % 9973)[:, None] * 1e-3 + np.arange(6)[None, :]

    def experiment(comm, size, rank):
        dec = decompose(d, size)
        return SimpleNamespace(comm=comm, dec=dec, rank=rank, domain=d, cells=dec.cells(rank))

    mine = experiment(comm, comm.Get_size(), comm.Get_rank())
    hx, inside = PixelAggregator(geo, mine, kind="gauss").mean(field[mine.cells], 0.5)
    one = experiment(None, 1, 0)
    ref_hx, ref_in = PixelAggregator(geo, one, kind="gauss").mean(field[one.cells], 0.5)
    np.testing.assert_array_equal(comm.bcast(hx, root=1), hx)  # every rank has the same result
    np.testing.assert_array_equal(hx, ref_hx)
    np.testing.assert_array_equal(inside, ref_in)
    assert np.all(np.isfinite(hx)) and inside.min() < 1.0 == inside.max()  # edge footprints reach outside
    if comm.Get_rank() == 0:
        print("MPI_OPERATOR_OK")
""")


@pytest.mark.mpi
def test_two_ranks_equal_serial(tmp_path):
    script = tmp_path / "op_mpi.py"
    script.write_text(SCRIPT)
    assert "MPI_OPERATOR_OK" in mpi_python(script).stdout
