"""Energy management: battery dispatch strategies over a horizon of time steps (arrays in, arrays out).

- :mod:`twin.ems.model` -- :class:`LinearBattery`, the linear battery both strategies plan with (energy in MWh,
  one-way charge and discharge efficiencies, AC power limits, SOC window), and :class:`EmsSettings` (firm cap and
  its margin, 15-minute demand window, backup reserve, what each tariff period asks of the battery);
- :mod:`twin.ems.rules` -- rule-based real-time dispatch in a fixed order of priority (BMS limits, backup reserve,
  no export, firm cap, then time-of-use arbitrage / PV self-consumption or a schedule to follow), numba kernel;
- :mod:`twin.ems.lp` -- the optimal day-ahead schedule as a linear program (scipy HiGHS), and the day-ahead +
  real-time loop (:func:`~twin.ems.lp.dispatch_day_ahead`) where the rules follow the LP's schedule.

Signs follow DESIGN.md: battery AC power is positive when discharging; grid import is positive when drawing from
the utility. ``net_load_mw`` is site load minus PV (negative: PV surplus).
"""

from .lp import LpSchedule, dispatch_day_ahead, persistence_forecast, schedule_lp
from .model import EmsSettings, LinearBattery
from .rules import RULES, DispatchResult, dispatch_rules

__all__ = ["LinearBattery", "EmsSettings", "dispatch_rules", "DispatchResult", "RULES", "schedule_lp",
           "LpSchedule", "dispatch_day_ahead", "persistence_forecast"]
