"""Numba kernel of the battery system model (see :mod:`twin.battery.system` for the model and its definitions).

Layout: ``nc`` containers, each with ``nr`` racks (strings on the container's DC bus), each rack with ``ne``
modelled elements in series. An element stands for ``s_mult`` identical cells in series and ``p_mult`` in parallel
(every cell: 1 and the rack's parallel count; one element per rack or per container: the whole string).

Per step and container: the affine model of every element's voltage in its current (from the step's parameters,
summed per rack) gives the DC bus solution (rack voltages equal, currents sum to the request) and turns every limit
into a bound on the container current; then per rack one loop steps every element exactly at its rack's current
(_p2), a second evaluates the next step's parameters at the new state (_p3) and a third their affine model and bounds
(_p4). If the exact step breaks a limit that the affine model did not see (an OCV table breakpoint crossed within the
step), the step's parameters are evaluated again and the container current is reduced by bisection (rare). Then the rack and air nodes
of the thermal network are advanced (backward Euler) with the HVAC.

What makes the element loops fast (LLVM vectorises them across elements; about 10 ns per cell-step on one thread of
the 2-core development machine, against 30 ns for separate parameter and step passes with tables evaluated in full):

- Three loops, not one: each holds few enough values for the 32 vector registers. Fused into one loop (which reads
  every row once) they ran at 12 ns per cell-step, the spills to the stack costing more than the rows read twice;
  two loops (step; parameters and bounds) at 11.
- Tables: every SOC table (OCV, dU/dT, resistances, time constants, BMS SOC taper) is linear within each piece of
  the union of their grids, and an element's SOC stays in one piece for hundreds of steps, so each element carries
  its piece's coefficients (rows W_CF..) and a table costs one multiply-add. Within a piece the step means of OCV
  and dU/dT are the means of their ends (exact); a path that crosses a breakpoint is found before the loop
  (_n_leaving) and corrected by a scalar fix-up to the exact integral (_repiece). The BMS temperature derating,
  with its charge and discharge windows, is cached per element the same way (_t_repiece).
- Exponentials: the Arrhenius factors and the RC decays ``exp(-dt/tau)`` change little from step to step, so the loop
  updates each from the previous step's by ``exp(x + d) = exp(x) (1 + expm1(d))``, ``expm1(d)`` from its Taylor series
  (|d| <= 1e-3: relative error below 1e-17); where an exponent moved further, the rack's parameters are evaluated
  afresh (_p1, an exp by scaling and squaring).
- No reference counting in the per-step functions (numba's ``_nrt=False``; they allocate nothing): numba would
  count the references of every row slice they pass to the loops, some 200 calls of atomic operations per rack and
  step, which doubled the fixed cost of a rack-step (480 instead of 240 ns with 8 cells per rack).
- Few accumulators and rows: counts packed in one sum, the heat to the rack node from the cells' heat balance, the
  RC losses from the energy the pairs take in less what they store, SOC bounds from the state, the state in two
  buffers (no copies).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

try:  # let element loops declare that their array arguments do not overlap (LLVM then vectorises them)
    from numba.core.cpu import CPUTargetOptions
    from numba.core.options import _mapping

    if not hasattr(CPUTargetOptions, "noalias"):
        CPUTargetOptions.noalias = _mapping("noalias")
    _NA = {"noalias": True}
except ImportError:  # pragma: no cover - other numba versions: correct, only slower
    _NA = {}

MODE_CURRENT, MODE_POWER = 0, 1
F_CUR, F_SOC, F_VOLT, F_TEMP, F_POW, F_NONE, F_BISECT, F_OPEN = 1, 2, 4, 8, 16, 32, 64, 128

# container outputs (index in the first axis of o_cont)
C_V, C_I, C_P, C_PCH, C_PDIS, C_TAIR, C_QHVAC, C_PAUX, C_QIRR, C_QREV, C_PRC, C_DG, C_QWALL, C_HSTORE = range(14)
N_CONT = 14
# rack outputs (o_rack)
R_I, R_V, R_SOCMIN, R_SOCMAX, R_SOCMEAN, R_VMIN, R_VMAX, R_TMAX, R_TMEAN, R_TRACK = range(10)
N_RACK = 10
# element outputs (o_el), when recorded
E_V, E_VEND, E_I, E_SOC, E_T, E_QIRR, E_QREV, E_QAMB, E_PRC = range(9)
N_EL = 9

# scal (cell): 0 Q (A s), 1 T_ref (K), 2-4 Ea/R (K), 5 C_th (J/K), 6 R_th (K/W), 7 v_min, 8 v_max, 9 i_ch, 10 i_dis,
# 11 T_min, 12 T_max (K), 13 hysteresis (V)
# th (container thermal, SI, K): 0 enabled, 1 C_rack (J/K), 2 G_rack_air (W/K), 3 C_air (J/K), 4 UA wall (W/K),
# 5 Q_cool_max (W), 6 Q_heat_max (W), 7 T_set_cool (K), 8 T_set_heat (K), 9 COP_cool at 35 degC, 10 dCOP/dK,
# 11 COP_heat, 12 P_fixed (W), 13 COP_min


@njit(cache=True, error_model="numpy", fastmath=True, inline="always")
def _expm1(y):
    """exp(y) - 1 for |y| <= 51.2 (clamped), by Taylor series on y/256 and eight squarings (vectorisable).

    Relative error below about 3e-14 over the range; ``1 + expm1`` is exp to the same absolute accuracy.
    """
    y = min(max(y, -51.2), 51.2)
    r = y * 0.00390625
    p = r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (
        1.0 / 5040.0 + r * (1.0 / 40320.0 + r * (1.0 / 362880.0 + r * (1.0 / 3628800.0 + r / 39916800.0))))))))))
    p = p * (2.0 + p)
    p = p * (2.0 + p)
    p = p * (2.0 + p)
    p = p * (2.0 + p)
    p = p * (2.0 + p)
    p = p * (2.0 + p)
    p = p * (2.0 + p)
    p = p * (2.0 + p)
    return p


# --- table functions: generated per parameter set by twin.battery._codegen (constants compiled in) ---
# The stubs below only let this module import; the kernel that runs is the generated module, which replaces this
# block. Every SOC table (OCV, dU/dT, R0, R1, tau1, R2, tau2, BMS SOC taper) is piecewise linear; on the union of
# their grids ``_UG`` all of them are linear within each piece, so piece ``k`` (``_PLO[k] <= z < _PHI[k]``; the first
# and last pieces reach to -/+ infinity, where every table is constant) holds each table as ``a + b z`` in
# ``_PCF[k]`` (columns CF_*). Likewise the BMS derating over the cell temperature (K) with its charge and discharge
# windows (zero outside): ``_TG``, ``_TLO``, ``_THI``, ``_TCF`` (charge a, b, discharge a, b).

_UG = np.array([0.0, 1.0])
_PLO = np.array([-1e300, 0.0, 1.0])
_PHI = np.array([0.0, 1.0, 1e300])
_PCF = np.zeros((3, 18))


_TG = np.array([273.15])
_TLO = np.array([-1e300, 273.15])
_THI = np.array([273.15, 1e300])
_TCF = np.zeros((2, 4))
_SAME01 = False  # activation energies of R0 and R1 equal (their Arrhenius factors one)
# resistances and time constants that are constant in SOC (flag, value): compiled in, their rows not read
_R0K = _R1K = _T1K = _R2K = _T2K = False
_R0V = _R1V = _T1V = _R2V = _T2V = 0.0
_SAME12 = False  # of R1 and R2
# --- end of table functions ---


# columns of _PCF (each table as a + b z within a piece): OCV at T_ref (V), dU/dT (V/K), R0, R1 (ohm), tau1 (s),
# R2 (ohm), tau2 (s) at T_ref, BMS SOC taper of charge and discharge
(CF_OA, CF_OB, CF_DA, CF_DB, CF_R0A, CF_R0B, CF_R1A, CF_R1B, CF_T1A, CF_T1B, CF_R2A, CF_R2B, CF_T2A, CF_T2B,
 CF_BCA, CF_BCB, CF_BDA, CF_BDB) = range(18)
N_CF = 18

# state rows of the caller's array (st[c, r, row, j])
S_Z, S_V1, S_V2, S_T, S_Q, S_RS = range(6)
N_S = 6
# rows of the per-container work array (wk[r, row, j]), one array per row in the element loops (LLVM vectorises
# them across elements when no two arguments alias). W_Z .. W_T hold two buffers (row + parity): the state at the
# start of the step and the state after it; the step's parameters are rewritten for the next step by _p3 and _p4.
W_Z, W_V1, W_V2, W_T = 0, 2, 4, 6
W_KZ, W_QDT, W_RS = 8, 9, 10
(W_R0, W_R1, W_R2, W_M1, W_M2, W_PH1, W_PH2, W_C1, W_C2, W_OCVT, W_DU, W_DCUR, W_DVOL, W_CCUR, W_CVOL,
 W_XA, W_F0, W_F1, W_F2, W_Y1, W_Y2, W_VM, W_VE, W_QI, W_QR, W_QA, W_PRC, W_CU, W_CD, W_LO, W_HI, W_TLO, W_THI, W_TCA,
 W_TCB, W_TDA, W_TDB) = range(11, 48)
W_CF = 48
N_W = W_CF + N_CF
# constants of the element loops (kc[...])
(K_DT, K_TREF, K_RTH, K_ATH, K_PHTH, K_GRTH, K_GCTH, K_VMIN, K_VMAX, K_TMIN, K_TMAX, K_VTOL, K_LO, K_HI, K_IMDIS,
 K_IMCH, K_TCL, K_TCH, K_TDL, K_TDH, K_E0, K_E1, K_E2) = range(23)
N_K = 23
_VTOL = 1e-9  # V or K: a limit excess the exact step may show where the affine model put the current at the limit
_DZ_END = 1e-7  # |SOC change| below which the step means of OCV and dU/dT are the means of their ends


_KMASK = np.int64(0x7FFFFFFFFFFFFFFF)


@njit(cache=True, error_model="numpy", fastmath=True, inline="always")
def _min8(x, n, sg=1.0):
    """Minimum of x[:n] (with ``sg = -1``: the maximum). LLVM does not vectorise a floating-point minimum over a
    loop, but does an integer one: the bits of a double, read as an integer and with the lower 63 bits flipped where
    the sign bit is set, are in the order of the doubles (Herf 2001), so the minimum runs over those keys."""
    xi = x.view(np.int64)
    if sg > 0.0:
        m = np.int64(0x7FFFFFFFFFFFFFFF)
        for j in range(n):
            b = xi[j]
            m = min(m, b ^ ((b >> 63) & _KMASK))
    else:
        m = np.int64(-0x8000000000000000)
        for j in range(n):
            b = xi[j]
            m = max(m, b ^ ((b >> 63) & _KMASK))
    return np.int64(m ^ ((m >> 63) & _KMASK)).view(np.float64)


@njit(cache=True, error_model="numpy")
def _n_le(xs, x):
    """The number of points of the increasing grid xs that are <= x: the index of the piece holding x."""
    lo = 0
    hi = xs.size
    while lo < hi:
        mid = (lo + hi) >> 1
        if xs[mid] <= x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True, error_model="numpy")
def _find_piece(z):
    """Index of the piece of the union SOC grid holding z."""
    return _n_le(_UG, z)


@njit(cache=True, error_model="numpy")
def _path_mean(z0, z1, ca, cb):
    """Exact mean of the table in columns (ca, cb) of _PCF over the SOC interval between z0 and z1 (z0 != z1)."""
    zl = min(z0, z1)
    zr = max(z0, z1)
    s = 0.0
    for k in range(_find_piece(zl), _find_piece(zr) + 1):
        a = max(zl, _PLO[k])
        b = min(zr, _PHI[k])
        s += (b - a) * (_PCF[k, ca] + _PCF[k, cb] * 0.5 * (a + b))
    return s / (zr - zl)


@njit(cache=True, error_model="numpy")
def _set_piece(P, j, k):
    P[W_LO, j] = _PLO[k]
    P[W_HI, j] = _PHI[k]
    for q in range(N_CF):
        P[W_CF + q, j] = _PCF[k, q]


@njit(cache=True, error_model="numpy", fastmath=True, _nrt=False, **_NA)
def _n_leaving(z, kz, lo, hi, ii):
    """How many elements' SOC paths at cell current ii leave the table piece cached for them."""
    n = 0.0
    for j in range(z.size):
        z0 = z[j]
        z1 = z0 - ii * kz[j]
        n += 1.0 if (min(z0, z1) < lo[j]) | (max(z0, z1) >= hi[j]) else 0.0
    return n


