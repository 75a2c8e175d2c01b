"""The EMS in closed loop with the PCS and the electro-thermal battery system model, interval by interval.

Every control interval (``control_steps`` steps, e.g. 15 min) the EMS reads the battery system's state and limits
and dispatches the interval; the battery system then runs it and what it actually delivered is what the campus gets:

1. the SOC (capacity-weighted mean of the containers, :meth:`twin.battery.system.BatterySystem.soc`) becomes the
   linear model's SOC; the BMS's available charge and discharge power at the end of the last interval, converted
   to AC through the PCS curve, become the rules' power limits (``p_charge_limit_mw``, ``p_discharge_limit_mw``);
   the containers' auxiliary draw (HVAC, fixed load, PCS standby) at the end of the last interval is added to the
   load the EMS sees;
2. the rules (:mod:`twin.ems.rules`: limits, reserve, no export, cap, then the schedule or the tariff period's
   action) give the battery's AC power for each step of the interval; with ``strategy="lp"`` they follow a
   day-ahead LP schedule (:func:`twin.ems.lp.schedule_lp`) made at the start of each day on the forecast, from the
   battery system's actual SOC, in steps of the demand window (15 min) and held over each;
3. the AC power is shared evenly among the containers (as many as can each carry the PCS minimum, most charged
   first when discharging and least charged first when charging, within each one's available power), converted to DC
   through the PCS efficiency (:func:`twin.pcs.ac_to_dc`) and run on the battery system model, whose BMS may
   deliver less; the delivered DC power converted back to AC (:func:`twin.pcs.dc_to_ac`) is the battery's power;
4. the grid import that results (load + auxiliaries - battery - shedding; PV curtailed where it would be negative)
   carries the demand window on into the next interval.

So the battery's limits reach the EMS once per interval, and within an interval the battery system enforces them
itself (any shortfall shows up as grid import); ``control_steps=1`` closes the loop every step, at a higher cost in
Python calls. Written here because no library couples a rule-based EMS to a cell-level battery model.
"""

from __future__ import annotations

import numba
import numpy as np
from tqdm.auto import tqdm

from .lp import schedule_lp
from .model import EmsSettings, LinearBattery, check_series
from .rules import rules_inputs

__all__ = ["closed_loop", "share_among_containers"]

_SOC_EDGE = 1e-6


def share_among_containers(p_mw: np.ndarray, avail_dis_mw: np.ndarray, avail_ch_mw: np.ndarray, soc: np.ndarray,
                           p_min_mw: float) -> np.ndarray:
    """Share a total AC power (MW per step, + discharging) among containers.

    The power is shared evenly (which keeps the containers' SOC together and the losses low) among as many
    containers as can each carry at least ``p_min_mw`` (the PCS minimum), taken in order of SOC (highest first when
    discharging, lowest first when charging), each within its available power; a total below ``p_min_mw`` goes to
    one container when discharging and is dropped when charging (the PCS cannot convert it).

    Parameters
    ----------
    p_mw : array (m,)
        Total AC power per step (MW).
    avail_dis_mw, avail_ch_mw : array (nc,)
        Available discharge and charge AC power per container (MW, magnitudes).
    soc : array (nc,)
        SOC per container (orders the containers).
    p_min_mw : float
        PCS minimum power (MW) below which a PCS idles.

    Returns
    -------
    array (nc, m)
        AC power per container and step (MW); sums to ``p_mw`` where the available power allows.
    """
    from ._loopkernel import _share_step

    p = np.asarray(p_mw, dtype=float)
    dis = np.asarray(avail_dis_mw, dtype=float)
    ch = np.asarray(avail_ch_mw, dtype=float)
    nc = dis.shape[0]
    out = np.zeros((nc, p.shape[0]))
    orders = []
    for avail, order in ((dis, np.argsort(-np.asarray(soc), kind="stable")),
                         (ch, np.argsort(np.asarray(soc), kind="stable"))):
        ok = order[avail[order] >= p_min_mw] if p_min_mw > 0 else order[avail[order] > 0]
        orders.append(np.ascontiguousarray(ok, dtype=np.int64))
    share = np.empty(nc)
    for j in range(p.shape[0]):
        avail, order = (dis, orders[0]) if p[j] > 0 else (ch, orders[1])
        _share_step(p[j], avail, order, order.shape[0], p_min_mw, share)
        out[:, j] = share
    return out


