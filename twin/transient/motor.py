"""Induction motors for the RMS (phasor) transient simulator: equivalent circuit from nameplate data, slip dynamics.

The campus's direct-on-line pumps and cooling-tower fans are modelled by the single-cage steady-state equivalent
circuit (IEEE Std 112-2017, IEC 60034-28:2012)::

    Z(s) = Rs + jXs + jXm || (Rr/s + jXr)

in per unit on the motor's own base: ``S_base`` = rated electrical input in kVA = ``pn_mech / (eff * cos_phi)``
(the base pandapower's ``motor`` element uses) and ``V_base`` = rated voltage, so that at rated voltage and rated
slip the motor draws ``|I| = 1`` pu at ``cos_phi``. Electromagnetic torque in pu of ``S_base / omega_sync`` equals
the air-gap power in pu, ``T_e = |I_r|^2 Rr / s``. The simulator integrates the slip with the swing equation::

    2 H ds/dt = T_load(1 - s) - T_e(v, s)

(``H`` in seconds on ``S_base``, see :func:`inertia_h_s`; e.g. Kundur, "Power System Stability and Control", 1994,
section 7.9).

:func:`fit_circuit` finds the circuit from the data pandapower's motor element and ``models/cooling/*.toml`` hold:
rated mechanical power, efficiency, power factor, locked-rotor current ratio ``lrc_pu`` and R/X at locked rotor.
With the ratios ``Xs/Xr`` and ``Rs/Rr`` fixed (1 by default: the IEEE 112 / IEC 60034-28 convention of splitting the
leakage reactance equally when the stator and rotor shares are not measured, applied here to the resistance as well),
four unknowns remain (Rr, Xr, Xm and the rated slip) for four real equations, solved exactly with
:func:`scipy.optimize.least_squares` (residuals below 1e-12 for the seed motors):

- rated point (V = 1 pu): ``Z(s_rated) = cos_phi + j sin_phi`` (input power ``cos_phi`` pu, i.e. ``pn_mech/eff``,
  at power factor ``cos_phi``);
- locked rotor (s = 1, V = 1 pu): ``|Z(1)| = 1 / lrc_pu`` and ``R/X = rx``.

Losses: the circuit has copper losses only (``Rs|I|^2`` and ``s P_ag``). Core, friction, windage and stray-load
losses are lumped into the mechanical load: the shaft power the circuit delivers at rated slip,
``P_ag (1 - s)``, is the nameplate output plus these other losses, so the circuit's copper-only efficiency
(:attr:`MotorCircuit.efficiency_copper`) is above the nameplate efficiency, by about 2-3 percentage points for IE3
motors of 30-110 kW (copper losses are about half of an IE3 motor's losses, the rest core, friction/windage and
stray; the other losses are reported as :attr:`MotorCircuit.p_other_loss_pu`). The load torque the simulator
applies at the initial operating point is therefore the electromagnetic torque there, which includes these losses.

Limitations (confidence L-M): a single cage fitted to the locked-rotor point reproduces the locked-rotor current
and the breakdown torque well (about 3.5 pu for the seed motors) but underestimates the starting torque of
deep-bar/double-cage rotors (about 0.6-0.8 pu here against 2 pu or more on data sheets), which makes
re-acceleration after a long dip pessimistic. Saturation and the magnetic transients (flux decay, the motor's
short-circuit current contribution in the first cycles) are outside an RMS single-cage model.

Written here rather than taken from a library: pandapower's ``motor`` element keeps only the locked-rotor data for
short circuit and a constant-power load for load flow; no maintained Python package fits an equivalent circuit from
nameplate data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq, least_squares

__all__ = ["MotorCircuit", "fit_circuit", "impedance_pu", "current_pu", "power_pu", "torque_pu", "load_torque_pu",
           "initial_slip", "inertia_h_s", "INERTIA_H_S"]


@dataclass(frozen=True)
class MotorCircuit:
    """Single-cage induction motor equivalent circuit, per unit on the motor's own base.

    Attributes
    ----------
    rs, xs : float
        Stator resistance and leakage reactance, pu.
    xm : float
        Magnetising reactance, pu.
    rr, xr : float
        Rotor resistance and leakage reactance referred to the stator, pu.
    slip_rated : float
        Slip at the rated operating point, pu of synchronous speed.
    torque_rated_pu : float
        Electromagnetic torque at rated slip and 1 pu voltage, pu of ``S_base / omega_sync``.
    s_base_kva : float
        Base apparent power, kVA: rated electrical input ``pn_mech_kw / (eff * cos_phi)``.
    efficiency_copper : float
        Shaft power over input power at the rated point with copper losses only (0-1), see the module docstring.
    p_other_loss_pu : float
        Losses other than copper at the rated point, pu of ``s_base_kva``: lumped into the mechanical load.
    fit_residual : float
        Largest absolute residual of the fit, pu of impedance (relative to ``|Z|`` at each point).
    """

    rs: float
    xs: float
    xm: float
    rr: float
    xr: float
    slip_rated: float
    torque_rated_pu: float
    s_base_kva: float
    efficiency_copper: float
    p_other_loss_pu: float
    fit_residual: float

    def _thevenin(self):
        """Thevenin voltage magnitude (per 1 pu terminal voltage) and impedance seen by the rotor branch."""
        zs = self.rs + 1j * self.xs
        zm = 1j * self.xm
        return abs(zm / (zs + zm)), zs * zm / (zs + zm)

    @property
    def breakdown_slip(self) -> float:
        """Slip of maximum electromagnetic torque, pu: ``Rr / |Z_th + jXr|`` (Thevenin equivalent)."""
        _, zth = self._thevenin()
        return self.rr / abs(zth + 1j * self.xr)

    @property
    def breakdown_torque_pu(self) -> float:
        """Maximum (breakdown) electromagnetic torque at 1 pu voltage, pu of ``S_base / omega_sync``."""
        vth, zth = self._thevenin()
        return vth**2 / (2.0 * (zth.real + abs(zth + 1j * self.xr)))


def _check_open(name, value, lo, hi):
    """Raise ValueError unless ``lo < value < hi`` (and finite)."""
    value = float(value)
    if not (np.isfinite(value) and lo < value < hi):
        raise ValueError(f"{name} = {value!r} is outside the expected range ({lo}, {hi})")
    return value


def fit_circuit(pn_mech_kw, cos_phi, efficiency_percent, lrc_pu, rx, *, xs_over_xr=1.0, rs_over_rr=1.0):
    """Fit a single-cage equivalent circuit to nameplate and locked-rotor data.

    Solves the four real equations of the module docstring (rated input power and power factor, locked-rotor
    current and R/X) for Rr, Xr, Xm and the rated slip, with ``Xs = xs_over_xr * Xr`` and
    ``Rs = rs_over_rr * Rr`` (IEEE Std 112-2017 / IEC 60034-28:2012 style split).

    Parameters
    ----------
    pn_mech_kw : float
        Rated mechanical (shaft) power, kW.
    cos_phi : float
        Rated power factor, in (0, 1).
    efficiency_percent : float
        Rated efficiency, %, in (0, 100).
    lrc_pu : float
        Locked-rotor current over rated current at rated voltage, > 1.
    rx : float
        Resistance over reactance at locked rotor, in (0, 1).
    xs_over_xr : float, default 1.0
        Stator over rotor leakage reactance.
    rs_over_rr : float, default 1.0
        Stator over rotor resistance.

    Returns
    -------
    MotorCircuit

    Raises
    ------
    ValueError
        If a parameter is outside its range (the message names it), or no circuit reproduces the data.
    """
    pn = _check_open("pn_mech_kw", pn_mech_kw, 0.0, np.inf)
    cphi = _check_open("cos_phi", cos_phi, 0.0, 1.0)
    eff = _check_open("efficiency_percent", efficiency_percent, 0.0, 100.0) / 100.0
    lrc = _check_open("lrc_pu", lrc_pu, 1.0, np.inf)
    rx = _check_open("rx", rx, 0.0, 1.0)
    kx = _check_open("xs_over_xr", xs_over_xr, 0.0, np.inf)
    kr = _check_open("rs_over_rr", rs_over_rr, 0.0, np.inf)
    z_rated = cphi + 1j * np.sqrt(1.0 - cphi**2)
    z_locked = (rx + 1j) / (lrc * np.hypot(rx, 1.0))

    def z_of(rr, xr, xm, s):
        return kr * rr + 1j * kx * xr + 1.0 / (1.0 / (1j * xm) + s / (rr + 1j * s * xr))

    def residuals(q):
        rr, xr, xm, s = np.exp(q)
        d1 = (z_of(rr, xr, xm, 1.0) - z_locked) / abs(z_locked)
        d2 = z_of(rr, xr, xm, s) - z_rated
        return [d1.real, d1.imag, d2.real, d2.imag]

    rr0, xr0 = z_locked.real / (1.0 + kr), z_locked.imag / (1.0 + kx)
    x0 = np.log([rr0, xr0, 1.0 / z_rated.imag, rr0 / cphi])
    sol = least_squares(residuals, x0, xtol=1e-15, ftol=1e-15, gtol=1e-15)
    rr, xr, xm, s = (float(v) for v in np.exp(sol.x))
    res = float(np.max(np.abs(sol.fun)))
    if res > 1e-9 or not s < 1.0:
        raise ValueError(f"no single-cage circuit reproduces cos_phi = {cphi}, lrc_pu = {lrc}, rx = {rx} "
                         f"(largest residual {res:.2e}, rated slip {s:.3g}); check the motor data")
    c = MotorCircuit(rs=kr * rr, xs=kx * xr, xm=xm, rr=rr, xr=xr, slip_rated=s, torque_rated_pu=np.nan,
                     s_base_kva=pn / (eff * cphi), efficiency_copper=np.nan, p_other_loss_pu=np.nan,
                     fit_residual=res)
    t_rated = float(torque_pu(c, 1.0, s))
    p_shaft = t_rated * (1.0 - s)
    return MotorCircuit(rs=c.rs, xs=c.xs, xm=xm, rr=rr, xr=xr, slip_rated=s, torque_rated_pu=t_rated,
                        s_base_kva=c.s_base_kva, efficiency_copper=p_shaft / cphi,
                        p_other_loss_pu=p_shaft - eff * cphi, fit_residual=res)


def impedance_pu(c: MotorCircuit, slip):
    """Input impedance of the equivalent circuit at the given slip.

    Parameters
    ----------
    c : MotorCircuit
    slip : array_like
        Slip, pu of synchronous speed (0 = synchronous, 1 = standstill; negative = generating).

    Returns
    -------
    numpy.ndarray of complex
        ``Z(s)``, pu on the motor's base; finite at ``s = 0`` (rotor branch open).
    """
    s = np.asarray(slip, dtype=float)
    y_rotor = s / (c.rr + 1j * s * c.xr)
    return c.rs + 1j * c.xs + 1.0 / (1.0 / (1j * c.xm) + y_rotor)


def current_pu(c: MotorCircuit, v_pu, slip):
    """Stator current phasor drawn at terminal voltage ``v_pu`` and slip (motor convention), pu.

    Parameters
    ----------
    c : MotorCircuit
    v_pu : array_like, real or complex
        Terminal voltage phasor, pu of the motor's rated voltage.
    slip : array_like
        Slip, pu; broadcast against ``v_pu``.

    Returns
    -------
    numpy.ndarray of complex
        ``I = V / Z(s)``, pu of rated current (on ``S_base``).
    """
    return np.asarray(v_pu) / impedance_pu(c, slip)


def power_pu(c: MotorCircuit, v_pu, slip):
    """Complex input power ``S = V conj(I) = P + jQ`` drawn by the motor, pu of ``S_base`` (load convention)."""
    v = np.asarray(v_pu)
    return v * np.conj(current_pu(c, v, slip))


def torque_pu(c: MotorCircuit, v_pu, slip):
    """Electromagnetic torque at terminal voltage ``v_pu`` and slip.

    The air-gap power ``P_ag = P_in - Rs |I|^2`` in pu equals the torque in pu of ``S_base / omega_sync``
    (IEEE Std 112-2017, equivalent-circuit calculation).

    Parameters
    ----------
    c : MotorCircuit
    v_pu : array_like, real or complex
        Terminal voltage, pu (only its magnitude matters).
    slip : array_like
        Slip, pu; broadcast against ``v_pu``.

    Returns
    -------
    numpy.ndarray
        Electromagnetic torque, pu (positive = motoring for positive slip).
    """
    i = current_pu(c, v_pu, slip)
    return power_pu(c, v_pu, slip).real - c.rs * np.abs(i) ** 2


def load_torque_pu(speed_pu, torque_at_rated_speed_pu, exponent=2.0, *, rated_speed_pu=1.0):
    """Load torque of a pump or fan: ``T = T_rated * (speed / rated_speed)**exponent``.

    Centrifugal pumps and fans follow the affinity laws, torque proportional to speed squared (exponent 2);
    static head or friction can be approximated with a lower exponent. Negative speed gives negative torque
    (the load opposes rotation either way).

    Parameters
    ----------
    speed_pu : array_like
        Shaft speed, pu of synchronous speed (``1 - slip``).
    torque_at_rated_speed_pu : array_like
        Load torque at ``rated_speed_pu``, pu of ``S_base / omega_sync``; normally the motor's electromagnetic
        torque at its initial operating point (which includes the lumped non-copper losses).
    exponent : float, default 2.0
        Speed exponent, >= 0.
    rated_speed_pu : float, default 1.0
        Speed at which ``torque_at_rated_speed_pu`` applies, pu of synchronous speed (e.g. ``1 - initial slip``).

    Returns
    -------
    numpy.ndarray
        Load torque, pu.
    """
    if not exponent >= 0.0:
        raise ValueError(f"exponent = {exponent!r} must be >= 0")
    if not rated_speed_pu > 0.0:
        raise ValueError(f"rated_speed_pu = {rated_speed_pu!r} must be > 0")
    w = np.asarray(speed_pu, dtype=float) / rated_speed_pu
    return np.asarray(torque_at_rated_speed_pu) * np.sign(w) * np.abs(w) ** exponent


def _initial_slip_scalar(c, p, v):
    s_bd = c.breakdown_slip

    def f(s):
        return float(power_pu(c, v, s).real) - p

    p0, p_bd = f(0.0) + p, f(s_bd) + p
    if p > p_bd:
        raise ValueError(f"p_in_pu = {p:.4g} exceeds the input power at breakdown slip ({p_bd:.4g} pu at "
                         f"|v| = {v:.4g} pu): the motor would stall")
    if p < p0:
        raise ValueError(f"p_in_pu = {p:.4g} is below the no-load input power ({p0:.4g} pu at |v| = {v:.4g} pu)")
    return brentq(f, 0.0, s_bd, xtol=1e-14, rtol=1e-13)


def initial_slip(c: MotorCircuit, p_in_pu, v_pu=1.0):
    """Slip at which the motor draws a given input power at a given voltage magnitude (stable branch).

    Input power increases monotonically with slip between 0 and the breakdown slip; the root there is found with
    :func:`scipy.optimize.brentq`.

    Parameters
    ----------
    c : MotorCircuit
    p_in_pu : array_like
        Electrical input power, pu of ``S_base`` (e.g. ``loading_percent/100 * cos_phi`` from the motor data,
        or the load flow's ``p_mw / S_base``).
    v_pu : array_like, default 1.0
        Terminal voltage magnitude, pu; broadcast against ``p_in_pu``.

    Returns
    -------
    float or numpy.ndarray
        Slip, pu, in ``[0, breakdown_slip]``.

    Raises
    ------
    ValueError
        If the power exceeds what the motor draws at breakdown slip (it would stall) or is below its no-load input.
    """
    p, v = np.broadcast_arrays(np.asarray(p_in_pu, dtype=float), np.abs(np.asarray(v_pu)))
    out = np.array([_initial_slip_scalar(c, pi, vi) for pi, vi in zip(p.ravel(), v.ravel(), strict=True)])
    return float(out[0]) if p.ndim == 0 else out.reshape(p.shape)


#: Default inertia constants H (s, on the motor's S_base) of motor plus driven load, confidence L. See
#: :func:`inertia_h_s`.
INERTIA_H_S = {"pump": 0.5, "fan": 2.0}


def inertia_h_s(pn_mech_kw, kind):
    """Default inertia constant of a motor with its driven load, for use when project data are missing.

    ``H = J omega_sync^2 / (2 S_base)``. Defaults (confidence L, typical values; replace with the pump or fan
    supplier's ``J``): pump 0.5 s (motor + impeller + entrained water, typically 0.3-1 s), cooling-tower or
    large axial fan 2.0 s (typically 1-5 s). The motor rotor alone is about 0.1-0.2 s for 4-pole 30-150 kW
    motors (rotor WK^2 after NEMA MG 1 section 14.46's estimate), and rotor and load inertia grow roughly in
    proportion to rating, so the defaults do not depend on ``pn_mech_kw``, which only sets the output shape.

    Parameters
    ----------
    pn_mech_kw : array_like
        Rated mechanical power, kW (> 0).
    kind : {"pump", "fan"}
        Driven load.

    Returns
    -------
    numpy.ndarray or float
        H, s, with the shape of ``pn_mech_kw``.
    """
    if kind not in INERTIA_H_S:
        raise ValueError(f"kind = {kind!r}: expected one of {sorted(INERTIA_H_S)}")
    pn = np.asarray(pn_mech_kw, dtype=float)
    if not np.all(np.isfinite(pn) & (pn > 0)):
        raise ValueError(f"pn_mech_kw = {pn_mech_kw!r} must be finite and > 0")
    h = np.full(pn.shape, INERTIA_H_S[kind])
    return float(h) if h.ndim == 0 else h
