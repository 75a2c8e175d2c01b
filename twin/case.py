"""Study cases: load a campus from ``networks/*.toml`` and its parameter sets from ``models/``, and check them.

A case file describes one campus; it names parameter sets (cables, transformers, switchgear, servers, cooling
plant, battery container, PCS, PV system, criteria) that live as TOML files under ``models/<kind>/<name>.toml``.
Everything is validated when loaded: unknown or missing keys, wrong types, impossible or implausible values
(a negative rating, a SOC outside 0-1, a length in metres where kilometres are expected), and references (a feed
to a bus section that does not exist, a parameter set that is not there). Every error names the file, the key,
what was expected and what was found, in one line (:class:`CaseError`).

Schemas are pydantic models with ``extra="forbid"``; keys carry their unit in their name (``length_km``,
``sn_mva``, ``p_kw``) as DESIGN.md asks, and each field's description says the unit and the accepted range.
"""

from __future__ import annotations

import difflib
import hashlib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from . import paths

__all__ = ["CaseError", "Case", "load_case", "CaseSpec", "OperatingPoint"]


class CaseError(ValueError):
    """A study case or parameter set is invalid. The message is one line: file, key, expected, found."""


# --------------------------------------------------------------------------------------------------------------
# helpers for typed, unit-bearing fields


def Q(desc: str, *, gt: float | None = None, ge: float | None = None, le: float | None = None,
      lt: float | None = None, default: Any = ...):
    """A float field with a unit (in ``desc``) and a plausible range (which also catches unit mistakes)."""
    rng = []
    if gt is not None:
        rng.append(f"> {gt:g}")
    if ge is not None:
        rng.append(f">= {ge:g}")
    if lt is not None:
        rng.append(f"< {lt:g}")
    if le is not None:
        rng.append(f"<= {le:g}")
    full = f"{desc}, {' and '.join(rng)}" if rng else desc
    return Field(default, gt=gt, ge=ge, le=le, lt=lt, description=full)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


Name = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z][A-Za-z0-9_]*$",
                            description="a name of letters, digits and underscores starting with a letter")]
ModelRef = Annotated[str, Field(min_length=1, description="the name of a parameter set under models/")]


# --------------------------------------------------------------------------------------------------------------
# parameter sets (models/<kind>/<name>.toml)


class CableModel(_Strict):
    description: str = ""
    vn_kv: float = Q("rated voltage in kV", gt=0.1, le=500)
    conductor: Literal["copper", "aluminium"]
    insulation: Literal["xlpe", "epr", "pvc"]
    cross_section_mm2: float = Q("conductor cross-section in mm2", gt=1, le=3000)
    r_ohm_per_km: float = Q("positive-sequence resistance at 20 degC in ohm/km", gt=0, le=20)
    x_ohm_per_km: float = Q("positive-sequence reactance in ohm/km", ge=0, le=5)
    c_nf_per_km: float = Q("capacitance in nF/km", ge=0, le=5000)
    r0_ohm_per_km: float = Q("zero-sequence resistance in ohm/km", gt=0, le=100)
    x0_ohm_per_km: float = Q("zero-sequence reactance in ohm/km", ge=0, le=20)
    c0_nf_per_km: float = Q("zero-sequence capacitance in nF/km", ge=0, le=5000)
    max_i_ka: float = Q("continuous current rating in kA", gt=0, le=10)
    alpha_per_k: float = Q("temperature coefficient of conductor resistance in 1/K", gt=0, le=0.01)
    t_max_degc: float = Q("continuous conductor temperature limit in degC", gt=40, le=120)
    t_sc_max_degc: float = Q("short-circuit conductor temperature limit in degC", gt=100, le=400)
    k_adiabatic: float = Q("adiabatic factor k in A*s^0.5/mm2", gt=50, le=250)


class TransformerModel(_Strict):
    description: str = ""
    kind: Literal["dry", "oil"]
    thermal: ModelRef | None = Field(None, description="thermal parameter set under models/thermal/ (IEC 60076-7 "
                                     "for oil, IEC 60076-12 for dry type); none: no thermal check over time")
    insulation_class: Literal["F", "H"] | None = None
    cooling: str | None = None
    sn_mva: float = Q("rated power in MVA", gt=0, le=1000)
    vn_hv_kv: float = Q("HV rated voltage in kV", gt=0.1, le=500)
    vn_lv_kv: float = Q("LV rated voltage in kV", gt=0.1, le=500)
    vk_percent: float = Q("short-circuit voltage in %", gt=1, le=30)
    vkr_percent: float = Q("resistive part of short-circuit voltage in %", gt=0, le=5)
    pfe_kw: float = Q("no-load loss in kW", ge=0, le=1000)
    i0_percent: float = Q("no-load current in %", ge=0, le=10)
    vector_group: Literal["Dyn", "Yyn", "YNd", "Yzn", "YNyn", "Dd", "Yy"]
    shift_degree: float = Q("phase shift in degrees", ge=0, lt=360)
    vk0_percent: float = Q("zero-sequence short-circuit voltage in %", gt=0, le=30)
    vkr0_percent: float = Q("zero-sequence resistive short-circuit voltage in %", ge=0, le=5)
    mag0_percent: float = Q("zero-sequence magnetising impedance in %", ge=0, le=1e6)
    mag0_rx: float = Q("R/X of the zero-sequence magnetising impedance", ge=0, le=100)
    si0_hv_partial: float = Q("HV share of the zero-sequence leakage impedance", ge=0, le=1)
    tap_neutral: int = 0
    tap_min: int = 0
    tap_max: int = 0
    tap_step_percent: float = Q("tap step in %", ge=0, le=5, default=0.0)
    tap_pos: int = 0

    @model_validator(mode="after")
    def _check(self):
        if self.vkr_percent >= self.vk_percent:
            raise ValueError(f"vkr_percent ({self.vkr_percent}) must be below vk_percent ({self.vk_percent})")
        if self.vn_lv_kv >= self.vn_hv_kv:
            raise ValueError(f"vn_lv_kv ({self.vn_lv_kv}) must be below vn_hv_kv ({self.vn_hv_kv})")
        if not self.tap_min <= self.tap_pos <= self.tap_max:
            raise ValueError(f"tap_pos {self.tap_pos} outside [{self.tap_min}, {self.tap_max}]")
        return self


class SwitchgearModel(_Strict):
    description: str = ""
    kind: Literal["mv_switchgear", "lv_board"]
    ur_kv: float = Q("rated voltage in kV", gt=0.1, le=500)
    ir_a: float = Q("rated normal current in A", gt=0, le=10000)
    breaking_ka: float = Q("rated short-circuit breaking current in kA", gt=0, le=300)
    making_peak_ka: float = Q("rated short-circuit making current in kA (peak)", gt=0, le=700)
    peak_withstand_ka: float = Q("rated peak withstand current in kA", gt=0, le=700)
    short_time_ka: float = Q("rated short-time withstand current in kA", gt=0, le=300)
    short_time_s: float = Q("rated duration of short circuit in s", gt=0, le=10)


