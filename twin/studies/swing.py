"""AI-training power swings at the point of connection, with and without battery smoothing.

Synchronous data-parallel training alternates every iteration between a compute phase (GPUs at full power) and a
communication phase (GPUs at ``gpu_comm_fraction`` of it, :mod:`twin.gpu`), so a large job swings the campus load
with the iteration period (0.5-10 s in the seed scenario: 0.1-2 Hz). Jobs also start and stop (a step of the whole
job's power with the servers' rise time) and stall for checkpoints. This study builds those load profiles from the
case's server model and load scenario and evaluates at each point of connection:

- active power in time and frequency (its amplitude spectrum up to 5 Hz), its ramp rate (largest change between consecutive ``ramp_window_s`` means, MW/s) and its oscillation (the largest spectral
  amplitude between 0.05 and 5 Hz, MW);
- the voltage: the utility as its Thevenin source (minimum short-circuit power, the weakest grid, from the case),
  the incomer's share of the campus import (from the operating point's load flow) drawn through it, solved exactly
  per sample; the voltage fluctuation and flicker severity Pst from the IEC 61000-4-15 flickermeter
  (:mod:`twin.flicker`) on the RMS envelope; Plt of a stationary swing equals its Pst (12 equal 10-minute values);
- the same with a battery smoothing controller (:func:`smooth`): the import follows the load's low-pass
  (``smoothing_filter_s``) at no more than 80 % of the ramp limit, the PCS delivering the difference through its
  power loop (first order, ``pcs_response_ms``), within the headroom the EMS
  leaves it (``smoothing_headroom_mw``, at most the PCS rating) and the PCS's ramp limit; the battery energy it
  throughputs per hour.

Quasi-static network (algebraic): valid for modulation up to a few hertz (the RMS simulator's range); the campus's
internal voltage drops do not change the point of connection's voltage, which depends only on the import.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from .. import flicker
from ..case import Case, CaseError
from ..gpu import load_scenario, server_power_from_fraction
from ..limits import Checker, counts
from ..network import apply_operating_point, build_net, run_loadflow
from . import StudyResult
from ._common import finalize

NAME = "swing"


def check(case: Case) -> None:
    o = case.spec.swing
    names = [op.name for op in case.spec.operating_points]
    if o.operating_point not in names:
        raise CaseError(f"{case.path}: [swing] operating_point: no operating point '{o.operating_point}' (have "
                        f"{names})")
    if any(p * o.fs_hz < 8 for p in o.periods_s):
        raise CaseError(f"{case.path}: [swing] periods_s: a period must span at least 8 samples at fs_hz "
                        f"{o.fs_hz} (shortest {8.0 / o.fs_hz:g} s), found {o.periods_s}")
    load_scenario(case)


# ----------------------------------------------------------------------------------------------------------------
# load profiles (MW of IT power over time, from the server model and the load scenario)


def swing_amplitude_mw(case: Case) -> tuple[float, float]:
    """(high, low) IT power of the largest synchronous training job's share of the campus: compute and
    communication phases (MW). The job is the scenario's largest slot, over every hall."""
    scen = load_scenario(case)
    frac = max([*scen.training.slots, *scen.training.window_slots])
    hi = lo = 0.0
    for h in case.spec.halls:
        srv = case.model("it", h.server)
        n = h.gpu_count / srv.gpus_per_server * frac
        hi += n * float(server_power_from_fraction(srv, 1.0)) / 1000.0
        lo += n * float(server_power_from_fraction(srv, srv.gpu_comm_fraction)) / 1000.0
    return hi, lo


