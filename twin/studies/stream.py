"""The year in the loop at fine steps (1 s): the horizon streamed in chunks, with running statistics.

A year at 1 s is 31.5 million steps: its drivers, battery and load flows do not fit in memory as a time series of
every element. :func:`stream` runs it a chunk (default a day) at a time, carrying the battery system's state and the
EMS's memory (:func:`twin.ems.loop.closed_loop`'s ``state``) from one chunk to the next, and keeps:

- 1-minute means of every term of the energy balance and of the grid import, and the SOC at the end of each minute
  (the Dataset written to NetCDF, 525,600 rows for a year), from which the bill (15-min demand) and the energy
  balance are computed exactly;
- over the fine steps: the highest import, the time above the cap, the 15-minute demand means, every bus voltage's
  lowest and highest value, every branch's highest loading, the hottest cell;
- 1-minute means of every transformer's loading, from which the IEC 60076-7/-12 hot spots are computed after the
  stream (their time constants, 4 min and more, make 1-minute means adequate).

What differs from the 1-minute study (:func:`twin.studies.timeseries.run_scenario`), and why:

- the drivers that change within a minute are computed at the fine step: the GPU halls' IT load (training
  iterations, checkpoints, job steps) and the cooling plant that follows it; weather, PV and tariff come from the
  1-minute drivers, held over each minute (the synthetic weather has no sub-minute content);
- the losses the EMS sees come from the loss model fitted on a sample of load flows (iterated with the linear EMS),
  and each chunk's network is solved once: re-running a chunk would mean rewinding the battery. The largest
  difference between the import the dispatch assumed and the network's is reported
  (``import_vs_dispatch_max_mw``);
- a Q(V) PCS sees 1.0 pu and a ``poc_pf`` PCS gives no reactive power (no voltage or import from a previous pass).
"""

from __future__ import annotations

import time as _time

import numpy as np
import pandas as pd
import xarray as xr
from tqdm.auto import tqdm

from .. import cooling, gpu
from .. import tariff as tariff_mod
from ..battery.system import BatterySystem, Spread, system_spec
from ..case import Case, with_drivers
from ..ems.loop import closed_loop
from ..ems.model import LinearBattery
from ..ems.rules import dispatch_rules
from ..injections import element_map
from ..limits import Checker, counts
from ..netbatch import BatchModel
from . import StudyResult
from . import drivers as drivers_study
from ._common import attrs, bus_band, finalize, loading_limit
from .timeseries import (
    _SOLVE_CHUNK,
    NAME,
    _claims,
    _economic_figures,
    _economics,
    _fade,
    _loss_model,
    _month_peak,
    _pcs_q,
    _window_means,
    check,
    ems_settings,
    energy_balance,
    period_bounds,
    transformer_thermal,
)

__all__ = ["stream"]


def _minute_means(x: np.ndarray, per_min: int) -> np.ndarray:
    """Means over each minute of a fine series (first axis), the series a whole number of minutes long."""
    return x.reshape(-1, per_min, *x.shape[1:]).mean(axis=1)