class ServerModel(_Strict):
    @model_validator(mode="after")
    def _check(self):
        if self.server_overhead_idle_kw > self.server_overhead_kw:
            raise ValueError(f"server_overhead_idle_kw ({self.server_overhead_idle_kw}) exceeds server_overhead_kw "
                             f"({self.server_overhead_kw})")
        return self

    description: str = ""
    gpus_per_server: int = Field(ge=1, le=72, description="GPUs per server, 1-72")
    gpu_kw: float = Q("GPU power at full training load in kW", gt=0, le=5)
    gpu_idle_fraction: float = Q("GPU idle power as a fraction of full power", ge=0, le=1)
    server_overhead_kw: float = Q("server power other than GPUs (CPUs, memory, fans, PSU loss) at full load in kW",
                                  ge=0, le=50)
    server_overhead_idle_kw: float = Q("server power other than GPUs at idle in kW", ge=0, le=50)
    power_factor: float = Q("power factor", gt=0.5, le=1)
    # optional (twin.gpu, the dynamic hall model); the defaults keep the simple model's meaning
    gpu_memory_bound_fraction: float = Q("GPU power in a memory-bound phase (inference) as a fraction of full "
                                         "power", ge=0, le=1, default=0.75)
    gpu_comm_fraction: float = Q("GPU power in a communication phase of training as a fraction of full power",
                                 ge=0, le=1, default=0.45)
    psu_efficiency: float = Q("power-supply efficiency at full load; 1 when the overhead includes the PSU loss",
                              gt=0.5, le=1, default=1.0)
    psu_efficiency_idle: float | None = Q("power-supply efficiency at idle (default: psu_efficiency)", gt=0.5,
                                          le=1, default=None)
    power_factor_idle: float | None = Q("power factor at idle (default: power_factor)", gt=0.5, le=1,
                                        default=None)
    rise_time_s: float = Q("duration of the server's linear power ramp on a workload start or stop in s", ge=0,
                           le=60, default=0.0)


class MotorSpec(_Strict):
    name: Name
    count_per_feed: int = Field(ge=0, le=100, description="motors of this kind on each feed, 0-100")
    pn_mech_kw: float = Q("rated mechanical power in kW", gt=0, le=20000)
    loading_percent: float = Q("mechanical loading in % of rated", ge=0, le=120)
    efficiency_percent: float = Q("efficiency in %", gt=50, le=100)
    cos_phi: float = Q("power factor at the operating point", gt=0.3, le=1)
    lrc_pu: float = Q("locked-rotor current in pu of rated current", gt=1, le=12)
    rx: float = Q("locked-rotor R/X", gt=0, le=1)


class CoolingModel(_Strict):
    description: str = ""
    drive_power_factor: float = Q("power factor of the VSD-driven compressors", gt=0.5, le=1)
    motors: list[MotorSpec] = Field(default_factory=list)
    # operating model over time (twin/cooling.py); defaults are typical values (L), the TOML cites its sources
    motor_roles: dict[str, Literal["pump", "fan"]] = Field(
        default_factory=dict, description="role of each motor by name: 'pump' (flow follows the heat load) or "
        "'fan' (heat-rejection fan, follows the heat rejected)")
    heat_rejection: Literal["cooling_tower", "dry_cooler"] = "cooling_tower"
    design_heat_mw: float | None = Q("design heat load of one plant in MW (none: the campus's full IT load "
                                     "with losses, shared over the plants)", gt=0, le=2000, default=None)
    heat_loss_fraction: float = Q("heat from losses in the white space per unit of IT power", ge=0, le=0.3,
                                  default=0.03)
    chw_supply_degc: float = Q("chilled-water supply temperature in degC", ge=4, le=35, default=15.0)
    chw_return_degc: float = Q("chilled-water return temperature in degC", ge=6, le=45, default=21.0)
    evaporator_approach_k: float = Q("evaporator approach in K", ge=0, le=10, default=1.5)
    condenser_approach_k: float = Q("condenser approach in K", ge=0, le=10, default=1.5)
    condenser_range_k: float = Q("condenser-water range in K", gt=0, le=15, default=5.0)
    tower_approach_k: float = Q("heat-rejection approach to the wet-bulb (tower) or dry-bulb (dry cooler) "
                                "in K", ge=0, le=20, default=4.0)
    min_condenser_water_degc: float = Q("lowest condenser-water temperature in chiller operation in degC",
                                        ge=5, le=35, default=18.0)
    carnot_fraction: float = Q("chiller COP as a fraction of the Carnot COP", gt=0.1, le=0.9, default=0.5)
    cop_min: float = Q("lowest chiller COP", gt=0.5, le=10, default=2.0)
    cop_max: float = Q("highest chiller COP", gt=1, le=40, default=12.0)
    economiser: bool = True
    economiser_hx_approach_k: float = Q("free-cooling heat-exchanger approach in K", ge=0, le=10, default=2.0)
    pump_min_fraction: float = Q("pump power at zero heat load per unit of design", ge=0, le=1, default=0.6)
    fan_min_fraction: float = Q("heat-rejection fan power at zero heat rejected per unit of design", ge=0, le=1,
                                default=0.2)
    air_side_kw_per_kw_it: float = Q("CRAH and CDU fans and pumps in kW per kW of IT", ge=0, le=0.2,
                                     default=0.02)


class CellModel(_Strict):
    description: str = ""
    chemistry: str
    capacity_ah: float = Q("rated capacity in Ah", gt=0, le=2000)
    v_nominal: float = Q("nominal voltage in V", gt=0.5, le=5)
    v_min: float = Q("discharge cut-off voltage in V", gt=0.5, le=5)
    v_max: float = Q("charge cut-off voltage in V", gt=0.5, le=5)
    mass_kg: float = Q("mass in kg", gt=0, le=100)

    @model_validator(mode="after")
    def _check(self):
        if not self.v_min < self.v_nominal < self.v_max:
            raise ValueError(f"need v_min < v_nominal < v_max, got {self.v_min}, {self.v_nominal}, {self.v_max}")
        return self


class ContainerModel(_Strict):
    description: str = ""
    cell: ModelRef
    cells_series_per_rack: int = Field(ge=1, le=2000, description="cells in series per rack, 1-2000")
    cells_parallel_per_rack: int = Field(ge=1, le=20, description="cells in parallel per rack, 1-20")
    racks: int = Field(ge=1, le=100, description="racks per container, 1-100")
    soc_min: float = Q("lowest SOC the BMS allows (0-1)", ge=0, le=1)
    soc_max: float = Q("highest SOC the BMS allows (0-1)", ge=0, le=1)
    dc_efficiency_one_way: float = Q("one-way DC efficiency of the battery (0-1)", gt=0.5, le=1)
    aux_kw: float = Q("auxiliary consumption (HVAC, BMS) in kW", ge=0, le=1000)
    aux_power_factor: float = Q("power factor of the auxiliaries", gt=0.5, le=1)
    ecm: ModelRef | None = Field(None, description="cell model parameter set under models/battery/ecm/ "
                                                   "(default: the cell's name)")
    bms: ModelRef = Field("lfp_default", description="BMS limits under models/battery/bms/")
    thermal: ModelRef | None = Field(None, description="container thermal network and HVAC under "
                                                       "models/battery/thermal/ (none: cells at ambient)")

    @model_validator(mode="after")
    def _check(self):
        if self.soc_min >= self.soc_max:
            raise ValueError(f"soc_min ({self.soc_min}) must be below soc_max ({self.soc_max})")
        return self


