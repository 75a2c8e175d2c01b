"""`twin` end to end through its command line, on both embedded cases, and its handling of bad input."""

import json
import subprocess
import sys

import pandas as pd
import pytest
import xarray as xr
from conftest import write_variant

from twin.limits import COLUMNS
from twin.network import build_net


def twin(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "twin", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=900)


@pytest.fixture(scope="module", params=["shanghai_campus", "small_campus"])
def run_dir(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param) / "results"
    # the year-in-the-loop study over three days (a year of it is the benchmark's and README's job)
    week = ["--period", "2025-07-01/2025-07-04"]
    args = (["run", "--out", str(out)] if request.param == "shanghai_campus"
            else ["run", request.param, "--out", str(out)]) + week
    p = twin(*args)
    assert p.returncode == 0, p.stderr[-3000:]
    return request.param, out


def test_run_writes_every_file(run_dir):
    _, out = run_dir
    for f in ("loadflow.nc", "shortcircuit.nc", "contingency.nc", "drivers.nc", "battery.nc", "timeseries.nc",
              "timeseries_sustained_training.nc", "checks.csv", "summary.json", "report.html"):
        assert (out / f).exists(), f
    assert not list(out.glob(".tmp-*")), "temporary files left behind"
    for nc in out.glob("*.nc"):
        ds = xr.open_dataset(nc, engine="h5netcdf")
        for v in ds.data_vars:
            assert "units" in ds[v].attrs and "long_name" in ds[v].attrs, (nc.name, v)
        ds.close()


def test_summary_counts_equal_checks_csv(run_dir):
    name, out = run_dir
    checks = pd.read_csv(out / "checks.csv")
    summary = json.loads((out / "summary.json").read_text())
    assert list(checks.columns) == COLUMNS
    assert set(checks.status) <= {"PASS", "WARN", "FAIL"}
    assert summary["case"] == name and len(summary["case_sha256"]) == 64
    assert {"python", "pandapower", "numpy", "xarray"} <= set(summary["versions"])
    assert set(summary["studies"]) == {"loadflow", "shortcircuit", "contingency", "drivers", "battery", "timeseries",
                                       "timeseries_sustained_training", "switchover", "ridethrough",
                                       "swing"}
    for study, fig in summary["studies"].items():
        rows = checks[checks.study == study]
        assert fig["checks"] == len(rows)
        for s in ("PASS", "WARN", "FAIL"):
            assert fig[s.lower()] == int((rows.status == s).sum()), (study, s)


def test_checks_cover_every_bus_branch_and_outage(run_dir):
    name, out = run_dir
    from twin.case import load_case

    case = load_case(name)
    net = build_net(case)
    checks = pd.read_csv(out / "checks.csv", keep_default_na=False)
    lf = checks[checks.study == "loadflow"]
    for op in case.spec.operating_points:
        rows = lf[lf.scenario == op.name]
        assert set(rows[rows.quantity == "vm_pu"].element) == set(net.bus["name"]), op.name
        assert set(rows[rows.quantity == "loading_percent"].element) == set(net.line["name"]) | set(net.trafo["name"])
    # the stress point FAILs
    assert (lf[lf.scenario == "stress_full_charge"].status == "FAIL").any()
    sc = checks[checks.study == "shortcircuit"]
    assert set(sc[sc.quantity == "ikss_ka"].element) == set(net.bus["name"])
    n1 = checks[checks.study == "contingency"]
    outaged = set(net.line["name"]) | set(net.trafo["name"])
    for el in outaged:
        rows = n1[n1.scenario.str.contains(f"| {el} out |", regex=False)]
        states = {s.rsplit("|", 1)[-1].strip() for s in rows.scenario}
        assert {"immediate", "after_transfer"} <= states, el


def test_battery_study_in_the_run(run_dir):
    """The battery study on the drivers' worst day: energy balance from the file; the seed case cannot hold the cap
    and the report says so in words."""
    import numpy as np

    name, out = run_dir
    ds = xr.open_dataset(out / "battery.nc", engine="h5netcdf")
    np.testing.assert_allclose(ds.grid_import_mw, ds.site_load_mw - ds.battery_p_mw + ds.battery_aux_mw,
                               rtol=0, atol=1e-9)
    fig = json.loads((out / "summary.json").read_text())["studies"]["battery"]
    drv = pd.read_csv(out / "checks.csv", keep_default_na=False).query("study == 'drivers'")
    if name == "shanghai_campus":
        assert fig["design_day"] == drv.scenario.iloc[0]  # the drivers' worst day
        assert fig["design_day_energy_above_cap_unserved_mwh"] > 10 and fig["design_day_peak_import_mw"] > 6.0
        html = (out / "report.html").read_text()
        assert "the battery cannot hold the" in html
    ds.close()


def test_report_is_an_html_page(run_dir):
    _, out = run_dir
    html = (out / "report.html").read_text()
    assert html.lstrip().lower().startswith("<!doctype html") and "data:image/png;base64," in html


def test_study_writes_only_its_own(tmp_path):
    out = tmp_path / "lf"
    p = twin("study", "loadflow", "small_campus", "--out", str(out))
    assert p.returncode == 0, p.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["studies"]) == ["loadflow"]
    assert (out / "loadflow.nc").exists() and not (out / "shortcircuit.nc").exists()
    assert set(pd.read_csv(out / "checks.csv").study) == {"loadflow"}


@pytest.mark.parametrize("old,new,key", [
    ("gpu_count = 1248", "gpu_cnt = 1248", "gpu_cnt"),
    ("s_sc_max_mva = 300.0", "s_sc_max_mva = -300.0", "s_sc_max_mva"),
])
def test_bad_case_exits_nonzero_with_one_line_and_writes_nothing(tmp_path, old, new, key):
    case = write_variant(tmp_path, old, new)
    out = tmp_path / "out"
    p = twin("run", str(case), "--out", str(out))
    assert p.returncode != 0
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, p.stderr
    assert key in lines[0] and str(case) in lines[0]
    assert "Traceback" not in p.stderr
    assert not out.exists()


def test_unknown_study_and_help():
    p = twin("study", "nosuch")
    assert p.returncode == 2 and "no study 'nosuch'" in p.stderr
    h = twin("--help")
    assert h.returncode == 0
    for cmd in ("run", "study", "check", "sld", "list"):
        assert cmd in h.stdout
    assert twin("run", "--help").returncode == 0