def profiles(case: Case, t: np.ndarray) -> dict[str, np.ndarray]:
    """Deviation of the campus IT power from its operating point (MW) for each swing case, on times ``t`` (s).

    Cases: ``oscillation_<period>s`` (the job's compute/communication square wave at that iteration period, duty the
    scenario's mean compute share, edges of 10 ms), ``job_start_stop`` (the job starting at 1/4 and stopping at 3/4
    of the window with the servers' rise time) and ``checkpoint`` (one checkpoint stall of the scenario's length at
    the window's middle).
    """
    o = case.spec.swing
    scen = load_scenario(case).training
    hi, lo = swing_amplitude_mw(case)
    duty = float(np.mean(scen.compute_duty))
    out = {}
    edge = 0.01  # s: GPU phase transitions within an iteration are fast (L)
    for per in o.periods_s:
        ph = np.mod(t, per) / per
        up = np.clip(ph / (edge / per), 0, 1)
        down = np.clip((ph - duty) / (edge / per), 0, 1)
        level = np.where(ph < duty, up, 1.0 - down)  # 1 in compute, 0 in communication
        out[f"oscillation_{per:g}s"] = (lo - hi) * (1.0 - level)
    rise = max(case.model("it", case.spec.halls[0].server).rise_time_s, edge)
    t0, t1 = t[0] + 0.25 * (t[-1] - t[0]), t[0] + 0.75 * (t[-1] - t[0])
    ramp_up = np.clip((t - t0) / rise, 0, 1) - np.clip((t - t1) / rise, 0, 1)
    out["job_start_stop"] = (ramp_up - 1.0) * hi  # off, on between t0 and t1 (relative to the job running)
    tc = 0.5 * (t[0] + t[-1])
    stall = (t >= tc) & (t < tc + scen.checkpoint_s)
    out["checkpoint"] = np.where(stall, lo - hi, 0.0)
    return out


# ----------------------------------------------------------------------------------------------------------------
# smoothing controller and the point of connection


def smooth(p_load_mw: np.ndarray, dt_s: float, *, filter_s: float, ramp_target_mw_per_s: float,
           pcs_response_s: float, p_max_mw: float, ramp_max_mw_per_s: float = np.inf) -> np.ndarray:
    """Battery power (MW, + discharge) that smooths a load's import.

    The import target follows the load's first-order low-pass (time constant ``filter_s``) at most at
    ``ramp_target_mw_per_s``; the battery is commanded the load minus the target, within ``+-p_max_mw``, through the
    PCS's first-order power loop (``pcs_response_s``) and its ramp limit ``ramp_max_mw_per_s``. The target always
    returns to the load, so the battery's energy does not drift. Exact exponential updates (any step).
    """
    if filter_s <= 0 or pcs_response_s < 0 or p_max_mw < 0 or ramp_target_mw_per_s <= 0:
        raise ValueError(f"smooth: need filter_s > 0, ramp_target_mw_per_s > 0, pcs_response_s >= 0, p_max_mw >= 0; "
                         f"got {filter_s}, {ramp_target_mw_per_s}, {pcs_response_s}, {p_max_mw}")
    a_f = np.exp(-dt_s / filter_s)
    a_p = np.exp(-dt_s / pcs_response_s) if pcs_response_s > 0 else 0.0
    # start as if the load had been running: the low-pass and target at the load's mean over one filter time
    lp = target = float(np.mean(p_load_mw[:max(1, int(round(filter_s / dt_s)))]))
    pb = 0.0
    out = np.empty(len(p_load_mw))
    step_t, step_b = ramp_target_mw_per_s * dt_s, ramp_max_mw_per_s * dt_s
    for k, p in enumerate(p_load_mw):
        lp = p + (lp - p) * a_f
        target = min(max(lp, target - step_t), target + step_t)
        cmd = min(max(p - target, -p_max_mw), p_max_mw)
        new = cmd + (pb - cmd) * a_p
        pb = min(max(new, pb - step_b), pb + step_b)
        out[k] = pb
    return out


