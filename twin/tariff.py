"""Electricity tariff as data: time-of-use periods, prices, the monthly bill, emissions.

A tariff is a parameter set ``models/tariffs/<name>.toml`` (the case's ``drivers.tariff``), validated by
:class:`TariffModel` and by :func:`check_tariff` (every hour of every month in exactly one period; period names
declared; a power-factor table that is monotonic and zero at its reference). The seed is the Shanghai two-part
TOU tariff of 2023 (REFERENCE.md "Shanghai tariff"): seasons give each month an hour table and multipliers on
the flat price; overrides (critical peak, deep valley on weekends and holidays) replace the period at some hours.

The bill follows Chinese two-part tariff practice:

- energy charge: import energy (MWh) in each period x the period's price (flat x multiplier); export earns
  nothing (assumption: no feed-in contract);
- basic charge: CNY per kW of the month's highest 15-minute mean import (``basis = "max_demand"``), or CNY per kVA
  of installed transformer capacity (``"installed_kva"``); charged in full for every calendar month the index
  touches;
- power-factor adjustment: monthly PF = kWh / sqrt(kWh^2 + kvarh^2) rounded to 0.01, a percentage from the
  table applied to the energy + basic charges (1983 national rules, reference 0.90).

Times are timezone-aware; periods follow the site's local clock (``timezone``, from the case's site).

Written here: no maintained Python library carries Chinese TOU tariffs (``tariff``/OpenEI URDB tools are US-rate
specific).
"""

from __future__ import annotations

import datetime as _dt
import warnings
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from .case import Case, CaseError, Name, Q, _read_toml, _Strict, _validate

__all__ = ["TariffModel", "load_tariff", "load_tariff_file", "check_tariff", "period", "multiplier", "price",
           "bill", "emissions_t", "power_factor_adjustment_percent"]

Hours = list[tuple[int, int]]


class Season(_Strict):
    name: Name
    months: list[int] = Field(min_length=1, description="months 1-12 that use this season's table")
    hours: dict[str, Hours] = Field(description="period name -> [start, end) local hour ranges, 0-24")
    multipliers: dict[str, float] = Field(description="period name -> multiplier on the flat price, > 0")


class Override(_Strict):
    period: str
    months: list[int] = Field(min_length=1, description="months 1-12")
    hours: Hours = Field(min_length=1, description="[start, end) local hour ranges, 0-24")
    days: Literal["all", "weekends_and_holidays", "working_days"] = "all"
    multiplier: float = Q("multiplier on the flat price", gt=0, le=10)


class Demand(_Strict):
    basis: Literal["max_demand", "installed_kva"]
    max_demand_cny_per_kw_month: float = Q("basic charge in CNY per kW of monthly maximum demand", ge=0, le=500)
    installed_cny_per_kva_month: float = Q("basic charge in CNY per kVA installed per month", ge=0, le=500)
    window_min: float = Q("demand integration window in minutes", gt=0, le=60, default=15.0)


class PowerFactorTable(_Strict):
    reference: float = Q("reference power factor", gt=0.5, le=1)
    table: list[tuple[float, float]] = Field(min_length=1, description="[power factor, adjustment in %] pairs")
    below_table_percent_per_0_01: float = Q("surcharge in % per 0.01 below the table's lowest PF", ge=0, le=20)


class Holidays(_Strict):
    source: str = ""
    years: list[int] = Field(description="calendar years the lists cover")
    days_off: list[_dt.date] = Field(default_factory=list, description="public holidays (local dates)")
    working_days: list[_dt.date] = Field(default_factory=list, description="weekend days worked (local dates)")


class TariffModel(_Strict):
    """A time-of-use tariff (``models/tariffs/<name>.toml``)."""

    description: str = ""
    currency: str = "CNY"
    flat_price_cny_per_kwh: float = Q("flat-period energy price in CNY/kWh", gt=0, le=10)
    flat_price_confidence: Literal["H", "M", "L"] = "L"
    emission_factor_kg_per_kwh: float = Q("grid emission factor in kg CO2/kWh", ge=0, le=2)
    periods: list[Name] = Field(min_length=1, description="the period names the tables may use")
    seasons: list[Season] = Field(min_length=1)
    overrides: list[Override] = Field(default_factory=list)
    demand: Demand
    power_factor: PowerFactorTable
    holidays: Holidays
    timezone: str | None = Field(None, description="IANA time zone of the tariff clock (default: the site's)")


