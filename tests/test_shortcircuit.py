"""Short circuit (IEC 60909-0): hand calculation, source contributions, min/max, check rows, earthing."""

import copy
import math

import numpy as np
import pytest
from conftest import write_variant

from twin.case import load_case
from twin.network import build_net
from twin.studies import shortcircuit as scs

# IEC 60909-0:2016 Table 1: MV c_max, and LV c_max for a +10 % tolerance (pandapower's lv_tol_percent=10)
C_MAX = 1.1


@pytest.fixture(scope="module")
def seed_sc(seed_case, seed_net):
    return scs.run(seed_case, seed_net)


def _bus(net, name):
    return int(net.bus.index[net.bus["name"] == name][0])


def _no_contributions(net):
    """The net with DOL motors and PCS/PV current sources out of service: network impedances only."""
    n = copy.deepcopy(net)
    n.motor["in_service"] = False
    n.sgen["in_service"] = False
    return n


def iec60909_ikss_max_lv(s_sc_mva, x_r, un_mv_kv, cables, sn_mva, vk_percent, vkr_percent, un_lv_kv):
    """Hand calculation of Ik''max (three-phase) at an LV board fed radially: source, cables, transformer.

    IEC 60909-0:2016 step by step; returns (Ik'' in kA, R and X at the LV board in ohm, kappa).
    ``cables`` is a list of (R' ohm/km, X' ohm/km, length km) at MV.
    """
    # 1. utility source at MV: Z_Q = c_max Un^2 / S''kQ, X_Q = Z_Q / sqrt(1 + (R/X)^2), R_Q = (R/X) X_Q
    z_q = C_MAX * un_mv_kv ** 2 / s_sc_mva                       # kV^2 / MVA = ohm
    x_q = z_q / math.sqrt(1.0 + (1.0 / x_r) ** 2)                 # ohm
    r_q = x_q / x_r                                               # ohm
    # 2. cables at MV: R = R'20 l, X = X' l (IEC 60909-0 4.3.2: maximum currents with the resistance at 20 C;
    #    the parameter sets give R at 20 C)
    r_c = sum(r * km for r, _, km in cables)                      # ohm/km * km = ohm
    x_c = sum(x * km for _, x, km in cables)                      # ohm
    # 3. refer the MV impedances to the LV side with the rated ratio squared
    t2 = (un_lv_kv / un_mv_kv) ** 2                               # -
    r_mv, x_mv = (r_q + r_c) * t2, (x_q + x_c) * t2               # ohm at LV
    # 4. transformer referred to LV, Z_T = uk Ur^2 / Sr, R_T = ur Ur^2 / Sr, X_T = sqrt(Z^2 - R^2)
    z_t = vk_percent / 100.0 * un_lv_kv ** 2 / sn_mva             # ohm
    r_t = vkr_percent / 100.0 * un_lv_kv ** 2 / sn_mva            # ohm
    x_t = math.sqrt(z_t ** 2 - r_t ** 2)                          # ohm
    # 5. correction factor of a network transformer (eq. (12a)): K_T = 0.95 c_max / (1 + 0.6 x_T), x_T in pu
    x_t_pu = math.sqrt(vk_percent ** 2 - vkr_percent ** 2) / 100.0
    k_t = 0.95 * C_MAX / (1.0 + 0.6 * x_t_pu)                     # -
    # 6. total at the fault location and Ik'' = c Un / (sqrt(3) |Z_k|)
    r_k, x_k = r_mv + k_t * r_t, x_mv + k_t * x_t                 # ohm
    ikss_ka = C_MAX * un_lv_kv / (math.sqrt(3.0) * math.hypot(r_k, x_k))  # kV / ohm = kA
    # 7. peak factor of a radial network: kappa = 1.02 + 0.98 exp(-3 R/X)
    kappa = 1.02 + 0.98 * math.exp(-3.0 * r_k / x_k)
    return ikss_ka, r_k, x_k, kappa


