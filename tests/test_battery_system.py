"""Battery system model (twin.battery.system): balances, bus coupling, granularity, limits, thermal network, HVAC."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twin.battery import ratings
from twin.battery.system import BatterySystem, Spread, system_spec
from twin.case import load_case


@pytest.fixture(scope="module")
def spec():
    return system_spec(load_case())


@pytest.fixture(scope="module")
def small(spec):
    """One container of 3 racks of 8 cells: every cell recorded, fast."""
    return dataclasses.replace(spec, n_containers=1, racks=3, cells_series=8, names=["B1"])


def _profile(n, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return scale * np.repeat(rng.uniform(-1.0, 1.0, n // 30 + 1), 30)[:n]


def test_seed_system_matches_ratings(spec):
    case = load_case()
    r = ratings(case)
    assert spec.n_cells == r.cells == 18304
    assert spec.thermal is not None and spec.n_containers == r.containers


@pytest.mark.parametrize("granularity", ["container", "rack", "cell"])
def test_energy_and_heat_balances(small, granularity):
    """Electrical: p_dc = p_chem - q_irr - p_rc each step (1e-9 relative); heat: what the cells and the HVAC
    and walls exchange equals the change of heat stored in cells, racks and air (backward Euler is exact)."""
    s = BatterySystem(small, granularity, soc0=0.5, t0_degc=30.0)
    p = _profile(3000, scale=8 * 3 * 3.2 * 200.0)
    ds = s.run(p, 1.0, 35.0)
    scale = float(np.abs(ds.p_dc_w).max())
    bal = ds.p_chem_w - ds.q_irr_w - ds.p_rc_w - ds.p_dc_w
    assert float(np.abs(bal).max()) <= 1e-9 * scale
    heat = ds.q_irr_w + ds.q_rev_w - ds.q_hvac_w - ds.q_wall_w - ds.p_heat_stored_w
    assert float(np.abs(heat).max()) <= 1e-9 * float(np.abs(ds.q_irr_w).max()) + 1e-6


def test_racks_share_the_bus(small):
    """Rack voltages agree, rack currents sum to the container current, the weaker rack carries less."""
    s = BatterySystem(small, "cell", soc0=0.68, spread=Spread(capacity=0.0, resistance=0.0, soc=0.0))
    s.state[0, 0, 5] *= 1.5  # rack 1: 50 % more resistance in every cell
    ds = s.run(np.full(400, 8 * 3 * 3.2 * 100.0), 1.0, 25.0, record="cell")
    i_r = ds.i_rack_a.isel(container=0).values
    np.testing.assert_allclose(i_r.sum(axis=0), ds.i_dc_a.isel(container=0).values, rtol=1e-12)
    v_r = ds.v_rack_v.isel(container=0).values
    assert np.ptp(v_r, axis=0).max() < 1e-6  # V: same bus (no OCV breakpoint crossed here)
    assert np.all(i_r[0] < i_r[1]) and np.allclose(i_r[1], i_r[2])
    # each cell current is its rack's current (1P racks)
    np.testing.assert_allclose(ds.cell_i.isel(container=0).values[:, 0, :], i_r, rtol=1e-12)


def test_power_request_is_met_when_no_limit_acts(small):
    s = BatterySystem(small, "rack", soc0=0.5)
    p = _profile(2000, seed=1, scale=8 * 3 * 3.2 * 100.0)
    ds = s.run(p, 1.0, 25.0)
    free = ds.flag.values[0] == 0
    assert free.mean() > 0.9
    np.testing.assert_allclose(ds.p_dc_w.values[0][free], p[free], rtol=1e-6)


@pytest.mark.parametrize("n_series", [8, 16])
def test_granularities_agree_without_spread(small, n_series):
    """Every cell with no spread == one cell per rack == one per container (same physics, lumped). With 16 cells in
    series the kernel's work rows are padded (to 24) beyond the cells: the padding is never read."""
    spec = dataclasses.replace(small, cells_series=n_series)
    p = _profile(1500, seed=2, scale=n_series * 3 * 3.2 * 150.0)
    out = {}
    for g in ("container", "rack", "cell"):
        s = BatterySystem(spec, g, soc0=0.4, spread=Spread(0.0, 0.0, 0.0))
        out[g] = s.run(p, 2.0, 25.0, record="container")
    for g in ("rack", "cell"):
        np.testing.assert_allclose(out[g].v_dc_v, out["container"].v_dc_v, rtol=1e-9)
        np.testing.assert_allclose(out[g].p_dc_w, out["container"].p_dc_w, rtol=1e-9, atol=1e-6)


