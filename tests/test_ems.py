"""EMS: rule-based dispatch and the day-ahead LP on the linear battery model.

Exact checks: the LP is never dearer than the rules (it optimises over a set that contains the rules' schedule);
a flat load above the cap for a known time needs a known energy (held exactly, or short by the hand-computed
energy); no export, energy balance, SOC window and reserve for random inputs (hypothesis); bad inputs rejected.
"""


import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from twin.ems import (
    RULES,
    EmsSettings,
    LinearBattery,
    dispatch_day_ahead,
    dispatch_rules,
    persistence_forecast,
    schedule_lp,
)
from twin.paths import models_dir
from twin.tariff import load_tariff_file, period, price

TZ = "Asia/Shanghai"
BAT = LinearBattery(energy_mwh=16.0, p_charge_max_mw=4.0, p_discharge_max_mw=4.0, eta_charge=0.95,
                    eta_discharge=0.95, soc_min=0.05, soc_max=0.95)


@pytest.fixture(scope="module")
def tariff():
    return load_tariff_file(models_dir() / "tariffs" / "shanghai_two_part_2023.toml", TZ)


def day(tariff, date, dt_min, days=1):
    idx = pd.date_range(date, periods=days * 1440 // dt_min, freq=f"{dt_min}min", tz=TZ)
    return price(tariff, idx), period(tariff, idx)


def synthetic_load(n, dt_min, seed, base=5.0, peak=2.5, pv=1.0):
    rng = np.random.default_rng(seed)
    h = (np.arange(n) * dt_min / 60.0) % 24
    training = peak * ((h >= 10) & (h < 14))
    sun = pv * np.clip(np.sin((h - 6) / 12 * np.pi), 0, None)
    return base + training + rng.normal(0, 0.3, n) - sun


def energy_cny(p_grid_mw, price_cny_per_kwh, dt_min):
    return float(price_cny_per_kwh @ p_grid_mw * 1000.0 * dt_min / 60.0)


# ---------------------------------------------------------------------------------------------------------------
# the LP against the rules


@pytest.mark.parametrize("date", ["2025-07-15", "2025-04-12", "2025-12-02"])
@pytest.mark.parametrize("cap_mw, base", [(20.0, 5.0), (6.0, 4.0), (6.0, 1.0)])
def test_lp_no_dearer_than_rules(tariff, date, cap_mw, base):
    dt = 5
    pr, per = day(tariff, date, dt)
    load = synthetic_load(pr.size, dt, seed=hash(date) % 1000, base=base, pv=2.5)
    st_ = EmsSettings(cap_mw=cap_mw)
    rules = dispatch_rules(load, dt, BAT, st_, 0.5, per)
    assert rules.summary["unmet_mwh"] == 0.0, "test setup: the rules must hold the cap for a fair comparison"
    c_rules = energy_cny(rules.p_grid_mw, pr, dt)
    free = schedule_lp(load, pr, dt, BAT, st_, 0.5)
    same_end = schedule_lp(load, pr, dt, BAT, st_, 0.5, soc_end_min=rules.soc[-1])
    for lp in (free, same_end):
        assert lp.p_over_cap_mw.max() < 1e-7
        assert lp.energy_cny <= c_rules * (1 + 1e-6)
    assert same_end.soc[-1] >= rules.soc[-1] - 1e-7


def test_rules_follow_the_lp_with_a_perfect_forecast(tariff):
    dt = 5
    pr, _ = day(tariff, "2025-07-14", dt, days=2)
    load = synthetic_load(pr.size, dt, seed=3)
    st_ = EmsSettings(cap_mw=6.0, margin_mw=0.1)
    res, plans = dispatch_day_ahead(load, load, pr, dt, BAT, st_, 0.5)
    assert len(plans) == 2
    planned = np.concatenate([p.p_battery_mw for p in plans])
    np.testing.assert_allclose(res.p_battery_mw, planned, atol=1e-6)
    assert res.summary["energy_cny"] == pytest.approx(sum(p.energy_cny for p in plans), rel=1e-6)
    assert res.summary["unmet_mwh"] == 0.0
    assert set(res.rule_names()) <= set(RULES)
    # each day ends at (at least) the SOC it started with: the default end condition
    assert res.soc[len(load) // 2 - 1] >= 0.5 - 1e-6


def test_persistence_forecast_and_real_time_correction(tariff):
    dt = 15
    pr, _ = day(tariff, "2025-07-14", dt, days=3)
    load = synthetic_load(pr.size, dt, seed=4)
    fc = persistence_forecast(load, dt)
    spd = 1440 // dt
    np.testing.assert_array_equal(fc[spd:], load[:-spd])
    np.testing.assert_array_equal(fc[:spd], load[:spd])
    np.testing.assert_array_equal(persistence_forecast(load, dt, first_day_mw=np.ones(spd))[:spd], 1.0)
    st_ = EmsSettings(cap_mw=6.0)
    res, plans = dispatch_day_ahead(load, fc, pr, dt, BAT, st_, 0.5)
    assert (res.p_grid_mw >= 0).all()
    assert (res.p_grid_mw <= 6.0 + 1e-9).all() or res.summary["unmet_mwh"] > 0
    np.testing.assert_allclose(res.p_grid_mw, load - res.p_battery_mw + res.p_curtailed_mw - res.p_shed_mw,
                               atol=1e-9)


def test_lp_demand_charge_lowers_the_peak(tariff):
    dt = 15
    pr, _ = day(tariff, "2025-07-15", dt)
    load = synthetic_load(pr.size, dt, seed=7, base=3.0)
    st_ = EmsSettings(cap_mw=10.0)
    energy_only = schedule_lp(load, pr, dt, BAT, st_, 0.5, soc_end_min=0.5)
    with_demand = schedule_lp(load, pr, dt, BAT, st_, 0.5, soc_end_min=0.5, demand_cny_per_mw=1e5)
    assert with_demand.demand_max_mw < energy_only.demand_max_mw - 0.5
    assert with_demand.energy_cny >= energy_only.energy_cny - 1e-6
    assert with_demand.soc[-1] >= 0.5 - 1e-7 and energy_only.soc[-1] >= 0.5 - 1e-7


def test_lp_day_at_one_minute(tariff):
    """A day at 1 min (1,440 steps) with a demand charge: no export, cap held (timings: benchmarks, not tests)."""
    pr, _ = day(tariff, "2025-07-15", 1)
    load = synthetic_load(pr.size, 1, seed=8)
    lp = schedule_lp(load, pr, 1, BAT, EmsSettings(cap_mw=6.0, margin_mw=0.1), 0.5, soc_end_min=0.5,
                     demand_cny_per_mw=1e3)
    assert lp.p_grid_mw.min() >= 0.0 and lp.p_over_cap_mw.max() < 1e-7


# ---------------------------------------------------------------------------------------------------------------
# a day with a known answer: 8 MW for 4 h against a 6 MW cap needs 8 MWh at the AC terminals


def flat_event_day():
    dt = 1
    h = np.arange(1440) / 60.0
    load = np.where((h >= 10) & (h < 14), 8.0, 5.0)
    return dt, load, np.full(1440, "flat")


def small_battery(energy_mwh):
    return LinearBattery(energy_mwh=energy_mwh, p_charge_max_mw=3.0, p_discharge_max_mw=3.0, eta_charge=0.95,
                         eta_discharge=0.95, soc_min=0.1, soc_max=0.9)


SETTINGS_1MW_15MIN = EmsSettings(cap_mw=6.0, reserve_mw=1.0, reserve_min=15.0)


def test_known_day_enough_battery_holds_the_cap_exactly():
    dt, load, per = flat_event_day()
    bat = small_battery(20.0)   # available AC energy: 0.8 x 20 x 0.95 - 0.25 = 14.95 MWh >= 8 MWh
    r = dispatch_rules(load, dt, bat, SETTINGS_1MW_15MIN, 0.9, per)
    ev = load > 6
    np.testing.assert_allclose(r.p_grid_mw[ev], 6.0, atol=1e-12)
    np.testing.assert_allclose(r.p_battery_mw[ev], 2.0, atol=1e-12)
    assert (r.rule_names()[ev] == "cap").all()
    assert r.summary["unmet_mwh"] == 0.0 and r.summary["demand_max_mw"] <= 6.0 + 1e-12
    # SOC after the event: 0.9 - 8 MWh / (0.95 x 20 MWh)
    assert r.soc[np.flatnonzero(ev)[-1]] == pytest.approx(0.9 - 8.0 / (0.95 * 20.0), abs=1e-12)
    lp = schedule_lp(load, np.full(1440, 0.65), dt, bat, SETTINGS_1MW_15MIN, 0.9)
    assert lp.p_over_cap_mw.max() < 1e-7 and lp.p_grid_mw.max() <= 6.0 + 1e-7


def test_known_day_too_little_battery_unmet_equals_hand_shortfall():
    dt, load, per = flat_event_day()
    bat = small_battery(10.0)
    floor = 0.1 + 1.0 * 0.25 / (0.95 * 10.0)            # holds 1 MW for 15 min
    available = (0.9 - floor) * 10.0 * 0.95              # = 7.35 MWh at the AC terminals
    shortfall = 8.0 - available                          # = 0.65 MWh
    assert shortfall == pytest.approx(0.65)
    r = dispatch_rules(load, dt, bat, SETTINGS_1MW_15MIN, 0.9, per)
    assert r.summary["unmet_mwh"] == pytest.approx(shortfall, abs=1e-9)
    assert r.summary["unmet_max_mw"] == pytest.approx(2.0)
    # 0.65 MWh at 2 MW = 19.5 min: 20 one-minute steps touched, in one event
    assert r.summary["unmet_h"] == pytest.approx(20 / 60) and r.summary["unmet_longest_h"] == pytest.approx(20 / 60)
    assert r.soc.min() == pytest.approx(floor, abs=1e-12)
    assert (r.rule_names()[r.p_unmet_mw > 0] == "reserve").all()
    lp = schedule_lp(load, np.full(1440, 0.65), dt, bat, SETTINGS_1MW_15MIN, 0.9)
    assert lp.p_over_cap_mw.sum() * dt / 60 == pytest.approx(shortfall, abs=1e-6)
    # shedding after the battery: enough of it removes the violation, and sheds exactly the shortfall
    s = dispatch_rules(load, dt, bat, SETTINGS_1MW_15MIN, 0.9, per, p_shed_max_mw=2.5)
    assert s.summary["unmet_mwh"] == 0.0 and s.summary["shed_mwh"] == pytest.approx(shortfall, abs=1e-9)
    part = dispatch_rules(load, dt, bat, SETTINGS_1MW_15MIN, 0.9, per, p_shed_max_mw=0.5)
    assert part.summary["unmet_mwh"] + part.summary["shed_mwh"] == pytest.approx(shortfall, abs=1e-9)
    assert part.p_shed_mw.max() == pytest.approx(0.5)


def test_demand_window_mean_cap():
    dt = 1
    load = np.full(120, 6.0)
    st_ = EmsSettings(cap_mw=6.0, demand_cap_mw=5.5, reserve_min=0.0)
    r = dispatch_rules(load, dt, BAT, st_, 0.9)
    assert (r.p_grid_mw <= 6.0 + 1e-12).all()
    assert r.p_grid_mw.reshape(8, 15).mean(axis=1).max() <= 5.5 + 1e-12
    assert r.summary["demand_windows_over_cap"] == 0
    lp = schedule_lp(load, np.full(120, 0.65), dt, BAT, st_, 0.9)
    assert lp.demand_max_mw <= 5.5 + 1e-7


def test_reserve_floor_and_bms_limits():
    load = np.full(96, 5.0)
    r = dispatch_rules(load, 15, BAT, EmsSettings(cap_mw=10.0), 0.9, np.full(96, "peak"),
                       p_discharge_limit_mw=np.full(96, 1.5))
    floor = 0.05 + 4.0 * 0.25 / (0.95 * 16.0)
    assert r.summary["reserve_soc"] == pytest.approx(floor)
    assert r.soc.min() == pytest.approx(floor, abs=1e-12)
    assert r.p_battery_mw.max() == pytest.approx(1.5)
    names = r.rule_names()
    assert names[0] == "arbitrage" and names[-1] == "reserve"


def test_margin_and_dataset():
    load = np.full(96, 7.0)
    r = dispatch_rules(load, 15, BAT, EmsSettings(cap_mw=6.0, margin_mw=0.2), 0.9)
    np.testing.assert_allclose(r.p_grid_mw[:4], 5.8)
    ds = r.to_dataset()
    assert ds["p_grid_mw"].attrs["units"] == "MW" and ds["soc"].attrs["units"] == "1"
    assert ds.attrs["cap_mw"] == 6.0


def test_from_case(seed_case):
    from twin.battery import ratings

    b = LinearBattery.from_case(seed_case)
    r = ratings(seed_case)
    assert b.energy_mwh == pytest.approx(r.nameplate_dc_mwh)
    assert b.p_discharge_max_mw == pytest.approx(r.p_ac_rated_mw)
    usable_ac = (b.soc_max - b.soc_min) * b.energy_mwh * b.eta_discharge
    assert usable_ac == pytest.approx(r.usable_ac_mwh)


def test_year_at_one_minute():
    """A whole year at 1 min in one call: the balance holds at every step and nothing is exported."""
    n = 525_600
    load = synthetic_load(n, 1, seed=0, base=6.0)
    per = np.where((np.arange(n) // 60) % 24 < 6, "valley", "flat")
    r = dispatch_rules(load, 1, BAT, EmsSettings(cap_mw=6.0), 0.5, per)
    assert r.p_grid_mw.shape == (n,) and r.p_grid_mw.min() >= 0.0
    np.testing.assert_allclose(r.p_grid_mw, load - r.p_battery_mw - r.p_shed_mw + r.p_curtailed_mw, atol=1e-9)


# ---------------------------------------------------------------------------------------------------------------
# invariants over random inputs

PERIODS = ["peak", "flat", "valley", "critical_peak", "deep_valley"]


@st.composite
def cases(draw, feasible_cap=False):
    n = draw(st.integers(1, 120))
    dt = draw(st.sampled_from([1, 5, 15, 60]))
    e = draw(st.floats(0.5, 40))
    pch, pdis = draw(st.floats(0, 8)), draw(st.floats(0, 8))
    eta_c, eta_d = draw(st.floats(0.7, 1.0)), draw(st.floats(0.7, 1.0))
    smin = draw(st.floats(0, 0.4))
    smax = draw(st.floats(smin + 0.2, 1.0))
    bat = LinearBattery(e, pch, pdis, eta_c, eta_d, smin, smax)
    reserve_min = draw(st.sampled_from([0.0, 5.0, 15.0]))
    reserve_mw = min(pdis, 0.9 * (smax - smin) * e * eta_d * 60 / max(reserve_min, 1e-9))
    floats = st.floats(0, 10, allow_nan=False)
    load = np.array(draw(st.lists(floats, min_size=n, max_size=n)))
    pv = np.array(draw(st.lists(floats, min_size=n, max_size=n)))
    per = np.array(draw(st.lists(st.sampled_from(PERIODS), min_size=n, max_size=n)))
    cap = draw(st.floats(0.5, 12))
    soc0 = draw(st.floats(smin, smax))
    return dt, load, pv, per, bat, EmsSettings(cap_mw=cap, reserve_mw=reserve_mw, reserve_min=reserve_min), soc0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(), st.booleans(), st.floats(0, 3))
def test_invariants_random(case, bms, shed):
    dt, load, pv, per, bat, st_, soc0 = case
    net = load - pv
    n = net.size
    lim = np.linspace(0, bat.p_discharge_max_mw, n) if bms else None
    r = dispatch_rules(net, dt, bat, st_, soc0, per, p_discharge_limit_mw=lim, p_charge_limit_mw=lim,
                       p_shed_max_mw=shed)
    # no export, ever; energy balance per step; curtailment only of PV, shedding only of load
    assert (r.p_grid_mw >= 0).all()
    np.testing.assert_allclose(r.p_grid_mw, net - r.p_battery_mw + r.p_curtailed_mw - r.p_shed_mw, atol=1e-9)
    assert (r.p_curtailed_mw <= pv + 1e-9).all() and (r.p_shed_mw <= shed + 1e-12).all()
    # power limits
    assert (r.p_battery_mw <= bat.p_discharge_max_mw + 1e-12).all()
    assert (-r.p_battery_mw <= bat.p_charge_max_mw + 1e-12).all()
    if bms:
        assert (np.abs(r.p_battery_mw) <= lim + 1e-12).all()
    # SOC window, reserve, and the linear model's dynamics
    assert (r.soc >= bat.soc_min - 1e-12).all() and (r.soc <= bat.soc_max + 1e-12).all()
    floor = r.summary["reserve_soc"]
    assert (r.soc >= min(floor, soc0) - 1e-9).all()
    prev = np.concatenate(([soc0], r.soc[:-1]))
    p = r.p_battery_mw
    d_soc = np.where(p >= 0, -p / bat.eta_discharge, -p * bat.eta_charge) * dt / 60 / bat.energy_mwh
    np.testing.assert_allclose(r.soc, prev + d_soc, atol=1e-9)
    # unmet is what is left above the cap
    np.testing.assert_allclose(r.p_unmet_mw, np.maximum(r.p_grid_mw - st_.cap_mw, 0), atol=1e-12)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 200), st.sampled_from([1, 5, 15]), st.floats(2, 8), st.floats(0, 1), st.integers(0, 10**6),
       st.lists(st.sampled_from(["flat", "valley", "deep_valley"]), min_size=1, max_size=4))
def test_cap_never_exceeded_when_battery_can(n, dt, cap, margin_frac, seed, pers):
    """Enough power (peaks <= cap + rating) and energy (sized for the excess): the cap always holds."""
    rng = np.random.default_rng(seed)
    margin = margin_frac * 0.5
    pdis = 3.0
    net = rng.uniform(-1.0, cap - margin + pdis, n)
    excess_mwh = np.clip(net - (cap - margin), 0, None).sum() * dt / 60
    st_ = EmsSettings(cap_mw=cap, margin_mw=margin, reserve_min=15.0)
    # energy: the excess plus the reserve, from soc0 = 0.8 down to soc_min = 0.1, at eta_d = 0.9
    e = (excess_mwh + pdis * 0.25) / (0.9 * 0.7) + 0.1
    bat = LinearBattery(e, 2.0, pdis, 0.9, 0.9, 0.1, 0.9)
    per = np.resize(np.array(pers), n)
    r = dispatch_rules(net, dt, bat, st_, 0.8, per)
    assert (r.p_grid_mw <= cap - margin + 1e-9).all()
    assert r.summary["unmet_mwh"] == 0.0 and r.summary["demand_windows_over_cap"] == 0


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cases(), st.sampled_from(["2025-07-15", "2025-04-12"]))
def test_lp_no_dearer_than_rules_random(tariff, case, date):
    dt, load, pv, per, bat, st_, soc0 = case
    idx = pd.date_range(date, periods=load.size, freq=f"{dt}min", tz=TZ)
    pr, per = price(tariff, idx), period(tariff, idx)
    net = load - pv
    rules = dispatch_rules(net, dt, bat, st_, soc0, per)
    assume(rules.summary["unmet_mwh"] == 0.0 and rules.summary["demand_windows_over_cap"] == 0)
    c_rules = energy_cny(rules.p_grid_mw, pr, dt)
    lp = schedule_lp(net, pr, dt, bat, st_, soc0, soc_end_min=rules.soc[-1])
    assert lp.p_over_cap_mw.max() < 1e-7
    assert lp.energy_cny <= c_rules * (1 + 1e-6) + 1e-6



