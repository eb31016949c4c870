"""SMAP readers: the real L2_SM_P sample, and small files written in the official L1C_TB / L3_SM_P(_E) structure."""

import os
from pathlib import Path

import h5py
import numpy as np
import pytest

from smda.assimilation.observations.readers import read
from smda.model.grid import GRIDS

DATA = Path(os.environ.get("SMDA_SAMPLE_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))
L2 = DATA / "smap" / "SMAP_L2_SM_P_02801_A_20150811T013002_R18290_001.h5"
need_l2 = pytest.mark.skipif(not L2.is_file(), reason=f"SMAP L2 sample not found at {L2}")
G = "Soil_Moisture_Retrieval_Data"

# --- independent EASE-Grid 2.0 formulas (PRODUCTS.md section 8), not pyproj -------------------------
A, F = 6378137.0, 1 / 298.257223563
E2 = F * (2 - F)
E = np.sqrt(E2)
K0 = np.cos(np.radians(30)) / np.sqrt(1 - E2 * np.sin(np.radians(30)) ** 2)
QP = 1.9955310875028376


def ease_latlon(row, col, s=36032.220840584, x0=-17367530.4451615, y0=7314540.8306386):
    x = x0 + (np.asarray(col) + 0.5) * s
    y = y0 - (np.asarray(row) + 0.5) * s
    lam = x / (A * K0)
    beta = np.arcsin(2 * K0 * y / (A * QP))
    phi = (beta + (E2 / 3 + 31 * E2**2 / 180 + 517 * E2**3 / 5040) * np.sin(2 * beta)
           + (23 * E2**2 / 360 + 251 * E2**3 / 3780) * np.sin(4 * beta) + (761 * E2**3 / 45360) * np.sin(6 * beta))
    return np.degrees(phi), np.degrees(lam)


def test_ease_formula_reference_values():
    lat, lon = ease_latlon(0, 0)
    assert lat == pytest.approx(83.63198, abs=1e-4) and lon == pytest.approx(-179.81328, abs=1e-4)
    assert K0 == pytest.approx(0.8667510025721987, rel=1e-12)


@pytest.fixture(scope="module")
def l2_file():
    with h5py.File(L2, "r") as f:
        g = f[G]
        yield {k: g[k][()] for k in ("EASE_row_index", "EASE_column_index", "latitude", "longitude", "tb_h_corrected",
                                      "tb_v_corrected", "soil_moisture", "retrieval_qual_flag", "surface_flag",
                                      "tb_qual_flag_h", "tb_time_utc", "tb_time_seconds", "boresight_incidence",
                                      "static_water_body_fraction")}


def _cell_index(f, table):
    key = f["EASE_row_index"].astype(np.int64) * 1000 + f["EASE_column_index"]
    order = np.argsort(key)
    return order[np.searchsorted(key[order], table.row * 1000 + table.col)]


@need_l2
def test_l2_tb_values_geolocation_times(l2_file):
    f = l2_file
    t = read("smap_l2_sm_p", [L2], kind="tb")
    assert len(t) == 2 * 17251                       # every cell has an acquisition time; H and V rows
    h = t.select(t.pol == "H")
    i = _cell_index(f, h)
    np.testing.assert_array_equal(h.value, f["tb_h_corrected"][i].astype(float))  # no fill in TB here
    np.testing.assert_allclose(h.angle_deg, f["boresight_incidence"][i], rtol=1e-6)
    # geolocation: EASE M36 formulas reproduce the file's lat/lon, and the table's lat/lon/x/y
    lat_f, lon_f = ease_latlon(h.row, h.col)
    np.testing.assert_allclose(lat_f, f["latitude"][i], atol=2e-5)
    np.testing.assert_allclose(lon_f, f["longitude"][i], atol=2e-5)
    np.testing.assert_allclose(h.lat, lat_f, atol=1e-7)
    np.testing.assert_allclose(h.lon, lon_f, atol=1e-7)
    np.testing.assert_allclose(h.x, -17367530.4451615 + (h.col + 0.5) * 36032.220840584, atol=1e-3)
    assert set(h.footprint) == {"M36"} and set(h.source) == {"smap_l2_sm_p"}
    # times: epoch 2000-01-01T12:00:00 without leap seconds matches tb_time_utc (seconds field)
    utc = np.array([s.decode()[:19] for s in f["tb_time_utc"][i]], "datetime64[s]")
    frac = np.array([s.decode()[20:23] for s in f["tb_time_utc"][i]])
    dt = (h.time - utc).astype(int)
    assert np.all((dt == 0) | (dt == 1))              # rounded to the nearest second
    ok = frac != "***"
    assert (~ok).sum() == 10                         # the 10 cells with '***' milliseconds
    exact_ms = utc[ok].astype("datetime64[ms]") + frac[ok].astype(int).astype("timedelta64[ms]")
    from_secs_ms = np.datetime64("2000-01-01T12:00:00", "ms") + np.rint(
        f["tb_time_seconds"][i][ok] * 1000).astype("timedelta64[ms]")
    assert np.abs((from_secs_ms - exact_ms).astype(int)).max() <= 1     # the epoch of PRODUCTS.md section 0
    assert np.all(np.abs((h.time[ok].astype("datetime64[ms]") - exact_ms).astype(int)) <= 501)
    first = np.argmin(h.row * 1000 + h.col)
    assert np.datetime64("2015-08-11T02:00") < h.time[first] < np.datetime64("2015-08-11T03:00")
    assert np.all(h.error_std == 4.0)


@need_l2
def test_l2_tb_qc_counts_independent(l2_file):
    f = l2_file
    t = read("smap_l2_sm_p", [L2], kind="tb", pols=("H",))
    i = _cell_index(f, t)
    s = f["surface_flag"][i].astype(int)
    q = f["tb_qual_flag_h"][i].astype(int)
    w = f["static_water_body_fraction"][i]
    fill = s == 65534
    # surface bits 0/1 water, 5/6 snow; NOT 7/8 frozen ground ("or not determined"); water fraction > 5 %
    bad = (~fill & (((s & 0b11) != 0) | ((s & 0b1100000) != 0) | (w > 0.05))) | ((q & 1) != 0) | (q == 65534)
    tb = f["tb_h_corrected"][i]
    bad |= (tb < 100) | (tb > 320)
    assert t.accepted.sum() == (~bad).sum() == t.qc_counts()["accepted"]
    assert sum(t.qc_counts().values()) == len(t)
    assert t.qc_counts()["open_water"] > 10000       # most of a half-orbit is ocean
    assert np.all(np.isfinite(t.value[t.accepted]))
    assert np.all((t.value[t.accepted] > 100) & (t.value[t.accepted] < 320))
    # flags: tb_qual in the low 16 bits, surface_flag in the high 16 bits
    np.testing.assert_array_equal(t.flags & 0xFFFF, q)
    np.testing.assert_array_equal(t.flags >> 16, s)


@need_l2
def test_l2_sm_fill_and_quality(l2_file):
    f = l2_file
    t = read("smap_l2_sm_p", [L2], kind="sm", error_std=0.05)
    assert len(t) == 17251 and set(t.pol) == {""} and set(t.kind) == {"sm"}
    n_fill = int((f["soil_moisture"] == -9999).sum())
    assert n_fill == 15918
    fills = t.qc == 1
    assert fills.sum() == n_fill and np.all(np.isnan(t.value[fills]))
    acc = t.select(t.accepted)
    i = _cell_index(f, acc)
    assert np.all((f["retrieval_qual_flag"][i] & 1) == 0)      # only "recommended" retrievals
    assert np.all((f["surface_flag"][i] & (1 << 10)) == 0)      # no dense vegetation for SM
    np.testing.assert_allclose(acc.value, f["soil_moisture"][i], rtol=1e-7)
    assert 0 < len(acc) <= 592 and np.all(acc.error_std == 0.05)
    assert np.all((acc.value >= 0) & (acc.value <= 0.6))
    assert np.all(np.isnan(acc.angle_deg))


@need_l2
def test_l2_domain_and_period_subsetting():
    full = read("smap_l2_sm_p", [L2], kind="tb", pols=("V",))
    bbox = (60.0, 66.0, -150.0, -140.0)                 # Alaska, where the sample has land data
    t0 = read("smap_l2_sm_p", [L2], kind="tb", pols=("V",), bbox=bbox, halo_km=0.0)
    t1 = read("smap_l2_sm_p", [L2], kind="tb", pols=("V",), bbox=bbox, halo_km=100.0)
    assert 0 < len(t0) < len(t1) < len(full)
    assert np.all((t0.lat >= 60) & (t0.lat <= 66) & (t0.lon >= -150) & (t0.lon <= -140))
    # the halo is in projected EASE-Grid metres (cell centres within 100 km of the box edges)
    from smda.model.grid import latlon_to_xy
    xs, ys = latlon_to_xy(np.array([60.0, 66.0]), np.array([-150.0, -140.0]))
    assert np.all((t1.y >= ys[0] - 1e5) & (t1.y <= ys[1] + 1e5) & (t1.x >= xs[0] - 1e5) & (t1.x <= xs[1] + 1e5))
    assert t1.y.max() > ys[1] + 5e4 and t1.y.min() < ys[0] - 5e4
    # the subset equals the same rows of the full read
    key = full.row * 1000 + full.col
    sel = np.isin(key, t0.row * 1000 + t0.col)
    np.testing.assert_array_equal(np.sort(full.value[sel]), np.sort(t0.value))
    np.testing.assert_array_equal(np.sort(full.qc[sel]), np.sort(t0.qc))
    # period [start, end): the half-orbit is 2015-08-11 01:30-03:00
    assert len(read("smap_l2_sm_p", [L2], start=np.datetime64("2015-08-12"), end=np.datetime64("2015-08-13"))) == 0
    mid = np.sort(full.time)[len(full) // 2]
    early = read("smap_l2_sm_p", [L2], kind="tb", pols=("V",), end=mid)
    late = read("smap_l2_sm_p", [L2], kind="tb", pols=("V",), start=mid)
    assert len(early) + len(late) == len(full) and np.all(early.time < mid) and np.all(late.time >= mid)
    # xy bbox gives the same as the equivalent lat/lon box
    t2 = read("smap_l2_sm_p", [L2], kind="tb", pols=("V",), xy_bbox=(xs[0], xs[1], ys[0], ys[1]), halo_km=0)
    assert len(t2) == len(t0)


def test_bad_requests(tmp_path):
    with pytest.raises(ValueError, match="unknown observation product 'smap_l4'.*smap_l2_sm_p"):
        read("smap_l4", [tmp_path / "x.h5"])
    with pytest.raises(FileNotFoundError, match="nothere.h5"):
        read("smap_l2_sm_p", [tmp_path / "nothere.h5"])
    with pytest.raises(ValueError, match="unknown option.*'looks'.*valid"):
        read("smap_l2_sm_p", [tmp_path / "x.h5"], looks="mean")
    with pytest.raises(ValueError, match="bbox latitudes"):
        read("smap_l2_sm_p", [], bbox=(50, 40, 0, 10))
    with pytest.raises(ValueError, match="start"):
        read("smap_l2_sm_p", [], start=np.datetime64("2020-01-02"), end=np.datetime64("2020-01-01"))
    with pytest.raises(ValueError, match="error_std"):
        read("smap_l2_sm_p", [], error_std=-1)
    with pytest.raises(ValueError, match="kind"):
        read("smap_l1c_tb", [], kind="sm")


@need_l2
def test_corrupt_truncated_and_wrong_files(tmp_path):
    trunc = tmp_path / "SMAP_L2_truncated.h5"
    trunc.write_bytes(L2.read_bytes()[:200_000])
    with pytest.raises(ValueError, match="SMAP_L2_truncated.h5"):
        read("smap_l2_sm_p", [trunc])
    text = tmp_path / "not_hdf5.h5"
    text.write_text("hello")
    with pytest.raises(ValueError, match="not_hdf5.h5.*HDF5"):
        read("smap_l2_sm_p", [text])
    with pytest.raises(ValueError, match="Global_Projection"):       # an L2 file given as L1C
        read("smap_l1c_tb", [L2])
    with pytest.raises(ValueError, match="Soil_Moisture_Retrieval_Data_AM"):
        read("smap_l3_sm_p", [L2])
    # a dataset missing from an otherwise valid file is named
    broken = tmp_path / "missing_sm.h5"
    with h5py.File(L2, "r") as src, h5py.File(broken, "w") as dst:
        g = dst.create_group(G)
        for k in src[G]:
            if k != "soil_moisture":
                src.copy(src[G][k], g, name=k)
    with pytest.raises(ValueError, match="missing_sm.h5.*'soil_moisture'"):
        read("smap_l2_sm_p", [broken], kind="sm")
    assert len(read("smap_l2_sm_p", [broken], kind="tb")) == 2 * 17251


# --------------------------------------------------------------------------------------------------
# L3_SM_P / L3_SM_P_E files written in the official structure
# --------------------------------------------------------------------------------------------------
def _ds(g, name, shape, dtype, fill, data=None, window=None, **attrs):
    d = g.create_dataset(name, shape=shape, dtype=dtype, fillvalue=fill, chunks=True, compression="gzip")
    d.attrs["_FillValue"] = np.array(fill, dtype)
    for k, v in attrs.items():
        d.attrs[k] = v
    if data is not None:
        d[window] = data
    return d


# test window near Oklahoma (M36 rows 90-94, cols 226-231)
def write_l3(path, grid_name="M36", day="2020-04-01", pm_suffix=True, sm_fill_cell=None, tropical=False):
    grid = GRIDS[grid_name]
    shape = (grid.n_rows, grid.n_cols)
    n = 36 // {"M36": 36, "M09": 9}[grid_name]
    r0, c0 = 90 * n, 226 * n
    nr, nc = 5 * n, 6 * n
    win = (slice(r0, r0 + nr), slice(c0, c0 + nc))
    rr, cc = np.meshgrid(np.arange(r0, r0 + nr), np.arange(c0, c0 + nc), indexing="ij")
    truth = {}
    with h5py.File(path, "w") as f:
        for p in ("AM", "PM"):
            g = f.create_group(f"Soil_Moisture_Retrieval_Data_{p}")
            s = "_pm" if (p == "PM" and pm_suffix) else ""
            hour = 12 if p == "AM" else 0   # local 6 am / 6 pm at ~97 W is ~12 / 0 UTC
            t_utc = np.datetime64(f"{day}T{hour:02d}:00:00") + (p == "PM") * np.timedelta64(1, "D")
            secs = (t_utc - np.datetime64("2000-01-01T12:00:00")).astype("timedelta64[s]").astype(float)
            sm = 0.1 + 0.001 * (rr - r0) + 0.0001 * (cc - c0) + (0.05 if p == "PM" else 0.0)
            if sm_fill_cell is not None:
                sm[sm_fill_cell] = -9999.0
            tbh = 200.0 + (rr - r0) + 0.1 * (cc - c0)
            rq = np.zeros(rr.shape, np.uint16)
            rq[0, 0] = 1                                   # not recommended
            sf = np.zeros(rr.shape, np.uint16)
            sf[0, 1] = 1 << 7                              # radiometer frozen ground
            sf[0, 2] = 1 << 5                              # snow
            sf[0, 3] = 1 << 10                             # dense vegetation (SM only)
            tq = np.zeros(rr.shape, np.uint16)
            tq[1, 0] = 1 | 4                               # bad quality with RFI detected
            wf = np.zeros(rr.shape, np.float32)
            wf[1, 1] = 0.2                                 # 20 % static water
            ft = np.zeros(rr.shape, np.float32)
            ft[0, 4] = 0.5                                 # the product's own freeze/thaw: half the cell frozen
            if tropical:
                sf[:] |= 1 << 7                            # "radiometer frozen ground" bit on every cell
            _ds(g, "soil_moisture" + s, shape, "f4", -9999.0, sm, win, units="cm**3/cm**3")
            _ds(g, "retrieval_qual_flag" + s, shape, "u2", 65534, rq, win, flag_masks="1s, 2s, 4s, 8s")
            _ds(g, "surface_flag" + s, shape, "u2", 65534, sf, win)
            _ds(g, "tb_h_corrected" + s, shape, "f4", -9999.0, tbh, win, units="Kelvin")
            _ds(g, "tb_v_corrected" + s, shape, "f4", -9999.0, tbh + 20, win, units="Kelvin")
            _ds(g, "tb_qual_flag_h" + s, shape, "u2", 65534, tq, win)
            _ds(g, "tb_qual_flag_v" + s, shape, "u2", 65534, np.zeros_like(tq), win)
            _ds(g, "boresight_incidence" + s, shape, "f4", -9999.0, np.full(rr.shape, 40.1), win, units="degrees")
            _ds(g, "tb_time_seconds" + s, shape, "f8", -9999.0, np.full(rr.shape, secs), win, units="seconds")
            _ds(g, "static_water_body_fraction" + s, shape, "f4", -9999.0, wf, win)
            _ds(g, "freeze_thaw_fraction" + s, shape, "f4", -9999.0, ft, win)
            _ds(g, "vegetation_opacity" + s, shape, "f4", -9999.0, np.where(cc - c0 == 5, 1.2, 0.3), win)
            _ds(g, "EASE_row_index" + s, shape, "u2", 65534, rr.astype(np.uint16), win)
            _ds(g, "EASE_column_index" + s, shape, "u2", 65534, cc.astype(np.uint16), win)
            lat, lon = grid.latlon(rr, cc)
            _ds(g, "latitude" + s, shape, "f4", -9999.0, lat, win)
            _ds(g, "longitude" + s, shape, "f4", -9999.0, lon, win)
            truth[p] = {"sm": sm, "tbh": tbh, "time": t_utc, "rows": rr, "cols": cc}
    return truth


def test_l3_sm_p_am_pm_values_rowcol_times(tmp_path):
    path = tmp_path / "SMAP_L3_SM_P_20200401_R16515_001.h5"
    truth = write_l3(path)
    t = read("smap_l3_sm_p", [path], kind="sm")
    assert len(t) == 2 * 30
    for p, day_off in (("AM", 0), ("PM", 1)):
        tr = truth[p]
        sel = t.time == tr["time"]
        assert sel.sum() == 30
        sub = t.select(sel)
        idx = (sub.row - 90) * 6 + (sub.col - 226)
        np.testing.assert_allclose(sub.value[np.isfinite(sub.value)], tr["sm"].ravel()[idx], rtol=1e-6)
        lat_f, lon_f = ease_latlon(sub.row, sub.col)
        np.testing.assert_allclose(sub.lat, lat_f, atol=1e-7)
        assert str(tr["time"])[:10] == f"2020-04-0{1 + day_off}"
    # QC per flagged cell (AM and PM alike); counts name each reason; frozen ground from freeze_thaw_fraction
    # (cell [0, 4]), not from the surface_flag bit 7 of cell [0, 1]
    c = t.qc_counts()
    assert c["accepted"] == 50 and c["open_water"] == 2 and c["frozen_ground"] == 2
    frozen = t.select(t.qc == 5)
    assert set(zip(frozen.row, frozen.col, strict=True)) == {(90, 230)}
    assert c["snow"] == 2 and c["dense_vegetation"] == 2
    assert c["product_quality_flag"] == 2 and sum(c.values()) == 60
    am_pm = read("smap_l3_sm_p", [path], kind="sm", passes=("PM",))
    assert len(am_pm) == 30 and np.all(am_pm.time == truth["PM"]["time"])
    assert set(t.footprint) == {"M36"}


def test_l3_sm_p_tb_and_qc(tmp_path):
    path = tmp_path / "SMAP_L3_SM_P_20200401_R16515_001.h5"
    write_l3(path)
    t = read("smap_l3_sm_p", [path], kind="tb", passes=("AM",))
    assert len(t) == 60 and set(t.pol) == {"H", "V"}
    c = t.qc_counts()
    # H: frozen (freeze/thaw fraction), snow, water, rfi (bad quality with RFI bit) rejected; dense vegetation
    # is NOT a TB reason
    assert c["rfi"] == 1 and c["frozen_ground"] == 2 and c["snow"] == 2 and c["open_water"] == 2
    assert "dense_vegetation" not in c and c["accepted"] == 60 - 7
    h = t.select((t.pol == "H") & t.accepted)
    np.testing.assert_allclose(h.value, 200.0 + (h.row - 90) + 0.1 * (h.col - 226), rtol=1e-6)
    np.testing.assert_allclose(h.angle_deg, 40.1, rtol=1e-6)


def test_l3_pm_naming_and_fill(tmp_path):
    bad = tmp_path / "SMAP_L3_SM_P_noPMsuffix.h5"
    write_l3(bad, pm_suffix=False)
    with pytest.raises(ValueError, match="noPMsuffix.h5.*Soil_Moisture_Retrieval_Data_PM.*'soil_moisture_pm'"):
        read("smap_l3_sm_p", [bad], kind="sm")
    assert len(read("smap_l3_sm_p", [bad], kind="sm", passes=("AM",))) == 30
    path = tmp_path / "SMAP_L3_SM_P_fill.h5"
    write_l3(path, sm_fill_cell=(2, 2))
    t = read("smap_l3_sm_p", [path], kind="sm", passes=("AM",))
    fills = t.select(t.qc == 1)
    assert len(fills) == 1 and np.isnan(fills.value[0]) and (fills.row[0], fills.col[0]) == (92, 228)


def test_l3_domain_subset_lazy_window(tmp_path):
    path = tmp_path / "SMAP_L3_SM_P_20200401_R16515_001.h5"
    write_l3(path)
    lat, lon = GRIDS["M36"].latlon(92, 228)
    t = read("smap_l3_sm_p", [path], kind="sm", passes=("AM",), bbox=(lat - 0.1, lat + 0.1, lon - 0.1, lon + 0.1),
             halo_km=0.0)
    assert len(t) == 1 and (t.row[0], t.col[0]) == (92, 228)
    t = read("smap_l3_sm_p", [path], kind="sm", passes=("AM",), bbox=(lat - 0.1, lat + 0.1, lon - 0.1, lon + 0.1),
             halo_km=40.0)
    assert len(t) == 9                     # 36 km cells within 40 km: the 3 x 3 neighbourhood
    assert len(read("smap_l3_sm_p", [path], bbox=(-10, 0, 0, 10))) == 0
    # period
    assert len(read("smap_l3_sm_p", [path], kind="sm", start=np.datetime64("2020-04-01T18:00"))) == 30


def test_l3_sm_p_e_9km(tmp_path):
    path = tmp_path / "SMAP_L3_SM_P_E_20200401_R16515_001.h5"
    truth = write_l3(path, grid_name="M09")
    t = read("smap_l3_sm_p_e", [path], kind="sm", passes=("AM",))
    # the real antenna footprint: Gaussian of 16 km sigma (FWHM 38 km) centred on the 9 km posting
    assert len(t) == 20 * 24 and set(t.footprint) == {"gauss"} and np.all(t.fov_km == 16.0)
    np.testing.assert_allclose(t.x, -17367530.4451615 + (t.col + 0.5) * 9008.055210146, atol=1e-3)
    assert np.all(read("smap_l3_sm_p_e", [path], kind="sm", passes=("AM",), fov_km=20.0).fov_km == 20.0)
    lat_f, lon_f = ease_latlon(t.row, t.col, s=9008.055210146)
    np.testing.assert_allclose(t.lat, lat_f, atol=1e-7)
    idx = (t.row - 360) * 24 + (t.col - 904)
    ok = np.isfinite(t.value)
    np.testing.assert_allclose(t.value[ok], truth["AM"]["sm"].ravel()[idx][ok], rtol=1e-6)
    with pytest.raises(ValueError, match="shape"):           # a 36 km file read as the 9 km product
        p36 = tmp_path / "m36.h5"
        write_l3(p36)
        read("smap_l3_sm_p_e", [p36])


# --------------------------------------------------------------------------------------------------
# L1C_TB written in the official structure
# --------------------------------------------------------------------------------------------------
def write_l1c(path, fore_h, aft_h, qual_fore=None, qual_aft=None, t0="2015-08-11T02:00:00"):
    n = len(fore_h)
    rows = np.full(n, 92, np.uint16)
    cols = (226 + np.arange(n)).astype(np.uint16)
    secs0 = (np.datetime64(t0) - np.datetime64("2000-01-01T12:00:00")).astype("timedelta64[s]").astype(float)
    with h5py.File(path, "w") as f:
        g = f.create_group("Global_Projection")
        g.create_dataset("cell_row", data=rows)
        g.create_dataset("cell_column", data=cols)
        lat, lon = GRIDS["M36"].latlon(rows, cols)
        g.create_dataset("cell_lat", data=lat.astype("f4"))
        g.create_dataset("cell_lon", data=lon.astype("f4"))
        for look, tbh, q, dt in (("fore", fore_h, qual_fore, 0.0), ("aft", aft_h, qual_aft, 120.0)):
            g.create_dataset(f"cell_tb_h_{look}", data=np.asarray(tbh, "f4"))
            g.create_dataset(f"cell_tb_v_{look}", data=np.asarray(tbh, "f4") + 30)
            qq = np.zeros(n, np.uint16) if q is None else np.asarray(q, np.uint16)
            g.create_dataset(f"cell_tb_qual_flag_h_{look}", data=qq)
            g.create_dataset(f"cell_tb_qual_flag_v_{look}", data=np.zeros(n, np.uint16))
            g.create_dataset(f"cell_tb_time_seconds_{look}", data=np.full(n, secs0 + dt))
            g.create_dataset(f"cell_boresight_incidence_{look}", data=np.full(n, 40.0 + dt / 1200, "f4"))
            for d in (g[f"cell_tb_h_{look}"], g[f"cell_tb_v_{look}"], g[f"cell_boresight_incidence_{look}"]):
                d.attrs["_FillValue"] = np.float32(-9999.0)


def test_l1c_tb_fore_aft_mean_and_qc(tmp_path):
    path = tmp_path / "SMAP_L1C_TB_02801_A_20150811T013002_R17000_001.h5"
    fore = np.array([250.0, 240.0, -9999.0, 230.0, 50.0])
    aft = np.array([252.0, 244.0, 260.0, 232.0, 50.0])
    write_l1c(path, fore, aft, qual_fore=[0, 0, 0, 1, 0])
    t = read("smap_l1c_tb", [path], pols=("H",))
    assert len(t) == 5
    np.testing.assert_allclose(t.value[:4], [251.0, 242.0, 260.0, 232.0])   # fill/bad-quality fore -> aft only
    assert t.qc_counts() == {"accepted": 4, "out_of_range": 1}
    np.testing.assert_array_equal(t.time[:2], np.datetime64("2015-08-11T02:01:00"))  # mean of 02:00 and 02:02
    assert t.time[2] == np.datetime64("2015-08-11T02:02:00")
    np.testing.assert_allclose(t.angle_deg[:2], 40.05, rtol=1e-6)
    both = read("smap_l1c_tb", [path], pols=("H",), looks="both")
    assert len(both) == 10 and both.qc_counts()["fill_value"] == 1 and both.qc_counts()["product_quality_flag"] == 1
    fore_only = read("smap_l1c_tb", [path], pols=("H",), looks="fore")
    assert np.isnan(fore_only.value[2]) and fore_only.qc[2] == 1


def test_l1c_tb_orbit_rejected_when_fore_aft_disagree(tmp_path):
    path = tmp_path / "SMAP_L1C_TB_bad_orbit.h5"
    fore = np.array([250.0, 200.0, 260.0, 180.0])
    aft = np.array([200.0, 260.0, 190.0, 240.0])       # std(fore - aft) >> 20 K
    write_l1c(path, fore, aft)
    t = read("smap_l1c_tb", [path])
    assert t.qc_counts() == {"product_quality_flag": 8}  # the whole half-orbit, H and V


# --------------------------------------------------------------------------------------------------
# QC options (namelist source options) on the real sample and on written files
# --------------------------------------------------------------------------------------------------
@need_l2
def test_l2_qc_options_change_what_is_accepted(l2_file):
    f = l2_file
    base = read("smap_l2_sm_p", [L2], kind="tb")
    # passes: the sample is an ascending (6 pm, "_A_") half-orbit
    assert len(read("smap_l2_sm_p", [L2], kind="tb", passes=("AM",))) == 0
    assert len(read("smap_l2_sm_p", [L2], kind="tb", passes="PM")) == len(base)
    # tb_variant: the uncorrected TB (no water correction) values, same screening
    unc = read("smap_l2_sm_p", [L2], kind="tb", pols=("H",), tb_variant="uncorrected")
    i = _cell_index(f, unc)
    with h5py.File(L2) as h:
        np.testing.assert_array_equal(unc.value, h[G]["tb_h_uncorrected"][()][i].astype(float))
        t_surf = h[G]["surface_temperature"][()]
    assert np.sum(unc.value != base.select(base.pol == "H").value) > 1000
    # frozen ground: bit 7 ("radiometer frozen ground, or not determined") does not reject by default; asked for,
    # it rejects cells whose GMAO surface temperature is 277-298 K in August, i.e. thawed ground
    strict = read("smap_l2_sm_p", [L2], kind="tb", pols=("H",), reject_bits={"surface_flag": [0, 1, 5, 6, 7, 8]})
    h0 = base.select(base.pol == "H")
    newly = h0.accepted & (strict.qc == 5)
    assert newly.sum() == 4 and "frozen_ground" not in h0.qc_counts()
    assert np.all(t_surf[_cell_index(f, h0.select(newly))] > 276.0)
    # soil moisture: a VOD limit and the retrieval flag
    sm = read("smap_l2_sm_p", [L2], kind="sm")
    assert sm.qc_counts()["accepted"] == 592
    veg = read("smap_l2_sm_p", [L2], kind="sm", max_vod=0.3)
    assert veg.accepted.sum() == 251 and veg.qc_counts()["dense_vegetation"] == 570
    assert read("smap_l2_sm_p", [L2], kind="sm", reject_bits={"retrieval_qual_flag": []}).accepted.sum() == 642
    with pytest.raises(ValueError, match="tb_variant"):
        read("smap_l2_sm_p", [L2], tb_variant="raw")
    with pytest.raises(ValueError, match="reject_bits has unknown flag field.*surface_flag"):
        read("smap_l2_sm_p", [L2], reject_bits={"surface_flags": [7]})


def test_l3_tropical_undetermined_frozen_bit_not_rejected(tmp_path):
    """The issue's tropical site: surface_flag bit 7 set on every cell, ground thawed: nothing rejected as frozen."""
    warm, trop = tmp_path / "SMAP_L3_SM_P_20170101_R16515_001.h5", tmp_path / "SMAP_L3_SM_P_20170102_R16515_001.h5"
    write_l3(warm)
    write_l3(trop, tropical=True, day="2017-01-02")
    a, b = read("smap_l3_sm_p", [warm], kind="tb"), read("smap_l3_sm_p", [trop], kind="tb")
    np.testing.assert_array_equal(a.qc, b.qc)
    assert b.qc_counts()["accepted"] == 2 * 60 - 14 and b.qc_counts()["frozen_ground"] == 4     # the F/T fraction
    assert np.all((b.flags >> 16) & (1 << 7))
    # the bit rejects only when asked for; the product's freeze/thaw field can be turned off or relaxed
    strict = read("smap_l3_sm_p", [trop], kind="tb", reject_bits={"surface_flag": [0, 1, 5, 6, 7]})
    assert strict.accepted.sum() == 0
    assert read("smap_l3_sm_p", [trop], kind="tb", max_frozen_fraction=None).qc_counts().get("frozen_ground", 0) == 0
    assert read("smap_l3_sm_p", [trop], kind="tb", max_frozen_fraction=0.5).qc_counts().get("frozen_ground", 0) == 0
    # a VOD limit rejects the column written with VOD 1.2 (SM and TB alike when given)
    veg = read("smap_l3_sm_p", [trop], kind="tb", passes=("AM",), max_vod=1.0)
    assert veg.qc_counts()["dense_vegetation"] == 2 * 5           # column 5 of the 5 rows, H and V


# --------------------------------------------------------------------------------------------------
# SMAP/Sentinel-1 L2_SM_SP, written in the SPL2SMAP_S structure
# --------------------------------------------------------------------------------------------------
def write_l2_sm_sp(path, r3=(1400, 1410), c3=(3300, 3308), t="2017-06-01T12:30:00"):
    """A scene of the 3 km and 1 km groups: 2-D arrays, suffixed names, fill outside the swath."""
    truth = {}
    secs = (np.datetime64(t) - np.datetime64("2000-01-01T12:00:00")).astype("timedelta64[s]").astype(float)
    with h5py.File(path, "w") as f:
        for res, n in (("3km", 1), ("1km", 3)):
            rows = np.arange(r3[0] * n, r3[1] * n)
            cols = np.arange(c3[0] * n, c3[1] * n)
            rr, cc = np.meshgrid(rows, cols, indexing="ij")
            g = f.create_group(f"Soil_Moisture_Retrieval_Data_{res}")
            sm = (0.2 + 0.001 * (rr - rows[0]) + 0.0001 * (cc - cols[0])).astype("f4")
            sm[0, 0] = -9999.0
            sd = np.full(sm.shape, 0.03, "f4")
            sd[1, 1] = -9999.0
            q = np.zeros(sm.shape, "u2")
            q[0, 1] = 1
            sf = np.zeros(sm.shape, "u2")
            sf[0, 2] = 1 << 7                  # "frozen ground or not determined": not a rejection
            sf[0, 3] = 1                       # static water
            row_i, col_i = rr.astype("u2"), cc.astype("u2")
            row_i[-1, :] = 65534               # outside the scene
            col_i[-1, :] = 65534
            for name, arr in (("soil_moisture", sm), ("soil_moisture_std_dev", sd), ("retrieval_qual_flag", q),
                              ("surface_flag", sf), ("EASE_row_index", row_i), ("EASE_column_index", col_i),
                              ("spacecraft_overpass_time_seconds", np.full(sm.shape, secs))):
                g.create_dataset(f"{name}_{res}", data=arr)
            truth[res] = {"sm": sm, "rows": rr, "cols": cc}
    return truth


def test_l2_sm_sp_3km_and_1km(tmp_path):
    path = tmp_path / "SMAP_L2_SM_SP_1AIWDV_20170601T123000_20170601T121500_097W36N_R16010_001.h5"
    truth = write_l2_sm_sp(path)
    t3 = read("smap_l2_sm_sp", [path])
    n3 = 9 * 8                                            # last row outside the scene (index fill)
    assert len(t3) == n3 and set(t3.footprint) == {"M03"} and set(t3.kind) == {"sm"}
    assert np.all(t3.time == np.datetime64("2017-06-01T12:30:00"))
    assert t3.qc_counts() == {"accepted": n3 - 3, "fill_value": 1, "product_quality_flag": 1, "open_water": 1}
    idx = (t3.row - 1400) * 8 + (t3.col - 3300)
    ok = np.isfinite(t3.value)
    np.testing.assert_allclose(t3.value[ok], truth["3km"]["sm"].ravel()[idx][ok], rtol=1e-6)
    np.testing.assert_allclose(t3.x, -17367530.4451615 + (t3.col + 0.5) * 3002.6850700487, atol=1e-3)
    assert np.all(t3.error_std == 0.04)
    pe = read("smap_l2_sm_sp", [path], product_error=True, error_std=0.05)
    assert np.isclose(pe.error_std, 0.03).sum() == n3 - 1 and np.isclose(pe.error_std, 0.05).sum() == 1
    # 1 km: the M01 cell itself (a Gaussian narrower than a cell: one weight)
    t1 = read("smap_l2_sm_sp", [path], resolution="1km")
    assert len(t1) == 29 * 24 and set(t1.footprint) == {"gauss"}
    assert np.allclose(t1.fov_km, 1.00089502334956 / np.sqrt(12))
    np.testing.assert_allclose(t1.y, 7314540.8306386 - (t1.row + 0.5) * 1000.89502334956, atol=1e-3)
    # domain subset and bad requests
    lat, lon = GRIDS["M03"].latlon(1402, 3303)
    sub = read("smap_l2_sm_sp", [path], bbox=(lat - 0.01, lat + 0.01, lon - 0.01, lon + 0.01), halo_km=0.0)
    assert len(sub) == 1 and (sub.row[0], sub.col[0]) == (1402, 3303)
    with pytest.raises(ValueError, match="resolution"):
        read("smap_l2_sm_sp", [path], resolution="9km")
    with pytest.raises(ValueError, match="kind"):
        read("smap_l2_sm_sp", [path], kind="tb")
    with pytest.raises(ValueError, match="Soil_Moisture_Retrieval_Data_3km"):
        l3 = tmp_path / "SMAP_L3_SM_P_20200401_R16515_001.h5"
        write_l3(l3)
        read("smap_l2_sm_sp", [l3])
