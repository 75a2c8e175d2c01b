"""The RMS simulator (twin.transient.sim): initial state, analytic cases, step convergence, energy, PSU hold-up."""

import numpy as np
import pytest

from twin import pcs as pcsmod
from twin.case import load_case
from twin.network import build_net
from twin.transient import _kernel as K
from twin.transient.network import reduce_network
from twin.transient.psu import fit_holdup, holdup_s
from twin.transient.sim import Event, build_plant, simulate


@pytest.fixture(scope="module")
def case():
    return load_case(None)


@pytest.fixture(scope="module")
def net(case):
    return build_net(case)


@pytest.fixture(scope="module")
def plant(case, net):
    return build_plant(case, net, "training_peak")


@pytest.fixture(scope="module")
def light(case, net, plant):
    """The design point at 30 % load: an island the four PCS can carry."""
    return build_plant(case, net, "training_peak", load_scale=0.3, like=plant)


def lom(plant, t=0.1):
    return [Event(t, "source", s, 0.0) for s in plant.src["names"]]


def test_reduced_network_reproduces_the_load_flow(plant):
    """Kron reduction is exact: the kept buses' injections and the eliminated buses' voltages match the load flow."""
    n = plant.net
    v = (n.res_bus.vm_pu * np.exp(1j * np.radians(n.res_bus.va_degree))).to_numpy()
    red = reduce_network(n, plant.red.kept)
    assert np.abs(red.recover[0] @ v[plant.red.kept] - v).max() < 1e-12


def test_initial_state_equals_the_load_flow(plant):
    """With no event the simulation stays at the load-flow operating point (DESIGN.md: agreement 1e-6 pu)."""
    ds = simulate(plant, [], t_end_s=0.2, battery_dc=False)
    vm_lf = plant.net.res_bus.vm_pu.to_numpy()
    va_lf = plant.net.res_bus.va_degree.to_numpy()
    assert np.abs(ds.vm_pu.to_numpy() - vm_lf).max() < 1e-6
    assert np.abs(ds.va_degree.to_numpy() - va_lf).max() < 1e-4
    assert np.allclose(ds.grid_p_mw.to_numpy(), plant.net.res_ext_grid.p_mw.to_numpy(), atol=1e-6)
    assert ds.attrs["n_nonconverged"] == 0
    assert (ds.inverter_mode == 0).all()


def test_pll_step_response_is_the_analytic_second_order(plant):
    """A 5 degree step of the grid's phase: the PLL frequency follows the second-order closed loop
    theta/theta_v = (Kp s + Ki) / (s^2 + Kp s + Ki), Kp = 2 zeta wn, Ki = wn^2 (within 3 % of its peak)."""
    d = plant.dyn.pcs
    dt = 1e-4
    step = 5.0
    ds = simulate(plant, [Event(0.01, "source_phase", s, step) for s in plant.src["names"]], t_end_s=0.1,
                  step_ms=dt * 1e3, battery_dc=False)
    wn, z = 2 * np.pi * d.pll_bandwidth_hz, d.pll_damping
    # the phase step the PCS terminal sees (the stiff grid carries it through the network almost unchanged)
    bus = plant.net.bus.loc[plant.net.sgen.bus.iloc[0], "name"]
    va = ds.va_degree.sel(bus=bus).to_numpy()
    delta = np.radians(va[-1] - va[0])
    t = ds.time.to_numpy() - 0.01
    wd = wn * np.sqrt(1 - z * z)
    tt = np.clip(t, 0, None)
    # theta(t) = delta (1 - e(t)/delta): dtheta/dt = -de/dt with e the error's step response
    de = delta * np.exp(-z * wn * tt) * (-2 * z * wn * np.cos(wd * tt) + (z * z * wn * wn / wd - wd) * np.sin(wd * tt))
    f_an = np.where(t >= 0, -de / (2 * np.pi), 0.0)
    f_sim = ds.inverter_f_hz.isel(inverter=0).to_numpy() - 50.0
    # the simulated PLL uses the previous step's voltage: compare with the analytic response one step later
    err = np.abs(f_sim[1:] - f_an[:-1])
    assert np.abs(f_an).max() > 1.0  # a real transient (Hz)
    assert err.max() < 0.03 * np.abs(f_an).max()


def test_two_grid_forming_units_share_by_droop(case, net, light):
    """In island, two units in the same section share the load in inverse proportion to their droops."""
    pl = light.copy()
    pl.inv["f"][0, K.I_MP] *= 2.0  # BESS1 twice the droop of BESS2 (both on section A)
    ds = simulate(pl, lom(pl), t_end_s=6.0, battery_dc=False)
    p = ds.inverter_p_mw.isel(time=-1).to_numpy()
    assert p[1] > 0.3
    assert p[0] / p[1] == pytest.approx(0.5, rel=0.02)
    assert float(ds.frequency_hz.isel(time=-1)) == pytest.approx(50.0, abs=0.02)  # restored


