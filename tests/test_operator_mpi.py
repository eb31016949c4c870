"""The footprint operator under mpiexec -n 2: partial sums of two ranks equal the serial result."""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent("""
    import numpy as np
    from types import SimpleNamespace
    from mpi4py import MPI
    from smda.assimilation.observations.operator import FootprintOperator, finish, sum_in_rank_order
    from smda.model.grid import GRIDS, Domain

    comm = MPI.COMM_WORLD
    d = Domain.from_centre(36.6, -97.5, 140, 140)
    rows = np.arange(d.row0 // 36, (d.row0 + d.nrows) // 36)
    cols = np.arange(d.col0 // 36, (d.col0 + d.ncols) // 36)
    rr, cc = [a.ravel() for a in np.meshgrid(rows, cols, indexing="ij")]
    x, y = GRIDS["M36"].xy(rr, cc)
    geo = SimpleNamespace(x=x, y=y, footprint=np.full(rr.size, "gauss"), row=rr, col=cc)
    allc = np.arange(d.n_cells)
    gidx = d.global_index()
    field = 250 + (gidx % 9973)[:, None] * 1e-3 + np.arange(6)[None, :]
    mine = allc[(allc % d.ncols) // 72 == comm.Get_rank()]  # west / east halves of whole pixels
    op = FootprintOperator.build(geo, d, mine, kind="gauss")
    sw, swx = sum_in_rank_order(comm, *op.partial_sums(field[mine]))
    hx, inside = finish(sw, swx, 0.5)
    ref_hx, ref_in = FootprintOperator.build(geo, d, allc, kind="gauss").apply(field, 0.5)
    other = comm.bcast(hx, root=1)
    assert np.array_equal(other, hx)  # every rank has the same result
    np.testing.assert_allclose(hx, ref_hx, rtol=1e-14)
    np.testing.assert_allclose(inside, ref_in, rtol=1e-14)
    if comm.Get_rank() == 0:
        print("MPI_OPERATOR_OK")
""")


@pytest.mark.mpi
def test_two_ranks_equal_serial(tmp_path):
    mpiexec = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")
    if mpiexec is None:
        pytest.skip("mpiexec not found")
    script = tmp_path / "op_mpi.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    res = subprocess.run([mpiexec, "-n", "2", sys.executable, str(script)], capture_output=True, text=True,
                         timeout=300, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "MPI_OPERATOR_OK" in res.stdout
