"""Compiled single-cell kernel (twin.battery.fastcell): the same outputs as the reference kernel of
twin.battery.cell to 1e-9 (V, A, K, W) with equal flags, energy balances, input errors; the optimistic blocks of the
constant-parameter kernel bit for bit the same as its step-by-step loop."""

from __future__ import annotations

import numpy as np
import pytest
from test_battery_cell import _integral  # the exact table integral the energy balances use

from twin.battery.cell import UNITS, simulate_current, simulate_power
from twin.battery.fastcell import _MODE_CURRENT_EXACT, CompiledCell
from twin.battery.params import load_cell, pack

TOL = 1e-9


@pytest.fixture(scope="module")
def cell():
    return load_cell("lfp_280ah")


@pytest.fixture(scope="module")
def fast(cell):
    return CompiledCell(cell)


@pytest.fixture(scope="module")
def iso(cell):
    """Constant parameters as the PyBaMM comparison's cell (benchmarks/bench_battery.py), with the seed cell's heat
    capacity: every folded branch of the kernel, and the bound that skips the exact upper temperature test."""
    return cell.model_copy(update={"dudt_mv_per_k": [0.0] * len(cell.soc), "hysteresis_v": 0.0,
                                   "ea_r0_j_per_mol": 0.0, "ea_r1_j_per_mol": 0.0, "ea_r2_j_per_mol": 0.0,
                                   "r0_ohm": 2.5e-4, "r1_ohm": 0.9e-4, "r2_ohm": 1.2e-4, "r_soc": None})


