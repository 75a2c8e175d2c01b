"""PV output (twin.pv): agreement with pvlib's ModelChain, clipping, night, time resolution, bad input, and
validation on NREL PVDAQ SERF West field data."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pvlib
import pytest

from twin import paths
from twin.case import load_case
from twin.pv import pv_losses_pct, pv_output, solar_position_midpoints, validate_serf_west


@pytest.fixture(scope="module")
def case():
    return load_case()


def clear_sky_weather(case, start: str, periods: int, freq: str, temp_air=None) -> pd.DataFrame:
    """Ineichen clear-sky interval weather (evaluated at interval midpoints), with a diurnal air temperature
    unless ``temp_air`` [degC] is given."""
    s = case.spec.site
    idx = pd.date_range(start, periods=periods, freq=freq, tz=s.timezone)
    mid = idx + pd.Timedelta(freq) / 2
    sp = solar_position_midpoints(idx, s.latitude_deg, s.longitude_deg, s.altitude_m)
    cs = pvlib.location.Location(s.latitude_deg, s.longitude_deg, s.timezone, s.altitude_m).get_clearsky(
        mid, solar_position=sp)
    hour = (mid.hour + mid.minute / 60).to_numpy()
    return pd.DataFrame({"ghi": cs["ghi"].to_numpy(), "dni": cs["dni"].to_numpy(), "dhi": cs["dhi"].to_numpy(),
                         "temp_air": 25 + 5 * np.sin((hour - 9) / 24 * 2 * np.pi) if temp_air is None else temp_air,
                         "wind_speed": 1.0 + 0.5 * np.cos(hour / 24 * 2 * np.pi)}, index=idx)


def with_pv(case, **update):
    """The case with its first PV system changed (e.g. a larger DC rating to force clipping)."""
    pv = [case.spec.pv[0].model_copy(update=update), *case.spec.pv[1:]]
    return dataclasses.replace(case, spec=case.spec.model_copy(update={"pv": pv}))


def test_matches_pvlib_modelchain(case):
    # ModelChain corrects refraction with the weather's air temperature, twin.pv with pvlib's standard 12 degC
    # (the solar position is shared by all drivers): hold the air at 12 degC so both see the same sun.
    w = clear_sky_weather(case, "2025-06-20", 3 * 96, "15min", temp_air=12.0)
    ds = pv_output(case, w)
    s, site = case.spec.pv[0], case.spec.site
    m = case.model("pv", s.model)
    system = pvlib.pvsystem.PVSystem(
        surface_tilt=m.surface_tilt_deg, surface_azimuth=m.surface_azimuth_deg, albedo=m.albedo,
        module_parameters={"pdc0": s.p_dc_kwp * 1e3, "gamma_pdc": m.gamma_pdc_per_k, "temp_ref": m.temp_ref_degc,
                           "k": m.low_irradiance_k, "cap_adjustment": True,
                           "n": m.iam_n, "K": m.iam_k_per_m, "L": m.iam_l_m},
        temperature_model_parameters={"a": m.sapm_a, "b": m.sapm_b, "deltaT": m.sapm_delta_t_k},
        inverter_parameters={"pdc0": s.inverters * m.inverter_ac_kw_each * 1e3 / m.eta_inv_nom,
                             "eta_inv_nom": m.eta_inv_nom, "eta_inv_ref": m.eta_inv_ref},
        losses_parameters={"soiling": m.soiling_pct, "shading": m.shading_pct, "snow": m.snow_pct,
                           "mismatch": m.mismatch_pct, "wiring": m.wiring_pct,
                           "connections": m.connections_pct, "lid": m.lid_pct,
                           "nameplate_rating": m.nameplate_rating_pct, "age": m.age_pct,
                           "availability": m.availability_pct})
    loc = pvlib.location.Location(site.latitude_deg, site.longitude_deg, site.timezone, site.altitude_m)
    mc = pvlib.modelchain.ModelChain(system, loc, dc_model="pvwatts", ac_model="pvwatts", aoi_model="physical",
                                     spectral_model="no_loss", temperature_model="sapm", losses_model="pvwatts",
                                     transposition_model=m.transposition_model, solar_position_method="nrel_numpy")
    wm = w.copy()
    wm.index = w.index + pd.Timedelta("7min30s")  # ModelChain evaluates the sun at the index: give it midpoints
    mc.run_model(wm)
    r = mc.results
    np.testing.assert_allclose(ds.p_mw.values[:, 0] * 1e6, r.ac.to_numpy(), rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(ds.p_dc_mw.values[:, 0] * 1e6, r.dc.to_numpy(), rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(ds.poa_global.values[:, 0], r.total_irrad["poa_global"].to_numpy(), rtol=1e-9,
                               atol=1e-9)
    np.testing.assert_allclose(ds.t_cell.values[:, 0], r.cell_temperature.to_numpy(), rtol=1e-9)
    assert ds.p_mw.values.max() > 0.5  # a June clear day: the comparison is not of zeros
    assert (ds.time.values == w.index.values).all()
    for v in ds.data_vars.values():
        assert v.attrs["units"] and v.attrs["long_name"]
    assert pv_losses_pct(m) == pytest.approx(float(pvlib.pvsystem.pvwatts_losses(**system.losses_parameters)))


def test_clipping_never_exceeds_ac_rating(case):
    big = with_pv(case, p_dc_kwp=2000.0)  # DC/AC 2.3: clips for hours on a clear day
    w = clear_sky_weather(big, "2025-04-20", 2 * 1440, "1min")
    ds = pv_output(big, w)
    ac = float(ds.ac_rating_mw[0])
    assert ac == pytest.approx(case.spec.pv[0].inverters * case.model("pv", "carport_string_inverters")
                               .inverter_ac_kw_each / 1e3)
    assert float(ds.p_mw.max()) <= ac * (1 + 1e-12)
    clipped = ds.p_mw.values[:, 0] >= ac * (1 - 1e-9)
    assert clipped.sum() > 60  # it did clip (more than an hour)
    assert (ds.p_dc_mw.values[clipped, 0] > ac).all()


def test_zero_at_night(case):
    w = clear_sky_weather(case, "2025-12-21", 1440, "1min")
    s = case.spec.site
    sp = solar_position_midpoints(w.index, s.latitude_deg, s.longitude_deg, s.altitude_m)
    ds = pv_output(case, w, solar_position=sp)
    night = sp["apparent_zenith"].to_numpy() > 91
    assert night.sum() > 600
    assert (ds.p_mw.values[night] == 0).all() and (ds.q_mvar.values[night] == 0).all()
    assert (ds.p_mw.values >= 0).all()
    # the same midpoint solar position indexed by interval starts (twin.weather.solar_position's layout)
    same = pv_output(case, w, solar_position=sp.set_axis(w.index))
    np.testing.assert_array_equal(same.p_mw.values, ds.p_mw.values)


def test_constant_input_energy_is_resolution_independent(case):
    """With the sun held still and constant weather, a day's energy is the same at 1 min and 1 h."""
    def run(freq, n):
        idx = pd.date_range("2025-06-01", periods=n, freq=freq, tz=case.spec.site.timezone)
        w = pd.DataFrame({"ghi": 800.0, "dni": 700.0, "dhi": 150.0, "temp_air": 30.0, "wind_speed": 2.0},
                         index=idx)
        sp = pd.DataFrame({"apparent_zenith": 30.0, "zenith": 30.0, "azimuth": 180.0},
                          index=idx + pd.Timedelta(freq) / 2)
        ds = pv_output(case, w, solar_position=sp)
        return float(ds.p_mw.sum()) * pd.Timedelta(freq) / pd.Timedelta("1h")

    assert run("1min", 1440) == pytest.approx(run("1h", 24), rel=1e-12)