class PcsModel(_Strict):
    description: str = ""
    p_rated_mw: float = Q("rated AC active power at the PCS terminals in MW", gt=0, le=100)
    sn_mva: float = Q("rated apparent power in MVA", gt=0, le=100)
    vn_kv: float = Q("AC rated voltage in kV", gt=0.1, le=36)
    k_sc: float = Q("short-circuit current in pu of rated current (IEC 60909 current source)", ge=1, le=3)
    eta_nom: float = Q("nominal efficiency (0-1)", gt=0.5, le=1)
    eta_ref: float = Q("reference efficiency of the PVWatts curve (0-1)", gt=0.5, le=1)
    p_min_fraction: float = Q("below this fraction of p_rated_mw the PCS idles (0-0.2)", ge=0, le=0.2, default=0.02)
    standby_kw: float = Q("standby draw while idle in kW", ge=0, le=1000, default=0.0)
    ramp_mw_per_s: float | None = Q("active-power ramp limit in MW/s (none: no limit)", gt=0, le=1000, default=None)
    q_mode: Literal["pf", "qv", "poc_pf"] = Field("pf", description="reactive power: fixed power factor 'pf', "
                                                  "Q(V) characteristic 'qv', or 'poc_pf' (set by the EMS)")
    pf: float = Q("power factor in q_mode 'pf' (0-1]", gt=0, le=1, default=1.0)
    pf_sign: Literal[1, -1] = Field(1, description="+1: deliver Q with P, -1: absorb")
    qv_v_pu: list[float] = Field([0.92, 0.97, 1.03, 1.08], min_length=2,
                                 description="Q(V) characteristic: terminal voltages in pu, increasing")
    qv_q_pu: list[float] = Field([0.44, 0.0, 0.0, -0.44], min_length=2,
                                 description="Q(V) characteristic: Q in pu of sn_mva (+ delivered) at qv_v_pu")

    @model_validator(mode="after")
    def _check(self):
        if self.sn_mva < self.p_rated_mw:
            raise ValueError(f"sn_mva ({self.sn_mva}) must be at least p_rated_mw ({self.p_rated_mw})")
        if len(self.qv_v_pu) != len(self.qv_q_pu):
            raise ValueError(f"qv_q_pu needs one value per qv_v_pu point ({len(self.qv_v_pu)}), found "
                             f"{len(self.qv_q_pu)}")
        if any(b <= a for a, b in zip(self.qv_v_pu[:-1], self.qv_v_pu[1:], strict=True)):
            raise ValueError(f"qv_v_pu must increase strictly, found {self.qv_v_pu}")
        if any(abs(q) > 1 for q in self.qv_q_pu):
            raise ValueError(f"qv_q_pu values must lie within -1..1 pu of sn_mva, found {self.qv_q_pu}")
        return self


class PvModel(_Strict):
    """PV system parameter set: PVWatts DC and inverter model, cell temperature, geometry, losses (twin.pv)."""

    description: str = ""
    inverter_ac_kw_each: float = Q("AC rating of one inverter in kW", gt=0, le=10000)
    power_factor_min: float = Q("lowest power factor at rated P", gt=0.5, le=1)
    k_sc: float = Q("short-circuit current in pu of rated current", ge=1, le=3)
    # PVWatts DC model (pvlib.pvsystem.pvwatts_dc); pdc0 comes from the case's p_dc_kwp
    gamma_pdc_per_k: float = Q("temperature coefficient of DC power in 1/K", ge=-0.01, le=0, default=-0.0035)
    temp_ref_degc: float = Q("reference cell temperature in degC", ge=0, le=50, default=25.0)
    low_irradiance_k: float = Q("PVWatts low-irradiance correction k (Marion 2008), dimensionless", ge=0,
                                le=0.1, default=0.0)
    # cell temperature: SAPM (King 2004) parameters, pvlib.temperature.sapm_cell
    sapm_a: float = Q("SAPM temperature coefficient a, dimensionless (ln of K m2/W)", ge=-10, le=0, default=-3.47)
    sapm_b: float = Q("SAPM temperature coefficient b in s/m", ge=-1, le=0, default=-0.0594)
    sapm_delta_t_k: float = Q("SAPM cell minus back-of-module temperature at 1000 W/m2 in K", ge=0, le=20,
                              default=3.0)
    # geometry and optics
    surface_tilt_deg: float = Q("default surface tilt in degrees from horizontal", ge=0, le=90, default=10.0)
    surface_azimuth_deg: float = Q("default surface azimuth in degrees east of north (180 = south)", ge=0, lt=360,
                                   default=180.0)
    albedo: float = Q("ground albedo (0-1)", ge=0, le=1, default=0.2)
    transposition_model: Literal["isotropic", "haydavies", "perez"] = "haydavies"
    iam_n: float = Q("refractive index of the cover glass for pvlib.iam.physical", ge=1, le=2, default=1.526)
    iam_k_per_m: float = Q("glazing extinction coefficient in 1/m for pvlib.iam.physical", ge=0, le=100,
                           default=4.0)
    iam_l_m: float = Q("glazing thickness in m for pvlib.iam.physical", ge=0, le=0.02, default=0.002)
    # system losses in % (pvlib.pvsystem.pvwatts_losses), applied to DC power as PVWatts does
    soiling_pct: float = Q("soiling loss in %", ge=0, le=50, default=2.0)
    shading_pct: float = Q("shading loss in %", ge=0, le=50, default=0.0)
    snow_pct: float = Q("snow loss in %", ge=0, le=50, default=0.0)
    mismatch_pct: float = Q("module mismatch loss in %", ge=0, le=20, default=2.0)
    wiring_pct: float = Q("DC wiring loss in %", ge=0, le=20, default=2.0)
    connections_pct: float = Q("connector loss in %", ge=0, le=20, default=0.5)
    lid_pct: float = Q("light-induced degradation in %", ge=0, le=20, default=1.5)
    nameplate_rating_pct: float = Q("nameplate rating loss in %", ge=0, le=20, default=1.0)
    age_pct: float = Q("age-related degradation in %", ge=0, le=50, default=0.0)
    availability_pct: float = Q("availability loss (outages, curtailment) in %", ge=0, le=50, default=3.0)
    # PVWatts inverter (pvlib.inverter.pvwatts)
    eta_inv_nom: float = Q("nominal inverter efficiency (0-1)", gt=0.5, le=1, default=0.96)
    eta_inv_ref: float = Q("reference inverter efficiency of the PVWatts curve (0-1)", gt=0.5, le=1, default=0.9637)


class Band(_Strict):
    min_pu: float = Q("lower voltage limit in pu", gt=0.5, lt=1)
    max_pu: float = Q("upper voltage limit in pu", gt=1, lt=1.5)
    criterion: str


class VoltageCriteria(_Strict):
    poc: Band
    campus_normal: Band
    campus_emergency: Band


class LoadingCriteria(_Strict):
    line_max_percent: float = Q("cable loading limit in % of ampacity", gt=0, le=200)
    trafo_max_percent: float = Q("transformer loading limit in % of rating", gt=0, le=200)
    line_emergency_percent: float = Q("cable emergency loading limit in %", gt=0, le=200)
    trafo_emergency_percent: float = Q("transformer emergency loading limit in %", gt=0, le=200)
    criterion_normal: str
    criterion_emergency: str