def poc_voltage(e_pu: complex, z_pu: complex, s_pu: np.ndarray, v0: complex) -> np.ndarray:
    """Voltage magnitude (pu) at a point of connection fed by a Thevenin source ``e_pu`` behind ``z_pu`` when the
    campus draws ``s_pu`` (complex, per unit on 1 MVA): ``V = E - Z conj(S / V)``, solved by fixed point."""
    v = np.full(s_pu.shape, v0, dtype=complex)
    for _ in range(50):
        vn = e_pu - z_pu * np.conj(s_pu / v)
        if np.max(np.abs(vn - v)) < 1e-12:
            v = vn
            break
        v = vn
    return np.abs(v)


def ramp_max(p_mw: np.ndarray, dt_s: float, window_s: float) -> float:
    """Largest change between consecutive ``window_s`` means of the power, per second (MW/s): the ramp a meter
    averaging over the window sees (faster swings are the oscillation measure's)."""
    n = max(int(round(window_s / dt_s)), 1)
    c = np.concatenate([[0.0], np.cumsum(p_mw)])
    mean = (c[n:] - c[:-n]) / n  # mean over [k, k + n)
    return float(np.max(np.abs(mean[n:] - mean[:-n]))) / (n * dt_s)


def spectrum(p_mw: np.ndarray, dt_s: float) -> tuple[np.ndarray, np.ndarray]:
    """(frequency in Hz, amplitude in MW peak) of ``p_mw`` about its mean, Hann window, amplitude-corrected."""
    x = p_mw - p_mw.mean()
    n = len(x)
    w = np.hanning(n)
    return np.fft.rfftfreq(n, dt_s), np.abs(np.fft.rfft(x * w)) * 2.0 / w.sum()


def oscillation_max(p_mw: np.ndarray, dt_s: float, f_lo: float = 0.05, f_hi: float = 5.0) -> tuple[float, float]:
    """Largest spectral amplitude (MW, peak) of ``p_mw`` between ``f_lo`` and ``f_hi`` Hz and its frequency."""
    f, amp = spectrum(p_mw, dt_s)
    band = (f >= f_lo) & (f <= f_hi)
    if not band.any():
        return 0.0, float("nan")
    k = np.argmax(np.where(band, amp, -1.0))
    return float(amp[k]), float(f[k])


def _thevenin(net) -> list[dict]:
    """Each in-service incomer: its Thevenin source at minimum short-circuit power (the weakest grid: the largest
    voltage fluctuation), its share of the import and its point-of-connection voltage, from the load flow."""
    out = []
    eg = net.ext_grid[net.ext_grid.in_service]
    p_tot = float(net.res_ext_grid.p_mw[eg.index].sum())
    for i, row in eg.iterrows():
        rx = float(row.rx_min)
        z = net.sn_mva / float(row.s_sc_min_mva) * (rx + 1j) / np.sqrt(1 + rx * rx)
        vb = net.res_bus.vm_pu[row.bus] * np.exp(1j * np.radians(net.res_bus.va_degree[row.bus]))
        s = complex(net.res_ext_grid.p_mw[i], net.res_ext_grid.q_mvar[i]) / net.sn_mva
        out.append({"name": str(row["name"]), "z": z, "e": vb + z * np.conj(s / vb), "s": s, "v0": vb,
                    "share": float(net.res_ext_grid.p_mw[i]) / p_tot if p_tot else 1.0 / len(eg)})
    return out


