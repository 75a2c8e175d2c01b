"""The RMS simulation kernel (numba): fixed step, partitioned explicit scheme, network solved by fixed point.

Each step ``k`` (time ``k * dt``): apply the events due at that time; advance every dynamic state from the
previous step's voltages and currents (exact exponential updates for first-order lags, forward Euler for the PLL
integrator, the grid-forming angle, the motors' slip and the PSUs' DC-link energy); then solve the algebraic network
``(Y_topology + diag(y_elements)) V = I_sources`` by fixed-point iteration, because the loads and the
current-limited inverters depend on the voltage. Per-unit on the net's ``sn_mva`` (1 MVA) and each bus's nominal
voltage; phasors on a frame rotating at nominal frequency.

The column layouts of the parameter arrays are the ``I_*``, ``C_*``, ``M_*`` and ``H_*`` constants below;
:mod:`twin.transient.sim` fills them. Modes of an inverter: 0 grid-following, 1 grid-forming, 2 off, 3 standby (a genset waiting for its start).
"""

from __future__ import annotations

import numpy as np
from numba import njit

# inverters (PCS and PV): float columns
(I_P0, I_Q0, I_ILIM, I_PMAX, I_KP, I_KI, I_TAU, I_MP, I_MQ, I_TPF, I_MODE_DELAY, I_ZV_RE, I_ZV_IM, I_UV, I_UV_T,
 I_E0, I_DTH, I_TREST, I_V0, N_I) = range(20)
# inverters: int columns
J_BUS, J_FORM, J_MODE0, N_J = range(4)
# constant-power loads
C_P, C_TAN, C_ILIMP, C_VBO, C_VTRIP, C_TRIDE, C_TREC, N_C = range(8)
# motors
(M_RS, M_XS, M_XM, M_RR, M_XR, M_K, M_H, M_TM0, M_S0, M_YC_RE, M_YC_IM, M_EXP, M_VDROP, M_TDROP, N_M) = range(15)
# halls (PSUs): float columns
H_TAN, H_VBO, H_FMIN, H_FMAX, H_REC, H_UPS, H_TREC, H_WALK, N_H = range(9)
V_HYST = 0.05  # pu: a browned-out PSU or drive restarts drawing power above its brown-out voltage plus this
# detection settings
(D_UV, D_UV_T, D_OV, D_OV_T, D_DF, D_DF_T, D_TT, D_F0, D_SYNC_ANG, D_SYNC_V, D_SYNC_F, D_SYNC_GAIN, D_ROCOF,
 D_ROCOF_T, D_SYNC_FMAX, D_BRK, D_N_DIPS, D_DIP_WINDOW, D_RETRANSFER, D_LOCKOUT_N, D_LOCKOUT_S, N_D) = range(22)
# events
EV_SOURCE, EV_TOPOLOGY, EV_FAULT, EV_SHED, EV_TRANSFER_TRIP, EV_RESYNC, EV_SOURCE_PHASE = range(7)
# recorded per inverter
R_P, R_Q, R_I, R_MODE, R_F, N_RI = range(6)
# recorded per hall
RH_SERVED, RH_DRAWN, RH_LOST, RH_WMIN, RH_SUPPLY_V, N_RH = range(6)


@njit(cache=True)
def _motor_y(rs, xs, xm, rr, xr, s):
    """Admittance of the equivalent circuit at slip ``s`` (motor pu) and its rotor-branch impedance."""
    s = max(s, 1e-5)
    zr = complex(rr / s, xr)
    zm = complex(0.0, xm)
    z = complex(rs, xs) + zm * zr / (zm + zr)
    return 1.0 / z, zr


@njit(cache=True)
def _n_discrete(mode, feed_on, ld_bo, ld_on, mo_on, src_on, lost):
    """A signature of the discrete states (modes, brown-outs, trips, breakers, dropouts): it changes when one does."""
    h = 0
    for x in mode:
        h = h * 7 + x + 1
    for arr in (feed_on.ravel(), ld_bo, ld_on, mo_on, src_on, lost.ravel()):
        for b in arr:
            h = h * 3 + (2 if b else 1)
    return h


@njit(cache=True)
def _recharge(w, wmax, frac, pout):
    """Extra input power that recharges a PSU's DC link: ``frac * pout``, tapering to zero over the last 10 % of
    its energy (as a bulk capacitor's charge current falls near its set-point), so the end of a recharge is smooth."""
    if wmax <= 0.0:
        return 0.0
    return frac * pout * min(1.0, max(wmax - w, 0.0) / (0.1 * wmax))