class CriterionText(_Strict):
    criterion: str


class PfCriteria(_Strict):
    min: float = Q("lowest power factor at the point of connection", gt=0, le=1)
    criterion: str


class ScCriteria(_Strict):
    criterion_breaking: str
    criterion_peak: str
    criterion_thermal: str
    criterion_cable: str


class CriteriaModel(_Strict):
    description: str = ""
    warn_margin_fraction: float = Q("fraction of a limit within which a PASS is reported as WARN", ge=0, le=0.5)
    voltage: VoltageCriteria
    loading: LoadingCriteria
    import_cap: CriterionText
    power_factor: PfCriteria
    short_circuit: ScCriteria


MODEL_KINDS: dict[str, type[BaseModel]] = {
    "cables": CableModel,
    "transformers": TransformerModel,
    "switchgear": SwitchgearModel,
    "it": ServerModel,
    "cooling": CoolingModel,
    "battery/cells": CellModel,
    "battery/containers": ContainerModel,
    "pcs": PcsModel,
    "pv": PvModel,
    "criteria": CriteriaModel,
}


# --------------------------------------------------------------------------------------------------------------
# the case file (networks/<name>.toml)


class CaseMeta(_Strict):
    name: Name
    title: str = ""
    seed: int = Field(ge=0, description="seed of the numpy Generator for stochastic drivers, a whole number >= 0")
    criteria: ModelRef = "gb_cn_default"


class Site(_Strict):
    name: str
    latitude_deg: float = Q("latitude in degrees north", ge=-90, le=90)
    longitude_deg: float = Q("longitude in degrees east", ge=-180, le=180)
    altitude_m: float = Q("altitude in m", ge=-500, le=6000)
    timezone: str = Field(description="an IANA time zone such as 'Asia/Shanghai'")
    climate: str | None = None

    @model_validator(mode="after")
    def _tz(self):
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone '{self.timezone}'") from exc
        return self


class Incomer(_Strict):
    name: Name
    section: Name
    s_sc_max_mva: float = Q("short-circuit power at maximum conditions in MVA", gt=1, le=100000)
    s_sc_min_mva: float = Q("short-circuit power at minimum conditions in MVA", gt=1, le=100000)
    x_r_max: float = Q("X/R ratio at maximum conditions", gt=0.1, le=100)
    x_r_min: float = Q("X/R ratio at minimum conditions", gt=0.1, le=100)
    cable: ModelRef
    length_km: float = Q("incoming cable length in km", gt=0, le=50)
    capacity_mw: float = Q("capacity of this incomer alone in MW", gt=0, le=1000)

    @model_validator(mode="after")
    def _check(self):
        if self.s_sc_min_mva > self.s_sc_max_mva:
            raise ValueError(f"s_sc_min_mva ({self.s_sc_min_mva}) exceeds s_sc_max_mva ({self.s_sc_max_mva})")
        return self


class Supply(_Strict):
    vn_kv: float = Q("nominal voltage at the point of connection in kV", gt=0.4, le=500)
    frequency_hz: Literal[50.0, 60.0] = 50.0
    firm_import_cap_mw: float = Q("firm import capacity in MW (sum of incomers)", gt=0, le=10000)
    earthing: Literal["low_resistance", "solid", "isolated", "resonant"]
    earthing_r_ohm: float = Q("neutral earthing resistance in ohm", ge=0, le=1000, default=0.0)
    incomers: list[Incomer] = Field(min_length=1, max_length=8)

    @model_validator(mode="after")
    def _check(self):
        if self.earthing == "low_resistance" and self.earthing_r_ohm <= 0:
            raise ValueError("earthing 'low_resistance' needs earthing_r_ohm > 0")
        return self


class SwitchingStation(_Strict):
    sections: list[Name] = Field(min_length=1, max_length=8)
    switchgear: ModelRef
    feeder_unit: ModelRef
    coupler_closed: bool = False
    bus_transfer: bool = True
    bus_transfer_time_s: float = Q("automatic bus transfer time in s", ge=0, le=60, default=1.5)


class Protection(_Strict):
    clearing_time_mv_s: float = Q("fault duration for MV thermal checks in s", gt=0, le=5)
    clearing_time_lv_s: float = Q("fault duration for LV thermal checks in s", gt=0, le=5)


class Feed(_Strict):
    section: Name
    cable: ModelRef
    length_km: float = Q("cable length in km", gt=0, le=50)
    transformer: ModelRef
    lv_board: ModelRef


class Hall(_Strict):
    name: Name
    server: ModelRef
    gpu_count: int = Field(ge=1, le=1_000_000, description="GPUs in the hall, 1-1,000,000")
    network_storage_kw: float = Q("network, storage and management power in kW", ge=0, le=100000)
    feeds: list[Feed] = Field(min_length=1, max_length=4)


class CoolingPlant(_Strict):
    name: Name
    model: ModelRef
    feeds: list[Feed] = Field(min_length=1, max_length=4)


class Container(_Strict):
    name: Name
    section: Name
    cable: ModelRef
    length_km: float = Q("cable length in km", gt=0, le=50)


class Battery(_Strict):
    container: ModelRef
    pcs: ModelRef
    transformer: ModelRef
    lv_board: ModelRef
    initial_soc: float = Q("initial state of charge (0-1)", ge=0, le=1)
    containers: list[Container] = Field(min_length=1, max_length=200)


class PvSystem(_Strict):
    name: Name
    model: ModelRef
    p_dc_kwp: float = Q("DC peak power in kWp", gt=0, le=1_000_000)
    inverters: int = Field(ge=1, le=10000, description="number of inverters, 1-10000")
    section: Name
    cable: ModelRef
    length_km: float = Q("cable length in km", gt=0, le=50)
    transformer: ModelRef
    lv_board: ModelRef
    surface_tilt_deg: float | None = Q("surface tilt in degrees (default: the PV model's)", ge=0, le=90,
                                       default=None)
    surface_azimuth_deg: float | None = Q("surface azimuth in degrees east of north (default: the PV model's)",
                                          ge=0, lt=360, default=None)


class Auxiliary(_Strict):
    name: Name
    p_kw: float = Q("active power in kW", ge=0, le=100000)
    power_factor: float = Q("power factor", gt=0.5, le=1)
    section: Name
    cable: ModelRef
    length_km: float = Q("cable length in km", gt=0, le=50)
    transformer: ModelRef
    lv_board: ModelRef


class OperatingPoint(_Strict):
    name: Name
    description: str = ""
    it_utilisation: float = Q("GPU utilisation between idle (0) and full training power (1)", ge=0, le=1)
    cooling_kw_per_kw_it: float = Q("cooling electrical demand per kW of IT", ge=0, le=2)
    pv_fraction: float = Q("PV output per unit of inverter AC rating", ge=0, le=1)
    battery_p_mw: float | Literal["hold_cap"] = Field(
        description="total battery AC power in MW (+ discharge, - charge) or 'hold_cap'")
    battery_in_service: bool = True
    aux_fraction: float = Q("auxiliary load per unit of its rating", ge=0, le=1.5, default=1.0)
    expect: Literal["PASS", "FAIL"] | None = None


