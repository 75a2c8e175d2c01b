"""The drivers study: a year of weather, PV, IT, cooling and tariff, composed and checked."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import write_variant

from twin import weather
from twin.case import load_case, with_drivers
from twin.studies import drivers

TABLE_GHI = [66.1, 66.2, 86.5, 121.2, 127.7, 120.1, 148.3, 156.9, 97.7, 103.5, 76.0, 71.8]
TABLE_DF = [0.61, 0.57, 0.66, 0.49, 0.57, 0.64, 0.50, 0.51, 0.62, 0.50, 0.54, 0.49]
TABLE_T = [4.3, 5.5, 8.9, 14.6, 19.9, 24.0, 28.2, 27.7, 23.8, 18.2, 12.2, 7.1]


@pytest.fixture(scope="module")
def seed_year():
    """The seed case's default drivers: a year at 1 min (about 10 s)."""
    return drivers.run(load_case())


@pytest.fixture(scope="module")
def seed_hourly(tmp_path_factory):
    p = write_variant(tmp_path_factory.mktemp("hourly"), "resolution_s = 60.0", "resolution_s = 3600.0")
    return drivers.run(load_case(p))


def test_summary_has_every_key_figure(seed_year):
    s = seed_year.summary
    for k in ("ghi_monthly_kwh_m2", "diffuse_fraction_monthly", "temp_air_monthly_mean_degc", "pue_monthly"):
        assert len(s[k]) == 12 and all(np.isfinite(s[k])), k
    for k in ("ghi_annual_kwh_m2", "pv_energy_mwh", "pv_specific_yield_kwh_kwp", "it_energy_mwh", "it_peak_mw",
              "facility_energy_mwh", "facility_peak_mw", "pue_annual"):
        assert np.isfinite(s[k]), k


def test_seed_year_within_the_expected_bands(seed_year):
    s = seed_year.summary
    np.testing.assert_allclose(s["ghi_monthly_kwh_m2"], TABLE_GHI, rtol=0.03)
    np.testing.assert_allclose(s["diffuse_fraction_monthly"], TABLE_DF, atol=0.05)
    np.testing.assert_allclose(s["temp_air_monthly_mean_degc"], TABLE_T, atol=0.5)
    assert 950 <= s["pv_specific_yield_kwh_kwp"] <= 1150
    assert 7.6 <= s["it_peak_mw"] <= 8.4
    assert 1.15 <= s["pue_annual"] <= 1.40
    assert s["facility_peak_mw"] > s["it_peak_mw"]


def test_power_balance_of_every_step(seed_year):
    ds = seed_year.dataset
    it = ds.it_p_mw.sum("hall")
    np.testing.assert_allclose(ds.facility_p_mw, it + ds.cooling_p_mw + ds.aux_p_mw, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ds.net_load_mw, ds.facility_p_mw - ds.pv_p_mw, rtol=0, atol=1e-12)
    for v in ds.data_vars:
        assert "units" in ds[v].attrs and "long_name" in ds[v].attrs, v
    t = pd.DatetimeIndex(ds.time.values).tz_localize("UTC").tz_convert("Asia/Shanghai")
    assert t[0] == pd.Timestamp("2025-01-01 00:00", tz="Asia/Shanghai") and len(t) == 365 * 24 * 60


def test_energy_is_the_same_at_1_min_and_1_h(seed_year, seed_hourly):
    """Every step is the mean over its interval: the year's IT energy does not depend on the step."""
    a, b = seed_year.summary, seed_hourly.summary
    assert a["it_energy_mwh"] == pytest.approx(b["it_energy_mwh"], rel=1e-9)
    assert a["ghi_annual_kwh_m2"] == pytest.approx(b["ghi_annual_kwh_m2"], rel=1e-6)
    hourly = seed_year.dataset.it_p_mw.sum("hall").coarsen(time=60).mean().values
    np.testing.assert_allclose(hourly, seed_hourly.dataset.it_p_mw.sum("hall").values, rtol=1e-9)


def test_cap_checks_say_where_the_claim_fails(seed_year):
    ck = seed_year.checks
    assert set(ck.quantity) == {"energy_above_cap_mwh", "recharge_headroom_mwh"}
    # with cooling on top of the IT load, the seed campus is above the 6 MW cap on many days
    assert seed_year.summary["hours_net_load_above_cap_h"] > 0


def test_sustained_training_scenario(seed_hourly, tmp_path):
    p = write_variant(tmp_path, "resolution_s = 60.0", "resolution_s = 3600.0")
    r = drivers.run(with_drivers(load_case(p), scenario="sustained_training"))
    assert r.summary["scenario"] == "sustained_training"
    assert r.summary["it_utilisation_mean"] >= 0.85
    assert r.summary["it_energy_mwh"] > seed_hourly.summary["it_energy_mwh"]
    assert (r.checks.status == "FAIL").all()  # the battery cannot hold the cap around the clock


def twin(*args):
    return subprocess.run([sys.executable, "-m", "twin", *args], capture_output=True, text=True, timeout=600)


def test_cli_with_a_weather_file(tmp_path):
    """`twin study drivers --weather FILE`: a CSV with our column names and UTC offsets drives the year."""
    case = load_case("small_campus")
    w = weather.typical_year(case, freq="1h", seed=3)
    w["ghi"] *= 0.5
    f = tmp_path / "site.csv"
    w.rename_axis("time").reset_index().to_csv(f, index=False)
    out = tmp_path / "out"
    p = twin("study", "drivers", "small_campus", "--weather", str(f), "--out", str(out))
    assert p.returncode == 0, p.stderr[-2000:]
    s = json.loads((out / "summary.json").read_text())["studies"]["drivers"]
    assert s["ghi_annual_kwh_m2"] == pytest.approx(0.5 * 1242.0, rel=0.01)


@pytest.mark.parametrize("args,words", [
    (["--scenario", "nosuch"], "models/scenarios"),
    (["--weather", "missing.epw"], "no such file"),
])
def test_cli_bad_driver_input(tmp_path, args, words):
    out = tmp_path / "out"
    p = twin("study", "drivers", "small_campus", *args, "--out", str(out))
    assert p.returncode == 2
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and words in lines[0], p.stderr
    assert not out.exists()


def test_bad_weather_file_writes_nothing(tmp_path):
    f = tmp_path / "bad.csv"
    f.write_text("time,ghi\n2025-01-01T00:00:00+08:00,0\n")
    out = tmp_path / "out"
    p = twin("study", "drivers", "small_campus", "--weather", str(f), "--out", str(out))
    assert p.returncode == 2 and "missing" in p.stderr.lower() and str(f) in p.stderr
    assert not out.exists()