def _profile(nt, dt, seed=0, lo=-400.0, hi=450.0):
    """Held random requests (beyond the current limits at times), a few steps each, with rests."""
    rng = np.random.default_rng(seed)
    hold = max(1, int(round(60.0 / dt)))
    req = np.repeat(rng.uniform(lo, hi, nt // hold + 1), hold)[:nt]
    req[rng.random(nt) < 0.05] = 0.0
    return req


def _same(a, b, what=""):
    assert set(a) == set(b) == set(UNITS)
    for k in UNITS:
        assert a[k].shape == b[k].shape, (what, k)
        if k == "flag":
            np.testing.assert_array_equal(a[k], b[k], err_msg=f"{what} {k}")
        else:
            np.testing.assert_allclose(a[k], b[k], rtol=0, atol=TOL, err_msg=f"{what} {k}")


# --------------------------------------------------------------------------------------------------------------
# agreement with the reference kernel


@pytest.mark.parametrize("dt", [0.1, 1.0, 60.0])
def test_current_mode_matches_reference(cell, fast, dt):
    """Several cells (capacity and resistance spread, one weak cell that meets the voltage and temperature
    limits), ambient varying per cell and step, SOC from near empty to near full: every output within 1e-9, flags
    equal, and every limit acts somewhere."""
    nt = {0.1: 6000, 1.0: 6000, 60.0: 1500}[dt]
    n = 5
    req = np.stack([_profile(nt, dt, seed=s) for s in range(n)])
    t = np.arange(nt) * dt
    t_amb = np.stack([5.0 + 20.0 * np.sin(t / 3000.0 + c) for c in range(n)])
    t_amb[4] = 50.0 + 2.0 * np.sin(t / 300.0)  # a hot, resistive cell: the temperature limit
    soc0 = [0.05, 0.5, 0.95, 0.3, 0.5]
    t0 = [0.0, 25.0, 30.0, -10.0, 53.0]
    kw = {"cap_scale": [1.0, 0.9, 1.1, 0.05, 1.0], "r_scale": [1.0, 1.2, 0.8, 6.0, 8.0],
          "v_rc1_0": [0.0, 0.01, -0.01, 0.0, 0.0]}
    a = fast.simulate_current(req, dt, t_amb, soc0, t0, **kw)
    b = simulate_current(cell, req, dt, t_amb, soc0, t0, **kw)
    _same(a, b, f"dt={dt}")
    bits = np.bitwise_or.reduce(b["flag"].ravel())
    assert bits & 1 and bits & 2 and bits & 4 and bits & 8, bits  # current, SOC, voltage, temperature limits


def test_one_cell_day_profile_matches_reference(cell, fast, iso):
    """One cell, 1-D input, a smooth profile crossing OCV table points (the benchmark's kind), full and constant
    parameter sets."""
    n = 20000
    t = np.arange(n)
    req = 120.0 * np.sin(2 * np.pi * t / 7200.0) + 30.0 * np.sin(2 * np.pi * t / 1300.0 + 1.0) + 20.0
    t_amb = 25.0 + 5.0 * np.sin(t / 5000.0)
    for p, cc in ((cell, fast), (iso, CompiledCell(iso))):
        a = cc.simulate_current(req, 1.0, t_amb, 0.5, 25.0)
        b = simulate_current(p, req, 1.0, t_amb, 0.5, 25.0)
        _same(a, b, p.description)
        assert a["soc"].ndim == 1 and a["soc"].min() < 0.2  # several OCV pieces crossed
    assert (p is iso) and np.all(b["q_rev_w"] == 0.0)


def test_constant_parameter_cell_at_its_limits_matches_reference(iso):
    """The constant-parameter kernel (no Arrhenius: the upper temperature test is skipped below a bound) on hot,
    resistive, small cells: current, SOC, voltage and temperature limits, current and power mode."""
    fast = CompiledCell(iso)
    nt = 1500
    req = np.stack([_profile(nt, 20.0, seed=20 + s, lo=-300.0, hi=400.0) for s in range(3)])
    t_amb = np.stack([50.0 + 3.0 * np.sin(np.arange(nt) / 50.0 + c) for c in range(3)])
    kw = {"cap_scale": [1.0, 0.2, 0.05], "r_scale": [8.0, 10.0, 30.0], "v_rc2_0": [0.0, 0.02, -0.02]}
    for sim, ref, scale in ((fast.simulate_current, simulate_current, 1.0), (fast.simulate_power, simulate_power, 3.0)):
        a = sim(scale * req, 20.0, t_amb, [0.5, 0.9, 0.1], 45.0, **kw)
        b = ref(iso, scale * req, 20.0, t_amb, [0.5, 0.9, 0.1], 45.0, **kw)
        _same(a, b, ref.__name__)
        bits = np.bitwise_or.reduce(b["flag"].ravel())
        assert bits & 2 and bits & 4 and bits & 8, bits


@pytest.mark.parametrize("dt", [1.0, 60.0])
def test_power_mode_matches_reference(cell, fast, dt):
    nt = 3000 if dt == 1.0 else 800
    n = 3
    req = np.stack([_profile(nt, dt, seed=10 + s, lo=-1500.0, hi=2000.0) for s in range(n)])
    req[0, 100:110] = 1e5  # beyond the maximum power
    t_amb = 25.0 + 10.0 * np.sin(np.arange(nt) * dt / 2000.0)
    kw = {"cap_scale": [1.0, 0.95, 0.3], "r_scale": [1.0, 1.1, 5.0]}
    a = fast.simulate_power(req, dt, t_amb, [0.5, 0.1, 0.9], 20.0, **kw)
    b = simulate_power(cell, req, dt, t_amb, [0.5, 0.1, 0.9], 20.0, **kw)
    _same(a, b, f"power dt={dt}")
    bits = np.bitwise_or.reduce(b["flag"].ravel())
    assert bits & 2 and bits & 16, bits


def test_cells_run_alone_or_together_alike(fast):
    req = np.stack([_profile(500, 1.0, seed=s) for s in range(3)])
    many = fast.simulate_current(req, 1.0, 25.0, [0.2, 0.5, 0.8], 25.0, r_scale=[1.0, 1.1, 0.9])
    for c in range(3):
        one = fast.simulate_current(req[c], 1.0, 25.0, [0.2, 0.5, 0.8][c], 25.0, r_scale=[1.0, 1.1, 0.9][c])
        np.testing.assert_array_equal(many["v"][c], one["v"])
        np.testing.assert_array_equal(many["flag"][c], one["flag"])


# --------------------------------------------------------------------------------------------------------------
# the optimistic blocks of current mode (constant step parameters): bit for bit the step-by-step loop

NB = 512  # steps per block (twin.battery.fastcell._NB)


@pytest.fixture(scope="module")
def fast_iso(iso):
    cc = CompiledCell(iso)
    assert cc._mod._FAST and int(cc._mod._NB) == NB  # the blocks apply to this parameter set
    return cc


def _step_by_step(cc, req, dt, t_amb, soc0, t0, v1=0.0, v2=0.0, cap=1.0, rs=1.0):
    """The same run with the kernel's step-by-step loop (the optimistic blocks off)."""
    return cc._run(_MODE_CURRENT_EXACT, req, dt, t_amb, soc0, t0, v1, v2, cap, rs)


def _identical(a, b, what=""):
    assert set(a) == set(b) == set(UNITS)
    for k in UNITS:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, (what, k)
        np.testing.assert_array_equal(a[k], b[k], err_msg=f"{what} {k}")


def test_full_cell_runs_step_by_step(fast):
    assert not fast._mod._FAST  # Arrhenius, entropic heat, hysteresis, SOC-dependent resistances


_NT = 4000
_T = np.arange(_NT)


@pytest.mark.parametrize("case, bits", [
    # requests beyond the current limits (+280 A, -140 A)
    ({"req": _profile(_NT, 1.0, seed=30, lo=-600.0, hi=700.0)}, 1),
    # a small cell run to empty, held there, charged to full, held there: the SOC limits act mid-block
    ({"req": np.concatenate([np.full(900, 250.0), np.full(400, 30.0), np.full(1500, -130.0), np.full(1200, -60.0)]),
      "soc0": 0.3, "cap": 0.02, "full": True}, 2),
    # a resistive cell: the voltage limits act (bisection) at random steps
    ({"req": _profile(_NT, 1.0, seed=31, lo=-300.0, hi=300.0), "rs": 25.0, "soc0": 0.4}, 4),
    # hot and resistive: the temperature limit, ambient per step
    ({"req": _profile(_NT, 1.0, seed=32, lo=-280.0, hi=280.0), "rs": 6.0, "t0": 50.0,
      "t_amb": 50.0 + 3.0 * np.sin(_T / 200.0)}, 8),
    # a smooth profile across OCV table points, ambient per step, RC voltages at the start
    ({"req": 250.0 * np.sin(2 * np.pi * _T / 3000.0) + 20.0, "soc0": 0.52, "v1": 0.01, "v2": -0.02,
      "t_amb": 25.0 + 5.0 * np.sin(_T / 700.0)}, 0),
    # 60 s steps: several OCV pieces a block
    ({"req": _profile(_NT, 60.0, seed=33, lo=-150.0, hi=290.0), "dt": 60.0, "soc0": 0.9}, 2),
])
def test_blocks_match_step_by_step_and_reference(iso, fast_iso, case, bits):
    c = {"dt": 1.0, "t_amb": 25.0, "soc0": 0.5, "t0": 25.0, "v1": 0.0, "v2": 0.0, "cap": 1.0, "rs": 1.0,
         "full": False} | case
    args = (c["req"], c["dt"], c["t_amb"], c["soc0"], c["t0"])
    kw = {"v_rc1_0": c["v1"], "v_rc2_0": c["v2"], "cap_scale": c["cap"], "r_scale": c["rs"]}
    a = fast_iso.simulate_current(*args, **kw)
    _identical(a, _step_by_step(fast_iso, *args, c["v1"], c["v2"], c["cap"], c["rs"]))
    _same(a, simulate_current(iso, *args, **kw))
    got = np.bitwise_or.reduce(a["flag"])
    assert got & bits == bits, got
    if bits & 2:  # at empty (and at full)
        assert a["soc"].min() < 1e-6 and (a["soc"].max() > 1.0 - 1e-6 or not c["full"])


@pytest.mark.parametrize("nt", [1, 2, 3, NB - 1, NB, NB + 1, 2 * NB + 7, 5 * NB])
def test_blocks_match_step_by_step_at_block_boundaries(fast_iso, nt):
    """nt below, at and above multiples of the block; limits acting near the ends of blocks."""
    req = _profile(nt, 1.0, seed=nt, lo=-300.0, hi=400.0)
    req[NB - 3:NB + 2] = 5000.0  # the current limit about a block's end
    t = np.arange(nt)
    for soc0, rs, t_amb in ((0.5, 1.0, 25.0), (0.01, 15.0, 25.0 + np.sin(t / 50.0)), (0.999, 15.0, 40.0)):
        a = fast_iso.simulate_current(req, 1.0, t_amb, soc0, 25.0, r_scale=rs)
        _identical(a, _step_by_step(fast_iso, req, 1.0, t_amb, soc0, 25.0, rs=rs), f"nt={nt} soc0={soc0}")
        if nt > NB + 1:
            assert np.all(a["flag"][NB - 3:NB + 2] & 1)
            assert soc0 == 0.5 or np.bitwise_or.reduce(a["flag"]) & 6  # the SOC or voltage limits act


def test_blocks_match_step_by_step_with_several_cells(fast_iso):
    """Several cells on numba's threads (run_parallel), per-cell profiles and ambient, limits acting in some."""
    nt = 3 * NB + 100
    n = 4
    req = np.stack([_profile(nt, 1.0, seed=40 + c, lo=-320.0, hi=320.0) for c in range(n)])
    t_amb = np.stack([25.0 + 20.0 * np.sin(np.arange(nt) / 400.0 + c) for c in range(n)])
    soc0 = [0.05, 0.5, 0.95, 0.5]
    kw = {"v_rc1_0": [0.0, 0.01, 0.0, -0.01], "v_rc2_0": [0.0, 0.0, 0.02, 0.0], "cap_scale": [0.05, 1.0, 0.05, 0.3],
          "r_scale": [1.0, 1.0, 20.0, 8.0]}
    a = fast_iso.simulate_current(req, 1.0, t_amb, soc0, 30.0, **kw)
    b = fast_iso._run(_MODE_CURRENT_EXACT, req, 1.0, t_amb, soc0, 30.0, *kw.values())
    _identical(a, b, "several cells")
    bits = np.bitwise_or.reduce(a["flag"].ravel())
    assert bits & 1 and bits & 2 and bits & 4, bits
    for c in range(n):  # alone: the same numbers
        one = fast_iso.simulate_current(req[c], 1.0, t_amb[c], soc0[c], 30.0, **{k: v[c] for k, v in kw.items()})
        _identical(one, {k: v[c] for k, v in a.items()}, f"cell {c}")


# --------------------------------------------------------------------------------------------------------------
# energy balance (as tests/test_battery_cell.py)


def test_energy_balances_hold_exactly(cell, fast):
    """Gibbs, enthalpy and thermal balances per step to 1e-9 relative, with limits acting."""
    rng = np.random.default_rng(1)
    dt = 10.0
    nt = 1500
    i_req = np.repeat(rng.uniform(-140, 280, nt // 10), 10)
    t_amb = 25.0 + 10.0 * np.sin(np.arange(nt) / 200.0)
    o = fast.simulate_current(i_req, dt, t_amb, soc0=0.95, t0_degc=20.0)
    assert np.any(o["flag"] != 0)
    pk = pack(cell)
    cq = cell.capacity_ah * 3600.0
    z0 = np.concatenate([[0.95], o["soc"][:-1]])
    z1 = o["soc"]
    t0 = np.concatenate([[20.0], o["t_degc"][:-1]]) + 273.15
    g_du = _integral(pk.soc, pk.dudt, z1, z0)
    d_gibbs = cq * (_integral(pk.soc, pk.ocv, z1, z0) + (t0 - pk.scal[1]) * g_du)
    d_enth = d_gibbs - cq * t0 * g_du
    e_out = o["v"] * o["i"] * dt
    q_irr, q_rev, p_rc = o["q_irr_w"] * dt, o["q_rev_w"] * dt, o["p_rc_w"] * dt
    assert np.max(np.abs(e_out - (d_gibbs - q_irr - p_rc))) <= 1e-9 * np.max(np.abs(e_out))
    assert np.max(np.abs(d_enth - (e_out + q_irr + q_rev + p_rc))) <= 1e-9 * np.max(np.abs(e_out))
    lhs = cell.heat_capacity_j_per_k * (o["t_degc"] + 273.15 - t0)
    rhs = (o["q_irr_w"] + o["q_rev_w"] - o["q_amb_w"]) * dt
    assert np.max(np.abs(lhs - rhs)) <= 1e-9 * np.max(np.abs(q_irr))
    assert o["i"].max() > 100 and o["i"].min() < -100


# --------------------------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize("kwargs", [
    {"current_a": np.zeros((3, 10)), "soc0": [0.5, 0.5]},
    {"soc0": 1.5},
    {"soc0": [0.5, -0.1]},
    {"dt_s": 0.0},
    {"dt_s": -1.0},
    {"t_amb_degc": np.zeros(7)},
    {"t_amb_degc": np.zeros((3, 10)), "soc0": [0.5, 0.5]},
])
def test_bad_input_is_rejected_as_the_reference(cell, fast, kwargs):
    args = {"current_a": np.zeros(10), "dt_s": 1.0, "t_amb_degc": 25.0, "soc0": 0.5, "t0_degc": 25.0} | kwargs
    with pytest.raises(ValueError) as ref:
        simulate_current(cell, **args)
    with pytest.raises(ValueError, match=None) as got:
        fast.simulate_current(**args)
    assert str(got.value) == str(ref.value)
    args["power_w"] = args.pop("current_a")
    with pytest.raises(ValueError) as got:
        fast.simulate_power(**args)
    assert str(got.value) == str(ref.value)
