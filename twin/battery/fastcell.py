"""The cell model of :mod:`twin.battery.cell` compiled for one parameter set: one or a few cells, fast.

Same model, same step definitions, limits, flags and outputs as :func:`twin.battery.cell.simulate_current` and
:func:`~twin.battery.cell.simulate_power` (their docstrings and the module docstring of :mod:`twin.battery.cell`
define them, units in :data:`twin.battery.cell.UNITS`). The two return the same numbers: every quantity that feeds
a state or a limit decision (SOC, RC voltages, temperature, current, the terminal voltages and the temperature the
limits are tested on) is computed with the reference kernel's operations in its order, so bit for bit; only the
heat to ambient and the RC power, outputs that feed nothing, are rounded differently (about 1e-13 W).
tests/test_battery_fastcell.py checks every output to 1e-9 (V, A, K, W) and the flags equal. Bit-for-bit agreement
is needed, not only nice: the model has discontinuities that turn a rounding difference into a visible one (the
hysteresis ``h sgn(I)`` at ``I = 0``, and the SOC limit when a cell stops at zero charge, where the SOC left is
rounding noise of either sign and decides whether the next step is flagged), so fused multiply-adds and algebraic
rearrangements that would shorten the step are not used on those quantities.

Why a second kernel: the reference kernel (:func:`twin.battery.cell.run_kernel`) is generic in the parameter set
(tables passed as arrays and searched by bisection every step, every step parameter evaluated afresh) and is written
for many cells stepped together; one cell for a day at 1 s takes it 7-13 ms, where the battery issue asks for 1,000
times PyBaMM's Thevenin model (about 1.2 s here), i.e. about 1 ms. One cell is a sequential recurrence, and the
dependency chains per step are short (a few multiply-adds each for SOC, RC voltages and temperature), so what
counts is the number of operations per step:

- the parameter set is compiled in: table grids, widths, rises, slopes and cumulative integrals (the numbers the
  reference computes at run time) are constants of a generated module, and what the parameter set makes constant is
  folded where folding is exact: resistances constant in SOC, activation energy 0 (Arrhenius factor 1), a constant
  time constant (``exp(-dt / tau)`` once per run), ``dU/dT = 0`` (no entropic terms), no hysteresis;
- the OCV and resistance table pieces holding the SOC are carried from step to step (in a piece: one division and
  one multiply-add per value, as the reference's interpolation; when the SOC leaves the piece the neighbouring
  piece is found by a short walk, and the mean OCV over the step comes from the exact cumulative integral as in the
  reference's ``_path_means``); the OCV, and without hysteresis or entropic term ``OCV - v1 - v2``, at the start of
  a step are the ones computed at the end of the previous step;
- limit tests that cannot act are skipped where a bound proves it, so that the decision is the reference's: the
  SOC limits when the step at the largest current leaves charge and room; the upper temperature limit's exact test
  (RC energy included) when the cell is further from ``t_max`` than the largest RC energy (largest resistance and
  current) can heat it, a bound that holds when the RC resistances do not follow Arrhenius (else the test runs
  every step as in the reference);
- the limit bisection runs only when the step at the requested current breaks a voltage or temperature limit (as
  in the reference), out of line;
- the outputs are views of one memory block, with ``p`` and ``t_degc`` written by the kernel (thirteen fresh
  arrays of a day at 1 s cost page faults of about 3 ms, more than the simulation); one cell with scalar
  arguments is checked without broadcasting (10 us of Python per call instead of 45 us).

:class:`CompiledCell` writes the kernel module (the header generated here from the parameter set, followed by the
kernel template at the end of this file) to the kernel cache directory of :mod:`twin.battery._codegen`, named by a
hash of its source, and imports it; numba caches the compiled code beside it, so a parameter set compiles once per
machine (10-30 s) and later runs start at once. Cells are independent: several cells run in parallel on numba's
threads (``prange``), one cell on the calling thread.

Performance (2-core AMD EPYC development machine, one thread, ``benchmarks/bench_battery.py``): one cell for a day at
1 s in 0.92-0.95 ms (about 38 CPU cycles per step at 3.65 GHz) with the constant-parameter isothermal cell of the
PyBaMM comparison, against 6.5-7 ms for the reference kernel. With the full seed cell (SOC-dependent resistances,
Arrhenius, entropic heat, hysteresis) about 4.6 ms: there the temperature recurrence runs through ``1/T``, the
Taylor-cached Arrhenius factor, the time constants' division and their Taylor-cached decays to the RC losses and
back to ``T`` (about 190 cycles of latency per step), which bit-for-bit agreement with the reference leaves as it
is (Estrin's scheme or fused multiply-adds would shorten it, at the price of rounding apart).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from numba import njit, prange

from ._codegen import load_generated
from .cell import _FLOAT_OUT, MODE_CURRENT, MODE_POWER, _inputs
from .params import CellParams, pack

__all__ = ["CompiledCell", "kernel_source"]

_BEGIN = "# --- kernel template (the generated module is a header of constants followed by this block) ---"


def _f(x: float) -> str:
    x = float(x)
    if math.isinf(x):
        return "math.inf" if x > 0 else "-math.inf"
    return repr(x)


def _arr(xs) -> str:
    return "np.array([" + ", ".join(_f(x) for x in np.ravel(xs)) + "])"


def _pieces(xs, tables, cums=None):
    """Per piece of the grid, the pieces below and above it included (0 and n): bounds ``lo, hi``, anchor ``xa``
    and width ``wd`` (1 outside), and per table its value at the anchor, its rise over the piece (0 outside), its
    slope (0 outside) and its integral from ``xs[0]`` to the anchor.

    Each number is the one the reference kernel computes at run time (``xs[k + 1] - xs[k]``, ``ys[k + 1] - ys[k]``,
    their quotient, :func:`twin.battery.params.pack`'s integrals), so that the arithmetic agrees bit for bit."""
    xs = np.asarray(xs, dtype=float)
    n = xs.size
    lo = np.concatenate([[-math.inf], xs])
    hi = np.concatenate([xs, [math.inf]])
    xa = np.concatenate([[xs[0]], xs])
    wd = np.concatenate([[1.0], np.diff(xs), [1.0]])
    out = []
    for t, ys in enumerate(tables):
        ys = np.asarray(ys, dtype=float)
        dy = np.concatenate([[0.0], np.diff(ys), [0.0]])
        sl = np.concatenate([[0.0], np.diff(ys) / np.diff(xs), [0.0]])
        cs = np.zeros(n) if cums is None else np.asarray(cums[t], dtype=float)
        out.append((np.concatenate([[ys[0]], ys]), dy, sl, np.concatenate([[0.0], cs])))
    return lo, hi, xa, wd, out


def _header(p: CellParams) -> str:
    """Module constants of the kernel for parameter set ``p`` (SI units, temperatures in K)."""
    pk = pack(p)
    (cq, t_ref, e0, e1, e2, cth, rth, vmin, vmax, imch, imdis, tmin, tmax, h) = (float(x) for x in pk.scal)
    lo, hi, xa, wd, ((oy, ody, osl, oc), (dy, ddy, dsl, dc)) = _pieces(pk.soc, [pk.ocv, pk.dudt],
                                                                        [pk.ocv_int, pk.dudt_int])
    tabs = (pk.r0, pk.r1, pk.tau1, pk.r2, pk.tau2)
    r_const = all(np.all(t == t[0]) for t in tabs)
    rlo, rhi, rxa, rwd, rt = _pieces(pk.r_soc, tabs)
    lines = [
        f'"""Cell kernel generated by twin.battery.fastcell for the parameter set {p.description!r}."""',
        "", "import math", "", "import numpy as np", "from numba import njit, prange", "",
        f"_CQ = {_f(cq)}  # capacity (A s)",
        f"_TREF = {_f(t_ref)}  # K",
        f"_E0, _E1, _E2 = {_f(e0)}, {_f(e1)}, {_f(e2)}  # Ea/R_gas of R0, R1, R2 (K)",
        f"_A0, _A1, _A2 = {e0 != 0.0}, {e1 != 0.0}, {e2 != 0.0}",
        f"_ARR = {any(e != 0.0 for e in (e0, e1, e2))}",
        f"_E12 = {e1 == e2}  # the RC pairs' factors are one",
        f"_EMAX = {_f(max(e0, e1, e2, 1.0))}",
        f"_CTH, _RTH = {_f(cth)}, {_f(rth)}  # J/K, K/W",
        f"_VMIN, _VMAX = {_f(vmin)}, {_f(vmax)}",
        f"_IMCH, _IMDIS = {_f(imch)}, {_f(imdis)}",
        f"_TMIN, _TMAX = {_f(tmin)}, {_f(tmax)}",
        f"_H = {_f(h)}",
        f"_HYS = {h != 0.0}",
        f"_DU = {bool(np.any(pk.dudt != 0.0))}  # entropic coefficient not zero",
        "# OCV table pieces (0: below the grid, n: above it): bounds, anchor, width; OCV (V) and dU/dT (V/K) at the",
        "# anchor, their rise over the piece, slope, integral from the first grid point to the anchor",
        f"_OLO = {_arr(lo)}", f"_OHI = {_arr(hi)}", f"_OX = {_arr(xa)}", f"_OW = {_arr(wd)}",
        f"_OY = {_arr(oy)}", f"_ODY = {_arr(ody)}", f"_OSL = {_arr(osl)}", f"_OC = {_arr(oc)}",
        f"_DY = {_arr(dy)}", f"_DDY = {_arr(ddy)}", f"_DSL = {_arr(dsl)}", f"_DC = {_arr(dc)}",
        f"_OJ0 = {len(pk.soc) // 2}",
        "# resistance and time-constant tables at T_ref (ohm, s): constants, or pieces as the OCV's",
        f"_RCONST = {r_const}",
        "_R0K, _R1K, _T1K, _R2K, _T2K = " + ", ".join(str(bool(np.all(t == t[0]))) for t in tabs),
        "_R0C, _R1C, _T1C, _R2C, _T2C = " + ", ".join(_f(t[0]) for t in tabs),
        f"_TAU1_FIXED, _TAU2_FIXED = {r_const and e1 == 0.0}, {r_const and e2 == 0.0}",
        "# largest R_i and C_i = tau_i / R_i over SOC (ohm, F; a ratio of linear pieces is largest at a grid point)",
        f"_R1MAX, _R2MAX = {_f(pk.r1.max())}, {_f(pk.r2.max())}",
        f"_C1MAX, _C2MAX = {_f((pk.tau1 / pk.r1).max())}, {_f((pk.tau2 / pk.r2).max())}",
        f"_RLO = {_arr(rlo)}", f"_RHI = {_arr(rhi)}", f"_RX = {_arr(rxa)}", f"_RW = {_arr(rwd)}",
    ]
    for name, (y, dy_, _s, _c) in zip(("R0", "R1", "T1", "R2", "T2"), rt, strict=True):
        lines += [f"_{name}Y = {_arr(y)}", f"_{name}DY = {_arr(dy_)}"]
    return "\n".join(lines) + "\n\n"


def kernel_source(params: CellParams) -> str:
    """Source of the kernel module specialised to ``params`` (generated header + the template in this file)."""
    text = Path(__file__).read_text()
    return _header(params) + text[text.index("\n" + _BEGIN):]


def _kernel_for(params: CellParams):
    return load_generated(kernel_source(params), "twin_battery_cell_", "cell kernel for this parameter set")


class CompiledCell:
    """One cell parameter set compiled into a single-cell kernel (:mod:`twin.battery.fastcell`).

    Parameters
    ----------
    params : CellParams
        The cell parameter set (:func:`twin.battery.params.load_cell`). The first use of a parameter set on a machine
        compiles its kernel (about 30 s, a message on stderr); it is cached on disk afterwards.

    Examples
    --------
    >>> cell = CompiledCell(load_cell("lfp_280ah"))            # doctest: +SKIP
    >>> out = cell.simulate_current(i_a, 1.0, 25.0, 0.5, 25.0)  # doctest: +SKIP
    """

    def __init__(self, params: CellParams):
        self.params = params
        self._mod = _kernel_for(params)

    def _run(self, mode, request, dt_s, t_amb_degc, soc0, t0_degc, v_rc1_0, v_rc2_0, cap_scale, r_scale):
        scalars = (t_amb_degc, soc0, t0_degc, v_rc1_0, v_rc2_0, cap_scale, r_scale)
        if (type(request) is np.ndarray and request.ndim == 1 and request.dtype == np.float64
                and request.flags.c_contiguous and all(type(x) in (float, int) for x in scalars)):
            # one cell, every argument but the profile a number: the checks of cell._inputs, without its
            # broadcasting (some 20 us, 2 % of a day at 1 s)
            if soc0 < 0 or soc0 > 1:
                raise ValueError("soc0 must be within 0-1")
            if not dt_s > 0:
                raise ValueError(f"dt_s must be > 0, got {dt_s}")
            st = np.array([soc0, t0_degc + 273.15, v_rc1_0, v_rc2_0, cap_scale, r_scale], dtype=np.float64)
            z, tk, v1, v2, cs, rs = st[0:1], st[1:2], st[2:3], st[3:4], st[4:5], st[5:6]
            req2 = request.reshape(1, request.size)
            ta2 = np.array([[t_amb_degc + 273.15]], dtype=np.float64)
            one_d = True
        else:
            req2, ta2, z, tk, v1, v2, cs, rs, one_d = _inputs(request, dt_s, t_amb_degc, soc0, t0_degc, v_rc1_0,
                                                              v_rc2_0, cap_scale, r_scale, scalar_ambient=True)
        n, nt = z.size, req2.shape[1]
        m = n * nt
        nf = len(_FLOAT_OUT) + 1  # the float outputs and p
        block = np.empty(nf * m * 8 + m * 4, dtype=np.uint8)  # one allocation: see the module docstring
        o = block[:nf * m * 8].view(np.float64).reshape(nf, n, nt)
        flag = block[nf * m * 8:].view(np.int32).reshape(n, nt)
        run = self._mod.run_serial if n == 1 else self._mod.run_parallel
        run(mode, req2, ta2, float(dt_s), z, v1, v2, tk, cs, rs, o, flag)
        out = {name: o[j] for j, name in enumerate(_FLOAT_OUT)}
        out["flag"] = flag
        out["p"] = o[nf - 1]
        if one_d:
            out = {k: v[0] for k, v in out.items()}
        return out

    def simulate_current(self, current_a, dt_s: float, t_amb_degc, soc0, t0_degc, v_rc1_0=0.0, v_rc2_0=0.0,
                         cap_scale=1.0, r_scale=1.0) -> dict[str, np.ndarray]:
        """Simulate cells under a requested current profile (held constant over each step).

        As :func:`twin.battery.cell.simulate_current` with this parameter set.

        Parameters
        ----------
        current_a : array_like, shape (nt,) or (n, nt)
            Requested current per step in A, positive discharging; limited as :mod:`twin.battery.cell` says.
        dt_s : float
            Step in s (the update is exact for piecewise-constant current).
        t_amb_degc : float or array_like, shape (nt,) or (n, nt)
            Ambient temperature per step in degC.
        soc0, t0_degc, v_rc1_0, v_rc2_0 : float or array_like, shape (n,)
            Initial SOC (0-1), cell temperature (degC) and RC voltages (V).
        cap_scale, r_scale : float or array_like, shape (n,)
            Per-cell factors on capacity and resistances (cell-to-cell spread).

        Returns
        -------
        dict of ndarray
            The outputs named in :data:`twin.battery.cell.UNITS` (units and long names there), shape (nt,) for one
            cell given 1-D input, else (n, nt).

        Raises
        ------
        ValueError
            On inputs that :func:`twin.battery.cell.simulate_current` rejects, with the same message.
        """
        return self._run(MODE_CURRENT, current_a, dt_s, t_amb_degc, soc0, t0_degc, v_rc1_0, v_rc2_0, cap_scale,
                         r_scale)

    def simulate_power(self, power_w, dt_s: float, t_amb_degc, soc0, t0_degc, v_rc1_0=0.0, v_rc2_0=0.0,
                       cap_scale=1.0, r_scale=1.0) -> dict[str, np.ndarray]:
        """Simulate cells under a requested terminal power profile (held constant over each step).

        As :func:`twin.battery.cell.simulate_power` with this parameter set: each step the current whose step-mean
        terminal power equals the request; requests beyond the maximum power are flagged (bit 16) and served at the
        maximum-power current, then all limits apply.

        Parameters
        ----------
        power_w : array_like, shape (nt,) or (n, nt)
            Requested power at the cell terminals per step in W, positive discharging.

        Other parameters, the return value and the errors are as in :meth:`simulate_current`.
        """
        return self._run(MODE_POWER, power_w, dt_s, t_amb_degc, soc0, t0_degc, v_rc1_0, v_rc2_0, cap_scale,
                         r_scale)


# --------------------------------------------------------------------------------------------------------------
# Stand-ins for the generated constants, so that this module imports and lints; the kernel that runs is the
# generated module, whose header defines them for the parameter set (:func:`_header`).

_CQ = _TREF = _E0 = _E1 = _E2 = _EMAX = _CTH = _RTH = _VMIN = _VMAX = _IMCH = _IMDIS = _TMIN = _TMAX = _H = 1.0
_A0 = _A1 = _A2 = _ARR = _E12 = _HYS = _DU = _RCONST = _TAU1_FIXED = _TAU2_FIXED = False
_R0K = _R1K = _T1K = _R2K = _T2K = False
_R0C = _R1C = _T1C = _R2C = _T2C = _R1MAX = _R2MAX = _C1MAX = _C2MAX = 1.0
_OJ0 = 0
_OLO = _OHI = _OX = _OW = _OY = _ODY = _OSL = _OC = _DY = _DDY = _DSL = _DC = np.zeros(1)
_RLO = _RHI = _RX = _RW = _R0Y = _R0DY = _R1Y = _R1DY = _T1Y = _T1DY = _R2Y = _R2DY = _T2Y = _T2DY = np.zeros(1)


# --- kernel template (the generated module is a header of constants followed by this block) ---
# Everything below is copied into the generated module, whose header defines the constants above. Equations, step
# definitions, limits and flags: twin.battery.cell (run_kernel, _eval, _path_means, _current_for_power), written
# with the same operations in the same order, so that every number that feeds a state or a limit decision is
# bit for bit the reference's (the model has discontinuities, sgn(I) in the hysteresis and the SOC limit at
# zero charge, that would turn a rounding difference into a visible one); what the parameter set makes constant
# is folded only where folding is exact (x * 1.0, x + 0.0, a table with no rise).

_F_CUR, _F_SOC, _F_VOLT, _F_TEMP, _F_POW, _F_NONE = 1, 2, 4, 8, 16, 32
_SMALL = 2e-3  # |d| below which exp(d) and expm1(d) come from their Taylor series (as twin.battery.cell)
_ONE = np.uint64(1)  # table pieces are numbered unsigned: indexing them needs no negative-index wrap-around


@njit(cache=True, error_model="numpy", inline="always")
def _expm1_small(d):
    """exp(d) - 1 for |d| < _SMALL, Taylor series to d^6 (twin.battery.cell._expm1_small)."""
    return d * (1.0 + d * (0.5 + d * (1.0 / 6.0 + d * (1.0 / 24.0 + d * (1.0 / 120.0 + d / 720.0)))))


@njit(cache=True, error_model="numpy", inline="always")
def _piece(z, j, lo, hi):
    """The piece holding ``z`` (``lo[j] <= z < hi[j]``), walking from piece ``j``."""
    while z < lo[j]:
        j -= _ONE
    while z >= hi[j]:
        j += _ONE
    return j


@njit(cache=True, error_model="numpy", inline="always")
def _cum(z, j, y, sl, c):
    """Integral of a table from the first grid point to ``z`` in piece ``j`` (exact, piecewise linear)."""
    dx = z - _OX[j]
    return c[j] + dx * (y[j] + 0.5 * sl[j] * dx)


@njit(cache=True, error_model="numpy", inline="always")
def _path(z0, j0, z1, dtk):
    """Means of OCV(z, T0) (V) and dU/dT (V/K) over the SOC path from ``z0`` (piece ``j0``) to ``z1``; OCV at T_ref
    and dU/dT at ``z1``, and the piece of ``z1``."""
    j1 = _piece(z1, j0, _OLO, _OHI)
    w1 = (z1 - _OX[j1]) / _OW[j1]
    o1 = _OY[j1] + w1 * _ODY[j1]
    d1 = _DY[j1] + w1 * _DDY[j1] if _DU else 0.0
    if j1 == j0:  # one linear piece: the mean is the value at the midpoint (exact, no cancellation)
        wm = (0.5 * (z0 + z1) - _OX[j0]) / _OW[j0]
        if _DU:
            d = _DY[j0] + wm * _DDY[j0]
            return _OY[j0] + wm * _ODY[j0] + dtk * d, d, o1, d1, j1
        return _OY[j0] + wm * _ODY[j0], 0.0, o1, d1, j1
    dz = z0 - z1
    if _DU:
        d = (_cum(z0, j0, _DY, _DSL, _DC) - _cum(z1, j1, _DY, _DSL, _DC)) / dz
        return (_cum(z0, j0, _OY, _OSL, _OC) - _cum(z1, j1, _OY, _OSL, _OC)) / dz + dtk * d, d, o1, d1, j1
    return (_cum(z0, j0, _OY, _OSL, _OC) - _cum(z1, j1, _OY, _OSL, _OC)) / dz, 0.0, o1, d1, j1


@njit(cache=True, error_model="numpy", inline="always")
def _eval(i, z0, j0, ocv0, e0, v10, v20, t0, ta, dtk, kz, r0, r1, r2, g1, g2, a1, a2, ph1, ph2, pp1, pp2, cc1,
          cc2, ath, phg, tsafe, ph1x2, ph2x2):
    """One step at current ``i`` (A) from the given start (``twin.battery.cell._eval``); ``e0 = OCV - v1 - v2`` at
    the start (V; without hysteresis, the previous step's ``e1``); below ``tsafe`` (K) the cell is certainly inside
    the upper temperature limit, RC energy included.

    Returns ``z1, v_mean, v_end, v1_end, v2_end, T1, q_irr, q_rev, q_amb, bits, OCV_ref(z1), dU/dT(z1), piece, e1``.
    """
    z1 = z0 - i * kz
    u, d, o1, d1, j1 = _path(z0, j0, z1, dtk)
    ocv1 = o1 + dtk * d1 if _DU else o1
    hs = (_H if i > 0.0 else (-_H if i < 0.0 else 0.0)) if _HYS else 0.0
    vi1 = r1 * i
    vi2 = r2 * i
    d1_ = v10 - vi1
    d2_ = v20 - vi2
    v1e = vi1 + d1_ * a1
    v2e = vi2 + d2_ * a2
    v1m = vi1 + d1_ * ph1
    v2m = vi2 + d2_ * ph2
    l1 = (vi1 * vi1 + vi1 * d1_ * ph1x2 + d1_ * d1_ * pp1) * g1
    l2 = (vi2 * vi2 + vi2 * d2_ * ph2x2 + d2_ * d2_ * pp2) * g2
    ri = r0 * i
    if _HYS:
        v_start = ocv0 - hs - v10 - v20 - ri
        v_mean = u - hs - v1m - v2m - ri
        e1 = 0.0
        v_end = ocv1 - hs - v1e - v2e - ri
        q_irr = ri * i + hs * i + l1 + l2
    else:
        v_start = e0 - ri
        v_mean = u - v1m - v2m - ri
        e1 = ocv1 - v1e - v2e
        v_end = e1 - ri
        q_irr = ri * i + l1 + l2
    if _DU:
        q_rev = -i * t0 * d  # Bernardi 1985, I > 0 discharging
        q = q_irr + q_rev
    else:
        q_rev = 0.0
        q = q_irr
    ts = ta + q * _RTH
    t1 = ts + (t0 - ts) * ath
    q_amb = q + (t0 - ts) * phg  # (ts - ta + (t0 - ts) phi) / R_th, ts - ta = q R_th (an output only: rounded apart)
    bits = 0
    if min(v_start, v_mean, v_end) < _VMIN or max(v_start, v_mean, v_end) > _VMAX:
        bits |= _F_VOLT
    if t1 > tsafe or t1 < _TMIN:  # else certainly inside: the exact test below would pass
        if t1 + 0.5 * (cc1 * v1e * v1e + cc2 * v2e * v2e) * (1.0 / _CTH) > _TMAX or t1 < _TMIN:
            bits |= _F_TEMP
    return z1, v_mean, v_end, v1e, v2e, t1, q_irr, q_rev, q_amb, bits, o1, d1, j1, e1


@njit(cache=True, error_model="numpy")
def _bisect(ic, z0, j0, ocv0, e0, v10, v20, t0, ta, dtk, kz, r0, r1, r2, g1, g2, a1, a2, ph1, ph2, pp1, pp2, cc1,
            cc2, ath, phg, tsafe, ph1x2, ph2x2):
    """The step at the largest ``s ic``, ``s`` in [0, 1] found by bisection, that keeps the voltage and temperature
    limits (as ``twin.battery.cell.run_kernel``; entered only when the step at ``ic`` breaks one, kept out of line).

    Returns the current (A), the outputs of :func:`_eval` at it, and F_NONE if not even ``s = 0`` keeps them."""
    s_lo = 0.0
    s_hi = 1.0
    s = 0.5
    final = False
    while True:
        z1, vm, ve, v1e, v2e, t1, qi, qr, qa, bits, o1, d1, j1, e1 = _eval(
            s * ic, z0, j0, ocv0, e0, v10, v20, t0, ta, dtk, kz, r0, r1, r2, g1, g2, a1, a2, ph1, ph2, pp1, pp2, cc1,
            cc2, ath, phg, tsafe, ph1x2, ph2x2)
        if final:
            # not even at rest: the cell is outside a limit by itself
            return s * ic, z1, vm, ve, v1e, v2e, t1, qi, qr, qa, _F_NONE if bits != 0 else 0, o1, d1, j1, e1
        if bits == 0:
            s_lo = s
        else:
            s_hi = s
        s = 0.5 * (s_lo + s_hi)
        if s <= s_lo or s >= s_hi:
            s = s_lo
            final = True


@njit(cache=True, error_model="numpy", inline="always")
def _current_for_power(p, z0, j0, ocv0, v10, v20, dt, cq, dtk, r0, r1, r2, ph1, ph2):
    """Current (A) whose step-mean terminal power is ``p`` (W), and F_POW if beyond reach
    (``twin.battery.cell._current_for_power``: quadratic start, Newton on the exact step)."""
    if p == 0.0:
        return 0.0, 0
    hs = (_H if p > 0.0 else -_H) if _HYS else 0.0
    c = v10 * ph1 + v20 * ph2
    rl = r0 + r1 * (1.0 - ph1) + r2 * (1.0 - ph2)
    e = ocv0 - hs - c if _HYS else ocv0 - c
    disc = e * e - 4.0 * rl * p
    if disc <= 0.0:
        return e / (2.0 * rl), _F_POW
    i = 2.0 * p / (e + math.sqrt(disc))
    for _ in range(30):
        u, d, o1, d1, j1 = _path(z0, j0, z0 - i * dt / cq, dtk)
        ocv1 = o1 + dtk * d1 if _DU else o1
        v = u - hs - c - rl * i if _HYS else u - c - rl * i
        f = i * v - p
        if abs(f) <= 1e-14 * abs(p):
            return i, 0
        fp = v + (ocv1 - u) - rl * i
        if fp <= 0.0:
            return i, _F_POW
        i -= f / fp
    return i, 0


@njit(cache=True, error_model="numpy", inline="always")
def _cell(mode, c, req, tamb, dt, z, v1, v2, tk, cap_scale, r_scale, o, oflag):
    """Step cell ``c`` over all steps (``twin.battery.cell.run_kernel`` for one cell, the parameter set compiled in)."""
    nt = req.shape[1]
    rq = req[c if req.shape[0] > 1 else 0]
    tar = tamb[c if tamb.shape[0] > 1 else 0]
    tmask = -1 if tamb.shape[1] > 1 else 0  # (n or 1, 1): one ambient for every step (index k & 0)
    o_v, o_vend, o_i, o_soc, o_t, o_v1, o_v2, o_qirr, o_qrev, o_qamb, o_prc, o_p = (
        o[0, c], o[1, c], o[2, c], o[3, c], o[4, c], o[5, c], o[6, c], o[7, c], o[8, c], o[9, c], o[10, c], o[11, c])
    o_flag = oflag[c]
    cq = _CQ * cap_scale[c]
    rsc = r_scale[c]
    idt = 1.0 / dt
    kz = dt / cq
    yth = -dt / (_RTH * _CTH)
    ath = math.exp(yth)
    phg = -math.expm1(yth) / -yth / _RTH  # mean of exp(-t/tau_th) over the step, over R_th (1/(K/W))
    itref = 1.0 / _TREF
    a1f = m1f = a2f = m2f = 0.0
    if _TAU1_FIXED:  # exp(-dt/tau) once per run (the reference's Taylor cache gives these same numbers every step)
        a1f = math.exp(-dt / _T1C)
        m1f = -math.expm1(-dt / _T1C)
    if _TAU2_FIXED:
        a2f = math.exp(-dt / _T2C)
        m2f = -math.expm1(-dt / _T2C)
    zc, v1c, v2c, tc = z[c], v1[c], v2[c], tk[c]
    j = _piece(zc, np.uint64(_OJ0), _OLO, _OHI)
    w0 = (zc - _OX[j]) / _OW[j]
    orf = _OY[j] + w0 * _ODY[j]  # OCV at T_ref and dU/dT at the SOC of the step's start
    du = _DY[j] + w0 * _DDY[j] if _DU else 0.0
    jr = _piece(zc, _ONE, _RLO, _RHI)
    s1c, s2c = v1c * v1c, v2c * v2c
    # above z_dis a step at the largest discharge current leaves charge, below z_ch one at the largest charge
    # current leaves room (margin 1e-9 relative for rounding)
    z_dis = _IMDIS * kz * (1.0 + 1e-9)
    z_ch = 1.0 - _IMCH * kz * (1.0 + 1e-9)
    hidt = 0.5 * idt
    e0 = orf - v1c - v2c  # OCV - v1 - v2 (V), carried from step to step when the OCV has no temperature term
    tsafe = -math.inf
    if not (_A1 or _A2) and rsc > 0.0:
        # |v_i| <= max(|v_i(0)|, R_i,max I_max): each step's v_i is a mean of the last one and R_i I (rounding and
        # C_i <= C_i,max allowed for by the factors 1.001)
        imax = max(_IMDIS, _IMCH)
        vb1 = max(abs(v1c), _R1MAX * rsc * imax) * 1.001
        vb2 = max(abs(v2c), _R2MAX * rsc * imax) * 1.001
        tsafe = _TMAX - 0.5 * (_C1MAX / rsc * vb1 * vb1 + _C2MAX / rsc * vb2 * vb2) / _CTH * 1.001 - 1e-9
        if not tsafe < _TMAX:  # NaN or no margin: test exactly every step
            tsafe = -math.inf
    xr = np.nan
    f0r = f1r = f2r = 1.0
    y1r = y2r = np.nan
    a1r = m1r = a2r = m2r = 0.0
    for k in range(nt):
        ta = tar[k & tmask]
        # parameters at the step's initial SOC and temperature (Arrhenius, Taylor-cached exp as the reference)
        f0 = f1 = f2 = 1.0
        if _ARR:
            x = 1.0 / tc - itref
            dx = x - xr
            if not abs(dx) * _EMAX < _SMALL:
                xr = x
                dx = 0.0
                f0r = math.exp(_E0 * x)
                f1r = math.exp(_E1 * x)
                f2r = f1r if _E12 else math.exp(_E2 * x)
            if _A0:
                f0 = f0r + f0r * _expm1_small(_E0 * dx)
            if _A1:
                f1 = f1r + f1r * _expm1_small(_E1 * dx)
            if _A2:
                f2 = f1 if _E12 else f2r + f2r * _expm1_small(_E2 * dx)
        if _RCONST:
            r0 = _R0C * f0 * rsc
            r1 = _R1C * f1 * rsc
            r2 = _R2C * f2 * rsc
            tau1 = _T1C * f1
            tau2 = _T2C * f2
        else:
            jr = _piece(zc, jr, _RLO, _RHI)
            wr = (zc - _RX[jr]) / _RW[jr]
            # a table constant in SOC is its constant (c + w 0 = c, as the reference's interpolation)
            r0 = (_R0C if _R0K else (_R0Y[jr] + wr * _R0DY[jr])) * f0 * rsc
            r1 = (_R1C if _R1K else (_R1Y[jr] + wr * _R1DY[jr])) * f1 * rsc
            r2 = (_R2C if _R2K else (_R2Y[jr] + wr * _R2DY[jr])) * f2 * rsc
            tau1 = (_T1C if _T1K else (_T1Y[jr] + wr * _T1DY[jr])) * f1
            tau2 = (_T2C if _T2K else (_T2Y[jr] + wr * _T2DY[jr])) * f2
        if _TAU1_FIXED:
            a1, m1 = a1f, m1f
        else:
            y = -dt / tau1
            dy = y - y1r
            if not abs(dy) < _SMALL:
                y1r = y
                dy = 0.0
                a1r = math.exp(y)
                m1r = -math.expm1(y)
            em = _expm1_small(dy)
            a1, m1 = a1r + a1r * em, m1r - a1r * em
        if _TAU2_FIXED:
            a2, m2 = a2f, m2f
        else:
            y = -dt / tau2
            dy = y - y2r
            if not abs(dy) < _SMALL:
                y2r = y
                dy = 0.0
                a2r = math.exp(y)
                m2r = -math.expm1(y)
            em = _expm1_small(dy)
            a2, m2 = a2r + a2r * em, m2r - a2r * em
        ph1 = m1 * tau1 * idt  # mean of exp(-t/tau) over the step
        ph2 = m2 * tau2 * idt
        pp1 = 0.5 * ph1 * (2.0 - m1)  # mean of exp(-2t/tau)
        pp2 = 0.5 * ph2 * (2.0 - m2)
        ph1x2 = 2.0 * ph1  # (2 x) y z = x y (2 z) exactly: scaling by 2 commutes with rounding
        ph2x2 = 2.0 * ph2
        g1 = 1.0 / r1
        g2 = 1.0 / r2
        cc1 = tau1 * g1
        cc2 = tau2 * g2
        dtk = tc - _TREF if _DU else 0.0  # only the OCV's temperature term needs it
        if _DU:
            ocv0 = orf + dtk * du
            e0 = ocv0 - v1c - v2c
        else:
            ocv0 = orf
        flag = 0
        # ---- the requested current, then current and SOC limits
        if mode == 0:
            ic = rq[k]
        else:
            ic, pflag = _current_for_power(rq[k], zc, j, ocv0, v1c, v2c, dt, cq, dtk, r0, r1, r2, ph1, ph2)
            flag |= pflag
        if ic > _IMDIS:
            ic = _IMDIS
            flag |= _F_CUR
        elif ic < -_IMCH:
            ic = -_IMCH
            flag |= _F_CUR
        if not (z_dis < zc < z_ch):  # else the SOC limits cannot act: the exact tests below would pass
            hi = zc * cq * idt
            lo = -(1.0 - zc) * cq * idt
            if ic > hi:
                ic = max(hi, 0.0)
                flag |= _F_SOC
            elif ic < lo:
                ic = min(lo, 0.0)
                flag |= _F_SOC
        # ---- the step; if it breaks a voltage or temperature limit, bisection on s in [0, 1] as the reference
        z1, vm, ve, v1e, v2e, t1, qi, qr, qa, bits, o1, d1, j1, e1 = _eval(
            ic, zc, j, ocv0, e0, v1c, v2c, tc, ta, dtk, kz, r0, r1, r2, g1, g2, a1, a2, ph1, ph2, pp1, pp2, cc1, cc2,
            ath, phg, tsafe, ph1x2, ph2x2)
        if bits != 0:
            flag |= bits
            ic, z1, vm, ve, v1e, v2e, t1, qi, qr, qa, fl, o1, d1, j1, e1 = _bisect(
                ic, zc, j, ocv0, e0, v1c, v2c, tc, ta, dtk, kz, r0, r1, r2, g1, g2, a1, a2, ph1, ph2, pp1, pp2, cc1,
                cc2, ath, phg, tsafe, ph1x2, ph2x2)
            flag |= fl
        s1 = v1e * v1e
        s2 = v2e * v2e
        o_prc[k] = (cc1 * (s1 - s1c) + cc2 * (s2 - s2c)) * hidt  # the squares at the start carried
        s1c, s2c = s1, s2
        o_v[k] = vm
        o_vend[k] = ve
        o_i[k] = ic
        o_p[k] = vm * ic
        o_qirr[k] = qi
        o_qrev[k] = qr
        o_qamb[k] = qa
        o_flag[k] = flag
        zc, v1c, v2c, tc, j, orf, du, e0 = z1, v1e, v2e, t1, j1, o1, d1, e1
        o_soc[k] = zc
        o_t[k] = tc - 273.15
        o_v1[k] = v1c
        o_v2[k] = v2c
    z[c], v1[c], v2[c], tk[c] = zc, v1c, v2c, tc


@njit(cache=True, error_model="numpy")
def _cell_current(c, req, tamb, dt, z, v1, v2, tk, cap_scale, r_scale, o, oflag):
    _cell(0, c, req, tamb, dt, z, v1, v2, tk, cap_scale, r_scale, o, oflag)


@njit(cache=True, error_model="numpy")
def _cell_power(c, req, tamb, dt, z, v1, v2, tk, cap_scale, r_scale, o, oflag):
    _cell(1, c, req, tamb, dt, z, v1, v2, tk, cap_scale, r_scale, o, oflag)


@njit(cache=True, error_model="numpy")
def run_serial(mode, req, tamb, dt, z, v1, v2, tk, cap_scale, r_scale, o, oflag):
    """Step ``n`` cells one after another on the calling thread (arguments as :func:`run_parallel`)."""
    for c in range(z.size):
        if mode == 0:
            _cell_current(c, req, tamb, dt, z, v1, v2, tk, cap_scale, r_scale, o, oflag)
        else:
            _cell_power(c, req, tamb, dt, z, v1, v2, tk, cap_scale, r_scale, o, oflag)


@njit(cache=True, error_model="numpy", parallel=True)
def run_parallel(mode, req, tamb, dt, z, v1, v2, tk, cap_scale, r_scale, o, oflag):
    """Step ``n`` independent cells over ``nt`` steps of ``dt`` s on numba's threads; states updated in place.

    ``mode`` 0: ``req`` in A, 1: in W (positive discharging), shape (1 or n, nt); ``tamb`` (1 or n, nt) in K;
    ``z, v1, v2, tk`` (n,) initial SOC, RC voltages (V), temperature (K); ``cap_scale, r_scale`` (n,);
    ``o`` (12, n, nt): the float outputs in the order of ``twin.battery.cell._FLOAT_OUT`` (``t_degc`` in degC),
    then ``p``; ``oflag`` (n, nt) int32.
    """
    for c in prange(z.size):
        ci = np.int64(c)  # prange's index is unsigned
        if mode == 0:
            _cell_current(ci, req, tamb, dt, z, v1, v2, tk, cap_scale, r_scale, o, oflag)
        else:
            _cell_power(ci, req, tamb, dt, z, v1, v2, tk, cap_scale, r_scale, o, oflag)
