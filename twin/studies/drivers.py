"""Site drivers over a year: weather, PV, GPU-hall IT load, cooling, auxiliaries, facility load and tariff.

Composes the driver modules (pvlib's ModelChain spirit: the orchestrator never hides them):
:func:`twin.weather.typical_year` or :func:`twin.weather.read_weather` -> :func:`twin.pv.pv_output`;
:func:`twin.gpu.it_load` (the case's load scenario) -> :func:`twin.cooling.cooling_power`; auxiliaries from the
case; the tariff's periods and prices (:mod:`twin.tariff`). The year is the case's ``[drivers] year`` in the
site's local time, at ``resolution_s`` (default 60 s), stored in UTC with each value the mean over the interval
that starts at its timestamp.

Checks (what the drivers alone can say about the cap; the year-in-the-loop study answers with the battery):
the worst day's energy above the firm cap against the battery's usable AC energy, and the worst day's headroom
under the cap against what recharging that energy needs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from tqdm.auto import tqdm

from .. import cooling, gpu, pv, tariff, weather
from ..battery import pcs_efficiency, ratings
from ..case import Case, CaseError
from ..limits import Checker, counts
from . import StudyResult
from ._common import attrs, finalize

NAME = "drivers"
CRITERION_ENERGY = ("Seed claim: the battery covers the load above the firm cap; a day's energy above the cap must "
                    "fit in the usable AC energy (REFERENCE.md seed case)")
CRITERION_RECHARGE = ("The battery must recharge under the cap: a day's headroom below the cap must hold the energy "
                      "above it divided by the round-trip efficiency")


def year_index(case: Case) -> pd.DatetimeIndex:
    """Interval starts of the case's year in local time at its resolution, as UTC timestamps."""
    d = case.spec.drivers
    tz = case.spec.site.timezone
    start = pd.Timestamp(f"{d.year}-01-01", tz=tz)
    idx = pd.date_range(start, pd.Timestamp(f"{d.year + 1}-01-01", tz=tz), freq=pd.Timedelta(seconds=d.resolution_s),
                        inclusive="left")
    return idx.tz_convert("UTC")


def _weather_path(case: Case) -> Path | None:
    f = case.spec.drivers.weather_file
    if f is None:
        return None
    path = Path(f)
    return path if path.is_absolute() else case.path.parent / path


def check(case: Case) -> None:
    """Check the drivers' inputs before any study runs (scenario, tariff, climate or weather file): a
    :class:`~twin.case.CaseError` naming the file and key, so that bad input writes nothing."""
    gpu.load_scenario(case)
    tariff.load_tariff(case)
    path = _weather_path(case)
    if path is None:
        weather.climate_table(case)
    else:
        weather.read_weather(path, case)


def _weather(case: Case, index: pd.DatetimeIndex) -> pd.DataFrame:
    d = case.spec.drivers
    step = pd.Timedelta(seconds=d.resolution_s)
    path = _weather_path(case)
    if path is None:
        return weather.typical_year(case, freq=step)
    w = weather.read_weather(path, case)
    w_step = w.index[1] - w.index[0]
    if w_step == step:
        w = w.reindex(index)
    elif w_step > step:  # hold each interval mean over the finer steps (energy-consistent)
        w = w.reindex(index, method="ffill")
    else:
        w = weather.resample_mean(w, step).reindex(index)
    if w.isna().any().any():
        missing = int(w.isna().any(axis=1).sum())
        raise CaseError(f"{path}: weather does not cover the case's year {d.year}: {missing} steps missing")
    return w


def _monthly(series: pd.Series, tz: str, how: str) -> list[float]:
    local = series.tz_convert(tz)
    g = local.groupby(local.index.month)
    out = getattr(g, how)()
    return [float(out.get(m, np.nan)) for m in range(1, 13)]


