"""Numba kernel of the battery system model (see :mod:`twin.battery.system` for the model and its definitions).

Layout: ``nc`` containers, each with ``nr`` racks (strings on the container's DC bus), each rack with ``ne``
modelled elements in series. An element stands for ``s_mult`` identical cells in series and ``p_mult`` in parallel
(every cell: 1 and the rack's parallel count; one element per rack or per container: the whole string). Per step
and container: pass 1 evaluates every element's step parameters and the affine model of its voltage in its
current, sums them per rack, solves the DC bus (rack voltages equal, currents sum to the request) and turns every
limit into a bound on the container current; pass 2 steps every element exactly at its rack's current; if the exact
step breaks a limit that the affine model did not see (an OCV table breakpoint crossed within the step), the
container current is reduced by bisection (rare). Then the rack and air nodes of the thermal network are advanced
(backward Euler) with the HVAC.

The element loops are written branch-free (tables as sums of hinge functions, an exp by scaling and squaring) so
that LLVM vectorises them across elements.
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
# block. Each table is piecewise linear in its grid (constant beyond the ends), written as a sum of hinge functions
# y(x) = y0 + sum_k s_k clamp(x - x_k, 0, w_k) with the grid's numbers as literals, so that the element loops are
# branch-free and LLVM vectorises them across cells.


@njit(cache=True, inline="always")
def _tab_r(z):  # -> R0, R1, tau1, R2, tau2 at T_ref (ohm, s)
    raise NotImplementedError("use twin.battery._codegen.kernel_for()")


@njit(cache=True, inline="always")
def _arrhenius(x):  # -> exp(Ea_i/R x) for R0, R1, R2, x = 1/T - 1/T_ref
    raise NotImplementedError("use twin.battery._codegen.kernel_for()")


@njit(cache=True, inline="always")
def _tab_ocv(z):  # -> OCV (V), dU/dT (V/K), the OCV's slope in SOC in the piece holding z
    raise NotImplementedError("use twin.battery._codegen.kernel_for()")


@njit(cache=True, inline="always")
def _tab_path(z0, z1):  # -> integral of OCV from z1 to z0, OCV(z1), the same for dU/dT
    raise NotImplementedError("use twin.battery._codegen.kernel_for()")


@njit(cache=True, inline="always")
def _tab_bms_t(t):  # -> charge, discharge derating factor at cell temperature t (K)
    raise NotImplementedError("use twin.battery._codegen.kernel_for()")


@njit(cache=True, inline="always")
def _tab_bms_soc(z):  # -> charge, discharge SOC taper factor
    raise NotImplementedError("use twin.battery._codegen.kernel_for()")
# --- end of table functions ---


# state rows (st[c, r, row, j]) and rows of the per-rack work array (P[r, row, j]): every element loop touches only
# these two arrays, so that LLVM needs one runtime alias check and vectorises it
S_Z, S_V1, S_V2, S_T, S_Q, S_RS = range(6)
N_S = 6
(W_R0, W_R1, W_R2, W_A1, W_A2, W_PH1, W_PH2, W_C1, W_C2, W_OCVT, W_DU, W_EM, W_GM,
 W_DCUR, W_DSOC, W_DVOL, W_CCUR, W_CSOC, W_CVOL,
 W_VM, W_VE, W_QI, W_QR, W_QA, W_PRC, W_ZN, W_V1N, W_V2N, W_TN, W_EX,
 W_T1, W_T2, W_T3, W_T4, W_T5, W_DG, W_DT, W_G1, W_G2, W_KZ) = range(40)
N_W = 40


@njit(cache=True, error_model="numpy", fastmath=True, inline="always")
def _tree_min(x, n):
    """Minimum of x[:n] by pairwise halving (each level an element-wise, vectorised loop); x is overwritten."""
    while n > 1:
        h = n // 2
        o = n - h
        for j in range(h):
            x[j] = min(x[j], x[j + o])
        n = o
    return x[0]


@njit(cache=True, error_model="numpy", fastmath=True, **_NA)
def _p1(z, t, q, rs, v1, v2, r0o, r1o, r2o, g1o, g2o, kzo, a1o, a2o, ph1o, ph2o, c1o, c2o, ocvo, duo, emo, gmo, dcur, dsoc, dvol,
        ccur, csoc, cvol, dt, t_ref, lo, hi, imdis, imch, tcl, tch, tdl, tdh):
    """Per element: step parameters (Arrhenius, SOC tables, exact RC factors), the affine step models
    ``v(i) = e - g i`` at the start, mean and end of the step, and the bounds on the cell current (A) by BMS current
    limit (derated), SOC and voltage, each way. One fused, branch-free loop."""
    idt = 1.0 / dt
    itr = 1.0 / t_ref
    for j in range(z.size):
        z0 = z[j]
        t0 = t[j]
        cq = q[j]
        rsj = rs[j]
        f0, f1, f2 = _arrhenius(1.0 / t0 - itr)  # Arrhenius factors of R0, R1, R2 (REFERENCE.md)
        b0, b1, b2, b3, b4 = _tab_r(z0)
        ocv_r, du, so = _tab_ocv(z0)
        ftc, ftd = _tab_bms_t(t0)
        fsc, fsd = _tab_bms_soc(z0)
        r0 = b0 * f0 * rsj
        r1 = b1 * f1 * rsj
        tau1 = b2 * f1
        r2 = b3 * f2 * rsj
        tau2 = b4 * f2
        # one division serves several quotients (divisions are the slowest vector operations)
        itau = 1.0 / (tau1 * tau2)
        m1 = -_expm1(-dt * tau2 * itau)  # 1 - a, a = exp(-dt/tau): exact RC update (Plett 2015, 3.4)
        m2 = -_expm1(-dt * tau1 * itau)
        a1 = 1.0 - m1
        a2 = 1.0 - m2
        ph1 = m1 * tau1 * idt
        ph2 = m2 * tau2 * idt
        ir12 = 1.0 / (r1 * r2)
        dtk = t0 - t_ref
        ocv = ocv_r + dtk * du
        slope = so  # dOCV/dSOC of the affine model (its temperature term, < 1e-5 of R, is left out)
        kz = dt / cq
        v10 = v1[j]
        v20 = v2[j]
        e_s = ocv - v10 - v20
        e_m = ocv - v10 * ph1 - v20 * ph2
        g_m = r0 + r1 * (1.0 - ph1) + r2 * (1.0 - ph2) + 0.5 * slope * kz
        e_e = ocv - v10 * a1 - v20 * a2
        g_e = r0 + r1 * m1 + r2 * m2 + slope * kz
        r0o[j] = r0
        r1o[j] = r1
        r2o[j] = r2
        g1o[j] = r2 * ir12
        g2o[j] = r1 * ir12
        kzo[j] = kz
        a1o[j] = a1
        a2o[j] = a2
        ph1o[j] = ph1
        ph2o[j] = ph2
        c1o[j] = tau1 * r2 * ir12
        c2o[j] = tau2 * r1 * ir12
        ocvo[j] = ocv
        duo[j] = du
        emo[j] = e_m
        gmo[j] = g_m
        ft_d = ftd if (t0 >= tdl) and (t0 <= tdh) else 0.0
        ft_c = ftc if (t0 >= tcl) and (t0 <= tch) else 0.0
        dcur[j] = imdis * ft_d * fsd
        ccur[j] = imch * ft_c * fsc
        dsoc[j] = z0 * cq * idt
        csoc[j] = (1.0 - z0) * cq * idt
        ig = 1.0 / (r0 * g_m * g_e)
        i_s = g_m * g_e * ig
        i_m = r0 * g_e * ig
        i_e = r0 * g_m * ig
        dvol[j] = min(min((e_s - lo) * i_s, (e_m - lo) * i_m), (e_e - lo) * i_e)
        cvol[j] = min(min((hi - e_s) * i_s, (hi - e_m) * i_m), (hi - e_e) * i_e)


@njit(cache=True, error_model="numpy", fastmath=True, **_NA)
def _p2(z, t, kza, v1, v2, du0, ocv0a, r0a, r1a, r2a, g1a, g2a, a1a, a2a, ph1a, ph2a, c1a, c2a,
        exo, zno, v1no, v2no, tno, vmo, veo, qio, qro, qao, prco, dgo, dto, t1o, t2o, t3o, t4o, t5o,
        ii, dt, tr, hs, t_ref, rth, ath, phth, grth, gcth, vmin, vmax, tmin, tmax):
    """Exact step of each element at cell current ``ii`` (see the module docstring of twin.battery.cell)."""
    idt = 1.0 / dt
    for j in range(z.size):
        z0 = z[j]
        z1 = z0 - ii * kza[j]
        iu, ocv1r, idd, du1 = _tab_path(z0, z1)
        dz = z0 - z1
        t0 = t[j]
        dtk = t0 - t_ref
        # step means of OCV and dU/dT over the SOC path: the exact integral over dz; for |dz| < 1e-7 (rounding in
        # the integral would show) the mean of the two ends, exact within one table piece
        big = abs(dz) > 1e-7
        idz = 1.0 / (dz if big else 1.0)
        ocv0 = ocv0a[j]
        ocv1 = ocv1r + dtk * du1
        d = idd * idz if big else 0.5 * (du0[j] + du1)
        u = iu * idz + dtk * d if big else 0.5 * (ocv0 + ocv1)
        r0 = r0a[j]
        r1 = r1a[j]
        r2 = r2a[j]
        a1 = a1a[j]
        a2 = a2a[j]
        ph1 = ph1a[j]
        ph2 = ph2a[j]
        pp1 = 0.5 * ph1 * (1.0 + a1)
        pp2 = 0.5 * ph2 * (1.0 + a2)
        v10 = v1[j]
        v20 = v2[j]
        vi1 = r1 * ii
        vi2 = r2 * ii
        d1 = v10 - vi1
        d2 = v20 - vi2
        v1e = vi1 + d1 * a1
        v2e = vi2 + d2 * a2
        l1 = (vi1 * vi1 + 2.0 * vi1 * d1 * ph1 + d1 * d1 * pp1) * g1a[j]
        l2 = (vi2 * vi2 + 2.0 * vi2 * d2 * ph2 + d2 * d2 * pp2) * g2a[j]
        ri = r0 * ii
        v_start = ocv0 - hs - v10 - v20 - ri
        v_mean = u - hs - (vi1 + d1 * ph1) - (vi2 + d2 * ph2) - ri
        v_end = ocv1 - hs - v1e - v2e - ri
        q_irr = ri * ii + hs * ii + l1 + l2
        q_rev = -ii * t0 * d  # Bernardi 1985, I > 0 discharging
        ts = tr + (q_irr + q_rev) * rth
        t1 = ts + (t0 - ts) * ath
        cap1 = c1a[j]
        cap2 = c2a[j]
        e_rc = 0.5 * (cap1 * v1e * v1e + cap2 * v2e * v2e)
        ex = max(vmin - min(min(v_start, v_mean), v_end), max(max(v_start, v_mean), v_end) - vmax)
        ex = max(ex, max(t1 + e_rc * gcth - tmax, tmin - t1))
        exo[j] = -max(ex, max(-z1, z1 - 1.0))
        zno[j] = z1
        v1no[j] = v1e
        v2no[j] = v2e
        tno[j] = t1
        vmo[j] = v_mean
        veo[j] = v_end
        qio[j] = q_irr
        qro[j] = q_rev
        qao[j] = (ts - tr + (t0 - ts) * phth) * grth
        prco[j] = (e_rc - 0.5 * (cap1 * v10 * v10 + cap2 * v20 * v20)) * idt
        dgo[j] = u * ii
        dto[j] = t1 - t0
        t1o[j] = z1
        t2o[j] = -z1
        t3o[j] = v_mean
        t4o[j] = -v_mean
        t5o[j] = -t1


@njit(cache=True, error_model="numpy", fastmath=True)
def _pass1(c, dt, nr, ne, s_mult, p_mult, scal, win, st, wk, rk):
    """Step parameters of every element of container c and, per rack, the affine bus model and current bounds.

    ``rk`` rows per rack: 0 E (V, open-circuit part of the step-mean rack voltage without hysteresis), 1 G (ohm),
    2-4 highest discharge current (A) by BMS current limit, SOC, voltage; 5-7 highest charge current (magnitude).
    Each element's step-mean voltage is ``e_m - g_m i`` (and likewise at the start and end of the step), exact while
    the SOC stays within one piece of the OCV table.
    """
    t_ref = scal[1]
    vmin, vmax, imch, imdis, h = scal[7], scal[8], scal[9], scal[10], scal[13]
    lo = vmin + h
    hi = vmax - h
    for r in range(nr):
        S = st[c, r]
        P = wk[r]
        _p1(S[S_Z], S[S_T], S[S_Q], S[S_RS], S[S_V1], S[S_V2], P[W_R0], P[W_R1], P[W_R2], P[W_G1], P[W_G2],
            P[W_KZ], P[W_A1], P[W_A2],
            P[W_PH1], P[W_PH2], P[W_C1], P[W_C2], P[W_OCVT], P[W_DU], P[W_EM], P[W_GM], P[W_DCUR], P[W_DSOC],
            P[W_DVOL], P[W_CCUR], P[W_CSOC], P[W_CVOL], dt, t_ref, lo, hi, imdis, imch, win[0], win[1],
            win[2], win[3])
        se = 0.0
        sgm = 0.0
        for j in range(ne):
            se += P[W_EM, j]
            sgm += P[W_GM, j]
        rk[0, r] = s_mult * se
        rk[1, r] = s_mult * sgm / p_mult
        for i in range(6):
            rk[2 + i, r] = p_mult * _tree_min(P[W_DCUR + i], ne)


@njit(cache=True, error_model="numpy", fastmath=True)
def _pass2(c, cur_i, dt, nr, ne, s_mult, p_mult, scal, st, wk, t_node, hs, racc, rec, o_el, kstep):
    """Exact step of every element of container c at the rack currents ``cur_i`` (A per rack).

    Writes the new states into the work rows W_ZN, W_V1N, W_V2N, W_TN and the rack sums into ``racc`` (rows: sum
    s*v_mean, heat to the rack node (W), q_irr, q_rev, p_rc, Gibbs release (W), soc min, max, sum, v_cell min, max,
    t max, t sum, rate of change of the cells' stored heat (W)); returns the largest limit excess (V or K, > 0 if a
    limit is broken).
    """
    t_ref = scal[1]
    cth, rth = scal[5], scal[6]
    vmin, vmax, tmin, tmax = scal[7], scal[8], scal[11], scal[12]
    yth = -dt / (rth * cth)
    mth = -_expm1(yth)
    ath = 1.0 - mth
    phth = mth * rth * cth / dt
    grth = 1.0 / rth
    gcth = 1.0 / cth
    idt = 1.0 / dt
    worst = -1.0
    nsp = s_mult * p_mult
    for r in range(nr):
        S = st[c, r]
        P = wk[r]
        ii = cur_i[r] / p_mult
        tr = t_node[r]
        _p2(S[S_Z], S[S_T], P[W_KZ], S[S_V1], S[S_V2], P[W_DU], P[W_OCVT], P[W_R0], P[W_R1], P[W_R2], P[W_G1],
            P[W_G2], P[W_A1],
            P[W_A2], P[W_PH1], P[W_PH2], P[W_C1], P[W_C2], P[W_EX], P[W_ZN], P[W_V1N], P[W_V2N], P[W_TN], P[W_VM],
            P[W_VE], P[W_QI], P[W_QR], P[W_QA], P[W_PRC], P[W_DG], P[W_DT], P[W_T1], P[W_T2], P[W_T3], P[W_T4],
            P[W_T5], ii, dt, tr, hs, t_ref, rth, ath, phth, grth, gcth, vmin, vmax, tmin, tmax)
        sv = 0.0
        sq = 0.0
        sqi = 0.0
        sqr = 0.0
        sprc = 0.0
        sdg = 0.0
        ssum = 0.0
        tsum = 0.0
        sdt = 0.0
        for j in range(ne):
            sv += P[W_VM, j]
            sq += P[W_QA, j]
            sqi += P[W_QI, j]
            sqr += P[W_QR, j]
            sprc += P[W_PRC, j]
            sdg += P[W_DG, j]
            ssum += P[W_ZN, j]
            tsum += P[W_TN, j]
            sdt += P[W_DT, j]
        if rec:
            for j in range(ne):
                o_el[E_V, c, r, j, kstep] = P[W_VM, j]
                o_el[E_VEND, c, r, j, kstep] = P[W_VE, j]
                o_el[E_I, c, r, j, kstep] = ii
                o_el[E_SOC, c, r, j, kstep] = P[W_ZN, j]
                o_el[E_T, c, r, j, kstep] = P[W_TN, j]
                o_el[E_QIRR, c, r, j, kstep] = P[W_QI, j]
                o_el[E_QREV, c, r, j, kstep] = P[W_QR, j]
                o_el[E_QAMB, c, r, j, kstep] = P[W_QA, j]
                o_el[E_PRC, c, r, j, kstep] = P[W_PRC, j]
        racc[0, r] = s_mult * sv
        racc[1, r] = nsp * sq
        racc[2, r] = nsp * sqi
        racc[3, r] = nsp * sqr
        racc[4, r] = nsp * sprc
        racc[5, r] = nsp * sdg
        racc[6, r] = _tree_min(P[W_T1], ne)
        racc[7, r] = -_tree_min(P[W_T2], ne)
        racc[8, r] = ssum
        racc[9, r] = _tree_min(P[W_T3], ne)
        racc[10, r] = -_tree_min(P[W_T4], ne)
        racc[11, r] = -_tree_min(P[W_T5], ne)
        racc[12, r] = tsum
        racc[13, r] = nsp * sdt * cth * idt
        worst = max(worst, -_tree_min(P[W_EX], ne))
    return worst


@njit(cache=True, error_model="numpy", fastmath=True, parallel=True)
def run_system(mode, req, t_amb, dt, s_mult, p_mult, scal, win, th, st, t_rack, t_air, o_cont, o_rack, o_el, o_flag,
               rec):
    """Step the system over ``nt = req.shape[1]`` steps of ``dt`` s; the states are updated in place.

    req : (nc, nt) container request, A (MODE_CURRENT) or W (MODE_POWER) at the DC bus, positive discharging.
    t_amb : (nc, nt) ambient temperature in K (outside the container, or the cells' ambient without a thermal
        network).
    st : (nc, nr, N_S, ne) element states: SOC, RC voltages (V), temperature (K), capacity (A s), resistance factor.
    t_rack : (nc, nr), t_air : (nc,) node temperatures (K).
    o_cont (N_CONT, nc, nt), o_rack (N_RACK, nc, nr, nt), o_el (N_EL, nc, nr, ne, nt if rec else 1),
    o_flag (nc, nt) int32: outputs.
    """
    nc, nr, _, ne = st.shape
    nt = req.shape[1]
    h = scal[13]
    thermal = th[0] > 0.5
    vtol = 1e-9
    for c in prange(nc):
        wk = np.empty((nr, N_W, ne))
        rk = np.empty((8, nr))
        racc = np.empty((14, nr))
        cur = np.empty(nr)
        alpha = np.empty(nr)
        beta = np.empty(nr)
        t_node = np.empty(nr)
        con = np.empty(nr)
        for k in range(nt):
            _pass1(c, dt, nr, ne, s_mult, p_mult, scal, win, st, wk, rk)
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
            if ic > i_hi or ic < i_lo:
                flag |= F_NONE
            # ---- cells' ambient: their rack node, or the ambient itself without a thermal network
            for r in range(nr):
                t_node[r] = t_rack[c, r] if thermal else t_amb[c, k]
            # ---- exact step; a limit the affine model missed is met by bisection on the container current
            for r in range(nr):
                cur[r] = alpha[r] + beta[r] * ic
            exc = _pass2(c, cur, dt, nr, ne, s_mult, p_mult, scal, st, wk, t_node, hs, racc, rec, o_el, k)
            if exc > vtol:
                flag |= F_BISECT
                s_lo = 0.0
                s_hi = 1.0
                i0 = min(max(0.0, i_lo), i_hi)  # the least current the affine model allows
                for _ in range(48):
                    s = 0.5 * (s_lo + s_hi)
                    for r in range(nr):
                        cur[r] = alpha[r] + beta[r] * (i0 + (ic - i0) * s)
                    exc = _pass2(c, cur, dt, nr, ne, s_mult, p_mult, scal, st, wk, t_node, hs, racc, rec, o_el, k)
                    if exc > vtol:
                        s_hi = s
                    else:
                        s_lo = s
                ic = i0 + (ic - i0) * s_lo
                for r in range(nr):
                    cur[r] = alpha[r] + beta[r] * ic
                exc = _pass2(c, cur, dt, nr, ne, s_mult, p_mult, scal, st, wk, t_node, hs, racc, rec, o_el, k)
                if exc > vtol:
                    flag |= F_NONE
            # ---- commit
            for r in range(nr):
                for j in range(ne):
                    st[c, r, S_Z, j] = wk[r, W_ZN, j]
                    st[c, r, S_V1, j] = wk[r, W_V1N, j]
                    st[c, r, S_V2, j] = wk[r, W_V2N, j]
                    st[c, r, S_T, j] = wk[r, W_TN, j]
            p = 0.0
            qc = 0.0
            qirr = 0.0
            qrev = 0.0
            prc = 0.0
            dg = 0.0
            hstore = 0.0
            for r in range(nr):
                p += racc[0, r] * cur[r]
                qc += racc[1, r]
                qirr += racc[2, r]
                qrev += racc[3, r]
                prc += racc[4, r]
                dg += racc[5, r]
                hstore += racc[13, r]
                o_rack[R_I, c, r, k] = cur[r]
                o_rack[R_V, c, r, k] = racc[0, r]
                o_rack[R_SOCMIN, c, r, k] = racc[6, r]
                o_rack[R_SOCMAX, c, r, k] = racc[7, r]
                o_rack[R_SOCMEAN, c, r, k] = racc[8, r] / ne
                o_rack[R_VMIN, c, r, k] = racc[9, r]
                o_rack[R_VMAX, c, r, k] = racc[10, r]
                o_rack[R_TMAX, c, r, k] = racc[11, r]
                o_rack[R_TMEAN, c, r, k] = racc[12, r] / ne
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
