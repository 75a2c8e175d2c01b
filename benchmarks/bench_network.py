"""Per-step time of the batch load flow (twin.netbatch, power-grid-model) against pandapower's time series.

On the seed net, with the same random but plausible per-step loads, motor, PV and battery powers:

- the batch solver on ``--steps`` steps (default 10,000) in one call, with power-grid-model's iterative-current
  method (twin.netbatch's default; the headline figure, one thread) and Newton-Raphson, sequential and with all
  hardware threads;
- pandapower's ``run_timeseries`` on ``--sample`` steps (default 200) in its fastest configuration: DFData and one
  ConstControl per (table, variable), OutputWriter given (table, column) tuples of res_bus/res_line/res_trafo only
  (pandapower's fast output path; it does not log the grid import), lightsim2grid, warm start;
- the same in tutorial style: DFData + ConstControl + OutputWriter with its default variables plus
  ``log_variable`` calls for what the batch solver returns (including the external grids' P and Q), pandapower's
  own Newton-Raphson with the twin's ``run_loadflow`` options.

lightsim2grid refuses a net with several external grids unless the slack is distributed, and pandapower refuses a
distributed slack over separate islands; the seed net's bus coupler is open (two islands, one incomer each). So
the fastest configuration runs each island as its own net (pandapower's advice: "calculate the zones separately")
and its per-step time is the sum over the islands. The fastest configuration also takes the DOL motors as
constant-power loads (the same load flow; a ConstControl on a motor switches pandapower's recycling off).
pandapower without lightsim2grid on the whole net is timed too,
and the faster of the two is taken as pandapower's fastest. Results of every configuration are checked against the
batch solver on the same steps (same model: the comparison is like with like).

Prints the CPU model, the figures, and a final JSON line.
"""

import argparse
import copy
import json
import platform
import time
import warnings

warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import pandapower as pp  # noqa: E402
import pandapower.topology as top  # noqa: E402
import pandas as pd  # noqa: E402
from _common import cpu_model  # noqa: E402  (benchmarks/ is on the path when run as a script)
from pandapower.control import ConstControl  # noqa: E402
from pandapower.timeseries import DFData, OutputWriter, run_timeseries  # noqa: E402
from pandapower.toolbox import select_subnet  # noqa: E402

from twin.case import load_case  # noqa: E402
from twin.netbatch import BatchModel, injections_from_net  # noqa: E402
from twin.network import apply_operating_point, build_net  # noqa: E402

# the twin's load-flow options (twin.network.run_loadflow)
TWIN_OPTIONS = dict(algorithm="nr", calculate_voltage_angles=True, trafo_model="pi", max_iteration=30,
                    tolerance_mva=1e-9, consider_line_temperature=True)
# pandapower's fast output path (voltages only, branch results read in batch afterwards) takes res_bus, res_line
# and res_trafo tuples only, one variable per table (pandapower 3.5 raises "Something went wrong" on a second):
# logging the external grids' P and Q switches it off
FAST_LOGGED = [("res_bus", "vm_pu"), ("res_line", "loading_percent"), ("res_trafo", "loading_percent")]
LOGGED = [("res_bus", "vm_pu"), ("res_bus", "va_degree"), ("res_line", "loading_percent"), ("res_line", "pl_mw"),
          ("res_trafo", "loading_percent"), ("res_trafo", "pl_mw"), ("res_ext_grid", "p_mw"),
          ("res_ext_grid", "q_mvar")]


def random_injections(net, rng, n):
    """Loads 20-110 % of the operating point, motors 30-110 % at their power factor, PV 0 to rating, PCS -1..1 of
    rating with some reactive power."""
    base = injections_from_net(net)
    f = rng.uniform(0.2, 1.1, (n, len(net.load)))
    fm = rng.uniform(0.3, 1.1, (n, len(net.motor)))
    sg = net.sgen
    pv = (sg.type == "PV").to_numpy()
    out = {"load_p_mw": base["load_p_mw"] * f, "load_q_mvar": base["load_q_mvar"] * f,
           "motor_p_mw": base["motor_p_mw"] * fm}
    out["motor_q_mvar"] = out["motor_p_mw"] * np.tan(np.arccos(net.motor.cos_phi.to_numpy(float)))
    out["sgen_p_mw"] = np.where(pv, rng.uniform(0, 1, (n, len(sg))) * sg.sn_mva.to_numpy(float),
                                rng.uniform(-1, 1, (n, len(sg))) * sg.max_p_mw.to_numpy(float))
    out["sgen_q_mvar"] = np.where(pv, 0.0, rng.uniform(-0.2, 0.2, (n, len(sg))))
    return out


