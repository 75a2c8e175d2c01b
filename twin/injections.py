"""Per-element P and Q of the campus net over time, from the drivers and the battery: what the batch load flow takes.

The network (:func:`twin.network.build_net`) has one pandapower ``load`` per GPU-hall feed (group ``it``), per
cooling feed for the VSD compressors (group ``cooling``) beside its direct-on-line pump and fan ``motor`` elements,
per battery container for its auxiliaries (group ``bess_aux``) and per campus auxiliary (group ``aux``); one
``sgen`` per PV inverter (type ``PV``) and per container PCS (type ``PCS``). This module spreads the drivers'
totals over those elements as :func:`twin.network.apply_operating_point` does for one snapshot:

- IT: each hall's power and reactive power (:func:`twin.gpu.it_load`) split evenly over its feeds, less the
  shedding (GPU power capping) in proportion to the hall's share of the campus IT load;
- cooling: each plant's electrical power split evenly over its feeds, and on each feed between its motors (at
  rated loading when the demand covers them, scaled down below that) and its compressors
  (:func:`twin.load.split_cooling_feed`, vectorised here); reactive power from the drives' and motors' power
  factors;
- campus auxiliaries at their rated power and power factor; battery auxiliaries per container from the battery
  model, at the container's auxiliary power factor;
- PV per inverter, less the curtailment in proportion; PCS per container, with the reactive power of the PCS's
  ``q_mode`` (:func:`twin.pcs.q_setpoint`) within its capability (:func:`twin.pcs.capability`).
"""

from __future__ import annotations

import numpy as np

from .case import Case
from .load import motor_electrical_mw

__all__ = ["ElementMap", "element_map"]


