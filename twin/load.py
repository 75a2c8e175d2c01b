"""Campus loads for snapshot studies: GPU-hall IT power, cooling plant split, auxiliaries.

The drivers issue adds the dynamic hall model (training iterations, checkpoints, job mix); the snapshot studies
need only the power at a given utilisation, which is what this module gives, from the server parameter set
(``models/it``) and the hall's GPU count in the case.
"""

from __future__ import annotations

import numpy as np

from .case import CoolingModel, ServerModel


def server_power_kw(server: ServerModel, utilisation):
    """Wall power of one server in kW.

    ``P = n_gpu * P_gpu * (f_idle + (1 - f_idle) * u) + P_oh_idle + (P_oh - P_oh_idle) * u``, with ``u`` the GPU
    utilisation between idle (0) and full training power (1). Array in, array out.
    """
    u = np.asarray(utilisation, dtype=float)
    gpu = server.gpus_per_server * server.gpu_kw * (server.gpu_idle_fraction + (1.0 - server.gpu_idle_fraction) * u)
    overhead = server.server_overhead_idle_kw + (server.server_overhead_kw - server.server_overhead_idle_kw) * u
    return gpu + overhead


def hall_it_power_mw(server: ServerModel, gpu_count: int, network_storage_kw: float, utilisation):
    """IT power of a hall in MW: servers (``gpu_count / gpus_per_server`` of them) plus network and storage."""
    n_servers = gpu_count / server.gpus_per_server
    return (n_servers * server_power_kw(server, utilisation) + network_storage_kw) / 1000.0


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
from .gpu import hall_it_power_mw, server_power_kw  # noqa: E402, F401, F811 (twin.gpu, with PSU efficiency)
