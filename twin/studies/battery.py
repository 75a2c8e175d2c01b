"""Battery study: the battery system model on the case's battery, to judge its claims and its duty.

Composes :mod:`twin.battery.system` (racks on each container's DC bus, BMS limits, thermal network and HVAC),
:func:`twin.battery.pcs_efficiency` (PCS AC <-> DC, PVWatts curve shape) and :mod:`twin.battery.ageing`
(BLAST-Lite LFP), with the site drivers of :mod:`twin.studies.drivers`. Three parts, each a function that can be
called on its own (pvlib's ModelChain spirit: :func:`run` composes them but never hides them):

1. :func:`capacity_test` -- usable energy, measured. From ``soc_max`` of the container's parameter set (the EMS
   window), every container discharges at its PCS's rated AC power (the DC request is ``P_ac / eta(P_ac)``) until
   its mean SOC reaches ``soc_min``. When the BMS can no longer deliver rated power (its SOC taper or a voltage
   limit) the discharge goes on at the power the BMS allows, down to ``soc_min``: the energy at rated power and
   the energy to the window's end are both reported. Then every container charges back to ``soc_max`` at rated
   AC power (DC ``P_ac * eta``, again BMS-limited near full): round-trip AC efficiency with and without the
   auxiliaries (HVAC, BMS), ``(E_out - E_aux,dis) / (E_in + E_aux,ch)``. Outdoor air 25 degC, no rest between.
2. :func:`design_day_load` and :func:`peak_shave` -- a design day of peak shaving. The day is the drivers'
   worst day (the local day with the most energy of facility load less PV above the firm import cap, as the
   drivers study reports it; if no day exceeds the cap, the day with the highest peak). Its site load (IT +
   cooling + campus auxiliaries - PV, the battery's auxiliaries excluded because the system model computes them)
   is recomputed at the study's step with the same driver functions and seed (interval means; weather held over
   the finer steps). Dispatch is a simple rule (a preview; the EMS issue builds the real one): every
   ``DISPATCH_S`` (5 min) the EMS reads each container's SOC, BMS-available power and auxiliary load, and in
   each step of the interval (knowing that step's site load) discharges ``min(load + aux - cap, available, PCS
   rating)`` or recharges with the headroom below the cap up to the PCS rating, shared equally between
   containers, holding the EMS SOC window (SOC counted forward from the reading). The auxiliaries drift within
   the interval (the HVAC follows the cells' heat over minutes, a few hundred W at most on the seed case), so the
   EMS holds import ``CAP_MARGIN_KW`` (1 kW) per container below the cap; a step the BMS limits is reduced by
   the system model and flagged. The day
   starts full (``soc_max``): the most favourable start, so a shortfall is not an artefact of the start.
   Grid import = site load - battery AC power + battery auxiliaries, exactly, at every step.
3. :func:`ageing_projection` -- the design day's SOC and mean cell temperature per container, repeated daily
   (closed by the recharge from the day's end SOC back to its start, taken from the capacity test, when the day
   ends emptier than it started), projected with :func:`twin.battery.ageing.project` to 1, 5 and 10 years;
   then the capacity test's discharge is repeated on the aged battery (capacity and resistance scaled) for the
   usable AC energy at 10 years. A worst day every day is an upper bound of the cycling duty.

Checks (:mod:`twin.limits`): usable AC energy and duration at rated power against the claims (``[battery_study]``
of the case, default the DC nameplate and nameplate / rated power); the design day's peak grid import,
instantaneous and as the 15-minute mean demand, against the firm cap; the energy above the cap the battery does
not serve; the highest cell temperature against the BMS temperature window.

Options (``[battery_study]`` of the case, or keywords of :func:`run`): ``granularity`` ("container", "rack" or
"cell" with a seeded spread from the case seed) and ``dt_s`` (default 10 s).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import xarray as xr
from tqdm.auto import tqdm

from .. import cooling, gpu, pv, weather
from ..battery import ratings
from ..battery.ageing import project
from ..battery.system import FLAGS, BatterySystem, Spread, system_spec
from ..case import BatteryStudy, Case, CaseError, _validate
from ..limits import Checker, counts
from ..pcs import ac_to_dc, dc_to_ac
from . import StudyResult
from . import drivers as drivers_study
from ._common import attrs, finalize

__all__ = ["NAME", "options", "with_options", "ac_to_dc", "dc_to_ac", "capacity_test", "worst_day", "design_day_load",
           "peak_shave", "ageing_projection", "run", "plot_design_day", "plot_thermal", "plot_ageing", "check"]

NAME = "battery"
DISPATCH_S = 300.0        # EMS update interval of the design-day dispatch: SOC, BMS limits, auxiliaries (s)
CAP_MARGIN_KW = 1.0       # per container: the EMS holds import this far below the cap (auxiliaries' drift, kW)
T_TEST_DEGC = 25.0        # outdoor air of the capacity test (degC)
AGEING_YEARS = (1, 5, 10)
AGEING_SAMPLE_S = 60.0    # SOC and temperature samples passed to the ageing model (s)
_SOC_TOL = 1e-7

CRITERION_ENERGY = ("Claim: usable AC energy at the PCS terminals within the EMS SOC window, measured with the "
                    "system model at rated power from soc_max to soc_min, at least the claimed energy "
                    "([battery_study] claimed_energy_mwh; default the DC nameplate)")
CRITERION_DURATION = ("Claim: the battery holds its rated AC power for the claimed duration ([battery_study] "
                      "claimed_duration_h; default DC nameplate / rated AC power), measured until the BMS first "
                      "reduces the power or the EMS window ends")
CRITERION_CAP = ("Firm import cap (supply contract), instantaneous, at every step of the design day, battery "
                 "dispatched to hold it (twin.studies.battery rule)")
CRITERION_CAP_15 = "Firm import cap as the 15-minute mean demand that the utility's meter bills (DESIGN.md)"
CRITERION_UNSERVED = "Seed claim: the battery covers the load above the firm cap; energy above the cap not served"
CRITERION_TEMP = "Cell temperature within the BMS operating window (models/battery/bms, charge and discharge)"


# --------------------------------------------------------------------------------------------------------------
# options and the PCS


def options(case: Case, granularity: str | None = None, dt_s: float | None = None) -> BatteryStudy:
    """The case's ``[battery_study]`` with the given keywords changed, checked like the file's (CaseError)."""
    o = case.spec.battery_study
    changes = {k: v for k, v in (("granularity", granularity), ("dt_s", dt_s)) if v is not None}
    if not changes:
        return o
    return _validate(case.path, BatteryStudy, {**o.model_dump(), **changes})


def with_options(case: Case, **changes) -> Case:
    """A copy of the case with ``[battery_study]`` fields changed (checked like the file's)."""
    o = _validate(case.path, BatteryStudy, {**case.spec.battery_study.model_dump(), **changes})
    return replace(case, spec=case.spec.model_copy(update={"battery_study": o}), models=dict(case.models),
                   model_paths=dict(case.model_paths))


# --------------------------------------------------------------------------------------------------------------
# running the system model in chunks


_REC = ("p_req_w", "p_dc_w", "p_aux_w", "p_avail_discharge_w", "p_avail_charge_w", "t_air_degc", "q_hvac_w",
        "flag", "soc", "soc_cell_min", "soc_cell_max", "v_cell_min_v", "v_cell_max_v", "t_cell_max_degc",
        "t_cell_mean_degc")


def _gather(ds: xr.Dataset, req: np.ndarray) -> dict:
    """Per container and step from one :meth:`BatterySystem.run` (rack records reduced over racks)."""
    out = {"p_req_w": req}
    for v in ("p_dc_w", "p_aux_w", "p_avail_discharge_w", "p_avail_charge_w", "t_air_degc", "q_hvac_w", "flag"):
        out[v] = ds[v].values
    out["soc"] = ds["soc_mean"].values.mean(axis=1)
    out["soc_cell_min"] = ds["soc_min"].values.min(axis=1)
    out["soc_cell_max"] = ds["soc_max"].values.max(axis=1)
    out["v_cell_min_v"] = ds["v_cell_min_v"].values.min(axis=1)
    out["v_cell_max_v"] = ds["v_cell_max_v"].values.max(axis=1)
    out["t_cell_max_degc"] = ds["t_cell_max_degc"].values.max(axis=1)
    out["t_cell_mean_degc"] = ds["t_cell_mean_degc"].values.mean(axis=1)
    return out


def _concat(chunks: list[dict]) -> dict:
    return {k: np.concatenate([c[k] for c in chunks], axis=1) for k in _REC}


def _soc_per_joule(spec, sysm: BatterySystem) -> np.ndarray:
    """First estimate of the SOC change per joule of DC energy of each container (OCV at its SOC)."""
    soc = sysm.soc()
    ocv = np.interp(soc, spec.cell.soc, spec.cell.ocv_v)
    cells = spec.racks * spec.cells_series * spec.cells_parallel
    return 1.0 / (cells * spec.cell.capacity_ah * 3600.0 * ocv)


def _drive(sysm: BatterySystem, spec, target: float, p_ac_w: float, pcs, dt_s: float, t_amb_degc: float,
           chunk: int = 60, max_steps: int = 10**7) -> dict:
    """Run every container at AC power ``p_ac_w`` (signed) until its mean SOC reaches ``target``.

    The BMS reduces the power near the end of the window (flagged); the last step of each container is a
    fraction of a step's energy so that the SOC lands on the target. Returns the records (container x step).
    """
    nc = sysm.shape[0]
    sgn = 1.0 if p_ac_w > 0 else -1.0
    p_full = float(ac_to_dc(p_ac_w, pcs))
    p_exp = np.full(nc, abs(p_full))
    k = _soc_per_joule(spec, sysm)
    active = np.ones(nc, dtype=bool)
    chunks, n = [], 0
    while n < max_steps:
        soc = sysm.soc()
        rem = sgn * (soc - target)
        active &= (rem > _SOC_TOL) & (p_exp > 1.0)
        if not active.any():
            break
        steps = np.where(active, rem / (k * p_exp * dt_s), 0.0)
        m = int(min(chunk, max(1.0, math.ceil(float(steps.max())))))
        req = np.zeros((nc, m))
        for c in np.flatnonzero(active):
            full = int(min(math.floor(steps[c]), m))
            req[c, :full] = p_full
            if full < m:
                req[c, full] = sgn * (steps[c] - full) * p_exp[c]
        ds = sysm.run(req, dt_s, t_amb_degc, record="rack")
        rec = _gather(ds, req)
        chunks.append(rec)
        n += m
        e = np.abs(rec["p_dc_w"]).sum(axis=1) * dt_s
        dsoc = np.abs(soc - sysm.soc())
        ok = e > 1e3
        k = np.where(ok, dsoc / np.where(ok, e, 1.0), k)
        for c in range(nc):
            full_steps = np.flatnonzero(req[c] == p_full)
            if full_steps.size:
                p_exp[c] = abs(rec["p_dc_w"][c, full_steps[-1]])
    if not chunks:
        raise ValueError(f"capacity test: the battery is already at SOC {target:g}")
    return _concat(chunks)


def _first_reduction(rec: dict) -> np.ndarray:
    """Index of the first step at which the BMS reduced the power (a limit flagged, or more than 1e-4 short: the
    power control is exact to about 1e-5 where a cell crosses an OCV table point), per container; the number of
    steps where it never did."""
    req, p = rec["p_req_w"], rec["p_dc_w"]
    red = (req != 0) & ((np.abs(p) < np.abs(req) * (1 - 1e-4)) | (rec["flag"] != 0))
    n = req.shape[1]
    return np.where(red.any(axis=1), red.argmax(axis=1), n)


def _flag_names(bits: int) -> list[str]:
    return [k for k, v in FLAGS.items() if bits & v]


def _new_system(spec, granularity: str, soc0: float, t0_degc: float, seed: int) -> BatterySystem:
    return BatterySystem(spec, granularity=granularity, soc0=soc0, t0_degc=t0_degc, spread=Spread(seed=seed))


# --------------------------------------------------------------------------------------------------------------
# 1. capacity test


@dataclass
class CapacityTest:
    """Result of :func:`capacity_test`: the records per phase and the figures (energies in MWh, AC side)."""

    discharge: dict
    charge: dict | None
    dt_s: float
    p_ac_rated_mw: float
    energy_ac_out_mwh: float
    energy_rated_power_mwh: float
    duration_rated_power_h: float
    duration_h: float
    stop_reason: str
    energy_dc_out_mwh: float
    aux_discharge_mwh: float
    energy_ac_in_mwh: float = float("nan")
    aux_charge_mwh: float = float("nan")
    charge_duration_h: float = float("nan")

    @property
    def round_trip_efficiency(self) -> float:
        return self.energy_ac_out_mwh / self.energy_ac_in_mwh

    @property
    def round_trip_efficiency_with_aux(self) -> float:
        return (self.energy_ac_out_mwh - self.aux_discharge_mwh) / (self.energy_ac_in_mwh + self.aux_charge_mwh)


def capacity_test(case: Case, spec=None, *, granularity: str = "rack", dt_s: float = 10.0,
                  t_amb_degc: float = T_TEST_DEGC, cap_scale=1.0, r_scale=1.0, charge: bool = True) -> CapacityTest:
    """Measure the usable AC energy: discharge from ``soc_max`` to ``soc_min`` at rated AC power, then charge back.

    Parameters
    ----------
    case : Case
        The case (battery container, PCS, EMS window ``soc_min``/``soc_max``).
    spec : SystemSpec, optional
        The battery system (default :func:`twin.battery.system.system_spec`).
    granularity : {"container", "rack", "cell"}
        Of the system model (``"cell"``: spread seeded with the case seed).
    dt_s : float
        Step in s.
    t_amb_degc : float
        Outdoor air temperature in degC (cells, racks and air start there, within the HVAC set points).
    cap_scale, r_scale : float or array_like
        Ageing of every element (:meth:`BatterySystem.set_ageing`), 1 at beginning of life.
    charge : bool
        Also charge back to ``soc_max`` at rated power (for the round trip).

    Returns
    -------
    CapacityTest
    """
    spec = spec or system_spec(case)
    cont = case.model("battery/containers", case.spec.battery.container)
    pcs = case.model("pcs", case.spec.battery.pcs)
    t0 = float(np.clip(t_amb_degc, spec.thermal.t_set_heat_degc, spec.thermal.t_set_cool_degc)) if spec.thermal \
        else t_amb_degc
    sysm = _new_system(spec, granularity, cont.soc_max, t0, case.spec.case.seed)
    if np.any(np.asarray(cap_scale) != 1.0) or np.any(np.asarray(r_scale) != 1.0):
        sysm.set_ageing(cap_scale, r_scale)
    p_rated = pcs.p_rated_mw * 1e6
    dis = _drive(sysm, spec, cont.soc_min, p_rated, pcs, dt_s, t_amb_degc)
    dis["p_ac_w"] = dc_to_ac(dis["p_dc_w"], pcs)
    j = _first_reduction(dis)
    mask = np.arange(dis["p_dc_w"].shape[1])[None, :] < j[:, None]
    e_ac = dis["p_ac_w"].sum() * dt_s / 3.6e9
    e_rated = (dis["p_ac_w"] * mask).sum() * dt_s / 3.6e9
    nc = dis["p_dc_w"].shape[0]
    first = int(j.min())
    if first >= dis["p_dc_w"].shape[1]:
        reason = "EMS window (soc_min)"
    else:
        c = int(j.argmin())
        names = _flag_names(int(dis["flag"][c, first])) or ["power reduced"]
        reason = "BMS limit: " + ", ".join(names) + f" at SOC {dis['soc'][c, first]:.3f}"
    active_steps = (dis["p_req_w"] != 0).sum(axis=1)
    res = CapacityTest(
        discharge=dis, charge=None, dt_s=dt_s, p_ac_rated_mw=nc * pcs.p_rated_mw, energy_ac_out_mwh=float(e_ac),
        energy_rated_power_mwh=float(e_rated), duration_rated_power_h=float(e_rated / (nc * pcs.p_rated_mw)),
        duration_h=float(active_steps.max() * dt_s / 3600.0), stop_reason=reason,
        energy_dc_out_mwh=float(dis["p_dc_w"].sum() * dt_s / 3.6e9),
        aux_discharge_mwh=float(dis["p_aux_w"].sum() * dt_s / 3.6e9))
    if charge:
        ch = _drive(sysm, spec, cont.soc_max, -p_rated, pcs, dt_s, t_amb_degc)
        ch["p_ac_w"] = dc_to_ac(ch["p_dc_w"], pcs)
        res.charge = ch
        res.energy_ac_in_mwh = float(-ch["p_ac_w"].sum() * dt_s / 3.6e9)
        res.aux_charge_mwh = float(ch["p_aux_w"].sum() * dt_s / 3.6e9)
        res.charge_duration_h = float((ch["p_req_w"] != 0).sum(axis=1).max() * dt_s / 3600.0)
    return res


# --------------------------------------------------------------------------------------------------------------
# 2. design day


def worst_day(case: Case, drivers_ds: xr.Dataset):
    """The drivers' worst local day: the most energy of facility load less PV above the firm cap (MWh), or, if
    no day exceeds the cap, the highest peak. Returns ``(date, energy above the cap in MWh, basis)``."""
    tz = case.spec.site.timezone
    cap = case.spec.supply.firm_import_cap_mw
    idx = pd.DatetimeIndex(drivers_ds.time.values).tz_localize("UTC").tz_convert(tz)
    net = pd.Series(drivers_ds.net_load_mw.values, index=idx)
    dt_h = float(drivers_ds.attrs["resolution_s"]) / 3600.0
    above = (net - cap).clip(lower=0).groupby(idx.date).sum() * dt_h
    if float(above.max()) > 0:
        return above.idxmax(), float(above.max()), "most energy above the cap"
    day = net.groupby(idx.date).max().idxmax()
    return day, 0.0, "highest peak (no day above the cap)"


def design_day_load(case: Case, drivers_ds: xr.Dataset, day, dt_s: float) -> pd.DataFrame:
    """Site load of one local day at ``dt_s``: IT, cooling, campus auxiliaries and PV, by the drivers' functions.

    Parameters
    ----------
    case : Case
    drivers_ds : xarray.Dataset
        The drivers study's Dataset (its weather, at the case's resolution).
    day : datetime.date
        Local calendar day.
    dt_s : float
        Step in s. Finer than the drivers: IT load recomputed (:func:`twin.gpu.it_load`, same seed: the same
        jobs), weather held over the finer steps, PV and cooling recomputed; coarser: interval means.

    Returns
    -------
    pandas.DataFrame
        Indexed by tz-aware UTC interval starts: ``it_mw``, ``cooling_mw``, ``aux_mw`` (campus auxiliaries, the
        battery's excluded), ``pv_mw``, ``site_mw`` (= it + cooling + aux - pv), ``temp_air`` (degC),
        ``relative_humidity`` (%).
    """
    s = case.spec
    tz = s.site.timezone
    start = pd.Timestamp(str(day), tz=tz)
    end = pd.Timestamp(str(pd.Timestamp(str(day)) + pd.Timedelta(days=1))[:10], tz=tz)  # local midnight (DST-safe)
    index = pd.date_range(start, end, freq=pd.Timedelta(seconds=dt_s), inclusive="left").tz_convert("UTC")
    times = pd.DatetimeIndex(drivers_ds.time.values).tz_localize("UTC")
    res_s = float(drivers_ds.attrs["resolution_s"])
    cols = ["ghi", "dni", "dhi", "temp_air", "relative_humidity", "wind_speed"]
    sel = (times >= index[0] - pd.Timedelta(seconds=res_s)) & (times < index[-1] + pd.Timedelta(seconds=dt_s))
    w0 = pd.DataFrame({c: drivers_ds[c].values[sel].astype(float) for c in cols}, index=times[sel])
    if dt_s <= res_s:
        w = w0.reindex(index, method="ffill")
    else:
        w = weather.resample_mean(w0, pd.Timedelta(seconds=dt_s)).reindex(index)
    if w.isna().any().any():
        raise CaseError(f"{case.path}: the drivers do not cover the design day {day}")
    it = gpu.it_load(case, index).p_mw.sum("hall").values
    if s.cooling_plants:
        cool = cooling.cooling_power(case, it, w.temp_air.values, w.relative_humidity.values,
                                     time=index).p_mw.sum("cooling_plant").values
    else:
        cool = np.zeros(len(index))
    if s.pv:
        pv_mw = pv.pv_output(case, w, weather.solar_position(case, w.index)).p_mw.sum("pv_system").values
    else:
        pv_mw = np.zeros(len(index))
    aux = np.full(len(index), sum(a.p_kw for a in s.auxiliaries) / 1000.0)
    return pd.DataFrame({"it_mw": it, "cooling_mw": cool, "aux_mw": aux, "pv_mw": pv_mw,
                         "site_mw": it + cool + aux - pv_mw, "temp_air": w.temp_air.values,
                         "relative_humidity": w.relative_humidity.values}, index=index)


def _share(total: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """Split ``total`` (steps,) >= 0 over containers with ``caps`` (container, steps) >= 0: equal shares, the
    excess of capped containers to the others (water filling)."""
    out = np.zeros_like(caps)
    rem = total.astype(float).copy()
    free = caps > 0
    for _ in range(caps.shape[0]):
        nfree = free.sum(axis=0)
        share = np.where(nfree > 0, rem / np.maximum(nfree, 1), 0.0)
        add = np.where(free, np.minimum(share, caps - out), 0.0)
        out += add
        rem -= add.sum(axis=0)
        free &= (caps - out) > 1e-9
        if not (rem > 1e-9).any() or not free.any():
            break
    return out


def peak_shave(case: Case, site_mw, t_out_degc, dt_s: float, *, spec=None, granularity: str = "rack",
               soc0: float | None = None, progress: bool = False) -> dict:
    """Dispatch the battery to hold the firm import cap over a load profile, with the system model in the loop.

    Parameters
    ----------
    case : Case
        Firm cap, battery, PCS, EMS window.
    site_mw : array_like (nt,)
        Site load in MW without the battery's auxiliaries (facility less PV).
    t_out_degc : array_like (nt,)
        Outdoor air temperature in degC.
    dt_s : float
        Step in s.
    spec : SystemSpec, optional
    granularity : str
    soc0 : float, optional
        Initial SOC (default: ``soc_max``, full).

    Returns
    -------
    dict
        Per container and step (arrays ``(container, step)``): ``p_ac_w`` (AC at the PCS, + discharging),
        ``p_set_ac_w`` (the EMS setpoint), the records of the system model (``p_dc_w``, ``p_aux_w``, ``soc``,
        ``t_cell_max_degc``, ...); and ``grid_import_mw`` (step,) = site - battery AC + battery aux.
    """
    spec = spec or system_spec(case)
    cont = case.model("battery/containers", case.spec.battery.container)
    pcs = case.model("pcs", case.spec.battery.pcs)
    cap_w = case.spec.supply.firm_import_cap_mw * 1e6
    site_w = np.asarray(site_mw, dtype=float) * 1e6
    t_out = np.asarray(t_out_degc, dtype=float)
    nt = site_w.size
    if t_out.shape != (nt,) or not np.all(np.isfinite(site_w)) or not np.all(np.isfinite(t_out)):
        raise ValueError("peak_shave: site_mw and t_out_degc must be finite arrays of the same length")
    soc0 = cont.soc_max if soc0 is None else float(soc0)
    th = spec.thermal
    t0 = float(np.clip(t_out[0], th.t_set_heat_degc, th.t_set_cool_degc)) if th else float(t_out[0])
    sysm = _new_system(spec, granularity, soc0, t0, case.spec.case.seed)
    nc = sysm.shape[0]
    rated = pcs.p_rated_mw * 1e6
    p_min = pcs.p_min_fraction * rated   # below it the PCS idles (twin.pcs)
    margin_w = CAP_MARGIN_KW * 1e3 * nc
    m_chunk = max(1, int(round(DISPATCH_S / dt_s)))
    k = _soc_per_joule(spec, sysm)
    avail_dis = np.full(nc, rated)
    avail_ch = np.full(nc, rated)
    aux = np.full(nc, th.p_fixed_kw * 1e3 if th else 0.0)
    chunks, p_set = [], []
    bar = tqdm(total=nt, desc="design day", unit="step", disable=not progress, leave=False)
    for k0 in range(0, nt, m_chunk):
        k1 = min(nt, k0 + m_chunk)
        m = k1 - k0
        soc = sysm.soc()
        need = site_w[k0:k1] + aux.sum() - (cap_w - margin_w)
        cap_dis = np.where(soc > cont.soc_min + _SOC_TOL, avail_dis, 0.0)[:, None] * np.ones(m)
        cap_ch = np.where(soc < cont.soc_max - _SOC_TOL, avail_ch, 0.0)[:, None] * np.ones(m)
        p_ac = _share(np.maximum(need, 0.0), cap_dis) - _share(np.maximum(-need, 0.0), cap_ch)
        p_ac = np.where((p_ac > 0) & (p_ac < p_min), np.minimum(p_min, cap_dis), p_ac)   # discharge: at least
        p_ac = np.where((p_ac < 0) & (p_ac > -p_min), 0.0, p_ac)                          # charge: else idle
        # hold the EMS window within the interval (SOC counted forward from the measured one)
        est = soc.copy()
        p_dc = ac_to_dc(p_ac, pcs)
        for j in range(m):
            room = np.where(p_dc[:, j] > 0, est - cont.soc_min, cont.soc_max - est) / (k * dt_s)
            over = np.abs(p_dc[:, j]) > np.maximum(room, 0.0)
            if over.any():
                p_dc[over, j] = np.sign(p_dc[over, j]) * np.maximum(room[over], 0.0)
                p_ac[over, j] = dc_to_ac(p_dc[over, j], pcs)
                p_dc[over, j] = np.where(p_ac[over, j] == 0.0, 0.0, p_dc[over, j])
            est -= k * p_dc[:, j] * dt_s
        ds = sysm.run(p_dc, dt_s, t_out[k0:k1], record="rack")
        rec = _gather(ds, p_dc)
        chunks.append(rec)
        p_set.append(p_ac)
        e = np.abs(rec["p_dc_w"]).sum(axis=1) * dt_s
        ok = e > 1e5
        k = np.where(ok, np.abs(soc - sysm.soc()) / np.where(ok, e, 1.0), k)
        avail_dis = np.minimum(rated, dc_to_ac(rec["p_avail_discharge_w"][:, -1], pcs))
        avail_ch = np.minimum(rated, -dc_to_ac(-rec["p_avail_charge_w"][:, -1], pcs))
        aux = rec["p_aux_w"][:, -1]
        bar.update(m)
    bar.close()
    out = _concat(chunks)
    out["p_set_ac_w"] = np.concatenate(p_set, axis=1)
    out["p_ac_w"] = dc_to_ac(out["p_dc_w"], pcs)
    out["grid_import_mw"] = (site_w - out["p_ac_w"].sum(axis=0) + out["p_aux_w"].sum(axis=0)) / 1e6
    out["soc0"] = soc0
    return out


# --------------------------------------------------------------------------------------------------------------
# 3. ageing


def ageing_projection(day: dict, dt_s: float, test: CapacityTest | None = None, years=AGEING_YEARS) -> dict:
    """Project capacity fade and resistance growth of every container from a day's history repeated daily.

    Parameters
    ----------
    day : dict
        :func:`peak_shave` output (``soc``, ``t_cell_mean_degc`` per container and step; ``soc0``).
    dt_s : float
        Its step in s.
    test : CapacityTest, optional
        If the day ends emptier than it started, its charge phase closes the history (the recharge the next
        day needs, at rated power).
    years : sequence of float

    Returns
    -------
    dict
        ``q``, ``r``, ``efc`` arrays (container, year); ``years``; ``trajectory``: per container the
        :func:`twin.battery.ageing.project` Dataset; ``extrapolated``: whether the cell temperature left the
        model's 10-45 degC range; ``recharge_appended``: whether the recharge was appended.
    """
    soc, temp = day["soc"], day["t_cell_mean_degc"]
    nc, nt = soc.shape
    step = max(1, int(round(AGEING_SAMPLE_S / dt_s)))
    sel = np.arange(step - 1, nt, step)
    q = np.zeros((nc, len(years)))
    r = np.zeros_like(q)
    efc = np.zeros_like(q)
    traj, extrapolated, appended = [], False, False
    done: dict = {}
    for c in range(nc):
        key = (soc[c].tobytes(), temp[c].tobytes())
        if key in done:  # identical containers (rack or container granularity): the same projection
            j0 = done[key]
            q[c], r[c], efc[c] = q[j0], r[j0], efc[j0]
            traj.append(traj[j0])
            continue
        done[key] = c
        t = np.concatenate([[0.0], (sel + 1) * dt_s])
        s = np.concatenate([[day["soc0"]], soc[c, sel]])
        tc = np.concatenate([[temp[c, 0]], temp[c, sel]])
        if test is not None and test.charge is not None and s[-1] < s[0] - 1e-3:
            ch = test.charge
            k = np.flatnonzero(ch["soc"][c] > s[-1])
            k = k[(k + 1) % step == 0] if k.size > 2 * step else k
            if k.size:
                t = np.concatenate([t, t[-1] + (k - k[0] + 1) * test.dt_s])
                s = np.concatenate([s, ch["soc"][c, k]])
                tc = np.concatenate([tc, ch["t_cell_mean_degc"][c, k]])
                appended = True
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            p = project({"time": t, "soc": np.clip(s, 0.0, 1.0), "t_cell_degc": tc}, years=years)
        extrapolated |= any(issubclass(x.category, UserWarning) for x in w)
        for j, y in enumerate(years):
            q[c, j], r[c, j], efc[c, j] = p[y]["q"], p[y]["r"], p[y]["efc"]
        traj.append(p["dataset"])
    return {"years": list(years), "q": q, "r": r, "efc": efc, "trajectory": traj, "extrapolated": extrapolated,
            "recharge_appended": appended, "history_days": float(t[-1] / 86400.0)}


# --------------------------------------------------------------------------------------------------------------
# the study


def check(case: Case) -> None:
    """Check the inputs before any study runs: the drivers' inputs, the battery system's parameter sets (cell
    model, BMS, thermal) and ``[battery_study]``; a :class:`~twin.case.CaseError` naming the file and key."""
    drivers_study.check(case)
    if case.spec.battery is not None:
        system_spec(case)


def _cycle_dataset(test: CapacityTest, aged: CapacityTest | None) -> dict:
    """Variables over ``cycle_step``: the capacity test's phases back to back (0 discharge, 1 charge, 2 discharge
    at the end of the ageing horizon)."""
    parts = [(0, test.discharge)] + ([(1, test.charge)] if test.charge is not None else [])
    if aged is not None:
        parts.append((2, aged.discharge))
    phase = np.concatenate([np.full(p["p_dc_w"].shape[1], code, dtype=np.int8) for code, p in parts])
    cat = {k: np.concatenate([p[k] for _, p in parts], axis=1) for k in ("p_ac_w", "p_dc_w", "p_aux_w", "soc",
                                                                       "t_cell_max_degc", "flag")}
    n = phase.size
    t = np.zeros(n)
    for code, _ in parts:  # time from the start of each phase
        idx = np.flatnonzero(phase == code)
        t[idx] = np.arange(idx.size) * test.dt_s
    return {
        "cycle_phase": ("cycle_step", phase, attrs("1", "capacity test phase (code)", flag_values=np.arange(3,
                        dtype=np.int8), flag_meanings="discharge charge discharge_aged")),
        "cycle_time_s": ("cycle_step", t, attrs("s", "time since the start of the phase")),
        "cycle_p_ac_mw": ("cycle_step", cat["p_ac_w"].sum(axis=0) / 1e6,
                          attrs("MW", "capacity test: AC power at the PCS terminals, all containers (+ discharge)")),
        "cycle_p_dc_mw": ("cycle_step", cat["p_dc_w"].sum(axis=0) / 1e6,
                          attrs("MW", "capacity test: DC power of the racks, all containers (+ discharge)")),
        "cycle_aux_mw": ("cycle_step", cat["p_aux_w"].sum(axis=0) / 1e6,
                         attrs("MW", "capacity test: battery auxiliaries (HVAC, BMS), all containers")),
        "cycle_soc": ("cycle_step", cat["soc"].mean(axis=0).astype(np.float32),
                      attrs("1", "capacity test: mean SOC of the containers, end of the step")),
        "cycle_t_cell_max_degc": ("cycle_step", cat["t_cell_max_degc"].max(axis=0).astype(np.float32),
                                  attrs("degC", "capacity test: highest cell temperature, end of the step")),
        "cycle_flag": ("cycle_step", np.bitwise_or.reduce(cat["flag"], axis=0).astype(np.int32),
                       attrs("1", "capacity test: BMS limit flags of any container (bits: " + ", ".join(
                           f"{v} {k}" for k, v in FLAGS.items()) + ")")),
    }


def _mean_15min(x: np.ndarray, dt_s: float) -> np.ndarray:
    n = max(1, int(round(900.0 / dt_s)))
    m = x.size // n
    return x[: m * n].reshape(m, n).mean(axis=1) if m else x.copy()


def _empty(case: Case) -> StudyResult:
    ds = xr.Dataset(attrs={"note": "the case has no battery"})
    checks = Checker(NAME).frame()
    return StudyResult(NAME, finalize(ds, NAME, case), checks, {**counts(checks), "battery": False})


def run(case: Case, net=None, *, granularity: str | None = None, dt_s: float | None = None,
        progress: bool = False) -> StudyResult:
    """The battery study; see the module docstring.

    Parameters
    ----------
    case : Case
    net : pandapowerNet, optional
        Unused (the study needs no network; the registry passes one).
    granularity, dt_s : optional
        Override the case's ``[battery_study]``.
    progress : bool
        Progress bars of the system model runs.
    """
    if case.spec.battery is None:
        return _empty(case)
    opts = options(case, granularity, dt_s)
    dt = float(opts.dt_s)
    s = case.spec
    spec = system_spec(case)
    cont = case.model("battery/containers", s.battery.container)
    r = ratings(case)
    cap = s.supply.firm_import_cap_mw
    tz = s.site.timezone
    bar = tqdm(total=5, desc="battery", unit="part", leave=False)

    bar.set_postfix_str("capacity test")
    test = capacity_test(case, spec, granularity=opts.granularity, dt_s=dt)
    bar.update()

    bar.set_postfix_str("drivers")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        drv = drivers_study.run(case)
    day, above_drivers, basis = worst_day(case, drv.dataset)
    load = design_day_load(case, drv.dataset, day, dt)
    bar.update()

    bar.set_postfix_str("design day")
    dd = peak_shave(case, load.site_mw.values, load.temp_air.values, dt, spec=spec, granularity=opts.granularity,
                    progress=progress)
    bar.update()

    bar.set_postfix_str("ageing")
    ag = ageing_projection(dd, dt, test)
    bar.update()

    bar.set_postfix_str("aged capacity test")
    last = len(ag["years"]) - 1
    scale = (slice(None), None, None)
    aged = capacity_test(case, spec, granularity=opts.granularity, dt_s=dt, cap_scale=ag["q"][:, last][scale],
                         r_scale=ag["r"][:, last][scale], charge=False)
    bar.update()
    bar.close()

    # ---- dataset
    nc = spec.n_containers
    names = spec.names if len(spec.names) == nc else [f"C{i + 1}" for i in range(nc)]
    time = load.index.tz_localize(None)
    battery_ac = dd["p_ac_w"].sum(axis=0) / 1e6
    aux_mw = dd["p_aux_w"].sum(axis=0) / 1e6
    imp = dd["grid_import_mw"]
    cd = ("container", "time")
    f32 = np.float32
    data = {
        "site_load_mw": ("time", load.site_mw.values, attrs("MW", "design day: facility load less PV, without the "
                                                                  "battery's auxiliaries")),
        "it_p_mw": ("time", load.it_mw.values, attrs("MW", "design day: IT load, all halls")),
        "cooling_p_mw": ("time", load.cooling_mw.values, attrs("MW", "design day: cooling plant")),
        "pv_p_mw": ("time", load.pv_mw.values, attrs("MW", "design day: PV AC power")),
        "temp_air": ("time", load.temp_air.values.astype(f32), attrs("degC", "design day: outdoor air temperature")),
        "battery_p_mw": ("time", battery_ac, attrs("MW", "design day: battery AC power at the PCS terminals, all "
                                                         "containers (+ discharge)")),
        "battery_setpoint_mw": ("time", dd["p_set_ac_w"].sum(axis=0) / 1e6,
                                attrs("MW", "design day: EMS setpoint of the battery AC power (+ discharge)")),
        "battery_aux_mw": ("time", aux_mw, attrs("MW", "design day: battery auxiliaries (HVAC and fixed), all "
                                                       "containers")),
        "grid_import_mw": ("time", imp, attrs("MW", "design day: grid import = site load - battery AC + battery "
                                                    "auxiliaries (before network losses)")),
        "firm_import_cap_mw": ((), cap, attrs("MW", "firm import cap")),
        "container_p_mw": (cd, dd["p_ac_w"] / 1e6, attrs("MW", "AC power of each container's PCS (+ discharge)")),
        "container_p_dc_mw": (cd, dd["p_dc_w"] / 1e6, attrs("MW", "DC power of each container (+ discharge)")),
        "soc": (cd, dd["soc"].astype(f32), attrs("1", "mean SOC of the container, end of the step")),
        "soc_cell_min": (cd, dd["soc_cell_min"].astype(f32), attrs("1", "lowest cell (element) SOC")),
        "soc_cell_max": (cd, dd["soc_cell_max"].astype(f32), attrs("1", "highest cell (element) SOC")),
        "p_avail_discharge_mw": (cd, (dd["p_avail_discharge_w"] / 1e6).astype(f32),
                                 attrs("MW", "DC discharge power the BMS allows, start of the step")),
        "p_avail_charge_mw": (cd, (dd["p_avail_charge_w"] / 1e6).astype(f32),
                              attrs("MW", "DC charge power the BMS allows (magnitude), start of the step")),
        "t_cell_max_degc": (cd, dd["t_cell_max_degc"].astype(f32), attrs("degC", "highest cell temperature")),
        "t_cell_mean_degc": (cd, dd["t_cell_mean_degc"].astype(f32), attrs("degC", "mean cell temperature")),
        "t_container_air_degc": (cd, dd["t_air_degc"].astype(f32), attrs("degC", "container air temperature")),
        "v_cell_min_v": (cd, dd["v_cell_min_v"].astype(f32), attrs("V", "lowest cell voltage, mean over the step")),
        "v_cell_max_v": (cd, dd["v_cell_max_v"].astype(f32), attrs("V", "highest cell voltage, mean over the step")),
        "q_hvac_kw": (cd, (dd["q_hvac_w"] / 1e3).astype(f32), attrs("kW", "heat removed by the HVAC (- heating)")),
        "p_aux_kw": (cd, dd["p_aux_w"] / 1e3, attrs("kW", "auxiliary electrical load of the container")),
        "flag": (cd, dd["flag"].astype(np.int32), attrs("1", "BMS limit flags (bits: " + ", ".join(
            f"{v} {k}" for k, v in FLAGS.items()) + ")")),
        "ageing_capacity": (("container", "ageing_year"), ag["q"],
                            attrs("1", "relative capacity (of beginning of life), design day repeated daily")),
        "ageing_resistance": (("container", "ageing_year"), ag["r"], attrs("1", "relative resistance")),
        "ageing_efc": (("container", "ageing_year"), ag["efc"], attrs("1", "equivalent full cycles")),
    }
    tr = ag["trajectory"][0]
    data["ageing_t_years"] = ("ageing_time", tr["t_years"].values, attrs("year", "time since beginning of life"))
    data["ageing_capacity_trajectory"] = ("ageing_time", tr["q"].values,
                                          attrs("1", f"relative capacity of {names[0]} over the projection"))
    data["ageing_resistance_trajectory"] = ("ageing_time", tr["r"].values,
                                            attrs("1", f"relative resistance of {names[0]} over the projection"))
    data.update(_cycle_dataset(test, aged))
    coords = {"time": ("time", time, {"long_name": "interval start (UTC)", "timezone_local": tz}),
              "container": names, "ageing_year": ("ageing_year", np.asarray(ag["years"], dtype=float),
                                                  {"units": "year", "long_name": "years of operation"})}
    ds = xr.Dataset(data, coords=coords)
    ds.attrs.update(granularity=opts.granularity, dt_s=dt, design_day=str(day), design_day_basis=basis,
                    dispatch_interval_s=DISPATCH_S, cap_margin_kw_per_container=CAP_MARGIN_KW,
                    soc_min=cont.soc_min, soc_max=cont.soc_max, initial_soc=float(dd["soc0"]),
                    capacity_test_t_amb_degc=T_TEST_DEGC, n_cells=spec.n_cells,
                    ageing_model="BLAST-Lite Lfp_Gr_250AhPrismatic (twin.battery.ageing)",
                    ageing_history="design day repeated daily" + (", closed by the capacity test's recharge"
                                                                    if ag["recharge_appended"] else ""))

    # ---- key figures
    dt_h = dt / 3600.0
    over = np.clip(imp - cap, 0.0, None)
    over[imp - cap <= 1e-9] = 0.0
    above_before = np.clip(load.site_mw.values - cap, 0.0, None).sum() * dt_h
    imp15 = _mean_15min(imp, dt)
    flags = dd["flag"]
    spread = float(np.max(dd["v_cell_max_v"] - dd["v_cell_min_v"]))
    claimed_e = opts.claimed_energy_mwh if opts.claimed_energy_mwh is not None else r.nameplate_dc_mwh
    claimed_d = opts.claimed_duration_h if opts.claimed_duration_h is not None else claimed_e / r.p_ac_rated_mw
    hours_short = float((imp - cap > 1e-9).sum() * dt_h)
    empty = np.flatnonzero((dd["soc"] <= cont.soc_min + 1e-4).all(axis=0))
    empty_at = load.index[empty[0]].tz_convert(tz).strftime("%H:%M") if empty.size else None
    summary = {
        "granularity": opts.granularity,
        "dt_s": dt,
        "nameplate_dc_mwh": r.nameplate_dc_mwh,
        "claimed_energy_mwh": claimed_e,
        "claimed_duration_h": claimed_d,
        "p_ac_rated_mw": r.p_ac_rated_mw,
        "usable_ac_computed_mwh": r.usable_ac_mwh,
        "usable_ac_measured_mwh": test.energy_ac_out_mwh,
        "usable_measured_vs_computed": test.energy_ac_out_mwh / r.usable_ac_mwh - 1.0,
        "energy_at_rated_power_mwh": test.energy_rated_power_mwh,
        "duration_at_rated_power_h": test.duration_rated_power_h,
        "discharge_duration_h": test.duration_h,
        "discharge_stop": test.stop_reason,
        "usable_dc_measured_mwh": test.energy_dc_out_mwh,
        "charge_ac_mwh": test.energy_ac_in_mwh,
        "charge_duration_h": test.charge_duration_h,
        "round_trip_efficiency": test.round_trip_efficiency,
        "round_trip_efficiency_with_aux": test.round_trip_efficiency_with_aux,
        "aux_energy_cycle_mwh": test.aux_discharge_mwh + test.aux_charge_mwh,
        "design_day": str(day),
        "design_day_basis": basis,
        "firm_import_cap_mw": cap,
        "design_day_energy_above_cap_drivers_mwh": above_drivers,
        "design_day_energy_above_cap_before_mwh": float(above_before),
        "design_day_energy_above_cap_unserved_mwh": float(over.sum() * dt_h),
        "design_day_hours_above_cap_h": hours_short,
        "design_day_site_peak_mw": float(load.site_mw.max()),
        "design_day_peak_import_mw": float(imp.max()),
        "design_day_peak_import_15min_mw": float(imp15.max()),
        "design_day_battery_discharge_mwh": float(np.clip(battery_ac, 0, None).sum() * dt_h),
        "design_day_battery_charge_mwh": float(np.clip(-battery_ac, 0, None).sum() * dt_h),
        "design_day_soc_min": float(min(dd["soc"].min(), dd["soc0"])),
        "design_day_soc_max": float(max(dd["soc"].max(), dd["soc0"])),
        "design_day_soc_end": float(dd["soc"][:, -1].mean()),
        "design_day_empty_at_local": empty_at,
        "design_day_headroom_below_cap_mwh": float(np.clip(cap - load.site_mw.values, 0.0, None).sum() * dt_h),
        "design_day_t_cell_max_degc": float(dd["t_cell_max_degc"].max()),
        "design_day_t_container_air_max_degc": float(dd["t_air_degc"].max()),
        "design_day_t_outdoor_max_degc": float(load.temp_air.max()),
        "design_day_v_cell_spread_max_v": spread,
        "design_day_aux_energy_mwh": float(aux_mw.sum() * dt_h),
        "design_day_aux_peak_kw": float(dd["p_aux_w"].sum(axis=0).max() / 1e3),
        "design_day_bms_flag_steps": {k: int(((flags & v) != 0).sum()) for k, v in FLAGS.items()},
        "ageing_years": ag["years"],
        "ageing_capacity": [float(x) for x in ag["q"].min(axis=0)],
        "ageing_resistance": [float(x) for x in ag["r"].max(axis=0)],
        "ageing_efc_per_year": float(ag["efc"][:, 0].max() / ag["years"][0]),
        "ageing_extrapolated": bool(ag["extrapolated"]),
        f"usable_ac_{ag['years'][last]:g}y_mwh": aged.energy_ac_out_mwh,
    }

    # ---- checks
    chk = Checker(NAME, case.criteria.warn_margin_fraction)
    scen_test = f"capacity test {T_TEST_DEGC:g} degC, {r.p_ac_rated_mw:g} MW"
    chk.lower(scen_test, "battery", "usable_ac_energy_mwh", test.energy_ac_out_mwh, claimed_e, "MWh", CRITERION_ENERGY)
    chk.lower(scen_test, "battery", "duration_at_rated_power_h", test.duration_rated_power_h, claimed_d, "h",
              CRITERION_DURATION)
    scen_day = f"design day {day}"
    chk.upper(scen_day, "POC", "p_import_mw", float(imp.max()), cap, "MW", CRITERION_CAP)
    chk.upper(scen_day, "POC", "p_import_15min_mw", float(imp15.max()), cap, "MW", CRITERION_CAP_15)
    chk.upper(scen_day, "battery", "energy_above_cap_unserved_mwh", float(over.sum() * dt_h), 0.0, "MWh",
              CRITERION_UNSERVED)
    t_lim = min(spec.bms.t_charge_max_degc, spec.bms.t_discharge_max_degc)
    chk.upper(scen_day, "battery", "t_cell_max_degc", float(dd["t_cell_max_degc"].max()), t_lim, "degC",
              CRITERION_TEMP)
    checks = chk.frame()
    summary = {**counts(checks), **summary}
    return StudyResult(NAME, finalize(ds, NAME, case), checks, summary)


# --------------------------------------------------------------------------------------------------------------
# views (matplotlib; a figure or axes may be given, else pyplot makes one)


def _fig(fig, w, h):
    if fig is None:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(w, h), layout="constrained")
    return fig


def _local(ds: xr.Dataset) -> pd.DatetimeIndex:
    tz = ds["time"].attrs.get("timezone_local", "UTC")
    return pd.DatetimeIndex(ds.time.values).tz_localize("UTC").tz_convert(tz)


def plot_design_day(ds: xr.Dataset, fig=None):
    """Grid import against the firm cap, site load, battery AC power (top) and SOC per container (bottom)."""
    fig = _fig(fig, 10, 5.5)
    ax1, ax2 = fig.subplots(2, 1, sharex=True, height_ratios=[2, 1])
    t = _local(ds)
    cap = float(ds.firm_import_cap_mw)
    ax1.plot(t, ds.site_load_mw, color="0.6", lw=0.8, label="site load, battery idle")
    ax1.plot(t, ds.grid_import_mw, color="tab:red", lw=0.9, label="grid import with the battery")
    ax1.fill_between(t, ds.battery_p_mw, 0, color="tab:green", alpha=0.35, lw=0, label="battery AC (+ discharge)")
    ax1.axhline(cap, color="black", ls="--", lw=1.2, label=f"firm cap {cap:g} MW")
    ax1.set_ylabel("MW")
    ax1.grid(alpha=0.3)
    ax1.legend(fontsize=7, ncols=4, loc="upper center", bbox_to_anchor=(0.5, 1.16), frameon=False)
    for c in ds.container.values:
        ax2.plot(t, ds.soc.sel(container=c), lw=0.9, label=str(c))
    for lim in (ds.attrs.get("soc_min"), ds.attrs.get("soc_max")):
        if lim is not None:
            ax2.axhline(lim, color="0.4", ls=":", lw=1)
    ax2.set_ylim(0, 1)
    ax2.set_ylabel("SOC")
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=7, ncols=min(6, ds.sizes["container"]), loc="lower left")
    ax2.set_xlabel(f"local time ({t.tz}) on {ds.attrs.get('design_day', '')}")
    import matplotlib.dates as mdates

    ax2.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=t.tz))
    return fig