# ---------------------------------------------------------------------------------------------------------------
# bad inputs: one-line ValueErrors

LOAD = np.full(8, 5.0)
ST = EmsSettings(cap_mw=6.0)


@pytest.mark.parametrize("call, match", [
    (lambda: dispatch_rules(LOAD, -1, BAT, ST, 0.5), "dt_min"),
    (lambda: dispatch_rules(LOAD, 0, BAT, ST, 0.5), "dt_min"),
    (lambda: dispatch_rules(LOAD, 15, BAT, ST, 1.2), "soc0 must be within 0-1"),
    (lambda: dispatch_rules(LOAD, 15, BAT, ST, -0.1), "soc0 must be within 0-1"),
    (lambda: dispatch_rules(LOAD, 15, BAT, ST, 0.99), "SOC window"),
    (lambda: dispatch_rules(LOAD, 15, BAT, ST, 0.5, np.full(7, "flat")), "one value per step"),
    (lambda: dispatch_rules(LOAD, 15, BAT, ST, 0.5, p_target_mw=np.zeros(9)), "one value per step"),
    (lambda: dispatch_rules(LOAD, 15, BAT, ST, 0.5, p_discharge_limit_mw=np.ones(3)), "one value per step"),
    (lambda: dispatch_rules(np.array([5.0, np.nan]), 15, BAT, ST, 0.5), "NaN"),
    (lambda: dispatch_rules(LOAD, 15, BAT, ST, 0.5, np.full(8, "super_peak")), "super_peak"),
    (lambda: dispatch_rules(LOAD, 7, BAT, ST, 0.5), "whole number of steps"),
    (lambda: dispatch_rules(LOAD, 15, BAT, ST, 0.5, p_shed_max_mw=-1), ">= 0"),
    (lambda: dispatch_rules(np.zeros((2, 4)), 15, BAT, ST, 0.5), "1-D"),
    (lambda: schedule_lp(LOAD, np.ones(7), 15, BAT, ST, 0.5), "one value per step"),
    (lambda: schedule_lp(LOAD, np.ones(8), -15, BAT, ST, 0.5), "dt_min"),
    (lambda: schedule_lp(LOAD, np.ones(8), 15, BAT, ST, 2.0), "soc0 must be within 0-1"),
    (lambda: dispatch_day_ahead(LOAD, LOAD[:4], np.ones(8), 15, BAT, ST, 0.5), "one value per step"),
    (lambda: persistence_forecast(LOAD, 7), "divide a day"),
    (lambda: LinearBattery(10, 1, 1, soc_min=0.9, soc_max=0.1), "soc_min must be below soc_max"),
    (lambda: LinearBattery(10, 1, 1, eta_charge=1.2), "eta_charge"),
    (lambda: LinearBattery(-10, 1, 1), "energy_mwh"),
    (lambda: EmsSettings(cap_mw=-1.0), "cap_mw"),
    (lambda: EmsSettings(cap_mw=6.0, period_actions={"peak": "sell"}), "period_actions"),
    (lambda: EmsSettings(cap_mw=6.0, reserve_mw=100.0, reserve_min=60).reserve_soc(BAT), "reserve"),
])
def test_bad_inputs(call, match):
    with pytest.raises(ValueError, match=match) as e:
        call()
    assert "\n" not in str(e.value)