@njit(cache=True, error_model="numpy")
def _repiece(P, p, ii, t_ref, fix, nfix, ne):
    """Elements whose SOC path at cell current ii leaves their cached piece: cache the piece of the end SOC, and
    correct the step means of OCV and dU/dT (rows W_CU, W_CD) to the exact path integral across the breakpoints
    (the element loop takes the mean of the ends, exact within one piece). Clears the previous corrections (the
    ``nfix`` indices in ``fix``) first; returns the new count."""
    for q in range(nfix):
        P[W_CU, fix[q]] = 0.0
        P[W_CD, fix[q]] = 0.0
    n = 0
    for j in range(ne):
        z0 = P[W_Z + p, j]
        z1 = z0 - ii * P[W_KZ, j]
        if min(z0, z1) >= P[W_LO, j] and max(z0, z1) < P[W_HI, j]:
            continue
        _set_piece(P, j, _find_piece(z1))
        fix[n] = j
        n += 1
        if abs(z0 - z1) <= _DZ_END:
            continue
        dtk = P[W_T + p, j] - t_ref
        u_ex = _path_mean(z0, z1, CF_OA, CF_OB)
        d_ex = _path_mean(z0, z1, CF_DA, CF_DB)
        du1 = P[W_CF + CF_DA, j] + P[W_CF + CF_DB, j] * z1
        ocv1 = P[W_CF + CF_OA, j] + P[W_CF + CF_OB, j] * z1 + dtk * du1
        P[W_CU, j] = u_ex + dtk * d_ex - 0.5 * (P[W_OCVT, j] + ocv1)
        P[W_CD, j] = d_ex - 0.5 * (P[W_DU, j] + du1)
    return n


@njit(cache=True, error_model="numpy", fastmath=True, inline="always")
def _em1(d):
    """expm1(d) for |d| <= _DINC by its Taylor series to d^4 (relative error below 1e-17)."""
    return d * (1.0 + d * (0.5 + d * (1.0 / 6.0 + d * (1.0 / 24.0))))


_DINC = 1e-3  # largest change of an exponent from the previous step that the incremental update may take
_C_FAR = 65536.0  # counts packed in one accumulator (exact: each count < 65536)
_C_TP = 65536.0 * 65536.0


@njit(cache=True, error_model="numpy", inline="always")
def _counts(codes):
    """Unpack the counts of _p2 and _p3: elements breaking a limit, far exponentials, left derating pieces."""
    n_tp = math.floor(codes / _C_TP)
    rest = codes - n_tp * _C_TP
    n_far = math.floor(rest / _C_FAR)
    return rest - n_far * _C_FAR, n_far, n_tp


@njit(cache=True, error_model="numpy", fastmath=True, _nrt=False, **_NA)
def _sums3(a, b, c):
    """Sums of three rows."""
    sa = sb = sc = 0.0
    for j in range(a.size):
        sa += a[j]
        sb += b[j]
        sc += c[j]
    return sa, sb, sc


