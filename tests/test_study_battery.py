"""The battery study: usable energy measured against the ratings, the design-day dispatch and its energy balance,
the small case end to end through the command line, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from twin.battery import pcs_efficiency, ratings
from twin.battery.system import system_spec
from twin.case import CaseError
from twin.studies import battery


def twin(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "twin", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=900)


@pytest.fixture(scope="module")
def small_test(small_case):
    return battery.capacity_test(small_case, dt_s=10.0)


def test_usable_energy_measured_agrees_with_ratings(small_case, small_test):
    """Measured within 5 % of the ratings' computed value, and the gap explained.

    The ratings take usable AC = nameplate (cells x capacity x 3.2 V nominal) x SOC window x a constant one-way
    DC efficiency (0.975) x the PCS efficiency at rated power. The model delivers the OCV integral over the window
    (the LFP plateau sits at 3.27-3.32 V, above the 3.2 V nominal) less the cells' resistive loss at 0.25 C (about
    1 %), then the same PCS efficiency: so measured exceeds computed by a few per cent.
    """
    r = ratings(small_case)
    t = small_test
    assert t.energy_ac_out_mwh == pytest.approx(r.usable_ac_mwh, rel=0.05)
    spec = system_spec(small_case)
    cont = small_case.model("battery/containers", small_case.spec.battery.container)
    pcs = small_case.model("pcs", small_case.spec.battery.pcs)
    soc = np.linspace(cont.soc_min, cont.soc_max, 2001)
    ocv = np.interp(soc, spec.cell.soc, spec.cell.ocv_v)
    e_ocv_mwh = r.cells * spec.cell.capacity_ah * np.trapezoid(ocv, soc) / 1e6
    # DC delivered: the OCV energy less 0-3 % of resistive and hysteresis loss
    assert 0.97 * e_ocv_mwh < t.energy_dc_out_mwh < e_ocv_mwh
    # AC/DC: the PCS efficiency at rated power (most of the energy is delivered at rated power)
    eta = float(pcs_efficiency(pcs.p_rated_mw, pcs.p_rated_mw, pcs.eta_nom, pcs.eta_ref))
    assert t.energy_ac_out_mwh / t.energy_dc_out_mwh == pytest.approx(eta, abs=0.003)
    # the window ends where it should; the BMS taper ends rated power a little before soc_min
    soc_end = t.discharge["soc"][:, -1]
    np.testing.assert_allclose(soc_end, cont.soc_min, atol=1e-5)
    assert "BMS" in t.stop_reason and t.duration_rated_power_h < t.duration_h
    assert t.energy_rated_power_mwh == pytest.approx(t.duration_rated_power_h * r.p_ac_rated_mw, rel=1e-12)


def test_round_trip_closes_and_loses_energy(small_case, small_test):
    t = small_test
    cont = small_case.model("battery/containers", small_case.spec.battery.container)
    np.testing.assert_allclose(t.charge["soc"][:, -1], cont.soc_max, atol=1e-5)
    assert 0.85 < t.round_trip_efficiency < 0.97
    assert t.round_trip_efficiency_with_aux < t.round_trip_efficiency
    assert t.aux_discharge_mwh > 0 and t.aux_charge_mwh > 0


def test_design_day_dispatch_energy_balance_and_limits(small_case):
    """An 8-hour profile on the small case (cap 2.5 MW, one 1 MW container): 1 h at 0.6 MW above the cap (the
    battery covers it), an hour below (it recharges), then 5 h at 0.95 MW above the cap (it runs empty)."""
    dt = 10.0
    cap = small_case.spec.supply.firm_import_cap_mw
    h = int(3600 / dt)
    site = np.concatenate([np.full(h, cap - 0.5), np.full(h, cap + 0.6), np.full(h, cap - 0.8),
                           np.full(5 * h, cap + 0.95)])
    t_out = np.full(site.size, 30.0)
    out = battery.peak_shave(small_case, site, t_out, dt)
    pcs = small_case.model("pcs", small_case.spec.battery.pcs)
    cont = small_case.model("battery/containers", small_case.spec.battery.container)
    p_ac, aux = out["p_ac_w"].sum(axis=0) / 1e6, out["p_aux_w"].sum(axis=0) / 1e6
    imp = out["grid_import_mw"]
    # grid import = site load - battery AC + battery auxiliaries, at every step
    np.testing.assert_allclose(imp, site - p_ac + aux, rtol=0, atol=1e-12)
    # the AC power is what the PCS makes of the DC power the racks delivered
    np.testing.assert_allclose(out["p_ac_w"], battery.dc_to_ac(out["p_dc_w"], pcs), rtol=0, atol=1e-6)
    assert np.all(np.abs(out["p_ac_w"]) <= pcs.p_rated_mw * 1e6 * (1 + 1e-12))
    # the EMS window holds
    assert out["soc"].min() >= cont.soc_min - 1e-5 and out["soc"].max() <= cont.soc_max + 1e-5
    # the first excursion is covered (import under the cap), the battery recharges below the cap
    assert imp[h:2 * h].max() <= cap
    assert out["p_ac_w"][:, 2 * h:3 * h].min() < 0 and imp[2 * h:3 * h].max() <= cap
    # the long one empties it: the cap is exceeded once the window ends, by the load above it
    empty = np.flatnonzero(out["soc"][0] <= cont.soc_min + 1e-4)
    assert empty.size and empty[0] > 3 * h
    k = empty[0] + 10
    assert imp[k] == pytest.approx(site[k] + aux[k], abs=1e-9) and imp[k] > cap


def test_cell_granularity_shows_the_spread(small_case):
    """Every cell of one container with a seeded spread: cell voltages spread, the SOC window still holds."""
    dt = 10.0
    cap = small_case.spec.supply.firm_import_cap_mw
    site = np.full(90, cap + 0.8)
    out = battery.peak_shave(small_case, site, np.full(site.size, 25.0), dt, granularity="cell", soc0=0.3)
    spread = out["v_cell_max_v"] - out["v_cell_min_v"]
    assert np.nanmin(spread[:, 1:]) > 1e-3
    assert out["soc_cell_min"].min() < out["soc"].min() < out["soc_cell_max"].max()


@pytest.fixture(scope="module")
def cli_small(tmp_path_factory):
    out = tmp_path_factory.mktemp("battery_small") / "results"
    p = twin("study", "battery", "small_campus", "--out", str(out))
    assert p.returncode == 0, p.stderr[-3000:]
    return out


def test_cli_study_battery_small_case(cli_small, small_case):
    out = cli_small
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["studies"]) == ["battery"]
    fig = summary["studies"]["battery"]
    checks = pd.read_csv(out / "checks.csv")
    assert set(checks.study) == {"battery"} and fig["checks"] == len(checks)
    assert set(checks.quantity) == {"usable_ac_energy_mwh", "duration_at_rated_power_h", "p_import_mw",
                                    "p_import_15min_mw", "energy_above_cap_unserved_mwh", "t_cell_max_degc"}
    assert not (out / "drivers.nc").exists() and not list(out.glob(".tmp-*"))
    ds = xr.open_dataset(out / "battery.nc", engine="h5netcdf")
    for v in ds.data_vars:
        assert "units" in ds[v].attrs and "long_name" in ds[v].attrs, v
    assert ds.sizes["container"] == 1 and ds.sizes["time"] == 8640
    # exact balance from the file (powers stored in double precision)
    np.testing.assert_allclose(ds.grid_import_mw, ds.site_load_mw - ds.battery_p_mw + ds.battery_aux_mw,
                               rtol=0, atol=1e-9)
    dt_h = ds.attrs["dt_s"] / 3600
    assert fig["design_day_aux_energy_mwh"] == pytest.approx(float(ds.battery_aux_mw.sum()) * dt_h, rel=1e-9)
    # the small campus stays under its cap: the day with the highest peak, battery idle, checks pass
    assert fig["design_day_energy_above_cap_before_mwh"] == 0.0
    assert fig["design_day_peak_import_mw"] < small_case.spec.supply.firm_import_cap_mw
    day_rows = checks[checks.scenario.str.startswith("design day")]
    assert set(day_rows.status) == {"PASS"}
    # the claims fail as they are: 4.1 MWh nameplate, about 3.6 MWh usable AC
    r = ratings(small_case)
    assert fig["usable_ac_computed_mwh"] == pytest.approx(r.usable_ac_mwh)
    assert checks.set_index("quantity").loc["usable_ac_energy_mwh", "status"] == "FAIL"
    assert 0.8 < fig["ageing_capacity"][-1] < fig["ageing_capacity"][0] < 1.0
    assert fig["usable_ac_10y_mwh"] < fig["usable_ac_measured_mwh"]
    html = (out / "report.html").read_text()
    assert "Battery: claims, design day and ageing" in html and "the site load never exceeds" in html
    ds.close()


@pytest.mark.parametrize("section,key", [
    ('granularity = "cells"', "battery_study.granularity"),
    ("dt_s = 7.0", "dt_s (7.0) must divide an hour"),
    ('granularty = "rack"', "battery_study.granularty"),
])
def test_bad_battery_study_section_writes_nothing(tmp_path, section, key):
    from twin.paths import networks_dir

    text = (networks_dir() / "small_campus.toml").read_text()
    case = tmp_path / "bad.toml"
    case.write_text(text.replace("[drivers]", f"[battery_study]\n{section}\n\n[drivers]", 1))
    out = tmp_path / "out"
    p = twin("study", "battery", str(case), "--out", str(out))
    assert p.returncode == 2
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and key in lines[0] and str(case) in lines[0], p.stderr
    assert "Traceback" not in p.stderr and not out.exists()


def test_bad_thermal_parameter_set_is_caught_before_anything_runs(tmp_path):
    """A container thermal set beside the case with its set points the wrong way round: the preflight names it."""
    from twin.paths import models_dir, networks_dir

    (tmp_path / "models" / "battery" / "thermal").mkdir(parents=True)
    src = (models_dir() / "battery" / "thermal" / "energy_pod_air.toml").read_text()
    bad = src.replace("t_set_heat_degc = 15.0", "t_set_heat_degc = 30.0")
    assert bad != src
    (tmp_path / "models" / "battery" / "thermal" / "energy_pod_air.toml").write_text(bad)
    case = tmp_path / "case.toml"
    case.write_text((networks_dir() / "small_campus.toml").read_text())
    out = tmp_path / "out"
    p = twin("study", "battery", str(case), "--out", str(out))
    assert p.returncode == 2, p.stderr[-2000:]
    assert "energy_pod_air.toml" in p.stderr and "t_set_heat_degc" in p.stderr
    assert "Traceback" not in p.stderr and not out.exists()


def test_bad_keywords_and_no_battery(small_case):
    with pytest.raises(CaseError, match="granularity"):
        battery.run(small_case, granularity="cells")
    with pytest.raises(CaseError, match="dt_s"):
        battery.options(small_case, dt_s=0.0)
    import dataclasses

    no_bess = dataclasses.replace(small_case, spec=small_case.spec.model_copy(update={"battery": None}))
    res = battery.run(no_bess)
    assert len(res.checks) == 0 and res.summary["battery"] is False
