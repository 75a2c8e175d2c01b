"""RMS (fundamental-frequency phasor) simulation of the campus after an event: loss of mains, bus transfer, faults.

Validity, stated plainly: the network is solved as 50 Hz phasors, so results hold from about one cycle (20 ms)
after an event and for modulation up to about 5 Hz. What happens inside the first cycle is represented by explicit
delays (islanding detection, control mode change, contactor dropout, drive ride-through, the bus transfer's dead
time) and by the energy balance of each server PSU's DC link. The network's reactances stay at nominal frequency
(island frequency deviations of a few tenths of a hertz change them by under 1 %). The first 200 ms are
cross-checked by the electromagnetic-transient model of a reduced equivalent (:mod:`twin.transient.emt`).

Models (parameters in ``models/dynamics/<name>.toml``, :mod:`twin.transient.params`):

- utility source: Thevenin voltage behind the impedance from the incomer's maximum short-circuit power and X/R,
  its voltage set so that the initial state is the load flow's; connected, disconnected or scaled by events;
- PCS: grid-following (SRF-PLL, first-order closed-loop current control, current limit) and, after islanding
  detection (under/over voltage and frequency at its terminal, or a transfer-trip signal) and a mode-change delay,
  grid-forming (voltage behind a virtual impedance, P-f and Q-V droop on filtered P and Q, current limit and the
  battery's available DC power); a synchroniser for the return to grid;
- PV inverters: grid-following, tripping on their anti-islanding delay or undervoltage;
- GPU/IT load: server PSUs per hall, dual-corded over the hall's feeds (2N), constant power within an input current
  limit and above a brown-out voltage, the DC-link energy fitted to the two hold-up points (:mod:`.psu`) in groups
  with a spread of hold-up, dropping out when it runs out (restart in minutes: load lost); optional online UPS;
- cooling: direct-on-line pumps and fans as induction motors (equivalent circuit :mod:`.motor`, slip dynamics,
  quadratic load torque, contactor dropout), VSD compressors as constant power behind drives that trip after a
  ride-through time below their undervoltage level; auxiliaries as constant power with a brown-out voltage;
- load shedding (GPU power capping) as an event on the IT load;
- optional standby gensets (``[switchover] gensets``, ``models/gensets/``): started by the first islanding
  detection, on line after their start delay, then a voltage source behind their transient and transformer reactance
  with a governor droop whose first-order engine response acts as the inertia, a voltage regulator droop, secondary
  restoration and a current limit; they close onto a dead bus or synchronise to a live island.

The battery's DC side comes from :mod:`twin.battery.system` (container granularity): its available discharge power
at the scenario's SOC limits the grid-forming PCS, and the PCS's DC power profile is run through it afterwards for
the battery's voltage, current, temperature and BMS flags.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from .. import pcs as pcsmod
from ..case import Case
from ..network import apply_operating_point, run_loadflow
from . import _kernel as K
from .motor import fit_circuit, initial_slip, torque_pu
from .network import ReducedNetwork, reduce_network
from .params import DynamicsModel, load_dynamics, load_genset
from .psu import fit_holdup

__all__ = ["Plant", "build_plant", "Event", "simulate", "EVENT_KINDS", "VALIDITY"]

VALIDITY = ("RMS phasor simulation at nominal frequency: valid from about one cycle (20 ms) after an event and for "
            "modulation up to about 5 Hz; sub-cycle behaviour is represented by explicit delays and the PSU DC-link "
            "energy balance")

EVENT_KINDS = {"source": K.EV_SOURCE, "topology": K.EV_TOPOLOGY, "fault": K.EV_FAULT, "shed": K.EV_SHED,
               "transfer_trip": K.EV_TRANSFER_TRIP, "resync": K.EV_RESYNC, "source_phase": K.EV_SOURCE_PHASE}
FAULT_Y_PU = 1e5  # a bolted fault: 10 micro-ohm-pu to earth (per unit on 1 MVA)


@dataclass(frozen=True)
class Event:
    """An event at an exact time.

    ``kind``: ``"source"`` (target: an incomer name; value 0 disconnects the utility, v > 0 connects it at v times
    its pre-event voltage), ``"source_phase"`` (target: an incomer; value: a step of its voltage angle in degrees),
    ``"topology"`` (target ``"coupler_closed"`` or ``"as_built"``), ``"fault"`` (target: a
    bus name; value 1 applies a bolted three-phase fault, 0 clears it), ``"shed"`` (value: fraction of the IT load
    capped, 0-1), ``"transfer_trip"`` (the incomer breaker's signal to the PCS), ``"resync"`` (target: the incomer
    whose grid has returned; the grid-forming PCS synchronise to it and the incomer closes on synchro-check).
    """

    t_s: float
    kind: str
    target: str = ""
    value: float = 0.0


@dataclass
class Plant:
    """Everything the kernel needs for one case at one operating point; reusable across scenarios."""

    case: Case
    net: object
    op_name: str
    dyn: DynamicsModel
    red: ReducedNetwork
    v0: np.ndarray
    src: dict
    inv: dict
    ld: dict
    mo: dict
    hall: dict
    det: np.ndarray
    soc: float = 0.5

    def with_soc(self, soc: float) -> Plant:
        """A copy at another battery SOC (0-1): the grid-forming PCS's power limit follows the BMS at that SOC."""
        if not 0.0 <= soc <= 1.0:
            raise ValueError(f"soc: expected 0-1, found {soc}")
        q = self.copy()
        rows = [k == "PCS" for k in q.inv["kind"]]
        q.inv["f"][rows, K.I_PMAX] = _battery_pmax_ac(self.case, soc) / float(self.net.sn_mva)
        q.soc = soc
        return q

    def with_detection(self, **changes) -> Plant:
        """A copy with other islanding-detection settings, named as in ``[detection]`` of the dynamics file (for
        example ``undervoltage_ms=10.0``, ``isolation_opening_ms=60.0``)."""
        q = self.copy()
        d = self.dyn.detection.model_copy(update=changes)
        bad = set(changes) - set(type(d).model_fields)
        if bad:
            raise ValueError(f"with_detection: unknown setting(s) {sorted(bad)}; expected {sorted(d.model_fields)}")
        q.dyn = self.dyn.model_copy(update={"detection": type(d).model_validate(d.model_dump())})
        q.det = _detection(q.dyn, float(self.net.f_hz))
        return q

    def copy(self) -> Plant:
        """A copy whose parameter arrays can be changed (for example detection delays) without touching this one."""
        q = copy.copy(self)
        q.inv = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in self.inv.items()}
        q.hall = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in self.hall.items()}
        q.det = self.det.copy()
        return q