@njit(cache=True, error_model="numpy", fastmath=True, inline="always")
def _par_a(z0, t0, rsj, r0ca, r0cb, r1ca, r1cb, t1ca, t1cb, r2ca, r2cb, t2ca, t2cb, f0, f1, f2, kt):
    """Resistances (ohm) and time constants (s) at SOC z0 (the tables of its cached piece) and the Arrhenius factors
    f0-f2; ``y_i = -dt / tau_i``, and 1 / (R1 R2) (one division serves both)."""
    r0 = (_R0V if _R0K else r0ca + r0cb * z0) * f0 * rsj
    r1 = (_R1V if _R1K else r1ca + r1cb * z0) * f1 * rsj
    tau1 = (_T1V if _T1K else t1ca + t1cb * z0) * f1
    r2 = (_R2V if _R2K else r2ca + r2cb * z0) * f2 * rsj
    tau2 = (_T2V if _T2K else t2ca + t2cb * z0) * f2
    tt = tau1 * tau2
    rr = r1 * r2
    dd = 1.0 / (tt * rr)  # divisions are the slowest vector operations
    dtt = -kt[K_DT] * dd * rr
    return r0, r1, r2, tau1, tau2, dtt * tau2, dtt * tau1, dd * tt


@njit(cache=True, error_model="numpy", fastmath=True, inline="always")
def _par_b(z0, t0, v10, v20, kz, r0, r1, r2, tau1, tau2, m1, m2, ir12, oa, ob, da, db, bca, bcb, bda, bdb, tca, tcb, tda,
           tdb, kt):
    """The rest of an element's step parameters (exact RC factors from m_i = 1 - exp(-dt/tau_i), Plett 2015, 3.4)
    and, by _par_c, its affine models and bounds."""
    idt = 1.0 / kt[K_DT]
    ph1 = m1 * tau1 * idt
    ph2 = m2 * tau2 * idt
    ocv, du, e_m, g_m, dcur, dvol, ccur, cvol = _par_c(z0, t0, v10, v20, kz, r0, r1, r2, m1, m2, ph1, ph2, oa, ob,
                                                       da, db, bca, bcb, bda, bdb, tca, tcb, tda, tdb, kt)
    return ph1, ph2, tau1 * r2 * ir12, tau2 * r1 * ir12, ocv, du, e_m, g_m, dcur, dvol, ccur, cvol


@njit(cache=True, error_model="numpy", fastmath=True, inline="always")
def _par_c(z0, t0, v10, v20, kz, r0, r1, r2, m1, m2, ph1, ph2, oa, ob, da, db, bca, bcb, bda, bdb, tca, tcb, tda, tdb,
           kt):
    """An element's OCV (V) and dU/dT (V/K) at its state, the affine models ``v(i) = e - g i`` of its step-mean
    voltage and the bounds on its cell current (A): BMS current limit (derated) and voltage (start, mean and end of
    the step), each way (the SOC bounds are taken from the state by _bounds). Branch-free."""
    du = da + db * z0
    a1 = 1.0 - m1
    a2 = 1.0 - m2
    ocv = oa + ob * z0 + (t0 - kt[K_TREF]) * du
    slope = ob  # dOCV/dSOC of the affine model (its temperature term, < 1e-5 of R, is left out)
    e_s = ocv - v10 - v20
    e_m = ocv - v10 * ph1 - v20 * ph2
    g_m = r0 + r1 * (1.0 - ph1) + r2 * (1.0 - ph2) + 0.5 * slope * kz
    e_e = ocv - v10 * a1 - v20 * a2
    g_e = r0 + r1 * m1 + r2 * m2 + slope * kz
    ig = 1.0 / (r0 * g_m * g_e)
    i_s = g_m * g_e * ig
    i_m = r0 * g_e * ig
    i_e = r0 * g_m * ig
    lo = kt[K_LO]
    hi = kt[K_HI]
    dvol = min(min((e_s - lo) * i_s, (e_m - lo) * i_m), (e_e - lo) * i_e)
    cvol = min(min((hi - e_s) * i_s, (hi - e_m) * i_m), (hi - e_e) * i_e)
    return (ocv, du, e_m, g_m, kt[K_IMDIS] * (tda + tdb * t0) * (bda + bdb * z0), dvol,
            kt[K_IMCH] * (tca + tcb * t0) * (bca + bcb * z0), cvol)


@njit(cache=True, error_model="numpy", fastmath=True, _nrt=False, **_NA)
def _p1(z, t, v1, v2, kz, qdt, rs, oa, ob, da, db, r0ca, r0cb, r1ca, r1cb, t1ca, t1cb, r2ca, r2cb, t2ca, t2cb, bca,
        bcb, bda, bdb, tca, tcb, tda, tdb, r0o, r1o, r2o, m1o, m2o, ph1o, ph2o, c1o, c2o, ocvo, duo, dcur, dvol, ccur,
        cvol, xo, f0o, f1o, f2o, y1o, y2o, kc):
    """Every element's step parameters and bounds at the state, the exponentials evaluated afresh (Arrhenius,
    REFERENCE.md; exact RC update); returns the sums of e_m and g_m. The element loop of _p3 updates the same
    exponentials from these by their change (rows xo .. y2o)."""
    kt = (kc[0], kc[1], kc[2], kc[3], kc[4], kc[5], kc[6], kc[7], kc[8], kc[9], kc[10], kc[11], kc[12], kc[13],
          kc[14], kc[15], kc[16], kc[17], kc[18], kc[19], kc[20], kc[21], kc[22])
    itr = 1.0 / kt[K_TREF]
    se = 0.0
    sg = 0.0
    for j in range(z.size):
        z0 = z[j]
        t0 = t[j]
        x = 1.0 / t0 - itr
        f0 = 1.0 + _expm1(kt[K_E0] * x)
        f1 = 1.0 + _expm1(kt[K_E1] * x)
        f2 = 1.0 + _expm1(kt[K_E2] * x)
        r0, r1, r2, tau1, tau2, y1, y2, ir12 = _par_a(z0, t0, rs[j], r0ca[j], r0cb[j], r1ca[j], r1cb[j], t1ca[j],
                                                      t1cb[j], r2ca[j], r2cb[j], t2ca[j], t2cb[j], f0, f1, f2, kt)
        m1 = -_expm1(y1)
        m2 = -_expm1(y2)
        (ph1o[j], ph2o[j], c1o[j], c2o[j], ocvo[j], duo[j], e_m, g_m, dcur[j], dvol[j], ccur[j],
         cvol[j]) = _par_b(z0, t0, v1[j], v2[j], kz[j], r0, r1, r2, tau1, tau2, m1, m2, ir12, oa[j], ob[j], da[j],
                           db[j], bca[j], bcb[j], bda[j], bdb[j], tca[j], tcb[j], tda[j], tdb[j], kt)
        r0o[j] = r0
        r1o[j] = r1
        r2o[j] = r2
        m1o[j] = m1
        m2o[j] = m2
        xo[j] = x
        f0o[j] = f0
        f1o[j] = f1
        f2o[j] = f2
        y1o[j] = y1
        y2o[j] = y2
        se += e_m
        sg += g_m
    return se, sg


