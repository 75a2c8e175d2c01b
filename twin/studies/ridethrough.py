"""Utility voltage dips: does the campus ride through, transfer to its battery, or drop load the grid then loses?

The RMS simulator (:mod:`twin.transient.sim`) runs each dip at the design operating point: the utility's voltage
falls to the dip's positive-sequence value for its duration and returns. The campus's transfer logic (data:
``models/dynamics`` ``[transfer]``: transfer at the N-th dip within M seconds, retransfer after the grid has been
healthy, lockout after repeated transfers) decides whether the PCS island the campus; the PSUs' hold-up, the drives'
ride-through and the motors' contactors decide what is lost.

Dip types (Bollen's classification at the 10 kV point of connection): ``A`` balanced (three-phase fault), ``B``
(single-phase-to-earth fault: positive sequence ``(2 + d) / 3``, negative ``(d - 1) / 3``; its zero sequence does not
pass the delta windings) and ``C`` (phase-to-phase fault: positive sequence ``(1 + d) / 2``, negative sequence
``(1 - d) / 2``) for a characteristic voltage ``d``. The simulator is positive-sequence: for type C the negative sequence is carried to each hall's LV
board in proportion to the positive sequence there (passive propagation, L) and through the Dyn11 transformers'
phase shifts (+30 degrees positive, -30 degrees negative sequence), which turns a type C dip at 10 kV into a type D
dip on the LV boards (each board's transformer phase shift is read from the net). Ride-through is judged on the worst phase at each LV board: the ITIC curve, and a third of
each hall's servers (the PSUs on that phase) dropping out when the phase stays below the PSUs' brown-out voltage for
longer than their hold-up.

Outcome of each dip: ``rides_through`` (stays on the grid, nothing lost), ``transfers_to_battery`` (isolated from
the grid, nothing lost), ``load_lost`` (servers, motors or drives lost); the MW the grid sees lost (import before the
dip minus import 1 s after it) and when the campus is back on the grid. Also a dip with the utility's
auto-reclosing (the fault's dip, the dead time, a successful reclose), the constructed "Virginia" sequence
(several dips in quick succession: six faults in 82 s on 10 July 2024, REFERENCE.md) and the PCS against its
LVRT curve (data, ``[lvrt]`` of the study: the GB/T 36547 points are not public): within the curve the PCS must stay
connected to the grid, so an island transfer there is an LVRT violation; its terminal voltage is also checked
against an HVRT curve (data).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..case import Case, CaseError
from ..limits import Checker, counts
from ..network import build_net
from ..transient.itic import duration_curve_check, itic_check, longest_excursion
from ..transient.sim import VALIDITY, Event, Plant, build_plant, simulate
from . import StudyResult
from ._common import finalize
from .switchover import load_lost

NAME = "ridethrough"
OUTCOMES = ("rides_through", "transfers_to_battery", "load_lost")
_A = np.exp(2j * np.pi / 3)


def check(case: Case) -> None:
    o = case.spec.ridethrough
    names = [op.name for op in case.spec.operating_points]
    if o.operating_point not in names:
        raise CaseError(f"{case.path}: [ridethrough] operating_point: no operating point '{o.operating_point}' "
                        f"(have {names})")
    if case.spec.battery is None:
        raise CaseError(f"{case.path}: the ride-through study needs a [battery] (its PCS and transfer logic)")
    step = case.spec.switchover.step_ms / 1000.0
    for name, vals in (("durations_s", o.durations_s), ("virginia_times_s", o.virginia_times_s),
                       ("virginia_dip_s", [o.virginia_dip_s])):
        off = [v for v in vals if abs(v / step - round(v / step)) > 1e-6]
        if off:
            raise CaseError(f"{case.path}: [ridethrough] {name}: {off} not whole steps of {step * 1e3:g} ms "
                            "([switchover] step_ms)")
    if any(b <= a for a, b in zip(o.virginia_times_s, o.virginia_times_s[1:], strict=False)):
        raise CaseError(f"{case.path}: [ridethrough] virginia_times_s must increase, found {o.virginia_times_s}")
    if any(o.virginia_dip_s >= b - a for a, b in zip(o.virginia_times_s, o.virginia_times_s[1:], strict=False)):
        raise CaseError(f"{case.path}: [ridethrough] virginia_dip_s ({o.virginia_dip_s}) must be shorter than the "
                        "gaps between the dips")


def dip_events(plant: Plant, t0: float, duration: float, v1: float) -> list[Event]:
    """The utility's positive-sequence voltage at ``v1`` (pu of its pre-dip value) from ``t0`` for ``duration``."""
    names = plant.src["names"]
    return ([Event(t0, "source", s, max(v1, 1e-3)) for s in names]
            + [Event(round(t0 + duration, 6), "source", s, 1.0) for s in names])