def _phasor(vm, va_deg):
    return np.asarray(vm, float) * np.exp(1j * np.radians(np.asarray(va_deg, float)))


def _sources(net, red: ReducedNetwork, v_all) -> dict:
    eg = net.ext_grid[net.ext_grid.in_service]
    bus = np.array([red.index(b) for b in eg.bus], dtype=np.int64)
    s_sc = eg.s_sc_max_mva.to_numpy(float)
    rx = eg.rx_max.to_numpy(float)
    zmag = net.sn_mva / s_sc
    z = zmag * (rx + 1j) / np.sqrt(1 + rx ** 2)
    s = (net.res_ext_grid.loc[eg.index, "p_mw"] + 1j * net.res_ext_grid.loc[eg.index, "q_mvar"]).to_numpy() / net.sn_mva
    v = np.asarray(v_all[eg.bus.to_numpy()], dtype=complex)
    i = np.conj(s / v)
    return {"bus": bus, "y": 1.0 / z, "e": v + z * i, "on": np.ones(len(eg), dtype=np.bool_),
            "names": eg["name"].astype(str).tolist()}


def _inverters(case: Case, net, red, v_all, dyn: DynamicsModel, soc: float) -> dict:
    s = case.spec
    sg = net.sgen[net.sgen.in_service]
    n = len(sg)
    f = np.zeros((n, K.N_I))
    j = np.zeros((n, K.N_J), dtype=np.int64)
    d = dyn.pcs
    f0 = float(net.f_hz)
    wn = 2 * np.pi * d.pll_bandwidth_hz
    pmax_pcs = _battery_pmax_ac(case, soc) if s.battery is not None else np.inf
    i0 = np.zeros(n, dtype=complex)
    th0 = np.zeros(n)
    kinds = []
    for r, (idx, row) in enumerate(sg.iterrows()):
        b = int(row.bus)
        vb = v_all[b]
        sp = complex(net.res_sgen.at[idx, "p_mw"], net.res_sgen.at[idx, "q_mvar"]) / net.sn_mva
        i0[r] = np.conj(sp / vb)
        th0[r] = np.angle(vb)
        sn = float(row.sn_mva) / net.sn_mva
        is_pcs = row.type == "PCS"
        kinds.append("PCS" if is_pcs else "PV")
        f[r, K.I_P0], f[r, K.I_Q0] = sp.real, sp.imag
        f[r, K.I_ILIM] = (d.current_limit_pu if is_pcs else 1.1) * sn
        f[r, K.I_PMAX] = pmax_pcs / net.sn_mva if is_pcs else np.inf
        f[r, K.I_KP], f[r, K.I_KI] = 2 * d.pll_damping * wn, wn ** 2
        f[r, K.I_TAU] = d.current_tau_ms / 1000.0
        prated = float(row.max_p_mw) if is_pcs else sn
        f[r, K.I_MP] = d.droop_p_f_percent / 100.0 * f0 / (prated / net.sn_mva)
        f[r, K.I_MQ] = d.droop_q_v_percent / 100.0 / sn
        f[r, K.I_TPF] = d.power_filter_ms / 1000.0
        f[r, K.I_TREST] = d.frequency_restoration_s
        f[r, K.I_V0] = abs(vb)
        f[r, K.I_MODE_DELAY] = (d.mode_change_delay_ms if is_pcs else dyn.pv.anti_islanding_ms) / 1000.0
        zv = complex(d.virtual_r_pu, d.virtual_x_pu) / sn
        f[r, K.I_ZV_RE], f[r, K.I_ZV_IM] = zv.real, zv.imag
        if not is_pcs:
            f[r, K.I_UV], f[r, K.I_UV_T] = dyn.pv.undervoltage_trip_pu, dyn.pv.undervoltage_ms / 1000.0
        e_int = vb + zv * i0[r]
        f[r, K.I_E0], f[r, K.I_DTH] = abs(e_int), np.angle(e_int) - np.angle(vb)
        j[r, K.J_BUS] = red.index(b)
        j[r, K.J_FORM] = 1 if is_pcs else 0
    names = sg["name"].astype(str).tolist()
    sn_all = sg.sn_mva.to_numpy(float).tolist()
    gf, gj = [], []
    bus_idx = dict(zip(net.bus["name"].astype(str), net.bus.index, strict=True))
    for g in case.spec.switchover.gensets:
        m = load_genset(case, g.model)
        sn = m.sn_mva / net.sn_mva
        r = np.zeros(K.N_I)
        r[K.I_ILIM] = m.current_limit_pu * sn
        r[K.I_PMAX] = m.p_rated_mw / net.sn_mva
        r[K.I_TAU] = 1.0
        r[K.I_MP] = m.droop_p_f_percent / 100.0 * f0 / (m.p_rated_mw / net.sn_mva)
        r[K.I_MQ] = m.droop_q_v_percent / 100.0 / sn
        r[K.I_TPF] = m.engine_tau_s
        r[K.I_MODE_DELAY] = m.start_delay_s
        zv = complex(m.r_pu, m.x_pu) / sn
        r[K.I_ZV_RE], r[K.I_ZV_IM] = zv.real, zv.imag
        r[K.I_E0], r[K.I_TREST], r[K.I_V0] = 1.0, m.restoration_s, 1.0
        gf.append(r)
        gj.append([red.index(bus_idx[g.bus]), 1, 3])
        names.append(g.name)
        kinds.append("GEN")
        sn_all.append(m.sn_mva)
    if gf:
        f = np.vstack([f, np.array(gf)])
        j = np.vstack([j, np.array(gj, dtype=np.int64)])
        i0 = np.concatenate([i0, np.zeros(len(gf), dtype=complex)])
        th0 = np.concatenate([th0, np.zeros(len(gf))])
    return {"f": f, "j": j, "i0": i0, "th0": th0, "names": names, "kind": kinds, "sn_mva": np.array(sn_all)}


