"""A year of the campus in the loop: drivers, EMS, PCS, battery, batch load flow, thermal limits and economics.

Composes (pvlib's ModelChain spirit: every step is a public function of its own module):

1. drivers over the case's year (:mod:`twin.studies.drivers`: weather, PV, GPU-hall IT load, cooling, tariff), cut
   to the study period;
2. the EMS in closed loop with the PCS and the electro-thermal battery system model (:func:`twin.ems.loop.closed_loop`:
   rules, or a day-ahead LP followed by the rules; the battery's SOC and BMS limits fed back every control
   interval), with the case's shedding policy (GPU power capping) if it has one;
3. the network of every step in one batch (:class:`twin.netbatch.BatchModel`, power-grid-model, agreeing with
   ``pandapower.runpp`` to 1e-6 pu; per-element injections from :mod:`twin.injections`);
4. the loss iteration: a loss model fitted on a sample of load flows gives the dispatch its first losses; then the
   network losses (and the voltages, for a Q(V) PCS) of one pass are fed to the next pass's dispatch, until the
   network's import differs from the one the dispatch assumed by less than ``loss_tolerance_mw`` (a fixed point),
   or grid import and SOC change less than ``loss_tolerance_mw`` and ``soc_tolerance`` between passes; each later
   pass solves again only the steps whose injections changed. From the second pass on the EMS sees the larger of
   the last two passes' losses, so that a step whose dispatch flips across a discrete threshold (the PCS minimum
   power, its standby) settles on the conservative state;
5. transformer temperatures (:mod:`twin.thermal`: IEC 60076-7 oil-immersed driven by outdoor air, IEC 60076-12
   dry-type driven by their room air, ``transformer_room_rise_k`` above outdoor) and their loss of life; cable
   loading against ampacity; battery cell temperatures from the battery model;
6. checks over time (cap instantaneous and 15-min demand, voltage band, loadings, hot spots, SOC window, cell
   temperature, no export, power factor) and economics (:mod:`twin.economics`) with the seed's claims checked.

A sub-minute step (e.g. 1 s: a year is 31.5 million steps) is streamed in chunks of a day with running statistics
and minute means (:func:`twin.studies.stream.stream`).

The year's energy balance (import + PV + battery discharge = IT - shed + cooling + auxiliaries + battery
auxiliaries + battery charge + losses) is recomputed from the Dataset by :func:`energy_balance`.

Options: the case's ``[timeseries]`` section (:class:`twin.case.TimeseriesStudy`).
"""

from __future__ import annotations

import dataclasses
import re
import time as _time

import numpy as np
import pandas as pd
import xarray as xr
from tqdm.auto import tqdm

from .. import tariff as tariff_mod
from ..battery import ratings
from ..battery.system import BatterySystem, Spread, system_spec
from ..case import Case, CaseError, with_drivers
from ..economics import savings
from ..ems.loop import closed_loop
from ..ems.lp import persistence_forecast
from ..ems.model import EmsSettings, LinearBattery
from ..ems.rules import RULES, dispatch_rules
from ..injections import element_map
from ..limits import Checker, counts
from ..netbatch import BatchModel
from ..pcs import capability, q_setpoint
from ..thermal import DryThermal, dry_temperatures, oil_temperatures, thermal_parameters
from . import StudyResult
from . import drivers as drivers_study
from ._common import attrs, bus_band, finalize, loading_limit

NAME = "timeseries"
CRITERION_CAP = "Firm import cap at the sum of the incomers, every step (grid connection agreement, seed case)"
CRITERION_DEMAND = "Firm import cap as the 15-minute mean demand the utility meter bills (DESIGN.md)"
CRITERION_EXPORT = "No export to the grid (reverse-power protection at the point of connection)"
CRITERION_CLAIM_ARB = "Seed claim: 'several million CNY per year' from time-of-use arbitrage (read as >= 2 million)"
CRITERION_CLAIM_2MW = ("Seed claim: the battery carries 2 MW above the firm cap for 4 h (every event of the year up to "
                       "2 MW and 4 h above the cap held)")
_SOLVE_CHUNK = 20_000  # steps per power-grid-model batch call
_RESOLVE_MW = 1e-9   # injection change (MW, Mvar) below which a step is not solved again
_PERIOD_RE = re.compile(r"^(\d{4})(?:-(\d{2})-(\d{2})/(\d{4})-(\d{2})-(\d{2}))?$")


# --------------------------------------------------------------------------------------------------------------
# inputs


def parse_resolution(text: str) -> float:
    """A time step such as ``1min``, ``15min``, ``1s`` or ``60`` (seconds) in seconds; a clear error otherwise."""
    t = str(text).strip()
    try:
        s = float(t) if re.fullmatch(r"[0-9.]+", t) else pd.Timedelta(t).total_seconds()
    except (ValueError, TypeError):
        raise CaseError(f"--resolution: expected a time step such as '1min', '15min' or '1s', found '{text}'") from None
    if not (0.1 <= s <= 3600) or ((3600.0 / s) % 1 and (s / 3600.0) % 1):
        raise CaseError(f"--resolution: expected a step between 0.1 s and 1 h that divides an hour, found '{text}' "
                        f"({s:g} s)")
    return s


def period_bounds(case: Case) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Start and end (local, end exclusive) of the study period: ``[timeseries] period`` or the drivers' year."""
    d, tz = case.spec.drivers, case.spec.site.timezone
    p = case.spec.timeseries.period
    year = d.year
    if p is None:
        return pd.Timestamp(f"{year}-01-01", tz=tz), pd.Timestamp(f"{year + 1}-01-01", tz=tz)
    m = _PERIOD_RE.match(p.strip())
    where = f"{case.path}: [timeseries] period"
    if m is None:
        raise CaseError(f"{where}: expected 'YYYY' or 'YYYY-MM-DD/YYYY-MM-DD', found '{p}'")
    if m.group(2) is None:
        if int(m.group(1)) != year:
            raise CaseError(f"{where}: year {m.group(1)} differs from [drivers] year {year}")
        return pd.Timestamp(f"{year}-01-01", tz=tz), pd.Timestamp(f"{year + 1}-01-01", tz=tz)
    a, b = p.strip().split("/")
    try:
        start, end = pd.Timestamp(a, tz=tz), pd.Timestamp(b, tz=tz)
    except ValueError as e:
        raise CaseError(f"{where}: not a date range: '{p}' ({e})") from None
    if not start < end:
        raise CaseError(f"{where}: the start must come before the end, found '{p}'")
    y0, y1 = pd.Timestamp(f"{year}-01-01", tz=tz), pd.Timestamp(f"{year + 1}-01-01", tz=tz)
    if start < y0 or end > y1:
        raise CaseError(f"{where}: '{p}' must lie within the year {year} ([drivers] year; end exclusive, so "
                        f"'{year + 1}-01-01' is the latest end)")
    return start, end


