"""The power-swing study: smoothing controller limits, the point-of-connection voltage, measures and the seed."""

import numpy as np
import pandapower as pp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.case import CaseError, load_case
from twin.gpu import load_scenario, server_power_from_fraction
from twin.studies import swing


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), p_max=st.floats(0.0, 5.0), ramp=st.floats(0.1, 50.0),
       resp=st.floats(0.0, 0.2), target=st.floats(0.1, 10.0))
def test_smoothing_never_exceeds_pcs_limits(seed, p_max, ramp, resp, target):
    rng = np.random.default_rng(seed)
    dt = 0.01
    load = np.cumsum(rng.normal(0, 0.3, 3000)) + 5 * (rng.random(3000) > 0.5)
    pb = swing.smooth(load, dt, filter_s=10.0, ramp_target_mw_per_s=target, pcs_response_s=resp, p_max_mw=p_max,
                      ramp_max_mw_per_s=ramp)
    assert np.all(np.abs(pb) <= p_max + 1e-12)
    assert np.all(np.abs(np.diff(pb)) <= ramp * dt + 1e-12)


def test_smoothing_holds_the_import_ramp_and_does_not_drift():
    dt, per = 0.01, 10.0
    t = np.arange(0, 600, dt)
    load = np.where(np.mod(t, per) < 0.9 * per, 0.0, -2.0)  # a 2 MW dip every 10 s
    pb = swing.smooth(load, dt, filter_s=30.0, ramp_target_mw_per_s=0.8, pcs_response_s=0.0, p_max_mw=3.0)
    imp = load - pb
    assert swing.ramp_max(imp[2000:], dt, 1.0) <= 0.8 + 1e-9  # the import follows the ramp-limited target
    assert abs(pb[2000:].mean()) < 0.02  # MW: no energy drift over the periods


def test_poc_voltage_is_the_load_flow_of_a_thevenin_source():
    """V = E - Z conj(S/V) solved per sample equals pandapower's load flow of the same two-bus circuit."""
    e, z, s = 1.02 * np.exp(0.1j), complex(0.004, 0.02), complex(6.5, 1.3)  # pu on 1 MVA, MW/Mvar
    net = pp.create_empty_network(sn_mva=1.0)
    b0, b1 = pp.create_bus(net, 10.0), pp.create_bus(net, 10.0)
    pp.create_ext_grid(net, b0, vm_pu=abs(e), va_degree=np.degrees(np.angle(e)))
    zb = 10.0 ** 2 / 1.0
    pp.create_line_from_parameters(net, b0, b1, 1.0, z.real * zb, z.imag * zb, 0.0, 10.0)
    pp.create_load(net, b1, p_mw=s.real, q_mvar=s.imag)
    pp.runpp(net, tolerance_mva=1e-10)
    v = swing.poc_voltage(e, z, np.array([s, 0j]), 1.0 + 0j)
    assert v[0] == pytest.approx(net.res_bus.vm_pu[b1], abs=1e-8)
    assert v[1] == pytest.approx(abs(e), abs=1e-12)


def test_ramp_and_oscillation_measures():
    dt = 0.01
    t = np.arange(0, 200, dt)
    assert swing.ramp_max(0.5 * t, dt, 1.0) == pytest.approx(0.5, rel=1e-9)
    amp, f = swing.oscillation_max(0.7 * np.sin(2 * np.pi * 0.5 * t), dt)
    assert f == pytest.approx(0.5, abs=0.01)
    assert amp == pytest.approx(0.7, rel=0.02)


@pytest.fixture(scope="module")
def seed():
    case = load_case(None)
    return case, swing.run(case, progress=False)


def test_seed_swing_summary_and_checks(seed):
    case, r = seed
    s = r.summary
    for k in ("pst_max", "plt_max", "ramp_max_mw_per_s", "pst_max_with_smoothing", "ramp_max_mw_per_s_with_smoothing"):
        assert np.isfinite(s[k]), k
    # the swing is the largest job's GPUs between compute and communication power (server model arithmetic)
    scen = load_scenario(case)
    frac = max(scen.training.slots + scen.training.window_slots)
    srv = case.model("it", case.spec.halls[0].server)
    n = sum(h.gpu_count for h in case.spec.halls) / srv.gpus_per_server * frac
    expected = n * float(server_power_from_fraction(srv, 1.0) - server_power_from_fraction(srv, srv.gpu_comm_fraction))
    assert s["swing_mw"] == pytest.approx(expected / 1000.0, rel=1e-9)
    # smoothing lowers flicker and the ramp of every oscillation it has the headroom for
    assert s["pst_max_with_smoothing"] < s["pst_max"]
    ds = r.dataset
    for c in ds.swing_case.values:
        if c.startswith("oscillation") and float(ds.battery_p_max_mw_with.sel(swing_case=c)) < s["smoothing_headroom_mw"]:
            assert float(ds.ramp_mw_per_s_with.sel(swing_case=c)) <= case.spec.swing.ramp_limit_mw_per_s
    q = set(r.checks.quantity)
    assert {"Plt", "ramp rate", "oscillation amplitude 0.05-5 Hz", "smoothing power"} <= q
    for v in ds.data_vars:
        assert "units" in ds[v].attrs and "long_name" in ds[v].attrs, v


def test_bad_swing_definitions_are_rejected(tmp_path):
    case = load_case(None)
    with pytest.raises(ValueError, match="periods_s"):
        type(case.spec.swing)(periods_s=[0.05])
    spec = case.spec.model_copy(update={"swing": case.spec.swing.model_copy(update={"operating_point": "nowhere"})})
    bad = type(case)(spec=spec, path=case.path, models=case.models, model_paths=case.model_paths, sha256="x")
    with pytest.raises(CaseError, match="no operating point 'nowhere'"):
        swing.check(bad)
