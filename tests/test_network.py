"""The pandapower net built from a case matches the case, and every load flow balances."""

import numpy as np
import pandapower as pp
import pytest

from twin.battery import ratings
from twin.load import hall_it_power_mw
from twin.network import apply_operating_point, build_net, grid_import, power_balance, run_loadflow
from twin.studies import loadflow


def test_net_matches_seed_case(seed_case, seed_net):
    s, net = seed_case.spec, seed_net
    n_feeds = sum(len(h.feeds) for h in s.halls) + sum(len(c.feeds) for c in s.cooling_plants) \
        + len(s.battery.containers) + len(s.pv) + len(s.auxiliaries)
    assert len(net.ext_grid) == len(s.supply.incomers) == 2
    assert len(net.trafo) == n_feeds == 16
    assert len(net.line) == n_feeds + len(s.supply.incomers)
    # buses: sections + one POC per incomer + MV terminal and LV board per feed
    assert len(net.bus) == len(s.switching_station.sections) + len(s.supply.incomers) + 2 * n_feeds
    assert net.bus["name"].is_unique and net.line["name"].is_unique and net.trafo["name"].is_unique
    # PCS as one sgen per container (DESIGN.md), no storage elements
    pcs = net.sgen[net.sgen.type == "PCS"]
    assert len(pcs) == 4 and len(net.storage) == 0
    assert (pcs.k == 1.2).all() and (pcs.sn_mva == 1.1).all()
    # ratings carried over from the parameter sets
    h1a = net.trafo[net.trafo["name"] == "H1_TR_A"].iloc[0]
    assert h1a.sn_mva == 2.5 and h1a.vk_percent == 6.0 and h1a.vector_group == "Dyn"
    inc = net.line[net.line["name"] == "INC_A_CBL"].iloc[0]
    assert inc.length_km == 0.15 and inc.max_i_ka == 0.485
    eg = net.ext_grid.iloc[0]
    assert eg.s_sc_max_mva == 300.0 and eg.rx_max == pytest.approx(0.1)
    # coupler normally open; zones present
    assert len(net.switch) == 1 and not net.switch.closed.iloc[0]
    assert {"utility", "substation", "hall_H1", "battery_BESS1", "pv_PV1", "cooling_CP"} <= set(net.bus.zone)
    # DOL motors: 3 kinds x 2 per feed x 2 feeds
    assert len(net.motor) == 12 and (net.motor.lrc_pu > 1).all()


def test_net_matches_small_case(small_case):
    net = build_net(small_case)
    assert len(net.ext_grid) == 1 and len(net.switch) == 0
    assert len(net.trafo) == 4 and len(net.bus) == 1 + 1 + 2 * 4
    assert set(net.load.group) == {"it", "aux", "bess_aux"}


def test_operating_point_sets_what_the_case_says(seed_case, seed_net):
    net = apply_operating_point(seed_net, seed_case, "training_peak")
    it = sum(hall_it_power_mw(seed_case.model("it", h.server), h.gpu_count, h.network_storage_kw, 1.0)
             for h in seed_case.spec.halls)
    assert it == pytest.approx(7.99, abs=0.02)  # 5,000 GPUs give about 8 MW of IT (REFERENCE.md)
    assert net.load[net.load.group == "it"].p_mw.sum() == pytest.approx(it, rel=1e-12)
    cooling = net.load[net.load.group == "cooling"].p_mw.sum() + \
        (net.motor.pn_mech_mw * net.motor.loading_percent / net.motor.efficiency_percent).sum()
    assert cooling == pytest.approx(0.25 * it, rel=1e-9)
    assert net.sgen[net.sgen.type == "PCS"].p_mw.sum() == pytest.approx(4.0)
    assert seed_net.load.p_mw.sum() == 0.0  # the original net is untouched


@pytest.mark.parametrize("case_fixture", ["seed_case", "small_case"])
def test_power_balance_every_operating_point(request, case_fixture):
    """Injections minus consumption equal the network losses to 1e-6 MW at every operating point."""
    case = request.getfixturevalue(case_fixture)
    net = build_net(case)
    for op in case.spec.operating_points:
        n = apply_operating_point(net, case, op)
        run_loadflow(n)
        inj_minus_cons, losses = power_balance(n)
        assert losses > 0
        assert inj_minus_cons == pytest.approx(losses, abs=1e-6), op.name


def test_hold_cap_charges_exactly_to_the_cap(small_case):
    net = apply_operating_point(build_net(small_case), small_case, "night_charging")
    run_loadflow(net)
    p, _ = grid_import(net)
    batt = net.battery_setpoint_mw
    r = ratings(small_case)
    # either the import sits at the cap, or the battery is at its charging limit below the cap
    assert (abs(p - small_case.spec.supply.firm_import_cap_mw) < 1e-5) or (batt == pytest.approx(-r.p_ac_rated_mw))
    assert batt <= 0


def test_hold_cap_never_discharges_when_load_exceeds_cap(seed_case, seed_net):
    net = apply_operating_point(seed_net, seed_case, "night_charging")
    assert net.battery_setpoint_mw == 0.0


def test_loadflow_study_dataset_and_checks(seed_case, seed_net):
    r = loadflow.run(seed_case, seed_net)
    ds, ck = r.dataset, r.checks
    ops = [o.name for o in seed_case.spec.operating_points]
    assert list(ds.operating_point.values) == ops
    for v in ds.data_vars:
        assert "units" in ds[v].attrs and "long_name" in ds[v].attrs, v
    # a voltage row for every bus at every operating point, a loading row for every branch
    v = ck[ck.quantity == "vm_pu"]
    assert len(v) == len(ops) * len(seed_net.bus)
    assert len(ck[ck.quantity == "loading_percent"]) == len(ops) * (len(seed_net.line) + len(seed_net.trafo))
    # the stress point fails, as the case expects
    assert (ck[(ck.scenario == "stress_full_charge")].status == "FAIL").any()
    assert r.summary["expected_outcomes_met"] == {"stress_full_charge": True}
    # taking the battery out: import rises by its 4 MW, less its 0.08 MW of auxiliaries, plus the change in losses
    imp, loss = ds.p_import_mw.to_series(), ds.losses_mw.to_series()
    d_loss = loss["battery_out"] - loss["training_peak"]
    assert imp["battery_out"] - imp["training_peak"] == pytest.approx(4.0 - 0.08 + d_loss, abs=1e-6)
    assert np.nanmax(np.abs(ds.balance_mismatch_mw)) < 1e-6


def test_loadflow_matches_a_plain_pandapower_run(seed_case, seed_net):
    """The study's voltages are those of a plain pandapower.runpp on the same net."""
    r = loadflow.run(seed_case, seed_net)
    net = apply_operating_point(seed_net, seed_case, "midday_pv_light_load")
    pp.runpp(net, trafo_model="pi", tolerance_mva=1e-9, consider_line_temperature=True)
    np.testing.assert_allclose(r.dataset.vm_pu.sel(operating_point="midday_pv_light_load").values,
                               net.res_bus.vm_pu.values, atol=1e-8)