def sequences(kind: str, d: float) -> tuple[float, float]:
    """(positive, negative) sequence of a dip of characteristic voltage ``d`` (pu) at the point of connection."""
    if kind == "A":
        return d, 0.0
    if kind == "B":  # single-phase to earth, zero sequence blocked by the delta windings downstream
        return (2.0 + d) / 3.0, (d - 1.0) / 3.0
    if kind == "C":
        return (1.0 + d) / 2.0, (1.0 - d) / 2.0
    raise ValueError(f"dip type {kind!r}: expected 'A' (balanced), 'B' (single-phase) or 'C' (phase-to-phase)")


def lv_phases(v1_board: np.ndarray, ratio: np.ndarray, shift_degree=330.0) -> np.ndarray:
    """Phase voltage magnitudes (pu, shape (3, time, board)) on LV boards behind their transformers.

    ``v1_board`` (time, board): the simulated positive-sequence magnitudes; ``ratio`` (time,): the negative to
    positive sequence ratio of the dip at the point of connection (signed, 0 outside the dip), carried unchanged to
    the boards (passive propagation, L); ``shift_degree`` (scalar or per board): each transformer's phase shift in
    pandapower's convention (the LV positive sequence lags by it: 330 for Dyn11, 150 for Dyn5), the negative
    sequence shifted the opposite way.
    """
    r = np.asarray(ratio, float)[:, None]
    sh = np.exp(-1j * np.radians(np.asarray(shift_degree, float)))
    return np.stack([np.abs(v1_board) * np.abs(sh * _A ** (-k) + r * np.conj(sh) * _A ** k) for k in range(3)])


def board_shifts(net, boards) -> np.ndarray:
    """Phase shift (degrees, pandapower's ``shift_degree``) of the transformer feeding each LV board."""
    names = net.bus["name"].astype(str)
    out = []
    for b in boards:
        bus = int(net.bus.index[names == b][0])
        tr = net.trafo[net.trafo.lv_bus == bus]
        out.append(float(tr.shift_degree.iloc[0]) if len(tr) else 0.0)
    return np.array(out)


def lvrt_must_ride(t_since_dip: np.ndarray, v_pu: np.ndarray, curve_t: list[float], curve_v: list[float]) -> bool:
    """True when a voltage trajectory stays on or above the LVRT boundary (where the PCS must stay connected)."""
    bound = np.interp(t_since_dip, curve_t, curve_v, right=curve_v[-1])
    return bool(np.all(v_pu >= bound - 1e-9))


def grid_lost(ds: xr.Dataset, k: int = -1) -> float:
    """Load the grid loses (MW): the import before the event minus the import at step ``k``, at most the import
    before (a PCS still discharging at its old set-point after the servers dropped exports: reverse power, not
    more load lost)."""
    pre = float(ds.grid_p_mw.isel(time=0).sum())
    return min(pre - float(ds.grid_p_mw.isel(time=k).sum()), pre)