def with_options(case: Case, *, scenario: str | None = None, period: str | None = None,
                 resolution: str | None = None) -> Case:
    """The case with the command line's ``--scenario``, ``--period`` and ``--resolution`` applied and checked."""
    changes = {}
    if resolution is not None:
        changes["resolution_s"] = parse_resolution(resolution)
    ts = {}
    if period is not None:
        m = _PERIOD_RE.match(str(period).strip())
        if m is None:
            raise CaseError(f"--period: expected 'YYYY' or 'YYYY-MM-DD/YYYY-MM-DD' (local dates, end exclusive), "
                            f"found '{period}'")
        changes["year"] = int(m.group(1))
        ts["period"] = None if m.group(2) is None else str(period).strip()
    if scenario is not None:
        changes["scenario"] = scenario
        ts["scenarios"] = [scenario]
    if changes:
        case = with_drivers(case, **changes)
    if ts:
        spec = case.spec.model_copy(update={"timeseries": case.spec.timeseries.model_copy(update=ts)})
        case = dataclasses.replace(case, spec=spec, models=dict(case.models), model_paths=dict(case.model_paths))
    try:
        period_bounds(case)
    except CaseError as e:
        if period is None:
            raise
        raise CaseError(f"--period '{period}': {str(e).split(': ', 2)[-1]}") from None
    return case


def check(case: Case) -> None:
    """Check the study's inputs (drivers, period, scenarios, thermal parameter sets) before anything runs."""
    from ..gpu import load_scenario

    drivers_study.check(case)
    period_bounds(case)
    for s in scenarios(case):
        load_scenario(case, s)
    for name in {case.model("transformers", t).thermal for t in _trafo_models(case)} - {None}:
        thermal_parameters(case, name)
    ts = case.spec.timeseries
    step_min = case.spec.drivers.resolution_s / 60.0
    steps = ts.control_interval_min / step_min
    if steps > 1 + 1e-9 and abs(steps - round(steps)) > 1e-9:
        raise CaseError(f"{case.path}: [timeseries] control_interval_min ({ts.control_interval_min:g}) must be a "
                        f"whole number of steps of {step_min:g} min (or at most one step)")
    if ts.strategy == "lp" and (1440.0 / step_min) % 1:
        raise CaseError(f"{case.path}: [timeseries] strategy 'lp' needs a step that divides a day")


def scenarios(case: Case) -> list[str]:
    """The load scenarios studied: the case's drivers scenario first, then ``[timeseries] scenarios``."""
    first = case.spec.drivers.scenario
    return [first] + [s for s in case.spec.timeseries.scenarios if s != first]


def _trafo_models(case: Case) -> list[str]:
    s = case.spec
    names = [f.transformer for h in s.halls for f in h.feeds] + [f.transformer for c in s.cooling_plants
                                                                  for f in c.feeds]
    names += [p.transformer for p in s.pv] + [a.transformer for a in s.auxiliaries]
    if s.battery is not None:
        names.append(s.battery.transformer)
    return sorted(set(names))


def ems_settings(case: Case) -> EmsSettings:
    """The EMS settings of the case: firm cap, ``[timeseries]`` margin and reserve, 15-min demand window."""
    ts = case.spec.timeseries
    tar = tariff_mod.load_tariff(case)
    return EmsSettings(cap_mw=case.spec.supply.firm_import_cap_mw, margin_mw=ts.margin_mw,
                       window_min=tar.demand.window_min, reserve_mw=ts.reserve_mw, reserve_min=ts.reserve_min,
                       arbitrage_soc_min=ts.arbitrage_soc_min)


# --------------------------------------------------------------------------------------------------------------
# the coupled simulation


def _changed_rows(inj: dict, prev_inj: dict) -> np.ndarray:
    changed = np.zeros(inj["load_p_mw"].shape[0], bool)
    for k, v in inj.items():
        changed |= np.any(np.abs(v - prev_inj[k]) > _RESOLVE_MW, axis=1)
    return changed


def _solve(bm: BatchModel, inj: dict, prev: dict | None, prev_inj: dict | None, step) -> tuple[dict, int]:
    """Batch load flow of the steps whose injections changed since ``prev_inj`` (all if None); returns the
    merged results (numpy arrays by name) and how many steps were solved."""
    n = inj["load_p_mw"].shape[0]
    if prev is None:
        idx = np.arange(n)
    else:
        idx = np.flatnonzero(_changed_rows(inj, prev_inj))
    res = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in prev.items()} if prev is not None else None
    for a in range(0, idx.size, _SOLVE_CHUNK):   # batches of ~20,000 steps: faster than one big batch here
        part = idx[a:a + _SOLVE_CHUNK]
        ds = bm.run(**{k: v[part] for k, v in inj.items()}, threading=0)
        if res is None:
            res = {k: np.empty((n,) + ds[k].shape[1:], dtype=ds[k].dtype) for k in ds.data_vars}
            res["_coords"] = {c: ds[c].values for c in ("bus", "line", "trafo", "ext_grid")}
        for k in ds.data_vars:
            res[k][part] = ds[k].values
    return res, int(idx.size)


def _pcs_q(case: Case, emap, p_c: np.ndarray, net_res: dict | None, q_prev: np.ndarray | None) -> np.ndarray:
    """PCS reactive power (step, container) for its ``q_mode``, within its capability."""
    pcs = case.model("pcs", case.spec.battery.pcs)
    if pcs.q_mode == "qv":
        v = np.ones_like(p_c) if net_res is None else net_res["vm_pu"][:, emap.pcs_bus_row]
        q = q_setpoint(p_c, v, pcs)
    elif pcs.q_mode == "poc_pf":
        if net_res is None:
            q = np.zeros_like(p_c)
        else:   # Q that brings the import to the target power factor, shared evenly
            p_imp, q_imp = net_res["p_import_mw"], net_res["q_import_mvar"]
            q_pcs_prev = q_prev.sum(axis=1) if q_prev is not None else 0.0
            want = q_imp + q_pcs_prev - np.maximum(p_imp, 0.0) * np.tan(np.arccos(pcs.pf))
            q = np.repeat((want / p_c.shape[1])[:, None], p_c.shape[1], axis=1)
    else:
        q = q_setpoint(p_c, None, pcs)
    return capability(p_c, q, pcs, priority="p")[1]


