"""Gridded output compressed by every rank and written by the file's owner (smda.run.chunks): the files read
back exactly through netCDF4, tiles without land read as NaN, and 3 ranks write the same bits as 1."""

import textwrap

import netCDF4
import numpy as np
import pytest

from smda.run.recorder import Recorder
from tests.test_driver import mpi_python

SETUP = textwrap.dedent("""
    import numpy as np
    from smda.model.grid import Domain

    def case():
        d = Domain.from_centre(41.35, -5.40, 144, 180)  # 144 x 180 cells: tiles of 64 with partial edge tiles
        r, c = np.indices((d.nrows, d.ncols))
        land = (r + 2 * c > 120) & ~((r >= 64) & (r < 128) & (c < 64))  # a sea corner and a sea tile
        return Domain(d.row0, d.col0, d.nrows, d.ncols, land)

    def values(cells, k):
        return {"sm_surface": 0.1 + 1e-6 * cells + k, "tb_h": np.where(cells % 7 == 0, np.nan, 200 - 1e-3 * cells - k)}

    def write(rec, cells):
        for k in range(3):
            rec.record("f.nc", np.datetime64("2019-05-01") + np.timedelta64(k, "D"), values(cells, k),
                       static={"elevation": cells * 0.5}, bounds=(np.datetime64("2019-05-01"), np.datetime64("2019-05-02")))
            t = np.datetime64("2019-05-01") + np.timedelta64(k, "D")
            rec.record("g.nc", t, {"sm_surface": values(cells, k)["sm_surface"]})
        return rec.finish()
""")
namespace: dict = {}
exec(SETUP, namespace)


def test_serial_files_read_back_exactly(tmp_path):
    d = namespace["case"]()
    cells = np.flatnonzero(d.land.ravel())
    paths = namespace["write"](Recorder(tmp_path, d, [cells]), cells)
    assert sorted(p.name for p in paths) == ["f.nc", "g.nc"] and not list(tmp_path.glob("*.part"))
    with netCDF4.Dataset(tmp_path / "f.nc") as ds:
        ds.set_auto_mask(False)
        assert len(ds.dimensions["time"]) == 3 and ds["sm_surface"].chunking() == [3, 64, 64]
        filters = ds["sm_surface"].filters()
        assert filters["zlib"] and filters["shuffle"] and filters["complevel"] == 4
        np.testing.assert_array_equal(ds["time_bnds"][1], ds["time_bnds"][0])
        for k in range(3):
            for v, want in namespace["values"](cells, k).items():
                grid = np.full(d.n_cells, np.nan, np.float32)
                grid[cells] = want
                np.testing.assert_array_equal(ds[v][k].ravel(), grid, err_msg=f"{v}[{k}]")
        assert np.isnan(ds["sm_surface"][:, 64:128, :64]).all()  # the tile without land: never written, reads as fill
        np.testing.assert_array_equal(ds["elevation"][:].ravel()[cells], np.float32(cells * 0.5))


@pytest.mark.mpi
def test_three_ranks_write_the_bits_of_one(tmp_path):
    script = tmp_path / "rec.py"
    script.write_text(SETUP + textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from mpi4py import MPI
        from smda.run.decomp import decompose
        from smda.run.recorder import Recorder

        comm = MPI.COMM_WORLD
        d = case()
        dec = decompose(d, comm.size)
        cells = [dec.cells(r) for r in range(comm.size)]
        write(Recorder(Path({str(tmp_path / "many")!r}), d, cells, comm), cells[comm.rank])
        if comm.rank == 0:
            one = np.flatnonzero(d.land.ravel())
            write(Recorder(Path({str(tmp_path / "one")!r}), d, [one]), one)
    """))
    mpi_python(script, ranks=3)
    for name in ("f.nc", "g.nc"):
        with netCDF4.Dataset(tmp_path / "one" / name) as a, netCDF4.Dataset(tmp_path / "many" / name) as b:
            a.set_auto_mask(False)
            b.set_auto_mask(False)
            assert list(a.variables) == list(b.variables)
            for v in a.variables:
                np.testing.assert_array_equal(a[v][...], b[v][...], err_msg=f"{name}:{v}")
                assert a[v].chunking() == b[v].chunking()
    assert not list((tmp_path / "many").glob("*.part")) and not list((tmp_path / "many").glob(".*tmp"))