def _run_dip(plant: Plant, kind: str, d: float, dur: float, t0: float, t_end: float) -> dict:
    v1, v2 = sequences(kind, d)
    ds = simulate(plant, dip_events(plant, t0, dur, v1), t_end_s=t_end, battery_dc=False)
    t = ds.time.to_numpy()
    lost = load_lost(ds, plant)
    it_lost = lost["it_mw"]
    boards = plant.hall["boards"]
    worst_supply = ds.hall_supply_v_pu.to_numpy()
    during = (t >= t0) & (t < t0 + dur)
    ratio = np.where(during, v2 / max(v1, 1e-3), 0.0)
    if v2 > 0:
        ps = plant.dyn.psu
        g = plant.hall
        kernel_h = ds.hall_lost_mw.isel(time=-1).to_numpy()
        it_lost = 0.0
        for h, bs in enumerate(boards):
            sup = lv_phases(ds.vm_pu.sel(bus=bs).to_numpy(), ratio, board_shifts(plant.net, bs)).max(axis=2)  # 2N
            worst_supply[:, h] = sup.min(axis=0)
            # a third of the hall's servers on each phase drop if it stays below brown-out for longer than their
            # hold-up (the shortest group's at this load) less the PSUs' restart time; the kernel's positive-sequence
            # estimate for the same servers is the alternative: the larger of the two counts
            hold = float(np.min(g["wmax"][h] / (g["p"][h] + g["l0p"][h]))) - ps.brownout_recovery_ms / 1000.0
            below = longest_excursion(t, sup.T, ps.brownout_pu, below=True)
            p_h = float(g["p"][h].sum()) * float(plant.net.sn_mva)
            it_lost += min(max(float(kernel_h[h]), p_h / 3.0 * float(np.sum(below > hold))), p_h)
    total_lost = it_lost + lost["motors_mw"] + lost["loads_mw"]
    isl = ds.islanded.to_numpy()
    k1 = min(int(np.searchsorted(t, t0 + dur + 1.0)), len(t) - 1)
    lost_grid = grid_lost(ds, k1)
    back = t[np.where(isl)[0][-1]] - (t0 + dur) if isl.any() and not isl[-1] else (np.nan if isl.any() else 0.0)
    outcome = 2 if total_lost > 1e-6 else (1 if isl.any() else 0)
    itic = itic_check(t, worst_supply)
    pcs = [n for n, k in zip(plant.inv["names"], plant.inv["kind"], strict=True) if k == "PCS"]
    v_pcs = ds.vm_pu.sel(bus=plant.net.bus.name[plant.net.sgen.bus[plant.net.sgen.type == "PCS"]].tolist())
    # the dip the PCS would see had the campus stayed on the grid: its worst phase behind the Dyn transformer, at
    # the pre-dip terminal voltage times the dip
    v0_pcs = float(v_pcs.isel(time=0).min())
    pcs_buses = v_pcs.bus.values.tolist()
    v_dip_pcs = v0_pcs * v1 * float(lv_phases(np.ones((1, len(pcs_buses))), np.array([v2 / max(v1, 1e-3)]),
                                              board_shifts(plant.net, pcs_buses)).min())
    return {"ds": ds, "outcome": outcome, "load_lost_mw": total_lost, "it_lost_mw": it_lost,
            "grid_lost_mw": lost_grid, "grid_back_after_s": back, "islanded": bool(isl.any()),
            "itic_pass": bool(itic["pass"].all()), "pcs": pcs,
            "pcs_v_dip": v_dip_pcs, "worst_supply": worst_supply, "t": t,
            "pcs_v_max": v_pcs.max("bus").to_numpy()}


