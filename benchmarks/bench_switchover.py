"""Loss of mains at scale: 1,000 switchover scenarios (detection delay x load level x SOC) on the full seed net.

Run on demand: ``python benchmarks/bench_switchover.py`` (``--quick``: a 2 x 2 x 2 grid for smoke testing;
``--workers N``: worker processes, default every core). Prints the CPU model, the figures with the target (issue 6;
printed, never asserted), a table of outcomes, then one line of JSON.

What is timed
-------------
Each scenario is one call of :func:`twin.transient.sim.simulate` as the study makes it: the seed case's full
reduced network (every bus with a load, a PCS, PV, a motor or an LV board), the study's own step (the case's
``[switchover] step_ms``, 1 ms), 2 s simulated, loss of mains (every incomer lost, :func:`twin.studies.switchover.
lom_events`) at 0.1 s, the PCS forming the island, the Dataset built (every step recorded), the battery's DC side
not run (``battery_dc=False``, as in the study's pick-up and shedding searches). The grid:

- detection delay: the PCS's undervoltage operate time (``det[D_UV_T]`` on a :meth:`Plant.copy`), 1-50 ms;
- load level: the design operating point's IT, cooling and auxiliary load scaled together (``build_plant(...,
  load_scale=x, like=base)``: one load flow per level, the reduced network reused);
- SOC: the battery's BMS discharge limit at that SOC sets the grid-forming PCS's power limit (``inv["f"][pcs,
  I_PMAX]``, as ``build_plant(..., soc=s)`` would; computed once per SOC). Above about 10 % SOC a container can
  deliver about 2 MW DC, twice its PCS's 1 MW, so the PCS current limit binds and SOC changes nothing: the grid
  puts most of its SOCs at the low end, where it matters.

Scenarios run in worker processes (``concurrent.futures.ProcessPoolExecutor``, spawn), one task per load level and
detection delay (its ten SOCs), handed out as workers free up, because the cost varies fivefold between scenarios
(collapsing islands take many more network iterations). The kernel is numba without ``nogil``, so threads would
serialise on the GIL. Each worker loads the case, builds one plant per load level, warms up (the kernel's compile is
cached on disk, ``cache=True``) and waits at a barrier; ``seconds`` is the wall time from the first scenario to the
last, ``setup_s`` the wall time from starting the pool to the first scenario. OpenBLAS/OpenMP threads are set to one
per worker (the kernel's 18 x 18 complex solves are slower with BLAS threads: about 1.5x in a single process).
The kernel's share (the rest is building the Dataset) and its network iterations are measured by wrapping
``twin.transient._kernel.simulate`` for the run (one clock read per call).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import time
import warnings
from concurrent.futures import ProcessPoolExecutor

warnings.filterwarnings("ignore")
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one process per core; no BLAS threads inside a worker

import numpy as np  # noqa: E402
from _common import cpu_model  # noqa: E402  (benchmarks/ is on the path when run as a script)

TARGET_S = 60.0
T_EVENT_S = 0.1
T_END_S = 2.0
OP = "training_peak"
DELAYS_MS = [1.0, 2.0, 3.0, 5.0, 8.0, 10.0, 15.0, 20.0, 30.0, 50.0]
LOAD_SCALES = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
SOCS = [0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.1, 0.3, 0.6, 0.9]
QUICK = ([3.0, 50.0], [0.3, 1.0], [0.03, 0.5])

_STATE: dict = {}


def _setup(barrier, levels: list[float], socs: list[float]) -> None:
    """Worker initializer: load the case, build one plant per load level, the PCS limit per SOC, warm up, then wait
    at the barrier for the other workers (so the clock starts with every core ready)."""
    t0 = time.time()
    from twin.case import load_case
    from twin.network import build_net
    from twin.studies.switchover import lom_events
    from twin.transient import sim
    from twin.transient.sim import build_plant, simulate

    t_import = time.time() - t0
    case = load_case()
    net = build_net(case)
    soc0 = case.spec.battery.initial_soc
    base = build_plant(case, net, OP, soc=soc0)
    plants = {x: build_plant(case, net, OP, soc=soc0, load_scale=x, like=base) for x in levels}
    sn = float(net.sn_mva)
    _STATE.update(case=case, plants=plants, pcs=np.array([k == "PCS" for k in base.inv["kind"]]),
                  pmax={s: sim._battery_pmax_ac(case, s) / sn for s in socs}, sn=sn,
                  campus_mw={x: float(p.net.res_load.p_mw.sum() + p.net.res_motor.p_mw.sum())
                             for x, p in plants.items()})
    # load the kernel's cached compile (or compile it) before the clock starts
    simulate(base, lom_events(case, base, T_EVENT_S), t_end_s=0.2, battery_dc=False)
    _STATE.update(t_import_s=t_import, t_setup_s=time.time() - t0)
    barrier.wait(timeout=900)


def _task(level: float, delay_ms: float, socs: list[float]) -> dict:
    """Every SOC at one load level and detection delay: the scenarios, their outcome and their cost."""
    from twin.studies.switchover import lom_events, survives
    from twin.transient import _kernel as K
    from twin.transient.sim import simulate

    st = _STATE
    case, pcs = st["case"], st["pcs"]
    band = case.spec.switchover.island_frequency_band_hz
    kernel = {"s": 0.0}
    inner = K.simulate

    def timed(*a):
        t = time.perf_counter()
        r = inner(*a)
        kernel["s"] += time.perf_counter() - t
        return r

    K.simulate = timed  # simulate() calls the kernel through the module attribute
    rows = []
    t_start, cpu_start = time.time(), time.process_time()
    try:
        for s in socs:
            pl = st["plants"][level].copy()
            pl.det[K.D_UV_T] = delay_ms / 1000.0
            pl.inv["f"][pcs, K.I_PMAX] = st["pmax"][s]
            pl.soc = s
            t = time.perf_counter()
            ds = simulate(pl, lom_events(case, pl, T_EVENT_S), t_end_s=T_END_S, battery_dc=False)
            ok = survives(ds, pl, band, T_EVENT_S)
            wall = time.perf_counter() - t
            it = ds.iterations.to_numpy()
            rows.append({"load_scale": level, "delay_ms": delay_ms, "soc": s, "survives": ok, "wall_s": wall,
                         "iterations": int(it.sum()), "iterations_max": int(it.max()),
                         "nonconverged": int(ds.attrs["n_nonconverged"]),
                         "it_lost_mw": float(ds.hall_lost_mw.isel(time=-1).sum()),
                         "f_min_hz": float(ds.frequency_hz.min())})
    finally:
        K.simulate = inner
    step_s = case.spec.switchover.step_ms / 1000.0
    return {"pid": os.getpid(), "rows": rows, "t_start": t_start, "t_end": time.time(),
            "cpu_s": time.process_time() - cpu_start, "kernel_s": kernel["s"], "t_import_s": st["t_import_s"],
            "t_setup_s": st["t_setup_s"], "steps": int(round(T_END_S / step_s)) + 1, "step_s": step_s,
            "campus_mw": st["campus_mw"], "pcs_pmax_mw": {s: v * st["sn"] for s, v in st["pmax"].items()}}


def _table(rows: list[dict], campus_mw: dict, delays: list[float], n_soc: int) -> str:
    """Scenarios that survive (no server, motor or drive lost; frequency in band), out of the SOCs, by level and
    detection delay."""
    ok = {(r["load_scale"], r["delay_ms"]): 0 for r in rows}
    for r in rows:
        ok[(r["load_scale"], r["delay_ms"])] += r["survives"]
    head = f"{'load x':>7} {'campus MW':>9} | " + " ".join(f"{d:>5g}" for d in delays)
    lines = [f"island survives (of {n_soc} SOCs), by load level and undervoltage detection delay (ms):", head,
             "-" * len(head)]
    for x in sorted(campus_mw):
        lines.append(f"{x:>7g} {campus_mw[x]:>9.2f} | " + " ".join(f"{ok[(x, d)]:>5d}" for d in delays))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a 2 x 2 x 2 grid (smoke test)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes (default: cores)")
    ap.add_argument("--rows", metavar="CSV", help="write one row per scenario (outcome, iterations, wall time)")
    args = ap.parse_args()
    delays, levels, socs = QUICK if args.quick else (DELAYS_MS, LOAD_SCALES, SOCS)
    tasks = [(x, d) for x in levels for d in delays]  # one task: every SOC at a load level and delay
    n_work = max(1, min(args.workers, len(tasks)))  # every worker must get a task (they meet at a barrier)
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(n_work)
    print(f"CPU: {cpu_model()} ({os.cpu_count()} cores); {n_work} worker processes; load average before "
          f"{os.getloadavg()[0]:.2f}")
    t0 = time.time()
    with ProcessPoolExecutor(n_work, mp_context=ctx, initializer=_setup, initargs=(barrier, levels, socs)) as pool:
        res = list(pool.map(_task, [x for x, _ in tasks], [d for _, d in tasks], [socs] * len(tasks)))
    start = min(r["t_start"] for r in res)
    seconds = max(r["t_end"] for r in res) - start
    setup = start - t0
    per_worker = {}
    for r in res:
        per_worker.setdefault(r["pid"], []).append(r)
    rows = [row for r in res for row in r["rows"]]
    campus = {x: mw for r in res for x, mw in r["campus_mw"].items()}
    n = len(rows)
    step_s = res[0]["step_s"]
    busy = sum(r["t_end"] - r["t_start"] for r in res)
    if len(per_worker) < n_work:
        print(f"note: only {len(per_worker)} of {n_work} workers ran tasks")
    kernel = sum(r["kernel_s"] for r in res)
    cpu = sum(r["cpu_s"] for r in res)
    iters = np.array([row["iterations"] for row in rows])
    steps = res[0]["steps"]
    print(f"grid: {len(delays)} detection delays {delays} ms x {len(levels)} load levels {levels} x {len(socs)} SOCs "
          f"{socs}; {OP}, loss of mains at {T_EVENT_S:g} s, {T_END_S:g} s simulated at {step_s * 1e3:g} ms "
          f"({steps} steps)")
    print("PCS power limit per container by SOC (MW AC): "
          + ", ".join(f"{s:g}: {mw:.2f}" for s, mw in res[0]["pcs_pmax_mw"].items()))
    print(_table(rows, campus, delays, len(socs)))
    print(f"\nsetup (spawn, imports, case, net, {len(levels)} plants, warm-up), wall: {setup:.1f} s "
          f"(per worker: imports {max(r['t_import_s'] for r in res):.1f} s, all {max(r['t_setup_s'] for r in res):.1f} s)")
    print("scenarios per worker: " + ", ".join(f"{sum(len(r['rows']) for r in rs)} in "
                                                 f"{sum(r['t_end'] - r['t_start'] for r in rs):.1f} s"
                                                 for rs in per_worker.values()))
    print(f"{n} scenarios: {seconds:.1f} s wall on {n_work} processes (target < {TARGET_S:g} s: "
          f"{'PASS' if seconds < TARGET_S else 'MISS by %.1f s' % (seconds - TARGET_S)})")
    print(f"per scenario: {1e3 * seconds / n:.0f} ms wall, {1e3 * busy / n:.0f} ms on one process "
          f"(kernel {1e3 * kernel / n:.0f} ms = {100 * kernel / busy:.0f} %, Dataset, events and checks the rest)")
    print(f"network iterations per step: mean {iters.sum() / (n * steps):.2f} (scenario means "
          f"{iters.min() / steps:.2f}-{iters.max() / steps:.2f}), largest in a step "
          f"{max(r['iterations_max'] for r in rows)}; {1e6 * kernel / iters.sum():.1f} us of kernel per iteration; "
          f"non-converged steps {sum(r['nonconverged'] for r in rows)}")
    groups = {"that survive": [r for r in rows if r["survives"]], "that fail": [r for r in rows if not r["survives"]],
              "with non-converged steps": [r for r in rows if r["nonconverged"]]}
    for label, sel in groups.items():
        if sel:
            print(f"  scenarios {label}: {len(sel)}, {1e3 * np.mean([r['wall_s'] for r in sel]):.0f} ms each, "
                  f"{np.mean([r['iterations'] for r in sel]) / steps:.2f} iterations per step, "
                  f"{np.mean([r['nonconverged'] for r in sel]):.0f} non-converged steps each")
    print(f"process CPU time of the scenarios: {cpu:.1f} s over {n_work} processes ({100 * cpu / busy:.0f} % of their "
          f"wall time; below 100 % means the cores were shared); load average after {os.getloadavg()[0]:.2f}")
    if args.rows:
        import pandas as pd

        pd.DataFrame(rows).to_csv(args.rows, index=False)
        print(f"per-scenario rows written to {args.rows}")
    out = {"scenarios": n, "seconds": seconds, "step_s": step_s, "seconds_per_scenario": seconds / n,
           "seconds_per_scenario_one_process": busy / n, "cpu_s": cpu, "kernel_share": kernel / busy, "workers": n_work,
           "parallel": "processes (ProcessPoolExecutor, spawn)", "cpu": cpu_model(), "cores": os.cpu_count(),
           "setup_s": setup, "t_end_s": T_END_S, "steps_per_scenario": steps,
           "iterations_per_step_mean": float(iters.sum() / (n * steps)), "target_s": TARGET_S,
           "surviving_scenarios": int(sum(r["survives"] for r in rows)),
           "nonconverged_steps": int(sum(r["nonconverged"] for r in rows)), "load_average_1min": os.getloadavg()[0],
           "quick": args.quick}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