@njit(cache=True, error_model="numpy", fastmath=True, _nrt=False, **_NA)
def _p2(z, t, v1, v2, zn, tn, v1n, v2n, kz, cu, cd, oa, ob, da, db, r0a, r1a, r2a, m1a, m2a, ph1a, ph2a, c1a, c2a,
        ocva, dua, vmo, veo, qio, qro, qao, prco, ii, hs, tr, kc, rec):
    """Exact step of each element at cell current ``ii`` (see the module docstring of twin.battery.cell), from the
    parameters in r0a .. dua; the new state goes to zn .. v2n. Returns the sums over the elements of v_mean, q_irr,
    q_rev, p_rc and the Gibbs release (W), and the number of elements that break a limit. The next step's
    parameters and bounds are _p3's and _p4's (in one loop with this one, the loop held too many values for the
    registers: 12 instead of 10 ns per cell-step)."""
    kt = (kc[0], kc[1], kc[2], kc[3], kc[4], kc[5], kc[6], kc[7], kc[8], kc[9], kc[10], kc[11], kc[12], kc[13],
          kc[14], kc[15], kc[16], kc[17], kc[18], kc[19], kc[20], kc[21], kc[22])
    dt = kt[K_DT]
    idt = 1.0 / dt
    t_ref = kt[K_TREF]
    rth = kt[K_RTH]
    ath = kt[K_ATH]
    phth = kt[K_PHTH]
    grth = kt[K_GRTH]
    gcth = kt[K_GCTH]
    vmin = kt[K_VMIN]
    vmax = kt[K_VMAX]
    tmin = kt[K_TMIN]
    tmax = kt[K_TMAX]
    vtol = kt[K_VTOL]
    s_v = s_qi = s_qr = s_prc = s_dg = codes = 0.0  # few accumulators: each holds a register
    for j in range(z.size):
        z0 = z[j]
        kzj = kz[j]
        z1 = z0 - ii * kzj
        t0 = t[j]
        dtk = t0 - t_ref
        ob1 = ob[j]
        du1 = da[j] + db[j] * z1
        ocv1r = oa[j] + ob1 * z1
        ocv1 = ocv1r + dtk * du1
        ocv0 = ocva[j]
        # step means of OCV and dU/dT over the SOC path: the mean of the ends within one piece of the tables (exact),
        # corrected to the exact integral where the path crosses a breakpoint (rows cu, cd, set by _repiece)
        u = 0.5 * (ocv0 + ocv1) + cu[j]
        d = 0.5 * (dua[j] + du1) + cd[j]
        r0 = r0a[j]
        r1 = r1a[j]
        r2 = r2a[j]
        m1 = m1a[j]
        m2 = m2a[j]
        a1 = 1.0 - m1
        a2 = 1.0 - m2
        ph1 = ph1a[j]
        ph2 = ph2a[j]
        v10 = v1[j]
        v20 = v2[j]
        vi1 = r1 * ii
        vi2 = r2 * ii
        d1 = v10 - vi1
        d2 = v20 - vi2
        v1e = vi1 + d1 * a1
        v2e = vi2 + d2 * a2
        v1m = vi1 + d1 * ph1
        v2m = vi2 + d2 * ph2
        cap1 = c1a[j]
        cap2 = c2a[j]
        e_rc = 0.5 * (cap1 * v1e * v1e + cap2 * v2e * v2e)
        prc = (e_rc - 0.5 * (cap1 * v10 * v10 + cap2 * v20 * v20)) * idt
        ri = r0 * ii
        v_start = ocv0 - hs - v10 - v20 - ri
        v_mean = u - hs - v1m - v2m - ri
        v_end = ocv1 - hs - v1e - v2e - ri
        # the RC pairs' losses are what they take in less what they store (exact for the exact RC update)
        q_irr = ri * ii + hs * ii + ii * (v1m + v2m) - prc
        q_rev = -ii * t0 * d  # Bernardi 1985, I > 0 discharging
        ts = tr + (q_irr + q_rev) * rth
        t1 = ts + (t0 - ts) * ath
        ex = max(vmin - min(min(v_start, v_mean), v_end), max(max(v_start, v_mean), v_end) - vmax)
        ex = max(max(ex, max(t1 + e_rc * gcth - tmax, tmin - t1)), max(-z1, z1 - 1.0))
        codes += 1.0 if ex > vtol else 0.0
        zn[j] = z1
        v1n[j] = v1e
        v2n[j] = v2e
        tn[j] = t1
        vmo[j] = v_mean
        s_v += v_mean
        s_qi += q_irr
        s_qr += q_rev
        s_prc += prc
        s_dg += u * ii
        if rec:
            veo[j] = v_end
            qio[j] = q_irr
            qro[j] = q_rev
            qao[j] = (ts - tr + (t0 - ts) * phth) * grth
            prco[j] = prc
    return s_v, s_qi, s_qr, s_prc, s_dg, codes


@njit(cache=True, error_model="numpy", fastmath=True, _nrt=False, **_NA)
def _p3(zn, tn, v1n, v2n, kz, rs, oa, ob, da, db, r0ca, r0cb, r1ca, r1cb, t1ca, t1cb, r2ca, r2cb, t2ca, t2cb, bca,
        bcb, bda, bdb, tlo, thi, tca, tcb, tda, tdb, r0a, r1a, r2a, m1a, m2a, ph1a, ph2a, c1a, c2a, ocva, dua, dcur,
        dvol, ccur, cvol, xa, f0a, f1a, f2a, y1a, y2a, kc):
    """The next step's parameters and bounds at the new state (zn .. v2n) over the step's own (r0a .. y2a), the
    exponentials updated from the step's by their change (exp(x + d) = exp(x) (1 + expm1(d)), d at most _DINC).
    Returns the sums over the elements of e_m and g_m, and counts in one number (see _counts): elements whose
    exponentials moved too far for the update (then _p1 evaluates the rack afresh) and whose temperature left its
    derating piece."""
    kt = (kc[0], kc[1], kc[2], kc[3], kc[4], kc[5], kc[6], kc[7], kc[8], kc[9], kc[10], kc[11], kc[12], kc[13],
          kc[14], kc[15], kc[16], kc[17], kc[18], kc[19], kc[20], kc[21], kc[22])
    itr = 1.0 / kt[K_TREF]
    idt = 1.0 / kt[K_DT]
    e0 = kt[K_E0]
    e1 = kt[K_E1]
    e2 = kt[K_E2]
    codes = 0.0
    for j in range(zn.size):
        z1 = zn[j]
        t1 = tn[j]
        m1 = m1a[j]
        m2 = m2a[j]
        a1 = 1.0 - m1
        a2 = 1.0 - m2
        x = 1.0 / t1 - itr
        dx = x - xa[j]
        f0 = f0a[j] * (1.0 + _em1(e0 * dx))  # Arrhenius (REFERENCE.md), updated by its change
        f1 = f0 if _SAME01 else f1a[j] * (1.0 + _em1(e1 * dx))
        f2 = f1 if _SAME12 else f2a[j] * (1.0 + _em1(e2 * dx))
        r0, r1, r2, tau1, tau2, y1, y2, ir12 = _par_a(z1, t1, rs[j], r0ca[j], r0cb[j], r1ca[j], r1cb[j], t1ca[j],
                                                      t1cb[j], r2ca[j], r2cb[j], t2ca[j], t2cb[j], f0, f1, f2, kt)
        dy1 = y1 - y1a[j]
        dy2 = y2 - y2a[j]
        m1 = m1 - a1 * _em1(dy1)  # 1 - exp(y + dy) = m - (1 - m) expm1(dy)
        m2 = m2 - a2 * _em1(dy2)
        far = max(max(abs(dy1), abs(dy2)), abs(max(max(e0, e1), e2) * dx))
        codes += _C_FAR if far > _DINC else 0.0
        ph1a[j] = m1 * tau1 * idt
        ph2a[j] = m2 * tau2 * idt
        c1a[j] = tau1 * r2 * ir12
        c2a[j] = tau2 * r1 * ir12
        codes += _C_TP if (t1 < tlo[j]) | (t1 >= thi[j]) else 0.0  # left its derating piece: _t_repiece
        r0a[j] = r0
        r1a[j] = r1
        r2a[j] = r2
        m1a[j] = m1
        m2a[j] = m2
        xa[j] = x
        f0a[j] = f0
        if not _SAME01:
            f1a[j] = f1
        if not _SAME12:
            f2a[j] = f2
        y1a[j] = y1
        y2a[j] = y2
    return codes


