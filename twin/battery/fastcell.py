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
times PyBaMM's Thevenin model (0.7-1.2 s here), i.e. under 1 ms. One cell is a sequential recurrence, and the
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

Current mode in optimistic blocks, where the step parameters do not depend on the state (no Arrhenius, resistances
and time constants constant in SOC, no entropic term, no hysteresis: the PyBaMM comparison's cell; ``_FAST`` in the
generated module). There a step's only sequential parts are short recurrences (SOC ``z - I dt / Q``, the RC voltages
``R I + (v - R I) exp(-dt / tau)``, the temperature ``T_s + (T - T_s) exp(-dt / tau_th)``) and everything else is
elementwise once the states are known, so current mode steps blocks of 512 steps as if no SOC, voltage or temperature
limit acted (``_fast_current``): the requests within the current limits (vectorised); SOC and RC voltages,
sequentially, with the OCV piece walk; each step's heat and steady temperature (vectorised); the temperatures,
sequentially, in one loop with the next block's SOC and RC voltages, so that the two recurrences' latencies overlap
(about 9 cycles a step for both); then voltages, limit tests and the other outputs (vectorised, selects instead of
branches). The outputs before the first step where a limit test fails (the exact step's test) or where the SOC
limits might act (its bound) are final; from that step the exact step (``_step``, the body of the step-by-step loop
too: one definition) runs until no limit acts, then blocks resume (16 steps, doubling). A step that leaves its OCV
piece (its mean OCV needs the cumulative integral) is also the exact step. Every number comes from the same
operations in the same order as in the step-by-step loop (shared helpers: ``_rc``, ``_q_irr``, ``_t_steady``,
``_t_end``, ``_limit_bits``, ``_clamp``, ...; vectorising elementwise IEEE operations does not change their rounding,
and numba contracts to fused multiply-adds only under fastmath), so the results are bit for bit those of the
step-by-step loop: tests/test_battery_fastcell.py compares them with ``np.array_equal`` at every limit, across block
boundaries and for several cells. The loops are written for LLVM's vectoriser, which is easily put off: unsigned
indices (no negative-index wrap-around, else gathers and scatters), the block's scratch one flat array with rows at
constant offsets (no run-time alias checks between them: LLVM gives a loop up beyond eight) padded so that rows do
not lie a multiple of 4 kB apart (4K aliasing made the passes 2.5 times slower), at most three output rows written
a loop, and the sequential loops a function of their own (inlined into the kernel, the register allocator kept the
recurrences on the stack). Power mode, and parameter sets with state-dependent step parameters, run the step-by-step
loop; so does current mode given as ``_MODE_CURRENT_EXACT`` to the kernel (what the tests compare the blocks with),
and ``_FASTPATH = False`` in the kernel template turns the blocks off.

:class:`CompiledCell` writes the kernel module (the header generated here from the parameter set, followed by the
kernel template at the end of this file) to the kernel cache directory of :mod:`twin.battery._codegen`, named by a
hash of its source, and imports it; numba caches the compiled code beside it, so a parameter set compiles once per
machine (10-30 s) and later runs start at once. Cells are independent: several cells run in parallel on numba's
threads (``prange``), one cell on the calling thread.

Performance (2-core AMD EPYC Zen 4 development machine, AVX-512, one thread; the kernel on preallocated outputs, best
of 30, alternating runs): one cell for a day at 1 s with the constant-parameter isothermal cell of the PyBaMM
comparison in 0.55-0.63 ms (6.4-7.3 ns, 23-27 CPU cycles per step at 3.65 GHz; the spread is the other load on the
machine's memory; ``simulate_current`` 0.60-0.63 ms), against 0.92 ms (10.7 ns, 39 cycles) step by step, i.e. 1.5-1.7
times faster, and 6.5-7 ms for the reference kernel. Of a step, the recurrences take 2.6 ns (their 9-cycle latency),
the vectorised passes the rest (writing the 100 bytes of outputs a step included). With the full seed cell
(SOC-dependent resistances, Arrhenius, entropic heat, hysteresis; step by step) about 4.6 ms: there the temperature
recurrence runs through ``1/T``, the Taylor-cached Arrhenius factor, the time constants' division and their
Taylor-cached decays to the RC losses and back to ``T`` (about 190 cycles of latency per step), which bit-for-bit
agreement with the reference leaves as it is (Estrin's scheme or fused multiply-adds would shorten it, at the price
of rounding apart). The optimistic blocks lengthen the first compilation of a parameter set (``run_serial`` on this
machine: about 20 s against 7 s for the constant-parameter cell, 16 s against 11 s for the full seed cell).
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

_MODE_CURRENT_EXACT = 2  # current mode step by step, without the optimistic blocks (for the tests)

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
_ZERO = np.uint64(0)
_ONE = np.uint64(1)  # table pieces are numbered unsigned: indexing them needs no negative-index wrap-around
_F_LIM = _F_SOC | _F_VOLT | _F_TEMP | _F_NONE  # a limit acted
_FASTPATH = True  # False: current mode step by step always (the optimistic blocks of _fast_current off)
# the step parameters do not depend on the state: current mode in optimistic blocks (_fast_current)
_FAST = _FASTPATH and not (_ARR or _DU or _HYS) and _TAU1_FIXED and _TAU2_FIXED
_NB = np.uint64(512)  # steps per optimistic block
_NB0 = np.uint64(16)  # ... after a limit acted (doubling from block to block)


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
def _rc(i, v0, r, a, ph, ph2x, pp, g):
    """RC element from ``v0`` (V) at current ``i``: voltage at the step's end, its mean over the step, and the mean
    power lost in the resistor (W) (``twin.battery.cell._eval``; ``ph2x = 2 ph``)."""
    vi = r * i
    d = v0 - vi
    return vi + d * a, vi + d * ph, (vi * vi + vi * d * ph2x + d * d * pp) * g


@njit(cache=True, error_model="numpy", inline="always")
def _q_irr(ri, i, hs, l1, l2):
    """Irreversible heat of the step (W): ``R0 I^2``, the hysteresis loss and the RC losses."""
    if _HYS:
        return ri * i + hs * i + l1 + l2
    return ri * i + l1 + l2


@njit(cache=True, error_model="numpy", inline="always")
def _t_steady(q, ta):
    """Steady temperature (K) under heat ``q`` (W) at ambient ``ta`` (K)."""
    return ta + q * _RTH


@njit(cache=True, error_model="numpy", inline="always")
def _t_end(ts, t0, ath):
    """Temperature (K) at the step's end from ``t0`` towards the steady ``ts`` (K)."""
    return ts + (t0 - ts) * ath


@njit(cache=True, error_model="numpy", inline="always")
def _q_amb(q, ts, t0, phg):
    """Mean heat to ambient over the step (W): ``(ts - ta + (t0 - ts) phi) / R_th``, ``ts - ta = q R_th`` (an output
    only: rounded apart from the reference)."""
    return q + (t0 - ts) * phg


@njit(cache=True, error_model="numpy", inline="always")
def _limit_bits(v_start, v_mean, v_end, t1, v1e, v2e, cc1, cc2, tsafe):
    """F_VOLT and F_TEMP for a step with these terminal voltages (V) and end temperature (K); below ``tsafe`` (K) the
    cell is certainly inside the upper temperature limit, RC energy included."""
    bits = 0
    if min(v_start, v_mean, v_end) < _VMIN or max(v_start, v_mean, v_end) > _VMAX:
        bits |= _F_VOLT
    if t1 > tsafe or t1 < _TMIN:  # else certainly inside: the exact test below would pass
        if t1 + 0.5 * (cc1 * v1e * v1e + cc2 * v2e * v2e) * (1.0 / _CTH) > _TMAX or t1 < _TMIN:
            bits |= _F_TEMP
    return bits


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
    v1e, v1m, l1 = _rc(i, v10, r1, a1, ph1, ph1x2, pp1, g1)
    v2e, v2m, l2 = _rc(i, v20, r2, a2, ph2, ph2x2, pp2, g2)
    ri = r0 * i
    if _HYS:
        v_start = ocv0 - hs - v10 - v20 - ri
        v_mean = u - hs - v1m - v2m - ri
        e1 = 0.0
        v_end = ocv1 - hs - v1e - v2e - ri
    else:
        v_start = e0 - ri
        v_mean = u - v1m - v2m - ri
        e1 = ocv1 - v1e - v2e
        v_end = e1 - ri
    q_irr = _q_irr(ri, i, hs, l1, l2)
    if _DU:
        q_rev = -i * t0 * d  # Bernardi 1985, I > 0 discharging
        q = q_irr + q_rev
    else:
        q_rev = 0.0
        q = q_irr
    ts = _t_steady(q, ta)
    t1 = _t_end(ts, t0, ath)
    q_amb = _q_amb(q, ts, t0, phg)
    bits = _limit_bits(v_start, v_mean, v_end, t1, v1e, v2e, cc1, cc2, tsafe)
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
def _params(zc, tc, jr, cache, rsc, dt, idt, itref, a1f, m1f, a2f, m2f):
    """Step parameters at the step's initial SOC ``zc`` and temperature ``tc`` (K) (Arrhenius, Taylor-cached exp as
    the reference; ``jr`` the resistance table piece and ``cache`` the Taylor anchors, carried from step to step).

    Returns ``jr``, ``cache`` and ``(r0, r1, r2, g1, g2, a1, a2, ph1, ph2, pp1, pp2, cc1, cc2, ph1x2, ph2x2)``."""
    xr, f0r, f1r, f2r, y1r, a1r, m1r, y2r, a2r, m2r = cache
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
    return (jr, (xr, f0r, f1r, f2r, y1r, a1r, m1r, y2r, a2r, m2r),
            (r0, r1, r2, g1, g2, a1, a2, ph1, ph2, pp1, pp2, cc1, cc2, ph1x2, ph2x2))


@njit(cache=True, error_model="numpy", inline="always")
def _clamp(i):
    """The current ``i`` (A) within the current limits, and F_CUR if it was not."""
    if i > _IMDIS:
        return _IMDIS, _F_CUR
    if i < -_IMCH:
        return -_IMCH, _F_CUR
    return i, 0


@njit(cache=True, error_model="numpy", inline="always")
def _put(k, flag, ic, vm, ve, qi, qr, qa, prc, z1, t1, v1e, v2e, o_v, o_vend, o_i, o_soc, o_t, o_v1, o_v2, o_qirr,
         o_qrev, o_qamb, o_prc, o_p, o_flag):
    """Store the outputs of step ``k`` (:func:`_step`)."""
    o_v[k] = vm
    o_vend[k] = ve
    o_i[k] = ic
    o_p[k] = vm * ic
    o_qirr[k] = qi
    o_qrev[k] = qr
    o_qamb[k] = qa
    o_prc[k] = prc
    o_flag[k] = flag
    o_soc[k] = z1
    o_t[k] = t1 - 273.15
    o_v1[k] = v1e
    o_v2[k] = v2e


@njit(cache=True, error_model="numpy", inline="always")
def _step(mode, rqk, ta, zc, j, orf, du, e0, v1c, v2c, tc, sp, dt, cq, idt, kz, z_dis, z_ch, ath, phg, tsafe):
    """One step exactly (``twin.battery.cell.run_kernel``'s step): request ``rqk`` (A or W), ambient ``ta`` (K),
    state at the step's start (SOC, OCV piece, OCV at T_ref and dU/dT there, ``e0 = OCV - v1 - v2``, RC voltages,
    temperature), step parameters ``sp`` (:func:`_params`).

    Returns the state at the step's end ``z, j, orf, du, e0, v1, v2, T``, the step's flag, and its outputs ``i, v,
    v_end, q_irr, q_rev, q_amb, p_rc`` (:func:`_put` stores them; the step-by-step loop of :func:`_cell` does it
    itself)."""
    r0, r1, r2, g1, g2, a1, a2, ph1, ph2, pp1, pp2, cc1, cc2, ph1x2, ph2x2 = sp
    dtk = tc - _TREF if _DU else 0.0  # only the OCV's temperature term needs it
    if _DU:
        ocv0 = orf + dtk * du
        e0 = ocv0 - v1c - v2c
    else:
        ocv0 = orf
    flag = 0
    # ---- the requested current, then current and SOC limits
    if mode == 0:
        ic = rqk
    else:
        ic, pflag = _current_for_power(rqk, zc, j, ocv0, v1c, v2c, dt, cq, dtk, r0, r1, r2, ph1, ph2)
        flag |= pflag
    ic, fl = _clamp(ic)
    flag |= fl
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
    prc = _p_rc(v1c, v2c, v1e, v2e, cc1, cc2, 0.5 * idt)
    return z1, j1, o1, d1, e1, v1e, v2e, t1, flag, ic, vm, ve, qi, qr, qa, prc


@njit(cache=True, error_model="numpy")
def _exact_step(rqk, ta, zc, j, orf, du, e0, v1c, v2c, tc, sp, dt, cq, idt, kz, z_dis, z_ch, ath, phg, tsafe):
    """:func:`_step` in current mode, out of line (the optimistic blocks call it seldom: a copy less to compile)."""
    return _step(0, rqk, ta, zc, j, orf, du, e0, v1c, v2c, tc, sp, dt, cq, idt, kz, z_dis, z_ch, ath, phg, tsafe)


@njit(cache=True, error_model="numpy", inline="always")
def _p_rc(v10, v20, v1e, v2e, cc1, cc2, hidt):
    """Mean power into the RC capacitors over a step (W), from the change of their energies."""
    return (cc1 * (v1e * v1e - v10 * v10) + cc2 * (v2e * v2e - v20 * v20)) * hidt


@njit(cache=True, error_model="numpy", inline="always")
def _opt_v(ic, z0, z1, v10, v20, v1e, v2e, e0, e1, t1, ox, ow, oy, ody, sp, tsafe):
    """The terminal voltages and power of a step of an optimistic block, its states known (:func:`_block_outputs`):
    ``v, v_end, p`` and the bits of the limit tests (as :func:`_eval` and :func:`_step`)."""
    r0, r1, r2, g1, g2, a1, a2, ph1, ph2, pp1, pp2, cc1, cc2, ph1x2, ph2x2 = sp
    wm = (0.5 * (z0 + z1) - ox) / ow  # _path in one piece: the mean OCV is the midpoint's
    u = oy + wm * ody
    _, v1m, _ = _rc(ic, v10, r1, a1, ph1, ph1x2, pp1, g1)
    _, v2m, _ = _rc(ic, v20, r2, a2, ph2, ph2x2, pp2, g2)
    ri = r0 * ic
    vm = u - v1m - v2m - ri
    ve = e1 - ri
    return vm, ve, vm * ic, _limit_bits(e0 - ri, vm, ve, t1, v1e, v2e, cc1, cc2, tsafe)


# rows of the scratch of an optimistic block (one flat array, the rows at constant offsets: loops over its rows need
# no run-time alias checks, which LLVM gives up on beyond a few arrays, leaving the loop scalar): temperature (K),
# OCV - v1 - v2 (V), SOC and RC voltages (V) at the steps' starts (and the block's end), each step's heat (W),
# steady temperature (K), current (A) and limit bits
_NW = 9
# their length: a block's steps and its end, padded so that the rows lie 384 bytes apart modulo 4096 (rows a
# multiple of 4 kB apart make loads wait on unrelated stores, "4K aliasing": 2.5 times slower passes)
_NBW = (_NB + _ONE + np.uint64(463)) // np.uint64(512) * np.uint64(512) + np.uint64(48)
_WT, _WE, _WZ, _WV1, _WV2, _WQI, _WTS, _WI, _WBAD = (np.uint64(r) * _NBW for r in range(_NW))


@njit(cache=True, error_model="numpy")
def _block_outputs(k0, s, e, ox, ow, oy, ody, w, sp, phg, tsafe, hidt, outs):
    """The outputs of steps ``k0 + s .. k0 + e - 1`` of an optimistic block (:func:`_fast_current`), their states,
    currents and heat known (in the scratch ``w``) and the OCV
    piece the same at both ends of every step (anchor, width, OCV and rise ``ox, ow, oy, ody``), up to the first
    step where a limit test fails; returns that step (``e`` if none). Elementwise, vectorised (simple loops,
    unsigned indices, no calls; each loop reads the scratch and writes at most three output rows besides, for few
    run-time alias checks)."""
    r0, r1, r2, g1, g2, a1, a2, ph1, ph2, pp1, pp2, cc1, cc2, ph1x2, ph2x2 = sp
    o_v, o_vend, o_i, o_soc, o_t, o_v1, o_v2, o_qirr, o_qrev, o_qamb, o_prc, o_p = outs
    for i in range(s, e):
        w1 = (w[_WZ + i + _ONE] - ox) / ow  # _path: the OCV at the step's end
        w[_WE + i + _ONE] = oy + w1 * ody - w[_WV1 + i + _ONE] - w[_WV2 + i + _ONE]
    nbad = 0
    for i in range(s, e):
        k = k0 + i
        vm, ve, pw, bits = _opt_v(w[_WI + i], w[_WZ + i], w[_WZ + i + _ONE], w[_WV1 + i], w[_WV2 + i],
                                  w[_WV1 + i + _ONE], w[_WV2 + i + _ONE], w[_WE + i], w[_WE + i + _ONE],
                                  w[_WT + i + _ONE], ox, ow, oy, ody, sp, tsafe)
        nbad |= bits
        w[_WBAD + i] = bits
        o_v[k] = vm
        o_vend[k] = ve
        o_p[k] = pw
    f = e
    if nbad != 0:
        f = s
        while w[_WBAD + f] == 0.0:
            f += _ONE
    for i in range(s, f):
        k = k0 + i
        v10 = w[_WV1 + i]
        v20 = w[_WV2 + i]
        v1e = w[_WV1 + i + _ONE]
        v2e = w[_WV2 + i + _ONE]
        o_qamb[k] = _q_amb(w[_WQI + i], w[_WTS + i], w[_WT + i], phg)
        o_prc[k] = _p_rc(v10, v20, v1e, v2e, cc1, cc2, hidt)
        o_t[k] = w[_WT + i + _ONE] - 273.15
    for i in range(s, f):
        o_qirr[k0 + i] = w[_WQI + i]
        o_qrev[k0 + i] = 0.0
    return f


@njit(cache=True, error_model="numpy")
def _block_start(rq, o_i, o_flag, w, k0, n):
    """The requests of steps ``k0 .. k0 + n - 1`` within the current limits (also into the block's scratch ``w``),
    and their flags (vectorised)."""
    for i in range(n):
        ic, fl = _clamp(rq[k0 + i])
        o_i[k0 + i] = ic
        o_flag[k0 + i] = fl
        w[_WI + i] = ic


@njit(cache=True, error_model="numpy")
def _block_heat(k0, m, tar, tconst, w, sp):
    """Heat (W) and steady temperature (K) of the first ``m`` steps of an optimistic block from ``k0``, their
    currents and RC voltages known (in its scratch ``w``), into ``w`` (vectorised)."""
    r0, r1, r2, g1, g2, a1, a2, ph1, ph2, pp1, pp2, cc1, cc2, ph1x2, ph2x2 = sp
    for i in range(m):
        ic = w[_WI + i]
        _, _, l1 = _rc(ic, w[_WV1 + i], r1, a1, ph1, ph1x2, pp1, g1)
        _, _, l2 = _rc(ic, w[_WV2 + i], r2, a2, ph2, ph2x2, pp2, g2)
        w[_WQI + i] = _q_irr(r0 * ic, ic, 0.0, l1, l2)
    ta = tar[0]
    if tconst:
        for i in range(m):
            w[_WTS + i] = _t_steady(w[_WQI + i], ta)
    else:
        for i in range(m):
            w[_WTS + i] = _t_steady(w[_WQI + i], tar[k0 + i])


@njit(cache=True, error_model="numpy", inline="always")
def _zlim(j, z_dis, z_ch):
    """Bounds of the SOC within which the next step stays in OCV piece ``j`` and the SOC limits cannot act."""
    return max(_OLO[j], z_dis), min(_OHI[j], z_ch)


@njit(cache=True, error_model="numpy")
def _block_states(k0, n, zb, jb, v1b, v2b, kz, sp, z_dis, z_ch, o_soc, o_v1, o_v2, ws, pcs, pcj, w, mt, tp, ath):
    """The states (SOC, RC voltages) at the ends of steps ``k0 .. k0 + n - 1`` of an optimistic block from
    ``zb, jb, v1b, v2b`` into the output rows and the block's scratch ``ws`` (currents there), as if no SOC,
    voltage or temperature limit acted, to the first step
    after which the SOC limits might act; its steps that leave their OCV piece into ``pcs`` and the piece they end in
    into ``pcj``. Together (in one loop: the two recurrences' latencies overlap), the temperatures (K) at the ends of
    the first ``mt`` steps of the block before from ``tp`` into its scratch ``w`` (its steady temperatures there).
    A function of its own, so that the loop's recurrences stay in registers.

    Returns the steps stepped, the number of piece changes, the state at the end and the last temperature."""
    r0, r1, r2, g1, g2, a1, a2, ph1, ph2, pp1, pp2, cc1, cc2, ph1x2, ph2x2 = sp
    m = n
    npc = np.uint64(0)
    zlo, zhi = _zlim(jb, z_dis, z_ch)
    it = np.uint64(0)
    ws[_WZ] = zb
    ws[_WV1] = v1b
    ws[_WV2] = v2b
    for i in range(n):
        if it < mt:
            tp = _t_end(w[_WTS + it], tp, ath)
            it += _ONE
            w[_WT + it] = tp
        kk = k0 + i
        ic = ws[_WI + i]
        z1 = zb - ic * kz
        v1b = _rc(ic, v1b, r1, a1, ph1, ph1x2, pp1, g1)[0]
        v2b = _rc(ic, v2b, r2, a2, ph2, ph2x2, pp2, g2)[0]
        zb = z1
        o_soc[kk] = z1
        o_v1[kk] = v1b
        o_v2[kk] = v2b
        ws[_WZ + i + _ONE] = z1
        ws[_WV1 + i + _ONE] = v1b
        ws[_WV2 + i + _ONE] = v2b
        if not (zlo < z1 < zhi):
            j1 = _piece(z1, jb, _OLO, _OHI)
            if j1 != jb:
                pcs[npc] = i
                pcj[npc] = j1
                npc += _ONE
                jb = j1
                zlo, zhi = _zlim(jb, z_dis, z_ch)
            if not (z_dis < z1 < z_ch):
                m = i + _ONE
                break
    while it < mt:
        tp = _t_end(w[_WTS + it], tp, ath)
        it += _ONE
        w[_WT + it] = tp
    return m, npc, zb, jb, v1b, v2b, tp


@njit(cache=True, error_model="numpy")
def _fast_current(rq, tar, tmask, zc, j, orf, du, e0, v1c, v2c, tc, sp, dt, cq, idt, kz, z_dis, z_ch, ath, phg, tsafe,
                  outs, o_flag):
    """Current mode with step parameters that do not depend on the state, in optimistic blocks (module docstring):
    the same steps and numbers as the step-by-step loop of :func:`_cell`. Returns the final SOC, RC voltages and
    temperature (K)."""
    o_v, o_vend, o_i, o_soc, o_t, o_v1, o_v2, o_qirr, o_qrev, o_qamb, o_prc, o_p = outs
    nt = np.uint64(rq.size)
    tconst = tmask == 0
    tmu = np.uint64(0) if tconst else ~np.uint64(0)
    hidt = 0.5 * idt
    # two blocks in flight: P (temperatures and outputs being completed) and B (the next one, its SOC and RC
    # voltages stepped together with P's temperatures: two short recurrences in one loop, their latencies overlap)
    wp = np.empty(_NW * _NBW)  # scratch of P (rows _W*)
    wb = np.empty(_NW * _NBW)
    pcp = np.empty(_NB, np.uint64)  # the steps of P that leave their OCV piece
    pjp = np.empty(_NB, np.uint64)  # the piece they end in
    pcb = np.empty(_NB, np.uint64)
    pjb = np.empty(_NB, np.uint64)
    k = np.uint64(0)
    nb = _NB
    exact = True  # the first step: the optimistic passes read the state at a step's start from the last step
    while k < nt:
        if exact:
            zc, j, orf, du, e0, v1c, v2c, tc, flag, ic, vm, ve, qi, qr, qa, prc = _exact_step(
                rq[k], tar[k & tmu], zc, j, orf, du, e0, v1c, v2c, tc, sp, dt, cq, idt, kz, z_dis, z_ch, ath, phg,
                tsafe)
            _put(k, flag, ic, vm, ve, qi, qr, qa, prc, zc, tc, v1c, v2c, o_v, o_vend, o_i, o_soc, o_t, o_v1, o_v2,
                 o_qirr, o_qrev, o_qamb, o_prc, o_p, o_flag)
            k += _ONE
            if flag & _F_LIM:  # a limit acted: go on step by step, then with short blocks
                nb = _NB0
            else:
                exact = not (z_dis < zc < z_ch)
            continue
        # ---- block P from k: its states (SOC, RC voltages) as if no SOC, voltage or temperature limit acted
        k0p = k
        n1p = min(nb, nt - k0p)
        nb = min(nb + nb, _NB)
        _block_start(rq, o_i, o_flag, wp, k0p, n1p)
        jp = j  # P's OCV piece at its start
        mp, npcp, zb, jb, v1b, v2b, _ = _block_states(k0p, n1p, zc, j, v1c, v2c, kz, sp, z_dis, z_ch, o_soc, o_v1, o_v2,
                                                      wp, pcp, pjp, wp, _ZERO, tc, ath)
        _block_heat(k0p, mp, tar, tconst, wp, sp)
        wp[_WT] = tc
        wp[_WE] = e0
        while True:
            # ---- P's temperatures, and the states of the next block B if P ran to its end
            k0b = k0p + mp
            haveb = mp == n1p and k0b < nt
            n1b = np.uint64(0)
            if haveb:
                n1b = min(nb, nt - k0b)
                nb = min(nb + nb, _NB)
                _block_start(rq, o_i, o_flag, wb, k0b, n1b)
            mb, npcb, zb, jb, v1b, v2b, _ = _block_states(k0b, n1b, zb, jb, v1b, v2b, kz, sp, z_dis, z_ch, o_soc, o_v1,
                                                          o_v2, wb, pcb, pjb, wp, mp, tc, ath)
            # ---- P's outputs and limit tests, elementwise between the steps that leave their OCV piece (those
            # exactly), up to the first step where a limit acts
            stop = mp  # the steps before stop are final
            failed = False
            done = False  # the state at stop is set (by an exact step)
            s = np.uint64(0)
            js = jp
            q = np.uint64(0)
            while True:
                e = pcp[q] if q < npcp else mp
                if e > s:
                    f = _block_outputs(k0p, s, e, _OX[js], _OW[js], _OY[js], _ODY[js], wp, sp, phg, tsafe, hidt, outs)
                    if f < e:
                        stop = f
                        failed = True
                        break
                if q == npcp:
                    break
                kk = k0p + e
                zs = o_soc[kk - _ONE]
                orf_s = _OY[js] + (zs - _OX[js]) / _OW[js] * _ODY[js]
                z1, j1, o1, d1, e1, v1e, v2e, t1, flag, ic, vm, ve, qi, qr, qa, prc = _exact_step(
                    rq[kk], tar[kk & tmu], zs, js, orf_s, 0.0, wp[_WE + e], o_v1[kk - _ONE], o_v2[kk - _ONE],
                    wp[_WT + e], sp, dt, cq, idt, kz, z_dis, z_ch, ath, phg, tsafe)
                _put(kk, flag, ic, vm, ve, qi, qr, qa, prc, z1, t1, v1e, v2e, o_v, o_vend, o_i, o_soc, o_t, o_v1,
                     o_v2, o_qirr, o_qrev, o_qamb, o_prc, o_p, o_flag)
                if flag & _F_LIM:
                    stop = e + _ONE
                    failed = done = True
                    zc, j, orf, du, e0, v1c, v2c, tc = z1, j1, o1, d1, e1, v1e, v2e, t1
                    break
                wp[_WE + e + _ONE] = e1
                js = j1
                s = e + _ONE
                q += _ONE
            # ---- the state at stop
            if not done and stop > 0:
                kk = k0p + stop - _ONE
                zc, v1c, v2c, tc, e0, j = o_soc[kk], o_v1[kk], o_v2[kk], wp[_WT + stop], wp[_WE + stop], js
                orf = _OY[j] + (zc - _OX[j]) / _OW[j] * _ODY[j]
            k = k0p + stop
            if failed:  # B is void: on step by step from stop
                exact = True
                nb = _NB0
                break
            if not haveb:
                exact = mp < n1p  # the SOC limits may act
                break
            # ---- B becomes P
            _block_heat(k0b, mb, tar, tconst, wb, sp)
            wb[_WT] = tc
            wb[_WE] = e0
            wp, wb = wb, wp
            pcp, pcb = pcb, pcp
            pjp, pjb = pjb, pjp
            k0p, n1p, mp, npcp, jp = k0b, n1b, mb, npcb, j
    return zc, v1c, v2c, tc


@njit(cache=True, error_model="numpy", inline="always")
def _cell(mode, fast, c, req, tamb, dt, z, v1, v2, tk, cap_scale, r_scale, o, oflag):
    """Step cell ``c`` over all steps (``twin.battery.cell.run_kernel`` for one cell, the parameter set compiled in);
    ``fast``: in current mode, the optimistic blocks of :func:`_fast_current` where the parameter set allows."""
    nt = req.shape[1]
    rq = req[c if req.shape[0] > 1 else 0]
    tar = tamb[c if tamb.shape[0] > 1 else 0]
    tmask = -1 if tamb.shape[1] > 1 else 0  # (n or 1, 1): one ambient for every step (index k & 0)
    outs = (o[0, c], o[1, c], o[2, c], o[3, c], o[4, c], o[5, c], o[6, c], o[7, c], o[8, c], o[9, c], o[10, c],
            o[11, c])  # v, v_end, i, soc, t_degc, v1, v2, q_irr, q_rev, q_amb, p_rc, p
    o_v, o_vend, o_i, o_soc, o_t, o_v1, o_v2, o_qirr, o_qrev, o_qamb, o_prc, o_p = outs
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
    # above z_dis a step at the largest discharge current leaves charge, below z_ch one at the largest charge
    # current leaves room (margin 1e-9 relative for rounding)
    z_dis = _IMDIS * kz * (1.0 + 1e-9)
    z_ch = 1.0 - _IMCH * kz * (1.0 + 1e-9)
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
    cache = (np.nan, 1.0, 1.0, 1.0, np.nan, 0.0, 0.0, np.nan, 0.0, 0.0)  # Taylor anchors of _params
    if _FAST and mode == 0 and fast:
        jr, cache, sp = _params(zc, tc, jr, cache, rsc, dt, idt, itref, a1f, m1f, a2f, m2f)  # the same every step
        zc, v1c, v2c, tc = _fast_current(rq, tar, tmask, zc, j, orf, du, e0, v1c, v2c, tc, sp, dt, cq, idt, kz, z_dis,
                                         z_ch, ath, phg, tsafe, outs, o_flag)
    else:
        for k in range(nt):
            # parameters at the step's initial SOC and temperature
            jr, cache, sp = _params(zc, tc, jr, cache, rsc, dt, idt, itref, a1f, m1f, a2f, m2f)
            zc, j, orf, du, e0, v1c, v2c, tc, flag, ic, vm, ve, qi, qr, qa, prc = _step(
                mode, rq[k], tar[k & tmask], zc, j, orf, du, e0, v1c, v2c, tc, sp, dt, cq, idt, kz, z_dis, z_ch, ath,
                phg, tsafe)
            # _put written out: the arrays are bound once, outside the loop (reference counting out of the loop)
            o_v[k] = vm
            o_vend[k] = ve
            o_i[k] = ic
            o_p[k] = vm * ic
            o_qirr[k] = qi
            o_qrev[k] = qr
            o_qamb[k] = qa
            o_prc[k] = prc
            o_flag[k] = flag
            o_soc[k] = zc
            o_t[k] = tc - 273.15
            o_v1[k] = v1c
            o_v2[k] = v2c
    z[c], v1[c], v2[c], tk[c] = zc, v1c, v2c, tc


@njit(cache=True, error_model="numpy")
def _cell_current(c, fast, req, tamb, dt, z, v1, v2, tk, cap_scale, r_scale, o, oflag):
    _cell(0, fast, c, req, tamb, dt, z, v1, v2, tk, cap_scale, r_scale, o, oflag)


@njit(cache=True, error_model="numpy")
def _cell_power(c, req, tamb, dt, z, v1, v2, tk, cap_scale, r_scale, o, oflag):
    _cell(1, False, c, req, tamb, dt, z, v1, v2, tk, cap_scale, r_scale, o, oflag)


@njit(cache=True, error_model="numpy")
def run_serial(mode, req, tamb, dt, z, v1, v2, tk, cap_scale, r_scale, o, oflag):
    """Step ``n`` cells one after another on the calling thread (arguments as :func:`run_parallel`)."""
    for c in range(z.size):
        if mode == 1:
            _cell_power(c, req, tamb, dt, z, v1, v2, tk, cap_scale, r_scale, o, oflag)
        else:
            _cell_current(c, mode == 0, req, tamb, dt, z, v1, v2, tk, cap_scale, r_scale, o, oflag)


@njit(cache=True, error_model="numpy", parallel=True)
def run_parallel(mode, req, tamb, dt, z, v1, v2, tk, cap_scale, r_scale, o, oflag):
    """Step ``n`` independent cells over ``nt`` steps of ``dt`` s on numba's threads; states updated in place.

    ``mode`` 0: ``req`` in A, 1: in W (positive discharging), 2: in A, step by step (``_MODE_CURRENT_EXACT``);
    shape (1 or n, nt); ``tamb`` (1 or n, nt) in K; ``z, v1, v2, tk`` (n,) initial SOC, RC voltages (V),
    temperature (K); ``cap_scale, r_scale`` (n,); ``o`` (12, n, nt): the float outputs in the order of
    ``twin.battery.cell._FLOAT_OUT`` (``t_degc`` in degC), then ``p``; ``oflag`` (n, nt) int32.
    """
    for c in prange(z.size):
        ci = np.int64(c)  # prange's index is unsigned
        if mode == 1:
            _cell_power(ci, req, tamb, dt, z, v1, v2, tk, cap_scale, r_scale, o, oflag)
        else:
            _cell_current(ci, mode == 0, req, tamb, dt, z, v1, v2, tk, cap_scale, r_scale, o, oflag)