def _battery_pmax_ac(case: Case, soc: float) -> float:
    """AC power (MW) one container's PCS can deliver from its battery at ``soc`` and 25 degC (BMS limits)."""
    from ..battery.system import BatterySystem, system_spec

    sysm = BatterySystem(system_spec(case), "container", soc0=soc)
    ds = sysm.run(np.zeros((sysm.shape[0], 1)), 0.001, 25.0)
    p_dc = float(ds.p_avail_discharge_w.min())
    pcs = case.model("pcs", case.spec.battery.pcs)
    return float(pcsmod.dc_to_ac(p_dc, pcs)) / 1e6


def _loads(case: Case, net, red, dyn: DynamicsModel) -> dict:
    ld = net.load[net.load.in_service & (net.load.group != "it")]
    n = len(ld)
    f = np.zeros((n, K.N_C))
    for r, (idx, row) in enumerate(ld.iterrows()):
        p = float(net.res_load.at[idx, "p_mw"]) / net.sn_mva
        q = float(net.res_load.at[idx, "q_mvar"]) / net.sn_mva
        f[r, K.C_P] = p
        f[r, K.C_TAN] = q / p if p > 0 else 0.0
        if row.group == "cooling":  # VSD compressors
            f[r, K.C_ILIMP] = dyn.drives.current_limit_pu * p
            f[r, K.C_VBO] = dyn.drives.undervoltage_trip_pu
            f[r, K.C_VTRIP] = dyn.drives.undervoltage_trip_pu
            f[r, K.C_TRIDE] = dyn.drives.ride_through_ms / 1000.0
            f[r, K.C_TREC] = dyn.psu.brownout_recovery_ms / 1000.0  # the drive's rectifier restarts like a PSU's
        else:  # auxiliaries: electronics and lighting, brown out like the PSUs, never trip
            f[r, K.C_ILIMP] = dyn.psu.current_limit_pu * p
            f[r, K.C_VBO] = dyn.psu.brownout_pu
            f[r, K.C_VTRIP] = 0.0
            f[r, K.C_TRIDE] = np.inf
            f[r, K.C_TREC] = dyn.psu.brownout_recovery_ms / 1000.0
    return {"bus": np.array([red.index(b) for b in ld.bus], dtype=np.int64), "f": f,
            "names": ld["name"].astype(str).tolist(), "group": ld.group.astype(str).tolist()}


