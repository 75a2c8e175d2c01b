"""Cell electro-thermal model: a two-RC equivalent circuit with a lumped thermal node, stepped by numba kernels.

Written here rather than taken from a library: PyBaMM's Thevenin model is about 1,000 times too slow for every cell
of a 16 MWh system (battery issue), and no library offers an exact, limit-aware, batch-over-cells ECM kernel.

Model (Plett [1]_, ch. 2 and 3; heat after Bernardi et al. [2]_), current ``I`` positive when discharging
(DESIGN.md), SOC ``z``, RC voltages ``v1``, ``v2``, cell temperature ``T`` (K)::

    dz/dt   = -I / Q                                 Q = capacity in A s
    dv_i/dt = -v_i / tau_i + I / C_i                 C_i = tau_i / R_i        (i = 1, 2)
    v       = OCV(z, T) - h sgn(I) - v1 - v2 - R0 I  OCV = OCV_ref(z) + (T - T_ref) dU/dT(z)
    q_irr   = R0 I^2 + h |I| + v1^2 / R1 + v2^2 / R2
    q_rev   = -I T dU/dT                             (> 0: heat released; Bernardi's reversible term)
    C_th dT/dt = q_irr + q_rev - (T - T_amb) / R_th

Discretisation (step ``dt``, current ``I`` constant over the step, parameters ``R_i, tau_i, R0`` evaluated at the
step's initial SOC and temperature; ``OCV`` and ``dU/dT`` follow the SOC path exactly; ``T`` in the OCV and in
``q_rev`` is the step's initial temperature):

- RC branches: exact exponential update ``v_i' = a_i v_i + (1 - a_i) R_i I``, ``a_i = exp(-dt / tau_i)`` [1]_ (3.4),
  stable for any ``dt``; their losses are the exact step means of ``v_i(t)^2 / R_i``.
- SOC is linear in time over the step, so the step mean of ``OCV`` is the exact mean of the piecewise-linear table
  over the SOC interval (from its cumulative integral); likewise ``dU/dT`` in ``q_rev``.
- Thermal node: exact exponential update for the step's constant heat ``q = q_irr + q_rev``.

Reported voltages, currents and heats are means over the step (DESIGN.md: a value at a timestamp is the mean over
the interval that starts there); ``v_end`` and the states are at the end of the step. With these definitions the
following hold exactly (to rounding) for every step, and the tests check them:

- Gibbs (electrical) balance: ``v I dt = Q [G(z0) - G(z1)] - q_irr dt - p_rc dt`` with ``G(z) = int OCV(z', T0) dz'``
  and ``p_rc dt = sum_i C_i (v_i'^2 - v_i^2) / 2`` the change of energy held in the RC capacitors.
- Enthalpy balance: ``Q [H(z0) - H(z1)] = v I dt + (q_irr + q_rev) dt + p_rc dt`` with
  ``H = int (OCV - T0 dU/dT) dz'``.
- Thermal balance: ``C_th (T' - T) = (q_irr + q_rev - q_amb) dt``.

Limits: each step the requested current (or the current that delivers the requested power) is clamped to the
current limits and to the charge left in ``[0, 1]`` SOC; then its magnitude is reduced (never its sign reversed)
until the terminal voltage at the start, end and mean of the step stays in ``[v_min, v_max]`` and the cell
temperature at the end of the step stays in ``[t_min, t_max]``, where for the upper temperature limit the energy
still held in the RC capacitors (released as heat when the current stops) is counted in advance. The terminal
voltage within a step is monotone or concave (convex when charging) wherever the OCV table is linear, so start and
end bound it. The guarantee holds when the ambient stays in ``[t_min, t_max - E_rc / C_th]`` (``E_rc`` the largest
energy the RC capacitors hold, a few hundredths of a kelvin for a 280 Ah cell) and the cell starts inside the
limits; if no current keeps a limit (a cell at rest outside it), the current is zero and the step flagged.

Performance: about 1e7 cell-steps/s on one thread in current mode and about half that in power mode (measured on
the 2-core AMD EPYC development machine, 1000 cells x 8640 steps at 1 s). This is the single-cell reference kernel,
generic in the parameter set (limits by bisection on the exact step; calibration uses it). The same model compiled
for one parameter set, for one or a few cells, is :class:`twin.battery.fastcell.CompiledCell` (the same numbers, a
day at 1 s in about 0.6 ms for a constant-parameter cell and 5 ms for the full seed cell; the PyBaMM comparison uses
it); systems of many cells run in :mod:`twin.battery.system`, whose kernel steps the same model vectorised across
cells (about 1e8 cell-steps/s on one thread with racks coupled, thermal network and BMS; the two agree to 0.01 uV,
tests/test_battery_system.py).

References
----------
.. [1] G. L. Plett, *Battery Management Systems, Vol. 1: Battery Modeling*, Artech House, 2015.
.. [2] D. Bernardi, E. Pawlikowski, J. Newman, "A general energy balance for battery systems",
   J. Electrochem. Soc. 132 (1985) 5-12.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .params import CellParams, PackedCell, pack

__all__ = ["simulate_current", "simulate_power", "to_dataset", "run_kernel", "UNITS", "LIMIT_FLAGS", "MODE_CURRENT", "MODE_POWER"]

#: bits of the ``flag`` output
LIMIT_FLAGS = {"current": 1, "soc": 2, "voltage": 4, "temperature": 8, "power_not_deliverable": 16,
               "no_feasible_current": 32}
F_CUR, F_SOC, F_VOLT, F_TEMP, F_POW, F_NONE = 1, 2, 4, 8, 16, 32
MODE_CURRENT, MODE_POWER = 0, 1

#: name -> (units, long_name) of the outputs
UNITS = {
    "v": ("V", "terminal voltage, mean over the step"),
    "v_end": ("V", "terminal voltage at the end of the step"),
    "i": ("A", "applied cell current (positive discharging), constant over the step"),
    "p": ("W", "electrical power at the terminals (positive discharging), mean over the step"),
    "soc": ("1", "state of charge at the end of the step"),
    "t_degc": ("degC", "cell temperature at the end of the step"),
    "v_rc1": ("V", "voltage of the first RC pair at the end of the step"),
    "v_rc2": ("V", "voltage of the second RC pair at the end of the step"),
    "q_irr_w": ("W", "irreversible heat (R0, RC pairs, hysteresis), mean over the step"),
    "q_rev_w": ("W", "reversible (entropic) heat -I T dU/dT, mean over the step"),
    "q_amb_w": ("W", "heat from the cell to ambient, mean over the step"),
    "p_rc_w": ("W", "rate of change of the energy held in the RC capacitors, mean over the step"),
    "flag": ("1", "limit flags (bits: 1 current, 2 SOC, 4 voltage, 8 temperature, 16 power not deliverable, "
                  "32 no feasible current)"),
}
_FLOAT_OUT = ("v", "v_end", "i", "soc", "t_degc", "v_rc1", "v_rc2", "q_irr_w", "q_rev_w", "q_amb_w", "p_rc_w")

# --------------------------------------------------------------------------------------------------------------
# table helpers (linear in SOC, constant beyond the ends)


@njit(cache=True, error_model="numpy", inline="always")
def _region(x, xs):
    """-1 below the grid, n-1 at or above its last point, else k with xs[k] <= x < xs[k+1]."""
    n = xs.size
    if x < xs[0]:
        return -1
    if x >= xs[n - 1]:
        return n - 1
    lo = 0
    hi = n - 1
    while hi - lo > 1:
        mid = (lo + hi) >> 1
        if xs[mid] <= x:
            lo = mid
        else:
            hi = mid
    return lo


@njit(cache=True, error_model="numpy", inline="always")
def _weight(x, k, xs):
    """Interpolation weight of ``x`` in region ``k`` (one division shared by every table on the grid)."""
    if k < 0 or k >= xs.size - 1:
        return 0.0
    return (x - xs[k]) / (xs[k + 1] - xs[k])


@njit(cache=True, error_model="numpy", inline="always")
def _lerp(k, w, ys):
    n = ys.size
    if k < 0:
        return ys[0]
    if k >= n - 1:
        return ys[n - 1]
    return ys[k] + w * (ys[k + 1] - ys[k])


@njit(cache=True, error_model="numpy", inline="always")
def _cum(x, k, xs, ys, cs):
    """Integral of the table from xs[0] to x (exact for the piecewise-linear, end-constant table)."""
    n = xs.size
    if k < 0:
        return (x - xs[0]) * ys[0]
    if k >= n - 1:
        return cs[n - 1] + (x - xs[n - 1]) * ys[n - 1]
    dx = x - xs[k]
    s = (ys[k + 1] - ys[k]) / (xs[k + 1] - xs[k])
    return cs[k] + dx * (ys[k] + 0.5 * s * dx)


@njit(cache=True, error_model="numpy", inline="always")
def _path_means(z0, z1, k0, sg, ocv, dudt, ocvi, dudti, dtk):
    """Means of OCV(z, T0) and dU/dT over the SOC interval between z0 and z1, OCV at z1 and the region of z1."""
    k1 = _region(z1, sg)
    w1 = _weight(z1, k1, sg)
    ocv1 = _lerp(k1, w1, ocv) + dtk * _lerp(k1, w1, dudt)
    if k0 == k1:  # one linear piece: the mean is the value at the midpoint (exact, no cancellation)
        zm = 0.5 * (z0 + z1)
        wm = _weight(zm, k0, sg)
        d = _lerp(k0, wm, dudt)
        return _lerp(k0, wm, ocv) + dtk * d, d, ocv1
    dz = z0 - z1
    d = (_cum(z0, k0, sg, dudt, dudti) - _cum(z1, k1, sg, dudt, dudti)) / dz
    u = (_cum(z0, k0, sg, ocv, ocvi) - _cum(z1, k1, sg, ocv, ocvi)) / dz + dtk * d
    return u, d, ocv1


_BLOCK = 64  # cells stepped together in the time loop
_SMALL = 2e-3  # |d| below which exp(d) and expm1(d) come from their Taylor series (error < 1e-16 relative)


@njit(cache=True, error_model="numpy", inline="always")
def _expm1_small(d):
    return d * (1.0 + d * (0.5 + d * (1.0 / 6.0 + d * (1.0 / 24.0 + d * (1.0 / 120.0 + d / 720.0)))))


@njit(cache=True, error_model="numpy", inline="always")
def _decay(y, yr, ar, mr):
    """``a = exp(y)`` and ``m = 1 - a`` from the cached ``(yr, ar = exp(yr), mr = 1 - ar)``: by Taylor series while
    ``|y - yr| < _SMALL``, else evaluated afresh (and cached). Returns ``yr, ar, mr, a, m``."""
    d = y - yr
    if not abs(d) < _SMALL:
        yr = y
        d = 0.0
        ar = math.exp(y)
        mr = -math.expm1(y)
    em = _expm1_small(d)
    return yr, ar, mr, ar + ar * em, mr - ar * em


@njit(cache=True, error_model="numpy", inline="always")
def _sign(i, h):
    if i > 0.0:
        return h
    if i < 0.0:
        return -h
    return 0.0


# --------------------------------------------------------------------------------------------------------------
# one step at a given current, with the step's parameters frozen


@njit(cache=True, error_model="numpy", inline="always")
def _eval(i, state, pc, sg, ocv, dudt, ocvi, dudti):
    """One step at current ``i`` (A): end states, step-mean voltage and heats, and the limits it breaks.

    ``state = (z0, k0, ocv0, v10, v20, t0, ta, dtk)``: SOC, its table region, OCV, RC voltages (V), temperature
    and ambient (K) at the start, ``T0 - T_ref``; ``pc``: the step's frozen parameters (see ``run_kernel``).

    Returns ``z1, v_mean, v_end, v1_end, v2_end, T1, q_irr, q_rev, q_amb, bits`` (bits: F_VOLT, F_TEMP).
    """
    z0, k0, ocv0, v10, v20, t0, ta, dtk = state
    kz, r0, r1, r2, g1, g2, a1, a2, ph1, ph2, pp1, pp2, cc1, cc2, h, rth, grth, ath, phth, gcth, vmin, vmax, tmin, \
        tmax = pc
    z1 = z0 - i * kz
    u, d, ocv1 = _path_means(z0, z1, k0, sg, ocv, dudt, ocvi, dudti, dtk)
    hs = _sign(i, h)
    # RC pairs: v(t) = vinf + (v0 - vinf) exp(-t/tau); exact means of v and v^2 over the step (Plett 2015, 3.4)
    vi1 = r1 * i
    vi2 = r2 * i
    d1 = v10 - vi1
    d2 = v20 - vi2
    v1e = vi1 + d1 * a1
    v2e = vi2 + d2 * a2
    v1m = vi1 + d1 * ph1
    v2m = vi2 + d2 * ph2
    l1 = (vi1 * vi1 + 2.0 * vi1 * d1 * ph1 + d1 * d1 * pp1) * g1
    l2 = (vi2 * vi2 + 2.0 * vi2 * d2 * ph2 + d2 * d2 * pp2) * g2
    ri = r0 * i
    v_start = ocv0 - hs - v10 - v20 - ri
    v_mean = u - hs - v1m - v2m - ri
    v_end = ocv1 - hs - v1e - v2e - ri
    q_irr = ri * i + hs * i + l1 + l2
    q_rev = -i * t0 * d  # Bernardi 1985, I > 0 discharging
    # thermal node: exact update for the constant heat q over the step
    ts = ta + (q_irr + q_rev) * rth
    t1 = ts + (t0 - ts) * ath
    q_amb = (ts - ta + (t0 - ts) * phth) * grth
    bits = 0
    if min(v_start, v_mean, v_end) < vmin or max(v_start, v_mean, v_end) > vmax:
        bits |= F_VOLT
    # the energy still in the RC capacitors becomes heat when the current stops: counted in advance
    if t1 + 0.5 * (cc1 * v1e * v1e + cc2 * v2e * v2e) * gcth > tmax or t1 < tmin:
        bits |= F_TEMP
    return z1, v_mean, v_end, v1e, v2e, t1, q_irr, q_rev, q_amb, bits


@njit(cache=True, error_model="numpy", inline="always")
def _current_for_power(p, z0, k0, ocv0, v10, v20, dt, cq, dtk, r0, r1, r2, ph1, ph2, h, sg, ocv, dudt, ocvi,
                       dudti):
    """Current (A) whose step-mean terminal power ``I v(I)`` equals ``p`` (W), and a flag if ``p`` is beyond reach.

    ``v(I) = U(I) - h sgn(I) - c - R I`` with ``U`` the mean OCV over the step's SOC path, ``c`` the decaying part
    of the RC voltages and ``R = R0 + sum R_i (1 - phi_i)`` the step's effective resistance. The quadratic
    ``R I^2 - E I + p = 0`` with the OCV frozen at the start gives the physical (smaller-magnitude) root, refined
    by Newton's method on the exact ``I v(I) - p``; if the discriminant is negative, or Newton passes the
    maximum-power point, the current of (about) maximum power is returned with F_POW.
    """
    if p == 0.0:
        return 0.0, 0
    hs = h if p > 0.0 else -h
    c = v10 * ph1 + v20 * ph2
    rl = r0 + r1 * (1.0 - ph1) + r2 * (1.0 - ph2)
    e = ocv0 - hs - c
    disc = e * e - 4.0 * rl * p
    if disc <= 0.0:
        return e / (2.0 * rl), F_POW
    i = 2.0 * p / (e + math.sqrt(disc))  # the smaller root, written without cancellation
    for _ in range(30):
        u, d, ocv1 = _path_means(z0, z0 - i * dt / cq, k0, sg, ocv, dudt, ocvi, dudti, dtk)
        v = u - hs - c - rl * i
        f = i * v - p
        if abs(f) <= 1e-14 * abs(p):
            return i, 0
        fp = v + (ocv1 - u) - rl * i  # d(I v)/dI, using dU/dI = (OCV(z1) - U) / I
        if fp <= 0.0:
            return i, F_POW  # past the maximum-power point
        i -= f / fp
    return i, 0


# --------------------------------------------------------------------------------------------------------------
# the kernel


@njit(cache=True, error_model="numpy", parallel=True)
def run_kernel(mode, sg, ocv, dudt, ocvi, dudti, rsg, r0t, r1t, tau1t, r2t, tau2t, scal, cap_scale, r_scale,
               req, t_amb_k, dt, z, v1, v2, tk, o_v, o_vend, o_i, o_soc, o_t, o_v1, o_v2, o_qirr, o_qrev, o_qamb,
               o_prc, o_flag):
    """Step ``n`` cells over ``nt`` steps of ``dt`` seconds; the state arrays are updated in place.

    Parameters
    ----------
    mode : int
        ``MODE_CURRENT`` (``req`` in A, positive discharging) or ``MODE_POWER`` (``req`` in W at the terminals,
        positive discharging). Use :func:`simulate_current` / :func:`simulate_power`; this is their shared core,
        exposed so that system models can stream long horizons in chunks into preallocated outputs.
    sg, ocv, dudt, ocvi, dudti, rsg, r0t, r1t, tau1t, r2t, tau2t, scal : ndarray
        The packed parameter set (:meth:`twin.battery.params.PackedCell.arrays`).
    cap_scale, r_scale : ndarray, shape (n,)
        Per-cell factors on capacity and on all resistances (cell-to-cell spread; 1 for the nominal cell).
    req : ndarray, shape (n or 1, nt)
        Requested current (A) or power (W) per step.
    t_amb_k : ndarray, shape (n or 1, nt)
        Ambient temperature per step in K.
    dt : float
        Step in s.
    z, v1, v2, tk : ndarray, shape (n,)
        Initial SOC, RC voltages (V) and temperature (K); on return, the final ones.
    o_v, o_vend, o_i, o_soc, o_t, o_v1, o_v2, o_qirr, o_qrev, o_qamb, o_prc, o_flag : ndarray, shape (n, nt)
        Outputs (see ``UNITS``; ``o_t`` in K), written in place.

    Notes
    -----
    ``exp`` of the Arrhenius factors and of ``-dt/tau`` are updated from the last full evaluation by their Taylor
    series while the argument has moved by less than 2e-3 (error below 1e-16 relative), so a step usually costs no
    transcendental function.
    """
    n = z.size
    nt = req.shape[1]
    t_ref, e0, e1, e2 = scal[1], scal[2], scal[3], scal[4]
    cth, rth = scal[5], scal[6]
    vmin, vmax, imch, imdis, tmin, tmax, h = scal[7], scal[8], scal[9], scal[10], scal[11], scal[12], scal[13]
    emax = max(e0, e1, e2, 1.0)
    yth = -dt / (rth * cth)
    ath = math.exp(yth)
    phth = -math.expm1(yth) / -yth
    idt = 1.0 / dt
    grth = 1.0 / rth
    gcth = 1.0 / cth
    nblocks = (n + _BLOCK - 1) // _BLOCK
    for b in prange(nblocks):  # blocks of cells are independent: numba threads share them out
        c0 = b * _BLOCK
        nb = min(_BLOCK, n - c0)
        # per-cell state and exp caches of this block of cells (cells interleave in the time loop so that the
        # CPU overlaps their independent dependency chains)
        st = np.empty((14, nb))
        for j in range(nb):
            st[0, j], st[1, j], st[2, j], st[3, j] = z[c0 + j], v1[c0 + j], v2[c0 + j], tk[c0 + j]
            st[4, j] = np.nan
            st[5, j] = st[6, j] = st[7, j] = 1.0
            st[8, j] = st[11, j] = np.nan
            st[9, j] = st[10, j] = st[12, j] = st[13, j] = 0.0
        for k in range(nt):
            for j in range(nb):
                c = c0 + j
                cq = scal[0] * cap_scale[c]
                rsc = r_scale[c]
                rc = c if req.shape[0] > 1 else 0
                ac = c if t_amb_k.shape[0] > 1 else 0
                zc, v1c, v2c, tc = st[0, j], st[1, j], st[2, j], st[3, j]
                xr, f0r, f1r, f2r = st[4, j], st[5, j], st[6, j], st[7, j]
                y1r, a1r, m1r, y2r, a2r, m2r = st[8, j], st[9, j], st[10, j], st[11, j], st[12, j], st[13, j]
                ta = t_amb_k[ac, k]
                # parameters at the step's initial SOC and temperature (Arrhenius, REFERENCE.md)
                x = 1.0 / tc - 1.0 / t_ref
                dx = x - xr
                if not abs(dx) * emax < _SMALL:
                    xr = x
                    dx = 0.0
                    f0r = math.exp(e0 * x)
                    f1r = math.exp(e1 * x)
                    f2r = math.exp(e2 * x)
                f0 = f0r + f0r * _expm1_small(e0 * dx)
                f1 = f1r + f1r * _expm1_small(e1 * dx)
                f2 = f2r + f2r * _expm1_small(e2 * dx)
                kr = _region(zc, rsg)
                wr = _weight(zc, kr, rsg)
                r0 = _lerp(kr, wr, r0t) * f0 * rsc
                r1 = _lerp(kr, wr, r1t) * f1 * rsc
                r2 = _lerp(kr, wr, r2t) * f2 * rsc
                tau1 = _lerp(kr, wr, tau1t) * f1
                tau2 = _lerp(kr, wr, tau2t) * f2
                # a = exp(y), m = 1 - a, y = -dt/tau (exact RC update, Plett 2015, 3.4)
                y1r, a1r, m1r, a1, m1 = _decay(-dt / tau1, y1r, a1r, m1r)
                y2r, a2r, m2r, a2, m2 = _decay(-dt / tau2, y2r, a2r, m2r)
                ph1 = m1 * tau1 * idt  # mean of exp(-t/tau) over the step
                ph2 = m2 * tau2 * idt
                pp1 = 0.5 * ph1 * (2.0 - m1)  # mean of exp(-2t/tau): (1 - a^2) tau / (2 dt)
                pp2 = 0.5 * ph2 * (2.0 - m2)
                g1 = 1.0 / r1
                g2 = 1.0 / r2
                cc1 = tau1 * g1
                cc2 = tau2 * g2
                dtk = tc - t_ref
                k0 = _region(zc, sg)
                w0 = _weight(zc, k0, sg)
                ocv0 = _lerp(k0, w0, ocv) + dtk * _lerp(k0, w0, dudt)
                kz = dt / cq
                flag = 0
                # ---- the requested current
                if mode == MODE_CURRENT:
                    ic = req[rc, k]
                else:
                    ic, pflag = _current_for_power(req[rc, k], zc, k0, ocv0, v1c, v2c, dt, cq, dtk, r0, r1, r2, ph1,
                                                   ph2, h, sg, ocv, dudt, ocvi, dudti)
                    flag |= pflag
                # ---- current and SOC limits
                if ic > imdis:
                    ic = imdis
                    flag |= F_CUR
                elif ic < -imch:
                    ic = -imch
                    flag |= F_CUR
                hi = zc * cq * idt
                lo = -(1.0 - zc) * cq * idt
                if ic > hi:
                    ic = max(hi, 0.0)
                    flag |= F_SOC
                elif ic < lo:
                    ic = min(lo, 0.0)
                    flag |= F_SOC
                # ---- the step; if it breaks a voltage or temperature limit, reduce |I| = s |ic| by bisection
                # on s in [0, 1] (one evaluation site: each pass evaluates the step at the current trial)
                state = (zc, k0, ocv0, v1c, v2c, tc, ta, dtk)
                pc = (kz, r0, r1, r2, g1, g2, a1, a2, ph1, ph2, pp1, pp2, cc1, cc2, h, rth, grth, ath, phth, gcth,
                      vmin, vmax, tmin, tmax)
                s = 1.0
                s_lo = 0.0
                s_hi = 1.0
                final = False
                while True:
                    z1, vm, ve, v1e, v2e, t1, qi, qr, qa, bits = _eval(s * ic, state, pc, sg, ocv, dudt, ocvi,
                                                                        dudti)
                    if final:
                        if bits != 0:  # not even at rest: the cell is outside a limit by itself
                            flag |= F_NONE
                        break
                    if s == 1.0:
                        if bits == 0:
                            break
                        flag |= bits
                    elif bits == 0:
                        s_lo = s
                    else:
                        s_hi = s
                    s = 0.5 * (s_lo + s_hi)
                    if s <= s_lo or s >= s_hi:
                        s = s_lo
                        final = True
                ic = s * ic
                o_prc[c, k] = 0.5 * (cc1 * (v1e * v1e - v1c * v1c) + cc2 * (v2e * v2e - v2c * v2c)) * idt
                o_v[c, k] = vm
                o_vend[c, k] = ve
                o_i[c, k] = ic
                o_qirr[c, k] = qi
                o_qrev[c, k] = qr
                o_qamb[c, k] = qa
                o_flag[c, k] = flag
                zc, v1c, v2c, tc = z1, v1e, v2e, t1
                o_soc[c, k] = zc
                o_t[c, k] = tc
                o_v1[c, k] = v1c
                o_v2[c, k] = v2c
                st[0, j], st[1, j], st[2, j], st[3, j] = zc, v1c, v2c, tc
                st[4, j], st[5, j], st[6, j], st[7, j] = xr, f0r, f1r, f2r
                st[8, j], st[9, j], st[10, j], st[11, j], st[12, j], st[13, j] = y1r, a1r, m1r, y2r, a2r, m2r
        for j in range(nb):
            z[c0 + j], v1[c0 + j], v2[c0 + j], tk[c0 + j] = st[0, j], st[1, j], st[2, j], st[3, j]


# --------------------------------------------------------------------------------------------------------------
# Python wrappers


def _as_packed(params) -> PackedCell:
    return params if isinstance(params, PackedCell) else pack(params)


def _inputs(request, dt_s, t_amb_degc, soc0, t0_degc, v_rc1_0, v_rc2_0, cap_scale, r_scale, scalar_ambient=False):
    """Checked kernel inputs: ``req2, ta2`` (rows 1 or n, ambient in K), ``z, tk, v1, v2, cs, rs`` (n,) and whether
    the outputs are 1-D (shared with :mod:`twin.battery.fastcell`; with ``scalar_ambient`` a scalar ambient stays
    one value, shape (1, 1))."""
    req = np.asarray(request, dtype=np.float64)
    one_d = req.ndim == 1
    req2 = np.ascontiguousarray(np.atleast_2d(req))
    nt = req2.shape[1]
    states = [np.atleast_1d(np.asarray(s, dtype=np.float64)) for s in (soc0, t0_degc, v_rc1_0, v_rc2_0,
                                                                      cap_scale, r_scale)]
    n = max([req2.shape[0]] + [s.size for s in states])
    if req2.shape[0] not in (1, n):
        raise ValueError(f"request has {req2.shape[0]} rows, expected 1 or {n} cells")
    one_d = one_d and n == 1
    z, t0, v1, v2, cs, rs = (np.ascontiguousarray(np.broadcast_to(s, (n,))).copy() for s in states)
    if np.any((z < 0) | (z > 1)):
        raise ValueError("soc0 must be within 0-1")
    if not dt_s > 0:
        raise ValueError(f"dt_s must be > 0, got {dt_s}")
    ta = np.asarray(t_amb_degc, dtype=np.float64) + 273.15
    if scalar_ambient and ta.ndim == 0:
        return req2, ta.reshape(1, 1), z, t0 + 273.15, v1, v2, cs, rs, one_d
    ta2 = np.ascontiguousarray(np.broadcast_to(ta, (nt,)) if ta.ndim == 0 else ta)
    ta2 = np.ascontiguousarray(np.atleast_2d(ta2))
    if ta2.shape[1] != nt or ta2.shape[0] not in (1, n):
        raise ValueError(f"t_amb_degc has shape {ta.shape}, expected a scalar, ({nt},) or ({n}, {nt})")
    return req2, ta2, z, t0 + 273.15, v1, v2, cs, rs, one_d


def _simulate(mode, params, request, dt_s, t_amb_degc, soc0, t0_degc, v_rc1_0, v_rc2_0, cap_scale, r_scale):
    pk = _as_packed(params)
    req2, ta2, z, tk, v1, v2, cs, rs, one_d = _inputs(request, dt_s, t_amb_degc, soc0, t0_degc, v_rc1_0, v_rc2_0,
                                                      cap_scale, r_scale)
    n, nt = z.size, req2.shape[1]
    out = {name: np.empty((n, nt)) for name in _FLOAT_OUT}
    out["flag"] = np.zeros((n, nt), dtype=np.int32)
    run_kernel(mode, *pk.arrays(), cs, rs, req2, ta2, float(dt_s), z, v1, v2, tk, out["v"], out["v_end"],
               out["i"], out["soc"], out["t_degc"], out["v_rc1"], out["v_rc2"], out["q_irr_w"], out["q_rev_w"],
               out["q_amb_w"], out["p_rc_w"], out["flag"])
    out["t_degc"] -= 273.15
    out["p"] = out["v"] * out["i"]
    if one_d:
        out = {k: v[0] for k, v in out.items()}
    return out


def simulate_current(params: CellParams | PackedCell, current_a, dt_s: float, t_amb_degc, soc0, t0_degc,
                     v_rc1_0=0.0, v_rc2_0=0.0, cap_scale=1.0, r_scale=1.0) -> dict[str, np.ndarray]:
    """Simulate cells under a requested current profile (held constant over each step).

    Parameters
    ----------
    params : CellParams or PackedCell
        The cell parameter set (:func:`twin.battery.params.load_cell`).
    current_a : array_like, shape (nt,) or (n, nt)
        Requested current per step in A, positive discharging; limited as the module docstring says.
    dt_s : float
        Step in s (1 ms to 1 h and beyond: the update is exact for piecewise-constant current).
    t_amb_degc : float or array_like, shape (nt,) or (n, nt)
        Ambient temperature per step in degC.
    soc0, t0_degc, v_rc1_0, v_rc2_0 : float or array_like, shape (n,)
        Initial SOC (0-1), cell temperature (degC) and RC voltages (V).
    cap_scale, r_scale : float or array_like, shape (n,)
        Per-cell factors on capacity and resistances (cell-to-cell spread).

    Returns
    -------
    dict of ndarray
        The outputs named in :data:`UNITS` (units and long names there), shape (nt,) for one cell given 1-D
        input, else (n, nt).
    """
    return _simulate(MODE_CURRENT, params, current_a, dt_s, t_amb_degc, soc0, t0_degc, v_rc1_0, v_rc2_0,
                     cap_scale, r_scale)


def simulate_power(params: CellParams | PackedCell, power_w, dt_s: float, t_amb_degc, soc0, t0_degc,
                   v_rc1_0=0.0, v_rc2_0=0.0, cap_scale=1.0, r_scale=1.0) -> dict[str, np.ndarray]:
    """Simulate cells under a requested terminal power profile (held constant over each step).

    Each step the current is the one whose step-mean terminal power equals the request (see
    :func:`_current_for_power`); requests beyond the maximum power are flagged (bit 16) and served at the
    maximum-power current, and then all limits apply as in :func:`simulate_current`.

    Parameters
    ----------
    power_w : array_like, shape (nt,) or (n, nt)
        Requested power at the cell terminals per step in W, positive discharging.

    Other parameters and the return value are as in :func:`simulate_current`.
    """
    return _simulate(MODE_POWER, params, power_w, dt_s, t_amb_degc, soc0, t0_degc, v_rc1_0, v_rc2_0,
                     cap_scale, r_scale)


def to_dataset(out: dict[str, np.ndarray], dt_s: float):
    """The outputs as an xarray Dataset (dims ``cell``, ``step``; ``units`` and ``long_name`` attributes)."""
    import xarray as xr

    dims = ("cell", "step") if next(iter(out.values())).ndim == 2 else ("step",)
    ds = xr.Dataset({k: (dims, v, {"units": UNITS[k][0], "long_name": UNITS[k][1]}) for k, v in out.items()})
    ds = ds.assign_coords(time_s=("step", np.arange(ds.sizes["step"]) * dt_s, {"units": "s",
                                                                             "long_name": "start of the step"}))
    return ds
