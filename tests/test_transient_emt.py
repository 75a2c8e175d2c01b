"""EMT cross-check model (twin.transient.emt): analytic RL energisation, phasor steady state, islanding with the
PCS mode change (ride-through and dropout), the sliding DFT, step-size convergence, the case aggregation, and the
cross-check itself against a phasor (RMS) model of the same equivalent (``_rms_reference``), with the band."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import fsolve

from twin.transient import emt

DT = 2e-5


def _ride_through_case(**kw) -> emt.EmtEquivalent:
    """A hall the PCS can carry (3 MW against 4.4 MVA), battery idle before the event, 3 ms detection + change."""
    base = dict(hall_p_mw=3.0, hall_q_mvar=0.3, pcs_p_mw=0.0, detection_delay_s=0.002, mode_change_delay_s=0.001)
    base.update(kw)
    return emt.EmtEquivalent(**base)


@pytest.fixture(scope="module")
def ride_through():
    eq = _ride_through_case()
    return eq, emt.simulate_emt(eq, t_end_s=0.2, t_event_s=0.04, dt_s=DT)


@pytest.fixture(scope="module")
def overload():
    eq = _ride_through_case(hall_p_mw=15.0, hall_q_mvar=1.0)  # 15 MW against 1.2 x 4.4 MVA: 2.8 x the limit
    return eq, emt.simulate_emt(eq, t_end_s=0.2, t_event_s=0.04, dt_s=DT)


def test_rl_energisation_matches_the_analytic_step():
    """Source behind R-L energising a series R-L into a resistor from zero current at a known angle.

    i(t) = |E|/|Z| (cos(wt + a - phi) - cos(a - phi) exp(-t/tau)), tau = L/R, in each phase (a = 0, -120, +120 deg).
    The trapezoidal rule's errors are (w dt)^2/12 = 3e-6 on the 50 Hz part and (dt/tau)^2/12 on the offset.
    """
    eq = emt.EmtEquivalent(s_sc_mva=150.0, x_r=5.0, z_hall_ohm=complex(0.1, 2.0), hall_p_mw=50.0, hall_q_mvar=0.0,
                           hall_z_fraction=1.0, c_poc_uf=0.0, c_hall_uf=0.0, pcs_sn_mva=0.0)
    ds = emt.simulate_emt(eq, t_end_s=0.06, t_event_s=1.0, dt_s=DT, start="de-energised")
    w = 2 * math.pi * eq.f_hz
    vb = eq.v_base_peak
    r_load = 1.5 * vb ** 2 / (eq.hall_p_mw * 1e6)  # star-equivalent resistance of 50 MW at 10 kV: 2 ohm
    r = eq.z_source_ohm.real + eq.z_hall_ohm.real + r_load
    ll = (eq.z_source_ohm.imag + eq.z_hall_ohm.imag) / w
    z = complex(r, w * ll)
    tau = ll / r
    assert tau > 3e-3  # a real DC offset, many steps long
    t = ds.time.values
    peak = eq.v_poc_pu * vb / abs(z)
    for k, a in enumerate((0.0, -2 * math.pi / 3, 2 * math.pi / 3)):
        ref = peak * (np.cos(w * t + a - np.angle(z)) - math.cos(a - np.angle(z)) * np.exp(-t / tau))
        sim = ds.i_source_ka.isel(phase=k).values * 1e3
        assert np.max(np.abs(sim - ref)) < 1e-4 * peak
    # the same current flows through the hall branch and the load (no shunt capacitance)
    np.testing.assert_allclose(ds.i_hall_ka.values, ds.i_source_ka.values, atol=1e-9 * peak)
    # and the DC offset is there: phase a's mean over the first cycle is far from zero
    assert abs(float(ds.i_source_ka.isel(phase=0).sel(time=slice(0, 0.02)).mean()) * 1e3) > 0.1 * peak


def _hand_phasor(eq: emt.EmtEquivalent) -> tuple[complex, complex]:
    """Pre-event phasors solved by hand: hall bus and PCS terminal voltage (phase-peak V) given the POC voltage."""
    w = 2 * math.pi * eq.f_hz
    vp = eq.v_poc_pu * eq.v_base_peak
    s_h = complex(eq.hall_p_mw, eq.hall_q_mvar) * 1e6
    s_p = complex(eq.pcs_p_mw, eq.pcs_q_mvar) * 1e6

    def hall(x):
        vh = complex(x[0], x[1])
        # S = 1.5 V conj(I): the load current, plus the EMI capacitor's
        ih = (s_h / (1.5 * vh)).conjugate() + 1j * w * eq.c_hall_uf * 1e-6 * vh
        r = vp - eq.z_hall_ohm * ih - vh
        return [r.real, r.imag]

    def pcs(x):
        vt = complex(x[0], x[1])
        r = vp + eq.z_pcs_ohm * (s_p / (1.5 * vt)).conjugate() - vt
        return [r.real, r.imag]

    vh = fsolve(hall, [vp, 0.0], xtol=1e-13)
    vt = fsolve(pcs, [vp, 0.0], xtol=1e-13)
    return complex(*vh), complex(*vt)


def test_steady_state_before_the_event_is_the_phasor_solution():
    """Seed-like equivalent (10 MW hall, PCS discharging 4 MW): DFT magnitudes equal a hand phasor solution."""
    eq = emt.EmtEquivalent()
    ds = emt.simulate_emt(eq, t_end_s=0.04, t_event_s=1.0, dt_s=DT)
    vh, vt = _hand_phasor(eq)
    vb = eq.v_base_peak
    pre = ds.sel(time=slice(0.02, 0.0399))
    assert abs(float(pre.v_poc_pu[-1]) - eq.v_poc_pu) < 1e-4
    assert abs(float(pre.v_hall_pu[-1]) - abs(vh) / vb) < 1e-4
    assert abs(float(pre.v_pcs_pu[-1]) - abs(vt) / vb) < 1e-4
    # stationary: nothing drifts over the second cycle
    for v in ("v_poc_pu", "v_hall_pu", "v_pcs_pu"):
        assert float(pre[v].max() - pre[v].min()) < 1e-5
    # the PCS delivers its setpoint (grid-following current control) and the hall draws its power
    assert float(pre.p_pcs_mw.mean()) == pytest.approx(eq.pcs_p_mw, rel=1e-2)
    assert float(pre.p_pcs_mw.mean()) == pytest.approx(eq.pcs_p_mw, rel=1e-4)  # measured: exact to 1e-6
    assert float(pre.q_pcs_mvar.mean()) == pytest.approx(eq.pcs_q_mvar, abs=1e-3)
    assert float(pre.p_hall_mw.mean()) == pytest.approx(eq.hall_p_mw, rel=1e-6)
    assert float(pre.f_pcs_hz.min()) == pytest.approx(50.0, abs=1e-6)


def test_island_ride_through_when_the_pcs_can_carry_the_hall(ride_through):
    eq, ds = ride_through
    t = ds.time.values
    t_mode = 0.04 + eq.detection_delay_s + eq.mode_change_delay_s
    mode = ds.pcs_mode.values
    assert np.all(mode[t < t_mode - DT / 2] == 0) and np.all(mode[t > t_mode + DT / 2] == 1)
    assert np.all(ds.breaker_closed.values[t >= 0.04 - DT / 2] == 0)
    assert float(ds.hall_dropout_fraction.max()) == 0.0  # 3 ms of gap is within the 10 ms hold-up
    late = ds.sel(time=slice(0.12, 0.2))
    assert float(late.v_hall_pu.min()) > 0.93 and float(late.v_hall_pu.max()) < 1.05
    assert float(abs(late.p_source_mw).max()) < 1e-3  # islanded
    # P-f droop in steady state: f = f0 (1 - d (P - P0) / Sn), with P the PCS output (hall + losses)
    p = float(late.p_pcs_mw.mean())
    assert p == pytest.approx(eq.hall_p_mw, rel=0.02)
    f_droop = eq.f_hz * (1 - eq.droop_p_f_percent / 100 * (p - eq.pcs_p_mw) / eq.pcs_sn_mva)
    assert float(late.f_pcs_hz.isel(time=-1)) == pytest.approx(f_droop, abs=0.01)
    # the waveform really runs at that frequency: zero crossings of phase a over the last 60 ms
    va = ds.v_hall_kv.sel(phase="a", time=slice(0.14, 0.2)).values
    tt = ds.time.sel(time=slice(0.14, 0.2)).values
    up = np.nonzero((va[:-1] < 0) & (va[1:] >= 0))[0]
    tz = tt[up] - va[up] * (tt[up + 1] - tt[up]) / (va[up + 1] - va[up])
    assert 1.0 / np.mean(np.diff(tz)) == pytest.approx(f_droop, abs=0.02)


def test_island_overload_drops_the_hall_then_the_voltage_recovers(overload):
    eq, ds = overload
    t = ds.time.values
    drop = ds.hall_dropout_fraction.values
    assert drop[-1] == 1.0
    t_drop = t[np.argmax(drop > 0)]
    # the DC link cannot drain faster than the output power: the dropout comes after the hold-up time
    assert 0.04 + eq.hall_holdup_s - DT <= t_drop <= 0.04 + 3 * eq.hall_holdup_s
    # before it, the PSUs browned out (and restarted) and the hall got a fraction of its power (measured 3 %)
    assert float(ds.hall_psu_on.sel(time=slice(0.04, t_drop)).min()) == 0.0
    assert float(ds.p_hall_mw.sel(time=slice(0.04, t_drop)).mean()) < 0.25 * eq.hall_p_mw
    # with the load gone the grid-forming PCS holds its no-load voltage (EMF 1 pu, cable charging)
    late = ds.sel(time=slice(t_drop + 0.05, 0.2))
    assert float(late.v_hall_pu.min()) > 0.98 and float(late.v_hall_pu.max()) < 1.05
    # current limiting (virtual resistance above the limit): from the mode change on, the PCS current vector stays
    # within 20 % of its limit (measured 1.15 x, while the browning-out PSUs switch on and off), and it does
    # limit: the hall asks for 2.8 x the limit
    t_mode = 0.04 + eq.detection_delay_s + eq.mode_change_delay_s
    i_abc = ds.i_pcs_ka.sel(time=slice(t_mode + DT, 0.2)).values * 1e3
    i_vec = np.abs((i_abc[0] + np.exp(2j * np.pi / 3) * i_abc[1] + np.exp(-2j * np.pi / 3) * i_abc[2]) * 2 / 3)
    i_lim = eq.pcs_current_limit_pu * eq.pcs_sn_mva * 1e6 / (1.5 * eq.v_base_peak)
    assert 1.0 * i_lim < i_vec.max() < 1.2 * i_lim


def test_sliding_dft_is_exact_for_a_pure_sinusoid():
    f, dt = 50.0, DT
    t = np.arange(3000) * dt
    n = int(round(1 / (f * dt)))
    x = 7.3 * np.cos(2 * np.pi * f * t + 0.4)
    m = emt.fundamental_magnitude(x, dt, f)
    assert np.all(np.isnan(m[: n - 1]))
    np.testing.assert_allclose(m[n - 1:], 7.3, rtol=1e-11)
    # DC and harmonics are rejected exactly over a whole cycle
    y = x + 2.0 + 1.5 * np.cos(2 * np.pi * 3 * f * t) + 0.7 * np.sin(2 * np.pi * 5 * f * t + 1.0)
    np.testing.assert_allclose(emt.fundamental_magnitude(y, dt, f)[n - 1:], 7.3, rtol=1e-11)
    # positive sequence of a set with a negative-sequence part: only the positive sequence remains
    ph = np.array([0.0, -2 * np.pi / 3, 2 * np.pi / 3])
    abc = 5.0 * np.cos(2 * np.pi * f * t + 0.2 + ph[:, None]) + 1.1 * np.cos(2 * np.pi * f * t - ph[:, None])
    np.testing.assert_allclose(emt.positive_sequence_magnitude(abc, dt, f)[n - 1:], 5.0, rtol=1e-11)
    with pytest.raises(ValueError, match="whole number"):
        emt.fundamental_magnitude(x, 3e-5 * 1.1, f)


def test_halving_the_step_changes_the_fundamental_voltages_little(ride_through):
    """20 us against 10 us: below 1e-4 pu from 1.5 cycles after the events (measured 3.4e-5), below 2e-3 pu from one
    cycle (measured 9.1e-4: the controls sample twice as often, so the first-cycle transient differs slightly)."""
    eq, ds = ride_through
    fine = emt.simulate_emt(eq, t_end_s=0.2, t_event_s=0.04, dt_s=DT / 2)
    t_mode = 0.04 + eq.detection_delay_s + eq.mode_change_delay_s
    for cycles, tol in ((1.5, 1e-4), (1.0, 2e-3)):
        keep = (ds.time > 0.02) & ~((ds.time >= 0.04) & (ds.time < t_mode + cycles * 0.02))
        for v in ("v_poc_pu", "v_hall_pu", "v_pcs_pu"):
            coarse = ds[v].where(keep, drop=True)
            d = np.abs(coarse.values - fine[v].interp(time=coarse.time).values)
            assert np.nanmax(d) < tol, (v, cycles)


def _nonfundamental_content(eq, ds, bus):
    """The instantaneous voltage-vector magnitude, pu: an envelope with the network's ringing (no RMS model has it)."""
    abc = ds[f"v_{bus}_kv"].values
    z = (abc[0] + np.exp(2j * np.pi / 3) * abc[1] + np.exp(-2j * np.pi / 3) * abc[2]) * (2.0 / 3.0)
    return np.abs(z) * 1e3 / eq.v_base_peak