# --------------------------------------------------------------------------------------------------------------
# loading and checking


def _hour_mask(path, key: str, ranges: Hours) -> np.ndarray:
    """Count of coverage of each hour 0-23 by ``[start, end)`` ranges (CaseError for a bad range)."""
    cover = np.zeros(24, dtype=int)
    for i, (a, b) in enumerate(ranges):
        if not (0 <= a < b <= 24):
            raise CaseError(f"{path}: key '{key}[{i}]': expected an hour range [start, end) with "
                            f"0 <= start < end <= 24, found [{a}, {b}]")
        cover[a:b] += 1
    return cover


def _hours_str(h) -> str:
    return ", ".join(f"{x:02d}-{x + 1:02d}" for x in np.flatnonzero(h))


def check_tariff(t: TariffModel, path: str | Path = "tariff") -> None:
    """Check a tariff's tables: each hour of each month in exactly one period, names known, PF table sane.

    Raises
    ------
    CaseError
        Naming the file and key, what was expected and what was found.
    """
    known = set(t.periods)
    month_seen: dict[int, str] = {}
    for si, s in enumerate(t.seasons):
        for m in s.months:
            if not 1 <= m <= 12:
                raise CaseError(f"{path}: key 'seasons[{si}].months': expected months 1-12, found {m}")
            if m in month_seen:
                raise CaseError(f"{path}: key 'seasons[{si}].months': expected each month in one season, found "
                                f"month {m} also in season '{month_seen[m]}'")
            month_seen[m] = s.name
        cover = np.zeros(24, dtype=int)
        for name, ranges in s.hours.items():
            if name not in known:
                raise CaseError(f"{path}: key 'seasons[{si}].hours.{name}': expected a period declared in "
                                f"'periods' {t.periods}, found '{name}'")
            if name not in s.multipliers:
                raise CaseError(f"{path}: key 'seasons[{si}].multipliers': expected a multiplier for period "
                                f"'{name}', found none")
            cover += _hour_mask(path, f"seasons[{si}].hours.{name}", ranges)
        if (cover > 1).any():
            raise CaseError(f"{path}: key 'seasons[{si}].hours': expected each hour in exactly one period, found "
                            f"hours {_hours_str(cover > 1)} in more than one")
        if (cover == 0).any():
            raise CaseError(f"{path}: key 'seasons[{si}].hours': expected each hour in exactly one period, found "
                            f"hours {_hours_str(cover == 0)} in none")
        for name, mult in s.multipliers.items():
            if name not in known:
                raise CaseError(f"{path}: key 'seasons[{si}].multipliers.{name}': expected a period declared "
                                f"in 'periods' {t.periods}, found '{name}'")
            if not mult > 0:
                raise CaseError(f"{path}: key 'seasons[{si}].multipliers.{name}': expected a multiplier > 0, "
                                f"found {mult}")
    missing = sorted(set(range(1, 13)) - set(month_seen))
    if missing:
        raise CaseError(f"{path}: key 'seasons': expected every month 1-12 in a season, found months "
                        f"{missing} in none")
    # overrides: names known, months valid, no two overlapping on the same (day type, month, hour)
    seen = np.full((2, 13, 24), -1)
    for oi, o in enumerate(t.overrides):
        if o.period not in known:
            raise CaseError(f"{path}: key 'overrides[{oi}].period': expected a period declared in 'periods' "
                            f"{t.periods}, found '{o.period}'")
        cover = _hour_mask(path, f"overrides[{oi}].hours", o.hours)
        if (cover > 1).any():
            raise CaseError(f"{path}: key 'overrides[{oi}].hours': expected each hour once, found hours "
                            f"{_hours_str(cover > 1)} twice")
        dtypes = {"all": [0, 1], "working_days": [0], "weekends_and_holidays": [1]}[o.days]
        for m in o.months:
            if not 1 <= m <= 12:
                raise CaseError(f"{path}: key 'overrides[{oi}].months': expected months 1-12, found {m}")
            for d in dtypes:
                clash = (seen[d, m] >= 0) & (cover > 0)
                if clash.any():
                    j = int(seen[d, m][clash][0])
                    raise CaseError(f"{path}: key 'overrides[{oi}]': expected overrides not to overlap, found "
                                    f"month {m} hours {_hours_str(clash)} also in overrides[{j}]")
                seen[d, m][cover > 0] = oi
    # power-factor table
    pf = t.power_factor
    tab = sorted(pf.table, key=lambda r: -r[0])
    pfs = [r[0] for r in tab]
    if len(set(pfs)) != len(pfs) or any(not 0 < x <= 1 for x in pfs):
        raise CaseError(f"{path}: key 'power_factor.table': expected distinct power factors in (0, 1], "
                        f"found {pfs}")
    pcts = [r[1] for r in tab]
    if any(b < a for a, b in zip(pcts, pcts[1:], strict=False)):
        raise CaseError(f"{path}: key 'power_factor.table': expected the adjustment to rise as the power factor "
                        f"falls, found {tab}")
    ref = [r[1] for r in tab if abs(r[0] - pf.reference) < 1e-9]
    if ref != [0.0]:
        raise CaseError(f"{path}: key 'power_factor.table': expected an entry [{pf.reference:g}, 0.0] at the "
                        f"reference power factor, found {ref or 'none'}")
    if t.timezone is not None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(t.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise CaseError(f"{path}: key 'timezone': expected an IANA time zone, found '{t.timezone}'") from None


def load_tariff_file(path: str | Path, timezone: str | None = None) -> TariffModel:
    """Read and check a tariff file; ``timezone`` (IANA) is used when the file has none."""
    path = Path(path)
    t = _validate(path, TariffModel, _read_toml(path))
    if t.timezone is None and timezone is not None:
        t = t.model_copy(update={"timezone": timezone})
    check_tariff(t, path)
    return t


def load_tariff(case: Case) -> TariffModel:
    """The case's tariff (``drivers.tariff``), checked, on the site's clock unless the file names a zone."""
    name = case.spec.drivers.tariff
    t = case.parameter_set("tariffs", name, TariffModel)
    path = case.model_paths.get(("tariffs", name), f"models/tariffs/{name}.toml")
    if t.timezone is None:
        t = t.model_copy(update={"timezone": case.spec.site.timezone})
    check_tariff(t, path)
    return t


# --------------------------------------------------------------------------------------------------------------
# periods and prices


def _local(tariff: TariffModel, index) -> pd.DatetimeIndex:
    idx = pd.DatetimeIndex(index) if not isinstance(index, pd.DatetimeIndex) else index
    if idx.tz is None:
        raise ValueError("tariff: the time index must be timezone-aware (e.g. tz='Asia/Shanghai' or 'UTC'); "
                         "found naive timestamps")
    if tariff.timezone is None:
        raise ValueError("tariff: the tariff has no timezone; load it with load_tariff(case) or pass one to "
                         "load_tariff_file")
    return idx.tz_convert(tariff.timezone)


def _tables(tariff: TariffModel):
    """Period code and multiplier for (day off, month, hour): arrays of shape (2, 13, 24)."""
    codes = np.full((2, 13, 24), -1, dtype=int)
    mult = np.full((2, 13, 24), np.nan)
    pidx = {p: i for i, p in enumerate(tariff.periods)}
    for s in tariff.seasons:
        for name, ranges in s.hours.items():
            for a, b in ranges:
                for m in s.months:
                    codes[:, m, a:b] = pidx[name]
                    mult[:, m, a:b] = s.multipliers[name]
    for o in tariff.overrides:
        dtypes = {"all": [0, 1], "working_days": [0], "weekends_and_holidays": [1]}[o.days]
        for a, b in o.hours:
            for m in o.months:
                for d in dtypes:
                    codes[d, m, a:b] = pidx[o.period]
                    mult[d, m, a:b] = o.multiplier
    return codes, mult


def _lookup(tariff: TariffModel, index):
    local = _local(tariff, index)
    dates = local.normalize().tz_localize(None).values.astype("datetime64[D]")
    h = tariff.holidays
    uncovered = sorted(set(local.year.unique()) - set(h.years))
    if uncovered:
        warnings.warn(f"tariff: no public-holiday data for {uncovered}; only weekends count as days off "
                      f"(add them to the tariff's [holidays])", stacklevel=3)
    off_list = np.array(h.days_off, dtype="datetime64[D]")
    work_list = np.array(h.working_days, dtype="datetime64[D]")
    weekend = local.dayofweek.values >= 5
    day_off = (weekend & ~np.isin(dates, work_list)) | np.isin(dates, off_list)
    codes, mult = _tables(tariff)
    d = day_off.astype(int)
    m = local.month.values
    hr = local.hour.values
    return codes[d, m, hr], mult[d, m, hr]


def period(tariff: TariffModel, index) -> np.ndarray:
    """Tariff period name at each timestamp (the period of the local hour the interval starts in).

    Parameters
    ----------
    tariff : TariffModel
        From :func:`load_tariff` (its ``timezone`` set).
    index : pandas.DatetimeIndex
        Timezone-aware timestamps.

    Returns
    -------
    numpy.ndarray of str
    """
    code, _ = _lookup(tariff, index)
    return np.asarray(tariff.periods, dtype=object)[code].astype(str)


def multiplier(tariff: TariffModel, index) -> np.ndarray:
    """Multiplier on the flat price at each timestamp (dimensionless)."""
    return _lookup(tariff, index)[1]


def price(tariff: TariffModel, index) -> np.ndarray:
    """Energy price in CNY/kWh at each timestamp: flat price x the period's multiplier."""
    return tariff.flat_price_cny_per_kwh * multiplier(tariff, index)


# --------------------------------------------------------------------------------------------------------------
# bill and emissions


def power_factor_adjustment_percent(tariff: TariffModel, pf) -> np.ndarray:
    """Power-factor adjustment in % of the energy + basic charges (+ surcharge, - rebate).

    ``pf`` is rounded to 0.01; the table entry at or below it applies; below the table's lowest entry the
    surcharge grows by ``below_table_percent_per_0_01`` per 0.01. NaN (no reactive data) gives 0.
    """
    pf = np.round(np.atleast_1d(np.asarray(pf, dtype=float)), 2)
    tab = sorted(tariff.power_factor.table, key=lambda r: r[0])
    pfs = np.array([r[0] for r in tab])
    pct = np.array([r[1] for r in tab])
    i = np.searchsorted(pfs, pf + 1e-9, side="right") - 1
    out = pct[np.clip(i, 0, len(pct) - 1)]
    below = pf < pfs[0] - 1e-9
    steps = np.round((pfs[0] - pf) / 0.01)
    out = np.where(below, pct[0] + tariff.power_factor.below_table_percent_per_0_01 * steps, out)
    return np.where(np.isnan(pf), 0.0, out)


def _step_hours(index: pd.DatetimeIndex) -> float:
    if len(index) < 2:
        raise ValueError("tariff: at least two timestamps are needed to know the time step")
    d = np.diff(index.asi8)
    if (d <= 0).any() or (d != d[0]).any():
        raise ValueError("tariff: the time index must be strictly increasing with a constant step")
    return d[0] / 3.6e12


def bill(tariff: TariffModel, index, p_import_mw, q_import_mvar=None, installed_kva=None) -> dict:
    """Electricity bill of a grid-import time series.

    Parameters
    ----------
    tariff : TariffModel
        From :func:`load_tariff`.
    index : pandas.DatetimeIndex
        Timezone-aware, constant step; a value is the mean over the interval that starts at its timestamp.
    p_import_mw : array_like
        Active power import at the point of connection in MW (negative: export, not billed and not credited).
    q_import_mvar : array_like, optional
        Reactive power in Mvar (sign ignored: both directions are registered). None: no power-factor adjustment.
    installed_kva : float, optional
        Installed transformer capacity in kVA, needed when the demand basis is ``installed_kva``.

    Returns
    -------
    dict
        ``energy_mwh`` and ``energy_cny`` ({period: value}), ``demand_cny``, ``pf_adjustment_cny``,
        ``total_cny`` (floats, CNY) and ``monthly`` (pandas.DataFrame, one row per local calendar month:
        ``mwh_<period>``, ``energy_cny``, ``max_demand_kw`` (highest ``window_min`` mean import), ``demand_cny``,
        ``kvarh``, ``power_factor``, ``pf_adjust_percent``, ``pf_adjustment_cny``, ``total_cny``).

    Notes
    -----
    With a step longer than the demand window, the demand is the step mean (the window cannot be resolved).
    The basic charge is a full month's for every calendar month the index touches.
    """
    local = _local(tariff, index)
    dt_h = _step_hours(local)
    p = np.asarray(p_import_mw, dtype=float)
    if p.shape != (len(local),):
        raise ValueError(f"bill: p_import_mw must have one value per timestamp ({len(local)}), found shape "
                         f"{p.shape}")
    if np.isnan(p).any():
        raise ValueError("bill: p_import_mw contains NaN")
    imp = np.clip(p, 0.0, None)
    if q_import_mvar is not None:
        q = np.abs(np.asarray(q_import_mvar, dtype=float))
        if q.shape != p.shape or np.isnan(q).any():
            raise ValueError("bill: q_import_mvar must have one finite value per timestamp")
    else:
        q = None
    dem = tariff.demand
    if dem.basis == "installed_kva" and (installed_kva is None or installed_kva <= 0):
        raise ValueError("bill: the tariff's demand basis is 'installed_kva': pass installed_kva (> 0)")

    code, mult = _lookup(tariff, local)
    month = pd.Index(local.year * 100 + local.month, name="month")
    e_mwh = imp * dt_h
    df = pd.DataFrame({"month": month, "period": np.asarray(tariff.periods)[code], "mwh": e_mwh,
                       "cny": e_mwh * 1000.0 * tariff.flat_price_cny_per_kwh * mult})
    by = df.pivot_table(index="month", columns="period", values=["mwh", "cny"], aggfunc="sum", fill_value=0.0)
    months = by.index
    out = pd.DataFrame(index=months)
    for name in tariff.periods:
        out[f"mwh_{name}"] = by["mwh"][name] if name in by["mwh"] else 0.0
    out["energy_cny"] = by["cny"].sum(axis=1)
    # demand: highest window mean of the import in each month
    s = pd.Series(imp, index=local)
    if dt_h * 60.0 < dem.window_min - 1e-9:
        w = s.resample(f"{dem.window_min:g}min").mean().dropna()
    else:
        w = s
    out["max_demand_kw"] = w.groupby(w.index.year * 100 + w.index.month).max().reindex(months).values * 1000.0
    if dem.basis == "max_demand":
        out["demand_cny"] = out["max_demand_kw"] * dem.max_demand_cny_per_kw_month
    else:
        out["demand_cny"] = float(installed_kva) * dem.installed_cny_per_kva_month
    mwh = out[[f"mwh_{n}" for n in tariff.periods]].sum(axis=1)
    if q is not None:
        out["kvarh"] = pd.Series(q * dt_h * 1000.0, index=month).groupby(level=0).sum().reindex(months).values
        with np.errstate(invalid="ignore", divide="ignore"):
            out["power_factor"] = (mwh * 1000.0 / np.hypot(mwh * 1000.0, out["kvarh"])).values
    else:
        out["kvarh"] = np.nan
        out["power_factor"] = np.nan
    out["pf_adjust_percent"] = power_factor_adjustment_percent(tariff, out["power_factor"].values)
    out["pf_adjustment_cny"] = out["pf_adjust_percent"] / 100.0 * (out["energy_cny"] + out["demand_cny"])
    out["total_cny"] = out["energy_cny"] + out["demand_cny"] + out["pf_adjustment_cny"]
    out.index = pd.Index([f"{m // 100}-{m % 100:02d}" for m in months], name="month")
    return {
        "energy_mwh": {n: float(out[f"mwh_{n}"].sum()) for n in tariff.periods},
        "energy_cny": {n: float(by["cny"][n].sum()) if n in by["cny"] else 0.0 for n in tariff.periods},
        "demand_cny": float(out["demand_cny"].sum()),
        "pf_adjustment_cny": float(out["pf_adjustment_cny"].sum()),
        "total_cny": float(out["total_cny"].sum()),
        "monthly": out,
    }


def emissions_t(tariff: TariffModel, p_import_mw, dt_h: float) -> float:
    """CO2 emissions of the grid import in tonnes: import energy (MWh, export not credited) x emission factor.

    Parameters
    ----------
    tariff : TariffModel
        Its ``emission_factor_kg_per_kwh`` (Shanghai 2022: 0.5849, REFERENCE.md).
    p_import_mw : array_like
        Import power in MW at equal steps.
    dt_h : float
        Step length in hours.
    """
    p = np.asarray(p_import_mw, dtype=float)
    if np.isnan(p).any():
        raise ValueError("emissions_t: p_import_mw contains NaN")
    if not dt_h > 0:
        raise ValueError(f"emissions_t: dt_h must be > 0, found {dt_h}")
    # MWh x kg/kWh = t
    return float(np.clip(p, 0.0, None).sum() * dt_h * tariff.emission_factor_kg_per_kwh)
