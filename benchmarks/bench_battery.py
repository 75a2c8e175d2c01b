"""Battery cell model benchmark: throughput, every cell of the seed system for a day, and PyBaMM side by side.

Run on demand: ``python benchmarks/bench_battery.py``. PyBaMM is optional (``pip install 'twin[bench]'``); without it
the PyBaMM figures are null. Prints its figures, then one line of JSON.

Figures
-------
cell_steps_per_s_1thread
    Cell-steps per second of the full model (2 RC, SOC- and temperature-dependent parameters, thermal node, limits)
    in current mode on one thread: 1,000 cells x 8,640 steps.
all_cells_day_1s_s
    Every cell of the seed system (``n_cells``) for a day at 1 s on every core, measured over
    ``all_cells_measured_h`` hours and scaled to 24 h (the kernel's cost is linear in steps). The racks are not yet coupled through the DC bus (battery
    issue, system part): each cell gets its share of the current.
pybamm_day_1s_s, twin_day_1s_s, speedup_vs_pybamm, max_abs_dv_mv
    One cell for a day at 1 s on the same smooth current profile: PyBaMM's Thevenin model with 2 RC elements
    (IDAKLU solver, model build excluded) against this model with the same parameters (isothermal: no entropic
    term, no Arrhenius, large heat capacity), and the largest voltage difference between the two.
"""

from __future__ import annotations

import json
import os
import platform
import time
import warnings

import numba
import numpy as np

from twin.battery import ratings
from twin.battery.cell import simulate_current
from twin.battery.params import load_cell
from twin.case import load_case

warnings.filterwarnings("ignore")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def profile(n: int, seed: int = 0) -> np.ndarray:
    """A smooth day-long current profile in A (slow sinusoids and smoothed steps), mean zero, |I| < 140 A."""
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    i = 60 * np.sin(2 * np.pi * t / 7200) + 30 * np.sin(2 * np.pi * t / 1300 + 1.0)
    steps = np.repeat(rng.uniform(-40, 40, n // 900 + 1), 900)[:n]
    kernel = np.ones(120) / 120
    return i + np.convolve(steps, kernel, mode="same")


def main():
    numba.set_num_threads(1)
    cell = load_cell("lfp_280ah")
    case = load_case()
    n_cells = ratings(case).cells

    # warm-up (compile, and a first full-size run: the first timed call is otherwise several times slower)
    simulate_current(cell, np.zeros((2, 10)), 1.0, 25.0, 0.5, 25.0)
    simulate_current(cell, np.tile(profile(8640), (1000, 1)), 1.0, 25.0, 0.5, 25.0)

    # 1. throughput
    nc, ns = 1000, 8640
    cur = np.tile(profile(ns), (nc, 1))
    t = time.perf_counter()
    simulate_current(cell, cur, 1.0, 25.0, 0.5, 25.0)
    dt = time.perf_counter() - t
    steps_per_s = nc * ns / dt

    # 2. every cell for a day (measured over one hour, scaled), on every core (blocks of cells in numba threads)
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    hours = 1
    chunk = 60  # stream the hour in chunks, carrying the state (outputs of all cells at 1 s would not fit in memory)
    prof = profile(3600 * hours)
    soc, tc, v1, v2 = 0.5, 25.0, 0.0, 0.0
    t = time.perf_counter()
    for k0 in range(0, 3600 * hours, chunk):
        out = simulate_current(cell, np.broadcast_to(prof[k0:k0 + chunk], (n_cells, chunk)), 1.0, 25.0, soc, tc,
                               v_rc1_0=v1, v_rc2_0=v2)
        soc, tc, v1, v2 = out["soc"][:, -1], out["t_degc"][:, -1], out["v_rc1"][:, -1], out["v_rc2"][:, -1]
    all_cells_day = (time.perf_counter() - t) * 24 / hours

    # 3. one cell for a day, against PyBaMM with the same parameters (one thread, like PyBaMM's solver)
    numba.set_num_threads(1)
    n = 86400
    prof = profile(n + 1)
    iso = cell.model_copy(update={"dudt_mv_per_k": [0.0] * len(cell.soc), "hysteresis_v": 0.0,
                                  "ea_r0_j_per_mol": 0.0, "ea_r1_j_per_mol": 0.0, "ea_r2_j_per_mol": 0.0,
                                  "heat_capacity_j_per_k": 1e12,
                                  "r0_ohm": 2.5e-4, "r1_ohm": 0.9e-4, "r2_ohm": 1.2e-4, "r_soc": None})
    step_current = 0.5 * (prof[:-1] + prof[1:])  # the step mean of PyBaMM's linear interpolant
    t = time.perf_counter()
    ours = simulate_current(iso, step_current, 1.0, 25.0, 0.5, 25.0)
    twin_day = time.perf_counter() - t
    pybamm_day = dv = None
    try:
        import pybamm

        model = pybamm.equivalent_circuit.Thevenin(options={"number of rc elements": 2})
        pv = model.default_parameter_values
        soc_tab, ocv_tab = np.asarray(iso.soc), np.asarray(iso.ocv_v)
        pv.update({
            "Cell capacity [A.h]": iso.capacity_ah, "Nominal cell capacity [A.h]": iso.capacity_ah,
            "Initial SoC": 0.5, "R0 [Ohm]": 2.5e-4, "R1 [Ohm]": 0.9e-4, "C1 [F]": iso.tau1_s / 0.9e-4,
            "R2 [Ohm]": 1.2e-4, "C2 [F]": iso.tau2_s / 1.2e-4, "Element-2 initial overpotential [V]": 0.0,
            "Open-circuit voltage [V]": lambda soc: pybamm.Interpolant(soc_tab, ocv_tab, soc, interpolator="linear"),
            "Entropic change [V/K]": lambda soc, t: 0 * soc,
            "Upper voltage cut-off [V]": 4.5, "Lower voltage cut-off [V]": 1.5,
            "Current function [A]": pybamm.Interpolant(np.arange(n + 1.0), prof, pybamm.t, interpolator="linear"),
        }, check_already_exists=False)
        sim = pybamm.Simulation(model, parameter_values=pv, solver=pybamm.IDAKLUSolver())
        sim.build()
        t = time.perf_counter()
        sol = sim.solve(t_eval=[0, n], t_interp=np.arange(n + 1.0))
        pybamm_day = time.perf_counter() - t
        v_pb = sol["Voltage [V]"].entries[1:]
        dv = float(np.max(np.abs(v_pb - ours["v_end"].ravel()))) * 1000.0
    except ImportError:
        print("PyBaMM not installed (pip install 'twin[bench]'): its figures are null")

    out = {
        "cpu": cpu_model(),
        "numba_threads_all_cells": numba.config.NUMBA_NUM_THREADS,
        "cores": os.cpu_count(),
        "cell_steps_per_s_1thread": steps_per_s,
        "n_cells": int(n_cells),
        "all_cells_day_1s_s": all_cells_day,
        "all_cells_measured_h": hours,
        "twin_day_1s_s": twin_day,
        "pybamm_day_1s_s": pybamm_day,
        "speedup_vs_pybamm": (pybamm_day / twin_day) if pybamm_day else None,
        "max_abs_dv_mv": dv,
    }
    for k, v in out.items():
        print(f"{k:26s} {v}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