class ElementMap:
    """Which column of the batch load flow's arrays each driver goes to, for one net.

    Build with :func:`element_map`; :meth:`arrays` fills the arrays for a horizon.
    """

    def __init__(self, case: Case, net):
        s = case.spec
        ld, mo, sg = net.load, net.motor, net.sgen
        self.n_load, self.n_motor, self.n_sgen = len(ld), len(mo), len(sg)
        self.halls = [h.name for h in s.halls]
        self.it_cols = [np.flatnonzero(((ld.group == "it") & (ld.unit == h)).to_numpy()) for h in self.halls]
        self.cooling = []
        for c in s.cooling_plants:
            model = case.model("cooling", c.model)
            cols = np.flatnonzero(((ld.group == "cooling") & (ld.unit == c.name)).to_numpy())
            mcols = np.flatnonzero((mo.unit == c.name).to_numpy())
            motors_mw = sum(m.count_per_feed * motor_electrical_mw(m.pn_mech_kw, m.loading_percent,
                                                                   m.efficiency_percent) for m in model.motors)
            m_p = (mo.pn_mech_mw / (mo.efficiency_percent / 100.0) * mo.rated_loading_percent / 100.0
                   ).to_numpy(float)[mcols]
            m_tan = np.tan(np.arccos(mo.cos_phi.to_numpy(float)[mcols]))
            self.cooling.append(dict(name=c.name, cols=cols, mcols=mcols, motors_mw=motors_mw, m_p=m_p, m_tan=m_tan,
                                     tan=float(np.tan(np.arccos(model.drive_power_factor))),
                                     n_feeds=len(c.feeds)))
        aux = (ld.group == "aux").to_numpy()
        self.aux_cols = np.flatnonzero(aux)
        self.aux_p = ld.rated_p_mw.to_numpy(float)[aux] if aux.any() else np.zeros(0)
        self.aux_q = (self.aux_p * np.tan(np.arccos(ld.rated_pf.to_numpy(float)[aux]))) if aux.any() else np.zeros(0)
        self.containers = []
        self.bess_cols = np.zeros(0, dtype=int)
        self.pcs_cols = np.zeros(0, dtype=int)
        self.bess_tan = 0.0
        if s.battery is not None:
            self.containers = [c.name for c in s.battery.containers]
            self.bess_cols = np.array([int(np.flatnonzero(((ld.group == "bess_aux") & (ld.unit == c)).to_numpy())[0])
                                       for c in self.containers])
            names = sg["name"].astype(str).tolist()
            self.pcs_cols = np.array([names.index(f"{c}_PCS") for c in self.containers])
            cont = case.model("battery/containers", s.battery.container)
            self.bess_tan = float(np.tan(np.arccos(cont.aux_power_factor)))
        names = sg["name"].astype(str).tolist()
        self.pv_systems = [p.name for p in s.pv]
        self.pv_cols = np.array([names.index(f"{p}_INV") for p in self.pv_systems], dtype=int)
        self.pcs_bus = sg.bus.to_numpy()[self.pcs_cols] if len(self.pcs_cols) else np.zeros(0, dtype=int)
        bus_row = {b: k for k, b in enumerate(net.bus.index)}
        self.pcs_bus_row = np.array([bus_row[b] for b in self.pcs_bus], dtype=int)

    def arrays(self, it_p_mw, it_q_mvar, cooling_p_mw, pv_p_mw, p_shed_mw=None, p_curtailed_mw=None,
               battery_p_mw=None, battery_q_mvar=None, battery_aux_mw=None) -> dict[str, np.ndarray]:
        """The six arrays of :meth:`twin.netbatch.BatchModel.run` for ``n`` steps.

        Parameters
        ----------
        it_p_mw, it_q_mvar : array (n, hall)
            IT power and reactive power per hall (MW, Mvar), before shedding.
        cooling_p_mw : array (n, cooling_plant)
            Electrical power per cooling plant (MW).
        pv_p_mw : array (n, pv_system)
            Available PV AC power per system (MW).
        p_shed_mw, p_curtailed_mw : array (n,), optional
            IT power shed and PV power curtailed (MW).
        battery_p_mw, battery_q_mvar, battery_aux_mw : array (n, container), optional
            PCS active and reactive power (+ delivered) and container auxiliaries (MW, Mvar).
        """
        it_p = np.asarray(it_p_mw, float)
        n = it_p.shape[0]
        it_q = np.asarray(it_q_mvar, float)
        lp, lq = np.zeros((n, self.n_load)), np.zeros((n, self.n_load))
        mp, mq = np.zeros((n, self.n_motor)), np.zeros((n, self.n_motor))
        gp, gq = np.zeros((n, self.n_sgen)), np.zeros((n, self.n_sgen))
        keep = np.ones(n)
        if p_shed_mw is not None:
            total = it_p.sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                keep = np.where(total > 0, 1.0 - np.asarray(p_shed_mw, float) / total, 1.0)
        for j, cols in enumerate(self.it_cols):
            lp[:, cols] = (it_p[:, j] * keep / len(cols))[:, None]
            lq[:, cols] = (it_q[:, j] * keep / len(cols))[:, None]
        cool = np.asarray(cooling_p_mw, float).reshape(n, -1)
        for j, c in enumerate(self.cooling):
            per_feed = cool[:, j] / c["n_feeds"]
            if c["motors_mw"] > 0:
                scale = np.minimum(per_feed / c["motors_mw"], 1.0)
                comp = np.maximum(per_feed - c["motors_mw"], 0.0)
            else:
                scale, comp = np.ones(n), per_feed
            lp[:, c["cols"]] = comp[:, None]
            lq[:, c["cols"]] = (comp * c["tan"])[:, None]
            mp[:, c["mcols"]] = scale[:, None] * c["m_p"][None, :]
            mq[:, c["mcols"]] = mp[:, c["mcols"]] * c["m_tan"][None, :]
        lp[:, self.aux_cols] = self.aux_p[None, :]
        lq[:, self.aux_cols] = self.aux_q[None, :]
        pv = np.asarray(pv_p_mw, float).reshape(n, -1)
        if len(self.pv_cols):
            if p_curtailed_mw is not None:
                tot = pv.sum(axis=1)
                with np.errstate(invalid="ignore", divide="ignore"):
                    f = np.where(tot > 0, 1.0 - np.asarray(p_curtailed_mw, float) / tot, 1.0)
                pv = pv * np.clip(f, 0.0, 1.0)[:, None]
            gp[:, self.pv_cols] = pv
        if len(self.pcs_cols):
            if battery_p_mw is not None:
                gp[:, self.pcs_cols] = battery_p_mw
            if battery_q_mvar is not None:
                gq[:, self.pcs_cols] = battery_q_mvar
            if battery_aux_mw is not None:
                lp[:, self.bess_cols] = battery_aux_mw
                lq[:, self.bess_cols] = np.asarray(battery_aux_mw, float) * self.bess_tan
        return {"load_p_mw": lp, "load_q_mvar": lq, "motor_p_mw": mp, "motor_q_mvar": mq, "sgen_p_mw": gp,
                "sgen_q_mvar": gq}

    def cooling_total_mw(self, cooling_p_mw) -> np.ndarray:
        """The cooling power as the net draws it (motors + compressors), per step (MW)."""
        return np.asarray(cooling_p_mw, float).reshape(np.shape(cooling_p_mw)[0], -1).sum(axis=1)


def element_map(case: Case, net) -> ElementMap:
    """The :class:`ElementMap` of a case's net."""
    return ElementMap(case, net)