def test_hourly_mean_weather_gives_close_daily_energy(case):
    """Hourly means of 1-min clear-sky weather, evaluated with the sun at the hour's midpoint, give the day's
    energy within 1 % (not exactly: the model is non-linear and the sun moves within the hour)."""
    w1 = clear_sky_weather(case, "2025-03-20", 1440, "1min")
    wh = w1.resample("1h").mean()
    e1 = float(pv_output(case, w1).p_mw.sum()) / 60
    eh = float(pv_output(case, wh).p_mw.sum())
    assert eh == pytest.approx(e1, rel=0.01)


def test_reactive_power_within_capability(case):
    w = clear_sky_weather(case, "2025-06-20", 96, "15min")
    ds = pv_output(case, w, power_factor=0.95)
    p, q = ds.p_mw.values[:, 0], ds.q_mvar.values[:, 0]
    ac = float(ds.ac_rating_mw[0])
    assert np.all(p**2 + q**2 <= ac**2 * (1 + 1e-9))
    assert np.allclose(q[p < 0.5 * ac], p[p < 0.5 * ac] * np.tan(np.arccos(0.95)))
    with pytest.raises(ValueError, match="power_factor_min"):
        pv_output(case, w, power_factor=0.8)


def test_bad_weather_names_the_column(case):
    w = clear_sky_weather(case, "2025-06-20", 24, "1h")
    with pytest.raises(ValueError, match="dni"):
        pv_output(case, w.drop(columns="dni"))
    naive = w.tz_localize(None)
    with pytest.raises(ValueError, match="tz-aware"):
        pv_output(case, naive)
    with pytest.raises(ValueError, match="solar_position"):
        pv_output(case, w, solar_position=pd.DataFrame({"apparent_zenith": [0.0], "azimuth": [0.0]}))


def test_serf_west_validation():
    data = paths.shared_data_dir()
    if data is None or not (data / "pv_nrel_pvdaq" / "serf_west_15min.csv").exists():
        pytest.skip("NREL PVDAQ SERF West data not found in ../shared/data (or $TWIN_DATA)")
    r = validate_serf_west(data)
    # data quality: the snow day (almost no DC under full sun) and the partly snow-covered morning are flagged
    assert "2022-01-06" in r["flagged"] and "snow" in r["flagged"]["2022-01-06"]
    assert "2022-01-02" in r["flagged"]
    assert all(r["days"][d]["reason"] for d in r["days"])
    assert set(r["kept"]) | set(r["flagged"]) == set(r["days"])
    # fit on one clear kept day, validate on the others
    assert r["fit"]["day"] in r["kept"] and r["fit"]["day"] not in r["validation"]["days"]
    assert len(r["validation"]["days"]) >= 2
    for d, v in r["validation"]["per_day"].items():
        assert abs(v["error_pct"]) <= 5.0, (d, v)
    assert r["acceptance"]["energy_passed"]
    # the array's rating is not stated in the data; its measured peak is about 6 kW near 1000 W/m2
    assert 4000.0 <= r["fit"]["pdc0_w"] <= 8000.0 and r["acceptance"]["pdc0_plausible"]
    assert r["validation"]["rmse_w"] < 600.0
