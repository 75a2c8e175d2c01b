"""Template of the closed-loop kernel: EMS rules -> container sharing -> PCS -> battery system, in numba.

:mod:`twin.battery._codegen` appends the part of this file below the marker to each generated battery kernel
module, so that the loop calls that module's ``run_system`` (specialised to the cell and BMS parameter set) and numba
caches the compiled loop beside it. The imports above the marker only make this file a valid module for linting and
reading; the generated module has its own ``run_system`` and constants. :func:`twin.ems.loop.closed_loop` is the
checked Python interface and documents the behaviour.
"""
# ruff: noqa: I001, E402

import numpy as np
from numba import njit

from twin.battery._syskernel import (C_P, C_PAUX, C_PCH, C_PDIS, C_TAIR, MODE_POWER, N_CONT, N_EL, N_RACK,  # noqa: F401
                                     R_SOCMEAN, R_TMAX, S_Q, S_Z, run_system)

# --- closed-loop kernel (appended to the generated battery kernel module) ---
from twin.ems.rules import _kernel as _rules_kernel
from twin.pcs import _ac_to_dc_1, _dc_to_ac_1


@njit(cache=True)
def _share_step(p, avail, order, n_ok, p_min, out):
    """Share ``p`` (W, + discharging) evenly among the first containers of ``order`` (see
    :func:`twin.ems.loop.share_among_containers`); ``avail`` holds their available power (W, magnitudes)."""
    for c in range(out.shape[0]):
        out[c] = 0.0
    mag = abs(p)
    if mag <= 0.0 or n_ok == 0:
        return
    sign = 1.0 if p > 0.0 else -1.0
    if sign < 0.0 and mag < p_min:
        return
    cum = 0.0
    k_need = n_ok
    for j in range(n_ok):
        cum += avail[order[j]]
        if cum >= mag * (1.0 - 1e-12):
            k_need = j + 1
            break
    k_most = int(mag / p_min) if p_min > 0.0 else n_ok
    k = max(k_need, k_most)
    k = min(max(k, 1), n_ok)
    left = mag
    n_act = k
    act = np.zeros(k, dtype=np.bool_)
    for j in range(k):
        act[j] = True
    for _ in range(k):
        if left <= 1e-9 or n_act == 0:
            break
        each = left / n_act
        for j in range(k):
            if act[j]:
                c = order[j]
                room = avail[c] - out[c]
                give = each if each < room else room
                out[c] += give
                left -= give
                if avail[c] - out[c] <= 1e-9:
                    act[j] = False
                    n_act -= 1
    if sign > 0.0 and mag < p_min:
        out[order[0]] = p_min
    for c in range(out.shape[0]):
        out[c] *= sign