@pytest.mark.parametrize("which", ["ride_through", "overload"])
def test_non_fundamental_content_is_inside_the_band_after_the_events(which, request):
    """The band of the RMS comparison: the EMT-only content decays below BAND_PU within 1.5 cycles of each event."""
    eq, ds = request.getfixturevalue(which)
    for bus in ("poc", "pcs", "hall"):
        env = _nonfundamental_content(eq, ds, bus)
        out = emt.compare_fundamental(ds, ds.time.values, env, f"v_{bus}_pu")
        assert out["pass"], (bus, out)
        assert out["n_compared"] > 0.6 * ds.sizes["time"]
        if which == "ride_through":  # the network stays loaded: far inside the band (measured 9e-4)
            assert out["max_abs_diff_pu"] < 2e-3


def test_compare_fundamental_removes_the_dft_lag():
    """An amplitude-modulated 50 Hz set: its DFT magnitude equals the one-cycle mean of the RMS envelope exactly."""
    eq = _ride_through_case()
    ds = emt.simulate_emt(eq, t_end_s=0.1, t_event_s=0.04, dt_s=DT)
    t = ds.time.values
    env = 1.0 - 0.3 * np.clip((t - 0.05) / 0.01, 0, 1) + 0.05 * np.sin(2 * np.pi * 3 * t)
    z = env * np.exp(2j * np.pi * 50 * t)
    ph = np.exp(-2j * np.pi / 3 * np.arange(3))[:, None]
    ds["v_hall_pu"] = ("time", emt.positive_sequence_magnitude((z * ph).real, DT, 50.0))
    out = emt.compare_fundamental(ds, t, env, "v_hall_pu", skip_cycles=0.0)
    assert out["pass"] and out["max_abs_diff_pu"] < 1e-9
    bad = emt.compare_fundamental(ds, t, env + 0.05, "v_hall_pu")
    assert not bad["pass"] and bad["max_abs_diff_pu"] == pytest.approx(0.05, abs=1e-9)