def _motors(case: Case, net, red, v_all, dyn: DynamicsModel) -> dict:
    mo = net.motor[net.motor.in_service]
    rows, names, bus = [], [], []
    for idx, row in mo.iterrows():
        p = float(net.res_motor.at[idx, "p_mw"])
        if p <= 0:
            continue
        plant = next(c for c in case.spec.cooling_plants if c.name == row.unit)
        model = case.model("cooling", plant.model)
        spec = next(m for m in model.motors if str(row["name"]).startswith(f"{plant.name}_{m.name}"))
        role = model.motor_roles.get(spec.name, "pump")
        c = fit_circuit(spec.pn_mech_kw, spec.cos_phi, spec.efficiency_percent, spec.lrc_pu, spec.rx)
        s_base = spec.pn_mech_kw / (spec.efficiency_percent / 100.0 * spec.cos_phi) / 1000.0  # MVA
        vb = v_all[int(row.bus)]
        vm = abs(vb)
        s0 = float(initial_slip(c, p / s_base, vm))
        k = s_base / net.sn_mva
        y_m, _ = K._motor_y(c.rs, c.xs, c.xm, c.rr, c.xr, s0)
        s_m = vm ** 2 * np.conj(y_m * k)
        q_lf = float(net.res_motor.at[idx, "q_mvar"]) / net.sn_mva
        yc = np.conj(1j * (q_lf - s_m.imag)) / vm ** 2  # constant admittance that makes Q the load flow's
        r = np.zeros(K.N_M)
        r[[K.M_RS, K.M_XS, K.M_XM, K.M_RR, K.M_XR]] = c.rs, c.xs, c.xm, c.rr, c.xr
        r[K.M_K], r[K.M_H] = k, dyn.motors.inertia_h_s.get(role, 1.0)
        r[K.M_TM0], r[K.M_S0] = float(torque_pu(c, vm, s0)), s0
        r[K.M_YC_RE], r[K.M_YC_IM] = yc.real, yc.imag
        r[K.M_EXP] = dyn.motors.load_torque_exponent
        r[K.M_VDROP], r[K.M_TDROP] = dyn.motors.contactor_dropout_pu, dyn.motors.contactor_dropout_ms / 1000.0
        rows.append(r)
        names.append(str(row["name"]))
        bus.append(red.index(int(row.bus)))
    return {"bus": np.array(bus, dtype=np.int64), "f": np.array(rows).reshape(-1, K.N_M), "names": names}


def _halls(case: Case, net, red, dyn: DynamicsModel, ups_halls) -> dict:
    from ..load import hall_it_power_mw

    s = case.spec
    ps = dyn.psu
    e_s, l0 = fit_holdup(ps.holdup_ms, ps.holdup_load_fraction)
    nh, nfmax, ng = len(s.halls), max(len(h.feeds) for h in s.halls), ps.groups
    bus = np.full((nh, nfmax), 0, dtype=np.int64)
    nf = np.zeros(nh, dtype=np.int64)
    ilimp = np.zeros((nh, nfmax))
    hf = np.zeros((nh, K.N_H))
    gp, gw, gl0 = np.zeros((nh, ng)), np.zeros((nh, ng)), np.zeros((nh, ng))
    boards = []
    mult = np.linspace(1.0, 1.0 + ps.holdup_spread, ng)
    for h, hall in enumerate(s.halls):
        rows = net.load[(net.load.group == "it") & (net.load.unit == hall.name) & net.load.in_service]
        p = float(net.res_load.loc[rows.index, "p_mw"].sum()) / net.sn_mva
        q = float(net.res_load.loc[rows.index, "q_mvar"].sum()) / net.sn_mva
        tan = q / p if p > 0 else 0.0
        srv = case.model("it", hall.server)
        rated = float(hall_it_power_mw(srv, hall.gpu_count, hall.network_storage_kw, 1.0)) / ps.load_fraction
        rated /= net.sn_mva
        nf[h] = len(rows)
        for k, b in enumerate(rows.bus):
            bus[h, k] = red.index(int(b))
            ilimp[h, k] = ps.current_limit_pu * rated / nf[h] / np.sqrt(1 + tan ** 2)
        boards.append(net.bus.loc[rows.bus, "name"].astype(str).tolist())
        ups = hall.name in ups_halls
        hf[h] = [tan, ps.ups_input_window_pu if ups else ps.brownout_pu, ps.frequency_min_hz, ps.frequency_max_hz, ps.recharge_fraction,
                 1.0 if ups else 0.0, ps.brownout_recovery_ms / 1000.0,
                 ps.ups_walk_in_s if ups else ps.walk_in_ms / 1000.0]
        gp[h] = p / ng
        if ups:  # online UPS: on its battery below its input window, output held while the battery lasts
            gw[h] = ps.ups_autonomy_min * 60.0 * p / ng
            gl0[h] = 0.0
        else:
            gw[h] = e_s * rated / ng * mult
            gl0[h] = l0 * rated / ng
    return {"bus": bus, "nf": nf, "ilimp": ilimp, "f": hf, "p": gp, "wmax": gw, "l0p": gl0,
            "names": [h.name for h in s.halls], "boards": boards, "holdup_fit": (e_s, l0)}


