"""Parameters of the campus's dynamic models (``models/dynamics/<name>.toml``), validated like every parameter set.

One file holds the dynamic behaviour the snapshot models do not need: the PCS's grid-following and grid-forming
controls and its overload capability, islanding detection, the server power supplies' hold-up, the cooling drives'
and motors' undervoltage behaviour, the PV inverters' anti-islanding, the resynchronisation check and the LV
breakers' trip settings. The case's ``[switchover] dynamics`` names it. Every figure cites its source and confidence
in the TOML; the schema gives units and plausible ranges so that a unit mistake is caught on loading.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from ..case import Q, _Strict

__all__ = ["DynamicsModel", "PcsDynamics", "Detection", "PsuModel", "DriveModel", "MotorDynamics", "PvDynamics",
           "Resync", "LvTrip", "Transfer", "GensetModel", "load_dynamics", "load_genset"]


class PcsDynamics(_Strict):
    pll_bandwidth_hz: float = Q("SRF-PLL natural frequency in Hz", gt=0.5, le=200)
    pll_damping: float = Q("SRF-PLL damping ratio", gt=0.1, le=3)
    current_tau_ms: float = Q("closed-loop time constant of the current control in ms", gt=0.05, le=100)
    current_limit_pu: float = Q("current limit in pu of rated current (sn_mva at rated voltage)", ge=1, le=3)
    virtual_r_pu: float = Q("grid-forming virtual resistance in pu of the PCS rating", ge=0, le=1)
    virtual_x_pu: float = Q("grid-forming virtual reactance in pu of the PCS rating", gt=0.01, le=1)
    droop_p_f_percent: float = Q("P-f droop: frequency drop in % of nominal at rated power", gt=0, le=20)
    droop_q_v_percent: float = Q("Q-V droop: voltage drop in % at rated apparent power of Q", ge=0, le=20)
    power_filter_ms: float = Q("P and Q measurement filter time constant in ms (acts as virtual inertia)", gt=0,
                               le=2000)
    frequency_restoration_s: float = Q("time constant of the secondary frequency restoration in island, s", gt=0,
                                       le=600)
    mode_change_delay_ms: float = Q("from islanding detection to grid-forming operation in ms", ge=0, le=2000)
    overload_current_pu: list[float] = Field(min_length=1, description="overload capability: currents in pu of "
                                             "rated current, increasing")
    overload_time_s: list[float] = Field(min_length=1, description="overload capability: the time in s each "
                                         "current may last, decreasing")

    @model_validator(mode="after")
    def _check(self):
        c, t = self.overload_current_pu, self.overload_time_s
        if len(c) != len(t):
            raise ValueError(f"overload_time_s needs one value per overload_current_pu ({len(c)}), found {len(t)}")
        if any(b <= a for a, b in zip(c, c[1:], strict=False)) or any(b >= a for a, b in zip(t, t[1:], strict=False)):
            raise ValueError("overload_current_pu must increase and overload_time_s decrease")
        if min(c) < 1 or min(t) <= 0:
            raise ValueError("overload currents must be >= 1 pu and times > 0 s")
        return self


class Detection(_Strict):
    undervoltage_pu: float = Q("undervoltage pick-up in pu", gt=0, lt=1)
    undervoltage_ms: float = Q("undervoltage operate time in ms", ge=0, le=10000)
    overvoltage_pu: float = Q("overvoltage pick-up in pu", gt=1, le=2)
    overvoltage_ms: float = Q("overvoltage operate time in ms", ge=0, le=10000)
    frequency_band_hz: float = Q("under/over-frequency pick-up: deviation from nominal in Hz", gt=0, le=5)
    frequency_ms: float = Q("under/over-frequency operate time in ms", ge=0, le=10000)
    rocof_hz_per_s: float = Q("rate-of-change-of-frequency pick-up in Hz/s", gt=0, le=100, default=2.0)
    rocof_ms: float = Q("rate-of-change-of-frequency operate time in ms", ge=0, le=10000, default=50.0)
    isolation_device: str = Field("static_switch", description="what isolates the campus from the grid on "
                                  "islanding detection: 'static_switch' or 'circuit_breaker' (a label for reports)")
    isolation_opening_ms: float = Q("opening time of the isolation device after detection in ms (the PCS form the "
                                    "island only after it)", ge=0, le=1000, default=4.0)
    transfer_trip: bool = Field(False, description="true: the incomer breaker's status is signalled to the PCS")
    transfer_trip_ms: float = Q("transfer-trip signal delay in ms", ge=0, le=10000, default=5.0)


class PsuModel(_Strict):
    holdup_ms: list[float] = Field(min_length=2, max_length=2, description="hold-up times in ms at the two loads")
    holdup_load_fraction: list[float] = Field(min_length=2, max_length=2,
                                              description="PSU loads (fraction of rating) of the hold-up times")
    load_fraction: float = Q("loading of the server PSUs at full server power (N+N redundant: about 0.5)", gt=0,
                             le=1)
    current_limit_pu: float = Q("input current limit in pu of the PSUs' rated current at nominal voltage", ge=1,
                                le=3)
    brownout_pu: float = Q("input voltage below which the PSUs stop drawing power, pu", gt=0, lt=1)
    brownout_recovery_ms: float = Q("time above the brown-out voltage before a PSU draws power again, ms", ge=0,
                                    le=10000)
    walk_in_ms: float = Q("PFC soft start: input power ramp after a brown-out restart, ms", gt=0, le=10000,
                          default=20.0)
    frequency_min_hz: float = Q("lowest input frequency in Hz", gt=30, lt=60)
    frequency_max_hz: float = Q("highest input frequency in Hz", gt=50, lt=80)
    recharge_fraction: float = Q("extra input power that recharges the DC link after a dip, fraction of load",
                                 gt=0, le=2)
    groups: int = Field(ge=1, le=50, description="server groups per hall with different hold-up (1-50)")
    holdup_spread: float = Q("hold-up of the best group over the specification minimum, fraction", ge=0, le=5)
    restart_s: float = Q("time for a dropped server to restart in s", gt=0, le=3600)
    ups_autonomy_min: float = Q("autonomy of a hall UPS (where the case has one) in min", gt=0, le=120,
                                default=10.0)
    ups_input_window_pu: float = Q("a hall UPS goes to its battery below this input voltage, pu", gt=0.5, lt=1,
                                   default=0.9)
    ups_walk_in_s: float = Q("a hall UPS's rectifier walk-in (input power ramp after the mains return) in s", gt=0,
                             le=60, default=5.0)


class DriveModel(_Strict):
    undervoltage_trip_pu: float = Q("VSD undervoltage trip level in pu", gt=0, lt=1)
    ride_through_ms: float = Q("time a VSD rides through below its trip level in ms", ge=0, le=10000)
    current_limit_pu: float = Q("input current limit in pu of rated current at nominal voltage", ge=1, le=3)
    restart_s: float = Q("automatic restart time of a tripped drive in s", gt=0, le=3600)


class MotorDynamics(_Strict):
    inertia_h_s: dict[str, float] = Field(description="inertia constant H in s per motor role ('pump', 'fan')")
    load_torque_exponent: float = Q("load torque proportional to speed to this power (pumps and fans: 2)", ge=0,
                                    le=3, default=2.0)
    contactor_dropout_pu: float = Q("voltage below which a DOL contactor drops out, pu", ge=0, lt=1)
    contactor_dropout_ms: float = Q("time below that voltage before it drops out, ms", ge=0, le=1000)

    @model_validator(mode="after")
    def _check(self):
        bad = {k: v for k, v in self.inertia_h_s.items() if not 0.01 <= v <= 20}
        if bad:
            raise ValueError(f"inertia_h_s: values must be 0.01-20 s, found {bad}")
        return self


class PvDynamics(_Strict):
    anti_islanding_ms: float = Q("PV inverter anti-islanding trip time after loss of mains in ms", ge=0, le=5000)
    undervoltage_trip_pu: float = Q("PV inverter undervoltage trip level in pu", ge=0, lt=1)
    undervoltage_ms: float = Q("time below it before tripping in ms", ge=0, le=10000)


class Resync(_Strict):
    max_angle_deg: float = Q("synchro-check: largest phase difference in degrees", gt=0, le=60)
    max_voltage_pu: float = Q("synchro-check: largest voltage difference in pu", gt=0, le=0.5)
    max_slip_hz: float = Q("synchro-check: largest frequency difference in Hz", gt=0, le=2)
    gain_hz_per_rad: float = Q("synchroniser: frequency correction per radian of phase difference, Hz", gt=0,
                               le=10)
    max_correction_hz: float = Q("synchroniser: largest frequency correction (slip) in Hz", gt=0, le=5, default=0.3)


class Transfer(_Strict):
    """The campus transfer logic between grid and battery (the PCS and the isolation device), as data."""

    transfer_after_dips: int = Field(1, ge=1, le=50, description="transfer to the battery at the N-th dip within "
                                     "dip_window_s (1: at every dip)")
    dip_window_s: float = Q("window in which dips and transfers are counted, s", gt=0, le=86400, default=60.0)
    retransfer_delay_s: float = Q("time the returned grid must be healthy (>= 0.9 pu) before the campus "
                                  "resynchronises and transfers back, s", ge=0, le=86400, default=5.0)
    lockout_after_transfers: int = Field(3, ge=1, le=50, description="after this many transfers within "
                                         "dip_window_s the campus stays on the battery (lockout)")
    lockout_s: float = Q("duration of the lockout, s (until an operator resets it)", gt=0, le=1e6, default=3600.0)


class LvTrip(_Strict):
    instantaneous_multiple: float = Q("LV incomer ACB instantaneous trip Ii in multiples of its rated current",
                                      gt=1, le=30)
    short_time_multiple: float = Q("LV incomer ACB short-time trip Isd in multiples of its rated current", gt=1,
                                   le=30)
    short_time_delay_s: float = Q("short-time trip delay in s", ge=0, le=2)


class DynamicsModel(_Strict):
    description: str = ""
    pcs: PcsDynamics
    detection: Detection
    psu: PsuModel
    drives: DriveModel
    motors: MotorDynamics
    pv: PvDynamics
    resync: Resync
    lv_trip: LvTrip
    transfer: Transfer = Transfer()


class GensetModel(_Strict):
    """A standby genset as the transient studies see it: an engine-alternator set behind its step-up transformer."""

    description: str = ""
    sn_mva: float = Q("alternator rating in MVA", gt=0, le=100)
    p_rated_mw: float = Q("rated active power in MW", gt=0, le=100)
    x_pu: float = Q("transient reactance plus step-up transformer reactance, pu of sn_mva", gt=0.01, le=2)
    r_pu: float = Q("resistance, pu of sn_mva", ge=0, le=0.5)
    droop_p_f_percent: float = Q("governor droop: frequency drop in % at rated power", gt=0, le=20)
    droop_q_v_percent: float = Q("voltage regulator droop in % at rated reactive power", ge=0, le=20)
    engine_tau_s: float = Q("engine and governor response time constant in s (acts as inertia)", gt=0, le=30)
    restoration_s: float = Q("secondary frequency and voltage restoration time constant in s", gt=0, le=600)
    start_delay_s: float = Q("from the islanding detection to the genset on line in s (NFPA 110 type 10: 10 s)",
                             ge=0, le=600)
    current_limit_pu: float = Q("largest current in pu of rated current (short-circuit capability)", ge=1, le=10)

    @model_validator(mode="after")
    def _check(self):
        if self.sn_mva < self.p_rated_mw:
            raise ValueError(f"sn_mva ({self.sn_mva}) must be at least p_rated_mw ({self.p_rated_mw})")
        return self


def load_genset(case, name: str) -> GensetModel:
    """The genset parameter set ``models/gensets/<name>.toml`` of a case."""
    return case.parameter_set("gensets", name, GensetModel)


def load_dynamics(case, name: str) -> DynamicsModel:
    """The dynamics parameter set ``models/dynamics/<name>.toml`` of a case (beside the case first, then embedded)."""
    return case.parameter_set("dynamics", name, DynamicsModel)