def test_bad_parameters_are_rejected_clearly():
    with pytest.raises(ValueError, match="s_sc_mva must be positive"):
        emt.EmtEquivalent(s_sc_mva=0.0)
    with pytest.raises(ValueError, match="hall_restart_pu"):
        emt.EmtEquivalent(hall_brownout_pu=0.8, hall_restart_pu=0.7)
    with pytest.raises(ValueError, match="exceeds pcs_sn_mva"):
        emt.EmtEquivalent(pcs_p_mw=5.0)
    with pytest.raises(ValueError, match="de-energised"):
        emt.simulate_emt(emt.EmtEquivalent(), start="de-energised")
    with pytest.raises(ValueError, match="voltage collapse"):
        emt.steady_state(emt.EmtEquivalent(hall_p_mw=400.0, pcs_p_mw=0.0))


def test_equivalent_from_the_seed_case_matches_its_load_flow():
    """Aggregation of the seed case at training peak: totals, and the hall voltage of the load flow."""
    from twin import network as netmod
    from twin.case import load_case

    case = load_case(None)
    eq = emt.equivalent_from_case(case, "training_peak")
    net = netmod.apply_operating_point(netmod.build_net(case), case, "training_peak")
    netmod.run_loadflow(net)
    p_load = float(net.res_load.p_mw.sum() + net.res_motor.p_mw.sum())
    assert eq.hall_p_mw == pytest.approx(p_load, rel=1e-9)
    assert eq.pcs_p_mw == pytest.approx(4.0) and eq.pcs_sn_mva == pytest.approx(4.4)
    assert eq.s_sc_mva == pytest.approx(300.0) and eq.x_r == pytest.approx(5.0)  # two incomers, minimum conditions
    # the hall bus of the equivalent sits at the power-weighted mean voltage of the load flow's LV boards
    p_bus = net.res_load.p_mw.groupby(net.load.bus).sum().add(
        net.res_motor.p_mw.groupby(net.motor.bus).sum(), fill_value=0.0)
    v_lf = float((net.res_bus.vm_pu[p_bus.index] * p_bus).sum() / p_bus.sum())
    assert emt.steady_state(eq)["v_hall_pu"] == pytest.approx(v_lf, abs=2e-3)  # measured 3.5e-4
    # the campus dynamics set (models/dynamics/campus_default.toml), as the RMS simulator reads it
    from twin.transient.params import load_dynamics

    dyn = load_dynamics(case, case.spec.switchover.dynamics)
    assert eq.pll_bandwidth_hz == dyn.pcs.pll_bandwidth_hz and eq.pcs_current_limit_pu == dyn.pcs.current_limit_pu
    assert eq.mode_change_delay_s == pytest.approx(dyn.pcs.mode_change_delay_ms / 1e3)
    assert eq.hall_brownout_pu == dyn.psu.brownout_pu
    assert eq.hall_holdup_s == pytest.approx(0.018 / (dyn.psu.load_fraction + 0.8), rel=1e-6)  # 10/12 ms fit
    # overrides win
    eq2 = emt.equivalent_from_case(case, "training_peak", detection_delay_s=0.0123)
    assert eq2.detection_delay_s == 0.0123