def test_hand_calculation_h1_lv_a(seed_case, seed_net):
    """THE key test: Ik''max at the 0.4 kV board H1_LV_A equals IEC 60909-0 by hand within 1 %."""
    s = seed_case.spec
    inc, feed = s.supply.incomers[0], s.halls[0].feeds[0]
    inc_cable, feed_cable = seed_case.model("cables", inc.cable), seed_case.model("cables", feed.cable)
    tr = seed_case.model("transformers", feed.transformer)
    # the data the hand calculation uses, as written in the case and its parameter sets
    assert (inc.name, inc.section, feed.section) == ("INC_A", "A", "A")
    assert not s.switching_station.coupler_closed
    assert (inc.s_sc_max_mva, inc.x_r_max, s.supply.vn_kv) == (300.0, 10.0, 10.0)        # MVA, -, kV
    assert (inc_cable.r_ohm_per_km, inc_cable.x_ohm_per_km, inc.length_km) == (0.0601, 0.09, 0.15)
    assert (feed_cable.r_ohm_per_km, feed_cable.x_ohm_per_km, feed.length_km) == (0.0754, 0.09, 0.20)
    assert (tr.sn_mva, tr.vk_percent, tr.vkr_percent, tr.vn_lv_kv) == (2.5, 6.0, 0.8, 0.4)

    ikss, r_k, x_k, kappa = iec60909_ikss_max_lv(
        300.0, 10.0, 10.0, [(0.0601, 0.09, 0.15), (0.0754, 0.09, 0.20)], 2.5, 6.0, 0.8, 0.4)
    # by hand: Z_Q = 1.1 * 10^2 / 300 = 0.3667 ohm -> X_Q = 0.3648, R_Q = 0.0365 ohm;
    # cables R = 0.0601 * 0.15 + 0.0754 * 0.20 = 0.0241 ohm, X = 0.09 * 0.35 = 0.0315 ohm;
    # referred to 0.4 kV (x 0.0016): R = 0.097 mohm, X = 0.634 mohm; transformer Z_T = 3.84, R_T = 0.512,
    # X_T = 3.806 mohm, K_T = 0.95 * 1.1 / (1 + 0.6 * 0.0595) = 1.0090; Z_k = 0.614 + j4.474 mohm;
    # Ik'' = 1.1 * 400 V / (sqrt(3) * 4.516 mohm) = 56.25 kA
    assert r_k == pytest.approx(0.614e-3, rel=2e-3) and x_k == pytest.approx(4.474e-3, rel=2e-3)
    assert ikss == pytest.approx(56.25, rel=1e-3)

    net = _no_contributions(seed_net)
    b = _bus(net, "H1_LV_A")
    r = scs.bus_currents(net, "3ph", "max", seed_case.spec.protection.clearing_time_lv_s)
    assert r["ikss_ka"][b] == pytest.approx(ikss, rel=0.01)
    assert r["rk_ohm"][b] == pytest.approx(r_k, rel=0.01) and r["xk_ohm"][b] == pytest.approx(x_k, rel=0.01)
    # peak: ip = kappa sqrt(2) Ik''; kappa method C equals the radial kappa on a radial feed
    assert r["ip_ka"][b] == pytest.approx(kappa * math.sqrt(2.0) * ikss, rel=0.01)
    # thermal: Ith = Ik'' sqrt(m + n), n = 1, m = (exp(4 f tk ln(kappa - 1)) - 1) / (2 f tk ln(kappa - 1))
    tk, f = seed_case.spec.protection.clearing_time_lv_s, 50.0
    lk = math.log(kappa - 1.0)
    m = (math.exp(4.0 * f * tk * lk) - 1.0) / (2.0 * f * tk * lk)
    assert r["ith_ka"][b] == pytest.approx(ikss * math.sqrt(m + 1.0), rel=0.01)


def test_hand_calculation_small_campus(small_case):
    """The same hand calculation on the second case (one incomer, 2,000 kVA hall transformer)."""
    s = small_case.spec
    inc, feed = s.supply.incomers[0], s.halls[0].feeds[0]
    ci, cf = small_case.model("cables", inc.cable), small_case.model("cables", feed.cable)
    tr = small_case.model("transformers", feed.transformer)
    ikss, *_ = iec60909_ikss_max_lv(inc.s_sc_max_mva, inc.x_r_max, s.supply.vn_kv,
                                    [(ci.r_ohm_per_km, ci.x_ohm_per_km, inc.length_km),
                                     (cf.r_ohm_per_km, cf.x_ohm_per_km, feed.length_km)],
                                    tr.sn_mva, tr.vk_percent, tr.vkr_percent, tr.vn_lv_kv)
    net = _no_contributions(build_net(small_case))
    name = f"{s.halls[0].name}_LV_A"
    r = scs.bus_currents(net, "3ph", "max", s.protection.clearing_time_lv_s)
    assert r["ikss_ka"][_bus(net, name)] == pytest.approx(ikss, rel=0.01)