@njit(cache=True, error_model="numpy", fastmath=True, _nrt=False, **_NA)
def _p4(zn, tn, v1n, v2n, kz, oa, ob, da, db, bca, bcb, bda, bdb, tca, tcb, tda, tdb, r0a, r1a, r2a, m1a, m2a, ph1a,
        ph2a, ocva, dua, dcur, dvol, ccur, cvol, kc):
    """The next step's affine models and bounds (_par_c) from its parameters (_p3); returns the sums of e_m and
    g_m."""
    kt = (kc[0], kc[1], kc[2], kc[3], kc[4], kc[5], kc[6], kc[7], kc[8], kc[9], kc[10], kc[11], kc[12], kc[13],
          kc[14], kc[15], kc[16], kc[17], kc[18], kc[19], kc[20], kc[21], kc[22])
    s_em = s_gm = 0.0
    for j in range(zn.size):
        ocva[j], dua[j], e_m, g_m, dcur[j], dvol[j], ccur[j], cvol[j] = _par_c(
            zn[j], tn[j], v1n[j], v2n[j], kz[j], r0a[j], r1a[j], r2a[j], m1a[j], m2a[j], ph1a[j], ph2a[j], oa[j],
            ob[j], da[j], db[j], bca[j], bcb[j], bda[j], bdb[j], tca[j], tcb[j], tda[j], tdb[j], kt)
        s_em += e_m
        s_gm += g_m
    return s_em, s_gm


@njit(cache=True, error_model="numpy")
def _t_repiece(P, p, bounds, kc, ne):
    """Elements whose temperature (buffer p) left the derating piece cached for them: cache the piece holding it
    and, with ``bounds``, rewrite their derated current bounds (rows W_DCUR, W_CCUR) as _par_b computes them."""
    for j in range(ne):
        t = P[W_T + p, j]
        if t >= P[W_TLO, j] and t < P[W_THI, j]:
            continue
        lo = _n_le(_TG, t)
        P[W_TLO, j] = _TLO[lo]
        P[W_THI, j] = _THI[lo]
        P[W_TCA, j] = _TCF[lo, 0]
        P[W_TCB, j] = _TCF[lo, 1]
        P[W_TDA, j] = _TCF[lo, 2]
        P[W_TDB, j] = _TCF[lo, 3]
        if bounds:
            z = P[W_Z + p, j]
            P[W_DCUR, j] = kc[K_IMDIS] * (P[W_TDA, j] + P[W_TDB, j] * t) * (P[W_CF + CF_BDA, j] +
                                                                            P[W_CF + CF_BDB, j] * z)
            P[W_CCUR, j] = kc[K_IMCH] * (P[W_TCA, j] + P[W_TCB, j] * t) * (P[W_CF + CF_BCA, j] +
                                                                           P[W_CF + CF_BCB, j] * z)


@njit(cache=True, error_model="numpy", fastmath=True)
def _prime(c, st, wk, kc, p, fix, nfix, rk, s_mult, p_mult):
    """Load container c's element states into buffer p of its work array, cache each element's table piece and
    evaluate the first step's parameters and bounds into ``rk`` (see _bounds)."""
    nr = wk.shape[0]
    ne = st.shape[3]
    dt = kc[K_DT]
    for r in range(nr):
        P = wk[r]
        for j in range(ne):
            P[W_Z + p, j] = st[c, r, S_Z, j]
            P[W_V1 + p, j] = st[c, r, S_V1, j]
            P[W_V2 + p, j] = st[c, r, S_V2, j]
            P[W_T + p, j] = st[c, r, S_T, j]
            P[W_KZ, j] = dt / st[c, r, S_Q, j]
            P[W_QDT, j] = st[c, r, S_Q, j] / dt
            P[W_RS, j] = st[c, r, S_RS, j]
            P[W_CU, j] = 0.0
            P[W_CD, j] = 0.0
            _set_piece(P, j, _find_piece(P[W_Z + p, j]))
            P[W_TLO, j] = np.inf  # no derating piece cached yet
        nfix[r] = 0
        _t_repiece(P, p, False, kc, ne)
        se, sg = _p1_rack(P, p, kc, ne)
        _bounds(P, p, r, se, sg, rk, s_mult, p_mult, ne)


@njit(cache=True, error_model="numpy", fastmath=True, _nrt=False)
def _p1_rack(P, p, kc, n):
    return _p1(P[W_Z + p, :n], P[W_T + p, :n], P[W_V1 + p, :n], P[W_V2 + p, :n], P[W_KZ, :n], P[W_QDT, :n],
               P[W_RS, :n], P[W_CF + CF_OA, :n], P[W_CF + CF_OB, :n], P[W_CF + CF_DA, :n], P[W_CF + CF_DB, :n],
               P[W_CF + CF_R0A, :n], P[W_CF + CF_R0B, :n], P[W_CF + CF_R1A, :n], P[W_CF + CF_R1B, :n],
               P[W_CF + CF_T1A, :n], P[W_CF + CF_T1B, :n], P[W_CF + CF_R2A, :n], P[W_CF + CF_R2B, :n],
               P[W_CF + CF_T2A, :n], P[W_CF + CF_T2B, :n], P[W_CF + CF_BCA, :n], P[W_CF + CF_BCB, :n],
               P[W_CF + CF_BDA, :n], P[W_CF + CF_BDB, :n], P[W_TCA, :n], P[W_TCB, :n], P[W_TDA, :n], P[W_TDB, :n],
               P[W_R0, :n], P[W_R1, :n], P[W_R2, :n], P[W_M1, :n], P[W_M2, :n], P[W_PH1, :n], P[W_PH2, :n],
               P[W_C1, :n], P[W_C2, :n], P[W_OCVT, :n], P[W_DU, :n], P[W_DCUR, :n], P[W_DVOL, :n], P[W_CCUR, :n],
               P[W_CVOL, :n], P[W_XA, :n], P[W_F0, :n], P[W_F1, :n], P[W_F2, :n], P[W_Y1, :n], P[W_Y2, :n], kc)