def test_pcs_dynamics_table_is_read_when_present():
    """The PCS model's optional [dynamics] table (ms keys converted to s) overrides the dataclass defaults."""
    from types import SimpleNamespace

    dyn = emt._pcs_dynamics(SimpleNamespace(dynamics={"pll_bandwidth_hz": 15.0, "current_tau_ms": 1.5,
                                                      "power_filter_ms": 50.0, "mode_change_delay_ms": 2.0}))
    assert dyn == {"pll_bandwidth_hz": 15.0, "current_tau_s": 1.5e-3, "power_filter_s": 0.05,
                   "mode_change_delay_s": 2e-3}
    assert emt._pcs_dynamics(SimpleNamespace(dynamics=SimpleNamespace(virtual_x_pu=0.2))) == {"virtual_x_pu": 0.2}
    assert emt._pcs_dynamics(SimpleNamespace()) == {}


def _rms_reference(eq: emt.EmtEquivalent, t_end_s=0.2, t_event_s=0.04, dt_s=1e-4):
    """A phasor (RMS) model of the same reduced equivalent, as the RMS simulator would build it.

    Network algebraic at 50 Hz (no inductor or capacitor dynamics), the breaker opening instantly, the
    grid-following PCS a current source whose dq current follows its reference with the closed-loop time constant,
    the grid-forming PCS its droop EMF behind the virtual impedance, turned into a current source at its current
    limit (the usual RMS representation of current limiting), the hall the same PFC load, DC link and brown-out
    logic. Returns time (s), |V| (pu) at the POC, PCS terminal and hall (3, n), and
    the hall dropout time (s, NaN if none).
    """
    w0 = 2 * math.pi * eq.f_hz
    vb = eq.v_base_peak
    ss = emt.steady_state(eq)
    ys, yh, yx = 1 / eq.z_source_ohm, 1 / eq.z_hall_ohm, 1 / eq.z_pcs_ohm
    bcp, bch = 1j * w0 * eq.c_poc_uf * 1e-6, 1j * w0 * eq.c_hall_uf * 1e-6
    sb, zb = eq.pcs_sn_mva * 1e6, eq.vn_kv ** 2 / eq.pcs_sn_mva
    p_set, q_set = eq.pcs_p_mw * 1e6, eq.pcs_q_mvar * 1e6
    i_max = eq.pcs_current_limit_pu * sb / (1.5 * vb)
    p_cp, q_cp = eq.hall_p_mw * 1e6, eq.hall_q_mvar * 1e6
    e_max = eq.hall_holdup_s * p_cp
    i_hall_max = eq.hall_current_limit_pu * p_cp / (1.5 * vb)
    wn = 2 * math.pi * eq.pll_bandwidth_hz
    kp_pll, ki_pll = 2 * eq.pll_damping * wn, wn * wn
    zv = complex(eq.virtual_r_pu, eq.virtual_x_pu) * zb
    mp, nq = eq.droop_p_f_percent / 100 / sb, eq.droop_q_v_percent / 100 / sb
    t_mode = t_event_s + eq.detection_delay_s + eq.mode_change_delay_s
    e = ss["e"]
    vp, vt, vh, ix = ss["v_poc"], ss["v_pcs"], ss["v_hall"], ss["i_pcs"]
    th, x_pll, i_dq = float(np.angle(vt)), 0.0, ix * np.exp(-1j * np.angle(vt))  # frame angle relative to w0 t
    p_f, q_f = (1.5 * vt * np.conj(ix)).real, (1.5 * vt * np.conj(ix)).imag
    m2, e_dc, on, dropped, mode, t_drop, t_above = abs(vh) ** 2, e_max, True, False, 0, math.nan, 0.0
    n = int(round(t_end_s / dt_s))
    out = np.zeros((3, n + 1))
    out[:, 0] = abs(vp) / vb, abs(vt) / vb, abs(vh) / vb
    for k in range(1, n + 1):
        t = k * dt_s
        if mode == 0 and t >= t_mode:
            mode = 1
        vdq = vt * np.exp(-1j * th)
        if mode == 0:
            err = vdq.imag / vb
            dw = kp_pll * err + x_pll
            if abs(dw) < 0.2 * w0:
                x_pll += ki_pll * err * dt_s
            dw = min(max(dw, -0.2 * w0), 0.2 * w0)
            th += dw * dt_s
            iref = (2 / 3) * complex(p_set, -q_set) / max(vdq.real, 0.2 * vb)
            if abs(iref) > i_max:
                iref *= i_max / abs(iref)
            i_dq += (iref - i_dq) * (1 - math.exp(-dt_s / eq.current_tau_s))
            src = ("I", i_dq * np.exp(1j * th))
        else:
            th += (w0 * (1 - mp * (p_f - p_set)) - w0) * dt_s
            emf = eq.gfm_v_set_pu * vb * (1 - nq * (q_f - q_set))
            src = ("V", emf * np.exp(1j * th), 1 / zv)  # EMF behind the virtual impedance, hard current limit
        p_cmd = min(p_cp + (e_max - e_dc) / eq.hall_recharge_s, p_cp * (1 + eq.hall_recharge_fraction))
        y_p = (2 / 3) * complex(1, -q_cp / p_cp) * p_cmd / m2 if (on and not dropped) else 0j  # EMT's PFC law
        for _ in range(8):
            y = np.zeros((3, 3), complex)
            rhs = np.zeros(3, complex)
            y[0, 0] = yx + yh + bcp
            y[0, 1] = y[1, 0] = -yx
            y[0, 2] = y[2, 0] = -yh
            y[1, 1] = yx
            y[2, 2] = yh + bch + y_p
            if t < t_event_s:
                y[0, 0] += ys
                rhs[0] = ys * e
            if src[0] == "I":
                rhs[1] = src[1]
            else:
                y[1, 1] += src[2]
                rhs[1] = src[2] * src[1]
            vp, vt, vh = np.linalg.solve(y, rhs)
            i_pcs = yx * (vt - vp)
            if src[0] == "V" and abs(i_pcs) > i_max:  # at the limit the grid-forming PCS becomes a current source
                src = ("I", i_pcs * i_max / abs(i_pcs))
                continue
            if abs(y_p * vh) <= i_hall_max * (1 + 1e-9):
                break
            y_p *= i_hall_max / abs(y_p * vh)
        ix = yx * (vt - vp)
        p_in = (1.5 * vh * np.conj(y_p * vh)).real
        if not dropped:
            e_dc = min(e_dc + dt_s * (p_in - p_cp), e_max)
            dropped = e_dc <= 0
            t_drop = t if dropped else t_drop
        m2 += (abs(vh) ** 2 - m2) * (1 - math.exp(-dt_s / eq.hall_voltage_filter_s))
        vf = math.sqrt(m2) / vb
        if on and vf < eq.hall_brownout_pu:
            on, t_above = False, 0.0
        elif not on:
            t_above = t_above + dt_s if vf > eq.hall_restart_pu else 0.0
            on = t_above >= eq.hall_restart_delay_s - 1e-12
        s_t = 1.5 * vt * np.conj(ix)
        g = 1 - math.exp(-dt_s / eq.power_filter_s)
        p_f += (s_t.real - p_f) * g
        q_f += (s_t.imag - q_f) * g
        out[:, k] = abs(vp) / vb, abs(vt) / vb, abs(vh) / vb
    return np.arange(n + 1) * dt_s, out, t_drop


@pytest.mark.parametrize("kw", [{}, {"pcs_p_mw": 2.0}, {"detection_delay_s": 0.004, "mode_change_delay_s": 0.002},
                                {"hall_p_mw": 6.0, "hall_q_mvar": 0.5}, {"hall_p_mw": 15.0, "hall_q_mvar": 1.0},
                                {"hall_p_mw": 10.0, "hall_q_mvar": 2.0, "pcs_p_mw": 4.0}],
                         ids=["battery_idle", "battery_discharging", "slower_detection", "overload_1.1x",
                              "overload_2.8x", "seed_like"])
def test_emt_agrees_with_a_phasor_model_of_the_same_equivalent(kw):
    """The cross-check itself: the EMT DFT magnitudes against an RMS model of the same equivalent.

    Measured over these cases: at most 0.0086 pu from 1.5 cycles after each event (breaker, mode change, dropout
    in either model), against the 0.02 pu band; PSU dropout times 0.6-2.7 ms apart. At exactly one cycle the
    window still holds the first-cycle transient (up to 0.067 pu): the band starts at 1.5 cycles.
    """
    eq = _ride_through_case(**kw)
    ds = emt.simulate_emt(eq, t_end_s=0.2, t_event_s=0.04, dt_s=DT)
    t_rms, v_rms, t_drop_rms = _rms_reference(eq, t_end_s=0.2, t_event_s=0.04)
    drop = ds.hall_dropout_fraction.values
    t_drop_emt = float(ds.time[np.argmax(drop > 0)]) if drop.max() > 0 else math.nan
    assert math.isnan(t_drop_emt) == math.isnan(t_drop_rms)
    events = []
    if not math.isnan(t_drop_rms):
        assert abs(t_drop_emt - t_drop_rms) < 0.005
        events = [t_drop_rms]
    for j, bus in enumerate(("poc", "pcs", "hall")):
        out = emt.compare_fundamental(ds, t_rms, v_rms[j], f"v_{bus}_pu", events_s=events)
        assert out["pass"] and out["max_abs_diff_pu"] < 0.01, (bus, out)
        assert out["n_compared"] > 0.5 * ds.sizes["time"]


