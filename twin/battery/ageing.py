"""Battery ageing: capacity fade and resistance growth of LFP cells over a simulated history.

Capacity fade comes from NREL's BLAST-Lite (PyPI ``blast-lite``), model ``Lfp_Gr_250AhPrismatic`` ("LFP/graphite
250 Ah prismatic, 2019 data"; Gasper et al., J. Energy Storage 2023, https://doi.org/10.1016/j.est.2023.109042; model
form of Smith et al., "Life prediction model for grid-connected Li-ion battery energy storage system", ACC 2017).
The library is called, not re-coded (DESIGN.md). Its equations (REFERENCE.md):

- calendar: ``q_loss = k_cal * t_days**0.526``, ``k_cal = 8.37e4 exp(-5.21e3/T) exp(-3.56e3 Ua(SOC)/T)``
- cycling: ``q_loss = k_cyc * EFC**0.828``, ``k_cyc = (4.38e-8 + 1.55e-8 DOD + 1.68e-7 C) (exp(2.19e3/T) + exp(-1.55e5/T))``

with ``q = 1 - q_loss_cal - q_loss_cyc``. BLAST-Lite derives DOD, C-rate and equivalent full cycles (EFC) from the
SOC series itself (rainflow counting) and advances the states once per equivalent full cycle or per day.

Validity: the model was fitted on cells cycled at 10-45 degC with charge rates of at most 0.65 C (0.16 C at 10 degC)
and DOD 0.8-1; outside 10-45 degC the cycling term extrapolates badly (the library's own note), and a
:class:`UserWarning` is issued. Confidence: H for the model as published, L for its transfer to another maker's
280 Ah cell.

Resistance growth: the 250 Ah model has no resistance output. The twin uses ``r = 1 + R_PER_Q_LOSS * (1 - q)`` with
``R_PER_Q_LOSS = 1.8``, the ratio of resistance growth to capacity loss of BLAST-Lite's other LFP/graphite model
(``Lfp_Gr_SonyMurata3Ah_Battery``) after 10 years of one 90 % DOD cycle a day at 25 degC (0.27 / 0.15). (L: replace
with test data of the actual cell.)

Dependency: BLAST-Lite is optional (``pip install 'twin[ageing]'``), because blast-lite 1.1 declares numpy < 2 and
pulls in h5pyd, nrel-rex, geopy and s3fs for its weather tools; installed beside numpy 2 it works for the models used
here. Open question for the battery issue: keep the library optional, or code the two published equations above
(with the library as a cross-check) so that ageing runs everywhere.

Compatibility: BLAST-Lite 1.1 calls ``numpy.trapz``, which numpy 2.4 removed; while the library runs, and only if
numpy lacks it, ``numpy.trapz`` is bound to ``numpy.trapezoid`` (same function) and removed afterwards.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass

import numpy as np
import xarray as xr

__all__ = ["MODEL_NAME", "T_VALID_DEGC", "R_PER_Q_LOSS", "age", "project", "parameter_multipliers",
           "AgeingMultipliers", "library_model"]

MODEL_NAME = "Lfp_Gr_250AhPrismatic"
T_VALID_DEGC = (10.0, 45.0)
R_PER_Q_LOSS = 1.8
_DAY_S = 86400.0
_YEAR_S = 365.0 * _DAY_S


@contextlib.contextmanager
def _numpy_compat():
    added = not hasattr(np, "trapz")
    if added:
        np.trapz = np.trapezoid
    try:
        yield
    finally:
        if added:
            del np.trapz


def library_model(degradation_scalar: float = 1.0):
    """A fresh BLAST-Lite ``Lfp_Gr_250AhPrismatic`` model object (beginning of life).

    Parameters
    ----------
    degradation_scalar : float
        The library's multiplier on every state change (1 = the published fit; use it for cell-to-cell spread).
    """
    try:
        from blast import models
    except ImportError as exc:
        raise ImportError("battery ageing needs NREL's BLAST-Lite, an optional dependency (it pins numpy < 2): "
                          "pip install 'twin[ageing]' or pip install blast-lite") from exc
    return getattr(models, MODEL_NAME)(degradation_scalar=degradation_scalar)


def _get(history, key):
    if isinstance(history, xr.Dataset):
        if key == "time":
            return np.asarray(history["time"].values)
        return np.asarray(history[key].values, dtype=float) if key in history.variables else None
    v = history.get(key)
    return None if v is None else np.asarray(v)


def _inputs(history):
    """(t_s from start, soc, t_degc, time coordinate as given) from a history dict or Dataset."""
    time = _get(history, "time")
    if time is None:
        raise ValueError("ageing history: missing 'time' (seconds or datetime64)")
    if np.issubdtype(time.dtype, np.datetime64):
        t_s = (time - time[0]) / np.timedelta64(1, "s")
    else:
        t_s = time.astype(float) - float(time[0])
    t_s = np.asarray(t_s, dtype=float)
    if t_s.size < 2 or np.any(np.diff(t_s) <= 0):
        raise ValueError("ageing history: 'time' must hold at least two strictly increasing values")
    temp = _get(history, "t_cell_degc")
    if temp is None:
        raise ValueError("ageing history: missing 't_cell_degc' (cell temperature in degC)")
    temp = np.broadcast_to(np.asarray(temp, dtype=float), t_s.shape).copy()
    soc = _get(history, "soc")
    if soc is None:
        soc = _soc_from_current(history, t_s)
    soc = np.broadcast_to(np.asarray(soc, dtype=float), t_s.shape).copy()
    if np.any(~np.isfinite(soc)) or soc.min() < -1e-9 or soc.max() > 1 + 1e-9:
        raise ValueError(f"ageing history: 'soc' must lie in 0-1, found {soc.min():g} to {soc.max():g}")
    if np.any(~np.isfinite(temp)):
        raise ValueError("ageing history: 't_cell_degc' holds non-finite values")
    lo, hi = T_VALID_DEGC
    if temp.min() < lo or temp.max() > hi:
        warnings.warn(f"battery ageing: cell temperature {temp.min():.1f}-{temp.max():.1f} degC leaves the "
                      f"{lo:g}-{hi:g} degC range the BLAST-Lite LFP model was fitted on: extrapolation",
                      UserWarning, stacklevel=3)
    return t_s, np.clip(soc, 0.0, 1.0), temp, time


def _soc_from_current(history, t_s):
    c_rate = _get(history, "c_rate")
    if c_rate is None:
        i_a, cap = _get(history, "current_a"), _get(history, "capacity_ah")
        if i_a is None or cap is None:
            raise ValueError("ageing history: give 'soc', or 'c_rate' (1/h, + discharge), or 'current_a' "
                             "(A, + discharge) with 'capacity_ah', each with 'soc0'")
        c_rate = np.asarray(i_a, dtype=float) / float(cap)
    soc0 = _get(history, "soc0")
    if soc0 is None:
        raise ValueError("ageing history: integrating SOC from current needs 'soc0' (initial SOC, 0-1)")
    c = np.broadcast_to(np.asarray(c_rate, dtype=float), t_s.shape)
    # a value at a timestamp is the mean over the interval that starts there (DESIGN.md)
    dsoc = -c[:-1] * np.diff(t_s) / 3600.0
    return float(soc0) + np.concatenate([[0.0], np.cumsum(dsoc)])


def _run(t_s, soc, temp, degradation_scalar, **kwargs):
    model = library_model(degradation_scalar)
    with _numpy_compat(), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        model.simulate_battery_life({"Time_s": t_s, "SOC": soc, "Temperature_C": temp}, **kwargs)
    return model


def _dataset(model, r_per_q_loss: float) -> xr.Dataset:
    t_days = np.asarray(model.stressors["t_days"], dtype=float)
    q = np.asarray(model.outputs["q"], dtype=float)
    ds = xr.Dataset(
        {
            "q": ("time", q, {"units": "1", "long_name": "relative capacity (capacity / beginning-of-life capacity)"}),
            "q_cal": ("time", np.asarray(model.outputs["q_t"], dtype=float),
                      {"units": "1", "long_name": "relative capacity, calendar loss only"}),
            "q_cyc": ("time", np.asarray(model.outputs["q_EFC"], dtype=float),
                      {"units": "1", "long_name": "relative capacity, cycling loss only"}),
            "r": ("time", 1.0 + r_per_q_loss * (1.0 - q),
                  {"units": "1", "long_name": "relative resistance (resistance / beginning-of-life resistance)"}),
            "efc": ("time", np.asarray(model.stressors["efc"], dtype=float),
                    {"units": "1", "long_name": "equivalent full cycles"}),
        },
        coords={"time": ("time", t_days * _DAY_S, {"units": "s", "long_name": "time since beginning of life"})},
        attrs={"model": f"BLAST-Lite {MODEL_NAME}", "valid_t_degc": f"{T_VALID_DEGC[0]:g}-{T_VALID_DEGC[1]:g}",
               "r_per_q_loss": r_per_q_loss},
    )
    ds["t_years"] = ("time", t_days / 365.0, {"units": "year", "long_name": "time since beginning of life"})
    return ds


def age(history, *, degradation_scalar: float = 1.0, r_per_q_loss: float = R_PER_Q_LOSS) -> xr.Dataset:
    """Capacity fade and resistance growth over a simulated history (BLAST-Lite LFP 250 Ah model).

    Parameters
    ----------
    history : dict or xarray.Dataset
        ``time``: seconds (any origin) or datetime64, strictly increasing; ``t_cell_degc``: cell temperature in
        degC (scalar or per step); and either ``soc`` (0-1) or ``c_rate`` (1/h, + discharge) or ``current_a``
        (A, + discharge) with ``capacity_ah``, each of the latter with ``soc0`` (SOC is then integrated, a value
        being the mean over the interval that starts at its timestamp). Depth of discharge, C-rate and throughput
        are derived from SOC by the library (rainflow counting).
    degradation_scalar : float
        BLAST-Lite's multiplier on the degradation rates (1 = published fit).
    r_per_q_loss : float
        Resistance growth per unit capacity loss (module docstring; L).

    Returns
    -------
    xarray.Dataset
        Over ``time`` (s since the start, at the library's update points: one per equivalent full cycle or per
        day, plus the start): ``q``, ``q_cal``, ``q_cyc`` (relative capacity), ``r`` (relative resistance),
        ``efc`` (equivalent full cycles), ``t_years``.

    Warns
    -----
    UserWarning
        When the cell temperature leaves 10-45 degC, where the model is not valid.

    References
    ----------
    Smith K. et al., ACC 2017; Gasper P. et al., J. Energy Storage 73 (2023) 109042; NREL BLAST-Lite.
    """
    t_s, soc, temp, _ = _inputs(history)
    return _dataset(_run(t_s, soc, temp, degradation_scalar), r_per_q_loss)


def project(history_one_year, years=(1, 5, 10), *, degradation_scalar: float = 1.0,
            r_per_q_loss: float = R_PER_Q_LOSS) -> dict:
    """Project ageing by repeating a representative history (typically one year) up to ``max(years)``.

    Parameters
    ----------
    history_one_year : dict or xarray.Dataset
        As for :func:`age`; repeated back to back (the library keeps SOC swings in ampere-hours as capacity fades).
    years : sequence of float
        Times at which to report, in years of 365 days.

    Returns
    -------
    dict
        ``{year: {"q": relative capacity, "r": relative resistance, "efc": equivalent full cycles}}``, each
        interpolated linearly between the library's update points (at most a day or one cycle apart); plus
        ``"dataset"``: the whole trajectory as :func:`age` returns it.
    """
    t_s, soc, temp, _ = _inputs(history_one_year)
    horizon = float(max(years))
    model = _run(t_s, soc, temp, degradation_scalar, threshold_time=horizon)
    ds = _dataset(model, r_per_q_loss)
    ty = ds["t_years"].values
    out: dict = {}
    for y in years:
        out[y] = {k: float(np.interp(float(y), ty, ds[k].values)) for k in ("q", "r", "efc")}
    out["dataset"] = ds
    return out


@dataclass(frozen=True)
class AgeingMultipliers:
    """Multipliers to apply to a beginning-of-life cell parameter set for a long run.

    ``capacity`` multiplies the capacity (Ah); ``resistance`` multiplies the series resistance R0 and the RC-pair
    resistances (the RC time constants are kept, i.e. capacitances divided by the same factor).
    """

    capacity: float
    resistance: float


def parameter_multipliers(aged: xr.Dataset | dict, at_s: float | None = None) -> AgeingMultipliers:
    """Cell-parameter multipliers (capacity x q, resistances x r) from an ageing result.

    Parameters
    ----------
    aged : xarray.Dataset or dict
        The result of :func:`age`, or one entry of :func:`project` (``{"q": ..., "r": ...}``).
    at_s : float, optional
        Time since the start in s (interpolated); default the end of the history.
    """
    if isinstance(aged, dict):
        return AgeingMultipliers(capacity=float(aged["q"]), resistance=float(aged["r"]))
    if at_s is None:
        return AgeingMultipliers(capacity=float(aged["q"].values[-1]), resistance=float(aged["r"].values[-1]))
    t = aged["time"].values
    return AgeingMultipliers(capacity=float(np.interp(at_s, t, aged["q"].values)),
                             resistance=float(np.interp(at_s, t, aged["r"].values)))