@njit(cache=True)
def _psu_alloc(hall_bus, nf, ilimp, vmag, fok, feed_on, ramp, demand, alloc):
    """Share a hall's demand over its feeds within their current limits (dual-corded servers); return supplied."""
    d = 0.0
    for g in range(demand.shape[0]):
        d += demand[g]
    cap = np.zeros(nf)
    for f in range(nf):
        v = vmag[hall_bus[f]]
        # within the input current limit; after a restart the input power walks in linearly to the feed's share
        cap[f] = min(ilimp[f] * v, ramp[f] * d / nf) if (feed_on[f] and fok) else 0.0
    share = d / nf
    spill = 0.0
    spare = 0.0
    for f in range(nf):
        alloc[f] = min(share, cap[f])
        spill += share - alloc[f]
        spare += cap[f] - alloc[f]
    if spill > 0.0 and spare > 0.0:
        give = min(spill, spare)
        for f in range(nf):
            alloc[f] += give * (cap[f] - alloc[f]) / spare
    tot = 0.0
    for f in range(nf):
        tot += alloc[f]
    return tot, d


@njit(cache=True)
def simulate(ytopo, comp, topo0, v0, dt, n_steps, rec_every,
             src_bus, src_y, src_e, src_on0,
             inv_f, inv_j, inv_i0, inv_th0,
             ld_bus, ld_f,
             mo_bus, mo_f,
             hall_bus, hall_nf, hall_ilimp, hall_f, grp_w0, grp_wmax, grp_p, grp_l0p,
             flt_bus, flt_y,
             ev_step, ev_kind, ev_idx, ev_val,
             det, tol, max_iter,
             out_v, out_inv, out_hall, out_hall_feed, out_ld, out_mo, out_src, out_step, t_detect, t_close):
    n = v0.shape[0]
    n_src = src_bus.shape[0]
    n_inv = inv_j.shape[0]
    n_ld = ld_bus.shape[0]
    n_mo = mo_bus.shape[0]
    n_h = hall_bus.shape[0]
    n_g = grp_p.shape[1]
    n_fl = flt_bus.shape[0]
    f0 = det[D_F0]
    two_pi = 2.0 * np.pi

    # ---- state
    v = v0.copy()
    v_prev = v0.copy()
    topo = topo0
    grid_on = src_on0.copy()              # the utility is there at this incomer (an event removes or returns it)
    brk = np.ones(n_src, dtype=np.bool_)  # the campus isolation device at this incomer is closed
    src_on = src_on0.copy()               # the source feeds the campus: grid_on and brk
    healthy_t = np.zeros(n_src)           # time the returned grid has been healthy (auto-retransfer)
    dip_times = np.full(64, -1e30)        # the last dips (transfer logic: N dips in M seconds)
    n_dips = 0
    xfer_times = np.full(64, -1e30)       # the last transfers to the battery (lockout)
    n_xfer = 0
    in_dip = False
    locked_until = -1.0
    src_scale = np.ones(n_src)
    flt_on = np.zeros(n_fl, dtype=np.bool_)
    shed = 0.0
    resync = np.zeros(n_src, dtype=np.bool_)   # the grid has returned at this incomer: synchronise to it
    mode = inv_j[:, J_MODE0].copy()
    first_det = -1                        # step of the first islanding detection (starts the gensets)
    brk_open_step = -1                    # step at which the campus isolation device opened
    i_inj = inv_i0.copy()                 # present injection of each inverter (pu current)
    th = inv_th0.copy()                   # PLL angle (GFL) or internal-voltage angle (GFM)
    xi = np.zeros(n_inv)                  # PLL integrator (rad/s)
    freq = np.full(n_inv, f0)
    id_ = np.zeros(n_inv)
    iq_ = np.zeros(n_inv)
    for u in range(n_inv):
        rot = inv_i0[u] * np.exp(-1j * inv_th0[u])
        id_[u] = rot.real
        iq_[u] = rot.imag
    emag = inv_f[:, I_E0].copy()
    pf = inv_f[:, I_P0].copy()
    qf = inv_f[:, I_Q0].copy()
    limited = np.zeros(n_inv, dtype=np.bool_)
    kz = np.ones(n_inv)
    pset = inv_f[:, I_P0].copy()          # grid-following set-points (after a retransfer: the output at that moment)
    qset = inv_f[:, I_Q0].copy()
    xv = np.zeros(n_inv)                  # secondary voltage restoration (pu)
    t_uv = np.zeros(n_inv)
    t_ov = np.zeros(n_inv)
    t_df = np.zeros(n_inv)
    t_rocof = np.zeros(n_inv)
    f_last = np.full(n_inv, f0)
    t_pvuv = np.zeros(n_inv)
    det_step = np.full(n_inv, -1)
    tt_step = -1
    ld_on = np.ones(n_ld, dtype=np.bool_)
    ld_tb = np.zeros(n_ld)
    ld_p = np.zeros(n_ld)                 # drawn P at the last solve
    ld_bo = np.zeros(n_ld, dtype=np.bool_)  # browned out (not drawing) since the last step
    ld_bt = np.zeros(n_ld)
    feed_on = np.ones(hall_bus.shape, dtype=np.bool_)
    feed_t = np.zeros(hall_bus.shape)
    feed_ramp = np.ones(hall_bus.shape)   # rectifier walk-in after a restart (UPS), 1 = full input allowed
    n_comp = 0
    for t_ in range(comp.shape[0]):
        for b in range(n):
            n_comp = max(n_comp, comp[t_, b] + 1)
    energised = np.zeros(n_comp, dtype=np.bool_)
    # secondary frequency restoration (Hz), one per part of the network: a central controller adds the same correction
    # to every grid-forming unit of an island, so that they keep sharing by their droops
    xfc = np.zeros(n_comp)
    acc_f = np.zeros(n_comp)
    cnt_f = np.zeros(n_comp)
    trest = np.ones(n_comp)
    energised_grid = np.zeros(n_comp, dtype=np.bool_)  # parts with a utility source (at the previous step)
    mo_on = np.ones(n_mo, dtype=np.bool_)
    mo_s = mo_f[:, M_S0].copy()
    mo_tb = np.zeros(n_mo)
    w = grp_w0.copy()
    lost = np.zeros(grp_p.shape, dtype=np.bool_)
    ratio = np.ones(n_h)                  # supplied / demand of each hall at the last solve
    ratio_prev = np.ones(n_h)
    alloc = np.zeros(hall_bus.shape[1])
    feed_p = np.zeros(hall_bus.shape)
    demand = np.zeros(n_g)
    vmag = np.abs(v0)
    a_tau = np.exp(-dt / np.maximum(inv_f[:, I_TAU], 1e-9))
    a_pf = np.exp(-dt / np.maximum(inv_f[:, I_TPF], 1e-9))
    n_nonconv = 0
    ev = 0
    n_ev = ev_step.shape[0]
    rec = 0

    for k in range(n_steps):
        t = k * dt
        # ---------------- events due now (a discrete change makes the step's DC-link update use the left value)
        ev0 = ev
        n_disc0 = _n_discrete(mode, feed_on, ld_bo, ld_on, mo_on, src_on, lost)
        while ev < n_ev and ev_step[ev] <= k:
            kind = ev_kind[ev]
            j = ev_idx[ev]
            if kind == EV_SOURCE:
                grid_on[j] = ev_val[ev] > 0.0
                src_scale[j] = ev_val[ev]
            elif kind == EV_TOPOLOGY:
                topo = j
            elif kind == EV_FAULT:
                flt_on[j] = ev_val[ev] > 0.0
            elif kind == EV_SHED:
                shed = ev_val[ev]
            elif kind == EV_TRANSFER_TRIP:
                tt_step = k + int(round(det[D_TT] / dt))
            elif kind == EV_RESYNC:
                resync[j] = True
                grid_on[j] = True
                src_scale[j] = 1.0
            elif kind == EV_SOURCE_PHASE:
                src_e[j] = src_e[j] * np.exp(1j * np.radians(ev_val[ev]))
            ev += 1

        # the campus isolation device (static switch or incomer breakers) opens after the transfer decision
        if first_det >= 0 and brk_open_step < 0 and t >= first_det * dt + det[D_BRK] - 1e-12:
            brk_open_step = k
            for s in range(n_src):
                brk[s] = False
        for s in range(n_src):
            src_on[s] = grid_on[s] and brk[s]
        any_src = False
        for s in range(n_src):
            any_src = any_src or src_on[s]
        # ---------------- system frequency (grid, else the grid-forming units, else the PLLs)
        fsys = f0
        if not any_src:
            cnt = 0
            acc = 0.0
            for u in range(n_inv):
                if mode[u] == 1:
                    acc += freq[u]
                    cnt += 1
            if cnt == 0:
                for u in range(n_inv):
                    if mode[u] == 0:
                        acc += freq[u]
                        cnt += 1
            if cnt > 0:
                fsys = acc / cnt

        # ---------------- dynamic states from the previous step (k > 0)
        any_hit = False
        tt_hit = False
        if k > 0:
            vmp = np.abs(v_prev)
            acc_f[:] = 0.0
            cnt_f[:] = 0.0
            for u in range(n_inv):
                b = inv_j[u, J_BUS]
                vb = v_prev[b]
                vm = vmp[b]
                if mode[u] == 3:
                    # a standby genset: started by the first islanding detection, on line after its start delay;
                    # it closes onto a dead bus at nominal voltage or synchronises to a live island
                    if first_det >= 0 and t >= first_det * dt + inv_f[u, I_MODE_DELAY] - 1e-12:
                        cu = comp[topo, b]
                        if not energised_grid[cu]:
                            mode[u] = 1
                            pf[u] = 0.0
                            qf[u] = 0.0
                            if energised[cu] and vm > 0.5:
                                th[u] = np.angle(vb)
                                xv[u] = vm - inv_f[u, I_E0]
                            else:
                                th[u] = 0.0
                                xv[u] = 0.0
                            emag[u] = inv_f[u, I_E0] + xv[u]
                    continue
                if mode[u] == 2:
                    continue
                # islanding detection and the PV inverters' own undervoltage trip
                if det_step[u] < 0:
                    t_uv[u] = t_uv[u] + dt if vm < det[D_UV] else 0.0
                    t_ov[u] = t_ov[u] + dt if vm > det[D_OV] else 0.0
                    t_df[u] = t_df[u] + dt if abs(freq[u] - f0) > det[D_DF] else 0.0
                    t_rocof[u] = t_rocof[u] + dt if abs(freq[u] - f_last[u]) > det[D_ROCOF] * dt else 0.0
                    f_last[u] = freq[u]
                    hit = (t_uv[u] >= det[D_UV_T] - 1e-12 or t_ov[u] >= det[D_OV_T] - 1e-12
                           or t_df[u] >= det[D_DF_T] - 1e-12 or t_rocof[u] >= det[D_ROCOF_T] - 1e-12)
                    if mode[u] == 0 and (hit or (tt_step >= 0 and k >= tt_step)):
                        if inv_j[u, J_FORM] == 1:
                            any_hit = True  # the campus transfer logic decides (below)
                            if tt_step >= 0 and k >= tt_step:
                                tt_hit = True
                        else:
                            det_step[u] = k
                            t_detect[u] = t
                if inv_f[u, I_UV] > 0.0:
                    t_pvuv[u] = t_pvuv[u] + dt if vm < inv_f[u, I_UV] else 0.0
                    if t_pvuv[u] >= inv_f[u, I_UV_T] - 1e-12:
                        mode[u] = 2
                        i_inj[u] = 0.0
                        continue
                # a PCS forms the island once it has detected it and the campus is isolated from the grid (the
                # isolation device opened); a PV inverter just stops after its anti-islanding delay
                delay = max(inv_f[u, I_MODE_DELAY], det[D_BRK]) if inv_j[u, J_FORM] == 1 else inv_f[u, I_MODE_DELAY]
                if det_step[u] >= 0 and mode[u] == 0 and t >= det_step[u] * dt + delay - 1e-12:
                    if inv_j[u, J_FORM] == 1:
                        mode[u] = 1
                        th[u] = th[u] + inv_f[u, I_DTH]
                        pf[u] = 0.0
                        qf[u] = 0.0
                        xv[u] = 0.0
                        emag[u] = inv_f[u, I_E0]
                    else:
                        mode[u] = 2
                        i_inj[u] = 0.0
                        continue
                if mode[u] == 0:
                    # SRF-PLL on the terminal voltage, normalised by its magnitude
                    if vm > 0.05:
                        e = (vb * np.exp(-1j * th[u])).imag / vm
                        xi[u] += inv_f[u, I_KI] * e * dt
                        wdev = inv_f[u, I_KP] * e + xi[u]
                    else:
                        wdev = xi[u]
                    th[u] += wdev * dt
                    freq[u] = f0 + wdev / two_pi
                    # current control (first-order closed loop) towards the P and Q set-points, limited
                    vd = max(vm, 0.1)
                    idr = pset[u] / vd
                    iqr = -qset[u] / vd
                    lim = inv_f[u, I_ILIM]
                    if abs(idr) > lim:
                        idr = lim * np.sign(idr)
                    qmax = np.sqrt(max(lim * lim - idr * idr, 0.0))
                    iqr = min(max(iqr, -qmax), qmax)
                    id_[u] = idr + (id_[u] - idr) * a_tau[u]
                    iq_[u] = iqr + (iq_[u] - iqr) * a_tau[u]
                    i_inj[u] = complex(id_[u], iq_[u]) * np.exp(1j * th[u])
                else:
                    # grid-forming: droop on filtered P and Q, synchroniser when asked to resynchronise
                    sp = vb * np.conj(i_inj[u])
                    pf[u] = sp.real + (pf[u] - sp.real) * a_pf[u]
                    qf[u] = sp.imag + (qf[u] - sp.imag) * a_pf[u]
                    fcorr = 0.0
                    for s_ in range(n_src):
                        if resync[s_] and not src_on[s_] and comp[topo, src_bus[s_]] == comp[topo, b]:
                            dth = np.angle(src_e[s_] * np.conj(v_prev[src_bus[s_]]))
                            fcorr = min(max(det[D_SYNC_GAIN] * dth, -det[D_SYNC_FMAX]), det[D_SYNC_FMAX])
                    # droop around no load (the island has no dispatch), secondary restoration back to nominal
                    # while islanded, synchroniser when the grid returns
                    cu = comp[topo, b]
                    freq[u] = f0 - inv_f[u, I_MP] * pf[u] + xfc[cu] + fcorr
                    if not energised_grid[cu]:
                        # restoration of frequency (without the synchroniser's correction) and terminal voltage
                        acc_f[cu] += freq[u] - fcorr
                        cnt_f[cu] += 1.0
                        trest[cu] = inv_f[u, I_TREST]
                        xv[u] += (inv_f[u, I_V0] - vm) / inv_f[u, I_TREST] * dt
                    th[u] += two_pi * (freq[u] - f0) * dt
                    emag[u] = inv_f[u, I_E0] - inv_f[u, I_MQ] * qf[u] + xv[u]
            # campus transfer logic: a dip (a PCS's islanding criterion met) counts once; the campus transfers to the
            # battery (isolation opens, the PCS form the island) when N dips fall within M seconds, or on a
            # transfer-trip signal; otherwise it rides the dip on the grid
            if any_hit and not in_dip and first_det < 0:
                in_dip = True
                dip_times[n_dips % 64] = t
                n_dips += 1
                cnt_d = 0
                for q in range(64):
                    if t - dip_times[q] <= det[D_DIP_WINDOW] + 1e-12:
                        cnt_d += 1
                if cnt_d >= det[D_N_DIPS] or tt_hit:
                    first_det = k
                    xfer_times[n_xfer % 64] = t
                    n_xfer += 1
                    cnt_x = 0
                    for q in range(64):
                        if t - xfer_times[q] <= det[D_DIP_WINDOW] + 1e-12:
                            cnt_x += 1
                    if cnt_x >= det[D_LOCKOUT_N]:
                        locked_until = t + det[D_LOCKOUT_S]
                    for u in range(n_inv):
                        if inv_j[u, J_FORM] == 1 and mode[u] == 0:
                            det_step[u] = k
                            t_detect[u] = t
            elif not any_hit and in_dip:
                # the dip is over when no PCS sees its criterion any more (counters back at zero)
                clear = True
                for u in range(n_inv):
                    if inv_j[u, J_FORM] == 1 and mode[u] == 0 and (t_uv[u] > 0 or t_ov[u] > 0 or t_df[u] > 0):
                        clear = False
                if clear:
                    in_dip = False
            # automatic retransfer: the returned grid healthy for the retransfer delay, not locked out
            if brk_open_step >= 0:
                for s_ in range(n_src):
                    if grid_on[s_] and not brk[s_] and src_scale[s_] >= 0.9 and t >= locked_until:
                        healthy_t[s_] += dt
                        if healthy_t[s_] >= det[D_RETRANSFER] - 1e-12:
                            resync[s_] = True
                    else:
                        healthy_t[s_] = 0.0
            for c_ in range(n_comp):
                if cnt_f[c_] > 0:
                    xfc[c_] += (f0 - acc_f[c_] / cnt_f[c_]) / trest[c_] * dt
                elif not energised[c_]:
                    xfc[c_] = 0.0
            # PSU and load brown-out: stop drawing below the brown-out voltage, restart above it plus a hysteresis
            # after a recovery time (a state, so that the network iteration sees a continuous load)
            for h in range(n_h):
                for f in range(hall_nf[h]):
                    vm = vmp[hall_bus[h, f]]
                    if feed_on[h, f]:
                        if vm < hall_f[h, H_VBO]:
                            feed_on[h, f] = False
                            feed_t[h, f] = 0.0
                        elif feed_ramp[h, f] < 1.0:
                            feed_ramp[h, f] = min(1.0, feed_ramp[h, f] + dt / hall_f[h, H_WALK])
                    else:
                        feed_t[h, f] = feed_t[h, f] + dt if vm >= hall_f[h, H_VBO] + V_HYST else 0.0
                        if feed_t[h, f] >= hall_f[h, H_TREC] - 1e-12:
                            feed_on[h, f] = True
                            feed_ramp[h, f] = 0.0 if hall_f[h, H_WALK] > 0.0 else 1.0
            for c in range(n_ld):
                vm = vmp[ld_bus[c]]
                if not ld_bo[c]:
                    if vm < ld_f[c, C_VBO]:
                        ld_bo[c] = True
                        ld_bt[c] = 0.0
                else:
                    ld_bt[c] = ld_bt[c] + dt if vm >= ld_f[c, C_VBO] + V_HYST else 0.0
                    if ld_bt[c] >= ld_f[c, C_TREC] - 1e-12:
                        ld_bo[c] = False
            # constant-power loads: drive undervoltage trips
            for c in range(n_ld):
                if not ld_on[c]:
                    continue
                if vmp[ld_bus[c]] < ld_f[c, C_VTRIP]:
                    ld_tb[c] += dt
                    if ld_tb[c] >= ld_f[c, C_TRIDE] - 1e-12:
                        ld_on[c] = False
                else:
                    ld_tb[c] = 0.0
            # motors: slip dynamics and contactor dropout
            for m in range(n_mo):
                if not mo_on[m]:
                    continue
                vm = vmp[mo_bus[m]]
                if vm < mo_f[m, M_VDROP]:
                    mo_tb[m] += dt
                    if mo_tb[m] >= mo_f[m, M_TDROP] - 1e-12:
                        mo_on[m] = False
                        continue
                else:
                    mo_tb[m] = 0.0
                y, zr = _motor_y(mo_f[m, M_RS], mo_f[m, M_XS], mo_f[m, M_XM], mo_f[m, M_RR], mo_f[m, M_XR], mo_s[m])
                i_s = y * vm
                e_m = vm - i_s * complex(mo_f[m, M_RS], mo_f[m, M_XS])
                i_r = e_m / zr
                te = abs(i_r) ** 2 * mo_f[m, M_RR] / max(mo_s[m], 1e-5)
                speed = max(1.0 - mo_s[m], 0.0) / (1.0 - mo_f[m, M_S0])
                tm = mo_f[m, M_TM0] * speed ** mo_f[m, M_EXP]
                mo_s[m] = min(max(mo_s[m] + (tm - te) / (2.0 * mo_f[m, M_H]) * dt, 1e-5), 1.0)

        # ---------------- resynchronisation: close an incomer when its synchro-check allows (the island's
        # frequency is that of the grid-forming units in the incomer's part of the network)
        for s_ in range(n_src):
            if resync[s_] and grid_on[s_] and not brk[s_]:
                cs = comp[topo, src_bus[s_]]
                acc = 0.0
                cnt = 0
                for u in range(n_inv):
                    if mode[u] == 1 and comp[topo, inv_j[u, J_BUS]] == cs:
                        acc += freq[u]
                        cnt += 1
                vp = v_prev[src_bus[s_]]
                dth = abs(np.angle(src_e[s_] * np.conj(vp)))
                dead = cnt == 0 and abs(vp) < 0.1  # closing onto a dead bus needs no synchronism
                if dead or (cnt > 0 and dth <= det[D_SYNC_ANG] and abs(abs(src_e[s_]) - abs(vp)) <= det[D_SYNC_V]
                            and abs(acc / cnt - f0) <= det[D_SYNC_F]):
                    brk[s_] = True
                    src_on[s_] = True
                    resync[s_] = False
                    healthy_t[s_] = 0.0
                    if not t_close[0] <= t:
                        t_close[0] = t
                    # back on the grid: the PCS of this part return to grid-following at their present current
                    for u in range(n_inv):
                        if mode[u] == 1 and inv_j[u, J_MODE0] == 0 and comp[topo, inv_j[u, J_BUS]] == cs:
                            mode[u] = 0
                            sp = v_prev[inv_j[u, J_BUS]] * np.conj(i_inj[u])
                            pset[u] = sp.real
                            qset[u] = sp.imag
                            th[u] = np.angle(v_prev[inv_j[u, J_BUS]])
                            rot = i_inj[u] * np.exp(-1j * th[u])
                            id_[u] = rot.real
                            iq_[u] = rot.imag
                            xi[u] = 0.0
                            det_step[u] = -1
                            t_uv[u] = 0.0
                            t_ov[u] = 0.0
                            t_df[u] = 0.0
                            t_rocof[u] = 0.0
        # every incomer back: the transfer logic is armed again
        if brk_open_step >= 0:
            all_closed = True
            for s_ in range(n_src):
                if not brk[s_]:
                    all_closed = False
            if all_closed:
                brk_open_step = -1
                first_det = -1
                in_dip = False
        # ---------------- energised parts of the network: a utility source or a grid-forming PCS in them. A
        # grid-following inverter in a dead part has lost its voltage reference and injects nothing.
        energised[:] = False
        energised_grid[:] = False
        for s in range(n_src):
            if src_on[s]:
                energised[comp[topo, src_bus[s]]] = True
                energised_grid[comp[topo, src_bus[s]]] = True
        for u in range(n_inv):
            if mode[u] == 1:
                energised[comp[topo, inv_j[u, J_BUS]]] = True
        # ---------------- network solution (fixed point)
        conv = False
        it = 0
        for it in range(max_iter):
            vmag = np.abs(v)
            y = ytopo[topo].copy()
            rhs = np.zeros(n, dtype=np.complex128)
            for s in range(n_src):
                if src_on[s]:
                    b = src_bus[s]
                    y[b, b] += src_y[s]
                    rhs[b] += src_y[s] * src_e[s] * src_scale[s]
            for u in range(n_inv):
                b = inv_j[u, J_BUS]
                if mode[u] == 1:
                    # current limiting by an adaptive virtual impedance (k >= 1), which also holds the power
                    # within what the battery can give: the unit stays a voltage source behind k * zv
                    zv = complex(inv_f[u, I_ZV_RE], inv_f[u, I_ZV_IM])
                    e_int = emag[u] * np.exp(1j * th[u])
                    ides = (e_int - v[b]) / zv
                    kv = max(1.0, abs(ides) / inv_f[u, I_ILIM])
                    pdes = (v[b] * np.conj(ides)).real
                    if pdes > inv_f[u, I_PMAX] * kv:
                        kv = pdes / inv_f[u, I_PMAX]
                    limited[u] = kv > 1.0
                    kz[u] = kv
                    y[b, b] += 1.0 / (kv * zv)
                    rhs[b] += e_int / (kv * zv)
                elif mode[u] == 0 and energised[comp[topo, b]]:
                    rhs[b] += i_inj[u]
            for c in range(n_ld):
                ld_p[c] = 0.0
                if ld_on[c]:
                    b = ld_bus[c]
                    vm = vmag[b]
                    if not ld_bo[c] and vm > 1e-6:
                        p = min(ld_f[c, C_P], ld_f[c, C_ILIMP] * vm)
                        ld_p[c] = p
                        y[b, b] += complex(p, -p * ld_f[c, C_TAN]) / (vm * vm)
            for m in range(n_mo):
                if mo_on[m]:
                    b = mo_bus[m]
                    ym, zr = _motor_y(mo_f[m, M_RS], mo_f[m, M_XS], mo_f[m, M_XM], mo_f[m, M_RR], mo_f[m, M_XR],
                                      mo_s[m])
                    y[b, b] += ym * mo_f[m, M_K] + complex(mo_f[m, M_YC_RE], mo_f[m, M_YC_IM])
            for h in range(n_h):
                fok_h = fsys >= hall_f[h, H_FMIN] and fsys <= hall_f[h, H_FMAX]
                for g in range(n_g):
                    if lost[h, g]:
                        demand[g] = 0.0
                    else:
                        pout = grp_p[h, g] * (1.0 - shed)
                        demand[g] = pout + _recharge(w[h, g], grp_wmax[h, g], hall_f[h, H_REC], pout)
                nf = hall_nf[h]
                tot, d = _psu_alloc(hall_bus[h], nf, hall_ilimp[h], vmag, fok_h, feed_on[h], feed_ramp[h], demand,
                                    alloc)
                ratio[h] = tot / d if d > 0 else 1.0
                for f in range(nf):
                    feed_p[h, f] = alloc[f]
                    b = hall_bus[h, f]
                    vm = vmag[b]
                    if alloc[f] > 0.0 and vm > 1e-6:
                        y[b, b] += complex(alloc[f], -alloc[f] * hall_f[h, H_TAN]) / (vm * vm)
            for q in range(n_fl):
                if flt_on[q]:
                    y[flt_bus[q], flt_bus[q]] += flt_y[q]
            vn = np.linalg.solve(y, rhs)
            dv = np.max(np.abs(vn - v))
            if it >= 4:
                vn = 0.5 * (vn + v)
            v = vn
            if dv < tol:
                conv = True
                break
        if not conv:
            n_nonconv += 1
        # GFL and limited GFM currents are what they were set to; unlimited GFM current from the solution
        for u in range(n_inv):
            if mode[u] == 1:
                zv = complex(inv_f[u, I_ZV_RE], inv_f[u, I_ZV_IM])
                i_inj[u] = (emag[u] * np.exp(1j * th[u]) - v[inv_j[u, J_BUS]]) / (kz[u] * zv)
                ia = abs(i_inj[u])
                if ia > inv_f[u, I_ILIM]:  # the hard limit, where the iteration stopped short of it
                    i_inj[u] *= inv_f[u, I_ILIM] / ia
            elif mode[u] == 0 and not energised[comp[topo, inv_j[u, J_BUS]]]:
                i_inj[u] = 0j
        # PSU DC links over the step just solved: the input is the mean of the supply ratio at both ends
        # (trapezoidal rule, second order: the hold-up does not depend on the step), or its value before the step
        # when something switched at this step (the solution jumped at the step's start)
        jump = ev != ev0 or _n_discrete(mode, feed_on, ld_bo, ld_on, mo_on, src_on, lost) != n_disc0
        if k > 0:
            for h in range(n_h):
                for g in range(n_g):
                    if lost[h, g] or grp_p[h, g] <= 0.0:
                        continue
                    pout = grp_p[h, g] * (1.0 - shed)
                    dem = pout + _recharge(w[h, g], grp_wmax[h, g], hall_f[h, H_REC], pout)
                    r_ = ratio_prev[h] if jump else 0.5 * (ratio_prev[h] + ratio[h])
                    net_p = r_ * dem - pout
                    if net_p < 0.0 and pout > 0.0:
                        net_p *= (pout + grp_l0p[h, g]) / pout
                    w[h, g] = min(w[h, g] + net_p * dt, grp_wmax[h, g])
                    if w[h, g] <= 0.0:
                        w[h, g] = 0.0
                        lost[h, g] = True
        ratio_prev[:] = ratio
        v_prev[:] = v

        # ---------------- record
        if k % rec_every == 0 and rec < out_v.shape[0]:
            out_v[rec] = v
            for u in range(n_inv):
                sp = v[inv_j[u, J_BUS]] * np.conj(i_inj[u]) if mode[u] < 2 else 0j
                out_inv[rec, u, R_P] = sp.real
                out_inv[rec, u, R_Q] = sp.imag
                out_inv[rec, u, R_I] = abs(i_inj[u]) if mode[u] < 2 else 0.0
                out_inv[rec, u, R_MODE] = mode[u]
                out_inv[rec, u, R_F] = freq[u] if mode[u] < 2 else np.nan
            for h in range(n_h):
                served = 0.0
                lost_p = 0.0
                wmin = 1.0
                for g in range(n_g):
                    if lost[h, g]:
                        lost_p += grp_p[h, g]
                    else:
                        served += grp_p[h, g] * (1.0 - shed)
                    if grp_wmax[h, g] > 0:
                        wmin = min(wmin, w[h, g] / grp_wmax[h, g])
                drawn = 0.0
                vbest = 0.0
                for f in range(hall_nf[h]):
                    drawn += feed_p[h, f]
                    out_hall_feed[rec, h, f] = feed_p[h, f]
                    vbest = max(vbest, abs(v[hall_bus[h, f]]))
                out_hall[rec, h, RH_SERVED] = served
                out_hall[rec, h, RH_DRAWN] = drawn
                out_hall[rec, h, RH_LOST] = lost_p
                out_hall[rec, h, RH_WMIN] = wmin
                # the voltage the servers see: the better of their feeds, or the UPS output while it lasts
                if hall_f[h, H_UPS] > 0.0:
                    out_hall[rec, h, RH_SUPPLY_V] = 1.0 if lost_p == 0.0 else 0.0
                else:
                    out_hall[rec, h, RH_SUPPLY_V] = vbest
            for c in range(n_ld):
                out_ld[rec, c] = ld_p[c]
            for m in range(n_mo):
                if mo_on[m]:
                    b = mo_bus[m]
                    ym, zr = _motor_y(mo_f[m, M_RS], mo_f[m, M_XS], mo_f[m, M_XM], mo_f[m, M_RR], mo_f[m, M_XR],
                                      mo_s[m])
                    sm = v[b] * np.conj(ym * mo_f[m, M_K] * v[b])
                    out_mo[rec, m, 0] = mo_s[m]
                    out_mo[rec, m, 1] = sm.real
                    out_mo[rec, m, 2] = 1.0
                else:
                    out_mo[rec, m, 0] = mo_s[m]
                    out_mo[rec, m, 1] = 0.0
                    out_mo[rec, m, 2] = 0.0
            for s in range(n_src):
                if src_on[s]:
                    b = src_bus[s]
                    out_src[rec, s] = v[b] * np.conj(src_y[s] * (src_e[s] * src_scale[s] - v[b]))
                else:
                    out_src[rec, s] = 0j
            out_step[rec, 0] = it + 1
            out_step[rec, 1] = 1.0 if conv else 0.0
            out_step[rec, 2] = topo
            out_step[rec, 3] = fsys
            islanded = brk_open_step >= 0
            out_step[rec, 4] = 1.0 if islanded else 0.0
            out_step[rec, 5] = n_xfer
            out_step[rec, 6] = 1.0 if t < locked_until else 0.0
            rec += 1
    return n_nonconv
