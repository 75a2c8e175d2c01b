"""GPU-hall IT load over time: servers, GPU phases, job mix, power smoothing (the drivers' dynamic hall model).

The model has three layers, each usable on its own:

1. **Server power** from GPU phase fractions (array functions, reused by the dynamic studies). A GPU draws a fraction
   ``f`` of its full training power ``gpu_kw``: 1 in a compute-bound phase, ``gpu_memory_bound_fraction`` in a
   memory-bound phase (inference), ``gpu_comm_fraction`` while a synchronous training job communicates
   (all-reduce), ``gpu_idle_fraction`` at idle. The rest of the server (CPUs, memory, NICs, fans) follows the GPU
   activity ``a = (f - f_idle) / (1 - f_idle)`` linearly between ``server_overhead_idle_kw`` and
   ``server_overhead_kw``; the power supplies' efficiency is linear in the DC load between ``psu_efficiency_idle``
   (at the idle load) and ``psu_efficiency`` (at full load), a simplification of the 80 PLUS curves (Titanium,
   230 V internal redundant: 90/94/96/91 % at 10/20/50/100 % of the PSU rating; redundant server PSUs run at
   20-50 % of their rating). With ``psu_efficiency = 1``
   (default) the overhead includes the PSU loss and :func:`server_power_kw` equals the simple snapshot model.
   Reactive power is affine in active power per server, fitted through the idle and full-load power factors, so the
   power factor falls at light load (measured DGX A100: 0.96-0.97 idle, 0.99 loaded) and interval means of Q are
   consistent with those of P.
2. **Job schedule**: an event list per calendar year (independent of the time step), drawn from a seeded numpy
   Generator. Training capacity is a set of *slots* (each a fraction of every hall's GPUs: a campus-wide job spread
   evenly over the halls, so job starts, ends and failures step the campus by MW); optional *window slots* run only
   in a daily training window. Jobs have exponential durations and gaps, Poisson failures with a restart delay,
   periodic synchronous checkpoints (the job stalls), and an iteration period (log-uniform in 0.2-20 s) over which
   the job's GPUs alternate between a compute phase (full power, duty ``d``) and a communication phase. Inference
   GPUs follow a daily cosine cycle of utilisation at the memory-bound power; GPUs in no job idle. Network and
   storage are a constant per hall (L).
3. **Interval means**: every record of the schedule is a waveform with a closed-form integral (linear ramps,
   a periodic trapezoid for the iterations, a cosine for inference), so each time step's value is the exact mean of
   the within-step waveform: a year at 1 min is cheap, a window at 1 s or 100 ms shows the swings, and the mean of
   the fine series over a coarse step equals the coarse series to rounding (energy-consistent at every resolution).

Optional **power smoothing** (scenario ``[smoothing]``), as NVIDIA's GB200/GB300 power smoothing offers it
(a power floor while a workload runs, and ramp-up/ramp-down rate limits, "Power stabilization for AI training
datacenters", arXiv:2508.14318, 2025): the communication and checkpoint phases cannot fall below the floor, job
starts and stops ramp at the set rates, and the iteration edges become ramps (trapezoid wave); when an iteration is
too short for a full ramp, the swing amplitude shrinks to what the rates allow. :func:`ramp_limit` is the same
limit as a stateful filter (numba) for the dynamic studies on their own signals.

Written here rather than taken from a library: no maintained Python package models the electrical demand of a GPU
cluster's job mix (simulators such as Alibaba/Philly trace replays give GPU counts, not power).
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
import pandas as pd
import xarray as xr
from pydantic import Field, model_validator

from .case import Case, Q, ServerModel, _Strict

__all__ = [
    "ScenarioModel", "load_scenario", "gpu_activity", "server_dc_kw", "psu_efficiency", "server_power_from_fraction",
    "server_power_from_phases", "server_power_kw", "hall_it_power_mw", "server_reactive_kvar", "trapezoid_integral",
    "job_schedule", "it_load", "ramp_limit", "server_step_kw", "plateau_levels",
    "rise_times_10_90",
]

_DAY_S = 86400.0


# --------------------------------------------------------------------------------------------------------------
# scenario parameter set (models/scenarios/<name>.toml)


_Period = Annotated[float, Field(ge=0.2, le=20, description="an iteration period in s, 0.2-20")]
_Duty = Annotated[float, Field(gt=0, lt=1, description="a compute share of the iteration, > 0 and < 1")]


class TrainingSpec(_Strict):
    slots: list[float] = Field(min_length=1, description="always-on job slots, each a fraction of every hall's "
                               "GPUs (0-1)")
    window_slots: list[float] = Field(default_factory=list, description="job slots running only in the daily "
                                      "training window, fractions of every hall's GPUs (0-1)")
    window_start_h: float = Q("start of the daily training window in local hours", ge=0, lt=24, default=0.0)
    window_h: float = Q("length of the daily training window in h", ge=0, le=24, default=0.0)
    job_duration_h: float = Q("mean duration of a job in an always-on slot in h", gt=0, le=10000)
    gap_min: float = Q("mean idle gap between a job's end and the next job's start in min", ge=0, le=10000)
    mtbf_h: float = Q("mean time between failures of one job in h", gt=0, le=1e6)
    restart_min: float = Q("mean down time after a failure before the job resumes in min", ge=0, le=1440)
    checkpoint_interval_min: float = Q("time between synchronous checkpoints in min", gt=0, le=1440)
    checkpoint_s: float = Q("duration of the checkpoint stall in s", ge=0, le=3600)
    iteration_s: tuple[_Period, _Period] = Field(description="range [min, max] of the iteration period in s, "
                                             "drawn log-uniformly per job, within 0.2-20")
    compute_duty: tuple[_Duty, _Duty] = Field(description="range [min, max] of the compute share of an "
                                              "iteration, drawn uniformly per job, within 0-1")
    start_jitter_min: float = Q("mean delay of a window job after the window opens in min", ge=0, le=600,
                                default=2.0)

    @model_validator(mode="after")
    def _check(self):
        for name in ("slots", "window_slots"):
            for v in getattr(self, name):
                if not 0 < v <= 1:
                    raise ValueError(f"{name}: each slot must be a fraction in (0, 1], found {v}")
        if sum(self.slots) + sum(self.window_slots) > 1 + 1e-9:
            raise ValueError(f"slots + window_slots add up to {sum(self.slots) + sum(self.window_slots):g} > 1")
        lo, hi = self.iteration_s
        if not 0.2 <= lo <= hi <= 20:
            raise ValueError(f"iteration_s must satisfy 0.2 <= min <= max <= 20, found {list(self.iteration_s)}")
        lo, hi = self.compute_duty
        if not 0 < lo <= hi < 1:
            raise ValueError(f"compute_duty must satisfy 0 < min <= max < 1, found {list(self.compute_duty)}")
        if self.window_slots and self.window_h <= 0:
            raise ValueError("window_slots need window_h > 0")
        return self


class InferenceSpec(_Strict):
    share: float = Q("fraction of every hall's GPUs serving inference when training leaves them free", ge=0, le=1)
    utilisation_mean: float = Q("daily mean utilisation of the inference GPUs", ge=0, le=1)
    utilisation_amplitude: float = Q("amplitude of the daily cosine of inference utilisation", ge=0, le=1)
    peak_hour: float = Q("local hour of the inference peak", ge=0, lt=24)

    @model_validator(mode="after")
    def _check(self):
        if not 0 <= self.utilisation_mean - self.utilisation_amplitude <= self.utilisation_mean + \
                self.utilisation_amplitude <= 1:
            raise ValueError("utilisation_mean +- utilisation_amplitude must stay within 0-1")
        return self


class SmoothingSpec(_Strict):
    enabled: bool = False
    floor_fraction: float = Q("GPU power floor while a job runs, as a fraction of full power", ge=0, le=1,
                              default=0.0)
    ramp_up_per_s: float = Q("GPU ramp-up rate limit in fractions of full power per s", gt=0, le=1000,
                             default=1000.0)
    ramp_down_per_s: float = Q("GPU ramp-down rate limit in fractions of full power per s", gt=0, le=1000,
                               default=1000.0)


class ScenarioModel(_Strict):
    """A load scenario (``models/scenarios/<name>.toml``): training slots, inference, smoothing."""

    description: str = ""
    training: TrainingSpec
    inference: InferenceSpec
    smoothing: SmoothingSpec = SmoothingSpec()


def load_scenario(case: Case, name: str | None = None) -> ScenarioModel:
    """The scenario ``name`` (default: the case's ``drivers.scenario``), checked; errors name file and key."""
    return case.parameter_set("scenarios", name or case.spec.drivers.scenario, ScenarioModel)


# --------------------------------------------------------------------------------------------------------------
# server power (array functions)


def gpu_activity(server: ServerModel, gpu_fraction):
    """GPU activity ``a = (f - f_idle) / (1 - f_idle)`` (0 idle, 1 full power) from the GPU power fraction ``f``."""
    f = np.asarray(gpu_fraction, dtype=float)
    span = 1.0 - server.gpu_idle_fraction
    return (f - server.gpu_idle_fraction) / span if span > 0 else np.ones_like(f)


def server_dc_kw(server: ServerModel, gpu_fraction):
    """DC power of one server in kW (GPUs plus overhead) at a GPU power fraction ``f`` of ``gpu_kw`` (0-1)."""
    f = np.asarray(gpu_fraction, dtype=float)
    a = gpu_activity(server, f)
    gpus = server.gpus_per_server * server.gpu_kw * f
    overhead = server.server_overhead_idle_kw + (server.server_overhead_kw - server.server_overhead_idle_kw) * a
    return gpus + overhead


def psu_efficiency(server: ServerModel, dc_kw):
    """Power-supply efficiency (0-1) at a server DC load in kW, linear between the idle and full-load points.

    The two points are the parameter set's ``psu_efficiency_idle`` at the idle DC load and ``psu_efficiency`` at the
    full DC load (80 PLUS test points, L); clipped to the range of the two.
    """
    dc = np.asarray(dc_kw, dtype=float)
    e1 = server.psu_efficiency
    e0 = server.psu_efficiency_idle if server.psu_efficiency_idle is not None else e1
    x0 = float(server_dc_kw(server, server.gpu_idle_fraction))
    x1 = float(server_dc_kw(server, 1.0))
    if x1 <= x0 or e0 == e1:
        return np.full_like(dc, e1)
    eta = e0 + (e1 - e0) * (dc - x0) / (x1 - x0)
    return np.clip(eta, min(e0, e1), max(e0, e1))


def server_power_from_fraction(server: ServerModel, gpu_fraction):
    """Wall (AC) power of one server in kW with all its GPUs at power fraction ``f`` (0-1) of ``gpu_kw``."""
    dc = server_dc_kw(server, gpu_fraction)
    return dc / psu_efficiency(server, dc)


def server_power_from_phases(server: ServerModel, compute, memory=0.0, comm=0.0):
    """Mean wall power of one server in kW from the time fractions of its GPU phases.

    Parameters
    ----------
    server : ServerModel
    compute, memory, comm : array_like
        Fractions of the time (0-1, summing to at most 1) in the compute-bound phase (full power), the
        memory-bound phase and the communication phase; the rest is idle.

    Returns
    -------
    ndarray
        Wall power in kW: the time-weighted mean of the phase levels (exact for an interval containing those
        fractions of each phase).
    """
    c, m, k = (np.asarray(x, dtype=float) for x in (compute, memory, comm))
    idle = 1.0 - c - m - k
    if np.any(idle < -1e-12) or np.any(np.minimum(np.minimum(c, m), k) < 0):
        raise ValueError("phase fractions must be >= 0 and add up to at most 1")
    lv = [float(server_power_from_fraction(server, f)) for f in
          (1.0, server.gpu_memory_bound_fraction, server.gpu_comm_fraction, server.gpu_idle_fraction)]
    return c * lv[0] + m * lv[1] + k * lv[2] + np.clip(idle, 0, 1) * lv[3]


def server_power_kw(server: ServerModel, utilisation):
    """Steady wall power of one server in kW at GPU utilisation ``u`` (0 idle, 1 full training power).

    The GPU power fraction is ``f_idle + (1 - f_idle) u``; with ``psu_efficiency = 1`` this is the snapshot model of
    :mod:`twin.load` (same signature).
    """
    u = np.asarray(utilisation, dtype=float)
    return server_power_from_fraction(server, server.gpu_idle_fraction + (1.0 - server.gpu_idle_fraction) * u)


def hall_it_power_mw(server: ServerModel, gpu_count: int, network_storage_kw: float, utilisation):
    """IT power of a hall in MW: servers (``gpu_count / gpus_per_server``) at utilisation ``u`` plus network/storage."""
    n_servers = gpu_count / server.gpus_per_server
    return (n_servers * server_power_kw(server, utilisation) + network_storage_kw) / 1000.0


def _q_line(server: ServerModel) -> tuple[float, float]:
    """``(alpha, beta)`` of the per-server reactive power ``q = alpha + beta p`` (kvar, kW)."""
    pf1 = server.power_factor
    pf0 = server.power_factor_idle if server.power_factor_idle is not None else pf1
    p0 = float(server_power_from_fraction(server, server.gpu_idle_fraction))
    p1 = float(server_power_from_fraction(server, 1.0))
    q0, q1 = p0 * np.tan(np.arccos(pf0)), p1 * np.tan(np.arccos(pf1))
    beta = (q1 - q0) / (p1 - p0) if p1 > p0 else q1 / p1
    return q0 - beta * p0, beta


def server_reactive_kvar(server: ServerModel, p_kw):
    """Reactive power of one server in kvar (inductive positive, L) at wall power ``p_kw``.

    Affine in ``p`` through the idle point (``power_factor_idle``) and the full-load point (``power_factor``), so
    the power factor rises with load as measured on a DGX A100 (0.96-0.97 idle, 0.99 loaded), and the mean of Q over
    an interval is Q at the mean P.
    """
    alpha, beta = _q_line(server)
    return alpha + beta * np.asarray(p_kw, dtype=float)


# --------------------------------------------------------------------------------------------------------------
# closed-form integrals of the record waveforms


def trapezoid_integral(phase_s, period_s, duty, rise_s, fall_s):
    """Integral in s (per unit amplitude) from the start of a period to ``phase_s`` of a periodic trapezoid wave.

    One period: rise 0 -> 1 over ``rise_s``, high until ``duty * period_s``, fall 1 -> 0 over ``fall_s``, low to the
    period's end. ``phase_s`` may exceed the period (whole periods are counted). Arrays broadcast.
    """
    T, d, tr, tf = (np.asarray(x, dtype=float) for x in (period_s, duty, rise_s, fall_s))
    tau = np.asarray(phase_s, dtype=float)
    n = np.floor(tau / T)
    ph = tau - n * T
    ph = np.clip(ph, 0.0, T)
    dT = d * T
    g_full = dT - tr / 2 + tf / 2
    g_rise = np.where(tr > 0, ph * ph / (2 * np.where(tr > 0, tr, 1.0)), 0.0)
    g_high = tr / 2 + (ph - tr)
    x = ph - dT
    g_fall = dT - tr / 2 + x - np.where(tf > 0, x * x / (2 * np.where(tf > 0, tf, 1.0)), 0.0)
    g = np.where(ph <= tr, g_rise, np.where(ph <= dT, g_high, np.where(ph <= dT + tf, g_fall, g_full)))
    return n * g_full + g


def _pieces(t0, t1, edges):
    """Split records ``[t0, t1)`` at the step ``edges``: ``(record, step, a, b)`` of every non-empty piece."""
    n = len(edges) - 1
    keep = (t1 > edges[0]) & (t0 < edges[-1]) & (t1 > t0)
    idx = np.flatnonzero(keep)
    k0 = np.clip(np.searchsorted(edges, t0[idx], side="right") - 1, 0, n - 1)
    k1 = np.clip(np.searchsorted(edges, t1[idx], side="left") - 1, 0, n - 1)
    cnt = k1 - k0 + 1
    rec = np.repeat(idx, cnt)
    start = np.repeat(np.cumsum(cnt) - cnt, cnt)
    step = np.repeat(k0, cnt) + (np.arange(cnt.sum()) - start)
    a = np.maximum(edges[step], t0[rec])
    b = np.minimum(edges[step + 1], t1[rec])
    ok = b > a
    return rec[ok], step[ok], a[ok], b[ok]


# --------------------------------------------------------------------------------------------------------------
# job schedule (event list per calendar year, independent of the time step)


def _local_day_starts(tz: str, year: int, origin: pd.Timestamp) -> np.ndarray:
    days = pd.date_range(pd.Timestamp(year=year, month=1, day=1, tz=tz),
                         pd.Timestamp(year=year + 1, month=1, day=1, tz=tz), freq="D", inclusive="left")
    return _seconds(days, origin)


def _seconds(stamps, origin: pd.Timestamp) -> np.ndarray:
    """Seconds from ``origin`` via whole milliseconds (so equal instants give equal floats on every grid)."""
    ns = np.asarray(pd.DatetimeIndex(stamps).tz_convert("UTC").asi8, dtype=np.int64) - origin.value
    return (ns // 1_000_000).astype(np.float64) / 1000.0


def job_schedule(scenario: ScenarioModel, year: int, tz: str, seed: int, origin: pd.Timestamp) -> dict:
    """The training and inference event list of one calendar year (local time ``tz``).

    Returns a dict of arrays: run segments ``t0, t1`` (s from ``origin``), ``share`` (fraction of every hall's GPUs),
    ``period`` (s), ``duty``, ``pre``/``post`` (1 when the segment borders a checkpoint stall, 0 a stop), ``next_t0``
    (start of the slot's next segment) and the year's bounds ``y0, y1``; inference pieces ``inf_t0, inf_t1,
    inf_share`` and the cosine's ``inf_peak`` times. Drawn from ``numpy.random.default_rng([seed, year])``.
    """
    tr = scenario.training
    rng = np.random.default_rng([seed, year])
    day0 = _local_day_starts(tz, year, origin)
    y0 = float(_seconds([pd.Timestamp(year=year, month=1, day=1, tz=tz)], origin)[0])
    y1 = float(_seconds([pd.Timestamp(year=year + 1, month=1, day=1, tz=tz)], origin)[0])
    segs: list[tuple] = []   # (t0, t1, share, period, duty, pre, post, slot)

    def draw_job():
        lo, hi = tr.iteration_s
        period = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
        return period, float(rng.uniform(*tr.compute_duty))

    def run(slot, share, s, e, period, duty):
        """One uninterrupted run [s, e) split by checkpoint stalls."""
        ci, ck = tr.checkpoint_interval_min * 60.0, tr.checkpoint_s
        k = np.arange(int(np.ceil((e - s) / (ci + ck))) + 1)
        a = s + k * (ci + ck)
        b = np.minimum(a + ci, e)
        m = b > a
        a, b = a[m], b[m]
        for i, (ai, bi) in enumerate(zip(a, b, strict=True)):
            segs.append((ai, bi, share, period, duty, int(i > 0), int(i < len(a) - 1), slot))

    def job(slot, share, s, end):
        """A job from s to end with failures and restarts; returns when it ends."""
        period, duty = draw_job()
        t = s
        while t < end:
            fail = t + rng.exponential(tr.mtbf_h * 3600.0)
            stop = min(fail, end)
            run(slot, share, t, stop, period, duty)
            if fail >= end:
                break
            t = fail + rng.exponential(tr.restart_min * 60.0) if tr.restart_min > 0 else fail
        return end

    warm = 3 * _DAY_S
    for slot, share in enumerate(tr.slots):
        t = y0 - warm - rng.uniform(0, tr.job_duration_h * 3600.0)
        while t < y1:
            end = t + rng.exponential(tr.job_duration_h * 3600.0)
            job(slot, share, t, min(end, y1))
            t = end + (rng.exponential(tr.gap_min * 60.0) if tr.gap_min > 0 else 0.0)
    n_slots = len(tr.slots)
    for j, share in enumerate(tr.window_slots):
        for d in day0:
            w0 = d + tr.window_start_h * 3600.0
            w1 = w0 + tr.window_h * 3600.0
            s = w0 + (rng.exponential(tr.start_jitter_min * 60.0) if tr.start_jitter_min > 0 else 0.0)
            if s < w1:
                job(n_slots + j, share, s, w1)

    arr = np.array(segs, dtype=float).reshape(-1, 8)
    order = np.lexsort((arr[:, 0], arr[:, 7]))
    arr = arr[order]
    same_next = np.r_[arr[1:, 7] == arr[:-1, 7], False]
    next_t0 = np.where(same_next, np.r_[arr[1:, 0], np.inf], np.inf)
    out = dict(t0=arr[:, 0], t1=arr[:, 1], share=arr[:, 2], period=arr[:, 3], duty=arr[:, 4],
               pre=arr[:, 5].astype(int), post=arr[:, 6].astype(int), next_t0=next_t0, y0=y0, y1=y1)

    # inference: share of the GPUs left free by training, cosine utilisation, split at the window's bounds
    inf = scenario.inference
    base = min(inf.share, max(0.0, 1.0 - sum(tr.slots)))
    win = min(inf.share, max(0.0, 1.0 - sum(tr.slots) - sum(tr.window_slots)))
    w0 = day0 + tr.window_start_h * 3600.0
    w1 = np.minimum(w0 + tr.window_h * 3600.0, day0 + _DAY_S)
    w1 = np.maximum(w1, w0)
    t0 = np.concatenate([day0, w0, w1])
    t1 = np.concatenate([w0, w1, np.r_[day0[1:], y1]])
    sh = np.concatenate([np.full(len(day0), base), np.full(len(day0), win), np.full(len(day0), base)])
    out.update(inf_t0=t0, inf_t1=t1, inf_share=sh, inf_peak=day0[0] + inf.peak_hour * 3600.0)
    return out


# --------------------------------------------------------------------------------------------------------------
# records of one server type and their interval integrals


def _ramp_s(df, rise_s, up, down):
    """Duration in s of a ramp by ``df`` (GPU fraction): the server's rise time or the smoothing rate limit."""
    df = np.asarray(df, dtype=float)
    rate = np.where(df >= 0, up, down)
    return np.where(df == 0, 0.0, np.maximum(rise_s, np.abs(df) / rate))


def _server_records(server: ServerModel, scen: ScenarioModel, sched: dict) -> dict:
    """Per-server waveform records (kW above the idle server, times in s) for one server type."""
    sm = scen.smoothing
    up, dn = (sm.ramp_up_per_s, sm.ramp_down_per_s) if sm.enabled else (np.inf, np.inf)
    floor = sm.floor_fraction if sm.enabled else 0.0
    f_idle = server.gpu_idle_fraction
    f_lo = max(server.gpu_comm_fraction, floor)
    f_ck = max(floor, f_idle) if sm.enabled else f_idle
    f_hi = 1.0
    P = lambda f: np.asarray(server_power_from_fraction(server, f), dtype=float)  # noqa: E731
    p_idle = float(P(f_idle))
    t0, t1, share = sched["t0"], sched["t1"], sched["share"]
    T, d = sched["period"], sched["duty"]
    f_pre = np.where(sched["pre"] == 1, f_ck, f_idle)
    f_post = np.where(sched["post"] == 1, f_ck, f_idle)
    # job-level ramps (start, stop, checkpoint) and the iteration edges (only with smoothing)
    t_up = _ramp_s(f_lo - f_pre, server.rise_time_s, up, dn)
    t_dn = _ramp_s(f_post - f_lo, server.rise_time_s, up, dn)
    df = f_hi - f_lo
    e_r = df / up if sm.enabled else 0.0
    e_f = df / dn if sm.enabled else 0.0
    scale = np.ones_like(T)
    if sm.enabled and df > 0:
        scale = np.minimum(1.0, np.minimum(d * T / e_r, (1 - d) * T / e_f))
    f_top = f_lo + df * scale
    amp = np.broadcast_to(P(f_top) - float(P(f_lo)), T.shape)
    rise, fall = e_r * scale, e_f * scale
    b0 = np.minimum(t0 + t_up, t1)          # a segment shorter than its ramp ends part-way up
    n = np.floor((t1 - b0) / T)
    b1 = np.where(n >= 1, b0 + n * T, b0)
    tail_end = np.minimum(b1 + t_dn, sched["next_t0"])
    lo_ex = np.full_like(t0, float(P(f_lo)) - p_idle)
    pre_ex, post_ex = P(f_pre) - p_idle, P(f_post) - p_idle
    slope_up = np.where(t_up > 0, (lo_ex - pre_ex) / np.where(t_up > 0, t_up, 1.0), 0.0)
    slope_dn = np.where(t_dn > 0, (post_ex - lo_ex) / np.where(t_dn > 0, t_dn, 1.0), 0.0)
    # linear records: ramp-up, tail, the checkpoint hold (smoothing: the floor), as (t0, t1, p0, slope, util)
    hold_end = np.where(sched["post"] == 1, sched["next_t0"], tail_end)
    lin = dict(
        t0=np.concatenate([t0, b1, tail_end]),
        t1=np.concatenate([b0, tail_end, hold_end]),
        p0=np.concatenate([pre_ex, lo_ex, post_ex]) * np.tile(share, 3),
        slope=np.concatenate([slope_up, slope_dn, np.zeros_like(t0)]) * np.tile(share, 3),
        util=np.concatenate([share, np.zeros_like(share), np.zeros_like(share)]),
    )
    keep = (np.abs(lin["p0"]) + np.abs(lin["slope"]) + lin["util"] > 0) & (lin["t1"] > lin["t0"])
    lin = {key: v[keep] for key, v in lin.items()}
    wave = dict(t0=b0, t1=b1, base=lo_ex * share, amp=amp * share, period=T, duty=d, rise=np.broadcast_to(
        rise, T.shape), fall=np.broadcast_to(fall, T.shape), util=share)
    p_mem = float(P(server.gpu_memory_bound_fraction))
    return dict(lin=lin, wave=wave, p_idle=p_idle, p_inf_excess=p_mem - p_idle)


def _integrate(server: ServerModel, scen: ScenarioModel, sched: dict, edges: np.ndarray):
    """Per-server mean excess power (kW) and utilisation on the steps ``edges`` from one year's schedule."""
    n = len(edges) - 1
    y0, y1 = sched["y0"], sched["y1"]
    rec = _server_records(server, scen, sched)
    e = np.clip(edges, y0, y1)     # pieces outside the schedule's year contribute nothing
    energy = np.zeros(n)
    util = np.zeros(n)
    lin = rec["lin"]
    r, k, a, b = _pieces(lin["t0"], lin["t1"], e)
    ta, tb = a - lin["t0"][r], b - lin["t0"][r]
    energy += np.bincount(k, lin["p0"][r] * (tb - ta) + 0.5 * lin["slope"][r] * (tb * tb - ta * ta), minlength=n)
    util += np.bincount(k, lin["util"][r] * (tb - ta), minlength=n)
    w = rec["wave"]
    r, k, a, b = _pieces(w["t0"], w["t1"], e)
    ta, tb = a - w["t0"][r], b - w["t0"][r]
    args = (w["period"][r], w["duty"][r], w["rise"][r], w["fall"][r])
    g = trapezoid_integral(tb, *args) - trapezoid_integral(ta, *args)
    energy += np.bincount(k, w["base"][r] * (tb - ta) + w["amp"][r] * g, minlength=n)
    util += np.bincount(k, w["util"][r] * (tb - ta), minlength=n)
    inf = scen.inference
    r, k, a, b = _pieces(sched["inf_t0"], sched["inf_t1"], e)
    om = 2 * np.pi / _DAY_S
    tp = sched["inf_peak"]
    u_int = inf.utilisation_mean * (b - a) + inf.utilisation_amplitude / om * (
        np.sin(om * (b - tp)) - np.sin(om * (a - tp)))
    u_int = sched["inf_share"][r] * u_int
    energy += rec["p_inf_excess"] * np.bincount(k, u_int, minlength=n)
    util += np.bincount(k, u_int, minlength=n)
    return energy, util, rec["p_idle"]


def it_load(case: Case, index: pd.DatetimeIndex, scenario: str | None = None, seed: int | None = None) -> xr.Dataset:
    """IT load of every GPU hall as interval means on ``index``.

    Parameters
    ----------
    case : Case
        The study case (halls, server parameter sets, site time zone, ``case.seed``).
    index : pandas.DatetimeIndex
        Tz-aware interval starts with a fixed ``freq`` between 100 ms and 1 h; each value is the exact mean over
        ``[t, t + freq)``.
    scenario : str, optional
        Name of ``models/scenarios/<name>.toml`` (default: the case's ``drivers.scenario``).
    seed : int, optional
        Seed of the job schedule (default: ``case.spec.case.seed``); with the same seed and scenario every index
        sees the same events.

    Returns
    -------
    xarray.Dataset
        Dims ``(time, hall)``, ``time`` the interval starts in UTC (naive, as stored): ``p_mw`` (MW), ``q_mvar``
        (Mvar, inductive positive) and ``utilisation`` (busy GPU fraction, 0-1).
    """
    if not isinstance(index, pd.DatetimeIndex) or index.tz is None:
        raise ValueError("it_load: index must be a tz-aware pandas.DatetimeIndex of interval starts")
    if index.freq is None or len(index) == 0:
        raise ValueError("it_load: index must be non-empty with a fixed freq (e.g. pd.date_range(..., freq='1min'))")
    step_s = pd.Timedelta(index.freq).total_seconds()
    if not 0.1 - 1e-9 <= step_s <= 3600 + 1e-9:
        raise ValueError(f"it_load: time step must be between 0.1 s and 3600 s, found {step_s} s")
    scen = load_scenario(case, scenario)
    seed = case.spec.case.seed if seed is None else int(seed)
    tz = case.spec.site.timezone
    idx_local = index.tz_convert(tz)
    first = idx_local[0].year
    origin = pd.Timestamp(year=first, month=1, day=1, tz=tz).tz_convert("UTC")
    edges_ts = index.append(pd.DatetimeIndex([index[-1] + index.freq]))
    edges = _seconds(edges_ts, origin)
    last = (edges_ts[-1] - pd.Timedelta(1, "ns")).tz_convert(tz).year
    halls = case.spec.halls
    n = len(index)
    p = np.zeros((n, len(halls)))
    q = np.zeros((n, len(halls)))
    u = np.zeros((n, len(halls)))
    dt = np.diff(edges)
    cache: dict[str, tuple] = {}
    for name in dict.fromkeys(h.server for h in halls):
        server = case.model("it", name)
        energy = np.zeros(n)
        util = np.zeros(n)
        p_idle = 0.0
        for year in range(first, last + 1):
            sched = job_schedule(scen, year, tz, seed, origin)
            e_, u_, p_idle = _integrate(server, scen, sched, edges)
            energy += e_
            util += u_
        cache[name] = (server, energy / dt + p_idle, util / dt)
    for j, h in enumerate(halls):
        server, p_srv, u_srv = cache[h.server]
        n_srv = h.gpu_count / server.gpus_per_server
        alpha, beta = _q_line(server)
        q_net = h.network_storage_kw * np.tan(np.arccos(server.power_factor))
        p[:, j] = (n_srv * p_srv + h.network_storage_kw) / 1000.0
        q[:, j] = (n_srv * (alpha + beta * p_srv) + q_net) / 1000.0
        u[:, j] = u_srv
    time = index.tz_convert("UTC").tz_localize(None)      # stored in UTC (DESIGN.md), as the other drivers
    coords = {"time": ("time", time, {"timezone": "UTC", "long_name": "interval start"}),
              "hall": [h.name for h in halls]}
    ds = xr.Dataset(
        {
            "p_mw": (("time", "hall"), p, {"units": "MW", "long_name": "IT active power of the hall (interval mean)"}),
            "q_mvar": (("time", "hall"), q, {"units": "Mvar",
                                             "long_name": "IT reactive power of the hall, inductive positive"}),
            "utilisation": (("time", "hall"), u, {"units": "1", "long_name": "busy GPU fraction of the hall"}),
        },
        coords=coords,
        attrs={"scenario": scenario or case.spec.drivers.scenario, "seed": seed, "resolution_s": step_s,
               "timezone": tz, "convention": "value at t is the mean over [t, t + resolution_s)"},
    )
    return ds


# --------------------------------------------------------------------------------------------------------------
# step response and measured-trace analysis (validation against wall-power traces)


def server_step_kw(server: ServerModel, edges_s, t_step_s: float, gpu_fraction: float = 1.0):
    """Interval means (kW) of one server's wall power for a workload start from idle at ``t_step_s``.

    The server ramps linearly over ``rise_time_s`` from the idle level to all GPUs at ``gpu_fraction``; the mean over
    each ``[edges[i], edges[i+1])`` is exact (closed-form integral of the clipped ramp), as a meter averaging over
    its update interval reports it.
    """
    e = np.asarray(edges_s, dtype=float)
    r = server.rise_time_s
    x = e - t_step_s
    if r > 0:
        ramp = np.where(x <= 0, 0.0, np.where(x < r, x * x / (2 * r), r / 2 + (x - r)))
    else:
        ramp = np.maximum(x, 0.0)
    p0 = float(server_power_from_fraction(server, server.gpu_idle_fraction))
    p1 = float(server_power_from_fraction(server, gpu_fraction))
    return p0 + (p1 - p0) * np.diff(ramp) / np.diff(e)


def plateau_levels(power, min_len: int = 5, trim: int = 2) -> tuple[float, float]:
    """Idle and loaded plateau levels of a wall-power trace (robust: medians of steady runs).

    The samples are split at the midpoint between the 2nd and 98th percentiles; runs of at least ``min_len``
    consecutive samples on one side, less ``trim`` samples at each end (the transitions), are the plateaus. The idle
    level is the median over the low plateaus, the loaded level the median of the longest high plateau.

    Returns
    -------
    (float, float)
        Idle and loaded level, in the unit of ``power``.
    """
    x = np.asarray(power, dtype=float)
    lo, hi = np.percentile(x, [2, 98])
    high = x > (lo + hi) / 2
    change = np.flatnonzero(np.diff(high.astype(int))) + 1
    starts = np.r_[0, change]
    ends = np.r_[change, len(x)]
    low_vals, best = [], (0, None)
    for s, e in zip(starts, ends, strict=True):
        if e - s < min_len + 2 * trim:
            continue
        seg = x[s + trim:e - trim]
        if high[s]:
            if e - s > best[0]:
                best = (e - s, seg)
        else:
            low_vals.append(seg)
    if not low_vals or best[1] is None:
        raise ValueError("plateau_levels: no idle or no loaded plateau found")
    return float(np.median(np.concatenate(low_vals))), float(np.median(best[1]))


def rise_times_10_90(t_s, power, idle: float, loaded: float) -> np.ndarray:
    """10-90 % rise times in s of the up-steps from ``idle`` to ``loaded`` in a sampled trace.

    For each first sample at or above 90 % after a sample at or below 10 % of the step, the rise time is the time
    between the last 10 % crossing before it and the 90 % crossing, both linearly interpolated between samples (so
    a staged start counts only its final rise).
    """
    t = np.asarray(t_s, dtype=float)
    x = (np.asarray(power, dtype=float) - idle) / (loaded - idle)
    out = []
    armed_at = None
    for i in range(len(x)):
        if x[i] <= 0.1:
            armed_at = i
        elif x[i] >= 0.9 and armed_at is not None:
            j = armed_at
            t10 = t[j] + (0.1 - x[j]) / (x[j + 1] - x[j]) * (t[j + 1] - t[j])
            t90 = t[i - 1] + (0.9 - x[i - 1]) / (x[i] - x[i - 1]) * (t[i] - t[i - 1])
            out.append(t90 - t10)
            armed_at = None
    return np.asarray(out)


# --------------------------------------------------------------------------------------------------------------
# stateful ramp limiter for the dynamic studies (numba)

_RAMP_KERNEL = None


def _ramp_kernel():
    global _RAMP_KERNEL
    if _RAMP_KERNEL is None:
        import numba

        @numba.njit(cache=True)
        def kernel(x, dt, up, down, floor, y0):
            y = np.empty_like(x)
            prev = y0
            for i in range(x.shape[0]):
                target = max(x[i], floor)
                hi = prev + up * dt
                lo = prev - down * dt
                v = min(max(target, lo), hi)
                y[i] = v
                prev = v
            return y

        _RAMP_KERNEL = kernel
    return _RAMP_KERNEL


def ramp_limit(power, dt_s: float, up_per_s: float, down_per_s: float, floor: float = -np.inf, initial=None):
    """Rate-limit a sampled power signal (numba kernel), as GPU power smoothing does to a workload's demand.

    Parameters
    ----------
    power : array_like
        Demanded power (any unit) on a regular grid of step ``dt_s`` s.
    up_per_s, down_per_s : float
        Largest rise and fall per second (same unit per s), > 0.
    floor : float, optional
        Power floor (same unit): the output never falls below it (NVIDIA power smoothing's floor).
    initial : float, optional
        Output before the first sample (default: the first sample, floored).

    Returns
    -------
    ndarray
        The limited signal; ``|y[i] - y[i-1]| <= rate * dt_s`` and ``y >= floor`` once the ramp has reached it.
    """
    x = np.ascontiguousarray(power, dtype=float)
    if up_per_s <= 0 or down_per_s <= 0 or dt_s <= 0:
        raise ValueError("ramp_limit: rates and dt_s must be > 0")
    y0 = float(max(x[0], floor)) if initial is None else float(initial)
    return _ramp_kernel()(x, float(dt_s), float(up_per_s), float(down_per_s), float(floor), y0)