def test_charge_ceiling_keeps_charging_under_the_month_peak():
    """A campus far below its cap: charging 'to the cap' in the valley would set a new billed peak; under a
    ceiling (e.g. the month's peak of the load alone) the import never exceeds it, and the battery still charges."""
    bat = LinearBattery(energy_mwh=8.0, p_charge_max_mw=4.0, p_discharge_max_mw=4.0, eta_charge=0.95,
                        eta_discharge=0.95, soc_min=0.05, soc_max=0.95)
    s = EmsSettings(cap_mw=6.0, margin_mw=0.05, reserve_min=0.0)
    load = np.full(8 * 60, 2.0)
    periods = np.full(load.size, "valley")
    free = dispatch_rules(load, 1.0, bat, s, soc0=0.2, periods=periods)
    capped = dispatch_rules(load, 1.0, bat, s, soc0=0.2, periods=periods, charge_ceiling_mw=2.5)
    assert free.p_grid_mw.max() == pytest.approx(5.95, abs=1e-9)          # up to cap - margin
    assert capped.p_grid_mw.max() <= 2.5 + 1e-12
    assert capped.p_battery_mw.min() == pytest.approx(-0.5, abs=1e-9)     # it charges with what is left
    assert capped.soc[-1] == pytest.approx(0.2 + 0.5 * 8.0 * 0.95 / 8.0, abs=1e-9)  # 0.5 MW x 8 h x eta_charge