class Contingency(_Strict):
    operating_points: list[Name] = Field(min_length=1)


class Drivers(_Strict):
    """What drives the campus over time (drivers issue): load scenario, tariff, year and time step."""

    scenario: ModelRef = "seed"                      # models/scenarios/<name>.toml
    tariff: ModelRef = "shanghai_two_part_2023"      # models/tariffs/<name>.toml
    year: int = Field(2025, ge=1990, le=2100, description="calendar year simulated, 1990-2100")
    resolution_s: float = Q("time step of the drivers in s", ge=0.1, le=3600, default=60.0)
    weather_file: str | None = Field(None, description="a weather file (EPW, TMY3, PVGIS TMY or CSV), relative to "
                                     "the case file; none: the built-in synthetic typical year")

    @model_validator(mode="after")
    def _check(self):
        if (3600.0 / self.resolution_s) % 1 and (self.resolution_s / 3600.0) % 1:
            raise ValueError(f"resolution_s ({self.resolution_s}) must divide an hour evenly")
        return self


class BatteryStudy(_Strict):
    """Options of the battery study (``twin study battery``, :mod:`twin.studies.battery`); all optional."""

    granularity: Literal["container", "rack", "cell"] = Field(
        "rack", description="battery system model granularity: 'container', 'rack' or 'cell' (every cell with a "
                            "seeded spread, several times slower than 'rack')")
    dt_s: float = Q("time step of the battery simulation in s", ge=0.1, le=3600, default=10.0)
    claimed_energy_mwh: float | None = Q("claimed usable energy of the whole battery in MWh (default: the DC "
                                         "nameplate)", gt=0, le=1e6, default=None)
    claimed_duration_h: float | None = Q("claimed duration at rated AC power in h (default: claimed energy / rated "
                                         "AC power)", gt=0, le=100, default=None)

    @model_validator(mode="after")
    def _check(self):
        if (3600.0 / self.dt_s) % 1 and (self.dt_s / 3600.0) % 1:
            raise ValueError(f"dt_s ({self.dt_s}) must divide an hour evenly")
        return self


class TimeseriesStudy(_Strict):
    """Options of the year-in-the-loop study (``twin study timeseries``, :mod:`twin.studies.timeseries`); all
    optional."""

    scenarios: list[ModelRef] = Field(
        default_factory=lambda: ["seed", "sustained_training"],
        description="load scenarios ``twin run`` studies (models/scenarios/); ``twin study timeseries --scenario`` "
                    "picks one")
    period: str | None = Field(None, description="'YYYY' (the whole year) or 'YYYY-MM-DD/YYYY-MM-DD' (local dates, "
                                                 "end exclusive, within one year); default: [drivers] year")
    strategy: Literal["rules", "lp"] = Field("rules", description="'rules' (tariff-period actions) or 'lp' (a "
                                             "day-ahead linear program followed by the rules)")
    forecast: Literal["perfect", "persistence"] = Field("persistence", description="load forecast of the LP")
    granularity: Literal["container", "rack"] = Field("container", description="battery system model granularity")
    control_interval_min: float = Q("interval at which the EMS reads the battery's SOC and limits, in min",
                                    gt=0, le=1440, default=15.0)
    margin_mw: float = Q("EMS margin below the firm cap in MW", ge=0, le=100, default=0.05)
    reserve_mw: float | None = Q("backup reserve power in MW (default: the battery's AC rating)", ge=0, le=1e4,
                                 default=None)
    reserve_min: float = Q("backup reserve duration in min (0: none)", ge=0, le=1440, default=15.0)
    arbitrage_soc_min: float | None = Q("lowest SOC time-of-use arbitrage discharges to, keeping the rest for the "
                                        "cap (default: the backup reserve floor)", ge=0, le=1, default=None)
    charge_limit: Literal["month_peak", "cap"] = Field(
        "month_peak", description="import up to which the battery charges: 'month_peak' (the month's peak 15-min "
                                  "demand of the load alone, so that charging never raises the demand charge) or "
                                  "'cap' (the firm cap)")
    shed_max_fraction_of_it: float = Q("IT power the EMS may cap (GPU power capping) to hold the firm cap, as a "
                                       "fraction of the IT load (0: no shedding policy)", ge=0, le=1, default=0.0)
    transformer_room_rise_k: float = Q("rise of the dry-type transformers' room air above outdoor air in K",
                                       ge=0, le=40, default=5.0)
    loss_tolerance_mw: float = Q("convergence of the loss iteration: largest difference in MW between the grid "
                                 "import the dispatch assumed and the network's, or between passes (default 10 kW, a "
                                 "fifth of the default EMS margin, so that the losses the EMS does not know cannot "
                                 "take the import over the cap)", gt=0, le=1, default=0.01)
    soc_tolerance: float = Q("convergence of the loss iteration: largest change of SOC", gt=0, le=0.1, default=1e-4)
    max_iterations: int = Field(6, ge=1, le=50, description="most network solves of the loss iteration")


class SwitchoverGenset(_Strict):
    name: Name
    bus: str = Field(min_length=1, description="name of the net's bus the genset (with its step-up transformer) "
                                              "feeds, e.g. a bus section 'SWS_A' or an LV board 'H1_LV_A'")
    model: ModelRef = Field(description="models/gensets/<name>.toml")


class SwitchoverStudy(_Strict):
    """Options of the loss-of-mains study (``twin study switchover``, :mod:`twin.studies.switchover`); all optional."""

    dynamics: ModelRef = Field("campus_default", description="dynamic models, models/dynamics/<name>.toml")
    operating_points: list[Name] | None = Field(None, description="operating points at which the mains are lost "
                                                "(default: every one with the battery in service)")
    t_event_s: float = Q("time of the event after the start of the simulation in s", gt=0, le=10, default=0.1)
    t_end_s: float = Q("simulated time in s", gt=0.1, le=60, default=2.0)
    step_ms: float = Q("fixed integration step in ms", ge=0.05, le=10, default=1.0)
    ups_halls: list[Name] = Field(default_factory=list, description="halls whose IT load is behind an online UPS")
    shed_delays_ms: list[float] = Field([0.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0], min_length=1,
                                        description="action delays of the load shedding (GPU power capping) "
                                                    "searched, in ms")
    shedding_action_delay_ms: float = Q("how fast the campus's load shedding or GPU power capping acts after the loss "
                                        "of mains, ms (GPU capping through the servers' management controllers: "
                                        "about 0.1-1 s, L)", ge=0, le=60000, default=100.0)
    return_to_grid_s: float = Q("time after the event at which the grid returns (resynchronisation study), s",
                                gt=0, le=60, default=1.0)
    gensets: list[SwitchoverGenset] = Field(default_factory=list, description="standby gensets, started on "
                                            "islanding detection (none in the seed)")
    breaker_opening_ms: float = Q("opening time of the incomer circuit breakers, for the study's comparison with a "
                                  "static switch, in ms (vacuum circuit breaker with its relay: about 50-60 ms, L)",
                                  gt=0, le=1000, default=60.0)
    island_frequency_band_hz: float = Q("island frequency limit: largest deviation from nominal in Hz (GB/T "
                                        "15945-2008 small systems: 0.5 Hz)", gt=0, le=5, default=0.5)