class _LossModel:
    """Network losses (MW) as a quadratic in the campus net load ``S`` and the battery power ``P``:
    ``c0 + c1 S + c2 S^2 + c3 P + c4 P^2 + c5 S P``, fitted by least squares on a sample of load flows."""

    def __init__(self, coef, rmse_kw, samples):
        self.coef, self.rmse_kw, self.samples = coef, rmse_kw, samples

    @staticmethod
    def features(s, p):
        return np.column_stack([np.ones_like(s), s, s * s, p, p * p, s * p])

    def __call__(self, s, p):
        return self.features(s, p) @ self.coef


def _loss_model(bm, emap, base, it_p, it_q, cool, pv, p_battery_max_mw, seed, samples=3000) -> _LossModel:
    """Fit :class:`_LossModel` on ``samples`` steps spread over the horizon, each with a random battery power
    (seeded) shared evenly by the containers and the containers' auxiliaries idle."""
    n = base.shape[0]
    idx = np.unique(np.linspace(0, n - 1, min(n, samples)).astype(int))
    rng = np.random.default_rng(seed)
    pb = rng.uniform(-1.0, 1.0, idx.size) * p_battery_max_mw
    nc = len(emap.containers)
    p_c = np.repeat((pb / nc)[:, None], nc, axis=1)
    inj = emap.arrays(it_p[idx], it_q[idx], cool[idx], pv[idx], None, None, p_c, np.zeros_like(p_c),
                      np.zeros_like(p_c))
    res = bm.run(**inj, threading=0)
    loss = res.losses_mw.values
    ok = np.isfinite(loss)
    x = _LossModel.features(base[idx][ok], pb[ok])
    coef, *_ = np.linalg.lstsq(x, loss[ok], rcond=None)
    rmse = float(np.sqrt(np.mean((x @ coef - loss[ok]) ** 2)) * 1e3)
    return _LossModel(coef, rmse, int(idx.size))


def simulate(case: Case, net, drv: xr.Dataset, *, progress: bool = True) -> dict:
    """Run the coupled horizon of a drivers Dataset (cut to the period): EMS + battery + network to convergence.

    Returns a dict with the loop's arrays (:func:`twin.ems.loop.closed_loop`), the network results (``net``:
    arrays by name), the injections, ``iterations`` (list of dicts: solved steps, changes), ``converged``.
    """
    s, ts = case.spec, case.spec.timeseries
    emap = element_map(case, net)
    bm = BatchModel(net)
    n = drv.sizes["time"]
    dt_min = float(drv.attrs["resolution_s"]) / 60.0
    it_p, it_q = drv.it_p_mw.values, drv.it_q_mvar.values
    cool = drv.cooling_plant_p_mw.values if "cooling_plant_p_mw" in drv else drv.cooling_p_mw.values[:, None]
    pv = drv.pv_system_p_mw.values if "pv_system_p_mw" in drv else np.zeros((n, 0))
    campus_aux = float(emap.aux_p.sum())
    base = it_p.sum(axis=1) + cool.sum(axis=1) + campus_aux - pv.sum(axis=1)
    t_out = drv.temp_air.values.astype(float)
    periods = np.asarray(drv.tariff_period.attrs["flag_meanings"].split())[drv.tariff_period.values]
    prices = drv.price_cny_per_kwh.values
    shed_max = ts.shed_max_fraction_of_it * it_p.sum(axis=1) if ts.shed_max_fraction_of_it > 0 else None
    has_bat = s.battery is not None
    if has_bat:
        lin = LinearBattery.from_case(case)
        settings = ems_settings(case)
        pcs = case.model("pcs", s.battery.pcs)
        cont = case.model("battery/containers", s.battery.container)
        spec = system_spec(case)
        soc0 = float(cont.soc_max)  # the horizon starts with the battery full
        if ts.strategy == "lp":
            fc_base = base if ts.forecast == "perfect" else persistence_forecast(base, dt_min)
    control = max(1, int(round(ts.control_interval_min / dt_min)))   # a step longer than the interval: 1
    ceiling = np.full(n, np.inf)   # import up to which the battery may charge ([timeseries] charge_limit)

    plans: dict = {}   # the LP's day-ahead schedules, made in the first pass and kept (the loss iteration refines
    # the real-time dispatch; a day-ahead LP is degenerate enough that a kW of forecast moves its schedule by MW)

    def run_loop(losses, with_progress=False):
        th = spec.thermal
        t_init = float(np.clip(t_out[0], th.t_set_heat_degc, th.t_set_cool_degc)) if th else float(t_out[0])
        system = BatterySystem(spec, granularity=ts.granularity, soc0=soc0, t0_degc=t_init,
                               spread=Spread(seed=s.case.seed))
        aux_idle = None if th else np.full(spec.n_containers, cont.aux_kw / 1e3)
        fc = (fc_base + losses) if ts.strategy == "lp" else None
        return closed_loop(base + losses, t_out, dt_min, lin, settings, system, pcs, aux_idle_mw=aux_idle,
                           periods=periods, price_cny_per_kwh=prices, forecast_mw=fc, strategy=ts.strategy,
                           p_shed_max_mw=shed_max, charge_ceiling_mw=ceiling, control_steps=control,
                           progress=with_progress, plans=plans)

    history = []
    losses = np.zeros(n)
    loop = None
    if has_bat:
        # a first guess of the losses from a loss model fitted on a sample of load flows, iterated with the loop
        # alone (cheap), so that the network passes start close to the answer
        t0 = _time.perf_counter()
        model = _loss_model(bm, emap, base, it_p, it_q, cool, pv, spec.n_containers * pcs.p_rated_mw, s.case.seed)
        losses = model(base, np.zeros(n))
        g_prev = None
        aux0 = spec.n_containers * (spec.thermal.p_fixed_kw / 1e3 if spec.thermal else cont.aux_kw / 1e3)
        if ts.charge_limit == "month_peak":
            ceiling[:] = _month_peak(base + losses + aux0, drv.time.values, s.site.timezone,
                                     settings.window_steps(dt_min))
        for _ in range(5):   # the linear EMS alone (milliseconds): close enough for a first guess of the losses
            guess = dispatch_rules(base + losses + aux0, dt_min, lin, settings, soc0, periods=periods,
                                   p_shed_max_mw=shed_max, charge_ceiling_mw=ceiling)
            losses = model(base, guess.p_battery_mw)
            change = float(np.max(np.abs(guess.p_grid_mw - g_prev))) if g_prev is not None else float("inf")
            g_prev = guess.p_grid_mw
            if change < ts.loss_tolerance_mw:
                break
        loop = {"soc": guess.soc}
        history.append({"iteration": "loss model", "steps_solved": model.samples, "rmse_kw": model.rmse_kw,
                        "max_change_import_mw": change, "loop_s": _time.perf_counter() - t0})
    last_losses = losses
    prev_net = prev_inj = prev_imp = None
    prev_soc = loop["soc"] if has_bat else None
    q_c = None
    converged = False
    for it in range(ts.max_iterations):
        t0 = _time.perf_counter()
        if has_bat:
            loop = run_loop(losses, progress and it == 0)
            p_c = loop["p_container_mw"].T
            q_c = _pcs_q(case, emap, p_c, prev_net, q_c)
            inj = emap.arrays(it_p, it_q, cool, pv, loop["p_shed_mw"], loop["p_curtailed_mw"], p_c, q_c,
                              loop["p_aux_container_mw"].T)
        else:
            g = base + losses
            curt = np.maximum(-g, 0.0)
            loop = {"p_curtailed_mw": curt, "p_shed_mw": np.zeros(n)}
            inj = emap.arrays(it_p, it_q, cool, pv, None, curt)
        t1 = _time.perf_counter()
        net_res, solved = _solve(bm, inj, prev_net, prev_inj, drv.time.values)
        t2 = _time.perf_counter()
        imp = net_res["p_import_mw"]
        soc = loop.get("soc", np.zeros(n))
        # the change of the grid import: on the first network pass against the import the dispatch assumed (its
        # losses from the loss model), then against the previous pass; and the change of the SOC trajectory
        assumed = loop["p_grid_mw"] if has_bat else base + losses
        mismatch = float(np.nanmax(np.abs(imp - assumed)))
        d_imp = mismatch if prev_imp is None else float(np.nanmax(np.abs(imp - prev_imp)))
        d_soc = float(np.max(np.abs(soc - prev_soc))) if prev_soc is not None else 0.0
        prev_imp = imp
        history.append({"iteration": it, "steps_solved": solved, "max_change_import_mw": d_imp,
                        "max_change_soc": d_soc, "import_vs_dispatch_max_mw": mismatch, "loop_s": t1 - t0,
                        "network_s": t2 - t1})
        prev_net, prev_soc = net_res, soc
        prev_inj = inj if prev_inj is None else {k: np.where(_changed_rows(inj, prev_inj)[:, None], v, prev_inj[k])
                                                 for k, v in inj.items()}
        new_losses = np.nan_to_num(net_res["losses_mw"], nan=0.0)
        # from the second network pass on, the EMS sees the larger of the last two passes' losses: a step whose dispatch
        # flips between two states across a discrete threshold (PCS minimum power, standby) then settles on the
        # conservative one instead of flipping for ever
        losses = new_losses if it < 1 else np.maximum(new_losses, last_losses)
        last_losses = new_losses
        # converged: the network's import is the one the dispatch assumed (a fixed point: the losses the EMS saw
        # are the network's), or nothing moves between passes any more
        if mismatch < ts.loss_tolerance_mw or (d_imp < ts.loss_tolerance_mw and d_soc < ts.soc_tolerance):
            converged = True
            break
    return {"loop": loop, "net": net_res, "inj": inj, "emap": emap, "iterations": history, "converged": converged,
            "q_pcs": q_c, "base_mw": base, "cooling": cool, "pv": pv}