@njit(cache=True)
def closed_loop_kernel(k_start, k_end, control, load, ta_k, dt_s, action, target, use_target, ch, dis, shed_max, ceil,
                       e_mwh, eta_c, eta_d, soc_min, soc_max, floor, arb, rech, cap_inst, cap_mean, cap_report,
                       m_win, rated_w, pcs_c, p_min_w, standby_w, thermal, aux_fixed_w, s_mult, p_mult, scal, win, th,
                       st, t_rack, t_air, avail_dis, avail_ch, aux_now, win_state, o_set, o_pb, o_aux, o_shed, o_curt,
                       o_grid, o_soc, o_rule, o_pc, o_pdc, o_auxc, o_socc, o_tmax, o_tair, o_avd, o_avc, o_flag):
    """Steps ``k_start .. k_end - 1`` in control intervals of ``control`` steps (powers in W inside, MW outside)."""
    nc, nr, _, ne = st.shape
    dt_h = dt_s / 3600.0
    soc_edge = 1e-6
    req = np.empty((nc, control))
    ta = np.empty((nc, control))
    oc = np.empty((N_CONT, nc, control))
    orack = np.empty((N_RACK, nc, nr, control))
    oel = np.empty((N_EL, nc, nr, ne, 1))
    of = np.empty((nc, control), dtype=np.int32)
    ld = np.empty(control)
    p_out = np.empty(control)
    g_out = np.empty(control)
    s_out = np.empty(control)
    u_out = np.empty(control)
    sh_out = np.empty(control)
    cu_out = np.empty(control)
    r_out = np.empty(control, dtype=np.int8)
    soc_c = np.empty(nc)
    dis_ok = np.empty(nc)
    ch_ok = np.empty(nc)
    share = np.empty(nc)
    used = win_state[0]
    kw = int(win_state[1])
    for k0 in range(k_start, k_end, control):
        k1 = min(k_end, k0 + control)
        m = k1 - k0
        # 1. the battery's state and limits as the EMS reads them
        aux_t = 0.0
        sd = 0.0
        sc = 0.0
        mean = 0.0
        for c in range(nc):
            num = 0.0
            den = 0.0
            for r in range(nr):
                for e in range(ne):
                    num += st[c, r, S_Z, e] * st[c, r, S_Q, e]
                    den += st[c, r, S_Q, e]
            soc_c[c] = num / den
            mean += soc_c[c] / nc
            dis_ok[c] = avail_dis[c] if soc_c[c] > soc_min + soc_edge else 0.0
            ch_ok[c] = avail_ch[c] if soc_c[c] < soc_max - soc_edge else 0.0
            sd += dis_ok[c]
            sc += ch_ok[c]
            aux_t += aux_now[c]
        soc = min(max(mean, soc_min), soc_max)
        sd_mw = sd / 1e6
        sc_mw = sc / 1e6
        for j in range(m):
            if dis[k0 + j] > sd_mw:
                dis[k0 + j] = sd_mw
            if ch[k0 + j] > sc_mw:
                ch[k0 + j] = sc_mw
            ld[j] = load[k0 + j] + aux_t / 1e6
        # 2. the rules over the interval
        _rules_kernel(ld[:m], action[k0:k1], target[k0:k1], use_target, ch[k0:k1], dis[k0:k1], shed_max[k0:k1],
                      ceil[k0:k1], dt_h, e_mwh, eta_c, eta_d, soc_min, soc_max, floor, min(floor, soc), arb, rech, cap_inst,
                      cap_mean, cap_report, m_win, soc, used, kw, p_out[:m], g_out[:m], s_out[:m], u_out[:m],
                      sh_out[:m], cu_out[:m], r_out[:m])
        # 3. share among the containers, PCS, battery system
        order_d = np.argsort(-soc_c)
        order_c = np.argsort(soc_c)
        n_d = 0
        n_c = 0
        for c in range(nc):
            if dis_ok[c] >= p_min_w:
                n_d += 1
            if ch_ok[c] >= p_min_w:
                n_c += 1
        # containers that can carry the minimum come first in SOC order
        od = np.empty(nc, dtype=np.int64)
        occ = np.empty(nc, dtype=np.int64)
        i = 0
        for c in order_d:
            if dis_ok[c] >= p_min_w:
                od[i] = c
                i += 1
        i = 0
        for c in order_c:
            if ch_ok[c] >= p_min_w:
                occ[i] = c
                i += 1
        for j in range(m):
            p = p_out[j] * 1e6
            if p > 0.0:
                _share_step(p, dis_ok, od, n_d, p_min_w, share)
            else:
                _share_step(p, ch_ok, occ, n_c, p_min_w, share)
            for c in range(nc):
                req[c, j] = _ac_to_dc_1(share[c], rated_w, pcs_c, p_min_w)
                ta[c, j] = ta_k[c, k0 + j]
        run_system(MODE_POWER, req[:, :m].copy(), ta[:, :m].copy(), dt_s, s_mult, p_mult, scal, win, th, st, t_rack,
                   t_air, oc[:, :, :m], orack[:, :, :, :m], oel, of[:, :m], 1)
        # 4. what the battery delivered, the grid import, the demand window
        for j in range(m):
            t = k0 + j
            pb = 0.0
            at = 0.0
            sm = 0.0
            for c in range(nc):
                pdc = oc[C_P, c, j]
                pac = _dc_to_ac_1(pdc, rated_w, pcs_c, p_min_w)
                aux = oc[C_PAUX, c, j] if thermal else aux_fixed_w[c]
                if abs(pac) < p_min_w:
                    aux += standby_w
                pb += pac
                at += aux
                o_pc[c, t] = pac / 1e6
                o_pdc[c, t] = pdc
                o_auxc[c, t] = aux / 1e6
                zs = 0.0
                tm = -1e300
                for r in range(nr):
                    zs += orack[R_SOCMEAN, c, r, j]
                    if orack[R_TMAX, c, r, j] > tm:
                        tm = orack[R_TMAX, c, r, j]
                o_socc[c, t] = zs / nr
                sm += zs / nr / nc
                o_tmax[c, t] = tm - 273.15
                o_tair[c, t] = oc[C_TAIR, c, j] - 273.15
                o_avd[c, t] = min(_dc_to_ac_1(oc[C_PDIS, c, j], rated_w, pcs_c, p_min_w), rated_w) / 1e6
                o_avc[c, t] = min(-_dc_to_ac_1(-oc[C_PCH, c, j], rated_w, pcs_c, p_min_w), rated_w) / 1e6
                o_flag[c, t] = of[c, j]
                if j == m - 1:
                    aux_now[c] = aux
                    avail_dis[c] = o_avd[c, t] * 1e6
                    avail_ch[c] = o_avc[c, t] * 1e6
            g = load[t] + at / 1e6 - pb / 1e6 - sh_out[j]
            curt = -g if g < 0.0 else 0.0
            g += curt
            if kw == m_win:
                kw = 0
                used = 0.0
            used += g
            kw += 1
            o_set[t] = p_out[j]
            o_pb[t] = pb / 1e6
            o_aux[t] = at / 1e6
            o_shed[t] = sh_out[j]
            o_curt[t] = curt
            o_grid[t] = g
            o_soc[t] = sm
            o_rule[t] = r_out[j]
    win_state[0] = used
    win_state[1] = kw
