"""Tariff: periods and prices at known hours, full coverage, bill arithmetic, demand window, PF, bad data."""

import warnings

import numpy as np
import pandas as pd
import pytest

from twin.case import CaseError
from twin.tariff import (
    bill,
    emissions_t,
    load_tariff,
    load_tariff_file,
    multiplier,
    period,
    power_factor_adjustment_percent,
    price,
)

TZ = "Asia/Shanghai"


@pytest.fixture(scope="module")
def tariff(seed_case):
    return load_tariff(seed_case)


def at(*stamps):
    return pd.DatetimeIndex([pd.Timestamp(s, tz=TZ) for s in stamps])


@pytest.mark.parametrize("stamp, name, mult", [
    ("2025-07-15 13:00", "critical_peak", 2.25),   # summer critical peak, Tuesday
    ("2025-07-15 09:00", "peak", 1.8),
    ("2025-07-15 16:00", "flat", 1.0),
    ("2025-03-12 02:00", "valley", 0.5),           # Wednesday, other months
    ("2025-03-12 09:00", "peak", 1.6),
    ("2025-04-12 03:00", "deep_valley", 0.2),      # Saturday
    ("2025-10-03 23:00", "deep_valley", 0.2),      # National Day holiday, a Friday
    ("2025-09-28 03:00", "valley", 0.4),           # Sunday moved to a working day
    ("2025-01-15 09:00", "peak", 1.8),             # January peak
    ("2025-01-15 18:30", "peak", 1.8),
    ("2025-12-10 19:00", "critical_peak", 2.25),   # December critical peak 19-21
    ("2025-12-10 20:59", "critical_peak", 2.25),
    ("2025-12-10 21:00", "flat", 1.0),
    ("2025-08-16 03:00", "valley", 0.4),           # August Saturday: no deep valley in Jul/Aug
])
def test_known_hours(tariff, stamp, name, mult):
    idx = at(stamp)
    assert period(tariff, idx)[0] == name
    assert multiplier(tariff, idx)[0] == pytest.approx(mult)
    assert price(tariff, idx)[0] == pytest.approx(tariff.flat_price_cny_per_kwh * mult)


def test_utc_index_uses_local_clock(tariff):
    # 05:00 UTC is 13:00 in Shanghai
    idx = pd.DatetimeIndex([pd.Timestamp("2025-07-15 05:00", tz="UTC")])
    assert period(tariff, idx)[0] == "critical_peak"


def test_every_hour_of_a_year_has_one_period(tariff):
    idx = pd.date_range("2025-01-01", "2026-12-31 23:00", freq="h", tz=TZ)
    names = period(tariff, idx)
    assert len(names) == len(idx)
    assert set(names) == set(tariff.periods)
    assert not np.isnan(multiplier(tariff, idx)).any()


def test_naive_index_rejected(tariff):
    with pytest.raises(ValueError, match="timezone-aware"):
        period(tariff, pd.DatetimeIndex(["2025-07-15 13:00"]))


def test_missing_holiday_year_warns(tariff):
    with pytest.warns(UserWarning, match="2030"):
        period(tariff, at("2030-05-01 03:00"))


def _hand_energy_cny(tariff, idx):
    """Hand sum for 1 MW: hours by period x 1000 kWh x price, counted with plain Python date logic."""
    total = 0.0
    off = {d.isoformat() for d in tariff.holidays.days_off}
    work = {d.isoformat() for d in tariff.holidays.working_days}
    for ts in idx:
        m, h, day = ts.month, ts.hour, ts.date().isoformat()
        day_off = (ts.dayofweek >= 5 and day not in work) or day in off
        if m in (7, 8, 9):
            mult = 1.8 if (8 <= h < 15 or 18 <= h < 21) else 0.4 if (h >= 22 or h < 6) else 1.0
        else:
            hi, lo = (1.8, 0.4) if m in (1, 12) else (1.6, 0.5)
            mult = hi if (8 <= h < 11 or 18 <= h < 21) else lo if (h >= 22 or h < 6) else 1.0
        if (m in (7, 8) and 12 <= h < 14) or (m in (1, 12) and 19 <= h < 21):
            mult = 2.25
        if m in (2, 3, 4, 5, 6, 9, 10, 11) and day_off and (h < 6 or h >= 22):
            mult = 0.2
        total += 1000.0 * tariff.flat_price_cny_per_kwh * mult
    return total


def test_bill_constant_1mw(tariff):
    idx = pd.date_range("2025-01-01", periods=8760, freq="h", tz=TZ)
    b = bill(tariff, idx, np.ones(len(idx)))
    assert sum(b["energy_mwh"].values()) == pytest.approx(8760.0)
    assert sum(b["energy_cny"].values()) == pytest.approx(_hand_energy_cny(tariff, idx))
    assert b["demand_cny"] == pytest.approx(12 * 1000.0 * tariff.demand.max_demand_cny_per_kw_month)
    assert b["pf_adjustment_cny"] == 0.0                 # no reactive data: no adjustment
    assert b["total_cny"] == pytest.approx(sum(b["energy_cny"].values()) + b["demand_cny"])
    monthly = b["monthly"]
    assert list(monthly.index) == [f"2025-{m:02d}" for m in range(1, 13)]
    assert monthly["total_cny"].sum() == pytest.approx(b["total_cny"])
    # January: 31 days x 1 h of critical peak x 2 = 62 MWh
    assert monthly.loc["2025-01", "mwh_critical_peak"] == pytest.approx(62.0)