def _detection(dyn: DynamicsModel, f0: float) -> np.ndarray:
    d = dyn.detection
    r = np.zeros(K.N_D)
    r[[K.D_UV, K.D_UV_T, K.D_OV, K.D_OV_T, K.D_DF, K.D_DF_T, K.D_TT, K.D_F0]] = (
        d.undervoltage_pu, d.undervoltage_ms / 1e3, d.overvoltage_pu, d.overvoltage_ms / 1e3, d.frequency_band_hz,
        d.frequency_ms / 1e3, d.transfer_trip_ms / 1e3, f0)
    r[[K.D_ROCOF, K.D_ROCOF_T]] = d.rocof_hz_per_s, d.rocof_ms / 1e3
    r[K.D_BRK] = d.isolation_opening_ms / 1e3
    tr = dyn.transfer
    r[[K.D_N_DIPS, K.D_DIP_WINDOW, K.D_RETRANSFER, K.D_LOCKOUT_N, K.D_LOCKOUT_S]] = (
        tr.transfer_after_dips, tr.dip_window_s, tr.retransfer_delay_s, tr.lockout_after_transfers, tr.lockout_s)
    rs = dyn.resync
    r[[K.D_SYNC_ANG, K.D_SYNC_V, K.D_SYNC_F, K.D_SYNC_GAIN, K.D_SYNC_FMAX]] = (
        np.radians(rs.max_angle_deg), rs.max_voltage_pu, rs.max_slip_hz, rs.gain_hz_per_rad, rs.max_correction_hz)
    return r


def build_plant(case: Case, net, op_name: str, *, dynamics: str | None = None, soc: float = 0.5,
                ups_halls=None, load_scale: float = 1.0, like: Plant | None = None) -> Plant:
    """Set up the transient simulation of a case at a named operating point.

    Parameters
    ----------
    case : Case
    net : pandapowerNet
        From :func:`twin.network.build_net` (not modified: the operating point is applied to a copy).
    op_name : str
        Operating point (``[[operating_points]]``) giving the initial load flow.
    dynamics : str, optional
        ``models/dynamics/<name>.toml``; default the case's ``[switchover] dynamics``.
    soc : float
        Battery state of charge (0-1): its BMS limits bound the grid-forming PCS's power.
    ups_halls : list of str, optional
        Halls behind an online UPS; default the case's ``[switchover] ups_halls``.
    load_scale : float
        Multiplies the IT, cooling and auxiliary loads of the operating point (load-level sweeps).
    like : Plant, optional
        A plant of the same case and switching states whose reduced network is reused (it does not depend on the
        loads): load-level sweeps then cost one load flow each.
    """
    opts = case.spec.switchover
    dyn = load_dynamics(case, dynamics or opts.dynamics)
    if not 0.0 <= soc <= 1.0:
        raise ValueError(f"soc: expected 0-1, found {soc}")
    if load_scale <= 0:
        raise ValueError(f"load_scale: expected > 0, found {load_scale}")
    ups_halls = list(opts.ups_halls if ups_halls is None else ups_halls)
    unknown = set(ups_halls) - {h.name for h in case.spec.halls}
    if unknown:
        raise ValueError(f"ups_halls: no hall {sorted(unknown)} in the case")
    n = apply_operating_point(net, case, op_name)
    if load_scale != 1.0:
        for tbl in ("load",):
            n[tbl]["p_mw"] *= load_scale
            n[tbl]["q_mvar"] *= load_scale
        n.motor["loading_percent"] = np.minimum(n.motor["loading_percent"] * load_scale, 120.0)
    run_loadflow(n)
    if not n.converged:
        raise RuntimeError(f"the load flow at operating point '{op_name}' (load x {load_scale}) did not converge")
    bus_idx = dict(zip(n.bus["name"].astype(str), n.bus.index, strict=True))
    for g in opts.gensets:
        if g.bus not in bus_idx:
            raise ValueError(f"[switchover] gensets: genset '{g.name}' on bus '{g.bus}': no such bus in the net "
                             f"(have {sorted(bus_idx)})")
        load_genset(case, g.model)
    keep = sorted(set(n.ext_grid.bus) | set(n.load.bus) | set(n.sgen.bus) | set(n.motor.bus)
                  | set(n.bus.index[n.bus.role == "lv_board"]) | {bus_idx[g.bus] for g in opts.gensets})
    couplers = n.switch[(n.switch.et == "b")]["name"].astype(str).tolist()
    topos = [{}, {c: True for c in couplers}]
    red = like.red if like is not None and like.red.kept == keep else reduce_network(n, keep, topos)
    v_all = _phasor(n.res_bus.vm_pu, n.res_bus.va_degree)
    v_all = pd.Series(v_all, index=n.bus.index)
    return Plant(case=case, net=n, op_name=op_name, dyn=dyn, red=red, v0=v_all[keep].to_numpy(),
                 src=_sources(n, red, v_all), inv=_inverters(case, n, red, v_all, dyn, soc),
                 ld=_loads(case, n, red, dyn), mo=_motors(case, n, red, v_all, dyn),
                 hall=_halls(case, n, red, dyn, ups_halls), det=_detection(dyn, float(n.f_hz)), soc=soc)