def test_halving_the_step_changes_voltages_by_less_than_1e_3_pu(light):
    ev = lom(light)
    a = simulate(light, ev, t_end_s=0.6, step_ms=1.0, battery_dc=False)
    b = simulate(light, ev, t_end_s=0.6, step_ms=0.5, battery_dc=False)
    bb = b.sel(time=a.time.to_numpy(), method="nearest")
    assert np.abs(a.vm_pu.to_numpy() - bb.vm_pu.to_numpy()).max() < 1e-3


def test_island_at_light_load_survives_and_full_load_does_not(plant, light):
    ok = simulate(light, lom(light), t_end_s=1.0, battery_dc=False)
    assert float(ok.hall_lost_mw.isel(time=-1).sum()) == 0.0
    assert (ok.inverter_mode.sel(inverter=[n for n in ok.inverter.values if "PCS" in n]).isel(time=-1) == 1).all()
    assert float(ok.hall_supply_v_pu.isel(time=-1).min()) > 0.9
    bad = simulate(plant, lom(plant), t_end_s=1.0, battery_dc=False)
    it = float(plant.net.res_load.p_mw[plant.net.load.group == "it"].sum())
    # about 10 MW of load against four 1.1 MVA PCS at 1.2 pu current: the servers drop out
    assert float(bad.hall_lost_mw.isel(time=-1).sum()) > 0.5 * it
    # the PCS never exceed their current limit
    assert float(bad.inverter_i_pu.max()) <= plant.dyn.pcs.current_limit_pu * (1 + 1e-9)


def test_battery_energy_is_the_pcs_output_plus_its_losses(light):
    """Energy drawn from the battery = integral of PCS AC output + PCS losses; losses >= 0 (1e-9 relative)."""
    ds = simulate(light, lom(light), t_end_s=0.5)
    pcs = light.case.model("pcs", light.case.spec.battery.pcs)
    names = [n for n in ds.inverter.values if n.endswith("_PCS")]
    p_ac = ds.inverter_p_mw.sel(inverter=names).to_numpy()
    p_dc_expected = pcsmod.ac_to_dc(p_ac * 1e6, pcs) / 1e6
    p_dc = ds.battery_p_dc_mw.to_numpy()
    dt = ds.attrs["step_s"]
    e_batt, e_ac, e_loss = p_dc.sum() * dt, p_ac.sum() * dt, (p_dc_expected - p_ac).sum() * dt
    assert e_batt == pytest.approx(e_ac + e_loss, rel=1e-9)
    assert ((p_dc_expected - p_ac)[p_ac > 0.05] > 0).all()
    assert int(ds.battery_flags.max()) == 0  # within every BMS limit at this load


@pytest.mark.parametrize("gap_ms, dropped", [(8.0, False), (30.0, True)])
def test_interruption_against_psu_hold_up(plant, gap_ms, dropped):
    """A grid interruption shorter than the PSUs' hold-up drops no server; a longer one does. The PCS stop (no
    island) so that only the hold-up carries the servers."""
    e_s, l0 = fit_holdup(plant.dyn.psu.holdup_ms, plant.dyn.psu.holdup_load_fraction)
    shortest = float(holdup_s(plant.dyn.psu.load_fraction, e_s, l0))  # at full server power, s
    assert shortest == pytest.approx(0.018 / 1.3, rel=1e-9)  # 18 ms / (0.5 + 0.8)
    t1 = 0.1 + gap_ms / 1000.0
    ev = [*lom(plant), *[Event(t1, "source", s, 1.0) for s in plant.src["names"]]]
    ds = simulate(plant, ev, t_end_s=0.4, pcs_form_on_island=False, battery_dc=False)
    lost = float(ds.hall_lost_mw.isel(time=-1).sum())
    assert (lost > 0) == dropped


def test_psu_hold_up_fit_meets_both_points():
    e, l0 = fit_holdup([10.0, 12.0], [1.0, 0.7])
    assert holdup_s([1.0, 0.7], e, l0) == pytest.approx([0.010, 0.012], rel=1e-12)
    with pytest.raises(ValueError, match="longer at the lighter load"):
        fit_holdup([12.0, 10.0], [1.0, 0.7])


@pytest.mark.parametrize("event, message", [
    (Event(0.1, "blackout"), "event kind 'blackout'"),
    (Event(0.1005, "source", "INC_A", 0.0), "not on the 1 ms step grid"),
    (Event(5.0, "source", "INC_A", 0.0), "outside the simulated"),
    (Event(0.1, "source", "INC_X", 0.0), "no incomer 'INC_X'"),
    (Event(0.1, "fault", "NOWHERE", 1.0), "no bus 'NOWHERE'"),
    (Event(0.1, "shed", "", 1.5), "fraction of the IT load"),
    (Event(0.1, "topology", "mesh"), "target must be one of"),
])
def test_bad_events_are_rejected(plant, event, message):
    with pytest.raises(ValueError, match=message):
        simulate(plant, [event], t_end_s=1.0)