def test_motors_and_sources_raise_the_maximum(seed_case, seed_net, seed_sc):
    ds = seed_sc.dataset
    full = ds.ikss_ka.sel(fault="3ph", case="max").values
    tk = seed_case.spec.protection.clearing_time_mv_s
    none = scs.bus_currents(_no_contributions(seed_net), "3ph", "max", tk)["ikss_ka"]
    motors = copy.deepcopy(seed_net)
    motors.sgen["in_service"] = False
    only_motors = scs.bus_currents(motors, "3ph", "max", tk)["ikss_ka"]
    # both sections carry motors and converters: every bus sees more current with them than without
    assert (full > none * 1.001).all()
    assert (only_motors > none).all() and (full > only_motors).all()
    # at the cooling boards the DOL pumps and fans (6 per board, lrc about 7 pu) feed the fault directly
    cp = [_bus(seed_net, "CP_LV_A"), _bus(seed_net, "CP_LV_B")]
    assert (only_motors[cp] - none[cp] > 5.0).all()
    # the PCS adds about k * Ir = 1.2 * 1.1 MVA / (sqrt(3) 0.69 kV) = 1.1 kA at its own board
    b = _bus(seed_net, "BESS1_LV")
    assert full[b] - only_motors[b] == pytest.approx(1.2 * 1.1 / (math.sqrt(3) * 0.69), rel=0.1)
    # the study never changes the net it is given
    assert seed_net.motor.in_service.all() and seed_net.sgen.in_service.all()


def test_minimum_below_maximum_and_without_sources(seed_case, seed_net, seed_sc):
    ds = seed_sc.dataset
    for var in ("ikss_ka", "ip_ka", "ith_ka"):
        mx, mn = ds[var].sel(case="max").values, ds[var].sel(case="min").values
        assert np.isfinite(mx).all() and np.isfinite(mn).all()
        assert (mn < mx).all(), var
    # the minimum case has no motor and no converter contribution (IEC 60909-0 minimum conditions)
    for fault in ("3ph", "2ph", "1ph"):
        ref = scs.bus_currents(_no_contributions(seed_net), fault, "min", 0.5)["ikss_ka"]
        np.testing.assert_allclose(ds.ikss_ka.sel(fault=fault, case="min").values, ref, rtol=1e-9)
    # so the two sections, identical apart from their converters and motors, give the same minimum currents
    mn = ds.ikss_ka.sel(case="min", fault="3ph")
    assert float(mn.sel(bus="CP_LV_A")) == pytest.approx(float(mn.sel(bus="CP_LV_B")), rel=1e-9)


def test_thermal_current_uses_each_bus_fault_duration(seed_case, seed_net, seed_sc):
    p = seed_case.spec.protection
    ds = seed_sc.dataset
    lv, mv = _bus(seed_net, "H1_LV_A"), _bus(seed_net, "H1_MV_A")
    at_lv = scs.bus_currents(copy.deepcopy(seed_net), "3ph", "max", p.clearing_time_lv_s)["ith_ka"]
    at_mv = scs.bus_currents(copy.deepcopy(seed_net), "3ph", "max", p.clearing_time_mv_s)["ith_ka"]
    ith = ds.ith_ka.sel(fault="3ph", case="max").values
    assert ds.tk_s.values[lv] == p.clearing_time_lv_s and ds.tk_s.values[mv] == p.clearing_time_mv_s
    assert ith[lv] == pytest.approx(at_lv[lv], rel=1e-9) and ith[mv] == pytest.approx(at_mv[mv], rel=1e-9)
    # single-phase ip and Ith follow the same bus's three-phase ratios (written in the attributes)
    for var in ("ip_ka", "ith_ka"):
        r1 = ds[var].sel(fault="1ph") / ds.ikss_ka.sel(fault="1ph")
        r3 = ds[var].sel(fault="3ph") / ds.ikss_ka.sel(fault="3ph")
        np.testing.assert_allclose(r1.values, r3.values, rtol=1e-9)
        assert "three-phase" in ds[var].attrs["note_1ph"]
        assert ds[var].attrs["units"] == "kA" and ds[var].attrs["long_name"]