def _events(plant: Plant, events, dt: float, n_steps: int):
    rows = []
    bus_names = plant.red.bus_names
    for e in sorted(events, key=lambda e: e.t_s):
        if e.kind not in EVENT_KINDS:
            raise ValueError(f"event kind {e.kind!r}: expected one of {sorted(EVENT_KINDS)}")
        step = e.t_s / dt
        if not np.isfinite(step) or step < 0 or step >= n_steps:
            raise ValueError(f"event {e.kind} at {e.t_s} s: outside the simulated 0-{n_steps * dt:g} s")
        if abs(step - round(step)) > 1e-6:
            raise ValueError(f"event {e.kind} at {e.t_s} s: not on the {dt * 1e3:g} ms step grid (events happen at "
                             "exact step times)")
        idx = 0
        if e.kind in ("source", "resync", "source_phase"):
            if e.target not in plant.src["names"]:
                raise ValueError(f"event {e.kind}: no incomer {e.target!r} (have {plant.src['names']})")
            idx = plant.src["names"].index(e.target)
            if e.kind == "source" and not 0.0 <= e.value <= 1.5:
                raise ValueError(f"event source: value {e.value} must be 0 (disconnected) or a voltage factor up to "
                                 "1.5")
        elif e.kind == "topology":
            names = ["as_built", "coupler_closed"]
            if e.target not in names:
                raise ValueError(f"event topology: target must be one of {names}, found {e.target!r}")
            idx = names.index(e.target)
        elif e.kind == "fault":
            if e.target not in bus_names:
                raise ValueError(f"event fault: no bus {e.target!r} among the simulated buses {bus_names}")
            idx = bus_names.index(e.target)
        elif e.kind == "shed" and not 0.0 <= e.value <= 1.0:
            raise ValueError(f"event shed: value {e.value} must be a fraction of the IT load, 0-1")
        rows.append((int(round(step)), EVENT_KINDS[e.kind], idx, float(e.value)))
    a = np.array(rows, dtype=float).reshape(-1, 4)
    return (a[:, 0].astype(np.int64), a[:, 1].astype(np.int64), a[:, 2].astype(np.int64), a[:, 3].copy())


def _attrs(units: str, long_name: str) -> dict:
    return {"units": units, "long_name": long_name}


def simulate(plant: Plant, events, *, t_end_s: float | None = None, step_ms: float | None = None,
             pcs_form_on_island: bool = True, record_every: int = 1, battery_dc: bool = True,
             tolerance_pu: float = 1e-8, max_iterations: int = 30) -> xr.Dataset:
    """Simulate the plant through a list of :class:`Event` and return the time series as a Dataset.

    Parameters
    ----------
    plant : Plant
        From :func:`build_plant`.
    events : list of Event
    t_end_s, step_ms : float, optional
        Simulated time (s) and fixed step (ms); default the case's ``[switchover]``.
    pcs_form_on_island : bool
        The PCS switch to grid-forming when they detect islanding (else they stop: for example on the loss of a
        single incomer, where the rest of the campus is still on the grid).
    record_every : int
        Keep every n-th step in the result.
    battery_dc : bool
        Run the PCS's DC power through the battery model for its voltage, current and flags.

    Returns
    -------
    xarray.Dataset
        Dimensions ``time`` (s from the start), ``bus`` (every bus of the net), ``inverter``, ``hall``, ``load``,
        ``motor``, ``source``; variables with ``units`` and ``long_name``. Attributes: the step, the events, the
        validity statement, detection and reclosing times, and the count of steps whose network iteration did not
        converge (``n_nonconverged``; their results are kept and flagged in ``converged``).
    """
    opts = plant.case.spec.switchover
    t_end = float(t_end_s if t_end_s is not None else opts.t_end_s)
    dt = float(step_ms if step_ms is not None else opts.step_ms) / 1000.0
    if not (np.isfinite(dt) and dt > 0 and np.isfinite(t_end) and t_end > dt):
        raise ValueError(f"need 0 < step < t_end, got step {dt * 1e3} ms and t_end {t_end} s")
    if record_every < 1:
        raise ValueError(f"record_every must be >= 1, found {record_every}")
    n_steps = int(round(t_end / dt)) + 1
    ev = _events(plant, events, dt, n_steps)
    n_rec = (n_steps + record_every - 1) // record_every
    red = plant.red
    n = len(red.kept)
    inv, ld, mo, hall, src = plant.inv, plant.ld, plant.mo, plant.hall, plant.src
    j = inv["j"].copy()
    pcs_rows = np.array([k == "PCS" for k in inv["kind"]])
    j[pcs_rows, K.J_FORM] = 1 if pcs_form_on_island else 0
    n_inv, n_h, n_ld, n_mo, n_src = len(j), len(hall["names"]), len(ld["names"]), len(mo["names"]), len(src["names"])
    out_v = np.zeros((n_rec, n), dtype=complex)
    out_inv = np.zeros((n_rec, n_inv, K.N_RI))
    out_hall = np.zeros((n_rec, n_h, K.N_RH))
    out_feed = np.zeros((n_rec, n_h, hall["bus"].shape[1]))
    out_ld = np.zeros((n_rec, n_ld))
    out_mo = np.zeros((n_rec, n_mo, 3))
    out_src = np.zeros((n_rec, n_src), dtype=complex)
    out_step = np.zeros((n_rec, 7))
    t_detect = np.full(n_inv, np.nan)
    t_close = np.full(1, np.nan)
    flt_bus = np.arange(n, dtype=np.int64)
    flt_y = np.full(n, FAULT_Y_PU + 0j)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):  # 18x18 solves: threads only add overhead
        n_nc = _run_kernel(red, plant, dt, n_steps, record_every, src, inv, j, ld, mo, hall, flt_bus, flt_y, ev,
                           tolerance_pu, max_iterations, out_v, out_inv, out_hall, out_feed, out_ld, out_mo, out_src,
                           out_step, t_detect, t_close)
    return _dataset(plant, events, dt, record_every, n_rec, out_v, out_inv, out_hall, out_feed, out_ld, out_mo,
                    out_src, out_step, t_detect, t_close, int(n_nc), battery_dc)