def run(case: Case, net=None, *, progress: bool = True) -> StudyResult:
    """Compute every driver over the case's year; see the module docstring."""
    s = case.spec
    tz = s.site.timezone
    index = year_index(case)
    dt_h = (index[1] - index[0]).total_seconds() / 3600.0
    bar = tqdm(total=5, desc="drivers", unit="step", leave=False, disable=not progress)

    bar.set_postfix_str("weather")
    w = _weather(case, index)
    solpos = weather.solar_position(case, w.index)
    bar.update()

    bar.set_postfix_str("pv")
    pv_ds = pv.pv_output(case, w, solpos) if s.pv else None
    bar.update()

    bar.set_postfix_str("it load")
    it_ds = gpu.it_load(case, index)
    it_total = it_ds.p_mw.sum("hall")
    bar.update()

    bar.set_postfix_str("cooling")
    if s.cooling_plants:
        cool = cooling.cooling_power(case, it_total.values, w.temp_air.values, w.relative_humidity.values, time=index)
        cool_p = cool.p_mw.sum("cooling_plant").values
        cool_q = cool.q_mvar.sum("cooling_plant").values
    else:
        cool, cool_p, cool_q = None, np.zeros(len(index)), np.zeros(len(index))
    bar.update()

    bar.set_postfix_str("tariff")
    aux_p = sum(a.p_kw for a in s.auxiliaries) / 1000.0
    aux_q = sum(a.p_kw * np.tan(np.arccos(a.power_factor)) for a in s.auxiliaries) / 1000.0
    r = ratings(case)
    bess_aux = r.aux_mw if r is not None else 0.0
    facility_p = it_total.values + cool_p + aux_p + bess_aux
    facility_q = it_ds.q_mvar.sum("hall").values + cool_q + aux_q
    pv_p = pv_ds.p_mw.sum("pv_system").values if pv_ds is not None else np.zeros(len(index))
    net_p = facility_p - pv_p
    tar = tariff.load_tariff(case)
    periods = tariff.period(tar, index)
    prices = tariff.price(tar, index)
    names, codes = np.unique(np.asarray(periods, dtype=str), return_inverse=True)
    names = [str(n) for n in names]
    bar.update()
    bar.close()

    time = index.tz_convert("UTC").tz_localize(None)
    data = {
        "ghi": ("time", w.ghi.values, attrs("W m-2", "global horizontal irradiance")),
        "dni": ("time", w.dni.values, attrs("W m-2", "direct normal irradiance")),
        "dhi": ("time", w.dhi.values, attrs("W m-2", "diffuse horizontal irradiance")),
        "temp_air": ("time", w.temp_air.values, attrs("degC", "outdoor air temperature")),
        "relative_humidity": ("time", w.relative_humidity.values, attrs("%", "outdoor relative humidity")),
        "wind_speed": ("time", w.wind_speed.values, attrs("m s-1", "wind speed")),
        "it_p_mw": (("time", "hall"), it_ds.p_mw.values, attrs("MW", "IT power of each GPU hall")),
        "it_q_mvar": (("time", "hall"), it_ds.q_mvar.values, attrs("Mvar", "IT reactive power of each hall")),
        "it_utilisation": (("time", "hall"), it_ds.utilisation.values,
                           attrs("1", "GPU utilisation between idle (0) and full training power (1)")),
        "cooling_p_mw": ("time", cool_p, attrs("MW", "cooling plant electrical power")),
        "aux_p_mw": ("time", np.full(len(index), aux_p + bess_aux),
                     attrs("MW", "auxiliaries (campus and battery containers)")),
        "facility_p_mw": ("time", facility_p, attrs("MW", "facility load: IT + cooling + auxiliaries")),
        "facility_q_mvar": ("time", facility_q, attrs("Mvar", "facility reactive load")),
        "pv_p_mw": ("time", pv_p, attrs("MW", "PV AC power, all systems")),
        "net_load_mw": ("time", net_p, attrs("MW", "facility load less PV (grid import with the battery idle, "
                                                   "before network losses)")),
        "price_cny_per_kwh": ("time", prices, attrs("CNY kWh-1", "energy price of the tariff period")),
        "tariff_period": ("time", codes.astype(np.int8),
                          attrs("1", "tariff period (code)", flag_values=np.arange(len(names), dtype=np.int8),
                                flag_meanings=" ".join(names))),
    }
    if pv_ds is not None:
        data["pv_system_p_mw"] = (("time", "pv_system"), pv_ds.p_mw.values, attrs("MW", "PV AC power per system"))
        data["poa_global"] = (("time", "pv_system"), pv_ds.poa_global.values,
                              attrs("W m-2", "plane-of-array irradiance"))
        data["t_cell"] = (("time", "pv_system"), pv_ds.t_cell.values, attrs("degC", "PV cell temperature"))
    if cool is not None:
        data["cooling_plant_p_mw"] = (("time", "cooling_plant"), cool.p_mw.values,
                                      attrs("MW", "electrical power of each cooling plant"))
        data["cooling_cop"] = (("time", "cooling_plant"), cool.cop.values, attrs("1", "chiller COP"))
        data["free_cooling_fraction"] = (("time", "cooling_plant"), cool.free_cooling_fraction.values,
                                         attrs("1", "share of the heat load taken by free cooling"))
    coords = {"time": ("time", time, {"long_name": "interval start (UTC)", "timezone_local": tz}),
              "hall": it_ds.hall.values}
    if pv_ds is not None:
        coords["pv_system"] = pv_ds.pv_system.values
    if cool is not None:
        coords["cooling_plant"] = cool.cooling_plant.values
    # weather and diagnostics in single precision (7 digits are plenty, and a year at 1 min is half the size);
    # powers stay double so that energy balances close to 1e-6 when recomputed from the file
    for name in ("ghi", "dni", "dhi", "temp_air", "relative_humidity", "wind_speed", "it_utilisation", "poa_global",
                 "t_cell", "cooling_cop", "free_cooling_fraction"):
        if name in data:
            dims, values, a = data[name]
            data[name] = (dims, np.asarray(values, dtype=np.float32), a)
    ds = xr.Dataset(data, coords=coords)
    ds.attrs.update(scenario=s.drivers.scenario, weather=s.drivers.weather_file or "built-in synthetic typical year",
                    resolution_s=s.drivers.resolution_s, year=s.drivers.year, seed=s.case.seed,
                    tariff=s.drivers.tariff)

    # ---- key figures
    ser = lambda v: pd.Series(v, index=index)  # noqa: E731
    ghi_m = [x * dt_h / 1000.0 for x in _monthly(ser(w.ghi.values), tz, "sum")]
    dhi_m = [x * dt_h / 1000.0 for x in _monthly(ser(w.dhi.values), tz, "sum")]
    it_m = _monthly(ser(it_total.values), tz, "sum")
    fac_m = _monthly(ser(facility_p), tz, "sum")
    one_min = pd.Timedelta("1min")
    step = index[1] - index[0]
    it_series = ser(it_total.values)
    fac_series = ser(facility_p)
    if step < one_min:
        it_series, fac_series = weather.resample_mean(it_series, one_min), weather.resample_mean(fac_series, one_min)
    p_dc_kwp = sum(p.p_dc_kwp for p in s.pv)
    pv_mwh = float(pv_p.sum() * dt_h)
    summary = {
        "scenario": s.drivers.scenario,
        "resolution_s": s.drivers.resolution_s,
        "ghi_monthly_kwh_m2": ghi_m,
        "ghi_annual_kwh_m2": float(sum(ghi_m)),
        "diffuse_fraction_monthly": [d / g if g > 0 else float("nan") for d, g in zip(dhi_m, ghi_m, strict=True)],
        "temp_air_monthly_mean_degc": _monthly(ser(w.temp_air.values), tz, "mean"),
        "pv_energy_mwh": pv_mwh,
        "pv_specific_yield_kwh_kwp": pv_mwh * 1000.0 / p_dc_kwp if p_dc_kwp else float("nan"),
        "it_energy_mwh": float(it_total.values.sum() * dt_h),
        "it_peak_mw": float(it_series.max()),
        "it_utilisation_mean": float(it_ds.utilisation.mean()),
        "facility_energy_mwh": float(facility_p.sum() * dt_h),
        "facility_peak_mw": float(fac_series.max()),
        "pue_monthly": [f / i if i > 0 else float("nan") for f, i in zip(fac_m, it_m, strict=True)],
        "pue_annual": float(facility_p.sum() / it_total.values.sum()),
        "net_load_peak_mw": float(net_p.max()),
        "hours_net_load_above_cap_h": float((net_p > s.supply.firm_import_cap_mw).sum() * dt_h),
    }

    # ---- checks: can a battery of this size hold the cap, day by day, from the drivers alone?
    chk = Checker(NAME, case.criteria.warn_margin_fraction)
    cap = s.supply.firm_import_cap_mw
    local = pd.Series(net_p, index=index.tz_convert(tz))
    above = (local - cap).clip(lower=0).groupby(local.index.date).sum() * dt_h
    headroom = (cap - local).clip(lower=0).groupby(local.index.date).sum() * dt_h
    summary["energy_above_cap_max_day_mwh"] = float(above.max())
    if r is not None:
        pcs = case.model("pcs", s.battery.pcs)
        cont = case.model("battery/containers", s.battery.container)
        eta_rt = float((cont.dc_efficiency_one_way * pcs_efficiency(pcs.p_rated_mw, pcs.p_rated_mw, pcs.eta_nom,
                                                                    pcs.eta_ref)) ** 2)
        worst_day = above.idxmax()
        chk.upper(str(worst_day), "battery", "energy_above_cap_mwh", float(above.max()), r.usable_ac_mwh, "MWh",
                  CRITERION_ENERGY)
        need = above / eta_rt
        short = (headroom - need)
        day = short.idxmin()
        chk.lower(str(day), "battery", "recharge_headroom_mwh", float(headroom[day]), float(need[day]), "MWh",
                  CRITERION_RECHARGE)
        summary["battery_round_trip_efficiency"] = eta_rt
        summary["days_cap_not_holdable"] = int(((above > r.usable_ac_mwh) | (headroom < need)).sum())
    checks = chk.frame()
    summary = {**counts(checks), **summary}
    return StudyResult(NAME, finalize(ds, NAME, case), checks, summary)