def _profiles(net, inj, n):
    """DFData profiles: one column per (table, variable, element); motors through their loading_percent."""
    m = net.motor
    motor_loading = inj["motor_p_mw"][:n] / (m.pn_mech_mw / (m.efficiency_percent / 100.0)).to_numpy() * 100.0
    cols = {}
    spec = [("load", "p_mw", inj["load_p_mw"]), ("load", "q_mvar", inj["load_q_mvar"]),
            ("sgen", "p_mw", inj["sgen_p_mw"]), ("sgen", "q_mvar", inj["sgen_q_mvar"]),
            ("motor", "loading_percent", motor_loading)]
    for tbl, var, a in spec:
        for j, idx in enumerate(net[tbl].index):
            cols[f"{tbl}/{var}/{idx}"] = a[:n, j]
    return pd.DataFrame(cols), spec


def pandapower_timeseries(net, inj, n, *, log_variables, runpp_options, default_writer=False):
    """Run pandapower's time series on ``n`` steps; returns (seconds, OutputWriter)."""
    net = copy.deepcopy(net)
    for tbl in ("load", "sgen", "motor"):
        net[tbl]["scaling"] = 1.0
    df, spec = _profiles(net, inj, n)
    data = DFData(df)
    for tbl, var, _ in spec:
        idx = net[tbl].index
        if len(idx):
            ConstControl(net, element=tbl, variable=var, element_index=idx, data_source=data,
                         profile_name=[f"{tbl}/{var}/{i}" for i in idx])
    steps = range(n)
    if default_writer:
        ow = OutputWriter(net, steps, output_path=None)
        for table, column in log_variables:
            ow.log_variable(table, column)
    else:
        ow = OutputWriter(net, steps, output_path=None, log_variables=list(log_variables))
    t = time.perf_counter()
    run_timeseries(net, time_steps=steps, verbose=False, **runpp_options)
    return time.perf_counter() - t, ow


def motors_as_loads(net, inj):
    """The net with each motor replaced by a constant-power load at its bus (the same load flow), and the inputs.

    pandapower's ConstControl cannot recycle the admittance matrix when it drives a motor, which switches off the
    fast time-series path for every controller; as loads, the motors keep it on.
    """
    net = copy.deepcopy(net)
    rows = []
    for _, m in net.motor.iterrows():
        rows.append(pp.create_load(net, m.bus, p_mw=0.0, q_mvar=0.0, name=m["name"], in_service=m.in_service))
    net.motor.drop(net.motor.index, inplace=True)
    inj = dict(inj)
    for x in ("p_mw", "q_mvar"):
        inj[f"load_{x}"] = np.hstack([inj[f"load_{x}"], inj[f"motor_{x}"]])
        inj[f"motor_{x}"] = inj[f"motor_{x}"][:, :0]
    return net, inj


def islands(net):
    """The net split into its energised islands, each with its own external grid (pandapower.select_subnet)."""
    g = top.create_nxgraph(net, respect_switches=True)
    out = []
    for buses in top.connected_components(g):
        sub = select_subnet(net, buses, include_results=False)
        if len(sub.ext_grid):
            out.append(sub)
    return out


def _vm_error(ow, ds, net, bus_index, n) -> float:
    """Largest |vm_pu| difference to the batch solver; ``bus_index``: the buses of the net the writer logged."""
    vm = ow.output["res_bus.vm_pu"].to_numpy()
    if vm.shape[1] != len(bus_index):
        raise RuntimeError("pandapower logged an unexpected number of buses")
    # the fast output path labels columns by position, the ordinary one by bus index: both follow net.bus order
    cols = net.bus.index.get_indexer(bus_index)
    return float(np.nanmax(np.abs(vm - ds.vm_pu.values[:n, cols])))