def _run_kernel(red, plant, dt, n_steps, record_every, src, inv, j, ld, mo, hall, flt_bus, flt_y, ev, tolerance_pu,
                max_iterations, out_v, out_inv, out_hall, out_feed, out_ld, out_mo, out_src, out_step, t_detect,
                t_close):
    return K.simulate(red.y_pu, red.components, 0, plant.v0.astype(complex), dt, n_steps, int(record_every),
                      src["bus"], src["y"].astype(complex), src["e"].astype(complex).copy(), src["on"],
                      inv["f"], j, inv["i0"].astype(complex), inv["th0"],
                      ld["bus"], ld["f"], mo["bus"], mo["f"],
                      hall["bus"], hall["nf"], hall["ilimp"], hall["f"], hall["wmax"].copy(), hall["wmax"], hall["p"],
                      hall["l0p"], flt_bus, flt_y, ev[0], ev[1], ev[2], ev[3], plant.det, float(tolerance_pu),
                      int(max_iterations), out_v, out_inv, out_hall, out_feed, out_ld, out_mo, out_src, out_step,
                      t_detect, t_close)


def _dataset(plant, events, dt, every, n_rec, out_v, out_inv, out_hall, out_feed, out_ld, out_mo, out_src, out_step,
             t_detect, t_close, n_nc, battery_dc) -> xr.Dataset:
    net, red = plant.net, plant.red
    sn = float(net.sn_mva)
    time = np.arange(n_rec) * dt * every
    topo = out_step[:, 2].astype(int)
    v_all = np.zeros((n_rec, len(net.bus)), dtype=complex)
    for t in np.unique(topo):
        m = topo == t
        v_all[m] = out_v[m] @ red.recover[t].T
    inv, hall = plant.inv, plant.hall
    sn_inv = inv["sn_mva"]
    ds = xr.Dataset(
        {
            "vm_pu": (("time", "bus"), np.abs(v_all), _attrs("pu", "bus voltage magnitude (fundamental)")),
            "va_degree": (("time", "bus"), np.degrees(np.angle(v_all)),
                          _attrs("degree", "bus voltage angle against a frame at nominal frequency")),
            "frequency_hz": ("time", out_step[:, 3], _attrs("Hz", "system frequency (grid, else the grid-forming "
                                                                   "PCS's mean)")),
            "inverter_p_mw": (("time", "inverter"), out_inv[:, :, K.R_P] * sn, _attrs("MW", "inverter active power "
                                                                                        "(+ delivered)")),
            "inverter_q_mvar": (("time", "inverter"), out_inv[:, :, K.R_Q] * sn, _attrs("Mvar", "inverter reactive "
                                                                                           "power (+ delivered)")),
            "inverter_i_pu": (("time", "inverter"), out_inv[:, :, K.R_I] * sn / sn_inv,
                              _attrs("pu", "inverter current in pu of its rated current")),
            "inverter_mode": (("time", "inverter"), out_inv[:, :, K.R_MODE].astype(np.int8),
                              {"units": "1", "long_name": "control mode", "flag_values": "0 1 2",
                               "flag_meanings": "grid_following grid_forming off"}),
            "inverter_f_hz": (("time", "inverter"), out_inv[:, :, K.R_F], _attrs("Hz", "inverter frequency (PLL or "
                                                                                       "grid-forming)")),
            "hall_served_mw": (("time", "hall"), out_hall[:, :, K.RH_SERVED] * sn, _attrs("MW", "IT load running")),
            "hall_drawn_mw": (("time", "hall"), out_hall[:, :, K.RH_DRAWN] * sn, _attrs("MW", "IT input power from "
                                                                                         "the network")),
            "hall_lost_mw": (("time", "hall"), out_hall[:, :, K.RH_LOST] * sn, _attrs("MW", "IT load dropped out "
                                                                                       "(servers restarting)")),
            "hall_dc_link_min": (("time", "hall"), out_hall[:, :, K.RH_WMIN],
                                 _attrs("1", "lowest PSU DC-link energy of the hall's groups, fraction of full")),
            "hall_supply_v_pu": (("time", "hall"), out_hall[:, :, K.RH_SUPPLY_V],
                                 _attrs("pu", "voltage the servers see: the better of their feeds (2N), or the UPS "
                                              "output")),
            "hall_feed_p_mw": (("time", "hall", "feed"), out_feed * sn, _attrs("MW", "IT input power per feed")),
            "load_p_mw": (("time", "load"), out_ld * sn, _attrs("MW", "constant-power load drawn")),
            "motor_slip": (("time", "motor"), out_mo[:, :, 0], _attrs("1", "motor slip")),
            "motor_p_mw": (("time", "motor"), out_mo[:, :, 1] * sn, _attrs("MW", "motor input power")),
            "motor_on": (("time", "motor"), out_mo[:, :, 2].astype(bool), _attrs("1", "motor contactor closed")),
            "grid_p_mw": (("time", "source"), out_src.real * sn, _attrs("MW", "import from the utility")),
            "grid_q_mvar": (("time", "source"), out_src.imag * sn, _attrs("Mvar", "reactive import from the "
                                                                                    "utility")),
            "iterations": ("time", out_step[:, 0].astype(np.int16), _attrs("1", "network iterations of the step")),
            "converged": ("time", out_step[:, 1].astype(bool), _attrs("1", "network iteration converged")),
            "topology": ("time", topo.astype(np.int8), {"units": "1", "long_name": "switching state",
                                                        "flag_values": "0 1",
                                                        "flag_meanings": "as_built coupler_closed"}),
            "t_detect_s": ("inverter", t_detect, _attrs("s", "islanding detected")),
            "islanded": ("time", out_step[:, 4].astype(bool), _attrs("1", "campus isolated from the grid (on the "
                                                                    "battery)")),
            "transfers": ("time", out_step[:, 5].astype(np.int16), _attrs("1", "transfers to the battery so far")),
            "locked_out": ("time", out_step[:, 6].astype(bool), _attrs("1", "retransfer to the grid locked out")),
        },
        coords={"time": ("time", time, _attrs("s", "time from the start of the simulation")),
                "bus": net.bus["name"].astype(str).tolist(), "inverter": inv["names"], "hall": hall["names"],
                "load": plant.ld["names"], "motor": plant.mo["names"], "source": plant.src["names"],
                "feed": np.arange(out_feed.shape[2]),
                "inverter_kind": ("inverter", inv["kind"])},
        attrs={"operating_point": plant.op_name, "step_s": dt, "validity": VALIDITY, "n_nonconverged": n_nc,
               "t_close_s": float(t_close[0]), "soc": plant.soc,
               "events": "; ".join(f"{e.t_s:g} s {e.kind} {e.target} {e.value:g}" for e in events),
               "psu_holdup_fit": "t = {:.4g} s / (load + {:.3g})".format(*hall["holdup_fit"])})
    if battery_dc and any(k == "PCS" for k in inv["kind"]):
        ds = ds.merge(_battery_side(plant, ds, dt * every))
    return ds


