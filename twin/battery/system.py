"""Battery system model: cells in racks on each container's DC bus, BMS limits, thermal network and HVAC.

The seed system (``models/battery/containers/energy_pod_1mw_4mwh.toml``): 4 containers behind 1 MW PCS each, 11
racks of 416 x 280 Ah LFP cells in series per container (18,304 cells, 16.4 MWh DC nameplate; DESIGN.md ratings).

Electrical model
    Every modelled element is the cell model of :mod:`twin.battery.cell` (two RC pairs, OCV(SOC, T) with entropic
    coefficient and hysteresis, SOC- and temperature-dependent parameters, Arrhenius; exact exponential update of
    the RC pairs and of the thermal node). Racks in parallel share the container's DC bus: each step the rack
    currents ``I_r`` are solved so that the racks' step-mean terminal voltages agree and their sum delivers the
    container's request (current, or power ``P = V I``). Each element's step-mean voltage is affine in its current,
    ``v = e - g i`` (exact while the step stays within one piece of the OCV table, see below), so the bus is solved
    in closed form: ``V = E_eq - G_eq I`` with ``1/G_eq = sum 1/G_r`` and ``I_r = (E_r - V) / G_r``.
    After the currents are set, every element is stepped exactly (OCV path integral, exact RC and thermal updates),
    so the energy balance holds to rounding in every step. If a cell crosses an OCV table breakpoint within a step,
    the rack voltages differ by less than ``|dOCV/dSOC jump| x dSOC`` (about 1e-5 V per cell at 0.5 C and 1 s).

Granularity (``granularity=``)
    ``"container"``: one lumped cell per container (the whole string); ``"rack"``: one per rack; ``"cell"``: every
    cell, with a seeded normal spread of capacity, resistance and initial SOC (:class:`Spread`): the weakest cell
    limits its string, and racks with more resistance carry less current.

Limits (the BMS)
    Per cell: current limits with derating against temperature and SOC (:mod:`twin.battery.bms`), SOC within 0-1,
    terminal voltage (start, mean and end of the step) within the BMS window, temperature within the cell limits.
    They are turned into bounds on the container current (the racks are coupled: one weak cell limits the whole
    container); a request beyond them is reduced (never reversed) and flagged. The charge and discharge power
    available at each step's bounds are returned (``p_avail_charge_w``, ``p_avail_discharge_w``) so that dispatch
    can respect them. The affine model is exact within one OCV table piece; if the exact step still breaks a limit
    (a breakpoint crossed), the container current is reduced by bisection (flag 64).

Thermal network (``thermal`` parameter set of the container, ``models/battery/thermal/``)
    cell (its own node, conductance ``1/r_th`` to its rack) -> rack node -> container air node -> outside air
    (envelope UA), with a heat-pump HVAC on the air node that cools above and heats below its set points within its
    capacities; its electrical draw (``Q / COP``, COP falling with outdoor temperature, plus a fixed load for BMS,
    controls and fans) is reported as ``p_aux_w``, an auxiliary load of the campus. The cell nodes are updated
    exactly with their rack's temperature held over the step; the rack and air nodes by backward Euler, stable for
    any step; heat flows balance exactly. Without a thermal set, the cells see the given ambient directly.

Performance: three element loops per rack and step, vectorised by LLVM across cells, with the parameter set's tables
compiled in and cached per element as the piece holding its SOC and temperature (:mod:`twin.battery._syskernel`):
about 1e8 cell-steps/s on one thread, every cell of the seed system for a day at 1 s in about 8 s on the 2-core
development machine (``benchmarks/bench_battery.py``). The first run of a new parameter set compiles its kernel
(about a minute), cached on disk afterwards (:mod:`twin.battery._codegen`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import xarray as xr
from pydantic import model_validator

from ..case import Case, CaseError, Q, _Strict
from . import _syskernel as K
from ._codegen import kernel_for
from .bms import BmsModel
from .params import CellParams, load_cell

__all__ = ["ContainerThermal", "Spread", "SystemSpec", "BatterySystem", "system_spec", "FLAGS", "UNITS"]

#: bits of the ``flag`` output (per container and step)
FLAGS = {"current": K.F_CUR, "soc": K.F_SOC, "voltage": K.F_VOLT, "temperature": K.F_TEMP,
         "power_not_deliverable": K.F_POW, "no_feasible_current": K.F_NONE, "reduced_by_bisection": K.F_BISECT,
         "rack_opened": K.F_OPEN}


class ContainerThermal(_Strict):
    """Container thermal network and HVAC (``models/battery/thermal/<name>.toml``); units in the keys."""

    description: str = ""
    rack_heat_capacity_j_per_k: float = Q("heat capacity of one rack's structure in J/K", gt=0, le=1e9)
    rack_to_air_w_per_k: float = Q("conductance rack -> container air in W/K per rack", gt=0, le=1e7)
    air_heat_capacity_j_per_k: float = Q("heat capacity of the container air in J/K", gt=0, le=1e9)
    envelope_ua_w_per_k: float = Q("conductance container air -> outside in W/K", ge=0, le=1e6)
    hvac_cooling_kw: float = Q("HVAC cooling capacity in kW (thermal)", ge=0, le=1e4)
    hvac_heating_kw: float = Q("HVAC heating capacity in kW (thermal)", ge=0, le=1e4)
    t_set_cool_degc: float = Q("air temperature above which the HVAC cools, degC", ge=-20, le=60)
    t_set_heat_degc: float = Q("air temperature below which the HVAC heats, degC", ge=-40, le=60)
    cop_cooling_at_35c: float = Q("cooling COP at 35 degC outdoor", gt=0.5, le=20)
    cop_slope_per_k: float = Q("fall of the cooling COP per K of outdoor temperature", ge=0, le=1)
    cop_min: float = Q("lowest cooling COP", gt=0.1, le=20)
    cop_heating: float = Q("heating COP", gt=0.5, le=20)
    p_fixed_kw: float = Q("fixed auxiliary load (BMS, controls, fans) in kW", ge=0, le=1e4)

    @model_validator(mode="after")
    def _check(self):
        if not self.t_set_heat_degc < self.t_set_cool_degc:
            raise ValueError(f"t_set_heat_degc ({self.t_set_heat_degc}) must be below t_set_cool_degc "
                             f"({self.t_set_cool_degc})")
        return self


@dataclass(frozen=True)
class Spread:
    """Cell-to-cell spread for ``granularity="cell"``: relative standard deviations (normal, seeded).

    Defaults are typical of grading-sorted LFP cells of one batch (L): capacity 1 %, resistance 3 %, initial SOC
    0.5 percentage points.
    """

    capacity: float = 0.01
    resistance: float = 0.03
    soc: float = 0.005
    seed: int = 0


@dataclass
class SystemSpec:
    """What the system simulation needs: layout, cell model, BMS, thermal network."""

    n_containers: int
    racks: int
    cells_series: int
    cells_parallel: int
    cell: CellParams
    bms: BmsModel
    thermal: ContainerThermal | None = None
    names: list[str] = field(default_factory=list)

    @property
    def n_cells(self) -> int:
        return self.n_containers * self.racks * self.cells_series * self.cells_parallel


def system_spec(case: Case) -> SystemSpec:
    """The battery system of a case (its container parameter set names the ECM, BMS and thermal sets)."""
    b = case.spec.battery
    if b is None:
        raise CaseError(f"{case.path}: key 'battery': expected a battery section for the system model, found none")
    cont = case.model("battery/containers", b.container)
    cell = load_cell(case, cont.ecm or cont.cell)
    bms = case.parameter_set("battery/bms", cont.bms, BmsModel)
    thermal = case.parameter_set("battery/thermal", cont.thermal, ContainerThermal) if cont.thermal else None
    return SystemSpec(n_containers=len(b.containers), racks=cont.racks, cells_series=cont.cells_series_per_rack,
                      cells_parallel=cont.cells_parallel_per_rack, cell=cell, bms=bms, thermal=thermal,
                      names=[c.name for c in b.containers])


# ----------------------------------------------------------------------------------------------------------------
# packing


def _scal(cell: CellParams, bms: BmsModel) -> np.ndarray:
    from .params import R_GAS

    return np.array([cell.capacity_ah * 3600.0, cell.t_ref_degc + 273.15, cell.ea_r0_j_per_mol / R_GAS,
                     cell.ea_r1_j_per_mol / R_GAS, cell.ea_r2_j_per_mol / R_GAS, cell.heat_capacity_j_per_k,
                     cell.r_th_k_per_w, max(cell.v_min, bms.v_min), min(cell.v_max, bms.v_max),
                     min(cell.i_max_charge_a, bms.i_charge_max_a), min(cell.i_max_discharge_a, bms.i_discharge_max_a),
                     cell.t_min_degc + 273.15, cell.t_max_degc + 273.15, cell.hysteresis_v])


def _th(th: ContainerThermal | None, racks_per_node: float = 1.0) -> np.ndarray:
    if th is None:
        return np.zeros(14)
    k = racks_per_node  # one lumped rack node stands for all the container's racks
    return np.array([1.0, k * th.rack_heat_capacity_j_per_k, k * th.rack_to_air_w_per_k, th.air_heat_capacity_j_per_k,
                     th.envelope_ua_w_per_k, th.hvac_cooling_kw * 1e3, th.hvac_heating_kw * 1e3,
                     th.t_set_cool_degc + 273.15, th.t_set_heat_degc + 273.15, th.cop_cooling_at_35c,
                     th.cop_slope_per_k, th.cop_heating, th.p_fixed_kw * 1e3, th.cop_min])


# ----------------------------------------------------------------------------------------------------------------
# the system


_CONT_VARS = {
    K.C_V: ("v_dc_v", "V", "DC bus voltage, mean over the step"),
    K.C_I: ("i_dc_a", "A", "DC current of the container (positive discharging)"),
    K.C_P: ("p_dc_w", "W", "DC power delivered by the racks (positive discharging), mean over the step"),
    K.C_PCH: ("p_avail_charge_w", "W", "charge power available at the start of the step (BMS limits), magnitude"),
    K.C_PDIS: ("p_avail_discharge_w", "W", "discharge power available at the start of the step (BMS limits)"),
    K.C_TAIR: ("t_air_degc", "degC", "container air temperature at the end of the step"),
    K.C_QHVAC: ("q_hvac_w", "W", "heat removed by the HVAC (negative: heating)"),
    K.C_PAUX: ("p_aux_w", "W", "auxiliary electrical load: HVAC compressor and fixed load (BMS, controls, fans)"),
    K.C_QIRR: ("q_irr_w", "W", "irreversible heat of the cells (R0, RC pairs, hysteresis)"),
    K.C_QREV: ("q_rev_w", "W", "reversible (entropic) heat of the cells"),
    K.C_PRC: ("p_rc_w", "W", "rate of change of the energy held in the RC capacitors"),
    K.C_DG: ("p_chem_w", "W", "rate of release of the cells' stored (Gibbs) energy at the step's temperature"),
    K.C_QWALL: ("q_wall_w", "W", "heat from the container air to the outside (without thermal network: from the "
                                 "cells to the ambient)"),
    K.C_HSTORE: ("p_heat_stored_w", "W", "rate of change of the heat stored in cells, racks and air"),
}
_RACK_VARS = {
    K.R_I: ("i_rack_a", "A", "rack (string) current, positive discharging"),
    K.R_V: ("v_rack_v", "V", "rack terminal voltage, mean over the step"),
    K.R_SOCMIN: ("soc_min", "1", "lowest cell SOC in the rack, end of the step"),
    K.R_SOCMAX: ("soc_max", "1", "highest cell SOC in the rack, end of the step"),
    K.R_SOCMEAN: ("soc_mean", "1", "mean cell SOC in the rack, end of the step"),
    K.R_VMIN: ("v_cell_min_v", "V", "lowest cell voltage in the rack, mean over the step"),
    K.R_VMAX: ("v_cell_max_v", "V", "highest cell voltage in the rack, mean over the step"),
    K.R_TMAX: ("t_cell_max_degc", "degC", "highest cell temperature in the rack, end of the step"),
    K.R_TMEAN: ("t_cell_mean_degc", "degC", "mean cell temperature in the rack, end of the step"),
    K.R_TRACK: ("t_rack_degc", "degC", "rack node temperature, end of the step"),
}
_EL_VARS = {
    K.E_V: ("v", "V", "cell terminal voltage, mean over the step"),
    K.E_VEND: ("v_end", "V", "cell terminal voltage at the end of the step"),
    K.E_I: ("i", "A", "cell current, positive discharging"),
    K.E_SOC: ("soc", "1", "cell SOC at the end of the step"),
    K.E_T: ("t_degc", "degC", "cell temperature at the end of the step"),
    K.E_QIRR: ("q_irr_w", "W", "cell irreversible heat"),
    K.E_QREV: ("q_rev_w", "W", "cell reversible heat"),
    K.E_QAMB: ("q_amb_w", "W", "heat from the cell to its rack node (or ambient)"),
    K.E_PRC: ("p_rc_w", "W", "rate of change of the cell's RC energy"),
}
#: output name -> row of the raw container / rack outputs (:meth:`BatterySystem.run_power_chunk`)
CONT_INDEX = {name: idx for idx, (name, _, _) in _CONT_VARS.items()}
RACK_INDEX = {name: idx for idx, (name, _, _) in _RACK_VARS.items()}
#: name -> (units, long name) of every output of :meth:`BatterySystem.run`
UNITS = {name: (unit, long) for table in (_CONT_VARS, _RACK_VARS) for name, unit, long in table.values()}
UNITS.update({"cell_" + name: (unit, long) for name, unit, long in _EL_VARS.values()})
UNITS["flag"] = ("1", "limit flags (bits: " + ", ".join(f"{v} {k}" for k, v in FLAGS.items()) + ")")
_KELVIN = {"t_air_degc", "t_cell_max_degc", "t_cell_mean_degc", "t_rack_degc", "t_degc"}


class BatterySystem:
    """The battery system's state and its simulation; the state carries over from one :meth:`run` to the next.

    Parameters
    ----------
    spec : SystemSpec
        From :func:`system_spec` (a case) or built by hand.
    granularity : {"container", "rack", "cell"}
        One lumped cell per container, one per rack, or every cell with a seeded spread.
    soc0 : float
        Initial SOC (0-1) of every cell (the spread adds to it for ``"cell"``).
    t0_degc : float
        Initial temperature of cells, racks and air in degC.
    spread : Spread
        Cell-to-cell spread for ``"cell"`` (ignored otherwise).
    """

    def __init__(self, spec: SystemSpec, granularity: str = "rack", soc0: float = 0.5, t0_degc: float = 25.0,
                 spread: Spread | None = None):
        if granularity not in ("container", "rack", "cell"):
            raise ValueError(f"granularity: expected 'container', 'rack' or 'cell', found {granularity!r}")
        if not 0.0 <= soc0 <= 1.0:
            raise ValueError(f"soc0: expected a value within 0-1, found {soc0}")
        self.spec = spec
        self.granularity = granularity
        nc, ns, npar = spec.n_containers, spec.cells_series, spec.cells_parallel
        if granularity == "container":
            nr, ne, self.s_mult, self.p_mult = 1, 1, ns, npar * spec.racks
        elif granularity == "rack":
            nr, ne, self.s_mult, self.p_mult = spec.racks, 1, ns, npar
        else:
            nr, ne, self.s_mult, self.p_mult = spec.racks, ns, 1, npar
        shape = (nc, nr, ne)
        self.shape = shape
        # one state array (container, rack, quantity, element): the kernel's layout
        self.state = np.empty((nc, nr, K.N_S, ne))
        q = spec.cell.capacity_ah * 3600.0
        capq = np.full(shape, q)
        rsc = np.ones(shape)
        z = np.full(shape, float(soc0))
        if granularity == "cell":
            sp = spread or Spread()
            rng = np.random.default_rng(sp.seed)
            capq *= np.clip(1.0 + sp.capacity * rng.standard_normal(shape), 0.5, 1.5)
            rsc *= np.clip(1.0 + sp.resistance * rng.standard_normal(shape), 0.5, 2.0)
            z = np.clip(z + sp.soc * rng.standard_normal(shape), 0.0, 1.0)
        self.state[:, :, K.S_Z] = z
        self.state[:, :, K.S_V1] = 0.0
        self.state[:, :, K.S_V2] = 0.0
        self.state[:, :, K.S_T] = t0_degc + 273.15
        self.state[:, :, K.S_Q] = capq
        self.state[:, :, K.S_RS] = rsc
        self._bol_q, self._bol_r = capq, rsc  # beginning of life, the base of set_ageing
        self.t_rack = np.full((nc, nr), t0_degc + 273.15)
        self.t_air = np.full(nc, t0_degc + 273.15)
        self._k = kernel_for(spec.cell, spec.bms)
        self._win = np.array([spec.bms.t_charge_min_degc, spec.bms.t_charge_max_degc, spec.bms.t_discharge_min_degc,
                              spec.bms.t_discharge_max_degc]) + 273.15
        self._scal = _scal(spec.cell, spec.bms)
        self._th = _th(spec.thermal, spec.racks / nr)
        self.time_s = 0.0
        self._chunk_buf: dict = {}

    def _get(self, row):
        return self.state[:, :, row, :]

    z = property(lambda self: self._get(K.S_Z), doc="SOC per element (container, rack, element)")
    v1 = property(lambda self: self._get(K.S_V1), doc="first RC voltage per element, V")
    v2 = property(lambda self: self._get(K.S_V2), doc="second RC voltage per element, V")
    tk = property(lambda self: self._get(K.S_T), doc="element temperature, K")
    capq = property(lambda self: self._get(K.S_Q), doc="element capacity, A s")
    rsc = property(lambda self: self._get(K.S_RS), doc="element resistance factor")

    def set_ageing(self, cap_scale, r_scale):
        """Scale every element's capacity and resistances from beginning of life (ageing feedback).

        ``cap_scale`` and ``r_scale`` broadcast to (container, rack, element); SOC is kept (the charge scales).
        """
        for name, v in (("cap_scale", cap_scale), ("r_scale", r_scale)):
            a = np.asarray(v, dtype=float)
            if not np.all(np.isfinite(a)) or np.any(a <= 0):
                raise ValueError(f"set_ageing: {name} must be finite and > 0 (1 = beginning of life), found "
                                 f"{a.min() if a.size else a} to {a.max() if a.size else a}")
        self.state[:, :, K.S_Q] = self._bol_q * np.broadcast_to(cap_scale, self.shape)
        self.state[:, :, K.S_RS] = self._bol_r * np.broadcast_to(r_scale, self.shape)

    def snapshot(self) -> dict:
        """A copy of the whole state (cells, racks, air, time, ageing scales): :meth:`restore` returns to it."""
        return {"state": self.state.copy(), "t_rack": self.t_rack.copy(), "t_air": self.t_air.copy(),
                "time_s": self.time_s}

    def restore(self, snap: dict) -> None:
        """Return to a state taken with :meth:`snapshot` (e.g. to try a dispatch and take it back)."""
        if snap["state"].shape != self.state.shape:
            raise ValueError(f"restore: snapshot of shape {snap['state'].shape}, this system is {self.state.shape}")
        self.state[...] = snap["state"]
        self.t_rack[...] = snap["t_rack"]
        self.t_air[...] = snap["t_air"]
        self.time_s = snap["time_s"]

    @property
    def cells_per_element(self) -> int:
        return self.s_mult * self.p_mult

    def soc(self) -> np.ndarray:
        """Mean SOC per container (capacity-weighted)."""
        return (self.z * self.capq).sum(axis=(1, 2)) / self.capq.sum(axis=(1, 2))

    def run_power_chunk(self, p_dc_w: np.ndarray, dt_s: float, t_amb_k: np.ndarray):
        """Low level, for closed loops that step the system many times: one kernel call in power mode.

        ``p_dc_w`` and ``t_amb_k`` are C-contiguous ``(n_containers, nt)`` float64 arrays (W, positive discharging;
        K), not checked. Returns ``(o_cont, o_rack, o_flag)``: the kernel's raw outputs (temperatures in K), indexed
        by :data:`CONT_INDEX` and :data:`RACK_INDEX`; the buffers are reused by the next call of the same length,
        so copy what you keep. :meth:`run` is the checked interface.
        """
        nc, nr, ne = self.shape
        nt = p_dc_w.shape[1]
        buf = self._chunk_buf.get(nt)
        if buf is None:
            buf = (np.empty((K.N_CONT, nc, nt)), np.empty((K.N_RACK, nc, nr, nt)), np.empty((K.N_EL, nc, nr, ne, 1)),
                   np.empty((nc, nt), dtype=np.int32))
            self._chunk_buf[nt] = buf
        oc, orack, oel, of = buf
        self._k.run_system(K.MODE_POWER, p_dc_w, t_amb_k, float(dt_s), float(self.s_mult), float(self.p_mult),
                           self._scal, self._win, self._th, self.state, self.t_rack, self.t_air, oc, orack, oel, of,
                           1)
        self.time_s += dt_s * nt
        return oc, orack, of

    def run(self, request, dt_s: float, t_amb_degc, *, mode: str = "power", record: str = "rack",
            chunk_steps: int = 3600, progress: bool = False, as_dataset: bool = True):
        """Simulate ``nt`` steps of ``dt_s`` seconds from the present state.

        Parameters
        ----------
        request : array_like, shape (nt,) or (n_containers, nt)
            Per container: DC power in W (``mode="power"``) or DC current in A (``mode="current"``), positive
            discharging; a 1-D request applies to every container.
        dt_s : float
            Step in s (any value from 1 ms to 1 h; the updates are exact for a constant request over the step).
        t_amb_degc : float or array_like, shape (nt,) or (n_containers, nt)
            Outdoor temperature (with a thermal network) or the cells' ambient (without), degC.
        record : {"container", "rack", "cell"}
            Outputs kept: per container; also per rack (BMS view: min/max cell voltage, SOC, temperature); also
            every element (small systems only).
        chunk_steps : int
            Steps per kernel call (memory of the rack outputs; progress bar granularity).
        as_dataset : bool
            False: return a dict of numpy arrays with the same names and shapes (container, [rack, [cell,]] step),
            without building the Dataset: for closed-loop control that steps the system one interval at a time
            (the units are those of :data:`UNITS`).

        Returns
        -------
        xarray.Dataset or dict of numpy.ndarray
            Dims ``step`` (coordinate ``time_s``, start of the step), ``container``, and ``rack``/``cell`` as
            recorded; ``units`` and ``long_name`` on every variable.
        """
        from tqdm.auto import tqdm

        nc, nr, ne = self.shape
        if mode not in ("power", "current"):
            raise ValueError(f"mode: expected 'power' or 'current', found {mode!r}")
        if record not in ("container", "rack", "cell"):
            raise ValueError(f"record: expected 'container', 'rack' or 'cell', found {record!r}")
        if not dt_s > 0:
            raise ValueError(f"dt_s: expected a step > 0 s, found {dt_s}")
        req = np.asarray(request, dtype=np.float64)
        req = np.broadcast_to(req, (nc, req.shape[-1])) if req.ndim == 1 else req
        if req.ndim != 2 or req.shape[0] != nc:
            raise ValueError(f"request: expected shape (nt,) or ({nc}, nt), found {np.shape(request)}")
        if not np.all(np.isfinite(req)):
            raise ValueError("request: holds non-finite values")
        nt = req.shape[1]
        ta = np.asarray(t_amb_degc, dtype=np.float64) + 273.15
        try:
            ta = np.broadcast_to(ta, (nc, nt))
        except ValueError:
            raise ValueError(f"t_amb_degc: expected a scalar, ({nt},) or ({nc}, {nt}), found "
                             f"{np.shape(t_amb_degc)}") from None
        rec_el = record == "cell"
        level = 2 if rec_el else (0 if record == "container" else 1)  # the kernel's record level
        o_cont = np.empty((K.N_CONT, nc, nt))
        o_rack = np.empty((K.N_RACK, nc, nr, nt)) if record != "container" else None
        o_el = np.empty((K.N_EL, nc, nr, ne, nt)) if rec_el else np.empty((K.N_EL, nc, nr, ne, 1))
        o_flag = np.empty((nc, nt), dtype=np.int32)
        mcode = K.MODE_POWER if mode == "power" else K.MODE_CURRENT
        bar = tqdm(total=nt, desc="battery", unit="step", disable=not progress, leave=False)
        for k0 in range(0, nt, chunk_steps):
            k1 = min(nt, k0 + chunk_steps)
            n = k1 - k0
            oc = np.empty((K.N_CONT, nc, n))
            orack = np.empty((K.N_RACK, nc, nr, n))  # contiguous per chunk (one compiled kernel signature)
            oel = np.empty((K.N_EL, nc, nr, ne, n)) if rec_el else o_el
            of = np.empty((nc, n), dtype=np.int32)
            self._k.run_system(mcode, np.ascontiguousarray(req[:, k0:k1]), np.ascontiguousarray(ta[:, k0:k1]),
                               float(dt_s), float(self.s_mult), float(self.p_mult), self._scal, self._win, self._th,
                               self.state, self.t_rack, self.t_air, oc, orack, oel, of, level)
            o_cont[..., k0:k1] = oc
            o_flag[:, k0:k1] = of
            if o_rack is not None:
                o_rack[..., k0:k1] = orack
            if rec_el:
                o_el[..., k0:k1] = oel
            bar.update(n)
        bar.close()
        t = self.time_s + dt_s * np.arange(nt)
        self.time_s += dt_s * nt
        if not as_dataset:
            out = {name: o_cont[idx] - (273.15 if name in _KELVIN else 0.0) for idx, (name, _, _) in _CONT_VARS.items()}
            out["flag"] = o_flag
            if o_rack is not None:
                out.update({name: o_rack[idx] - (273.15 if name in _KELVIN else 0.0)
                            for idx, (name, _, _) in _RACK_VARS.items()})
            if rec_el:
                out.update({"cell_" + name: o_el[idx] - (273.15 if name in _KELVIN else 0.0)
                            for idx, (name, _, _) in _EL_VARS.items()})
            out["time_s"] = t
            return out
        data = {}
        for idx, (name, unit, long) in _CONT_VARS.items():
            v = o_cont[idx] - (273.15 if name in _KELVIN else 0.0)
            data[name] = (("container", "step"), v, {"units": unit, "long_name": long})
        data["flag"] = (("container", "step"), o_flag, {"units": "1", "long_name": "limit flags (bits: " + ", ".join(
            f"{v} {k}" for k, v in FLAGS.items()) + ")"})
        if o_rack is not None:
            for idx, (name, unit, long) in _RACK_VARS.items():
                v = o_rack[idx] - (273.15 if name in _KELVIN else 0.0)
                data[name] = (("container", "rack", "step"), v, {"units": unit, "long_name": long})
        if rec_el:
            for idx, (name, unit, long) in _EL_VARS.items():
                v = o_el[idx] - (273.15 if name in _KELVIN else 0.0)
                data["cell_" + name] = (("container", "rack", "cell", "step"), v, {"units": unit, "long_name": long})
        ds = xr.Dataset(data, coords={"time_s": ("step", t, {"units": "s", "long_name": "start of the step"})})
        names = self.spec.names if len(self.spec.names) == nc else [f"C{i + 1}" for i in range(nc)]
        ds = ds.assign_coords(container=names)
        ds.attrs.update({"granularity": self.granularity, "dt_s": float(dt_s), "cells_per_element":
                         self.cells_per_element, "n_cells": self.spec.n_cells, "mode": mode})
        return ds