class RideThroughStudy(_Strict):
    """Options of the dip ride-through study (``twin study ridethrough``, :mod:`twin.studies.ridethrough`)."""

    operating_point: Name = Field("training_peak", description="operating point at which the dips arrive")
    types: list[Literal["A", "B", "C"]] = Field(["A", "B", "C"], min_length=1, description="dip types: 'A' "
                                                "balanced, 'B' single-phase to earth, 'C' phase-to-phase (type D on "
                                                "the LV boards)")
    depths_pu: list[float] = Field([0.0, 0.3, 0.5, 0.7, 0.8, 0.9], min_length=1,
                                   description="retained (characteristic) voltages of the dips, pu, 0-1")
    durations_s: list[float] = Field([0.02, 0.05, 0.1, 0.2, 0.5, 1.0], min_length=1,
                                     description="dip durations, s (whole simulation steps)")
    settle_s: float = Q("simulated time after the longest dip, s", gt=0, le=60, default=1.0)
    virginia_dip_pu: float = Q("retained voltage of each dip of the constructed Virginia sequence, pu", ge=0, lt=1,
                               default=0.5)
    virginia_dip_s: float = Q("duration of each dip of the Virginia sequence, s (a cleared fault)", gt=0, le=2,
                              default=0.1)
    virginia_times_s: list[float] = Field([0.0, 8.0, 20.0, 38.0, 60.0, 82.0], min_length=2,
                                          description="start times of the sequence's dips, s (six faults in 82 s, "
                                                      "REFERENCE.md; spacing constructed, L)")
    reclose_dead_time_s: float = Q("dead time of the utility's auto-reclosing after a fault, s (the dip with "
                                   "reclosing: fault, interruption, successful reclose)", gt=0, le=60, default=0.5)
    hvrt_v_pu: list[float] = Field([1.1, 1.2, 1.3], min_length=1, description="HVRT curve of the PCS: voltage "
                                   "levels, pu, increasing (data, L)")
    hvrt_allowed_s: list[float] = Field([1e9, 10.0, 0.5], min_length=1, description="HVRT curve: how long the PCS "
                                        "rides above each level, s")
    lvrt_t_s: list[float] = Field([0.0, 0.625, 2.0], min_length=2, description="LVRT curve of the PCS: times since "
                                  "the dip's start, s (GB/T 36547 points are not public: a GB/T 19964-style curve, L)")
    lvrt_v_pu: list[float] = Field([0.2, 0.2, 0.9], min_length=2, description="LVRT curve: voltages, pu, above "
                                   "which the PCS must stay connected")

    @model_validator(mode="after")
    def _check(self):
        if len(self.hvrt_v_pu) != len(self.hvrt_allowed_s):
            raise ValueError(f"hvrt_allowed_s needs one value per hvrt_v_pu ({len(self.hvrt_v_pu)}), found "
                             f"{len(self.hvrt_allowed_s)}")
        if len(self.lvrt_t_s) != len(self.lvrt_v_pu):
            raise ValueError(f"lvrt_v_pu needs one value per lvrt_t_s ({len(self.lvrt_t_s)}), found "
                             f"{len(self.lvrt_v_pu)}")
        if any(b < a for a, b in zip(self.lvrt_t_s, self.lvrt_t_s[1:], strict=False)):
            raise ValueError(f"lvrt_t_s must not decrease, found {self.lvrt_t_s}")
        bad = [d for d in self.depths_pu if not 0 <= d < 1]
        if bad:
            raise ValueError(f"depths_pu: retained voltages must be 0 <= d < 1, found {bad}")
        bad = [d for d in self.durations_s if not 0 < d <= 10]
        if bad:
            raise ValueError(f"durations_s: each duration must be > 0 and <= 10 s, found {bad}")
        return self


class SwingStudy(_Strict):
    """Options of the power-swing study (``twin study swing``, :mod:`twin.studies.swing`); all optional."""

    operating_point: Name = Field("training_peak", description="operating point around which the load swings")
    fs_hz: float = Q("sample rate of the swing time series in Hz (the flickermeter needs >= 100)", ge=100, le=2000,
                     default=100.0)
    periods_s: list[float] = Field([0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0], min_length=1,
                                   description="iteration periods of the training oscillation studied, s (0.05-5 Hz)")
    ramp_window_s: float = Q("window of the ramp-rate measure in s", gt=0, le=60, default=1.0)
    ramp_limit_mw_per_s: float = Q("utility's ramp-rate limit at the point of connection in MW/s (L: no published "
                                   "limit for loads; a project sets it)", gt=0, le=1000, default=1.0)
    oscillation_limit_mw: float = Q("utility's limit on a power oscillation amplitude (0.05-5 Hz) in MW (L)", gt=0,
                                    le=1000, default=0.3)
    smoothing_filter_s: float = Q("time constant of the smoothing controller's low-pass in s", gt=0, le=3600,
                                  default=30.0)
    pcs_response_ms: float = Q("time constant of the PCS's power loop in ms", ge=0, le=10000, default=50.0)
    smoothing_headroom_mw: float = Q("PCS power the EMS keeps free for smoothing in MW (the seed's largest training "
                                     "job swings about 2.2 MW)", ge=0, le=1e4, default=2.5)

    @model_validator(mode="after")
    def _check(self):
        bad = [p for p in self.periods_s if not 0.2 <= p <= 20]
        if bad:
            raise ValueError(f"periods_s: each period must be 0.2-20 s (0.05-5 Hz), found {bad}")
        return self


class CaseSpec(_Strict):
    case: CaseMeta
    site: Site
    supply: Supply
    switching_station: SwitchingStation
    protection: Protection
    halls: list[Hall] = Field(min_length=1)
    cooling_plants: list[CoolingPlant] = Field(default_factory=list)
    battery: Battery | None = None
    pv: list[PvSystem] = Field(default_factory=list)
    auxiliaries: list[Auxiliary] = Field(default_factory=list)
    operating_points: list[OperatingPoint] = Field(min_length=1)
    contingency: Contingency
    drivers: Drivers = Drivers()
    battery_study: BatteryStudy = BatteryStudy()
    timeseries: TimeseriesStudy = TimeseriesStudy()
    switchover: SwitchoverStudy = SwitchoverStudy()
    swing: SwingStudy = SwingStudy()
    ridethrough: RideThroughStudy = RideThroughStudy()


# --------------------------------------------------------------------------------------------------------------
# error formatting