# --------------------------------------------------------------------------------------------------------------
# thermal limits over time


def transformer_thermal(case: Case, net, loading_percent: np.ndarray, time: pd.DatetimeIndex,
                        t_out_degc: np.ndarray) -> xr.Dataset | None:
    """Hot spot (and top oil) of every transformer with a thermal parameter set, over time.

    Oil-immersed units see the outdoor air (IEC 60076-7); dry-type units their room, ``transformer_room_rise_k``
    above it (IEC 60076-12). Returns a Dataset over ``(transformer, time)`` or None if no transformer has one.
    """
    rise = case.spec.timeseries.transformer_room_rise_k
    out = []
    tr = net.trafo
    for kind in ("oil", "dry"):
        rows = [i for i, m in enumerate(tr.model) if case.model("transformers", m).thermal is not None
                and case.model("transformers", m).kind == kind]
        if not rows:
            continue
        params = [thermal_parameters(case, case.model("transformers", tr.model.iloc[i]).thermal) for i in rows]
        if kind == "dry" and not all(isinstance(p, DryThermal) for p in params):
            raise CaseError("a dry-type transformer points at an oil thermal parameter set")
        k = np.ascontiguousarray(np.nan_to_num(loading_percent[:, rows].T / 100.0, nan=0.0))
        names = [str(tr["name"].iloc[i]) for i in rows]
        if kind == "oil":
            ds = oil_temperatures(k, t_out_degc, params, time, names=names)
        else:
            ds = dry_temperatures(k, t_out_degc + rise, params, time, names=names)
        ds = ds.assign_coords(transformer_kind=("transformer", [kind] * len(rows)))
        out.append(ds)
    if not out:
        return None
    return xr.concat(out, dim="transformer", data_vars="all", coords="minimal", compat="override",
                     join="outer")


# --------------------------------------------------------------------------------------------------------------
# results