def test_weakest_cell_limits_the_string(small):
    """With spread, the container stops discharging when its lowest cell reaches the cut-off; the others still
    hold charge (the imbalance costs capacity)."""
    s = BatterySystem(small, "cell", soc0=0.3, spread=Spread(capacity=0.03, resistance=0.05, soc=0.02, seed=4))
    ds = s.run(np.full(4000, 8 * 3 * 3.2 * 140.0), 1.0, 25.0, record="rack")
    assert np.any(ds.flag.values != 0)
    v_min = float(ds.v_cell_min_v.min())
    assert v_min >= small.bms.v_min - 1e-6
    assert float(s.z.max()) > float(s.z.min()) + 0.005


@pytest.mark.parametrize("dt", [1.0, 0.1])
def test_step_size_does_not_matter(small, dt):
    """dt = 1 s and 0.1 s agree within 1 mV and 0.01 K on a 1 s step profile (exact updates)."""
    p1 = _profile(600, seed=3, scale=8 * 3 * 3.2 * 120.0)
    ref = BatterySystem(small, "rack", soc0=0.5).run(p1, 1.0, 30.0)
    n = int(round(1.0 / dt))
    s = BatterySystem(small, "rack", soc0=0.5)
    ds = s.run(np.repeat(p1, n), dt, 30.0)
    v = ds.v_dc_v.values[0].reshape(-1, n).mean(axis=1)
    t = ds.t_cell_max_degc.values[0, 0].reshape(-1, n)[:, -1]
    np.testing.assert_allclose(v, ref.v_dc_v.values[0], atol=1e-3 * 8)  # 1 mV per cell, 8 cells in series
    np.testing.assert_allclose(t, ref.t_cell_max_degc.values[0, 0], atol=0.01)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    p=st.lists(st.floats(-20000.0, 20000.0), min_size=1, max_size=20),
    hold=st.integers(1, 30),
    dt=st.sampled_from([0.1, 1.0, 60.0, 900.0]),
    soc0=st.floats(0.02, 0.98),
    t_amb=st.floats(-10.0, 45.0),
)
def test_random_requests_never_break_a_limit(small, p, hold, dt, soc0, t_amb):
    """Inside the envelope (every cell strictly inside its SOC window: at SOC 0 in every rack, the racks'
    circulating currents alone can break a limit, which only opening a rack contactor prevents), any power
    request leaves SOC, voltage, current and temperature inside their limits."""
    s = BatterySystem(small, "cell", soc0=soc0, t0_degc=25.0, spread=Spread(seed=7))
    req = np.repeat(np.asarray(p), hold)
    ds = s.run(req, dt, t_amb, record="cell")
    tol = 1e-6
    b, c = small.bms, small.cell
    assert float(ds.cell_soc.min()) >= -tol and float(ds.cell_soc.max()) <= 1 + tol
    for key in ("cell_v", "cell_v_end"):
        assert float(ds[key].min()) >= max(b.v_min, c.v_min) - tol, key
        assert float(ds[key].max()) <= min(b.v_max, c.v_max) + tol, key
    assert float(ds.cell_i.max()) <= b.i_discharge_max_a + tol
    assert float(ds.cell_i.min()) >= -b.i_charge_max_a - tol
    assert float(ds.cell_t_degc.max()) <= c.t_max_degc + tol
    assert not np.any(ds.flag.values & 32)


def test_available_power_is_what_can_be_delivered(small):
    """A request at the reported available discharge power is met (within 0.1 %) at the next step's state."""
    s = BatterySystem(small, "rack", soc0=0.5)
    ds = s.run(np.zeros(1), 1.0, 25.0)
    p_av = float(ds.p_avail_discharge_w[0, 0])
    ds2 = s.run(np.full(1, p_av), 1.0, 25.0)
    assert float(ds2.p_dc_w[0, 0]) == pytest.approx(p_av, rel=1e-3)
    ds3 = s.run(np.full(1, 2 * p_av), 1.0, 25.0)
    assert float(ds3.p_dc_w[0, 0]) <= p_av * 1.001 and ds3.flag.values[0, 0] != 0


