"""Rule-based real-time battery dispatch over a horizon (numba kernel, one pass over the steps).

At each step the battery's AC power ``p`` (+ discharge) is bounded and chosen in a fixed order of priority; a
lower rule can only act inside the range the higher ones leave:

1. limits: the ratings, the BMS's available charge/discharge power at this step (optional arrays), the SOC
   window;
2. backup reserve: no discharge below the SOC floor that holds ``reserve_mw`` for ``reserve_min``; a horizon that
   starts below the floor never goes below its starting SOC and, unless a charge is wished anyway, recharges to the
   floor within the cap headroom (the LP uses the same floor, ``min(floor, soc0)``);
3. no export (reverse-power protection): grid import ``load - p >= 0``; a PV surplus the battery cannot absorb is
   curtailed (reported);
4. firm cap: import <= cap - margin at every step, and the demand-window mean <= demand cap - margin (windows of
   ``window_min`` from the first step; the step's allowance is what keeps the window mean under the cap if the
   rest of the window sits at the cap);
5. the wish: a schedule to follow (``p_target_mw``, e.g. the LP's) or else the tariff period's action:
   arbitrage discharge down to ``arbitrage_soc_min`` (no export keeps it to the load, which is PV
   self-consumption), charge or recharge within the headroom under the cap (and under ``charge_ceiling_mw``, if
   given: e.g. the month's peak demand of the load alone, so that charging does not raise the demand charge), or
   idle.

If the cap still cannot be held, a shedding hook (``p_shed_max_mw``: e.g. GPU power capping available per step)
takes the import back to the cap target after the battery; what remains above the cap is ``p_unmet_mw``.

Written here, not taken from a library: no maintained Python package implements this rule stack with the
Chinese 15-minute demand cap; the kernel is a numba loop (a year at 1 min is a few milliseconds once compiled).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from .model import ACTIONS, EmsSettings, LinearBattery, check_dt, check_series, check_soc0

__all__ = ["RULES", "DispatchResult", "dispatch_rules", "event_summary", "RulesInputs", "rules_inputs", "run_kernel"]

#: rule code -> name, as in ``DispatchResult.rule`` (the rule that set the battery's power at each step)
RULES = ("idle", "limits", "reserve", "no_export", "cap", "arbitrage", "recharge", "schedule")
_IDLE, _LIMITS, _RESERVE, _NO_EXPORT, _CAP, _ARBITRAGE, _RECHARGE, _SCHEDULE = range(8)


@njit(cache=True)
def _kernel(load, action, target, use_target, ch_lim, dis_lim, shed_max, ceil, dt_h, e_mwh, eta_c, eta_d, soc_min,
            soc_max, floor, hold, arb_floor, recharge_soc, cap_inst, cap_mean, cap_report, m, soc0, used0, k0,
            p_out, g_out, soc_out, unmet_out, shed_out, curt_out, rule_out):
    n = load.shape[0]
    soc = soc0
    used = used0    # sum of import over the current demand window so far (MW x steps)
    k = k0          # steps of the current window done
    to_mw_d = e_mwh * eta_d / dt_h      # SOC -> deliverable AC MW over one step
    to_mw_c = e_mwh / (eta_c * dt_h)    # SOC -> AC MW of charging over one step
    for t in range(n):
        if k == m:
            k = 0
            used = 0.0
        load_t = load[t]
        # 1-2. limits, SOC window, reserve
        hi = dis_lim[t]
        hi_code = _LIMITS
        e_dis = (soc - hold) * to_mw_d
        if e_dis < hi:
            hi = e_dis if e_dis > 0.0 else 0.0
            hi_code = _RESERVE if hold > soc_min else _LIMITS
        lo = -ch_lim[t]
        lo_code = _LIMITS
        e_ch = (soc_max - soc) * to_mw_c
        if e_ch < -lo:
            lo = -(e_ch if e_ch > 0.0 else 0.0)
        # 3. no export: p <= load (a surplus beyond the charge limit is curtailed)
        if load_t < hi:
            hi = load_t if load_t > lo else lo
            hi_code = _NO_EXPORT
        # 4. firm cap: p >= load - allowance
        allow = cap_mean * (k + 1) - used
        if cap_inst < allow:
            allow = cap_inst
        need = load_t - allow
        short = need > hi     # the cap cannot be held: the rule that bounds the discharge is the reason
        if need > lo:
            lo = need if need < hi else hi
            lo_code = _CAP
        headroom = (allow if allow < ceil[t] else ceil[t]) - load_t   # charging: under the cap and the ceiling
        if headroom < 0.0:
            headroom = 0.0
        # 5. the wish
        if use_target:
            wish = target[t]
            code = _SCHEDULE
        else:
            a = action[t]
            if a == 1:
                wish = dis_lim[t]     # all it may; the reserve floor bounds it (attributed to the reserve)
                if arb_floor > hold:
                    wish = (soc - arb_floor) * to_mw_d
                    if wish < 0.0:
                        wish = 0.0
                code = _ARBITRAGE
            elif a == 2 or a == 3:
                goal = soc_max if a == 2 else recharge_soc
                room = (goal - soc) * to_mw_c
                if room < 0.0:
                    room = 0.0
                wish = -(room if room < headroom else headroom)
                code = _ARBITRAGE if a == 2 else _RECHARGE
            else:
                wish = 0.0
                code = _IDLE
            if soc < floor and wish >= 0.0:
                room = (floor - soc) * to_mw_c
                wish = -(room if room < headroom else headroom)
                code = _RESERVE
        if wish < lo:
            p = lo
            code = lo_code
        elif wish > hi:
            p = hi
            code = hi_code
        else:
            p = wish
        if short:
            code = hi_code
        # grid, curtailment, shedding, unmet
        g = load_t - p
        curt = 0.0
        if g < 0.0:
            curt = -g
            g = 0.0
        shed = 0.0
        over = g - (allow if allow > 0.0 else 0.0)
        if over > 0.0:
            shed = over if over < shed_max[t] else shed_max[t]
            g -= shed
        unmet = g - cap_report
        p_out[t] = p
        g_out[t] = g
        curt_out[t] = curt
        shed_out[t] = shed
        unmet_out[t] = unmet if unmet > 0.0 else 0.0
        rule_out[t] = code
        # SOC
        if p >= 0.0:
            soc -= p * dt_h / (e_mwh * eta_d)
        else:
            soc -= p * eta_c * dt_h / e_mwh
        if soc < soc_min:
            soc = soc_min
        elif soc > soc_max:
            soc = soc_max
        soc_out[t] = soc
        used += g
        k += 1


@dataclass
class DispatchResult:
    """Dispatch over a horizon: arrays of one value per step (means over the step), plus the summary.

    Attributes
    ----------
    p_battery_mw : battery AC power, + discharging (MW)
    p_grid_mw : grid import, + drawing (MW); ``net_load - p_battery + p_curtailed - p_shed``
    soc : SOC at the end of each step (0-1)
    p_unmet_mw : import above the firm cap after battery and shedding (MW)
    p_shed_mw : load shed by the shedding hook (MW)
    p_curtailed_mw : PV surplus curtailed because neither the grid (no export) nor the battery took it (MW)
    rule : int8 code of the rule that set the battery power (names in :data:`RULES`)
    summary : dict of key figures (see :func:`event_summary`)
    """

    p_battery_mw: np.ndarray
    p_grid_mw: np.ndarray
    soc: np.ndarray
    p_unmet_mw: np.ndarray
    p_shed_mw: np.ndarray
    p_curtailed_mw: np.ndarray
    rule: np.ndarray
    dt_min: float
    summary: dict

    def rule_names(self) -> np.ndarray:
        """The rule that set the battery power at each step, by name."""
        return np.asarray(RULES, dtype=object)[self.rule].astype(str)

    def to_dataset(self, time=None):
        """The arrays as an xarray Dataset (dimension ``time``; ``units`` and ``long_name`` attributes)."""
        import xarray as xr

        n = self.p_grid_mw.shape[0]
        coords = {"time": time if time is not None else np.arange(n)}
        meta = {"p_battery_mw": ("MW", "battery AC power, + discharging"),
                "p_grid_mw": ("MW", "grid import at the incomers, + drawing"),
                "soc": ("1", "battery SOC at the end of the step"),
                "p_unmet_mw": ("MW", "import above the firm cap after battery and shedding"),
                "p_shed_mw": ("MW", "load shed by the shedding hook"),
                "p_curtailed_mw": ("MW", "PV surplus curtailed (no export)")}
        ds = xr.Dataset({k: ("time", getattr(self, k), {"units": u, "long_name": ln})
                         for k, (u, ln) in meta.items()}, coords=coords)
        ds["rule"] = ("time", self.rule, {"long_name": "rule that set the battery power",
                                          "flag_values": list(range(len(RULES))), "flag_meanings": " ".join(RULES)})
        ds.attrs.update({k: v for k, v in self.summary.items() if np.isscalar(v)})
        return ds


def event_summary(p_grid_mw, p_unmet_mw, p_shed_mw, p_curtailed_mw, dt_min: float, cap_mw: float,
                  demand_cap_mw: float, window_steps: int) -> dict:
    """Key figures of a dispatch: energy and duration above the cap, the longest event, shedding, curtailment,
    the highest demand-window mean and how many windows exceeded the demand cap."""
    dt_h = dt_min / 60.0
    over = p_unmet_mw > 1e-9
    longest = 0
    if over.any():
        edges = np.diff(np.concatenate(([0], over.astype(np.int8), [0])))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        longest = int((ends - starts).max())
    n = p_grid_mw.shape[0]
    nw = -(-n // window_steps)
    pad = np.zeros(nw * window_steps)
    pad[:n] = p_grid_mw
    counts = np.full(nw, window_steps, dtype=float)
    counts[-1] = n - (nw - 1) * window_steps
    means = pad.reshape(nw, window_steps).sum(axis=1) / counts
    return {"cap_mw": float(cap_mw), "unmet_mwh": float(p_unmet_mw.sum() * dt_h),
            "unmet_max_mw": float(p_unmet_mw.max(initial=0.0)), "unmet_h": float(over.sum() * dt_h),
            "unmet_longest_h": longest * dt_h, "shed_mwh": float(p_shed_mw.sum() * dt_h),
            "shed_max_mw": float(p_shed_mw.max(initial=0.0)), "curtailed_mwh": float(p_curtailed_mw.sum() * dt_h),
            "import_mwh": float(p_grid_mw.sum() * dt_h), "import_max_mw": float(p_grid_mw.max(initial=0.0)),
            "demand_max_mw": float(means.max()),
            "demand_windows_over_cap": int((means > demand_cap_mw + 1e-9).sum())}


def _per_step(name, x, n, default):
    if x is None:
        return np.full(n, default)
    if np.ndim(x) == 0:
        v = float(x)
        if np.isnan(v) or v < 0:
            raise ValueError(f"{name} must be >= 0, found {x!r}")
        return np.full(n, v)
    return check_series(name, x, n, allow_inf=True, nonneg=True)


@dataclass
class RulesInputs:
    """The per-step arrays and constants the rules kernel takes, prepared once for a horizon (see
    :func:`rules_inputs`); :func:`run_kernel` runs any slice of it, so a closed loop can dispatch interval by
    interval, changing the BMS limits (``ch``, ``dis``) between intervals."""

    action: np.ndarray
    target: np.ndarray
    use_target: bool
    ch: np.ndarray
    dis: np.ndarray
    shed: np.ndarray
    ceil: np.ndarray
    dt_h: float
    battery: LinearBattery
    settings: EmsSettings
    floor: float
    arb: float
    rech: float
    m: int


def rules_inputs(n: int, dt_min: float, battery: LinearBattery, settings: EmsSettings, periods=None,
                 p_target_mw=None, p_charge_limit_mw=None, p_discharge_limit_mw=None,
                 p_shed_max_mw=None, charge_ceiling_mw=None) -> RulesInputs:
    """Check and prepare the inputs of :func:`dispatch_rules` (same parameters) for ``n`` steps."""
    dt = check_dt(dt_min)
    if periods is None:
        action = np.zeros(n, dtype=np.int8)
    else:
        per = np.asarray(periods).astype(str)
        if per.shape != (n,):
            raise ValueError(f"periods must have one value per step ({n}), found shape {per.shape}")
        names, inv = np.unique(per, return_inverse=True)
        unknown = [p for p in names if p not in settings.period_actions]
        if unknown:
            raise ValueError(f"periods: no action in settings.period_actions for {unknown}")
        action = np.array([ACTIONS[settings.period_actions[p]] for p in names], dtype=np.int8)[inv]
    use_target = p_target_mw is not None
    target = check_series("p_target_mw", p_target_mw, n) if use_target else np.zeros(n)
    ch = np.minimum(_per_step("p_charge_limit_mw", p_charge_limit_mw, n, np.inf), battery.p_charge_max_mw)
    dis = np.minimum(_per_step("p_discharge_limit_mw", p_discharge_limit_mw, n, np.inf), battery.p_discharge_max_mw)
    shed = _per_step("p_shed_max_mw", p_shed_max_mw, n, 0.0)
    ceil = _per_step("charge_ceiling_mw", charge_ceiling_mw, n, np.inf)
    floor = settings.reserve_soc(battery)
    arb = floor if settings.arbitrage_soc_min is None else max(floor, settings.arbitrage_soc_min)
    rech = battery.soc_max if settings.recharge_soc is None else min(settings.recharge_soc, battery.soc_max)
    return RulesInputs(action=action, target=target, use_target=use_target, ch=ch, dis=dis, shed=shed, ceil=ceil,
                       dt_h=dt / 60.0, battery=battery, settings=settings, floor=floor, arb=arb, rech=rech,
                       m=settings.window_steps(dt))


def run_kernel(a: RulesInputs, sl: slice, load: np.ndarray, soc0: float, used0: float, k0: int, out: dict,
               rule: np.ndarray) -> None:
    """Run the rules over the steps ``sl`` of a prepared horizon from ``soc0``, with the demand window holding
    ``k0`` steps whose import sums to ``used0`` (MW x steps) so far; ``load`` and the arrays of ``out`` (keys
    ``p, g, soc, unmet, shed, curt``) and ``rule`` have the length of the slice."""
    b, s = a.battery, a.settings
    _kernel(load, a.action[sl], a.target[sl], a.use_target, a.ch[sl], a.dis[sl], a.shed[sl], a.ceil[sl], a.dt_h,
            b.energy_mwh,
            b.eta_charge, b.eta_discharge, b.soc_min, b.soc_max, a.floor, min(a.floor, soc0), a.arb, a.rech,
            s.cap_target_mw(), s.demand_target_mw(), s.cap_mw, a.m, soc0, used0, k0, out["p"], out["g"],
            out["soc"], out["unmet"], out["shed"], out["curt"], rule)


def dispatch_rules(net_load_mw, dt_min: float, battery: LinearBattery, settings: EmsSettings, soc0: float,
                   periods=None, p_target_mw=None, p_charge_limit_mw=None, p_discharge_limit_mw=None,
                   p_shed_max_mw=None, charge_ceiling_mw=None) -> DispatchResult:
    """Rule-based dispatch of the battery over a horizon (priorities in the module docstring).

    Parameters
    ----------
    net_load_mw : array_like, shape (n,)
        Site load minus PV at the incomers without the battery (MW; negative: PV surplus), step means.
    dt_min : float
        Step length (min), > 0.
    battery : LinearBattery
    settings : EmsSettings
        Cap, margin, demand window, reserve, period actions.
    soc0 : float
        SOC at the start of the first step, within the battery's window.
    periods : array_like of str, shape (n,), optional
        Tariff period of each step (:func:`twin.tariff.period`); its action comes from
        ``settings.period_actions``. None: idle (cap, no export and reserve only) unless a target is given.
    p_target_mw : array_like, shape (n,), optional
        Battery power to follow (MW, + discharge), e.g. :func:`twin.ems.lp.schedule_lp`'s; replaces the period
        actions; the higher-priority rules still override it.
    p_charge_limit_mw, p_discharge_limit_mw : float or array_like (n,), optional
        BMS available power (MW, magnitudes), further limiting the battery's ratings.
    p_shed_max_mw : float or array_like (n,), optional
        Load that may be shed after the battery to hold the cap (MW, e.g. GPU power capping); default none.
    charge_ceiling_mw : float or array_like (n,), optional
        Grid import (MW) up to which the battery may charge (arbitrage, recharge, reserve), below the cap: e.g. the
        month's peak demand of the load alone, so that charging never raises the billed maximum demand; default
        none (the cap).

    Returns
    -------
    DispatchResult
    """
    dt = check_dt(dt_min)
    load = check_series("net_load_mw", net_load_mw, None)
    n = load.shape[0]
    s0 = check_soc0(soc0, battery)
    a = rules_inputs(n, dt, battery, settings, periods, p_target_mw, p_charge_limit_mw, p_discharge_limit_mw,
                     p_shed_max_mw, charge_ceiling_mw)
    out = {k: np.empty(n) for k in ("p", "g", "soc", "unmet", "shed", "curt")}
    rule = np.empty(n, dtype=np.int8)
    run_kernel(a, slice(0, n), load, s0, 0.0, 0, out, rule)
    demand_cap = settings.cap_mw if settings.demand_cap_mw is None else settings.demand_cap_mw
    summary = event_summary(out["g"], out["unmet"], out["shed"], out["curt"], dt, settings.cap_mw, demand_cap, a.m)
    summary["reserve_soc"] = a.floor
    return DispatchResult(p_battery_mw=out["p"], p_grid_mw=out["g"], soc=out["soc"], p_unmet_mw=out["unmet"],
                          p_shed_mw=out["shed"], p_curtailed_mw=out["curt"], rule=rule, dt_min=dt,
                          summary=summary)