def test_demand_uses_15min_mean(tariff):
    idx = pd.date_range("2025-03-03", periods=24 * 60, freq="min", tz=TZ)
    p = np.full(len(idx), 2.0)
    p[600] = 5.0                                           # a 1-minute spike of +3 MW
    b = bill(tariff, idx, p)
    assert b["monthly"]["max_demand_kw"].iloc[0] == pytest.approx(2000.0 + 3000.0 / 15.0)
    p[600:615] = 5.0                                       # a whole 15-min window at 5 MW
    b = bill(tariff, idx, p)
    assert b["monthly"]["max_demand_kw"].iloc[0] == pytest.approx(5000.0)


def test_installed_kva_basis(tariff):
    t = tariff.model_copy(update={"demand": tariff.demand.model_copy(update={"basis": "installed_kva"})})
    idx = pd.date_range("2025-03-01", periods=48, freq="h", tz=TZ)
    with pytest.raises(ValueError, match="installed_kva"):
        bill(t, idx, np.ones(48))
    b = bill(t, idx, np.ones(48), installed_kva=20000.0)
    assert b["demand_cny"] == pytest.approx(20000.0 * t.demand.installed_cny_per_kva_month)


def test_power_factor_adjustment_sign(tariff):
    assert power_factor_adjustment_percent(tariff, 0.90)[0] == 0.0
    assert power_factor_adjustment_percent(tariff, 0.97)[0] == pytest.approx(-0.75)
    assert power_factor_adjustment_percent(tariff, 0.85)[0] == pytest.approx(2.5)
    assert power_factor_adjustment_percent(tariff, 0.60)[0] == pytest.approx(25.0)
    idx = pd.date_range("2025-03-01", periods=24, freq="h", tz=TZ)
    good = bill(tariff, idx, np.ones(24), q_import_mvar=np.full(24, 0.2))     # PF 0.98: rebate
    poor = bill(tariff, idx, np.ones(24), q_import_mvar=np.full(24, 0.75))    # PF 0.80: surcharge
    assert good["pf_adjustment_cny"] < 0 < poor["pf_adjustment_cny"]
    m = poor["monthly"].iloc[0]
    assert m["power_factor"] == pytest.approx(0.8)
    assert m["pf_adjustment_cny"] == pytest.approx(0.05 * (m["energy_cny"] + m["demand_cny"]))


def test_emissions(tariff):
    assert emissions_t(tariff, [1.0, 1.0, -1.0], 1.0) == pytest.approx(2 * 0.5849)


def test_irregular_index_rejected(tariff):
    idx = at("2025-03-01 00:00", "2025-03-01 01:00", "2025-03-01 03:00")
    with pytest.raises(ValueError, match="constant step"):
        bill(tariff, idx, np.ones(3))


def _bad(tmp_path, tariff_path, old, new):
    text = tariff_path.read_text()
    assert old in text
    f = tmp_path / "bad_tariff.toml"
    f.write_text(text.replace(old, new, 1))
    return f


@pytest.mark.parametrize("old, new, key, what", [
    ("hours.peak = [[8, 15], [18, 21]]", "hours.peak = [[8, 16], [18, 21]]", "seasons[0].hours",
     "more than one"),
    ("hours.peak = [[8, 15], [18, 21]]", "hours.peak = [[8, 14], [18, 21]]", "seasons[0].hours", "in none"),
    ("hours.peak = [[8, 15], [18, 21]]", "hours.peek = [[8, 15], [18, 21]]", "seasons[0].hours.peek",
     "declared"),
    ('period = "deep_valley"', 'period = "deeper_valley"', "overrides[2].period", "deeper_valley"),
    ("months = [7, 8, 9]", "months = [7, 8]", "seasons", "[9]"),
    ("months = [1, 12]", "months = [1, 12, 7]", "seasons[1].months", "month 7"),
    ("[0.89, 0.5]", "[0.89, -0.5]", "power_factor.table", "rise"),
    ("flat_price_cny_per_kwh = 0.65", "flat_price_cny_per_kwh = -0.65", "flat_price_cny_per_kwh", "-0.65"),
    ("hours = [[12, 14]]", "hours = [[12, 25]]", "overrides[0].hours[0]", "25"),
])
def test_bad_tariff_data_named(tmp_path, seed_case, old, new, key, what):
    path = seed_case.model_paths[("tariffs", seed_case.spec.drivers.tariff)]
    f = _bad(tmp_path, path, old, new)
    with pytest.raises(CaseError) as exc:
        load_tariff_file(f, TZ)
    msg = str(exc.value)
    assert str(f) in msg and f"'{key}" in msg and what in msg, msg


def test_overlapping_overrides_rejected(tmp_path, seed_case):
    path = seed_case.model_paths[("tariffs", seed_case.spec.drivers.tariff)]
    f = _bad(tmp_path, path, "hours = [[0, 6], [22, 24]]", "hours = [[0, 6], [19, 24]]")
    f.write_text(f.read_text().replace("months = [2, 3, 4, 5, 6, 9, 10, 11]", "months = [1, 2]"))
    with pytest.raises(CaseError, match=r"overrides\[2\]'.*overlap.*month 1 hours 19-20"):
        load_tariff_file(f, TZ)


def test_no_warning_for_covered_years(tariff):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        period(tariff, pd.date_range("2025-01-01", "2026-12-31", freq="D", tz=TZ))
