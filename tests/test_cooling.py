"""Cooling plant over time: balances, monotonic response to weather, free cooling, COP bounds, annual PUE."""

import numpy as np
import pandas as pd
import pytest

from twin.case import CaseError
from twin.cooling import (
    campus_full_it_mw,
    chiller_cop,
    cooling_power,
    facility_power_mw,
    free_cooling_fraction,
    pue,
    wet_bulb_stull,
)

# REFERENCE.md Shanghai climate table (ASHRAE IWEC aggregates): monthly mean air temperature and RH
T_MEAN = np.array([4.3, 5.5, 8.9, 14.6, 19.9, 24.0, 28.2, 27.7, 23.8, 18.2, 12.2, 7.1])
RH_MEAN = np.array([74, 79, 73, 77, 81, 84, 79, 78, 83, 75, 73, 71], dtype=float)


def synthetic_year(year=2025):
    """Hourly Shanghai-like weather: monthly means plus a +/-4 K daily cycle (warmest 15:00), RH opposite."""
    idx = pd.date_range(f"{year}-01-01", periods=8760, freq="h", tz="Asia/Shanghai")
    m, h = idx.month.values - 1, idx.hour.values
    cyc = np.cos(2 * np.pi * (h - 15) / 24)
    return idx, T_MEAN[m] + 4.0 * cyc, np.clip(RH_MEAN[m] - 12.0 * cyc, 5, 100)


def _model(case):
    return case.model("cooling", case.spec.cooling_plants[0].model)


def test_wet_bulb_stull_check_value():
    # Stull (2011): T = 20 C, RH = 50 % gives Tw = 13.7 C
    assert wet_bulb_stull(20.0, 50.0) == pytest.approx(13.7, abs=0.05)
    assert wet_bulb_stull(30.0, 99.0) <= 30.0
    with pytest.raises(ValueError, match="relative humidity"):
        wet_bulb_stull(20.0, 120.0)


def test_power_balance_and_heat_balance(seed_case):
    idx, ta, rh = synthetic_year()
    it = np.full(len(idx), 8.0)
    ds = cooling_power(seed_case, it, ta, rh, time=idx)
    parts = ds.compressor_mw + ds.pump_mw + ds.fan_mw + ds.air_side_mw
    np.testing.assert_allclose(ds.p_mw, parts, rtol=1e-12)
    np.testing.assert_allclose(ds.heat_rejected_mw, ds.heat_load_mw + ds.compressor_mw, rtol=1e-12)
    np.testing.assert_allclose(ds.dol_mw, ds.pump_mw + ds.fan_mw, rtol=1e-12)
    # heat load = IT share x (1 + losses) + air side; shares add up to the campus IT
    m = _model(seed_case)
    it_cooled = (ds.air_side_mw / m.air_side_kw_per_kw_it).sum("cooling_plant")
    np.testing.assert_allclose(it_cooled, it, rtol=1e-12)
    np.testing.assert_allclose(ds.heat_load_mw, ds.air_side_mw / m.air_side_kw_per_kw_it * (1 + m.heat_loss_fraction)
                               + ds.air_side_mw, rtol=1e-12)
    # Q at the drives' and motors' power factors: between the two bounds
    assert (ds.q_mvar > 0).all()
    assert (ds.dol_motor_share > 0).all() and (ds.dol_motor_share <= 1).all()
    facility = facility_power_mw(it, ds.p_mw.sum("cooling_plant").values, 0.3)
    np.testing.assert_allclose(facility, it + ds.p_mw.sum("cooling_plant").values + 0.3)


def test_monotonic_in_outdoor_temperature(seed_case):
    t = np.linspace(-10, 40, 501)
    for rh in (30.0, 60.0, 90.0):
        ds = cooling_power(seed_case, np.full(t.size, 8.0), t, np.full(t.size, rh))
        p = ds.p_mw.sum("cooling_plant").values
        assert (np.diff(p) >= -1e-12).all(), f"cooling power falls as it gets warmer at RH {rh} %"
        assert p[-1] > p[0] * 1.5


def test_free_cooling_engages_below_threshold(seed_case):
    m = _model(seed_case)
    full = m.chw_supply_degc - m.tower_approach_k - m.economiser_hx_approach_k    # wet-bulb for full free cooling
    none = m.chw_return_degc - m.tower_approach_k - m.economiser_hx_approach_k
    assert free_cooling_fraction(m, full - 0.1) == 1.0
    assert 0 < free_cooling_fraction(m, (full + none) / 2) < 1
    assert free_cooling_fraction(m, none + 0.1) == 0.0
    # in the plant: a cold dry day runs the chillers not at all, a hot humid one fully
    ds = cooling_power(seed_case, [8.0, 8.0], [0.0, 35.0], [50.0, 70.0])
    assert ds.free_cooling_fraction.values[0, 0] == 1.0 and ds.compressor_mw.values[0, 0] == 0.0
    assert ds.free_cooling_fraction.values[1, 0] == 0.0 and ds.compressor_mw.values[1, 0] > 0.5


def test_cop_bounds_and_trend(seed_case):
    m = _model(seed_case)
    twb = np.linspace(-20, 40, 121)
    cop = chiller_cop(m, twb)
    assert (cop >= m.cop_min).all() and (cop <= m.cop_max).all()
    assert (np.diff(cop) <= 1e-12).all()
    assert 4.5 < chiller_cop(m, 28.0) < 7.5          # Shanghai summer design wet-bulb: a modern chiller plant


def test_annual_pue_and_summer_peak(seed_case):
    idx, ta, rh = synthetic_year()
    it = np.full(len(idx), campus_full_it_mw(seed_case))
    ds = cooling_power(seed_case, pd.Series(it, index=idx), ta, rh)
    aux = sum(a.p_kw for a in seed_case.spec.auxiliaries) / 1000.0
    value = pue(it, facility_power_mw(it, ds.p_mw.sum("cooling_plant").values, aux))
    assert 1.15 <= value <= 1.40
    summer = ds.kw_per_kw_it.isel(cooling_plant=0).values[(idx.month >= 7) & (idx.month <= 8)]
    assert 0.2 <= summer.max() <= 0.35                # REFERENCE.md: 0.2-0.35 kW per kW IT at summer peak
    assert str(ds.time.dtype).startswith("datetime64")


def test_bad_input(seed_case):
    with pytest.raises(ValueError, match="same length"):
        cooling_power(seed_case, [8.0, 8.0], [20.0], [50.0, 50.0])
    with pytest.raises(ValueError, match="NaN"):
        cooling_power(seed_case, [8.0, np.nan], [20.0, 20.0], [50.0, 50.0])
    with pytest.raises(ValueError, match=">= 0"):
        cooling_power(seed_case, [-1.0], [20.0], [50.0])
    with pytest.raises(ValueError, match="positive"):
        pue([0.0], [1.0])


def test_motor_without_role_is_named(seed_case, tmp_path):
    import dataclasses

    m = _model(seed_case)
    bad = m.model_copy(update={"motor_roles": {"CHWP": "pump", "CWP": "pump"}})
    key = ("cooling", seed_case.spec.cooling_plants[0].model)
    case = dataclasses.replace(seed_case, models={**seed_case.models, key: bad})
    with pytest.raises(CaseError, match=r"chiller_plant_water_cooled\.toml: key 'motor_roles'.*'CTF'"):
        cooling_power(case, [8.0], [20.0], [50.0])