def stream(case: Case, net=None, scenario: str | None = None, *, chunk_days: float = 1.0,
           progress: bool = True) -> StudyResult:
    """The year-in-the-loop study at the case's fine step, streamed in chunks (module docstring).

    Parameters
    ----------
    case : Case
        With ``[drivers] resolution_s`` below 60 s dividing a minute (e.g. 1 s) and the ``[timeseries]`` options.
    net : pandapowerNet, optional
    scenario : str, optional
        Load scenario (default: the case's drivers scenario).
    chunk_days : float
        Length of a chunk in days (memory grows with it: about 0.3 GB per day at 1 s).
    progress : bool

    Returns
    -------
    StudyResult
        Named like the 1-minute study; its Dataset holds 1-minute means (attribute ``streamed_resolution_s``).
    """
    from ..network import build_net

    t_start = _time.perf_counter()
    scenario = scenario or case.spec.drivers.scenario
    case = with_drivers(case, scenario=scenario) if scenario != case.spec.drivers.scenario else case
    check(case)
    s, ts = case.spec, case.spec.timeseries
    dt_s = float(s.drivers.resolution_s)
    if dt_s >= 60.0 or (60.0 / dt_s) % 1:
        raise ValueError(f"stream: the step must be below a minute and divide it, found {dt_s:g} s")
    if s.battery is None:
        raise ValueError("stream: the case has no battery (the 1-minute study covers a campus without one)")
    per_min = int(round(60.0 / dt_s))
    name = NAME if scenario == case.spec.drivers.scenario else f"{NAME}_{scenario}"
    tz = s.site.timezone
    net = build_net(case) if net is None else net

    # 1-minute drivers (weather, PV, tariff: held over the minute) and the horizon
    case_min = with_drivers(case, resolution_s=60.0)
    drv_all = drivers_study.run(case_min, progress=progress).dataset
    start, end = period_bounds(case)
    t_min = pd.DatetimeIndex(drv_all.time.values).tz_localize("UTC")
    sel = np.flatnonzero((t_min >= start.tz_convert("UTC")) & (t_min < end.tz_convert("UTC")))
    drv = drv_all.isel(time=sel)
    index_min = t_min[sel]
    n_min = index_min.size
    emap = element_map(case, net)
    bm = BatchModel(net)
    lin = LinearBattery.from_case(case)
    settings = ems_settings(case)
    pcs = case.model("pcs", s.battery.pcs)
    cont = case.model("battery/containers", s.battery.container)
    spec = system_spec(case)
    nc = spec.n_containers
    th = spec.thermal
    aux0 = nc * (th.p_fixed_kw / 1e3 if th else cont.aux_kw / 1e3)
    aux_idle = None if th else np.full(nc, cont.aux_kw / 1e3)
    pv_min = drv.pv_system_p_mw.values if "pv_system_p_mw" in drv else np.zeros((n_min, 0))
    cool_min = drv.cooling_plant_p_mw.values if "cooling_plant_p_mw" in drv else drv.cooling_p_mw.values[:, None]
    base_min = drv.it_p_mw.values.sum(axis=1) + cool_min.sum(axis=1) + float(emap.aux_p.sum()) - pv_min.sum(axis=1)
    model = _loss_model(bm, emap, base_min, drv.it_p_mw.values, drv.it_q_mvar.values, cool_min, pv_min,
                        nc * pcs.p_rated_mw, s.case.seed)
    ceiling_min = (_month_peak(base_min + model(base_min, np.zeros(n_min)) + aux0, drv.time.values, tz,
                               settings.window_steps(1.0)) if ts.charge_limit == "month_peak"
                   else np.full(n_min, np.inf))
    codes = drv.tariff_period.values
    names = np.asarray(drv.tariff_period.attrs["flag_meanings"].split())
    temp_min = drv.temp_air.values.astype(float)
    rh_min = drv.relative_humidity.values.astype(float)
    t_init = float(np.clip(temp_min[0], th.t_set_heat_degc, th.t_set_cool_degc)) if th else float(temp_min[0])
    system = BatterySystem(spec, granularity=ts.granularity, soc0=float(cont.soc_max), t0_degc=t_init,
                           spread=Spread(seed=s.case.seed))
    state = None
    control = max(1, int(round(ts.control_interval_min * 60.0 / dt_s)))
    shed_frac = ts.shed_max_fraction_of_it

    # accumulators
    keys = ("p_import_mw", "q_import_mvar", "losses_mw", "p_it_mw", "p_shed_mw", "p_cooling_mw", "p_pv_mw",
            "p_pv_available_mw", "p_curtailed_mw", "p_battery_mw", "p_battery_aux_mw")
    mins = {k: np.empty(n_min) for k in keys}
    mins["soc"] = np.empty(n_min)
    mins["q_container_mvar"] = np.empty((n_min, nc))
    trafo_min = np.empty((n_min, len(net.trafo)))
    n_bus, n_line = len(net.bus), len(net.line)
    vm_lo, vm_hi = np.full(n_bus, np.inf), np.full(n_bus, -np.inf)
    line_hi, trafo_hi = np.full(n_line, -np.inf), np.full(len(net.trafo), -np.inf)
    cap = s.supply.firm_import_cap_mw
    stats = {"import_max_mw": -np.inf, "import_min_mw": np.inf, "above_cap_s": 0.0, "t_cell_max_degc": -np.inf,
             "mismatch_max_mw": 0.0, "voltage_bad_s": 0.0, "not_converged": 0, "pf_min": np.inf,
             "above_cap_mwh": 0.0, "events": 0, "run": 0, "longest": 0, "line_over_s": 0.0, "trafo_over_s": 0.0,
             "soc_bad_s": 0.0, "t_cell_bad_s": 0.0}
    t_cell_min = np.empty((nc, n_min))
    lim_line, _ = loading_limit(case, "line")
    lim_trafo, _ = loading_limit(case, "trafo")
    m_win = int(round(tariff_mod.load_tariff(case).demand.window_min * 60.0 / dt_s))
    bands = [bus_band(case, str(r)) for r in net.bus.role]
    lo_b = np.array([b[0] for b in bands])
    hi_b = np.array([b[1] for b in bands])

    chunk_min = int(round(chunk_days * 1440))
    bar = tqdm(total=n_min, desc=f"stream {scenario} at {dt_s:g} s", unit="min", disable=not progress)
    timing = {"drivers": 0.0, "loop": 0.0, "network": 0.0}
    for a in range(0, n_min, chunk_min):
        b = min(n_min, a + chunk_min)
        t0 = _time.perf_counter()
        idx = pd.date_range(index_min[a], periods=(b - a) * per_min, freq=pd.Timedelta(seconds=dt_s))
        hold = np.repeat(np.arange(a, b), per_min)      # each fine step's minute
        it = gpu.it_load(case, idx)
        it_p, it_q = it.p_mw.values, it.q_mvar.values
        it_tot = it_p.sum(axis=1)
        if s.cooling_plants:
            cool = cooling.cooling_power(case, it_tot, temp_min[hold], rh_min[hold], time=idx).p_mw.values
        else:
            cool = np.zeros((idx.size, 0))
        pv = pv_min[hold]
        base = it_tot + cool.sum(axis=1) + float(emap.aux_p.sum()) - pv.sum(axis=1)
        periods = names[codes[hold]]
        shed_max = shed_frac * it_tot if shed_frac > 0 else None
        ceiling = ceiling_min[hold]
        t1 = _time.perf_counter()
        # losses from the loss model with the linear EMS, then the battery in the loop
        losses = model(base, np.zeros(idx.size))
        soc_now = float(np.clip(system.soc().mean(), lin.soc_min, lin.soc_max))
        for _ in range(2):
            guess = dispatch_rules(base + losses + aux0, dt_s / 60.0, lin, settings, soc_now, periods=periods,
                                   p_shed_max_mw=shed_max, charge_ceiling_mw=ceiling)
            losses = model(base, guess.p_battery_mw)
        loop = closed_loop(base + losses, temp_min[hold], dt_s / 60.0, lin, settings, system, pcs,
                           aux_idle_mw=aux_idle, periods=periods, p_shed_max_mw=shed_max, charge_ceiling_mw=ceiling,
                           control_steps=control, state=state)
        state = loop["state"]
        p_c = loop["p_container_mw"].T
        q_c = _pcs_q(case, emap, p_c, None, None)
        inj = emap.arrays(it_p, it_q, cool, pv, loop["p_shed_mw"], loop["p_curtailed_mw"], p_c, q_c,
                          loop["p_aux_container_mw"].T)
        t2 = _time.perf_counter()
        n = idx.size
        imp, qimp, loss = np.empty(n), np.empty(n), np.empty(n)
        trafo_ld = np.empty((n, len(net.trafo)))
        for c0 in range(0, n, _SOLVE_CHUNK):
            c1 = min(n, c0 + _SOLVE_CHUNK)
            r = bm.run(**{k: v[c0:c1] for k, v in inj.items()}, threading=0)
            imp[c0:c1], qimp[c0:c1], loss[c0:c1] = r.p_import_mw.values, r.q_import_mvar.values, r.losses_mw.values
            vm = r.vm_pu.values
            vm_lo = np.fmin(vm_lo, np.nanmin(vm, axis=0))
            vm_hi = np.fmax(vm_hi, np.nanmax(vm, axis=0))
            stats["voltage_bad_s"] += float(((vm < lo_b) | (vm > hi_b)).any(axis=1).sum() * dt_s)
            ll = r.line_loading_percent.values
            line_hi = np.fmax(line_hi, np.nanmax(ll, axis=0))
            tl = r.trafo_loading_percent.values
            stats["line_over_s"] += float((ll > lim_line).any(axis=1).sum() * dt_s)
            stats["trafo_over_s"] += float((tl > lim_trafo).any(axis=1).sum() * dt_s)
            trafo_hi = np.fmax(trafo_hi, np.nanmax(tl, axis=0))
            trafo_ld[c0:c1] = tl
            stats["not_converged"] += int((~r.converged.values).sum())
        t3 = _time.perf_counter()
        timing["drivers"] += t1 - t0
        timing["loop"] += t2 - t1
        timing["network"] += t3 - t2
        # running statistics over the fine steps
        stats["import_max_mw"] = max(stats["import_max_mw"], float(np.nanmax(imp)))
        stats["import_min_mw"] = min(stats["import_min_mw"], float(np.nanmin(imp)))
        over = imp > cap + 1e-9
        stats["above_cap_s"] += float(over.sum() * dt_s)
        stats["above_cap_mwh"] += float(np.maximum(imp - cap, 0.0).sum() * dt_s / 3600.0)
        # events above the cap, an event running on from the last chunk continued
        edges = np.diff(np.concatenate(([0], over.astype(np.int8), [0])))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        lengths = ends - starts
        carried = stats["run"] > 0 and starts.size > 0 and starts[0] == 0
        if carried:
            lengths[0] += stats["run"]
        stats["events"] += int(starts.size) - int(carried)
        if lengths.size:
            stats["longest"] = max(stats["longest"], int(lengths.max()))
        stats["run"] = int(lengths[-1]) if lengths.size and ends[-1] == n else 0
        stats["t_cell_max_degc"] = max(stats["t_cell_max_degc"], float(loop["t_cell_max_degc"].max()))
        stats["mismatch_max_mw"] = max(stats["mismatch_max_mw"], float(np.nanmax(np.abs(imp - loop["p_grid_mw"]))))
        with np.errstate(invalid="ignore", divide="ignore"):
            pf = np.abs(imp) / np.hypot(imp, qimp)
        busy = imp > 0.05 * cap
        if busy.any():
            stats["pf_min"] = min(stats["pf_min"], float(np.nanmin(pf[busy])))
        # 1-minute means
        pv_after = inj["sgen_p_mw"][:, emap.pv_cols].sum(axis=1) if len(emap.pv_cols) else np.zeros(n)
        fine = {"p_import_mw": imp, "q_import_mvar": qimp, "losses_mw": loss, "p_it_mw": it_tot,
                "p_shed_mw": loop["p_shed_mw"], "p_cooling_mw": emap.cooling_total_mw(cool), "p_pv_mw": pv_after,
                "p_pv_available_mw": pv.sum(axis=1), "p_curtailed_mw": loop["p_curtailed_mw"],
                "p_battery_mw": loop["p_battery_mw"], "p_battery_aux_mw": loop["p_aux_mw"]}
        for k, v in fine.items():
            mins[k][a:b] = _minute_means(v, per_min)
        mins["soc"][a:b] = loop["soc"][per_min - 1::per_min]
        t_cell_min[:, a:b] = _minute_means(loop["t_cell_max_degc"].T, per_min).T
        socc = loop["soc_container"]
        stats["soc_bad_s"] += float(((socc < cont.soc_min - 1e-3) | (socc > cont.soc_max + 1e-3)).any(axis=0).sum()
                                    * dt_s)
        stats["t_cell_bad_s"] += float((loop["t_cell_max_degc"] > spec.bms.t_discharge_max_degc).any(axis=0).sum()
                                       * dt_s)
        mins["q_container_mvar"][a:b] = _minute_means(q_c, per_min)
        trafo_min[a:b] = _minute_means(trafo_ld, per_min)
        bar.update(b - a)
    bar.close()

    # ---- after the stream: thermal, the Dataset, economics, checks
    th_ds = transformer_thermal(case, net, trafo_min, index_min, temp_min)
    time = index_min.tz_localize(None)
    data = {k: ("time", v, attrs(*_META[k])) for k, v in mins.items() if k != "q_container_mvar"}
    data["p_aux_mw"] = ("time", np.full(n_min, float(emap.aux_p.sum())), attrs("MW", "campus auxiliaries"))
    data["q_container_mvar"] = (("time", "container"), mins["q_container_mvar"],
                                attrs("Mvar", "reactive power of each PCS, + delivered (minute mean)"))
    data["trafo_loading_percent"] = (("time", "trafo"), trafo_min.astype(np.float32),
                                     attrs("%", "transformer loading (minute mean)"))
    data["vm_pu_min"] = ("bus", vm_lo, attrs("pu", "lowest bus voltage over the period (every fine step)"))
    data["vm_pu_max"] = ("bus", vm_hi, attrs("pu", "highest bus voltage over the period (every fine step)"))
    data["line_loading_max_percent"] = ("line", line_hi, attrs("%", "highest cable loading (every fine step)"))
    data["trafo_loading_max_percent"] = ("trafo", trafo_hi, attrs("%", "highest transformer loading (every fine "
                                                                         "step)"))
    data["temp_air"] = ("time", temp_min, attrs("degC", "outdoor air temperature"))
    data["price_cny_per_kwh"] = ("time", drv.price_cny_per_kwh.values, attrs("CNY kWh-1", "energy price"))
    coords = {"time": ("time", time, {"long_name": "minute start (UTC)", "timezone_local": tz}),
              "bus": net.bus["name"].astype(str).tolist(), "line": net.line["name"].astype(str).tolist(),
              "trafo": net.trafo["name"].astype(str).tolist(), "container": emap.containers}
    if th_ds is not None:
        coords["transformer"] = th_ds.transformer.values
        data["hot_spot_degc"] = (("time", "transformer"), th_ds.hot_spot_degc.values.T.astype(np.float32),
                                 attrs("degC", "transformer winding hot spot (from minute-mean loading)"))
    ds = xr.Dataset(data, coords=coords)
    ds.attrs.update(scenario=scenario, resolution_s=60.0, streamed_resolution_s=dt_s, chunk_days=chunk_days,
                    period_start=str(start), period_end=str(end), strategy="rules", seed=s.case.seed)
    bal = energy_balance(ds)
    tar = tariff_mod.load_tariff(case)
    econ = _economics(case, tar, index_min, ds, {"emap": emap})

    chk = Checker(name, case.criteria.warn_margin_fraction)
    sc = scenario
    # 15-min demand from the minute means (exact: the mean of the means)
    wmeans = _window_means(mins["p_import_mw"], max(1, m_win // per_min))
    chk.upper(sc, "POC", "grid_import_max_mw", stats["import_max_mw"], cap, "MW",
              "Firm import cap at the sum of the incomers, every step (grid connection agreement, seed case)")
    chk.upper(sc, "POC", "demand_15min_max_mw", float(wmeans.max()), cap, "MW",
              "Firm import cap as the 15-minute mean demand the utility meter bills (DESIGN.md)")
    for j, bname in enumerate(coords["bus"]):
        worst = vm_lo[j] if (vm_lo[j] - lo_b[j]) < (hi_b[j] - vm_hi[j]) else vm_hi[j]
        chk.band(sc, bname, "vm_pu_worst", float(worst), lo_b[j], hi_b[j], "pu", bands[j][2])
    for kind, arr in (("line", line_hi), ("trafo", trafo_hi)):
        lim, crit = loading_limit(case, kind)
        for j, bname in enumerate(coords[kind]):
            chk.upper(sc, bname, "loading_max_percent", float(arr[j]), lim, "%", crit)
    dt_h_min = 1.0 / 60.0
    days = n_min / 1440.0
    claims = _claims(case, ds, {"emap": emap}, dt_h_min, cap, econ, chk, sc)
    checks = chk.frame()
    hot_bad = float("nan")
    if th_ds is not None:
        lim_hs = (th_ds.hot_spot_max_degc + th_ds.hot_spot_margin_k).values
        hot_bad = float((th_ds.hot_spot_degc.values > lim_hs[:, None]).any(axis=0).sum())
    dis_mwh = float(np.maximum(mins["p_battery_mw"], 0).sum() * dt_h_min)
    chg_mwh = float(np.maximum(-mins["p_battery_mw"], 0).sum() * dt_h_min)
    pb = mins["p_battery_mw"]
    r_use = float(lin.energy_mwh * (lin.soc_max - lin.soc_min) * lin.eta_discharge)
    summary = {
        "scenario": scenario, "steps": int(n_min * per_min), "resolution_s": dt_s, "streamed": True,
        "chunk_days": chunk_days, "period_start": str(start), "period_end": str(end), "strategy": "rules",
        "grid_import_max_mw": stats["import_max_mw"], "cap_mw": cap,
        "cap_exceeded_minutes": stats["above_cap_s"] / 60.0,
        "cap_exceeded_max_mw": max(stats["import_max_mw"] - cap, 0.0),
        "cap_exceeded_energy_mwh": stats["above_cap_mwh"], "cap_exceeded_events": stats["events"],
        "cap_exceeded_longest_min": stats["longest"] * dt_s / 60.0,
        "cap_exceeded_15min_intervals": int((wmeans > cap + 1e-9).sum()),
        "curtailed_energy_mwh": float(mins["p_curtailed_mw"].sum() * dt_h_min),
        "demand_15min_max_mw": float(wmeans.max()),
        "shed_energy_mwh": float(mins["p_shed_mw"].sum() * dt_h_min),
        "voltage_violation_minutes": stats["voltage_bad_s"] / 60.0,
        "power_factor_min": stats["pf_min"] if np.isfinite(stats["pf_min"]) else float("nan"),
        "energy_balance_error_rel": bal["error_rel"],
        "import_energy_mwh": bal["import_mwh"], "pv_energy_mwh": bal["pv_mwh"], "losses_energy_mwh": bal["losses_mwh"],
        "battery_discharge_mwh": float(np.maximum(pb, 0).sum() * dt_h_min),
        "battery_charge_mwh": float(np.maximum(-pb, 0).sum() * dt_h_min),
        "battery_aux_mwh": float(mins["p_battery_aux_mw"].sum() * dt_h_min),
        "soc_min": float(mins["soc"].min()), "soc_max": float(mins["soc"].max()),
        "battery_equivalent_full_cycles": float(np.maximum(pb, 0).sum() * dt_h_min) / r_use,
        "t_cell_max_degc": stats["t_cell_max_degc"],
        **_economic_figures(econ),
        "cable_loading_max_percent": float(np.nanmax(line_hi)),
        "transformer_hotspot_max_degc": float(th_ds.hot_spot_max_degc.max()) if th_ds is not None else float("nan"),
        "transformer_loss_of_life_max_days": (float(th_ds.loss_of_life_days.values[:, -1].max()) if th_ds is not None
                                              else float("nan")),
        "line_overload_minutes": stats["line_over_s"] / 60.0, "trafo_overload_minutes": stats["trafo_over_s"] / 60.0,
        "hot_spot_violation_minutes": hot_bad, "soc_violation_minutes": stats["soc_bad_s"] / 60.0,
        "cell_temperature_violation_minutes": stats["t_cell_bad_s"] / 60.0,
        "battery_equivalent_full_cycles_per_year": dis_mwh / r_use * 365.0 / days,
        "battery_round_trip_ac": (dis_mwh / chg_mwh if chg_mwh > 0 and abs(mins["soc"][-1] - cont.soc_max) < 0.01
                                  else float("nan")),
        **_fade(index_min, {"soc": mins["soc"], "t_cell_max_degc": t_cell_min}, days),
        **claims,
        "loss_iterations": [{"iteration": "loss model", "steps_solved": model.samples, "rmse_kw": model.rmse_kw,
                             "import_vs_dispatch_max_mw": stats["mismatch_max_mw"]}],
        "loss_iteration_converged": bool(stats["mismatch_max_mw"] < ts.loss_tolerance_mw),
        "import_vs_dispatch_max_mw": stats["mismatch_max_mw"], "loss_model_rmse_kw": model.rmse_kw,
        "load_flow_not_converged_steps": stats["not_converged"],
        "timing_s": {"total": _time.perf_counter() - t_start, **timing},
    }
    summary = {**counts(checks), **summary}
    return StudyResult(name, finalize(ds, NAME, case), checks, summary)


_META = {
    "p_import_mw": ("MW", "grid import at the point of connection (minute mean)"),
    "q_import_mvar": ("Mvar", "reactive import at the point of connection (minute mean)"),
    "losses_mw": ("MW", "network active losses (minute mean)"),
    "p_it_mw": ("MW", "IT power demanded, all halls, before shedding (minute mean)"),
    "p_shed_mw": ("MW", "IT power shed to hold the cap (minute mean)"),
    "p_cooling_mw": ("MW", "cooling plant power (minute mean)"),
    "p_pv_mw": ("MW", "PV AC power fed in (minute mean)"),
    "p_pv_available_mw": ("MW", "PV AC power available (minute mean)"),
    "p_curtailed_mw": ("MW", "PV power curtailed (minute mean)"),
    "p_battery_mw": ("MW", "battery AC power, + discharging (minute mean)"),
    "p_battery_aux_mw": ("MW", "battery auxiliaries (minute mean)"),
    "soc": ("1", "battery SOC at the end of the minute"),
}