def plot_thermal(ds: xr.Dataset, fig=None):
    """Highest cell temperature, container air and outdoor temperature (top); battery auxiliaries (bottom)."""
    import matplotlib.dates as mdates

    fig = _fig(fig, 10, 4.8)
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    t = _local(ds)
    ax1.plot(t, ds.temp_air, color="0.5", lw=0.8, label="outdoor air")
    ax1.plot(t, ds.t_container_air_degc.max("container"), color="tab:blue", lw=0.9, label="container air (max)")
    ax1.plot(t, ds.t_cell_max_degc.max("container"), color="tab:red", lw=0.9, label="hottest cell")
    ax1.set_ylabel("degC")
    ax1.grid(alpha=0.3)
    ax1.legend(fontsize=7, ncols=3)
    ax2.plot(t, ds.p_aux_kw.sum("container"), color="tab:purple", lw=0.9, label="auxiliaries (HVAC + fixed)")
    ax2.plot(t, ds.q_hvac_kw.sum("container"), color="tab:cyan", lw=0.8, label="heat removed by the HVAC")
    ax2.set_ylabel("kW, all containers")
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=7, ncols=2)
    ax2.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=t.tz))
    ax2.set_xlabel(f"local time ({t.tz})")
    return fig


def plot_ageing(ds: xr.Dataset, fig=None):
    """Relative capacity and resistance over the projection, with the reported years marked."""
    fig = _fig(fig, 8, 3.6)
    ax = fig.subplots()
    ty = ds.ageing_t_years.values
    ax.plot(ty, 100 * ds.ageing_capacity_trajectory.values, color="tab:blue", label="capacity")
    ax.plot(ty, 100 * ds.ageing_resistance_trajectory.values, color="tab:orange", label="resistance")
    yrs = ds.ageing_year.values
    q = ds.ageing_capacity.min("container").values
    rr = ds.ageing_resistance.max("container").values
    ax.plot(yrs, 100 * q, "o", color="tab:blue")
    ax.plot(yrs, 100 * rr, "s", color="tab:orange")
    for y, a, b in zip(yrs, q, rr, strict=True):
        ax.annotate(f"{100 * a:.1f} %", (y, 100 * a), textcoords="offset points", xytext=(0, -13), fontsize=7,
                    ha="center")
        ax.annotate(f"{100 * b:.1f} %", (y, 100 * b), textcoords="offset points", xytext=(0, 6), fontsize=7,
                    ha="center")
    ax.margins(y=0.15)
    ax.set_xlabel("years of operation")
    ax.set_ylabel("% of beginning of life")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig
