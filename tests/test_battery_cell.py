"""Cell electro-thermal model (twin.battery.cell, twin.battery.params): balances, analytic step, limits, bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twin.battery.cell import UNITS, simulate_current, simulate_power, to_dataset
from twin.battery.params import CellParams, load_cell, pack
from twin.case import CaseError

ECM = Path(__file__).resolve().parents[1] / "models" / "battery" / "ecm" / "lfp_280ah.toml"


@pytest.fixture(scope="module")
def cell() -> CellParams:
    return load_cell("lfp_280ah")


def _integral(xs, ys, a, b):
    """Exact integral from a to b of the piecewise-linear table (constant beyond its ends), for arrays a, b."""
    out = np.empty(np.broadcast(a, b).shape)
    for j, (lo, hi) in enumerate(zip(np.ravel(a), np.ravel(b), strict=True)):
        sgn = 1.0 if hi >= lo else -1.0
        lo, hi = min(lo, hi), max(lo, hi)
        pts = np.concatenate([[lo], xs[(xs > lo) & (xs < hi)], [hi]])
        val = np.interp(pts, xs, ys)
        out.flat[j] = sgn * np.sum(0.5 * (val[1:] + val[:-1]) * np.diff(pts))
    return out


def _pulses(dt, hours=1.0):
    """A 1-hour pulse profile (A): discharge, rest, charge pulses of 5 to 60 s, resolved at 1 s."""
    t = np.arange(0.0, hours * 3600.0, dt)
    sec = np.floor(t + 1e-9).astype(int)
    phase = sec % 240
    i = np.where(phase < 60, 200.0, 0.0)
    i = np.where((phase >= 90) & (phase < 120), -120.0, i)
    i = np.where((phase >= 150) & (phase < 155), 280.0, i)
    return i


# --------------------------------------------------------------------------------------------------------------
# energy balances


def test_energy_balances_hold_exactly(cell):
    """Gibbs, enthalpy and thermal balances, step by step and summed, to 1e-9 relative.

    Gibbs: sum v i dt = sum Q [G(z0) - G(z1)] - sum q_irr dt - sum p_rc dt, G the integral of OCV(z, T0) over SOC;
    enthalpy: sum Q [H(z0) - H(z1)] = sum (v i + q_irr + q_rev + p_rc) dt, H the integral of OCV - T0 dU/dT;
    thermal: C_th (T1 - T0) = (q_irr + q_rev - q_amb) dt.
    """
    rng = np.random.default_rng(1)
    dt = 10.0
    nt = 1500
    i_req = np.repeat(rng.uniform(-140, 280, nt // 10), 10)          # crosses many OCV table points
    t_amb = 25.0 + 10.0 * np.sin(np.arange(nt) / 200.0)
    o = simulate_current(cell, i_req, dt, t_amb, soc0=0.95, t0_degc=20.0)
    assert np.any(o["flag"] != 0)  # limits act in this profile: the balances must hold with them too
    pk = pack(cell)
    cq = cell.capacity_ah * 3600.0
    z0 = np.concatenate([[0.95], o["soc"][:-1]])
    z1 = o["soc"]
    t0 = np.concatenate([[20.0], o["t_degc"][:-1]]) + 273.15
    g_ref = _integral(pk.soc, pk.ocv, z1, z0)
    g_du = _integral(pk.soc, pk.dudt, z1, z0)
    d_gibbs = cq * (g_ref + (t0 - pk.scal[1]) * g_du)
    d_enth = d_gibbs - cq * t0 * g_du
    e_out = o["v"] * o["i"] * dt
    q_irr, q_rev, p_rc = o["q_irr_w"] * dt, o["q_rev_w"] * dt, o["p_rc_w"] * dt
    scale = np.sum(np.abs(e_out))
    assert abs(np.sum(e_out) - np.sum(d_gibbs - q_irr - p_rc)) <= 1e-9 * scale
    assert np.max(np.abs(e_out - (d_gibbs - q_irr - p_rc))) <= 1e-9 * np.max(np.abs(e_out))
    assert abs(np.sum(d_enth) - np.sum(e_out + q_irr + q_rev + p_rc)) <= 1e-9 * scale
    # the reversible heat is the entropic term -I T0 dU/dT over the SOC path, nothing else
    np.testing.assert_allclose(q_rev, -t0 * cq * g_du, rtol=1e-9, atol=1e-9 * np.max(np.abs(q_rev)))
    # thermal node
    c_th = cell.heat_capacity_j_per_k
    lhs = c_th * (o["t_degc"] + 273.15 - t0)
    rhs = (o["q_irr_w"] + o["q_rev_w"] - o["q_amb_w"]) * dt
    assert np.max(np.abs(lhs - rhs)) <= 1e-9 * np.max(np.abs(o["q_irr_w"] * dt))
    # discharge and charge both happened, and the energies are not trivially zero
    assert o["i"].max() > 100 and o["i"].min() < -100 and np.sum(q_irr) > 0


def test_rc_energy_is_half_c_v_squared(cell):
    """With constant parameters, p_rc dt is the change of C1 v1^2/2 + C2 v2^2/2 (C = tau/R)."""
    data = cell.model_dump() | {"r_soc": None, "r0_ohm": 3e-4, "r1_ohm": 1e-4, "tau1_s": 10.0, "r2_ohm": 2e-4,
                                "tau2_s": 300.0, "ea_r0_j_per_mol": 0.0, "ea_r1_j_per_mol": 0.0,
                                "ea_r2_j_per_mol": 0.0}
    p = CellParams(**data)
    i = np.concatenate([np.full(50, 250.0), np.zeros(50), np.full(50, -100.0)])
    o = simulate_current(p, i, 7.0, 25.0, 0.5, 25.0)
    e = 0.5 * (10.0 / 1e-4 * o["v_rc1"] ** 2 + 300.0 / 2e-4 * o["v_rc2"] ** 2)
    de = np.diff(np.concatenate([[0.0], e]))
    np.testing.assert_allclose(o["p_rc_w"] * 7.0, de, rtol=1e-9, atol=1e-9 * np.abs(de).max())


# --------------------------------------------------------------------------------------------------------------
# analytic step response and time-step independence


@pytest.mark.parametrize("dt", [1e-3, 1.0, 37.0, 3600.0])
def test_rc_step_response_is_exact(cell, dt):
    """Constant current from rest, flat OCV, constant parameters: Plett's step response to 1e-9 V."""
    r0, r1, tau1, r2, tau2, h, u = 3e-4, 1e-4, 10.0, 2e-4, 300.0, 0.01, 3.3
    data = cell.model_dump() | {"soc": [0.0, 1.0], "ocv_v": [u, u + 1e-12], "dudt_mv_per_k": [0.0, 0.0],
                                "hysteresis_v": h, "r_soc": None, "r0_ohm": r0, "r1_ohm": r1, "tau1_s": tau1,
                                "r2_ohm": r2, "tau2_s": tau2, "ea_r0_j_per_mol": 0.0, "ea_r1_j_per_mol": 0.0,
                                "ea_r2_j_per_mol": 0.0, "t_max_degc": 120.0}
    p = CellParams(**data)
    nt = max(2, int(round(3600.0 / dt)))
    nt = min(nt, 20000)
    i = 100.0
    o = simulate_current(p, np.full(nt, i), dt, 25.0, 0.9, 25.0)
    assert np.all(o["flag"] == 0)
    t = dt * np.arange(1, nt + 1)
    v_end = u - h - i * r0 - i * r1 * (1 - np.exp(-t / tau1)) - i * r2 * (1 - np.exp(-t / tau2))
    np.testing.assert_allclose(o["v_end"], v_end, rtol=0, atol=1e-9)
    # and the step means: the exact mean of the same curve over each step
    ta = t - dt

    def mean_rc(tau):
        return 1 - tau / dt * (np.exp(-ta / tau) - np.exp(-t / tau))

    v_mean = u - h - i * r0 - i * r1 * mean_rc(tau1) - i * r2 * mean_rc(tau2)
    np.testing.assert_allclose(o["v"], v_mean, rtol=0, atol=1e-9)


def test_dt_1s_and_0_1s_agree(cell):
    """A 1-hour pulse profile at dt = 1 s and 0.1 s: within 1 mV and 0.01 K at every second."""
    a = simulate_current(cell, _pulses(1.0), 1.0, 30.0, 0.6, 25.0)
    b = simulate_current(cell, _pulses(0.1), 0.1, 30.0, 0.6, 25.0)
    assert np.all(a["flag"] == 0) and np.all(b["flag"] == 0)
    vb = b["v_end"][9::10]
    tb = b["t_degc"][9::10]
    assert np.max(np.abs(a["v_end"] - vb)) < 1e-3
    assert np.max(np.abs(a["t_degc"] - tb)) < 0.01
    assert np.max(np.abs(a["soc"] - b["soc"][9::10])) < 1e-9
    assert a["t_degc"].max() > 26.0  # the profile heats the cell: the comparison is not trivial


# --------------------------------------------------------------------------------------------------------------
# constant power and limits


@pytest.mark.parametrize("dt", [0.01, 1.0, 60.0, 900.0])
def test_constant_power_is_delivered(cell, dt):
    for p_w in (450.0, -300.0):
        p_req = np.full(max(2, min(20, int(1800 / dt))), p_w)
        o = simulate_power(cell, p_req, dt, 25.0, 0.5, 25.0)
        assert np.all(o["flag"] == 0)
        np.testing.assert_allclose(o["v"] * o["i"], p_req, rtol=1e-9)
        assert np.sign(o["i"][0]) == np.sign(p_w)


def test_power_beyond_reach_is_flagged(cell):
    o = simulate_power(cell, np.full(5, 1e5), 1.0, 25.0, 0.5, 25.0)
    assert np.all(o["flag"] & 16) and np.all(o["v"] >= cell.v_min - 1e-9)
    assert np.all(o["i"] <= cell.i_max_discharge_a)


def test_many_cells_match_one_by_one(cell):
    rng = np.random.default_rng(3)
    p = rng.uniform(-400, 800, (3, 300))
    soc0 = np.array([0.2, 0.5, 0.9])
    many = simulate_power(cell, p, 5.0, 25.0, soc0, 25.0, r_scale=[1.0, 1.1, 0.9])
    for c in range(3):
        one = simulate_power(cell, p[c], 5.0, 25.0, soc0[c], 25.0, r_scale=[1.0, 1.1, 0.9][c])
        np.testing.assert_array_equal(many["v"][c], one["v"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    p=st.lists(st.floats(-3000.0, 3000.0), min_size=1, max_size=40),
    hold=st.integers(1, 30),
    dt=st.sampled_from([0.1, 1.0, 60.0, 900.0, 3600.0]),
    soc0=st.floats(0.0, 1.0),
    t0=st.floats(-20.0, 55.0),
    t_amb=st.floats(-20.0, 54.5),
)
def test_random_power_never_breaks_a_limit(cell, p, hold, dt, soc0, t0, t_amb):
    """Inside the envelope (ambient at most t_max - 0.5 K, cell at rest inside its limits), any power request
    leaves SOC, voltage, current and temperature inside their limits."""
    req = np.repeat(np.asarray(p), hold)
    o = simulate_power(cell, req, dt, t_amb, soc0, t0)
    tol = 1e-9
    assert np.all((o["soc"] >= -tol) & (o["soc"] <= 1 + tol))
    for key in ("v", "v_end"):
        assert np.all((o[key] >= cell.v_min - tol) & (o[key] <= cell.v_max + tol)), key
    assert np.all((o["i"] >= -cell.i_max_charge_a - tol) & (o["i"] <= cell.i_max_discharge_a + tol))
    assert np.all((o["t_degc"] >= cell.t_min_degc - tol) & (o["t_degc"] <= cell.t_max_degc + tol))
    assert not np.any(o["flag"] & 32)
    # where no limit acted, the request was met
    free = o["flag"] == 0
    np.testing.assert_allclose((o["v"] * o["i"])[free], req[free], rtol=1e-9, atol=1e-9)


# --------------------------------------------------------------------------------------------------------------
# parameter files


def test_seed_parameter_set_loads(cell):
    assert cell.capacity_ah == 280.0 and cell.v_min < cell.v_max
    assert load_cell(ECM) == cell


def test_load_cell_through_a_case():
    from twin.case import load_case

    case = load_case()
    assert load_cell(case, "lfp_280ah").capacity_ah == 280.0


@pytest.mark.parametrize(("old", "new", "key", "expected"), [
    ("3.230", "3.130", "ocv_v", "strictly increasing"),
    ("r0_ohm = [3.5e-4", "r0_ohm = [-3.5e-4", "r0_ohm", "> 0"),
    ("tau1_s = 10.0", "tau1_s = -1.0", "tau1_s", "> 0"),
    ("soc           = [0.0,", "soc           = [-0.1,", "soc", "within 0-1"),
    ("1.0]\nocv_v", "1.2]\nocv_v", "soc", "within 0-1"),
    ("v_min = 2.5", "v_min = 3.9", "v_min", "less than v_max"),
    ("r_th_k_per_w = 1.0", "r_th_k_per_w = -1.0", "r_th_k_per_w", "> 0"),
    ("capacity_ah = 280.0", "capacity_ahh = 280.0", "capacity_ahh", "did you mean 'capacity_ah'"),
])
def test_bad_parameter_files_are_rejected(tmp_path, old, new, key, expected):
    text = ECM.read_text()
    assert old in text
    bad = tmp_path / "bad_cell.toml"
    bad.write_text(text.replace(old, new, 1))
    with pytest.raises(CaseError) as exc:
        load_cell(bad)
    msg = str(exc.value)
    assert "\n" not in msg
    assert msg.startswith(f"{bad}: ") and f"'{key}'" in msg and expected in msg, msg


def test_missing_file_is_one_line(tmp_path):
    with pytest.raises(CaseError, match="file not found"):
        load_cell(tmp_path / "nope.toml")


def test_outputs_carry_units(cell):
    o = simulate_current(cell, np.full((2, 10), 50.0), 1.0, 25.0, [0.3, 0.6], 25.0)
    ds = to_dataset(o, 1.0)
    assert set(ds.data_vars) == set(UNITS) and ds.sizes == {"cell": 2, "step": 10}
    assert all(ds[k].attrs["units"] == UNITS[k][0] and ds[k].attrs["long_name"] for k in UNITS)