def run(case: Case, net=None, *, progress: bool = True) -> StudyResult:
    """Run the power-swing study (module notes)."""
    check(case)
    o = case.spec.swing
    net = net if net is not None else build_net(case)
    n = apply_operating_point(net, case, o.operating_point)
    run_loadflow(n)
    srcs = _thevenin(n)
    dt = 1.0 / o.fs_hz
    t = np.arange(int(round((flicker.SETTLING_S + flicker.PST_WINDOW_S) * o.fs_hz)) + 1) * dt
    prof = profiles(case, t)
    srv = case.model("it", case.spec.halls[0].server)
    tan = float(np.tan(np.arccos(srv.power_factor)))
    pcs = case.model("pcs", case.spec.battery.pcs) if case.spec.battery is not None else None
    p_rated = pcs.p_rated_mw * len(case.spec.battery.containers) if pcs is not None else 0.0
    # the EMS keeps this much of the PCS free for smoothing (its dispatch is that much lower: the base import, not
    # the fluctuation, changes)
    headroom = max(0.0, min(o.smoothing_headroom_mw, p_rated))
    ramp_pcs = pcs.ramp_mw_per_s * len(case.spec.battery.containers) if pcs is not None and pcs.ramp_mw_per_s \
        else np.inf
    chk = Checker(NAME, case.criteria.warn_margin_fraction)
    plt_limit = float(flicker.gb12326_plt_limit(case.spec.supply.vn_kv))
    rows, series = [], {}
    for name, dp in prof.items():
        pb = smooth(dp, dt, filter_s=o.smoothing_filter_s, ramp_target_mw_per_s=0.8 * o.ramp_limit_mw_per_s,
                    pcs_response_s=o.pcs_response_ms / 1000.0, p_max_mw=headroom,
                    ramp_max_mw_per_s=ramp_pcs) if headroom > 0 else np.zeros_like(dp)
        res = {}
        for label, p_batt in (("without", np.zeros_like(dp)), ("with", pb)):
            d_imp = dp - p_batt  # change of the campus import, MW (the battery discharging lowers it)
            p_poc = float(n.res_ext_grid.p_mw.sum()) + d_imp
            m = t >= flicker.SETTLING_S  # every measure over the flickermeter's window (after its settling time)
            pst_max = 0.0
            v_all = []
            for s in srcs:
                ds_pu = s["share"] * (d_imp + 1j * tan * dp) / n.sn_mva
                v = poc_voltage(s["e"], s["z"], s["s"] + ds_pu, s["v0"])
                v_all.append(v)
                pst_max = max(pst_max, float(flicker.pst_from_rms(v, o.fs_hz).max()))
            osc, f_osc = oscillation_max(p_poc[m], dt)
            res[label] = {"pst": pst_max, "plt": pst_max, "ramp_mw_per_s": ramp_max(p_poc[m], dt, o.ramp_window_s),
                          "oscillation_mw": osc, "oscillation_hz": f_osc,
                          "dv_percent": 100.0 * float(max(v[m].max() - v[m].min() for v in v_all)),
                          "battery_throughput_mwh_per_h": float(np.abs(p_batt[m]).mean()),  # MWh per hour
                          "battery_p_max_mw": float(np.abs(p_batt).max())}
            series[(name, label)] = (p_poc, np.mean(v_all, axis=0), p_batt, spectrum(p_poc[m], dt))
        rows.append({"case": name, **{f"{k}_{lab}": v for lab in res for k, v in res[lab].items()}})
        for lab, scen in (("without", name), ("with", f"{name}, battery smoothing")):
            r = res[lab]
            chk.upper(scen, "point of connection", "Plt", r["plt"], plt_limit, "1",
                      "GB/T 12326-2008 planning limit (REFERENCE.md, M); a stationary swing: Plt = Pst")
            chk.upper(scen, "point of connection", "ramp rate", r["ramp_mw_per_s"], o.ramp_limit_mw_per_s, "MW/s",
                      f"[swing] ramp_limit_mw_per_s over {o.ramp_window_s:g} s (utility requirement, L)")
            chk.upper(scen, "point of connection", "oscillation amplitude 0.05-5 Hz", r["oscillation_mw"],
                      o.oscillation_limit_mw, "MW", "[swing] oscillation_limit_mw (utility requirement, L)")
        chk.upper(f"{name}, battery smoothing", "PCS", "smoothing power", res["with"]["battery_p_max_mw"],
                  headroom if headroom > 0 else 0.0, "MW", "PCS headroom the EMS leaves for smoothing")
    table = pd.DataFrame(rows).set_index("case")
    caseidx = list(prof)
    ds = xr.Dataset(
        {f"{k}": ("swing_case", table[k].to_numpy(float), {"units": _UNITS[k.rsplit("_", 1)[0]],
                                                           "long_name": k.replace("_", " ")})
         for k in table.columns},
        coords={"swing_case": caseidx})
    keep = np.arange(0, len(t), max(1, int(round(o.fs_hz / 20))))  # 20 Hz in the file
    for lab in ("without", "with"):
        ds[f"p_poc_mw_{lab}"] = (("swing_case", "time"), np.stack([series[(c, lab)][0][keep] for c in caseidx]),
                                 {"units": "MW", "long_name": f"import at the point of connection, {lab} smoothing"})
        ds[f"v_poc_pu_{lab}"] = (("swing_case", "time"), np.stack([series[(c, lab)][1][keep] for c in caseidx]),
                                 {"units": "pu", "long_name": f"point-of-connection voltage, {lab} smoothing"})
    f_sp = series[(caseidx[0], "without")][3][0]
    in_band = f_sp <= 5.0
    for lab in ("without", "with"):
        ds[f"p_poc_spectrum_mw_{lab}"] = (("swing_case", "frequency"),
                                          np.stack([series[(c, lab)][3][1][in_band] for c in caseidx]),
                                          {"units": "MW", "long_name": f"amplitude spectrum of the import (peak, Hann "
                                                                      f"window), {lab} smoothing"})
    ds = ds.assign_coords(frequency=("frequency", f_sp[in_band], {"units": "Hz", "long_name": "frequency"}))
    ds["battery_p_mw"] = (("swing_case", "time"), np.stack([series[(c, "with")][2][keep] for c in caseidx]),
                          {"units": "MW", "long_name": "smoothing power of the battery (+ discharge)"})
    ds = ds.assign_coords(time=("time", t[keep], {"units": "s", "long_name": "time from the start"}))
    hi, lo = swing_amplitude_mw(case)
    ds.attrs.update(operating_point=o.operating_point, swing_high_mw=hi, swing_low_mw=lo, fs_hz=o.fs_hz,
                    smoothing_headroom_mw=headroom, plt_limit=plt_limit,
                    method="quasi-static; Thevenin utility at minimum short-circuit power; IEC 61000-4-15 on the "
                           "RMS envelope")
    checks = chk.frame()
    w, s_ = table.filter(like="_without"), table.filter(like="_with").drop(columns=table.filter(like="_without")
                                                                          .columns)
    summary = {
        **counts(checks),
        "operating_point": o.operating_point,
        "swing_mw": hi - lo,
        "pst_max": float(w["pst_without"].max()),
        "plt_max": float(w["plt_without"].max()),
        "ramp_max_mw_per_s": float(w["ramp_mw_per_s_without"].max()),
        "oscillation_max_mw": float(w["oscillation_mw_without"].max()),
        "dv_max_percent": float(w["dv_percent_without"].max()),
        "pst_max_with_smoothing": float(s_["pst_with"].max()),
        "plt_max_with_smoothing": float(s_["plt_with"].max()),
        "ramp_max_mw_per_s_with_smoothing": float(s_["ramp_mw_per_s_with"].max()),
        "oscillation_max_mw_with_smoothing": float(s_["oscillation_mw_with"].max()),
        "smoothing_headroom_mw": headroom,
        "battery_throughput_mwh_per_h_max": float(s_["battery_throughput_mwh_per_h_with"].max()),
        "plt_limit": plt_limit,
        "ramp_limit_mw_per_s": o.ramp_limit_mw_per_s,
        "oscillation_limit_mw": o.oscillation_limit_mw,
    }
    return StudyResult(NAME, finalize(ds, NAME, case), checks, summary)


_UNITS = {"pst": "1", "plt": "1", "ramp_mw_per_s": "MW/s", "oscillation_mw": "MW", "oscillation_hz": "Hz",
          "dv_percent": "%", "battery_throughput_mwh_per_h": "MWh/h", "battery_p_max_mw": "MW"}
