"""Power conversion system (PCS) of a battery container: efficiency, P-Q capability, ramp, standby, reactive power.

Functions on arrays over time (batch-first), one PCS parameter set (``models/pcs/<name>.toml``,
:class:`twin.case.PcsModel`) each. Signs (DESIGN.md): active power ``p`` positive when the battery discharges into
the campus, reactive power ``q`` positive when the PCS delivers it (generator convention, as pandapower's sgen).

- Efficiency over the loading range: the PVWatts curve shape (pvlib.inverter.pvwatts; REFERENCE.md),
  ``eta = eta_nom / eta_ref (-0.0162 z - 0.0059 / z + 0.9858)`` with ``z = |P_ac| / P_rated``; the same curve both
  ways (AC -> DC when charging). Below ``p_min_fraction`` of the rating the PCS idles: no power converted, its
  standby draw taken from the grid.
- Capability: ``P^2 + Q^2 <= S_rated^2`` with active- or reactive-power priority, and ``|P| <= P_rated``.
- Ramp: ``|dP/dt| <= ramp_mw_per_s`` (none if not given).
- Reactive power: fixed power factor (``pf``, sign of ``q_mode``), or a Q(V) droop characteristic (IEC/GB grid-code
  style, piecewise linear in the terminal voltage), or, ``poc_pf``, a Q the caller sets to hold the power factor at
  the point of connection (the EMS, which sees the whole campus).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .case import PcsModel

__all__ = ["efficiency", "ac_to_dc", "dc_to_ac", "capability", "ramp", "q_setpoint", "standby_mw"]


def efficiency(p_ac_mw, pcs: PcsModel):
    """PCS efficiency (0-1) at AC power ``p_ac_mw`` (MW, either sign); PVWatts curve shape (REFERENCE.md)."""
    from .battery import pcs_efficiency

    return pcs_efficiency(p_ac_mw, pcs.p_rated_mw, pcs.eta_nom, pcs.eta_ref)


def ac_to_dc(p_ac_w, pcs: PcsModel):
    """DC power at the battery (W, + discharging) for AC power ``p_ac_w`` at the PCS terminals (W).

    Discharging ``P_dc = P_ac / eta(P_ac)``, charging ``P_dc = P_ac eta(P_ac)``; zero below ``p_min_fraction`` of the
    rating, where the PCS idles.
    """
    p = np.asarray(p_ac_w, dtype=float)
    eta = efficiency(p / 1e6, pcs)
    dc = np.where(p > 0, p / eta, p * eta)
    return np.where(np.abs(p) < pcs.p_min_fraction * pcs.p_rated_mw * 1e6, 0.0, dc)


# PVWatts efficiency shape eta = c (-A z - B / z + E), c = eta_nom / eta_ref (twin.battery.pcs_efficiency)
_A, _B, _E = 0.0162, 0.0059, 0.9858


def dc_to_ac(p_dc_w, pcs: PcsModel):
    """AC power at the PCS terminals (W) for DC power ``p_dc_w`` (W, + discharging): the inverse of :func:`ac_to_dc`.

    With ``d = |P_dc| / P_rated`` and the PVWatts shape ``eta = c (-A z - B/z + E)``, ``z / eta(z) = d``
    (discharging) and ``z eta(z) = d`` (charging) are quadratics in ``z``; their physical roots (the one that tends
    to ``d eta`` and ``d / eta`` respectively) are taken in closed form. Zero for DC powers below what the PCS
    minimum (``p_min_fraction``) needs.
    """
    p = np.asarray(p_dc_w, dtype=float)
    rated = pcs.p_rated_mw * 1e6
    c = pcs.eta_nom / pcs.eta_ref
    d = np.abs(p) / rated
    k = d * c
    with np.errstate(invalid="ignore"):
        z_dis = (k * _E + np.sqrt(np.maximum((k * _E) ** 2 - 4.0 * (1.0 + k * _A) * k * _B, 0.0))) / (
            2.0 * (1.0 + k * _A))
        cb = c * _B + d
        z_ch = 2.0 * cb / (c * _E + np.sqrt(np.maximum((c * _E) ** 2 - 4.0 * c * _A * cb, 0.0)))
    z = np.where(p > 0, z_dis, z_ch)
    z_min = pcs.p_min_fraction
    eta_min = c * (-_A * z_min - _B / z_min + _E)
    d_min = np.where(p > 0, z_min / eta_min, z_min * eta_min)
    z = np.where(d < d_min * (1 - 1e-12), 0.0, z)
    return np.sign(p) * z * rated


@njit(cache=True)
def _ac_to_dc_1(p_w, rated_w, c, p_min_w):
    """Scalar :func:`ac_to_dc` for numba loops (W; ``c = eta_nom / eta_ref``, ``p_min_w`` the PCS minimum)."""
    if abs(p_w) < p_min_w or p_w == 0.0:
        return 0.0
    z = max(abs(p_w) / rated_w, 1e-6)
    eta = c * (-_A * z - _B / z + _E)
    return p_w / eta if p_w > 0.0 else p_w * eta


@njit(cache=True)
def _dc_to_ac_1(p_w, rated_w, c, p_min_w):
    """Scalar :func:`dc_to_ac` for numba loops (same closed form)."""
    if p_w == 0.0:
        return 0.0
    d = abs(p_w) / rated_w
    z_min = p_min_w / rated_w
    eta_min = c * (-_A * z_min - _B / z_min + _E)
    if p_w > 0.0:
        if d < z_min / eta_min * (1 - 1e-12):
            return 0.0
        k = d * c
        z = (k * _E + math.sqrt(max((k * _E) ** 2 - 4.0 * (1.0 + k * _A) * k * _B, 0.0))) / (2.0 * (1.0 + k * _A))
        return z * rated_w
    if d < z_min * eta_min * (1 - 1e-12):
        return 0.0
    cb = c * _B + d
    z = 2.0 * cb / (c * _E + math.sqrt(max((c * _E) ** 2 - 4.0 * c * _A * cb, 0.0)))
    return -z * rated_w


def capability(p_mw, q_mvar, pcs: PcsModel, priority: str = "p"):
    """Limit a (P, Q) request to the PCS capability: ``|P| <= P_rated`` and ``P^2 + Q^2 <= S_rated^2``.

    ``priority="p"`` keeps P and cuts Q to the circle; ``"q"`` keeps Q (up to S) and cuts P. Returns ``(p, q)``
    in MW and Mvar, same shapes.
    """
    if priority not in ("p", "q"):
        raise ValueError(f"capability: priority expected 'p' or 'q', found {priority!r}")
    p = np.clip(np.asarray(p_mw, dtype=float), -pcs.p_rated_mw, pcs.p_rated_mw)
    q = np.asarray(q_mvar, dtype=float)
    s = pcs.sn_mva
    if priority == "p":
        qmax = np.sqrt(np.maximum(s * s - p * p, 0.0))
        q = np.clip(q, -qmax, qmax)
    else:
        q = np.clip(q, -s, s)
        pmax = np.minimum(np.sqrt(np.maximum(s * s - q * q, 0.0)), pcs.p_rated_mw)
        p = np.clip(p, -pmax, pmax)
    return p, q


@njit(cache=True)
def _ramp(p, dt, step_max, p0):
    out = np.empty_like(p)
    prev = p0
    for k in range(p.size):
        d = p[k] - prev
        if d > step_max:
            d = step_max
        elif d < -step_max:
            d = -step_max
        prev = prev + d
        out[k] = prev
    return out


def ramp(p_mw, dt_s: float, pcs: PcsModel, p0_mw: float = 0.0):
    """Follow the request ``p_mw`` (per step) as closely as ``|dP/dt| <= ramp_mw_per_s`` allows, from ``p0_mw``.

    Without a ramp limit in the parameter set the request is returned unchanged.
    """
    p = np.asarray(p_mw, dtype=float)
    if not dt_s > 0:
        raise ValueError(f"ramp: dt_s expected > 0 s, found {dt_s}")
    if pcs.ramp_mw_per_s is None:
        return p.copy()
    return _ramp(np.ascontiguousarray(p.ravel()), float(dt_s), pcs.ramp_mw_per_s * dt_s, float(p0_mw)).reshape(p.shape)


def q_setpoint(p_mw, v_pu, pcs: PcsModel):
    """Reactive power set point (Mvar, + delivered) in the PCS's ``q_mode``, before the capability limit.

    ``pf``: ``Q = |P| tan(acos(pf))`` with the sign of ``pf_sign`` (+1 delivering, -1 absorbing); ``qv``: the Q(V)
    characteristic ``qv_q_pu`` (per unit of ``sn_mva``) against ``qv_v_pu``, linear between points and flat beyond;
    ``poc_pf``: zero here (the EMS sets Q to hold the power factor at the point of connection).
    """
    p = np.asarray(p_mw, dtype=float)
    if pcs.q_mode == "pf":
        return pcs.pf_sign * np.abs(p) * np.tan(np.arccos(pcs.pf))
    if pcs.q_mode == "qv":
        v = np.broadcast_to(np.asarray(v_pu, dtype=float), p.shape)
        return np.interp(v, pcs.qv_v_pu, pcs.qv_q_pu) * pcs.sn_mva
    return np.zeros_like(p)


def standby_mw(p_ac_mw, pcs: PcsModel):
    """PCS standby draw (MW, a load) at the steps where it idles (``|P| < p_min_fraction P_rated``)."""
    p = np.asarray(p_ac_mw, dtype=float)
    return np.where(np.abs(p) < pcs.p_min_fraction * pcs.p_rated_mw, pcs.standby_kw / 1e3, 0.0)