def _battery_side(plant: Plant, ds: xr.Dataset, dt: float) -> xr.Dataset:
    """The PCS's DC power through the battery model (container granularity): voltage, current, SOC, flags."""
    from ..battery.system import BatterySystem, system_spec

    case = plant.case
    pcs = case.model("pcs", case.spec.battery.pcs)
    pcs_names = [nm for nm, k in zip(plant.inv["names"], plant.inv["kind"], strict=True) if k == "PCS"]
    p_ac = ds.inverter_p_mw.sel(inverter=pcs_names).fillna(0.0).to_numpy().T * 1e6
    p_dc = pcsmod.ac_to_dc(p_ac, pcs)
    sysm = BatterySystem(system_spec(case), "container", soc0=plant.soc)
    if sysm.shape[0] != len(pcs_names):
        raise RuntimeError(f"{sysm.shape[0]} containers but {len(pcs_names)} PCS in service")
    b = sysm.run(np.ascontiguousarray(p_dc), dt, 25.0)
    t = ds.time.to_numpy()
    out = xr.Dataset({
        "battery_p_dc_mw": (("time", "container"), b.p_dc_w.to_numpy().T / 1e6, _attrs("MW", "battery DC power "
                                                                                        "(+ discharging)")),
        "battery_v_dc_v": (("time", "container"), b.v_dc_v.to_numpy().T, _attrs("V", "battery DC voltage")),
        "battery_i_dc_a": (("time", "container"), b.i_dc_a.to_numpy().T, _attrs("A", "battery DC current")),
        "battery_t_cell_max_degc": (("time", "container"), b.t_cell_max_degc.max("rack").to_numpy().T,
                                    _attrs("degC", "hottest cell")),
        "battery_flags": (("time", "container"), b.flags.to_numpy().T if "flags" in b else
                          np.zeros((len(t), len(pcs_names)), dtype=np.int32),
                          _attrs("1", "BMS limit flags (0: within every limit)")),
    }, coords={"time": t, "container": list(b.container.values)})
    out["battery_p_avail_discharge_mw"] = ((), float(b.p_avail_discharge_w.isel(step=0).min()) / 1e6,
                                           _attrs("MW", "DC power the BMS allows each container at the start"))
    return out