def energy_balance(ds: xr.Dataset) -> dict:
    """The horizon's energy balance from a study Dataset (MWh) and its relative error.

    Sources: import, PV (after curtailment), battery discharge. Uses: IT less shed, cooling, campus auxiliaries,
    battery auxiliaries, battery charge, network losses. ``error_rel`` = |sources - uses| / sources.
    """
    dt_h = float(ds.attrs["resolution_s"]) / 3600.0
    e = lambda v: float(np.asarray(v, dtype=float).sum() * dt_h)  # noqa: E731
    pb = ds.p_battery_mw.values.astype(float)
    src = {"import_mwh": e(ds.p_import_mw.values), "pv_mwh": e(ds.p_pv_mw.values),
           "battery_discharge_mwh": e(np.maximum(pb, 0.0))}
    use = {"it_mwh": e(ds.p_it_mw.values) - e(ds.p_shed_mw.values), "cooling_mwh": e(ds.p_cooling_mw.values),
           "aux_mwh": e(ds.p_aux_mw.values), "battery_aux_mwh": e(ds.p_battery_aux_mw.values),
           "battery_charge_mwh": e(np.maximum(-pb, 0.0)), "losses_mwh": e(ds.losses_mw.values)}
    s_src, s_use = sum(src.values()), sum(use.values())
    return {**src, **use, "sources_mwh": s_src, "uses_mwh": s_use,
            "error_rel": abs(s_src - s_use) / s_src if s_src else float("nan")}


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) positions of the runs of True."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def _window_means(p: np.ndarray, m: int) -> np.ndarray:
    nw = -(-p.shape[0] // m)
    pad = np.zeros(nw * m)
    pad[:p.shape[0]] = p
    cnt = np.full(nw, float(m))
    cnt[-1] = p.shape[0] - (nw - 1) * m
    return pad.reshape(nw, m).sum(axis=1) / cnt


def run(case: Case, net=None, *, progress: bool = True) -> StudyResult:
    """Every scenario of the study (:func:`scenarios`): the first as the result, the others in its ``extra``."""
    results = [run_scenario(case, net, sc, progress=progress) for sc in scenarios(case)]
    first = results[0]
    first.extra = results[1:]
    return first


def run_scenario(case: Case, net=None, scenario: str | None = None, *, progress: bool = True) -> StudyResult:
    """The study for one load scenario (default: the case's drivers scenario)."""
    from ..network import build_net

    t_start = _time.perf_counter()
    scenario = scenario or case.spec.drivers.scenario
    case_s = with_drivers(case, scenario=scenario) if scenario != case.spec.drivers.scenario else case
    check(case_s)
    start, end = period_bounds(case_s)
    dt_fine = float(case_s.spec.drivers.resolution_s)
    if dt_fine < 60.0:
        from .stream import stream  # sub-minute steps: streamed in chunks (the drivers' year would not fit)

        return stream(case, net, scenario, progress=progress)
    net = build_net(case_s) if net is None else net
    s, ts = case_s.spec, case_s.spec.timeseries
    tz = s.site.timezone
    name = NAME if scenario == case.spec.drivers.scenario else f"{NAME}_{scenario}"
    bar = tqdm(total=5, desc=f"timeseries {scenario}", unit="stage", disable=not progress, leave=False)
    bar.set_postfix_str("drivers")
    t_drv = _time.perf_counter()
    drv_full = drivers_study.run(case_s, progress=progress).dataset
    t_drv = _time.perf_counter() - t_drv
    t_utc = pd.DatetimeIndex(drv_full.time.values).tz_localize("UTC")
    sel = (t_utc >= start.tz_convert("UTC")) & (t_utc < end.tz_convert("UTC"))
    drv = drv_full.isel(time=np.flatnonzero(sel))
    index = t_utc[sel]
    n = index.size
    dt_s = float(s.drivers.resolution_s)
    dt_h = dt_s / 3600.0
    bar.update()
    bar.set_postfix_str("battery and network in the loop")
    t_sim = _time.perf_counter()
    sim = simulate(case_s, net, drv, progress=progress)
    t_sim = _time.perf_counter() - t_sim
    bar.update()
    loop, nr, emap = sim["loop"], sim["net"], sim["emap"]
    bar.set_postfix_str("thermal")
    t_th = _time.perf_counter()
    th = transformer_thermal(case_s, net, nr["trafo_loading_percent"], index, drv.temp_air.values.astype(float))
    t_th = _time.perf_counter() - t_th
    bar.update()

    # ---- the Dataset
    has_bat = s.battery is not None
    time = index.tz_localize(None)
    p_imp, q_imp = nr["p_import_mw"], nr["q_import_mvar"]
    with np.errstate(invalid="ignore", divide="ignore"):
        pf = np.where(np.hypot(p_imp, q_imp) > 1e-9, np.abs(p_imp) / np.hypot(p_imp, q_imp), 1.0)
    inj = sim["inj"]
    pv_avail = sim["pv"].sum(axis=1)
    pv_after = inj["sgen_p_mw"][:, emap.pv_cols].sum(axis=1) if len(emap.pv_cols) else np.zeros(n)
    f32 = np.float32
    coords = {"time": ("time", time, {"long_name": "interval start (UTC)", "timezone_local": tz}),
              "bus": nr["_coords"]["bus"], "line": nr["_coords"]["line"], "trafo": nr["_coords"]["trafo"],
              "hall": drv.hall.values}
    data = {
        "p_import_mw": ("time", p_imp, attrs("MW", "grid import at the point of connection, sum of incomers")),
        "q_import_mvar": ("time", q_imp, attrs("Mvar", "reactive import at the point of connection")),
        "power_factor": ("time", pf.astype(f32), attrs("1", "power factor at the point of connection, |P| / S")),
        "losses_mw": ("time", nr["losses_mw"], attrs("MW", "network active losses (cables and transformers)")),
        "p_it_mw": ("time", drv.it_p_mw.values.sum(axis=1), attrs("MW", "IT power demanded, all halls (before "
                                                                         "shedding)")),
        "p_shed_mw": ("time", loop["p_shed_mw"], attrs("MW", "IT power shed (GPU power capping) to hold the cap")),
        "p_cooling_mw": ("time", emap.cooling_total_mw(sim["cooling"]), attrs("MW", "cooling plant power")),
        "p_aux_mw": ("time", np.full(n, float(emap.aux_p.sum())), attrs("MW", "campus auxiliaries")),
        "p_pv_mw": ("time", pv_after, attrs("MW", "PV AC power fed in (after curtailment)")),
        "p_pv_available_mw": ("time", pv_avail, attrs("MW", "PV AC power available")),
        "p_curtailed_mw": ("time", loop["p_curtailed_mw"], attrs("MW", "PV power curtailed (no export)")),
        "vm_pu": (("time", "bus"), nr["vm_pu"].astype(f32), attrs("pu", "bus voltage magnitude")),
        "line_loading_percent": (("time", "line"), nr["line_loading_percent"].astype(f32),
                                 attrs("%", "cable loading against its ampacity (max_i_ka x derating)")),
        "trafo_loading_percent": (("time", "trafo"), nr["trafo_loading_percent"].astype(f32),
                                  attrs("%", "transformer loading against its rating")),
        "converged": ("time", nr["converged"], attrs("1", "load flow converged at this step")),
        "temp_air": ("time", drv.temp_air.values, attrs("degC", "outdoor air temperature")),
        "price_cny_per_kwh": ("time", drv.price_cny_per_kwh.values, attrs("CNY kWh-1", "energy price")),
        "cost_cny": ("time", np.maximum(p_imp, 0.0) * dt_h * 1000.0 * drv.price_cny_per_kwh.values,
                     attrs("CNY", "energy charge of the step's import (demand and power-factor charges are monthly)")),
        "tariff_period": drv.tariff_period,
    }
    if has_bat:
        coords["container"] = emap.containers
        data.update({
            "p_battery_mw": ("time", loop["p_battery_mw"], attrs("MW", "battery AC power at the PCS terminals, all "
                                                                       "containers, + discharging")),
            "p_battery_setpoint_mw": ("time", loop["p_set_mw"], attrs("MW", "EMS set point of the battery AC power")),
            "p_battery_aux_mw": ("time", loop["p_aux_mw"], attrs("MW", "battery auxiliaries: HVAC, fixed load, PCS "
                                                                       "standby")),
            "soc": ("time", loop["soc"], attrs("1", "battery SOC (mean of the containers), end of the step")),
            "p_container_mw": (("time", "container"), loop["p_container_mw"].T.astype(f32),
                               attrs("MW", "AC power of each container's PCS, + discharging")),
            "q_container_mvar": (("time", "container"), sim["q_pcs"].astype(f32),
                                 attrs("Mvar", "reactive power of each PCS, + delivered")),
            "soc_container": (("time", "container"), loop["soc_container"].T.astype(f32),
                              attrs("1", "SOC of each container, end of the step")),
            "t_cell_max_degc": (("time", "container"), loop["t_cell_max_degc"].T.astype(f32),
                                attrs("degC", "highest cell temperature in the container, end of the step")),
            "t_container_air_degc": (("time", "container"), loop["t_air_degc"].T.astype(f32),
                                     attrs("degC", "container air temperature")),
            "bms_flag": (("time", "container"), loop["flag"].T, attrs("1", "battery model limit flags")),
            "ems_rule": ("time", loop["rule"], {"units": "1", "long_name": "EMS rule that set the battery power",
                                                "flag_values": list(range(len(RULES))),
                                                "flag_meanings": " ".join(RULES)}),
        })
    else:
        zero = np.zeros(n)
        data.update({"p_battery_mw": ("time", zero, attrs("MW", "no battery")),
                     "p_battery_aux_mw": ("time", zero, attrs("MW", "no battery"))})
    if th is not None:
        coords["transformer"] = th.transformer.values
        data["hot_spot_degc"] = (("time", "transformer"), th.hot_spot_degc.values.T.astype(f32),
                                 attrs("degC", "transformer winding hot spot, end of the step"))
        data["transformer_loss_of_life_days"] = ("transformer", th.loss_of_life_days.values[:, -1],
                                                 attrs("d", "loss of life over the period, days at the reference "
                                                            "hot spot (IEC 60076-7 / -12)"))
    ds = xr.Dataset(data, coords=coords)
    if th is not None:
        ds = ds.assign_coords(transformer_kind=("transformer", th.transformer_kind.values))
    ds.attrs.update(scenario=scenario, resolution_s=dt_s, period_start=str(start), period_end=str(end),
                    strategy=ts.strategy if has_bat else "none", forecast=ts.forecast,
                    granularity=ts.granularity, control_interval_min=ts.control_interval_min,
                    loss_iterations=len(sim["iterations"]), loss_iteration_converged=int(sim["converged"]),
                    seed=s.case.seed)
    bal = energy_balance(ds)

    # ---- economics
    bar.set_postfix_str("economics and checks")
    tar = tariff_mod.load_tariff(case_s)
    econ = _economics(case_s, tar, index, ds, sim)
    ds["p_import_without_battery_mw"] = ("time", econ["p_without_battery_mw"], attrs(
        "MW", "grid import the campus would draw without the battery (no PCS, no container auxiliaries, no "
              "shedding; losses from the loss model fitted on this study's load flows)"))

    # ---- checks and key figures
    chk = Checker(name, case_s.criteria.warn_margin_fraction)
    sc = scenario
    cap = s.supply.firm_import_cap_mw
    over = p_imp > cap + 1e-9
    starts, ends = _runs(over)
    m_win = int(round(tar.demand.window_min * 60.0 / dt_s)) if tar.demand.window_min * 60.0 >= dt_s else 1
    wmeans = _window_means(p_imp, m_win)
    chk.upper(sc, "POC", "grid_import_max_mw", float(np.nanmax(p_imp)), cap, "MW", CRITERION_CAP)
    chk.upper(sc, "POC", "cap_exceeded_minutes", float(over.sum() * dt_s / 60.0), 0.0, "min", CRITERION_CAP)
    chk.upper(sc, "POC", "demand_15min_max_mw", float(wmeans.max()), cap, "MW", CRITERION_DEMAND)
    chk.lower(sc, "POC", "grid_import_min_mw", float(np.nanmin(p_imp)), -ts.loss_tolerance_mw, "MW", CRITERION_EXPORT)
    bus_roles = net.bus.role.astype(str).tolist()
    vm = nr["vm_pu"]
    v_bad = np.zeros(n, bool)
    for j, b in enumerate(nr["_coords"]["bus"]):
        lo, hi, crit = bus_band(case_s, bus_roles[j])
        v = vm[:, j]
        v_bad |= (v < lo) | (v > hi)
        worst = float(np.nanmin(v)) if (np.nanmin(v) - lo) < (hi - np.nanmax(v)) else float(np.nanmax(v))
        chk.band(sc, str(b), "vm_pu_worst", worst, lo, hi, "pu", crit)
    minutes = {}   # duration of each kind of violation over the period (min)
    for kind, key in (("line", "line_loading_percent"), ("trafo", "trafo_loading_percent")):
        lim, crit = loading_limit(case_s, kind)
        minutes[f"{kind}_overload_minutes"] = float((nr[key] > lim).any(axis=1).sum() * dt_s / 60.0)
        for j, b in enumerate(nr["_coords"][kind]):
            chk.upper(sc, str(b), "loading_max_percent", float(np.nanmax(nr[key][:, j])), lim, "%", crit)
    hot_max = float("nan")
    if th is not None:
        lim_hs = (th.hot_spot_max_degc + th.hot_spot_margin_k).values
        minutes["hot_spot_violation_minutes"] = float((th.hot_spot_degc.values > lim_hs[:, None]).any(axis=0).sum()
                                                      * dt_s / 60.0)
    if th is not None:
        for j, t in enumerate(th.transformer.values):
            kind = str(th.transformer_kind.values[j])
            lim = float(th.hot_spot_max_degc.values[j] + th.hot_spot_margin_k.values[j])
            chk.upper(sc, str(t), "hot_spot_max_degc", float(th.hot_spot_max_degc.values[j]), lim, "degC",
                      f"{kind}-type transformer hot-spot limit (IEC 60076-{'7' if kind == 'oil' else '12'}, thermal "
                      "parameter set)")
        hot_max = float(th.hot_spot_max_degc.max())
    summary_bat = {}
    if has_bat:
        cont = case_s.model("battery/containers", s.battery.container)
        spec = system_spec(case_s)
        chk.lower(sc, "battery", "soc_min", float(loop["soc_container"].min()), cont.soc_min - 1e-3, "1",
                  "BMS SOC window (container parameter set)")
        chk.upper(sc, "battery", "soc_max", float(loop["soc_container"].max()), cont.soc_max + 1e-3, "1",
                  "BMS SOC window (container parameter set)")
        chk.upper(sc, "battery", "t_cell_max_degc", float(loop["t_cell_max_degc"].max()),
                  spec.bms.t_discharge_max_degc, "degC", "BMS cell temperature limit (BMS parameter set)")
        r = ratings(case_s)
        pb = loop["p_battery_mw"]
        soc_first = float(cont.soc_max)   # simulate() starts every horizon full
        dis = float(np.maximum(pb, 0).sum() * dt_h)
        chg = float(np.maximum(-pb, 0).sum() * dt_h)
        efc = dis / r.usable_ac_mwh if r.usable_ac_mwh else float("nan")
        days = n * dt_h / 24.0
        summary_bat = {"battery_discharge_mwh": dis, "battery_charge_mwh": chg,
                       "battery_equivalent_full_cycles": efc,
                       "battery_equivalent_full_cycles_per_year": efc * 365.0 / days if days else float("nan"),
                       "battery_aux_mwh": float(loop["p_aux_mw"].sum() * dt_h),
                       # a round trip only when the SOC comes back to where it started (within 1 %)
                       "battery_round_trip_ac": (dis / chg if chg > 0 and abs(loop["soc"][-1] - soc_first) < 0.01
                                                 else float("nan")),
                       "soc_min": float(loop["soc"].min()), "soc_max": float(loop["soc"].max()),
                       "t_cell_max_degc": float(loop["t_cell_max_degc"].max()),
                       **_fade(index, loop, days)}
        socc = loop["soc_container"]
        minutes["soc_violation_minutes"] = float(((socc < cont.soc_min - 1e-3) | (socc > cont.soc_max + 1e-3))
                                                 .any(axis=0).sum() * dt_s / 60.0)
        minutes["cell_temperature_violation_minutes"] = float(
            (loop["t_cell_max_degc"] > spec.bms.t_discharge_max_degc).any(axis=0).sum() * dt_s / 60.0)
    claims = _claims(case_s, ds, sim, dt_h, cap, econ, chk, sc)
    checks = chk.frame()
    longest = float((ends - starts).max() * dt_s / 60.0) if starts.size else 0.0
    summary = {
        "scenario": scenario, "steps": int(n), "resolution_s": dt_s,
        "period_start": str(start), "period_end": str(end),
        "strategy": ds.attrs["strategy"],
        "grid_import_max_mw": float(np.nanmax(p_imp)), "cap_mw": cap,
        "cap_exceeded_minutes": float(over.sum() * dt_s / 60.0),
        "cap_exceeded_max_mw": float(max(np.nanmax(p_imp) - cap, 0.0)),
        "cap_exceeded_energy_mwh": float(np.maximum(p_imp - cap, 0).sum() * dt_h),
        "cap_exceeded_events": int(starts.size), "cap_exceeded_longest_min": longest,
        "cap_exceeded_15min_intervals": int((wmeans > cap + 1e-9).sum()),
        "demand_15min_max_mw": float(wmeans.max()),
        "shed_energy_mwh": float(loop["p_shed_mw"].sum() * dt_h),
        "curtailed_energy_mwh": float(loop["p_curtailed_mw"].sum() * dt_h),
        "voltage_violation_minutes": float(v_bad.sum() * dt_s / 60.0),
        **minutes,
        "power_factor_min": float(np.nanmin(np.where(p_imp > 0.05 * cap, pf, np.nan))) if (p_imp > 0.05 * cap).any()
        else float("nan"),
        "energy_balance_error_rel": bal["error_rel"],
        "import_energy_mwh": bal["import_mwh"], "pv_energy_mwh": float(pv_after.sum() * dt_h),
        "losses_energy_mwh": bal["losses_mwh"],
        **summary_bat,
        **_economic_figures(econ), "loss_model_rmse_kw": econ["loss_model_rmse_kw"],
        "transformer_hotspot_max_degc": hot_max,
        "transformer_loss_of_life_max_days": float(th.loss_of_life_days.values[:, -1].max()) if th is not None
        else float("nan"),
        "cable_loading_max_percent": float(np.nanmax(nr["line_loading_percent"])),
        "load_flow_not_converged_steps": int((~nr["converged"].astype(bool)).sum()),
        "loss_iterations": sim["iterations"], "loss_iteration_converged": sim["converged"],
        **claims,
        "timing_s": {"total": _time.perf_counter() - t_start, "drivers": t_drv, "coupled_simulation": t_sim,
                     "thermal": t_th},
    }
    if n * dt_h < 24 * 360:
        summary["note"] = (f"the period covers {n * dt_h / 24:.1f} days, not a year: 'annual_*' figures are for "
                           "the period")
    summary = {**counts(checks), **summary}
    bar.update(2)
    bar.close()
    ds = finalize(ds, NAME, case_s)
    return StudyResult(name, ds, checks, summary)


def _fade(index: pd.DatetimeIndex, loop: dict, days: float) -> dict:
    """Capacity and resistance after 1 and 10 years, repeating the period's battery history (mean SOC of the
    containers, their hottest cell) with the BLAST-Lite LFP model (:func:`twin.battery.ageing.project`); only for
    a period of at least 300 days (a shorter one is not a representative year)."""
    if days < 300:
        return {"battery_capacity_after_1y_percent": float("nan"), "battery_capacity_after_10y_percent": float("nan")}
    import warnings

    from ..battery.ageing import project

    step = max(1, int(round(900.0 / ((index[1] - index[0]).total_seconds()))))   # 15-min means are plenty
    k = (len(index) // step) * step
    soc = loop["soc"][:k].reshape(-1, step).mean(axis=1)
    temp = loop["t_cell_max_degc"].max(axis=0)[:k].reshape(-1, step).mean(axis=1)
    t_s = np.arange(soc.size) * step * (index[1] - index[0]).total_seconds()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pr = project({"time": t_s, "soc": soc, "t_cell_degc": temp}, years=(1, 10))
    return {"battery_capacity_after_1y_percent": 100.0 * pr[1]["q"],
            "battery_capacity_after_10y_percent": 100.0 * pr[10]["q"],
            "battery_resistance_after_10y_percent": 100.0 * pr[10]["r"]}


def _month_peak(load_mw: np.ndarray, time_utc, tz: str, m: int) -> np.ndarray:
    """Per step, the highest demand-window mean of ``load_mw`` in the step's local calendar month (MW): the
    month's billed peak of the load alone, taken as known (a monthly demand forecast)."""
    wm = np.repeat(_window_means(load_mw, m), m)[:load_mw.shape[0]]
    month = pd.DatetimeIndex(time_utc).tz_localize("UTC").tz_convert(tz).to_period("M").asi8
    peak = pd.Series(wm).groupby(month).transform("max").to_numpy()
    return peak


def _economic_figures(econ: dict) -> dict:
    """The key figures of :func:`_economics` for ``summary.json`` (CNY over the period)."""
    return {"annual_cost_cny": econ["with_battery"]["total_cny"],
            "annual_cost_without_battery_cny": econ["without_battery"]["total_cny"],
            "annual_savings_cny": econ["savings_cny"], "savings_arbitrage_cny": econ["savings_energy_cny"],
            "savings_demand_cny": econ["savings_demand_cny"], "savings_power_factor_cny": econ["savings_pf_cny"],
            "savings_pv_cny": econ["savings_pv_cny"], "shed_value_cny": econ["shed_value_cny"]}


def _economics(case: Case, tar, index: pd.DatetimeIndex, ds: xr.Dataset, sim: dict) -> dict:
    """Bills with and without the battery and PV. The imports without them use a loss model fitted on the
    study's own load flows (losses against import P and Q, least squares), with its RMSE reported."""
    p_imp, q_imp, loss = ds.p_import_mw.values, ds.q_import_mvar.values, ds.losses_mw.values
    ok = np.isfinite(loss)
    a = np.column_stack([np.ones(ok.sum()), p_imp[ok], p_imp[ok] ** 2, q_imp[ok] ** 2])
    coef, *_ = np.linalg.lstsq(a, loss[ok], rcond=None)
    rmse = float(np.sqrt(np.mean((a @ coef - loss[ok]) ** 2)) * 1e3)
    q_pcs = ds.q_container_mvar.values.sum(axis=1) if "q_container_mvar" in ds else 0.0
    emap = sim["emap"]
    q_bess = ds.p_battery_aux_mw.values * emap.bess_tan
    q_wo = q_imp + q_pcs - q_bess

    def without(load):
        p = load.copy()
        for _ in range(4):
            p = load + coef[0] + coef[1] * p + coef[2] * p ** 2 + coef[3] * q_wo ** 2
        return np.maximum(p, 0.0)

    base_nopv = ds.p_it_mw.values + ds.p_cooling_mw.values + ds.p_aux_mw.values
    p_wo = without(base_nopv - ds.p_pv_available_mw.values)
    p_wopv = without(base_nopv)
    out = savings(tar, index, np.nan_to_num(p_imp), np.nan_to_num(q_imp), p_wo, q_wo, p_wopv, q_wo,
                  ds.p_shed_mw.values)
    out["loss_model_rmse_kw"] = rmse
    out["p_without_battery_mw"] = p_wo
    return out


def _claims(case: Case, ds: xr.Dataset, sim: dict, dt_h: float, cap: float, econ: dict, chk: Checker,
            sc: str) -> dict:
    """The seed's two claims, checked whatever the answer: arbitrage worth several million CNY a year, and 2 MW
    above the cap carried for 4 h (every event of the period whose excess above the cap stays within 2 MW and
    4 h, in the load the campus would draw without the battery, held)."""
    out = {}
    days = ds.sizes["time"] * dt_h / 24.0
    arb_year = econ["savings_energy_cny"] * 365.0 / days if days else float("nan")
    out["claim_arbitrage_cny_per_year"] = arb_year
    chk.lower(sc, "battery", "arbitrage_savings_cny_per_year", arb_year, 2.0e6, "CNY", CRITERION_CLAIM_ARB,
              advisory=True)
    if "p_battery_mw" not in ds or not np.any(ds.p_battery_mw.values):
        return out
    p_wo = econ["p_without_battery_mw"]
    excess = p_wo - cap
    starts, ends = _runs(excess > 1e-9)
    held = ds.p_import_mw.values <= cap + 1e-9
    within, ok = 0, 0
    for a, b in zip(starts, ends, strict=True):
        if excess[a:b].max() <= 2.0 + 1e-9 and (b - a) * dt_h <= 4.0 + 1e-9:
            within += 1
            ok += int(held[a:b].all())
    out["claim_2mw_4h_events"] = within
    out["claim_2mw_4h_events_held"] = ok
    out["events_above_cap_without_battery"] = int(starts.size)
    out["events_above_cap_without_battery_max_mw"] = float(excess.max()) if starts.size else 0.0
    if within:
        chk.lower(sc, "battery", "claim_2mw_4h_events_held_fraction", ok / within, 1.0, "1", CRITERION_CLAIM_2MW)
    return out