def test_online_ups_carries_the_servers_through_loss_of_mains(case, net, plant):
    """With every hall behind an online UPS the servers ride through at full load; the island keeps the cooling
    running while the UPS rectifiers walk in."""
    pl = build_plant(case, net, "training_peak", ups_halls=[h.name for h in case.spec.halls], like=plant)
    ds = simulate(pl, lom(pl), t_end_s=2.0, battery_dc=False)
    assert float(ds.hall_lost_mw.max()) == 0.0
    assert float(ds.hall_supply_v_pu.min()) == 1.0
    assert bool(ds.motor_on.isel(time=-1).all())
    boards = [b for bs in pl.hall["boards"] for b in bs]
    assert float(ds.vm_pu.sel(bus=boards).isel(time=-1).min()) > 0.9
    with pytest.raises(ValueError, match="no hall"):
        build_plant(case, net, "training_peak", ups_halls=["H9"], like=plant)


def test_bad_dynamics_file_is_rejected_with_file_and_key(case, tmp_path):
    import shutil

    from twin.case import CaseError
    from twin.transient.params import load_dynamics

    root = tmp_path / "proj"
    (root / "models" / "dynamics").mkdir(parents=True)
    shutil.copy(case.path, root / "campus.toml")
    text = (case.path.parents[1] / "models" / "dynamics" / "campus_default.toml").read_text()
    (root / "models" / "dynamics" / "bad.toml").write_text(text.replace("current_limit_pu = 1.2",
                                                                        "current_limit_pu = 12.0"))
    with pytest.raises(CaseError, match=r"bad\.toml.*pcs\.current_limit_pu"):
        load_dynamics(load_case(root / "campus.toml"), "bad")
    (root / "models" / "dynamics" / "bad2.toml").write_text(text.replace("overload_time_s = [600.0, 60.0, 0.2]",
                                                                         "overload_time_s = [0.2, 60.0, 600.0]"))
    with pytest.raises(CaseError, match="overload_time_s"):
        load_dynamics(load_case(root / "campus.toml"), "bad2")


def test_standby_genset_starts_on_islanding_and_shares_by_droop(case, tmp_path):
    """A genset on section A, started by the islanding detection, synchronises to the live island after its start
    delay and takes load: in steady state its share against a PCS of the same section follows the droops."""
    import shutil

    root = tmp_path / "proj"
    (root / "models" / "gensets").mkdir(parents=True)
    text = (case.path.parents[1] / "models" / "gensets" / "diesel_2000kva.toml").read_text()
    (root / "models" / "gensets" / "fast.toml").write_text(text.replace("start_delay_s = 10.0", "start_delay_s = 0.5"))
    shutil.copy(case.path, root / "campus.toml")
    c2 = load_case(root / "campus.toml")
    from twin.case import SwitchoverGenset

    spec = c2.spec.model_copy(update={"switchover": c2.spec.switchover.model_copy(
        update={"gensets": [SwitchoverGenset(name="G1", bus="SWS_A", model="fast")]})})
    c2 = type(c2)(spec=spec, path=c2.path, models=c2.models, model_paths=c2.model_paths, sha256="x")
    pl = build_plant(c2, build_net(c2), "training_peak", load_scale=0.3)
    ds = simulate(pl, lom(pl), t_end_s=8.0, battery_dc=False)
    g = ds.sel(inverter="G1")
    t_on = float(ds.time[(g.inverter_mode == 1).to_numpy().argmax()])
    t_det = float(np.nanmin(ds.t_detect_s))
    assert t_on == pytest.approx(t_det + 0.5, abs=2e-3)
    assert float(ds.hall_lost_mw.max()) == 0.0
    end = ds.isel(time=-1)
    p_gen, p_pcs = float(end.inverter_p_mw.sel(inverter="G1")), float(end.inverter_p_mw.sel(inverter="BESS1_PCS"))
    # equal frequency in steady state: P_gen / P_pcs = (droop_pcs / P_rated_pcs)^-1 / (droop_gen / P_rated_gen)^-1
    m = pl.inv["f"][:, K.I_MP]
    names = list(ds.inverter.values)
    assert p_gen > 0.1
    assert p_gen / p_pcs == pytest.approx(m[names.index("BESS1_PCS")] / m[names.index("G1")], rel=0.03)
    assert float(end.frequency_hz) == pytest.approx(50.0, abs=0.05)


def test_isolation_device_opens_before_the_island_forms(light):
    """A remote fault collapses the grid voltage to 5 % without disconnecting it: the PCS detect it, the static
    switch opens 4 ms later, and only then do they form the island (they never feed the grid's fault)."""
    ev = [Event(0.1, "source", s, 0.05) for s in light.src["names"]]
    ds = simulate(light, ev, t_end_s=0.6, battery_dc=False)
    t_det = float(np.nanmin(ds.t_detect_s))
    opening = light.dyn.detection.isolation_opening_ms / 1000.0
    after = ds.sel(time=slice(t_det + opening + 1e-3, None))
    assert float(abs(after.grid_p_mw).max()) == 0.0
    pcs = [n for n in ds.inverter.values if n.endswith("_PCS")]
    first_gfm = float(ds.time[(ds.inverter_mode.sel(inverter=pcs) == 1).any("inverter").to_numpy().argmax()])
    assert first_gfm >= t_det + opening - 1e-9
    assert float(ds.hall_lost_mw.isel(time=-1).sum()) == 0.0