def _loc_str(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("float", "str", "literal['hold_cap']", "function-after[_check()]") or "[" in str(part):
            continue  # pydantic's union/validator branch labels
        else:
            out += f".{part}" if out else str(part)
    return out


def _field_for(model: type[BaseModel], loc: tuple):
    """The pydantic FieldInfo at ``loc`` (walking nested models and lists), or None."""
    import typing

    cls: Any = model
    info = None
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or part not in cls.model_fields:
            return info if part not in getattr(cls, "model_fields", {}) else None
        info = cls.model_fields[part]
        ann = info.annotation
        # unwrap list[X], X | None
        for _ in range(3):
            args = typing.get_args(ann)
            if not args:
                break
            sub = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            ann = sub[0] if sub else args[0]
        cls = ann
    return info


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    import typing

    cls: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or part not in cls.model_fields:
            return []
        ann = cls.model_fields[part].annotation
        for _ in range(3):
            args = typing.get_args(ann)
            if not args:
                break
            sub = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            ann = sub[0] if sub else args[0]
        cls = ann
    if isinstance(cls, type) and issubclass(cls, BaseModel):
        return list(cls.model_fields)
    return []


def _format_error(path: Path, model: type[BaseModel], err: dict) -> str:
    loc = tuple(err.get("loc", ()))
    key = _loc_str(loc) or "(top level)"
    typ = err.get("type", "")
    found = err.get("input")
    if typ == "extra_forbidden":
        allowed = _allowed_keys(model, loc)
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"{path}: unknown key '{key}'{hint}: expected one of {sorted(allowed)}"
    info = _field_for(model, loc)
    desc = info.description if info is not None and info.description else None
    if typ == "missing":
        return f"{path}: missing key '{key}': expected {desc or 'a value'}"
    msg = err.get("msg", "").removeprefix("Value error, ")
    expected = f"{desc} ({msg})" if desc else msg
    shown = repr(found) if not isinstance(found, dict) else "a table"
    return f"{path}: key '{key}': expected {expected}, found {shown}"


def _validate(path: Path, model: type[BaseModel], data: dict):
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        # an unknown key explains a missing one next to it (a misspelling): report it first
        errs = sorted(exc.errors(), key=lambda e: e.get("type") != "extra_forbidden")
        first = _format_error(path, model, errs[0])
        more = f" (and {len(errs) - 1} more)" if len(errs) > 1 else ""
        raise CaseError(first + more) from None


def _read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise CaseError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise CaseError(f"{path}: not valid TOML: {exc}") from None


# --------------------------------------------------------------------------------------------------------------
# the loaded case


@dataclass
class Case:
    """A validated study case with its parameter sets resolved.

    Attributes
    ----------
    spec : CaseSpec
        The case file's content, typed.
    path : Path
        The case file.
    models : dict
        ``(kind, name) -> parameter set`` for every parameter set the case uses (kind as in ``MODEL_KINDS``).
    model_paths : dict
        ``(kind, name) -> Path`` of each parameter set's file.
    sha256 : str
        Hash over the case file and every parameter set file it uses, in a fixed order.
    """

    spec: CaseSpec
    path: Path
    models: dict[tuple[str, str], Any] = field(default_factory=dict)
    model_paths: dict[tuple[str, str], Path] = field(default_factory=dict)
    sha256: str = ""

    @property
    def name(self) -> str:
        return self.spec.case.name

    def model(self, kind: str, name: str):
        return self.models[(kind, name)]

    @property
    def criteria(self) -> CriteriaModel:
        return self.models[("criteria", self.spec.case.criteria)]

    def parameter_set(self, kind: str, name: str, schema: type[BaseModel]):
        """A parameter set ``models/<kind>/<name>.toml`` validated with a schema its own module defines.

        Looked up beside the case first, then in the embedded set, like every parameter set; errors name the
        file and key (:class:`CaseError`). Cached on the case.
        """
        if (kind, name) not in self.models:
            f = find_parameter_file(self.path, kind, name)
            self.models[(kind, name)] = _validate(f, schema, _read_toml(f))
            self.model_paths[(kind, name)] = f
        return self.models[(kind, name)]

    def operating_point(self, name: str) -> OperatingPoint:
        for op in self.spec.operating_points:
            if op.name == name:
                return op
        raise CaseError(f"{self.path}: no operating point '{name}' (have {[o.name for o in self.spec.operating_points]})")


def _model_search_dirs(case_path: Path) -> list[Path]:
    here = case_path.resolve().parent
    dirs = [here / "models", here.parent / "models", paths.models_dir()]
    out: list[Path] = []
    for d in dirs:
        if d.is_dir() and d not in out:
            out.append(d)
    return out


def find_parameter_file(case_path: Path, kind: str, name: str) -> Path:
    """Path of ``models/<kind>/<name>.toml`` (beside the case first, then embedded), or a CaseError."""
    dirs = _model_search_dirs(case_path)
    for d in dirs:
        f = d / kind / f"{name}.toml"
        if f.exists():
            return f
    available = sorted({p.stem for d in dirs for p in (d / kind).glob("*.toml")})
    close = difflib.get_close_matches(name, available, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise CaseError(f"{case_path}: no parameter set '{name}' in models/{kind}/{hint}; available: {available}")


def _resolve_model(case_path: Path, key_desc: str, kind: str, name: str, cache: dict, paths_: dict):
    if (kind, name) in cache:
        return cache[(kind, name)]
    dirs = _model_search_dirs(case_path)
    for d in dirs:
        f = d / kind / f"{name}.toml"
        if f.exists():
            obj = _validate(f, MODEL_KINDS[kind], _read_toml(f))
            cache[(kind, name)] = obj
            paths_[(kind, name)] = f
            return obj
    available = sorted({p.stem for d in dirs for p in (d / kind).glob("*.toml")})
    close = difflib.get_close_matches(name, available, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise CaseError(f"{case_path}: key '{key_desc}': expected the name of a parameter set in models/{kind}/, "
                    f"found '{name}'{hint}; available: {available}")


def _check_refs(path: Path, spec: CaseSpec) -> None:
    """Cross-references and consistency checks pydantic cannot see field by field."""
    sections = spec.switching_station.sections

    def err(key: str, expected: str, found: Any):
        raise CaseError(f"{path}: key '{key}': expected {expected}, found {found!r}")

    if len(set(sections)) != len(sections):
        err("switching_station.sections", "unique section names", sections)

    def sec(key: str, s: str):
        if s not in sections:
            err(key, f"a bus section of switching_station.sections {sections}", s)

    for i, inc in enumerate(spec.supply.incomers):
        sec(f"supply.incomers[{i}].section", inc.section)
    names: dict[str, str] = {}

    def unique(key: str, n: str):
        if n in names:
            err(key, f"a name not used before (already used at {names[n]})", n)
        names[n] = key

    for i, s in enumerate(sections):
        unique(f"switching_station.sections[{i}]", s)
    for i, inc in enumerate(spec.supply.incomers):
        unique(f"supply.incomers[{i}].name", inc.name)
    for i, h in enumerate(spec.halls):
        unique(f"halls[{i}].name", h.name)
        for j, f in enumerate(h.feeds):
            sec(f"halls[{i}].feeds[{j}].section", f.section)
    for i, c in enumerate(spec.cooling_plants):
        unique(f"cooling_plants[{i}].name", c.name)
        for j, f in enumerate(c.feeds):
            sec(f"cooling_plants[{i}].feeds[{j}].section", f.section)
    if spec.battery is not None:
        for i, c in enumerate(spec.battery.containers):
            unique(f"battery.containers[{i}].name", c.name)
            sec(f"battery.containers[{i}].section", c.section)
    for i, p in enumerate(spec.pv):
        unique(f"pv[{i}].name", p.name)
        sec(f"pv[{i}].section", p.section)
    for i, a in enumerate(spec.auxiliaries):
        unique(f"auxiliaries[{i}].name", a.name)
        sec(f"auxiliaries[{i}].section", a.section)
    opn = [o.name for o in spec.operating_points]
    if len(set(opn)) != len(opn):
        err("operating_points", "unique operating point names", opn)
    for i, o in enumerate(spec.contingency.operating_points):
        if o not in opn:
            err(f"contingency.operating_points[{i}]", f"one of the operating points {opn}", o)
    fed = {inc.section for inc in spec.supply.incomers}
    if not spec.switching_station.coupler_closed and not spec.switching_station.bus_transfer:
        for s in sections:
            if s not in fed:
                err("supply.incomers", f"an incomer on every section when the coupler is open (section '{s}' has none)",
                    sorted(fed))


def _resolve_all(path: Path, spec: CaseSpec) -> tuple[dict, dict]:
    cache: dict = {}
    mpaths: dict = {}

    def r(key: str, kind: str, name: str):
        return _resolve_model(path, key, kind, name, cache, mpaths)

    crit = r("case.criteria", "criteria", spec.case.criteria)
    del crit
    ss = spec.switching_station
    for key, name in (("switching_station.switchgear", ss.switchgear), ("switching_station.feeder_unit", ss.feeder_unit)):
        m = r(key, "switchgear", name)
        if m.kind != "mv_switchgear":
            raise CaseError(f"{path}: key '{key}': expected an mv_switchgear parameter set, found '{name}' ({m.kind})")
    for i, inc in enumerate(spec.supply.incomers):
        r(f"supply.incomers[{i}].cable", "cables", inc.cable)

    def feed(key: str, f):
        r(f"{key}.cable", "cables", f.cable)
        t = r(f"{key}.transformer", "transformers", f.transformer)
        b = r(f"{key}.lv_board", "switchgear", f.lv_board)
        if b.kind != "lv_board":
            raise CaseError(f"{path}: key '{key}.lv_board': expected an lv_board parameter set, found '{f.lv_board}' ({b.kind})")
        if abs(t.vn_hv_kv - spec.supply.vn_kv) > 0.05 * spec.supply.vn_kv:
            raise CaseError(f"{path}: key '{key}.transformer': expected an HV rating of {spec.supply.vn_kv} kV, "
                            f"found '{f.transformer}' with vn_hv_kv = {t.vn_hv_kv}")

    for i, h in enumerate(spec.halls):
        srv = r(f"halls[{i}].server", "it", h.server)
        if h.gpu_count % srv.gpus_per_server:
            raise CaseError(f"{path}: key 'halls[{i}].gpu_count': expected a multiple of gpus_per_server "
                            f"({srv.gpus_per_server}, models/it/{h.server}.toml), found {h.gpu_count}")
        for j, f in enumerate(h.feeds):
            feed(f"halls[{i}].feeds[{j}]", f)
    for i, c in enumerate(spec.cooling_plants):
        r(f"cooling_plants[{i}].model", "cooling", c.model)
        for j, f in enumerate(c.feeds):
            feed(f"cooling_plants[{i}].feeds[{j}]", f)
    if spec.battery is not None:
        b = spec.battery
        cont = r("battery.container", "battery/containers", b.container)
        r("battery.container -> cell", "battery/cells", cont.cell)
        pcs = r("battery.pcs", "pcs", b.pcs)
        t = r("battery.transformer", "transformers", b.transformer)
        if abs(t.vn_lv_kv - pcs.vn_kv) > 0.05 * pcs.vn_kv:
            raise CaseError(f"{path}: key 'battery.transformer': expected an LV rating equal to the PCS voltage "
                            f"{pcs.vn_kv} kV, found '{b.transformer}' with vn_lv_kv = {t.vn_lv_kv}")
        bb = r("battery.lv_board", "switchgear", b.lv_board)
        if bb.kind != "lv_board":
            raise CaseError(f"{path}: key 'battery.lv_board': expected an lv_board parameter set, found '{b.lv_board}'")
        for i, c in enumerate(b.containers):
            r(f"battery.containers[{i}].cable", "cables", c.cable)
    for i, p in enumerate(spec.pv):
        r(f"pv[{i}].model", "pv", p.model)
        feed(f"pv[{i}]", p)
    for i, a in enumerate(spec.auxiliaries):
        feed(f"auxiliaries[{i}]", a)
    return cache, mpaths


def _check_operating_points(path: Path, spec: CaseSpec, models: dict) -> None:
    """Operating points must ask only for what the campus has: battery power within the PCS rating, cooling
    only with a cooling plant."""
    p_max = 0.0
    if spec.battery is not None:
        p_max = len(spec.battery.containers) * models[("pcs", spec.battery.pcs)].p_rated_mw
    for i, op in enumerate(spec.operating_points):
        if op.battery_p_mw != "hold_cap":
            lim = p_max if op.battery_in_service else 0.0
            if abs(op.battery_p_mw) > lim + 1e-9:
                raise CaseError(f"{path}: key 'operating_points[{i}].battery_p_mw': expected a value within "
                                f"+/-{lim:g} MW (the in-service PCS rating), found {op.battery_p_mw:g}")
        if op.cooling_kw_per_kw_it > 0 and not spec.cooling_plants:
            raise CaseError(f"{path}: key 'operating_points[{i}].cooling_kw_per_kw_it': expected 0 for a case "
                            f"without cooling_plants, found {op.cooling_kw_per_kw_it:g}")


def with_drivers(case: Case, **changes) -> Case:
    """A copy of the case with fields of its ``[drivers]`` section changed (``scenario``, ``weather_file``, ...).

    Used by the command line's ``--scenario`` and ``--weather``; the values are checked like the file's.
    """
    import dataclasses

    data = case.spec.drivers.model_dump()
    data.update({k: v for k, v in changes.items() if v is not None})
    drivers = _validate(case.path, Drivers, data)
    return dataclasses.replace(case, spec=case.spec.model_copy(update={"drivers": drivers}),
                               models=dict(case.models), model_paths=dict(case.model_paths))


def load_case(case: str | Path | None = None) -> Case:
    """Load and check a study case.

    Parameters
    ----------
    case : str or Path, optional
        A case file, or the name of an embedded case (default ``shanghai_campus``).

    Returns
    -------
    Case

    Raises
    ------
    CaseError
        With a one-line message naming the file, the key, what was expected and what was found.
    """
    try:
        path = paths.resolve_case_path(case)
    except FileNotFoundError as exc:
        raise CaseError(str(exc)) from None
    data = _read_toml(path)
    spec = _validate(path, CaseSpec, data)
    _check_refs(path, spec)
    models, mpaths = _resolve_all(path, spec)
    _check_operating_points(path, spec, models)
    # parameter sets whose schema lives in their own module: hashed when present, checked when used
    for kind, name in (("scenarios", spec.drivers.scenario), ("tariffs", spec.drivers.tariff),
                       ("climate", spec.site.climate)):
        if name is None:
            continue
        try:
            mpaths.setdefault((kind, name), find_parameter_file(path, kind, name))
        except CaseError:
            pass
    h = hashlib.sha256()
    h.update(path.read_bytes())
    for key in sorted(mpaths):
        h.update(f"{key[0]}/{key[1]}".encode())
        h.update(mpaths[key].read_bytes())
    return Case(spec=spec, path=path, models=models, model_paths=mpaths, sha256=h.hexdigest())