def test_hvac_cools_in_summer_and_heats_in_winter(spec):
    one = dataclasses.replace(spec, n_containers=1, names=["B1"])
    hot = BatterySystem(one, "rack", soc0=0.5, t0_degc=25.0).run(np.full(720, 1e6), 10.0, 38.0)
    cold = BatterySystem(one, "rack", soc0=0.5, t0_degc=15.0).run(np.zeros(720), 10.0, -5.0)
    th = one.thermal
    assert float(hot.q_hvac_w[0, -1]) > 0 and float(hot.t_air_degc.max()) <= th.t_set_cool_degc + 1e-9
    assert float(cold.q_hvac_w[0, -1]) < 0 and float(cold.t_air_degc.min()) >= th.t_set_heat_degc - 1e-9
    # the electrical draw is the heat moved over the COP plus the fixed load
    cop = max(th.cop_min, th.cop_cooling_at_35c - th.cop_slope_per_k * (38.0 - 35.0))
    np.testing.assert_allclose(hot.p_aux_w, th.p_fixed_kw * 1e3 + hot.q_hvac_w / cop, rtol=1e-12)


def test_request_beyond_the_cells_is_limited_and_flagged(spec):
    """12 MW DC asked of the 4 containers: the cells' 0.5 C continuous current (BMS) caps each at about 2 MW DC
    (11 racks x 140 A x about 1.3 kV), flagged as a current limit; the PCS (1 MW AC each) is a further limit."""
    s = BatterySystem(spec, "container", soc0=0.9)
    ds = s.run(np.full(60, 3.0e6), 1.0, 25.0)
    assert np.all(ds.flag.values & 1)
    p = ds.p_dc_w.values
    assert np.all(p < 2.2e6) and np.all(p > 1.8e6)
    np.testing.assert_allclose(ds.i_dc_a.values, 11 * 140.0, rtol=1e-9)


def test_bad_input_is_rejected(small):
    s = BatterySystem(small, "rack")
    with pytest.raises(ValueError, match="granularity"):
        BatterySystem(small, "module")
    with pytest.raises(ValueError, match="soc0"):
        BatterySystem(small, "rack", soc0=1.5)
    with pytest.raises(ValueError, match="dt_s"):
        s.run(np.zeros(3), 0.0, 25.0)
    with pytest.raises(ValueError, match="request"):
        s.run(np.zeros((2, 3)), 1.0, 25.0)
    with pytest.raises(ValueError, match="t_amb_degc"):
        s.run(np.zeros(3), 1.0, np.zeros(4))
    with pytest.raises(ValueError, match="non-finite"):
        s.run(np.array([0.0, np.nan]), 1.0, 25.0)
    with pytest.raises(ValueError, match="cap_scale"):
        s.set_ageing(0.0, 1.0)
    with pytest.raises(ValueError, match="r_scale"):
        s.set_ageing(0.9, np.nan)


def test_outputs_carry_units(small):
    ds = BatterySystem(small, "cell").run(np.zeros(5), 1.0, 25.0, record="cell")
    for name, var in ds.data_vars.items():
        assert "units" in var.attrs and "long_name" in var.attrs, name


