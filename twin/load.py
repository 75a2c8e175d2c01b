"""Campus loads for snapshot studies: GPU-hall IT power, cooling plant split, auxiliaries.

The GPU-hall IT power at a given utilisation (``server_power_kw``, ``hall_it_power_mw``) and the dynamic hall
model live in :mod:`twin.gpu` and are re-exported here for the snapshot studies.
"""

from __future__ import annotations

import numpy as np

from .case import CoolingModel
from .gpu import hall_it_power_mw, server_power_kw  # noqa: F401  (IT power lives in twin.gpu)


def motor_electrical_mw(pn_mech_kw: float, loading_percent: float, efficiency_percent: float) -> float:
    """Electrical input of an induction motor in MW, as pandapower's motor element computes it."""
    return pn_mech_kw / 1000.0 * loading_percent / 100.0 / (efficiency_percent / 100.0)


def split_cooling_feed(model: CoolingModel, p_feed_mw: float) -> tuple[float, float]:
    """Split one feed's cooling demand between its DOL motors and its VSD compressors.

    Returns ``(motor_loading_scale, compressor_mw)``: the pumps and fans run at their rated loading when the
    demand covers them (the compressors take the rest); below that the motors are scaled down (part load) and
    the compressors are off.
    """
    motors = sum(m.count_per_feed * motor_electrical_mw(m.pn_mech_kw, m.loading_percent, m.efficiency_percent)
                 for m in model.motors)
    if p_feed_mw < 0:
        raise ValueError(f"cooling demand must be >= 0 MW, got {p_feed_mw}")
    if motors <= 0:
        return 1.0, p_feed_mw
    if p_feed_mw >= motors:
        return 1.0, p_feed_mw - motors
    return p_feed_mw / motors, 0.0


def q_from_pf(p_mw, power_factor):
    """Reactive power (Mvar, inductive positive for a load) from active power and power factor."""
    p = np.asarray(p_mw, dtype=float)
    return p * np.tan(np.arccos(power_factor))