@njit(cache=True, error_model="numpy", fastmath=True, _nrt=False)
def _p2_rack(P, p, ii, hs, tr, kc, nextp, rec, n):
    """_p2 on rack P (state buffer p), then with ``nextp`` _p3 and _p4 at the new state (buffer 1 - p); returns
    their sums and counts (e_m and g_m 0 without ``nextp``). Callers pass ``rec`` as a literal: numba then compiles
    a variant of _p2 without the recording branch (with a run-time flag LLVM does not vectorise its loop)."""
    q = 1 - p
    s_v, s_qi, s_qr, s_prc, s_dg, codes = _p2(
        P[W_Z + p, :n], P[W_T + p, :n], P[W_V1 + p, :n], P[W_V2 + p, :n], P[W_Z + q, :n], P[W_T + q, :n],
        P[W_V1 + q, :n], P[W_V2 + q, :n], P[W_KZ, :n], P[W_CU, :n], P[W_CD, :n], P[W_CF + CF_OA, :n],
        P[W_CF + CF_OB, :n], P[W_CF + CF_DA, :n], P[W_CF + CF_DB, :n], P[W_R0, :n], P[W_R1, :n], P[W_R2, :n],
        P[W_M1, :n], P[W_M2, :n], P[W_PH1, :n], P[W_PH2, :n], P[W_C1, :n], P[W_C2, :n], P[W_OCVT, :n], P[W_DU, :n],
        P[W_VM, :n], P[W_VE, :n], P[W_QI, :n], P[W_QR, :n], P[W_QA, :n], P[W_PRC, :n], ii, hs, tr, kc, rec)
    s_em = s_gm = 0.0
    if nextp:
        c3 = _p3(
            P[W_Z + q, :n], P[W_T + q, :n], P[W_V1 + q, :n], P[W_V2 + q, :n], P[W_KZ, :n], P[W_RS, :n],
            P[W_CF + CF_OA, :n], P[W_CF + CF_OB, :n], P[W_CF + CF_DA, :n], P[W_CF + CF_DB, :n],
            P[W_CF + CF_R0A, :n], P[W_CF + CF_R0B, :n], P[W_CF + CF_R1A, :n], P[W_CF + CF_R1B, :n],
            P[W_CF + CF_T1A, :n], P[W_CF + CF_T1B, :n], P[W_CF + CF_R2A, :n], P[W_CF + CF_R2B, :n],
            P[W_CF + CF_T2A, :n], P[W_CF + CF_T2B, :n], P[W_CF + CF_BCA, :n], P[W_CF + CF_BCB, :n],
            P[W_CF + CF_BDA, :n], P[W_CF + CF_BDB, :n], P[W_TLO, :n], P[W_THI, :n], P[W_TCA, :n], P[W_TCB, :n],
            P[W_TDA, :n], P[W_TDB, :n], P[W_R0, :n], P[W_R1, :n], P[W_R2, :n], P[W_M1, :n], P[W_M2, :n],
            P[W_PH1, :n], P[W_PH2, :n], P[W_C1, :n], P[W_C2, :n], P[W_OCVT, :n], P[W_DU, :n], P[W_DCUR, :n],
            P[W_DVOL, :n], P[W_CCUR, :n], P[W_CVOL, :n], P[W_XA, :n], P[W_F0, :n], P[W_F1, :n], P[W_F2, :n],
            P[W_Y1, :n], P[W_Y2, :n], kc)
        codes += c3
        s_em, s_gm = _p4(
            P[W_Z + q, :n], P[W_T + q, :n], P[W_V1 + q, :n], P[W_V2 + q, :n], P[W_KZ, :n], P[W_CF + CF_OA, :n],
            P[W_CF + CF_OB, :n], P[W_CF + CF_DA, :n], P[W_CF + CF_DB, :n], P[W_CF + CF_BCA, :n],
            P[W_CF + CF_BCB, :n], P[W_CF + CF_BDA, :n], P[W_CF + CF_BDB, :n], P[W_TCA, :n], P[W_TCB, :n],
            P[W_TDA, :n], P[W_TDB, :n], P[W_R0, :n], P[W_R1, :n], P[W_R2, :n], P[W_M1, :n], P[W_M2, :n],
            P[W_PH1, :n], P[W_PH2, :n], P[W_OCVT, :n], P[W_DU, :n], P[W_DCUR, :n], P[W_DVOL, :n], P[W_CCUR, :n],
            P[W_CVOL, :n], kc)
    return s_v, s_qi, s_qr, s_prc, s_dg, s_em, s_gm, codes


@njit(cache=True, error_model="numpy", fastmath=True, inline="always")
def _min8_soc(z, qdt, n, o, sg):
    """Minimum over the elements of ``(o + sg z) qdt``: the current (A) that empties (o = 0, sg = 1) or fills
    (o = 1, sg = -1) each element within the step (over integer keys, as _min8)."""
    m = np.int64(0x7FFFFFFFFFFFFFFF)
    for j in range(n):
        b = np.float64((o + sg * z[j]) * qdt[j]).view(np.int64)
        m = min(m, b ^ ((b >> 63) & _KMASK))
    return np.int64(m ^ ((m >> 63) & _KMASK)).view(np.float64)


@njit(cache=True, error_model="numpy", fastmath=True, _nrt=False)
def _bounds(P, p, r, se, sg, rk, s_mult, p_mult, ne):
    """Rack r's affine bus model and current bounds for the coming step from state buffer p (``rk`` rows: 0 E (V,
    open-circuit part of the step-mean rack voltage without hysteresis), 1 G (ohm), 2-4 highest discharge current (A)
    by BMS current limit, SOC, voltage; 5-7 highest charge current (magnitude)). Each element's step-mean voltage is
    ``e_m - g_m i`` (and likewise at the start and end of the step), exact while the SOC stays within one piece of
    the tables."""
    rk[0, r] = s_mult * se
    rk[1, r] = s_mult * sg / p_mult
    rk[2, r] = p_mult * _min8(P[W_DCUR], ne)
    rk[3, r] = p_mult * _min8_soc(P[W_Z + p], P[W_QDT], ne, 0.0, 1.0)
    rk[4, r] = p_mult * _min8(P[W_DVOL], ne)
    rk[5, r] = p_mult * _min8(P[W_CCUR], ne)
    rk[6, r] = p_mult * _min8_soc(P[W_Z + p], P[W_QDT], ne, 1.0, -1.0)
    rk[7, r] = p_mult * _min8(P[W_CVOL], ne)


@njit(cache=True, error_model="numpy", fastmath=True, _nrt=False)
def _step_racks(wk, p, cur, p_mult, hs, t_node, kc, fix, nfix, nextp, rec, racc, ne):
    """Exact step of every element of a container at the rack currents ``cur`` (A per rack); the new states go to
    buffer 1 - p, and with ``nextp`` the next step's parameters over the step's own. Per rack sums into ``racc``
    (rows: sum v_mean, heat to the rack node q_amb (W), q_irr, q_rev, p_rc, Gibbs release (W), sum of SOC, of
    temperature, of its change, of e_m, of g_m); returns the number of elements that break a limit."""
    n_ex = 0.0
    gdt = kc[K_GCTH] * kc[K_DT]  # 1 / (C_th / dt): the cells' heat balance gives q_amb from q and the change of T
    for r in range(wk.shape[0]):
        P = wk[r]
        ii = cur[r] / p_mult
        if _n_leaving(P[W_Z + p, :ne], P[W_KZ, :ne], P[W_LO, :ne], P[W_HI, :ne], ii) > 0.0 or nfix[r] > 0:
            nfix[r] = _repiece(P, p, ii, kc[K_TREF], fix[r], nfix[r], ne)
        s_v, s_qi, s_qr, s_prc, s_dg, s_em, s_gm, codes = _p2_rack(P, p, ii, hs, t_node[r], kc, nextp, rec, ne)
        n_x, n_far, n_tp = _counts(codes)
        n_ex += n_x
        s_z, s_t, s_t0 = _sums3(P[W_Z + 1 - p, :ne], P[W_T + 1 - p, :ne], P[W_T + p, :ne])
        racc[0, r] = s_v
        racc[1, r] = s_qi + s_qr - (s_t - s_t0) / gdt
        racc[2, r] = s_qi
        racc[3, r] = s_qr
        racc[4, r] = s_prc
        racc[5, r] = s_dg
        racc[6, r] = s_z
        racc[7, r] = s_t
        racc[8, r] = s_t - s_t0
        racc[9, r] = s_em
        racc[10, r] = s_gm
        if n_far > 0.0 or n_tp > 0.0:
            _t_repiece(P, 1 - p, n_far == 0.0, kc, ne)
        if n_far > 0.0:  # an exponential moved too far for the update: the next step's parameters afresh
            racc[9, r], racc[10, r] = _p1_rack(P, 1 - p, kc, ne)
    return n_ex


@njit(cache=True, error_model="numpy")
def _padded(ne):
    """Row length of the work array: ``ne`` rounded up to an odd number of 64-byte cache lines. The element loop
    reads and writes some 50 rows at the same index; with a row a multiple of 4 KB long (512 elements, say) they
    all fall into the same few sets of the 8-way L1 cache and evict each other (five times slower)."""
    lines = (ne + 7) // 8
    if lines % 2 == 0:
        lines += 1
    return lines * 8