def test_rms_overstates_a_grid_following_overvoltage_in_an_unloaded_island():
    """Known limit of the RMS representation, found by this cross-check.

    Seed-like island with 15 ms of detection and mode change: the hall's PSUs brown out (and drop out at 57-60 ms)
    while the PCS is still grid-following (until 55 ms) and keeps injecting 4 MW into the cable and EMI-filter
    capacitance. The phasor model puts the voltage at once where I = w C V (up to 17 pu); in the EMT model the
    capacitors charge over milliseconds (8 pu instantaneous peak, 2.6 pu one-cycle DFT). The grid-forming Q-V droop
    then remembers the absorbed reactive power through its 20 ms power filter, so the two models differ by 0.036 pu
    at 1.5 cycles and 0.021 pu at 2 cycles, and agree within 0.01 pu from 3 cycles.
    (A real PCS would trip on overvoltage first: models/dynamics overvoltage 1.15 pu in 10 ms.)
    """
    eq = _ride_through_case(hall_p_mw=10.0, hall_q_mvar=2.0, pcs_p_mw=4.0, detection_delay_s=0.01,
                            mode_change_delay_s=0.005)
    ds = emt.simulate_emt(eq, t_end_s=0.2, t_event_s=0.04, dt_s=DT)
    t_rms, v_rms, t_drop_rms = _rms_reference(eq, t_end_s=0.2, t_event_s=0.04)
    t_mode = 0.04 + eq.detection_delay_s + eq.mode_change_delay_s
    assert t_drop_rms < t_mode + 0.005 and float(ds.hall_dropout_fraction[-1]) == 1.0
    assert float(ds.hall_psu_on.sel(time=slice(0.04, t_mode)).min()) == 0.0  # the PSUs browned out
    peak_rms = v_rms[2][(t_rms > 0.045) & (t_rms < t_mode)].max()
    peak_emt = np.abs(_nonfundamental_content(eq, ds, "hall")[(ds.time.values > 0.045) & (ds.time.values < t_mode)])
    assert peak_rms > 2 * peak_emt.max() > 4.0
    for j, bus in enumerate(("poc", "pcs", "hall")):
        out = emt.compare_fundamental(ds, t_rms, v_rms[j], f"v_{bus}_pu", events_s=[t_drop_rms])
        assert 0.02 < out["max_abs_diff_pu"] < 0.05  # outside the band at 1.5 cycles ...
        late = emt.compare_fundamental(ds, t_rms, v_rms[j], f"v_{bus}_pu", events_s=[t_drop_rms], skip_cycles=3)
        assert late["max_abs_diff_pu"] < 0.01  # ... inside it from 3 cycles
