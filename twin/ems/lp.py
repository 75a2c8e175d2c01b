"""Optimal day-ahead battery schedule as a linear program (scipy's HiGHS), and the day-ahead + real-time loop.

Variables per step t (MW unless said): charge ``c_t >= 0`` and discharge ``d_t >= 0`` (AC), import ``g_t >= 0``
(no export), SOC at the end of the step ``s_t``, curtailed PV ``k_t`` (0 .. the surplus), slack above the
instantaneous cap ``u_t >= 0``; per demand window, slack above the demand cap ``v_w >= 0``; optionally the
highest window-mean import ``P`` (for a demand charge).

Constraints: ``g_t = L_t - d_t + c_t + k_t``; ``s_t = s_{t-1} + (eta_c c_t - d_t / eta_d) dt / E``;
``c_t``, ``d_t`` within the ratings and BMS limits; ``s_t`` within ``[reserve floor, soc_max]`` (the floor lowered
to ``soc0`` when the day starts below it); ``g_t - u_t <= cap - margin``; window mean
``g - v_w <= demand cap - margin``; window mean ``g <= P``; ``s_{n-1} + w >= soc_end_min`` with a slack ``w >= 0``.

Objective (CNY): sum of ``price_t x g_t x dt`` + ``demand_cny_per_mw x P`` + ``penalty x`` (energy above the caps)
+ a smaller penalty on the end-SOC shortfall ``w`` (100 x the highest price per MWh stored, at most a tenth of
``penalty``: priority cap > end SOC > cost, so a day that cannot both hold the cap and end full holds the cap)
+ a vanishing cost on throughput (1e-7 of the mean energy price) that removes simultaneous charge and discharge.

Standard formulation (e.g. the storage arbitrage LPs of the energy-systems literature); written here on
``scipy.optimize.linprog(method="highs-ipm")`` with sparse matrices, since the project already depends on scipy.
HiGHS's interior point (with crossover to a vertex) solves a 1-minute day in about 0.15 s; its dual simplex took
about 0.5 s on the same LPs, slowed by the tiny throughput cost.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from .model import EmsSettings, LinearBattery, check_dt, check_series, check_soc0
from .rules import DispatchResult, dispatch_rules, event_summary

__all__ = ["LpSchedule", "schedule_lp", "persistence_forecast", "dispatch_day_ahead"]


@dataclass
class LpSchedule:
    """The LP's schedule (arrays of one value per step) and its cost.

    Attributes
    ----------
    p_battery_mw : net battery AC power, + discharging (MW): ``p_discharge_mw - p_charge_mw``
    p_charge_mw, p_discharge_mw : AC charge and discharge power (MW, >= 0)
    p_grid_mw : grid import (MW, >= 0)
    soc : SOC at the end of each step
    p_curtailed_mw : PV surplus curtailed (MW)
    p_over_cap_mw : import above cap - margin the LP could not avoid (MW)
    energy_cny : energy cost of ``p_grid_mw`` at the given prices (CNY)
    demand_max_mw : highest demand-window mean import (MW)
    objective_cny : the LP's objective (energy + demand charge + penalties)
    solve_s : wall time of the HiGHS solve (s)
    """

    p_battery_mw: np.ndarray
    p_charge_mw: np.ndarray
    p_discharge_mw: np.ndarray
    p_grid_mw: np.ndarray
    soc: np.ndarray
    p_curtailed_mw: np.ndarray
    p_over_cap_mw: np.ndarray
    energy_cny: float
    demand_max_mw: float
    objective_cny: float
    solve_s: float


def _limit(name, x, n, rating):
    if x is None:
        return np.full(n, rating)
    v = np.full(n, float(x)) if np.ndim(x) == 0 else check_series(name, x, n, allow_inf=True)
    if np.isnan(v).any() or (v < 0).any():
        raise ValueError(f"{name} must be >= 0 at every step")
    return np.minimum(v, rating)


def schedule_lp(net_load_mw, price_cny_per_kwh, dt_min: float, battery: LinearBattery, settings: EmsSettings,
                soc0: float, soc_end_min: float | None = None, p_charge_limit_mw=None,
                p_discharge_limit_mw=None, demand_cny_per_mw: float = 0.0,
                penalty_cny_per_mwh: float = 1e6) -> LpSchedule:
    """Least-cost battery schedule over a horizon with perfect knowledge of ``net_load_mw`` (a forecast).

    Parameters
    ----------
    net_load_mw : array_like, shape (n,)
        Forecast site load minus PV (MW), step means.
    price_cny_per_kwh : array_like, shape (n,)
        Energy price of each step (:func:`twin.tariff.price`), CNY/kWh.
    dt_min : float
        Step length (min).
    battery, settings : LinearBattery, EmsSettings
        As for :func:`twin.ems.rules.dispatch_rules` (``period_actions`` is not used here).
    soc0 : float
        SOC at the start.
    soc_end_min : float, optional
        Lowest SOC at the end of the horizon (e.g. ``soc0`` for a repeatable day); default the reserve floor.
    p_charge_limit_mw, p_discharge_limit_mw : float or array_like, optional
        BMS available power (MW) per step.
    demand_cny_per_mw : float
        Weight of the highest window-mean import in the objective (CNY/MW); scale a monthly demand charge to the
        horizon yourself. 0: energy charges only.
    penalty_cny_per_mwh : float
        Cost of energy imported above the caps (CNY/MWh): large, so the cap is held whenever it can be.

    Returns
    -------
    LpSchedule

    Raises
    ------
    ValueError
        Bad inputs; RuntimeError if HiGHS fails (it should not: the slacks keep the LP feasible).
    """
    dt = check_dt(dt_min)
    load = check_series("net_load_mw", net_load_mw, None)
    n = load.shape[0]
    price = check_series("price_cny_per_kwh", price_cny_per_kwh, n)
    s0 = check_soc0(soc0, battery)
    if not (np.isfinite(demand_cny_per_mw) and demand_cny_per_mw >= 0):
        raise ValueError(f"demand_cny_per_mw must be >= 0, found {demand_cny_per_mw!r}")
    if not (np.isfinite(penalty_cny_per_mwh) and penalty_cny_per_mwh > 0):
        raise ValueError(f"penalty_cny_per_mwh must be > 0, found {penalty_cny_per_mwh!r}")
    ch = _limit("p_charge_limit_mw", p_charge_limit_mw, n, battery.p_charge_max_mw)
    dis = _limit("p_discharge_limit_mw", p_discharge_limit_mw, n, battery.p_discharge_max_mw)
    floor = settings.reserve_soc(battery)
    s_lo = min(floor, s0)
    if soc_end_min is not None:
        e = float(soc_end_min)
        if not (np.isfinite(e) and 0.0 <= e <= battery.soc_max):
            raise ValueError(f"soc_end_min must be within [0, soc_max={battery.soc_max:g}], found {soc_end_min!r}")
    m = settings.window_steps(dt)
    nw = -(-n // m)
    dt_h = dt / 60.0
    a = battery.eta_charge * dt_h / battery.energy_mwh
    b = dt_h / (battery.eta_discharge * battery.energy_mwh)
    with_p = demand_cny_per_mw > 0
    # variable layout
    ic, idis, ig, isoc, ik, iu, iv = (np.arange(n) + j * n for j in range(7))
    iv = 6 * n + np.arange(nw)
    ip = 6 * n + nw
    iw = ip + (1 if with_p else 0)     # shortfall of the end SOC under soc_end_min
    nv = iw + 1
    t = np.arange(n)
    win = t // m
    cnt = np.bincount(win, minlength=nw).astype(float)
    # equalities: balance, SOC dynamics
    one = np.ones(n)
    rows = np.concatenate([t, t, t, t, n + t, n + t[1:], n + t, n + t])
    cols = np.concatenate([ig, ic, idis, ik, isoc, isoc[:-1], ic, idis])
    vals = np.concatenate([one, -one, one, -one, one, -one[1:], -a * one, b * one])
    a_eq = sp.csr_array((vals, (rows, cols)), shape=(2 * n, nv))
    b_eq = np.concatenate([load, np.zeros(n)])
    b_eq[n] = s0
    # inequalities: instantaneous cap, window-mean cap, (demand peak)
    rows = [t, t, n + win, n + np.arange(nw)]
    cols = [ig, iu, ig, iv]
    vals = [one, -one, 1.0 / cnt[win], -np.ones(nw)]
    b_ub = [np.full(n, settings.cap_target_mw()), np.full(nw, settings.demand_target_mw())]
    if with_p:
        rows += [n + nw + win, n + nw + np.arange(nw)]
        cols += [ig, np.full(nw, ip)]
        vals += [1.0 / cnt[win], -np.ones(nw)]
        b_ub.append(np.zeros(nw))
    if soc_end_min is not None:
        rows.append(np.array([n + nw * (2 if with_p else 1)] * 2))
        cols.append(np.array([isoc[-1], iw]))
        vals.append(np.array([-1.0, -1.0]))
        b_ub.append(np.array([-max(s_lo, min(float(soc_end_min), battery.soc_max))]))
    nrow = n + nw * (2 if with_p else 1) + (1 if soc_end_min is not None else 0)
    a_ub = sp.csr_array((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(nrow, nv))
    b_ub = np.concatenate(b_ub)
    # bounds
    lo = np.zeros(nv)
    hi = np.full(nv, np.inf)
    hi[ic], hi[idis] = ch, dis
    lo[isoc], hi[isoc] = s_lo, battery.soc_max
    hi[ik] = np.maximum(-load, 0.0)
    # objective
    e_cost = price * 1000.0 * dt_h                       # CNY per MW over one step
    # missing end SOC costs more than any arbitrage gain, less than breaking the cap (CNY per MWh stored)
    end_penalty = min(max(100.0 * 1000.0 * float(np.abs(price).max()), 1.0), 0.1 * penalty_cny_per_mwh)
    eps = 1e-7 * max(float(np.abs(e_cost).mean()), 1e-12)
    cost = np.zeros(nv)
    cost[ig] = e_cost
    cost[ic] = eps
    cost[idis] = eps
    cost[iu] = penalty_cny_per_mwh * dt_h
    cost[iv] = penalty_cny_per_mwh * dt_h * cnt
    if with_p:
        cost[ip] = demand_cny_per_mw
    cost[iw] = end_penalty * battery.energy_mwh
    t0 = time.perf_counter()
    res = linprog(cost, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=np.column_stack([lo, hi]),
                  method="highs-ipm")
    if res.status != 0:   # HiGHS's interior point can declare a degenerate day infeasible (seen when the day
        # starts below the reserve floor); the dual simplex solves the same LP
        res = linprog(cost, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=np.column_stack([lo, hi]),
                      method="highs-ds")
    solve_s = time.perf_counter() - t0
    if res.status != 0:
        raise RuntimeError(f"schedule_lp: HiGHS did not solve the LP: {res.message}")
    x = res.x
    c, d = x[ic], x[idis]
    g = np.maximum(x[ig], 0.0)
    pad = np.zeros(nw * m)
    pad[:n] = g
    return LpSchedule(p_battery_mw=d - c, p_charge_mw=c, p_discharge_mw=d, p_grid_mw=g, soc=x[isoc],
                      p_curtailed_mw=x[ik], p_over_cap_mw=x[iu], energy_cny=float(e_cost @ g),
                      demand_max_mw=float((pad.reshape(nw, m).sum(axis=1) / cnt).max()),
                      objective_cny=float(res.fun), solve_s=solve_s)


def persistence_forecast(net_load_mw, dt_min: float, first_day_mw=None) -> np.ndarray:
    """Yesterday's load as today's forecast: ``f[t] = L[t - one day]``.

    The first day has no yesterday: ``first_day_mw`` (the day before the horizon) if given, else the first day
    itself (a perfect forecast for that day).
    """
    dt = check_dt(dt_min)
    load = check_series("net_load_mw", net_load_mw, None)
    spd = _steps_per_day(dt)
    f = np.empty_like(load)
    f[spd:] = load[:-spd] if load.shape[0] > spd else f[spd:]
    head = load[:spd] if first_day_mw is None else check_series("first_day_mw", first_day_mw, spd)
    f[:spd] = head[: min(spd, load.shape[0])]
    return f


def _steps_per_day(dt: float) -> int:
    spd = 1440.0 / dt
    if abs(spd - round(spd)) > 1e-6:
        raise ValueError(f"dt_min must divide a day (1440 min), found {dt:g}")
    return int(round(spd))


def dispatch_day_ahead(net_load_mw, forecast_mw, price_cny_per_kwh, dt_min: float, battery: LinearBattery,
                       settings: EmsSettings, soc0: float, p_charge_limit_mw=None, p_discharge_limit_mw=None,
                       p_shed_max_mw=None, demand_cny_per_mw: float = 0.0, soc_end_min: float | None = None):
    """Day by day: an LP schedule on the forecast from the actual SOC at the start of the day, then the rules on
    the actual load following that schedule (the rules' limits, reserve, no export and cap override it).

    Parameters
    ----------
    net_load_mw, forecast_mw : array_like, shape (n,)
        Actual and forecast net load (MW); pass the actual as the forecast for a perfect forecast, or
        :func:`persistence_forecast`.
    price_cny_per_kwh : array_like, shape (n,)
    dt_min, battery, settings, soc0, p_charge_limit_mw, p_discharge_limit_mw, p_shed_max_mw
        As for :func:`twin.ems.rules.dispatch_rules` (the limits apply to the LP too).
    demand_cny_per_mw : float
        Demand-charge weight per day's LP (see :func:`schedule_lp`).
    soc_end_min : float, optional
        End-of-day SOC each LP must keep; default: the SOC the day starts with.

    Returns
    -------
    (DispatchResult, list of LpSchedule)
        The real-time dispatch over the horizon, and each day's LP schedule.
    """
    dt = check_dt(dt_min)
    load = check_series("net_load_mw", net_load_mw, None)
    n = load.shape[0]
    fc = check_series("forecast_mw", forecast_mw, n)
    price = check_series("price_cny_per_kwh", price_cny_per_kwh, n)
    soc = check_soc0(soc0, battery)
    spd = _steps_per_day(dt)

    def keep(x, sl):
        return x if x is None or np.ndim(x) == 0 else np.asarray(x, dtype=float)[sl]

    results, plans = [], []
    for start in range(0, n, spd):
        sl = slice(start, min(start + spd, n))
        end = soc if soc_end_min is None else soc_end_min
        plan = schedule_lp(fc[sl], price[sl], dt, battery, settings, soc, soc_end_min=end,
                           p_charge_limit_mw=keep(p_charge_limit_mw, sl),
                           p_discharge_limit_mw=keep(p_discharge_limit_mw, sl), demand_cny_per_mw=demand_cny_per_mw)
        r = dispatch_rules(load[sl], dt, battery, settings, soc, p_target_mw=plan.p_battery_mw,
                           p_charge_limit_mw=keep(p_charge_limit_mw, sl),
                           p_discharge_limit_mw=keep(p_discharge_limit_mw, sl),
                           p_shed_max_mw=keep(p_shed_max_mw, sl))
        soc = float(r.soc[-1])
        results.append(r)
        plans.append(plan)
    cat = {k: np.concatenate([getattr(r, k) for r in results])
           for k in ("p_battery_mw", "p_grid_mw", "soc", "p_unmet_mw", "p_shed_mw", "p_curtailed_mw", "rule")}
    demand_cap = settings.cap_mw if settings.demand_cap_mw is None else settings.demand_cap_mw
    summary = event_summary(cat["p_grid_mw"], cat["p_unmet_mw"], cat["p_shed_mw"], cat["p_curtailed_mw"], dt,
                            settings.cap_mw, demand_cap, settings.window_steps(dt))
    summary["reserve_soc"] = results[0].summary["reserve_soc"]
    summary["energy_cny"] = float(price @ cat["p_grid_mw"] * 1000.0 * dt / 60.0)
    return DispatchResult(**cat, dt_min=dt, summary=summary), plans