def test_generated_tables_match_the_parameter_set(spec):
    """The kernel's compiled-in tables (each SOC table as a + b z on the pieces of the union grid) equal the
    parameter set's piecewise-linear tables (numpy.interp), and the path mean is the exact integral (trapezoids
    between breakpoints) over the SOC change."""
    from twin.battery import _syskernel as K
    from twin.battery._codegen import kernel_for

    k = kernel_for(spec.cell, spec.bms)
    assert kernel_for(spec.cell, spec.bms) is k
    c, b = spec.cell, spec.bms
    soc, ocv, dudt = np.asarray(c.soc), np.asarray(c.ocv_v), np.asarray(c.dudt_mv_per_k) * 1e-3

    def tab(z, col):
        q = k._find_piece.py_func(z)
        assert k._PLO[q] <= z < k._PHI[q]
        return k._PCF[q, col] + k._PCF[q, col + 1] * z

    for z in np.linspace(-0.05, 1.05, 221):
        assert tab(z, K.CF_OA) == pytest.approx(np.interp(z, soc, ocv), abs=1e-12)
        assert tab(z, K.CF_DA) == pytest.approx(np.interp(z, soc, dudt), abs=1e-15)
        assert tab(z, K.CF_R0A) == pytest.approx(np.interp(z, c.r_soc, c.r0_ohm), rel=1e-12)
        assert tab(z, K.CF_T2A) == pytest.approx(c.tau2_s, rel=1e-12)
        assert tab(z, K.CF_BDA) == pytest.approx(np.interp(z, b.soc.soc, b.soc.discharge), abs=1e-12)
    for z0, z1 in [(0.5, 0.4), (0.93, 0.07), (0.02, 0.021), (1.0, 0.0), (1.02, 0.98)]:
        pts = np.concatenate([[min(z0, z1)], soc[(soc > min(z0, z1)) & (soc < max(z0, z1))], [max(z0, z1)]])
        exact = np.sum(0.5 * np.diff(pts) * (np.interp(pts[1:], soc, ocv) + np.interp(pts[:-1], soc, ocv)))
        assert k._path_mean.py_func(z0, z1, K.CF_OA, K.CF_OB) == pytest.approx(exact / abs(z0 - z1), rel=1e-12)
    # BMS derating over the cell temperature, zero outside the charge and discharge windows
    for t in np.linspace(-30.0, 65.0, 191):
        lo = int(np.searchsorted(k._TG, t + 273.15, side="right"))  # the piece the kernel caches (_t_repiece)
        assert k._TLO[lo] <= t + 273.15 < k._THI[lo]
        fc = k._TCF[lo, 0] + k._TCF[lo, 1] * (t + 273.15)
        fd = k._TCF[lo, 2] + k._TCF[lo, 3] * (t + 273.15)
        wc = b.t_charge_min_degc <= t < b.t_charge_max_degc
        wd = b.t_discharge_min_degc <= t < b.t_discharge_max_degc
        assert fc == pytest.approx(np.interp(t, b.temperature.t_degc, b.temperature.charge) if wc else 0.0, abs=1e-12)
        assert fd == pytest.approx(np.interp(t, b.temperature.t_degc, b.temperature.discharge) if wd else 0.0,
                                   abs=1e-12)
    # the kernel's exponentials: evaluated afresh (Arrhenius, RC factors) and updated by a small change of exponent
    for y in (-40.0, -3.1, -0.1, -1e-4, 0.0, 2e-6, 0.7, 2.15):
        assert K._expm1.py_func(y) == pytest.approx(np.expm1(y), rel=3e-14, abs=1e-300)
    for d in (-K._DINC, -3e-5, 1e-9, K._DINC):
        assert K._em1.py_func(d) == pytest.approx(np.expm1(d), rel=1e-15)


def test_one_cell_system_matches_the_cell_model(spec):
    """A system of one cell without thermal network is the cell model of twin.battery.cell: the two kernels (the
    system's vectorised one, the cell's reference one with bisection limits) agree where no limit acts."""
    from twin.battery.cell import simulate_power

    one = dataclasses.replace(spec, n_containers=1, racks=1, cells_series=1, cells_parallel=1, thermal=None,
                              names=["c"])
    p = _profile(3000, seed=5, scale=300.0)
    ds = BatterySystem(one, "cell", soc0=0.5, t0_degc=25.0, spread=Spread(0.0, 0.0, 0.0)).run(p, 1.0, 30.0,
                                                                                                record="cell")
    ref = simulate_power(spec.cell, p, 1.0, 30.0, 0.5, 25.0)
    assert np.all(ref["flag"] == 0) and np.all(ds.flag.values == 0)
    # the system solves the power on its affine step model (the OCV slope's temperature term left out), the cell
    # model by Newton on the exact step: the delivered powers differ by about 1e-9 relative, the voltages by 0.01 uV
    np.testing.assert_allclose(ds.cell_v.values.ravel(), ref["v"], atol=1e-7)
    np.testing.assert_allclose(ds.cell_soc.values.ravel(), ref["soc"], rtol=1e-8)
    np.testing.assert_allclose(ds.cell_t_degc.values.ravel(), ref["t_degc"], atol=1e-6)


