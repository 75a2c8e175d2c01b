"""The linear battery the EMS plans with, the EMS settings, and the input checks shared by the strategies.

The linear model (the usual one in dispatch optimisation): stored energy ``E * soc`` changes by
``eta_charge * P_charge * dt`` when charging and by ``-P_discharge / eta_discharge * dt`` when discharging, where
``P`` is AC power at the PCS terminals; power limits are constant (a BMS may lower them per step); the SOC stays
inside ``[soc_min, soc_max]``. The detailed electro-thermal model lives in :mod:`twin.battery`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["LinearBattery", "EmsSettings", "DEFAULT_PERIOD_ACTIONS", "ACTIONS"]

#: what a tariff period asks of the battery when no schedule is given (Shanghai period names, twin.tariff)
DEFAULT_PERIOD_ACTIONS = {"critical_peak": "discharge", "peak": "discharge", "flat": "recharge",
                          "valley": "charge", "deep_valley": "charge"}
#: action name -> code used by the kernel
ACTIONS = {"idle": 0, "discharge": 1, "charge": 2, "recharge": 3}


def _finite_in(name: str, x: float, lo: float, hi: float, lo_open: bool = False) -> float:
    x = float(x)
    ok = np.isfinite(x) and (x > lo if lo_open else x >= lo) and x <= hi
    if not ok:
        raise ValueError(f"{name} must be within {'(' if lo_open else '['}{lo:g}, {hi:g}], found {x:g}")
    return x


@dataclass(frozen=True)
class LinearBattery:
    """A linear battery model (all powers AC at the PCS terminals).

    Parameters
    ----------
    energy_mwh : float
        Energy at SOC 1 (MWh, stored/DC side); SOC is the stored energy over this.
    p_charge_max_mw, p_discharge_max_mw : float
        AC power limits (MW, magnitudes >= 0).
    eta_charge, eta_discharge : float
        One-way efficiencies in (0, 1]: AC -> stored when charging, stored -> AC when discharging.
    soc_min, soc_max : float
        SOC window, 0 <= soc_min < soc_max <= 1.
    """

    energy_mwh: float
    p_charge_max_mw: float
    p_discharge_max_mw: float
    eta_charge: float = 1.0
    eta_discharge: float = 1.0
    soc_min: float = 0.0
    soc_max: float = 1.0

    def __post_init__(self):
        _finite_in("LinearBattery.energy_mwh", self.energy_mwh, 0.0, 1e6, lo_open=True)
        _finite_in("LinearBattery.p_charge_max_mw", self.p_charge_max_mw, 0.0, 1e6)
        _finite_in("LinearBattery.p_discharge_max_mw", self.p_discharge_max_mw, 0.0, 1e6)
        _finite_in("LinearBattery.eta_charge", self.eta_charge, 0.0, 1.0, lo_open=True)
        _finite_in("LinearBattery.eta_discharge", self.eta_discharge, 0.0, 1.0, lo_open=True)
        _finite_in("LinearBattery.soc_min", self.soc_min, 0.0, 1.0)
        _finite_in("LinearBattery.soc_max", self.soc_max, 0.0, 1.0)
        if not self.soc_min < self.soc_max:
            raise ValueError(f"LinearBattery: soc_min must be below soc_max, found {self.soc_min:g} >= "
                             f"{self.soc_max:g}")

    @classmethod
    def from_case(cls, case) -> LinearBattery:
        """The case's battery as a linear model: DC nameplate energy, the container's SOC window, rated AC
        power both ways, and one-way efficiency = DC one-way x PCS efficiency at rated power (as
        :func:`twin.battery.ratings` computes usable AC energy)."""
        from ..battery import ratings

        r = ratings(case)
        if r is None:
            raise ValueError("LinearBattery.from_case: the case has no battery")
        cont = case.model("battery/containers", case.spec.battery.container)
        eta = r.usable_ac_mwh / r.usable_dc_mwh
        return cls(energy_mwh=r.nameplate_dc_mwh, p_charge_max_mw=r.p_ac_rated_mw,
                   p_discharge_max_mw=r.p_ac_rated_mw, eta_charge=eta, eta_discharge=eta,
                   soc_min=cont.soc_min, soc_max=cont.soc_max)


@dataclass(frozen=True)
class EmsSettings:
    """What the EMS must hold and what it may do.

    Parameters
    ----------
    cap_mw : float
        Firm import cap at the incomers (MW), checked every step and as the ``window_min`` mean demand.
    margin_mw : float
        The EMS aims at ``cap_mw - margin_mw`` (MW, >= 0).
    demand_cap_mw : float, optional
        Cap on the ``window_min`` mean import (MW); default ``cap_mw``. Windows start at the first step.
    window_min : float
        Demand window (min), 15 for Chinese utility meters.
    reserve_mw : float, optional
        Backup reserve power (MW) the battery must be able to deliver for ``reserve_min``; default its
        discharge rating. The reserve is held as an SOC floor above ``soc_min``.
    reserve_min : float
        Backup duration (min); 0 for no reserve.
    period_actions : dict
        Tariff period name -> ``"discharge"`` (arbitrage), ``"charge"`` (arbitrage, to ``soc_max`` within the cap
        headroom), ``"recharge"`` (to ``recharge_soc`` within the cap headroom) or ``"idle"``.
    arbitrage_soc_min : float, optional
        Arbitrage discharges no lower than this SOC (keeps energy for the cap); default the reserve floor.
    recharge_soc : float, optional
        SOC that ``"recharge"`` periods restore; default the battery's ``soc_max``.
    """

    cap_mw: float
    margin_mw: float = 0.0
    demand_cap_mw: float | None = None
    window_min: float = 15.0
    reserve_mw: float | None = None
    reserve_min: float = 15.0
    period_actions: dict = field(default_factory=lambda: dict(DEFAULT_PERIOD_ACTIONS))
    arbitrage_soc_min: float | None = None
    recharge_soc: float | None = None

    def __post_init__(self):
        _finite_in("EmsSettings.cap_mw", self.cap_mw, 0.0, 1e6, lo_open=True)
        _finite_in("EmsSettings.margin_mw", self.margin_mw, 0.0, self.cap_mw)
        if self.demand_cap_mw is not None:
            _finite_in("EmsSettings.demand_cap_mw", self.demand_cap_mw, self.margin_mw, 1e6, lo_open=True)
        _finite_in("EmsSettings.window_min", self.window_min, 0.0, 1440.0, lo_open=True)
        if self.reserve_mw is not None:
            _finite_in("EmsSettings.reserve_mw", self.reserve_mw, 0.0, 1e6)
        _finite_in("EmsSettings.reserve_min", self.reserve_min, 0.0, 1e5)
        for k, v in self.period_actions.items():
            if v not in ACTIONS:
                raise ValueError(f"EmsSettings.period_actions['{k}'] must be one of {sorted(ACTIONS)}, "
                                 f"found '{v}'")
        for name in ("arbitrage_soc_min", "recharge_soc"):
            v = getattr(self, name)
            if v is not None:
                _finite_in(f"EmsSettings.{name}", v, 0.0, 1.0)

    # derived quantities -------------------------------------------------------------------------------------
    def cap_target_mw(self) -> float:
        """Instantaneous import the EMS aims at: cap - margin (MW)."""
        return self.cap_mw - self.margin_mw

    def demand_target_mw(self) -> float:
        """Window-mean import the EMS aims at: demand cap - margin (MW)."""
        return (self.cap_mw if self.demand_cap_mw is None else self.demand_cap_mw) - self.margin_mw

    def reserve_soc(self, battery: LinearBattery) -> float:
        """SOC floor that holds the backup reserve: soc_min + P x t / (eta_discharge x E)."""
        p = battery.p_discharge_max_mw if self.reserve_mw is None else self.reserve_mw
        floor = battery.soc_min + p * self.reserve_min / 60.0 / (battery.eta_discharge * battery.energy_mwh)
        if floor > battery.soc_max + 1e-12:
            raise ValueError(f"EmsSettings: the backup reserve ({p:g} MW for {self.reserve_min:g} min) needs SOC "
                             f"{floor:.3f}, above the battery's soc_max {battery.soc_max:g}")
        return min(floor, battery.soc_max)

    def window_steps(self, dt_min: float) -> int:
        """Steps per demand window (1 when a step is as long as the window or longer)."""
        m = self.window_min / dt_min
        if m <= 1.0 + 1e-9:
            return 1
        if abs(m - round(m)) > 1e-6:
            raise ValueError(f"EmsSettings.window_min ({self.window_min:g} min) must be a whole number of steps "
                             f"of {dt_min:g} min")
        return int(round(m))


# --------------------------------------------------------------------------------------------------------------
# input checks shared by the strategies


def check_dt(dt_min) -> float:
    try:
        dt = float(dt_min)
    except (TypeError, ValueError):
        raise ValueError(f"dt_min must be a number of minutes > 0, found {dt_min!r}") from None
    if not (np.isfinite(dt) and dt > 0):
        raise ValueError(f"dt_min must be a number of minutes > 0, found {dt_min!r}")
    return dt


def check_series(name: str, x, n: int | None, allow_inf: bool = False, nonneg: bool = False) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    if a.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array (one value per step), found shape {a.shape}")
    if n is not None and a.shape[0] != n:
        raise ValueError(f"{name} must have one value per step ({n}), found {a.shape[0]}")
    if a.shape[0] == 0:
        raise ValueError(f"{name} is empty: at least one step is needed")
    bad = np.isnan(a) if allow_inf else ~np.isfinite(a)
    if bad.any():
        raise ValueError(f"{name} contains {'NaN' if allow_inf else 'NaN or inf'} at step {int(np.argmax(bad))}")
    if nonneg and (a < 0).any():
        raise ValueError(f"{name} must be >= 0, found {a.min():g} at step {int(np.argmin(a))}")
    return np.ascontiguousarray(a)


def check_soc0(soc0, battery: LinearBattery) -> float:
    s = float(soc0)
    if not (np.isfinite(s) and 0.0 <= s <= 1.0):
        raise ValueError(f"soc0 must be within 0-1, found {soc0!r}")
    if not battery.soc_min - 1e-12 <= s <= battery.soc_max + 1e-12:
        raise ValueError(f"soc0 must be within the battery's SOC window [{battery.soc_min:g}, "
                         f"{battery.soc_max:g}], found {s:g}")
    return min(max(s, battery.soc_min), battery.soc_max)