def run(case: Case, net=None, *, progress: bool = True) -> StudyResult:
    """Run the ride-through study (module notes)."""
    from tqdm.auto import tqdm

    check(case)
    o = case.spec.ridethrough
    net = net if net is not None else build_net(case)
    plant = build_plant(case, net, o.operating_point, soc=case.spec.battery.initial_soc)
    t0 = 0.1
    t_end = t0 + max(o.durations_s) + o.settle_s
    chk = Checker(NAME, case.criteria.warn_margin_fraction)
    kinds, depths, durs = list(o.types), list(o.depths_pu), list(o.durations_s)
    shape = (len(kinds), len(depths), len(durs))
    outcome = np.zeros(shape, dtype=np.int8)
    lost, lost_g, back = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    itic_ok = np.zeros(shape, dtype=bool)
    lvrt_violation = np.zeros(shape, dtype=bool)
    hvrt_ok = np.ones(shape, dtype=bool)
    bar = tqdm(total=int(np.prod(shape)) + 3, desc="ridethrough", unit="dip", disable=not progress, leave=False)
    for a, kind in enumerate(kinds):
        for b, d in enumerate(depths):
            for c, dur in enumerate(durs):
                r = _run_dip(plant, kind, d, dur, t0, t_end)
                outcome[a, b, c], lost[a, b, c] = r["outcome"], r["load_lost_mw"]
                lost_g[a, b, c], back[a, b, c], itic_ok[a, b, c] = r["grid_lost_mw"], r["grid_back_after_s"], \
                    r["itic_pass"]
                td = np.linspace(0.0, dur, 50)
                must = lvrt_must_ride(td, np.full(td.shape, r["pcs_v_dip"]), o.lvrt_t_s, o.lvrt_v_pu)
                lvrt_violation[a, b, c] = must and r["islanded"]
                hv = duration_curve_check(r["t"], r["pcs_v_max"], o.hvrt_v_pu, o.hvrt_allowed_s, below=False)
                hvrt_ok[a, b, c] = bool(hv["pass"])
                bar.update()
    # a dip with the utility's auto-reclosing: the fault's dip, the interruption while its breaker is open, the
    # successful reclose
    names = plant.src["names"]
    t_open = round(t0 + 0.1, 6)
    t_re = round(t_open + o.reclose_dead_time_s, 6)
    rec = simulate(plant, [*[Event(t0, "source", n_, 0.5) for n_ in names],
                           *[Event(t_open, "source", n_, 0.0) for n_ in names],
                           *[Event(t_re, "source", n_, 1.0) for n_ in names]],
                   t_end_s=t_re + plant.dyn.transfer.retransfer_delay_s + 3.0, battery_dc=False, record_every=5)
    rec_lost = load_lost(rec, plant)
    r_isl, r_t = rec.islanded.to_numpy(), rec.time.to_numpy()
    rec_back = (float(r_t[np.where(r_isl)[0][-1]] - t_re) if r_isl.any() and not r_isl[-1]
                else (float("nan") if r_isl.any() else 0.0))
    rec_grid_lost = grid_lost(rec)
    # the Virginia sequence
    v1, _ = sequences("A", o.virginia_dip_pu)
    ev = [e for tv in o.virginia_times_s for e in dip_events(plant, t0 + tv, o.virginia_dip_s, v1)]
    vt_end = t0 + o.virginia_times_s[-1] + o.virginia_dip_s + o.settle_s
    vs = simulate(plant, ev, t_end_s=vt_end, battery_dc=False, record_every=10)
    bar.update()
    bar.close()
    v_lost = load_lost(vs, plant)
    # the same sequence if the campus never transferred (rides every dip on the grid): what the PSUs alone do
    from ..transient import _kernel as K

    p_ride = plant.copy()
    p_ride.det[K.D_N_DIPS] = 1e9
    vs_ride = simulate(p_ride, ev, t_end_s=vt_end, battery_dc=False, record_every=10)
    v_ride_grid_lost = grid_lost(vs_ride)
    v_grid_lost = grid_lost(vs)
    # checks
    for a, kind in enumerate(kinds):
        lbl = {"A": "balanced dips (type A)", "B": "single-phase dips (type B at 10 kV, C* on LV)",
               "C": "phase-to-phase dips (type C at 10 kV, D on LV)"}[kind]
        chk.upper(lbl, "campus", "worst load lost over the dip map", float(lost[a].max()), 0.0, "MW",
                  "servers, motors and drives ride through (ITIC-class immunity expected of IT loads)")
        chk.upper(lbl, "PCS", "LVRT violations (island transfers inside the curve)", float(lvrt_violation[a].sum()),
                  0.0, "dips", "LVRT curve ([ridethrough] lvrt_t_s / lvrt_v_pu; GB/T 36547 points not public, L)")
    chk.upper("all dips", "PCS", "HVRT violations (terminal voltage beyond the curve)", float((~hvrt_ok).sum()), 0.0,
              "dips", "HVRT curve ([ridethrough] hvrt_v_pu / hvrt_allowed_s, L)")
    chk.upper("dip with reclosing", "campus", "load lost", rec_lost["total_mw"], 0.0, "MW",
              f"a 0.5 pu dip of 0.1 s, {o.reclose_dead_time_s:g} s interruption, successful reclose")
    chk.upper("Virginia sequence", "campus", "load the grid loses", v_grid_lost, 0.0, "MW",
              "no load lost to the grid in a sequence of dips (NERC Large Loads Task Force concern)")
    ds = xr.Dataset(
        {"outcome": (("dip_type", "depth_pu", "duration_s"), outcome,
                     {"units": "1", "long_name": "outcome of the dip", "flag_values": "0 1 2",
                      "flag_meanings": " ".join(OUTCOMES)}),
         "load_lost_mw": (("dip_type", "depth_pu", "duration_s"), lost,
                          {"units": "MW", "long_name": "load lost (servers, motors, drives)"}),
         "grid_lost_mw": (("dip_type", "depth_pu", "duration_s"), lost_g,
                          {"units": "MW", "long_name": "import the grid loses 1 s after the dip"}),
         "grid_back_after_s": (("dip_type", "depth_pu", "duration_s"), back,
                               {"units": "s", "long_name": "campus back on the grid after the dip's end (NaN: not "
                                                            "within the run)"}),
         "itic_pass": (("dip_type", "depth_pu", "duration_s"), itic_ok,
                       {"units": "1", "long_name": "worst phase at every hall's supply within ITIC"}),
         "lvrt_violation": (("dip_type", "depth_pu", "duration_s"), lvrt_violation,
                            {"units": "1", "long_name": "the campus islanded inside the PCS's LVRT curve"}),
         "hvrt_pass": (("dip_type", "depth_pu", "duration_s"), hvrt_ok,
                       {"units": "1", "long_name": "PCS terminal voltage within its HVRT curve"}),
         "reclosing_it_served_mw": ("time_r", rec.hall_served_mw.sum("hall").to_numpy(),
                                    {"units": "MW", "long_name": "dip with reclosing: IT load running"}),
         "reclosing_grid_p_mw": ("time_r", rec.grid_p_mw.sum("source").to_numpy(),
                                 {"units": "MW", "long_name": "dip with reclosing: import from the grid"}),
         "reclosing_islanded": ("time_r", rec.islanded.to_numpy(),
                                {"units": "1", "long_name": "dip with reclosing: campus on the battery"}),
         "virginia_grid_p_mw": ("time_v", vs.grid_p_mw.sum("source").to_numpy(),
                                {"units": "MW", "long_name": "Virginia sequence: import from the grid"}),
         "virginia_it_served_mw": ("time_v", vs.hall_served_mw.sum("hall").to_numpy(),
                                   {"units": "MW", "long_name": "Virginia sequence: IT load running"}),
         "virginia_islanded": ("time_v", vs.islanded.to_numpy(),
                               {"units": "1", "long_name": "Virginia sequence: campus on the battery"})},
        coords={"dip_type": kinds, "depth_pu": ("depth_pu", depths, {"units": "pu"}),
                "duration_s": ("duration_s", durs, {"units": "s"}),
                "time_v": ("time_v", vs.time.to_numpy(), {"units": "s"}),
                "time_r": ("time_r", rec.time.to_numpy(), {"units": "s"})})
    ds.attrs.update(validity=VALIDITY, operating_point=o.operating_point, transfer_logic=str(plant.dyn.transfer),
                    virginia=f"{len(o.virginia_times_s)} dips to {o.virginia_dip_pu} pu for {o.virginia_dip_s} s at "
                             f"{o.virginia_times_s} s (constructed, L)")
    checks = chk.frame()
    summary = {
        **counts(checks),
        "operating_point": o.operating_point,
        "load_lost_mw_worst": float(lost.max()),
        "grid_lost_mw_worst": float(lost_g.max()),
        "virginia_sequence_load_lost_mw": v_grid_lost,
        "virginia_servers_lost_mw": v_lost["it_mw"],
        "virginia_transfers": int(vs.transfers.max()),
        "virginia_locked_out": bool(vs.locked_out.any()),
        "virginia_load_lost_mw_without_transfer": v_ride_grid_lost,
        "virginia_servers_lost_mw_without_transfer": load_lost(vs_ride, p_ride)["it_mw"],
        "pcs_lvrt_pass": not bool(lvrt_violation.any()),
        "pcs_hvrt_pass": bool(hvrt_ok.all()),
        "reclosing_load_lost_mw": rec_lost["total_mw"],
        "reclosing_grid_lost_mw": rec_grid_lost,
        "reclosing_back_on_grid_after_s": rec_back,
        "lvrt_violations": int(lvrt_violation.sum()),
        "dips": int(np.prod(shape)),
        **{f"dips_{name}": int((outcome == k).sum()) for k, name in enumerate(OUTCOMES)},
        "itic_pass_dips": int(itic_ok.sum()),
    }
    return StudyResult(NAME, finalize(ds, NAME, case), checks, summary)
