"""Voltage-duration (and current-duration) curve checks: ITIC, SEMI F47, PCS overload capability.

A magnitude-duration curve is checked on a sampled signal level by level: for each level, the longest continuous
time the signal spends beyond it (below it for a sag curve, above it for a swell or overload curve) must not exceed
the time the curve allows there. A curve is data: a dict of ``levels_pu`` and ``allowed_s`` (``np.inf`` = never
binding). Time convention (DESIGN.md): the value at a time stamp holds over the interval that starts there, up to
the next time stamp; the last sample lasts one median step. Excursion durations are rounded to 1 ns, so an
excursion that equals an allowed duration up to the rounding of the time stamps passes.

The curves (REFERENCE.md, "Ride-through of IT load"), read as "the longest time the voltage may stay beyond the
level":

- :data:`ITIC_LOWER` (ITIC/CBEMA curve, 2000 revision, no-interruption region; confidence M-H): 0 % tolerated up
  to 20 ms, 70 % from 20 ms to 0.5 s, 80 % from 0.5 s to 10 s, 90 % beyond 10 s. So below 0.7 pu at most 20 ms,
  below 0.8 pu at most 0.5 s, below 0.9 pu at most 10 s.
- :data:`ITIC_UPPER` (no-damage region): the boundary falls from 200 % at 1 ms to 140 % at 3 ms, is 120 % from 3 ms
  to 0.5 s and 110 % beyond 0.5 s. So above 1.1 pu at most 0.5 s, above 1.2 pu at most 3 ms, and above 1.4 pu at
  most 1 ms (a stepped inner approximation of the sloped 1-3 ms segment: conservative between 140 % and 200 %).
  The impulse region (up to 500 % below 1 ms) is beyond an RMS simulation's resolution and not checked.
- :data:`SEMI_F47` (SEMI F47-0706, semiconductor process tools; confidence H for the points): ride through sags to
  50 % for 200 ms, 70 % for 0.5 s, 80 % for 1 s. So below 0.7 pu at most 0.2 s, below 0.8 pu at most 0.5 s, below
  0.9 pu at most 1 s (0.9 pu is the usual sag threshold, IEEE Std 1159; beyond 1 s the standard requires nothing
  below it), and below 0.5 pu not at all (allowed 0 s: deeper sags are outside the standard's ride-through duty, so
  the check fails conservatively).

ITIC applies at the IT equipment's input terminals (the hall LV board, or the UPS output), not at MV buses.

Written here rather than taken from a library: no maintained Python package checks sampled time series against
magnitude-duration curves with margins.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["ITIC_LOWER", "ITIC_UPPER", "SEMI_F47", "longest_excursion", "duration_curve_check", "itic_check",
           "semi_f47_check", "overload_check"]

#: ITIC (CBEMA) 2000 lower boundary: the voltage may stay below ``levels_pu[k]`` for at most ``allowed_s[k]``.
ITIC_LOWER = {"levels_pu": (0.7, 0.8, 0.9), "allowed_s": (0.02, 0.5, 10.0)}
#: ITIC (CBEMA) 2000 upper boundary: the voltage may stay above ``levels_pu[k]`` for at most ``allowed_s[k]``.
ITIC_UPPER = {"levels_pu": (1.4, 1.2, 1.1), "allowed_s": (0.001, 0.003, 0.5)}
#: SEMI F47-0706 sag ride-through: the voltage may stay below ``levels_pu[k]`` for at most ``allowed_s[k]``.
SEMI_F47 = {"levels_pu": (0.5, 0.7, 0.8, 0.9), "allowed_s": (0.0, 0.2, 0.5, 1.0)}

_ROUND_DECIMALS = 9  # durations rounded to 1 ns


def _check_signal(t_s, x):
    """Validated float arrays: t (time,) strictly increasing, x (time,) or (time, n) without NaN."""
    t = np.asarray(t_s, dtype=float)
    x = np.asarray(x, dtype=float)
    if t.ndim != 1 or t.size < 2:
        raise ValueError(f"t_s must be 1-D with at least 2 samples, got shape {t.shape}")
    if not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0):
        raise ValueError("t_s must be finite and strictly increasing")
    if x.ndim not in (1, 2) or x.shape[0] != t.size:
        raise ValueError(f"x must have shape (time,) or (time, n) with time = {t.size} (len(t_s)), got {x.shape}")
    if np.any(np.isnan(x)):
        raise ValueError("x contains NaN: mark or remove the missing samples before checking")
    return t, x


def _check_curve(levels, allowed_s):
    """Validated 1-D float arrays of levels (finite, >= 0) and allowed durations (>= 0, inf allowed)."""
    lv = np.atleast_1d(np.asarray(levels, dtype=float))
    al = np.atleast_1d(np.asarray(allowed_s, dtype=float))
    if lv.ndim != 1 or lv.shape != al.shape:
        raise ValueError(f"levels and allowed_s must be 1-D of the same length, got {lv.shape} and {al.shape}")
    if not np.all(np.isfinite(lv) & (lv >= 0)):
        raise ValueError(f"levels must be finite and >= 0, got {lv.tolist()}")
    if np.any(np.isnan(al) | (al < 0)):
        raise ValueError(f"allowed_s must be >= 0 (np.inf for never binding), got {al.tolist()}")
    return lv, al


def longest_excursion(t_s, x, level, *, below=True):
    """Longest continuous duration a sampled signal spends below (or above) a level.

    Each sample holds from its time stamp to the next one; the last sample lasts one median step. The excursion is
    strict: a sample equal to ``level`` is not beyond it.

    Parameters
    ----------
    t_s : array_like, shape (time,)
        Time stamps, s, strictly increasing (fixed or variable step).
    x : array_like, shape (time,) or (time, n)
        Signal, any unit (e.g. voltage magnitude in pu), one column per element.
    level : float
        Level in the unit of ``x``.
    below : bool, default True
        True counts ``x < level`` (sags), False counts ``x > level`` (swells, overload).

    Returns
    -------
    numpy.ndarray, shape () or (n,)
        Longest continuous excursion, s (0 if none), rounded to 1 ns.
    """
    t, x = _check_signal(t_s, x)
    dt = np.diff(t)
    t_end = np.append(t[1:], t[-1] + np.median(dt))
    beyond = x < level if below else x > level
    shape = (-1,) + (1,) * (x.ndim - 1)
    # start of the current run = end of the last sample not beyond the level (or the first time stamp)
    start = np.maximum.accumulate(np.where(beyond, t[0], t_end.reshape(shape)), axis=0)
    run = np.where(beyond, t_end.reshape(shape) - start, 0.0)
    return np.round(run.max(axis=0), _ROUND_DECIMALS)


def _summarise(ds):
    """Add per-element pass, binding level and smallest margin from the per-level ``margin_ms``."""
    m = ds["margin_ms"]
    m_min = m.min("level")
    binding = ds["level"].isel(level=m.argmin("level")).drop_vars(["level", "direction"], errors="ignore")
    ds["margin_ms_min"] = m_min.assign_attrs(units="ms", long_name="smallest margin over the levels (>= 0 passes)")
    ds["binding_level"] = binding.where(np.isfinite(m_min)).assign_attrs(
        units=ds["level"].attrs.get("units", ""), long_name="level with the smallest margin (NaN: none binding)")
    ds["pass"] = (m_min >= 0).assign_attrs(units="1", long_name="every level within its allowed duration")
    return ds


def _per_level(t_s, x, levels, allowed_s, below, names):
    """Per-level variables of a duration-curve check, always with an element dimension."""
    t, x = _check_signal(t_s, x)
    lv, al = _check_curve(levels, allowed_s)
    x2 = x.reshape(t.size, -1)
    names = list(range(x2.shape[1])) if names is None else list(names)
    if len(names) != x2.shape[1]:
        raise ValueError(f"names has {len(names)} entries for {x2.shape[1]} elements (columns of x)")
    longest = np.stack([longest_excursion(t, x2, level, below=below) for level in lv])
    with np.errstate(invalid="ignore"):
        margin = np.round((al[:, None] - longest) * 1000.0, _ROUND_DECIMALS - 3)
    coords = {"level": ("level", lv, {"units": "pu", "long_name": "curve level"}),
              "direction": ("level", np.full(lv.size, "below" if below else "above"),
                            {"long_name": "excursion counted below or above the level"}),
              "element": ("element", names)}
    return xr.Dataset(
        {"longest_s": (("level", "element"), longest,
                       {"units": "s", "long_name": "longest continuous time beyond the level"}),
         "allowed_s": ("level", al, {"units": "s", "long_name": "longest time the curve allows beyond the level"}),
         "margin_ms": (("level", "element"), margin,
                       {"units": "ms", "long_name": "allowed minus longest time beyond the level (>= 0 passes)"})},
        coords=coords)


def _finish(ds, x):
    """Summarise, and drop the element dimension for a 1-D signal."""
    ds = _summarise(ds)
    return ds.isel(element=0, drop=True) if np.ndim(x) == 1 else ds


def duration_curve_check(t_s, x, levels, allowed_s, *, below=True, names=None):
    """Check a sampled signal against a magnitude-duration curve, level by level.

    Parameters
    ----------
    t_s : array_like, shape (time,)
        Time stamps, s, strictly increasing.
    x : array_like, shape (time,) or (time, n)
        Signal (e.g. voltage magnitude or current), pu; one column per element.
    levels : array_like, shape (k,)
        Curve levels, pu, finite and >= 0.
    allowed_s : array_like, shape (k,)
        Longest time the signal may stay beyond each level, s, >= 0 (``np.inf``: never binding).
    below : bool, default True
        True checks ``x < level`` (sag curves), False ``x > level`` (swell and overload curves).
    names : sequence, optional
        Element names (length n), the ``element`` coordinate; default 0..n-1.

    Returns
    -------
    xarray.Dataset
        Dims ``level`` (coordinates ``level``, pu, and ``direction``) and ``element`` (if ``x`` is 2-D), with
        ``longest_s`` (level, element), ``allowed_s`` (level), ``margin_ms`` (level, element; ``allowed - longest``
        in ms, positive passes) and per element ``margin_ms_min``, ``binding_level`` (the level of smallest
        margin) and ``pass`` (every level within its allowed duration). A level the signal never crosses keeps its
        whole allowed time as margin, so ``margin_ms_min`` is at most the curve's shortest allowed time (1 ms for
        :data:`ITIC_UPPER`); read the per-level ``margin_ms`` for the margin at the excursion itself.

    Raises
    ------
    ValueError
        For non-increasing time, mismatched shapes, NaN samples, negative or non-finite levels, negative allowed
        durations, or a wrong number of names.
    """
    return _finish(_per_level(t_s, x, levels, allowed_s, below, names), x)


def itic_check(t_s, v_pu, names=None):
    """Check voltages against both ITIC (CBEMA 2000) boundaries, :data:`ITIC_LOWER` and :data:`ITIC_UPPER`.

    Parameters
    ----------
    t_s : array_like, shape (time,)
        Time stamps, s, strictly increasing.
    v_pu : array_like, shape (time,) or (time, n)
        Voltage magnitude (RMS) at the IT equipment's terminals, pu of nominal.
    names : sequence, optional
        Element names.

    Returns
    -------
    xarray.Dataset
        As :func:`duration_curve_check`, the six levels of both boundaries on one ``level`` dimension (the
        ``direction`` coordinate says which); ``pass`` is true when both boundaries pass, ``binding_level`` and
        ``margin_ms_min`` are taken over all six levels.
    """
    parts = [_per_level(t_s, v_pu, c["levels_pu"], c["allowed_s"], below, names)
             for c, below in ((ITIC_LOWER, True), (ITIC_UPPER, False))]
    ds = xr.concat(parts, dim="level", data_vars="all", coords="different", compat="equals")
    ds.attrs["curve"] = "ITIC (CBEMA) 2000, lower and upper boundaries"
    return _finish(ds, v_pu)


def semi_f47_check(t_s, v_pu, names=None):
    """Check voltages against the SEMI F47-0706 sag ride-through curve :data:`SEMI_F47` (see the module notes).

    Parameters and result as :func:`duration_curve_check` with ``below=True``.
    """
    ds = duration_curve_check(t_s, v_pu, SEMI_F47["levels_pu"], SEMI_F47["allowed_s"], names=names)
    ds.attrs["curve"] = "SEMI F47-0706"
    return ds


def overload_check(t_s, i_pu, levels_pu, allowed_s, names=None):
    """Check currents against a current-versus-time capability curve (e.g. a PCS's overload table).

    Parameters
    ----------
    t_s : array_like, shape (time,)
        Time stamps, s, strictly increasing.
    i_pu : array_like, shape (time,) or (time, n)
        Current magnitude, pu of the rated current.
    levels_pu : array_like, shape (k,)
        Current levels, pu (e.g. 1.1, 1.2, 1.5).
    allowed_s : array_like, shape (k,)
        Longest time the current may stay above each level, s (``np.inf``: continuous rating).
    names : sequence, optional
        Element names.

    Returns
    -------
    xarray.Dataset
        As :func:`duration_curve_check` with ``below=False``.
    """
    return duration_curve_check(t_s, i_pu, levels_pu, allowed_s, below=False, names=names)