@njit(cache=True, error_model="numpy", fastmath=True, parallel=True)
def run_system(mode, req, t_amb, dt, s_mult, p_mult, scal, win, th, st, t_rack, t_air, o_cont, o_rack, o_el, o_flag,
               record):
    """Step the system over ``nt = req.shape[1]`` steps of ``dt`` s; the states are updated in place.

    req : (nc, nt) container request, A (MODE_CURRENT) or W (MODE_POWER) at the DC bus, positive discharging.
    t_amb : (nc, nt) ambient temperature in K (outside the container, or the cells' ambient without a thermal
        network).
    st : (nc, nr, N_S, ne) element states: SOC, RC voltages (V), temperature (K), capacity (A s), resistance factor.
    t_rack : (nc, nr), t_air : (nc,) node temperatures (K).
    o_cont (N_CONT, nc, nt), o_rack (N_RACK, nc, nr, nt), o_el (N_EL, nc, nr, ne, nt if record == 2 else 1),
    o_flag (nc, nt) int32: outputs.
    record : 0 containers (o_rack gets only the rack currents, voltages and means), 1 also the racks' cell minima and
        maxima (SOC, voltage, temperature), 2 also every element (o_el).
    """
    rec = record >= 2
    nc, nr, _, ne = st.shape
    nt = req.shape[1]
    h = scal[13]
    thermal = th[0] > 0.5
    cth, rth = scal[5], scal[6]
    yth = -dt / (rth * cth)
    mth = -_expm1(yth)
    kc = np.empty(N_K)
    kc[K_DT] = dt
    kc[K_TREF] = scal[1]
    kc[K_RTH] = rth
    kc[K_ATH] = 1.0 - mth
    kc[K_PHTH] = mth * rth * cth / dt
    kc[K_GRTH] = 1.0 / rth
    kc[K_GCTH] = 1.0 / cth
    kc[K_VMIN] = scal[7]
    kc[K_VMAX] = scal[8]
    kc[K_TMIN] = scal[11]
    kc[K_TMAX] = scal[12]
    kc[K_VTOL] = _VTOL
    kc[K_LO] = scal[7] + h
    kc[K_HI] = scal[8] - h
    kc[K_IMDIS] = scal[10]
    kc[K_IMCH] = scal[9]
    kc[K_TCL] = win[0]
    kc[K_TCH] = win[1]
    kc[K_TDL] = win[2]
    kc[K_TDH] = win[3]
    kc[K_E0] = scal[2]
    kc[K_E1] = scal[3]
    kc[K_E2] = scal[4]
    nsp = s_mult * p_mult
    idt = 1.0 / dt
    for c in prange(nc):
        wk = np.empty((nr, N_W, _padded(ne)))
        rk = np.empty((8, nr))
        racc = np.empty((11, nr))
        fix = np.empty((nr, ne), dtype=np.int64)
        nfix = np.zeros(nr, dtype=np.int64)
        cur = np.empty(nr)
        alpha = np.empty(nr)
        beta = np.empty(nr)
        t_node = np.empty(nr)
        con = np.empty(nr)
        par = 0
        _prime(c, st, wk, kc, par, fix, nfix, rk, s_mult, p_mult)
        for k in range(nt):
            # ---- DC bus: V = E_r - G_r I_r for every connected rack, sum I_r = I. A rack whose circulating
            # current alone (container current zero) would break a hard limit has its contactor opened for the step
            # (I_r = 0), as a BMS does with a string at its cut-off; then the bus is solved again without it.
            for r in range(nr):
                con[r] = 1.0
            n_open = 0
            geq = 0.0
            eeq = 0.0
            for _ in range(nr):
                sinv = 0.0
                se = 0.0
                for r in range(nr):
                    sinv += con[r] / rk[1, r]
                    se += con[r] * rk[0, r] / rk[1, r]
                if sinv == 0.0:
                    break
                geq = 1.0 / sinv
                eeq = geq * se  # without hysteresis
                worst_r = -1
                worst_v = 0.0
                for r in range(nr):
                    alpha[r] = con[r] * (rk[0, r] - eeq) / rk[1, r]
                    beta[r] = con[r] * geq / rk[1, r]
                    hi_r = min(min(rk[3, r], rk[4, r]), p_mult * scal[10])
                    lo_r = -min(min(rk[6, r], rk[7, r]), p_mult * scal[9])
                    viol = max(alpha[r] - hi_r, lo_r - alpha[r])
                    if con[r] > 0.0 and viol > worst_v:
                        worst_v = viol
                        worst_r = r
                if worst_r < 0:
                    break
                con[worst_r] = 0.0
                n_open += 1
            if n_open == nr:  # every rack open: the container rests
                geq = 1e30
                eeq = 0.0
                for r in range(nr):
                    alpha[r] = 0.0
                    beta[r] = 0.0
            nh = s_mult * ne * h
            # bounds on the container current, by kind: the BMS current limits (derated with SOC and temperature)
            # bound the share of the rack currents the PCS commands (beta_r I), not the racks' circulating currents;
            # the continuous current limits, SOC and voltage bound the whole rack currents
            hi_cur = 1e30
            hi_soc = 1e30
            hi_vol = 1e30
            lo_cur = -1e30
            lo_soc = -1e30
            lo_vol = -1e30
            for r in range(nr):
                if con[r] == 0.0:
                    continue
                hi_cur = min(hi_cur, rk[2, r] / beta[r])  # derating: on the commanded share only
                hi_cur = min(hi_cur, (p_mult * scal[10] - alpha[r]) / beta[r])  # hard limit: the whole current
                hi_soc = min(hi_soc, (rk[3, r] - alpha[r]) / beta[r])
                hi_vol = min(hi_vol, (rk[4, r] - alpha[r]) / beta[r])
                lo_cur = max(lo_cur, -rk[5, r] / beta[r])
                lo_cur = max(lo_cur, (-p_mult * scal[9] - alpha[r]) / beta[r])
                lo_soc = max(lo_soc, (-rk[6, r] - alpha[r]) / beta[r])
                lo_vol = max(lo_vol, (-rk[7, r] - alpha[r]) / beta[r])
            if n_open == nr:
                hi_cur = lo_cur = 0.0
            i_hi = min(hi_cur, hi_soc, hi_vol)
            i_lo = max(lo_cur, lo_soc, lo_vol)
            # power available each way (W, magnitudes) at the bounds, capped at the maximum-power current
            e_d = eeq - nh
            e_c = eeq + nh
            idis = max(0.0, min(i_hi, 0.5 * e_d / geq))
            ich = min(0.0, i_lo)
            o_cont[C_PDIS, c, k] = (e_d - geq * idis) * idis
            o_cont[C_PCH, c, k] = -(e_c - geq * ich) * ich
            # ---- the request
            rq = req[c, k]
            flag = F_OPEN if n_open > 0 else 0
            sgn = 1.0 if rq > 0.0 else (-1.0 if rq < 0.0 else 0.0)
            hs = h * sgn
            e_h = eeq - nh * sgn
            if mode == MODE_CURRENT:
                ic = rq
            else:
                if rq == 0.0:
                    ic = 0.0
                else:
                    disc = e_h * e_h - 4.0 * geq * rq
                    if disc <= 0.0:
                        ic = 0.5 * e_h / geq
                        flag |= F_POW
                    else:
                        ic = 2.0 * rq / (e_h + math.sqrt(disc))
            # the request, clamped to the bounds; with zero (or reversed) feasible current only if the racks'
            # circulating currents alone would break a limit (cells at the edge of their window)
            if ic > i_hi:
                flag |= (F_CUR if hi_cur <= i_hi else 0) | (F_SOC if hi_soc <= i_hi else 0) | \
                    (F_VOLT if hi_vol <= i_hi else 0)
                ic = max(i_hi, 0.0) if rq > 0.0 else i_hi
            if ic < i_lo:
                flag |= (F_CUR if lo_cur >= i_lo else 0) | (F_SOC if lo_soc >= i_lo else 0) | \
                    (F_VOLT if lo_vol >= i_lo else 0)
                ic = min(i_lo, 0.0) if rq < 0.0 else i_lo
            itol = 1e-9 * p_mult  # A: a bound crossed by rounding (a cell left at SOC -1e-19) is not infeasible
            if ic > i_hi + itol or ic < i_lo - itol:
                flag |= F_NONE
            # ---- cells' ambient: their rack node, or the ambient itself without a thermal network
            for r in range(nr):
                t_node[r] = t_rack[c, r] if thermal else t_amb[c, k]
            # ---- exact step; a limit the affine model missed is met by bisection on the container current
            for r in range(nr):
                cur[r] = alpha[r] + beta[r] * ic
            if rec:  # literal flags (see _p2_rack)
                n_ex = _step_racks(wk, par, cur, p_mult, hs, t_node, kc, fix, nfix, True, True, racc, ne)
            else:
                n_ex = _step_racks(wk, par, cur, p_mult, hs, t_node, kc, fix, nfix, True, False, racc, ne)
            if n_ex > 0.0:
                flag |= F_BISECT
                # the step's own parameters again (the loop wrote the next step's over them), at the pieces of z0
                for r in range(nr):
                    nfix[r] = _repiece(wk[r], par, 0.0, kc[K_TREF], fix[r], nfix[r], ne)
                    _t_repiece(wk[r], par, False, kc, ne)
                    _p1_rack(wk[r], par, kc, ne)
                s_lo = 0.0
                s_hi = 1.0
                i0 = min(max(0.0, i_lo), i_hi)  # the least current the affine model allows
                for _ in range(48):
                    s = 0.5 * (s_lo + s_hi)
                    for r in range(nr):
                        cur[r] = alpha[r] + beta[r] * (i0 + (ic - i0) * s)
                    if _step_racks(wk, par, cur, p_mult, hs, t_node, kc, fix, nfix, False, False, racc, ne) > 0.0:
                        s_hi = s
                    else:
                        s_lo = s
                ic = i0 + (ic - i0) * s_lo
                for r in range(nr):
                    cur[r] = alpha[r] + beta[r] * ic
                if rec:
                    n_ex = _step_racks(wk, par, cur, p_mult, hs, t_node, kc, fix, nfix, True, True, racc, ne)
                else:
                    n_ex = _step_racks(wk, par, cur, p_mult, hs, t_node, kc, fix, nfix, True, False, racc, ne)
                if n_ex > 0.0:
                    flag |= F_NONE
            # ---- rack figures and the next step's bounds; the new state (buffer q) becomes the step's start
            q = 1 - par
            p = 0.0
            qc = 0.0
            qirr = 0.0
            qrev = 0.0
            prc = 0.0
            dg = 0.0
            hstore = 0.0
            for r in range(nr):
                P = wk[r]
                racc[0, r] *= s_mult  # rack voltage, mean over the step
                racc[1, r] *= nsp  # heat to the rack node (W)
                p += racc[0, r] * cur[r]
                qc += racc[1, r]
                qirr += nsp * racc[2, r]
                qrev += nsp * racc[3, r]
                prc += nsp * racc[4, r]
                dg += nsp * racc[5, r]
                hstore += nsp * racc[8, r] * cth * idt
                o_rack[R_I, c, r, k] = cur[r]
                o_rack[R_V, c, r, k] = racc[0, r]
                o_rack[R_SOCMEAN, c, r, k] = racc[6, r] / ne
                o_rack[R_TMEAN, c, r, k] = racc[7, r] / ne
                if record >= 1:
                    o_rack[R_SOCMIN, c, r, k] = _min8(P[W_Z + q], ne)
                    o_rack[R_SOCMAX, c, r, k] = _min8(P[W_Z + q], ne, -1.0)
                    o_rack[R_VMIN, c, r, k] = _min8(P[W_VM], ne)
                    o_rack[R_VMAX, c, r, k] = _min8(P[W_VM], ne, -1.0)
                    o_rack[R_TMAX, c, r, k] = _min8(P[W_T + q], ne, -1.0)
                if rec:
                    for j in range(ne):
                        o_el[E_V, c, r, j, k] = P[W_VM, j]
                        o_el[E_VEND, c, r, j, k] = P[W_VE, j]
                        o_el[E_I, c, r, j, k] = cur[r] / p_mult
                        o_el[E_SOC, c, r, j, k] = P[W_Z + q, j]
                        o_el[E_T, c, r, j, k] = P[W_T + q, j]
                        o_el[E_QIRR, c, r, j, k] = P[W_QI, j]
                        o_el[E_QREV, c, r, j, k] = P[W_QR, j]
                        o_el[E_QAMB, c, r, j, k] = P[W_QA, j]
                        o_el[E_PRC, c, r, j, k] = P[W_PRC, j]
                _bounds(P, q, r, racc[9, r], racc[10, r], rk, s_mult, p_mult, ne)
            par = q
            # ---- rack and air nodes (backward Euler) with the HVAC holding the air between its set points
            ta = t_amb[c, k]
            qh = 0.0
            qwall = 0.0
            paux = th[12]
            if thermal:
                crd = th[1] / dt
                gra = th[2]
                cad = th[3] / dt
                ua = th[4]
                sa = 0.0
                sgb = 0.0
                for r in range(nr):
                    # T_r' = A_r + B_r T_a'
                    den = crd + gra
                    alpha[r] = (crd * t_rack[c, r] + racc[1, r]) / den
                    beta[r] = gra / den
                    sa += gra * alpha[r]
                    sgb += gra * (1.0 - beta[r])
                dd = cad + sgb + ua
                tfree = (cad * t_air[c] + sa + ua * ta) / dd
                if tfree > th[7]:
                    qh = min(th[5], (tfree - th[7]) * dd)
                    cop = max(th[13], th[9] - th[10] * (ta - 308.15))
                    paux += qh / cop
                elif tfree < th[8]:
                    qh = -min(th[6], (th[8] - tfree) * dd)
                    paux += -qh / th[11]
                tan = tfree - qh / dd
                for r in range(nr):
                    tr_new = alpha[r] + beta[r] * tan
                    hstore += th[1] * (tr_new - t_rack[c, r]) / dt
                    t_rack[c, r] = tr_new
                hstore += th[3] * (tan - t_air[c]) / dt
                t_air[c] = tan
                qwall = ua * (tan - ta)
                for r in range(nr):
                    o_rack[R_TRACK, c, r, k] = t_rack[c, r]
            else:
                for r in range(nr):
                    o_rack[R_TRACK, c, r, k] = ta
                qwall = qc
            vb = 0.0
            for r in range(nr):
                vb += racc[0, r]
            o_cont[C_V, c, k] = vb / nr
            o_cont[C_I, c, k] = ic
            o_cont[C_P, c, k] = p
            o_cont[C_TAIR, c, k] = t_air[c] if thermal else ta
            o_cont[C_QHVAC, c, k] = qh
            o_cont[C_PAUX, c, k] = paux
            o_cont[C_QIRR, c, k] = qirr
            o_cont[C_QREV, c, k] = qrev
            o_cont[C_PRC, c, k] = prc
            o_cont[C_DG, c, k] = dg
            o_cont[C_QWALL, c, k] = qwall
            o_cont[C_HSTORE, c, k] = hstore
            o_flag[c, k] = flag
        for r in range(nr):
            for j in range(ne):
                st[c, r, S_Z, j] = wk[r, W_Z + par, j]
                st[c, r, S_V1, j] = wk[r, W_V1 + par, j]
                st[c, r, S_V2, j] = wk[r, W_V2 + par, j]
                st[c, r, S_T, j] = wk[r, W_T + par, j]