@pytest.mark.parametrize("granularity", ["container", "rack"])
def test_a_resting_container_is_computed(spec, granularity):
    """At zero request the rack currents are zero to rounding (1e-12 A): the step means must not divide rounding
    by a vanishing SOC change (the bus voltage is the open-circuit voltage, no flag)."""
    s = BatterySystem(spec, granularity, soc0=0.81)
    s.run(np.full(50, 3e5), 10.0, 30.0)
    ds = s.run(np.zeros((4, 20)), 10.0, 30.0)
    assert np.all(ds.flag.values == 0)
    assert float(ds.v_dc_v.min()) > 416 * 3.2


def test_numpy_output_and_snapshot_for_closed_loop_control(small):
    """run(as_dataset=False) returns the same numbers as the Dataset; snapshot/restore replays a step exactly."""
    from twin.battery.system import UNITS

    s = BatterySystem(small, "rack", soc0=0.5)
    snap = s.snapshot()
    ds = s.run(np.full(20, 5000.0), 1.0, 25.0)
    s.restore(snap)
    out = s.run(np.full(20, 5000.0), 1.0, 25.0, as_dataset=False)
    assert set(out) - {"time_s"} <= set(UNITS)
    for k in ("p_dc_w", "v_dc_v", "soc_mean", "t_cell_max_degc", "flag"):
        np.testing.assert_array_equal(out[k], ds[k].values)
    with pytest.raises(ValueError, match="restore"):
        BatterySystem(small, "cell").restore(snap)


def test_ageing_feeds_back_into_the_system(small):
    """Daily chunks of a cycling rack-level system, ageing each rack from its own SOC and temperature history
    (twin.battery.ageing.AgeingState, degradation accelerated x50): capacity falls, the energy a full discharge
    delivers falls with it, resistance rises."""
    from twin.battery.ageing import AgeingState

    s = BatterySystem(small, "rack", soc0=0.5)
    n_el = int(np.prod(s.shape))
    age = AgeingState(n_el, degradation_scalar=50.0)
    p = 8 * 3.2 * 70.0 * 3  # W: about 0.25 C for the container (3 racks x 8 cells)
    day = np.r_[np.full(216, -p), np.full(216, p)]  # 6 h charge (to the BMS limit), 6 h discharge, 100 s steps
    energies, caps = [], []
    for _ in range(4):
        t0, soc0 = s.time_s, s.z.reshape(n_el).copy()
        out = s.run(day, 100.0, 25.0, as_dataset=False)
        energies.append(float(out["p_dc_w"][:, 216:].sum()) * 100.0)
        t = t0 + np.arange(day.size + 1) * 100.0
        soc = np.concatenate([soc0[:, None], out["soc_mean"].reshape(n_el, -1)], axis=1)
        cap, r = age.update(t, soc, 25.0)
        s.set_ageing(cap.reshape(s.shape), r.reshape(s.shape))
        caps.append(float(cap.mean()))
    assert caps[-1] < caps[0] < 1.0 and np.all(np.diff(caps) < 0)
    assert float(s.rsc.mean()) > 1.0
    # each day from full to empty: the delivered energy falls about as the capacity does
    assert energies[-1] < energies[0]
    # (day 4 ran with the capacity left after day 3; day 1 with the fresh one)
    assert energies[-1] / energies[0] == pytest.approx(caps[-2], abs=0.01)


def test_bad_thermal_parameter_set_names_file_and_key(tmp_path):
    """A user's container thermal set beside their case, with the heating set point above the cooling one: one
    line naming the file and what is wrong, before anything runs."""
    import shutil

    from twin import paths
    from twin.case import CaseError

    case = load_case()
    d = tmp_path / "models" / "battery" / "thermal"
    d.mkdir(parents=True)
    text = (paths.models_dir() / "battery" / "thermal" / "energy_pod_air.toml").read_text()
    (d / "energy_pod_air.toml").write_text(text.replace("t_set_heat_degc = 15.0", "t_set_heat_degc = 30.0"))
    shutil.copy(case.path, tmp_path / case.path.name)
    with pytest.raises(CaseError, match=r"energy_pod_air\.toml.*t_set_heat_degc") as err:
        system_spec(load_case(tmp_path / case.path.name))
    assert "\n" not in str(err.value)