def pandapower_fastest(net, inj, n, ds):
    """pandapower's fastest time series on ``n`` steps: OutputWriter (table, column) tuples with lightsim2grid per
    island (summed), and with pandapower's own Newton-Raphson on the whole net (warm start), each after a 5-step
    warm-up. Returns ``(t_islands_s, max_dvm_islands, t_whole_s, max_dvm_whole)``, voltages against the batch
    result ``ds``."""
    fast_opts = dict(TWIN_OPTIONS, init="results", lightsim2grid=True)
    net_l, inj_l = motors_as_loads(net, inj)
    t_isl, err_isl = 0.0, 0.0
    for sub in islands(net_l):
        sub_inj = dict(inj)
        for tbl in ("load", "motor", "sgen"):
            rows = net_l[tbl].index.get_indexer(sub[tbl].index)
            sub_inj[f"{tbl}_p_mw"] = inj_l[f"{tbl}_p_mw"][:, rows]
            sub_inj[f"{tbl}_q_mvar"] = inj_l[f"{tbl}_q_mvar"][:, rows]
        pandapower_timeseries(sub, sub_inj, 5, log_variables=FAST_LOGGED, runpp_options=fast_opts)  # warm-up
        dt, ow = pandapower_timeseries(sub, sub_inj, n, log_variables=FAST_LOGGED, runpp_options=fast_opts)
        t_isl += dt
        err_isl = max(err_isl, _vm_error(ow, ds, net, sub.bus.index, n))
    whole_opts = dict(TWIN_OPTIONS, init="results")
    pandapower_timeseries(net_l, inj_l, 5, log_variables=FAST_LOGGED, runpp_options=whole_opts)  # warm-up
    t_whole, ow = pandapower_timeseries(net_l, inj_l, n, log_variables=FAST_LOGGED, runpp_options=whole_opts)
    return t_isl, err_isl, t_whole, _vm_error(ow, ds, net, net_l.bus.index, n)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=10_000, help="steps of the batch solver")
    ap.add_argument("--sample", type=int, default=200, help="steps of each pandapower time series")
    args = ap.parse_args()

    case = load_case()
    net = apply_operating_point(build_net(case), case, case.spec.operating_points[0])
    inj = random_injections(net, np.random.default_rng(case.spec.case.seed), args.steps)
    print(f"CPU: {cpu_model()} ({platform.machine()}), python {platform.python_version()}")
    print(f"net: {case.name}, {len(net.bus)} buses, {len(net.line)} lines, {len(net.trafo)} transformers, "
          f"{len(net.load)} loads, {len(net.motor)} motors, {len(net.sgen)} sgens, {len(net.ext_grid)} ext grids")

    t = time.perf_counter()
    model = BatchModel(net)
    t_build = time.perf_counter() - t
    model.run(**inj)  # warm-up (first touch of the output memory)
    print(f"batch (power-grid-model): model built once in {t_build * 1e3:.1f} ms; {args.steps} steps per call "
          "(times include input checks and the xarray Dataset; median of 5 calls):")
    step_us = {}
    for method in ("iterative_current", "newton_raphson"):
        for threads, label in ((-1, "sequential"), (0, "all threads")):
            runs = []
            for _ in range(5):
                t = time.perf_counter()
                res = model.run(**inj, method=method, threading=threads)
                runs.append(time.perf_counter() - t)
                assert bool(res.converged.all())
            step_us[method, threads] = float(np.median(runs)) / args.steps * 1e6
            print(f"  {method:18s} {label:12s} {step_us[method, threads]:8.1f} us/step")
            if method == "iterative_current" and threads == -1:
                ds = res
    headline = step_us["iterative_current", -1]  # the default method, one thread (pandapower runs on one)

    n = args.sample
    tut_opts = dict(TWIN_OPTIONS, init="dc")
    t_isl, err_isl, t_whole, err_whole = pandapower_fastest(net, inj, n, ds)
    t_tut, ow = pandapower_timeseries(net, inj, n, log_variables=LOGGED, runpp_options=tut_opts, default_writer=True)
    err_tut = _vm_error(ow, ds, net, net.bus.index, n)

    ms = {"lightsim2grid per island": t_isl / n * 1e3, "pandapower NR, whole net": t_whole / n * 1e3,
          "tutorial": t_tut / n * 1e3}
    print(f"pandapower run_timeseries on {n} steps (max |vm - batch| in pu):")
    print(f"  fastest, tuples + lightsim2grid, per island summed: {ms['lightsim2grid per island']:.3f} ms/step "
          f"({err_isl:.1e})")
    print(f"  tuples, pandapower NR (numba), whole net:           {ms['pandapower NR, whole net']:.3f} ms/step "
          f"({err_whole:.1e})")
    print(f"  tutorial (DFData + ConstControl + default writer):  {ms['tutorial']:.3f} ms/step ({err_tut:.1e})")
    fastest = min(ms["lightsim2grid per island"], ms["pandapower NR, whole net"])
    out = {
        "network_step_us": round(headline, 2),
        "pandapower_fastest_step_ms": round(fastest, 4),
        "pandapower_tutorial_step_ms": round(ms["tutorial"], 4),
        "network_speedup_vs_pandapower_fastest": round(fastest * 1e3 / headline, 1),
        "network_speedup_vs_pandapower_tutorial": round(ms["tutorial"] * 1e3 / headline, 1),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