def test_every_bus_and_cable_has_check_rows(seed_case, seed_net, seed_sc):
    c, ds = seed_sc.checks, seed_sc.dataset
    assert (c.study == "shortcircuit").all()
    for qty in ("ikss_ka", "ip_ka", "ith_ka"):
        rows = c[c.quantity == qty]
        assert sorted(rows.element) == sorted(seed_net.bus["name"]) and (rows.unit == "kA").all()
    cab = c[c.quantity == "sc_withstand_mm2"]
    assert sorted(cab.element) == sorted(seed_net.line["name"]) and (cab.unit == "mm2").all()
    crit = seed_case.criteria.short_circuit
    assert set(c[c.quantity == "ikss_ka"].criterion) == {crit.criterion_breaking}
    assert set(cab.criterion) == {crit.criterion_cable}
    # a row carries the worst fault type of the maximum case and names it
    row = c[(c.quantity == "ikss_ka") & (c.element == "H1_LV_A")].iloc[0]
    worst = ds.ikss_ka.sel(case="max", bus="H1_LV_A")
    assert row.scenario == f"max {str(worst.idxmax('fault').values)}"
    assert row.value == pytest.approx(float(worst.max())) and row.limit == 100.0
    # thermal limit Icw sqrt(tcw / tk): 80 kA for 1 s referred to 0.4 s at the LV board
    row = c[(c.quantity == "ith_ka") & (c.element == "H1_LV_A")].iloc[0]
    assert row.limit == pytest.approx(80.0 * math.sqrt(1.0 / seed_case.spec.protection.clearing_time_lv_s))
    # cable: required cross-section Ith sqrt(tk) / k from the Ith at its from bus over the MV clearing time
    row = cab[cab.element == "H1_CBL_A"].iloc[0]
    ith = float(ds.ith_ka.sel(case="max", bus="SWS_A").max())  # SWS_A is an MV bus: its tk is the MV time
    assert row.value == pytest.approx(ith * 1e3 * math.sqrt(0.5) / 143.0) and row.limit == 240.0
    # summary: counts and key figures
    sm = seed_sc.summary
    assert sm["checks"] == len(c) == 3 * len(seed_net.bus) + len(seed_net.line)
    assert sm["ikss_max_ka"]["lv"] > sm["ikss_max_ka"]["mv"] > 0
    assert set(sm["worst"]) == {"ikss_ka", "ip_ka", "ith_ka", "sc_withstand_mm2"}
    lv = ds.vn_kv.values < 1.0
    assert sm["ikss_min_lv_ka"]["1ph"] == pytest.approx(
        float(ds.ikss_ka.sel(case="min", fault="1ph").values[lv].min()), abs=1e-4)


def test_small_campus(small_case):
    r = scs.run(small_case)
    ds, c = r.dataset, r.checks
    net = build_net(small_case)
    assert ds.sizes == {"fault": 3, "case": 2, "bus": len(net.bus), "line": len(net.line)}
    assert (ds.ikss_ka.sel(case="min") < ds.ikss_ka.sel(case="max")).all()
    assert len(c) == 3 * len(net.bus) + len(net.line) and set(c.status) <= {"PASS", "WARN", "FAIL"}


def test_isolated_neutral_has_no_mv_earth_fault(tmp_path, seed_sc):
    case = load_case(write_variant(tmp_path, 'earthing = "low_resistance"', 'earthing = "isolated"'))
    assert case.spec.supply.earthing == "isolated"
    r = scs.run(case)
    ds, c = r.dataset, r.checks
    mv = ds.vn_kv.values == case.spec.supply.vn_kv
    one = ds.ikss_ka.sel(fault="1ph")
    assert np.isnan(one.values[:, mv]).all() and np.isnan(ds.ip_ka.sel(fault="1ph").values[:, mv]).all()
    assert np.isfinite(one.values[:, ~mv]).all()
    # LV boards behind Dyn transformers keep their earth-fault current, unchanged by the MV neutral
    np.testing.assert_allclose(one.values[:, ~mv], seed_sc.dataset.ikss_ka.sel(fault="1ph").values[:, ~mv],
                               rtol=1e-6)
    mv_names = set(ds.bus.values[mv])
    assert not ((c.scenario.str.endswith("1ph")) & c.element.isin(mv_names)).any()
    assert (c[c.element.isin(mv_names)].quantity.value_counts() == len(mv_names)).all()
    assert "isolated" in ds.attrs["earth_fault_note"] and "not an IEC 60909" in ds.ikss_ka.attrs["note"]