def closed_loop(net_load_mw, t_out_degc, dt_min: float, battery: LinearBattery, settings: EmsSettings, system,
                pcs, *, aux_idle_mw: np.ndarray | None = None, periods=None, price_cny_per_kwh=None,
                forecast_mw=None, strategy: str = "rules", p_shed_max_mw=None, charge_ceiling_mw=None,
                control_steps: int = 15,
                progress: bool = False, state: dict | None = None, plans: dict | None = None) -> dict:
    """Run the EMS, the PCS and the battery system model in closed loop over a horizon (module docstring).

    Parameters
    ----------
    net_load_mw : array (n,)
        Campus load less PV at the incomers without the battery and its auxiliaries (MW), network losses included
        as far as they are known; step means.
    t_out_degc : array (n,)
        Outdoor temperature (degC), for the containers' thermal network.
    dt_min : float
        Step (min).
    battery, settings : LinearBattery, EmsSettings
        The EMS's linear battery and settings (:mod:`twin.ems.model`).
    system : twin.battery.system.BatterySystem
        The battery system model, in its initial state (it is advanced).
    pcs : twin.case.PcsModel
        One container's PCS.
    aux_idle_mw : array (nc,), optional
        Auxiliary draw per container without a thermal network (MW); default from the model (``p_aux_w``).
    periods : array of str (n,), optional
        Tariff period per step (rules strategy).
    price_cny_per_kwh, forecast_mw : array (n,), optional
        Energy price and net-load forecast for ``strategy="lp"`` (forecast default: the actual net load).
    strategy : {"rules", "lp"}
    p_shed_max_mw : float or array (n,), optional
        Load the EMS may shed after the battery to hold the cap (MW).
    charge_ceiling_mw : float or array (n,), optional
        Import up to which the battery may charge (MW; :func:`twin.ems.rules.dispatch_rules`).
    control_steps : int
        Steps per control interval.
    progress : bool
    state : dict, optional
        The EMS's memory between calls, for a horizon run in pieces (streaming): the containers' available power
        and auxiliary draw at the end of the last interval and the demand window's state. Pass the ``"state"`` of
        the previous call's result (with the same ``system``); default: a fresh start.
    plans : dict, optional
        For ``strategy="lp"``: day-ahead plans by first step of the day. A day found here is not planned again (a
        later pass of an iteration over the same horizon keeps the schedule its day-ahead LP made); a day planned is
        stored. Default: every day planned.

    Returns
    -------
    dict of numpy arrays
        Per step: ``p_set_mw`` (EMS set point), ``p_battery_mw`` (delivered AC, + discharging), ``p_aux_mw``
        (battery auxiliaries incl. PCS standby), ``p_shed_mw``, ``p_curtailed_mw``, ``p_grid_mw`` (import as the
        loop sees it: before the network's loss correction), ``soc`` (end of step), ``rule``; per container and
        step: ``p_container_mw``, ``p_dc_w``, ``p_aux_container_mw``, ``soc_container``, ``t_cell_max_degc``,
        ``t_air_degc``, ``p_avail_discharge_mw``, ``p_avail_charge_mw``, ``flag``; and ``lp_solve_s`` (total).
    """
    load = check_series("net_load_mw", net_load_mw, None)
    n = load.shape[0]
    t_out = check_series("t_out_degc", t_out_degc, n)
    if strategy not in ("rules", "lp"):
        raise ValueError(f"strategy: expected 'rules' or 'lp', found {strategy!r}")
    if int(control_steps) != control_steps or control_steps < 1:
        raise ValueError(f"control_steps: expected a whole number >= 1, found {control_steps!r}")
    control_steps = int(control_steps)
    dt_s = dt_min * 60.0
    nc = system.shape[0]
    use_target = strategy == "lp"
    a = rules_inputs(n, dt_min, battery, settings, None if use_target else periods,
                     np.zeros(n) if use_target else None, None, None, p_shed_max_mw, charge_ceiling_mw)
    if use_target:
        price = check_series("price_cny_per_kwh", price_cny_per_kwh, n)
        fc = load if forecast_mw is None else check_series("forecast_mw", forecast_mw, n)
        spd = int(round(1440.0 / dt_min))
        if abs(1440.0 / dt_min - spd) > 1e-9:
            raise ValueError(f"strategy 'lp' needs a step that divides a day, found {dt_min:g} min")
    rated = pcs.p_rated_mw
    p_min = pcs.p_min_fraction * rated
    thermal = system.spec.thermal is not None
    aux_fixed = np.zeros(nc) if aux_idle_mw is None else np.broadcast_to(np.asarray(aux_idle_mw, float), (nc,)).copy()

    o = {k: np.empty(n) for k in ("p_set_mw", "p_battery_mw", "p_aux_mw", "p_shed_mw", "p_curtailed_mw",
                                  "p_grid_mw", "soc")}
    o["rule"] = np.empty(n, dtype=np.int8)
    per_c = ("p_container_mw", "p_dc_w", "p_aux_container_mw", "soc_container", "t_cell_max_degc", "t_air_degc",
             "p_avail_discharge_mw", "p_avail_charge_mw")
    for k in per_c:
        o[k] = np.empty((nc, n))
    o["flag"] = np.empty((nc, n), dtype=np.int32)
    o["lp_solve_s"] = 0.0

    rated_w = rated * 1e6
    if state is None:
        state = {"avail_dis_w": np.full(nc, rated_w), "avail_ch_w": np.full(nc, rated_w),
                 "aux_w": (np.full(nc, system.spec.thermal.p_fixed_kw * 1e3) if thermal
                           else aux_fixed * 1e6).astype(float),
                 "window": np.zeros(2)}
    avail_dis, avail_ch, aux_now, win_state = (state["avail_dis_w"], state["avail_ch_w"], state["aux_w"],
                                               state["window"])   # updated in place by the kernel
    o["state"] = state
    ta_k = np.ascontiguousarray(np.broadcast_to(t_out + 273.15, (nc, n)))
    k = system._k
    b, st = battery, settings
    # blocks of whole control intervals: a day for the LP (it plans each day), else about 1/50 of the horizon
    block = spd if use_target else max(control_steps, (n // 50) // control_steps * control_steps)
    lp_group = a.m if use_target and spd % a.m == 0 else 1
    bar = tqdm(total=n, desc="battery in the loop", unit="step", disable=not progress, leave=False)
    threads = numba.get_num_threads()
    # the battery kernel runs its containers in parallel threads; for the few steps of a control interval, starting
    # them costs more than it saves (a month at 1 min, 5 containers: 13 times faster on one thread)
    numba.set_num_threads(1)
    try:
        for k0 in range(0, n, block):
            k1 = min(n, k0 + block)
            if use_target and plans is not None and k0 in plans:   # the day's plan of an earlier pass
                a.target[k0:k1] = plans[k0]
            elif use_target:   # a new day: the LP plans it from the battery's actual SOC
                soc = float(np.clip(system.soc().mean(), b.soc_min, b.soc_max))
                # planned in steps of the demand window (15 min: 96 a day instead of 1,440 at 1 min, the usual
                # scheduling interval and about 20 times faster to solve), held over each window
                g = lp_group if (k1 - k0) % lp_group == 0 else 1
                plan = schedule_lp((fc[k0:k1] + aux_now.sum() / 1e6).reshape(-1, g).mean(axis=1),
                                   price[k0:k1].reshape(-1, g).mean(axis=1), dt_min * g, b, st, soc,
                                   soc_end_min=soc)
                a.target[k0:k1] = np.repeat(plan.p_battery_mw, g)
                if plans is not None:
                    plans[k0] = a.target[k0:k1].copy()
                o["lp_solve_s"] += plan.solve_s
            k.closed_loop_kernel(k0, k1, control_steps, load, ta_k, dt_s, a.action, a.target, use_target, a.ch, a.dis,
                                 a.shed, a.ceil, b.energy_mwh, b.eta_charge, b.eta_discharge, b.soc_min, b.soc_max, a.floor,
                                 a.arb, a.rech, st.cap_target_mw(), st.demand_target_mw(), st.cap_mw, a.m, rated_w,
                                 pcs.eta_nom / pcs.eta_ref, p_min * 1e6, pcs.standby_kw * 1e3, thermal, aux_fixed * 1e6,
                                 float(system.s_mult), float(system.p_mult), system._scal, system._win, system._th,
                                 system.state, system.t_rack, system.t_air, avail_dis, avail_ch, aux_now, win_state,
                                 o["p_set_mw"], o["p_battery_mw"], o["p_aux_mw"], o["p_shed_mw"], o["p_curtailed_mw"],
                                 o["p_grid_mw"], o["soc"], o["rule"], o["p_container_mw"], o["p_dc_w"],
                                 o["p_aux_container_mw"], o["soc_container"], o["t_cell_max_degc"], o["t_air_degc"],
                                 o["p_avail_discharge_mw"], o["p_avail_charge_mw"], o["flag"])
            system.time_s += dt_s * (k1 - k0)
            bar.update(k1 - k0)
    finally:
        numba.set_num_threads(threads)
    bar.close()
    return o
