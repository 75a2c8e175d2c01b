"""PCS model (twin.pcs): efficiency curve, AC <-> DC inverse, P-Q capability, ramp, reactive-power modes, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin import pcs as P
from twin.case import CaseError, load_case


@pytest.fixture(scope="module")
def unit():
    case = load_case()
    return case.model("pcs", case.spec.battery.pcs)


def test_efficiency_is_the_pvwatts_shape_at_rated_power(unit):
    """PVWatts shape: at rated power the curve's value is eta_ref, so eta = eta_nom (REFERENCE.md)."""
    assert float(P.efficiency(unit.p_rated_mw, unit)) == pytest.approx(unit.eta_nom, rel=1e-12)
    assert float(P.efficiency(-0.1 * unit.p_rated_mw, unit)) == pytest.approx(
        unit.eta_nom / unit.eta_ref * (-0.0162 * 0.1 - 0.0059 / 0.1 + 0.9858), rel=1e-12)
    z = np.linspace(0.05, 1.0, 50)
    eta = P.efficiency(z * unit.p_rated_mw, unit)
    assert np.all(np.diff(eta[z < 0.6]) > 0) and np.all(eta < 1.0)


def test_ac_dc_round_trip_and_losses(unit):
    p_ac = np.linspace(-1e6, 1e6, 2001)
    p_dc = P.ac_to_dc(p_ac, unit)
    on = np.abs(p_ac) >= unit.p_min_fraction * 1e6
    np.testing.assert_allclose(P.dc_to_ac(p_dc, unit)[on], p_ac[on], rtol=1e-12)
    assert np.all(P.dc_to_ac(p_dc, unit)[~on] == 0.0)
    assert np.all(p_dc[on & (p_ac > 0)] > p_ac[on & (p_ac > 0)])     # discharging: the battery gives more than the AC
    assert np.all(np.abs(p_dc[on & (p_ac < 0)]) < np.abs(p_ac[on & (p_ac < 0)]))  # charging: less reaches the cells
    assert np.all(p_dc[~on] == 0.0)


@settings(max_examples=100, deadline=None)
@given(p=st.floats(-2.0, 2.0), q=st.floats(-2.0, 2.0), prio=st.sampled_from(["p", "q"]))
def test_capability_circle(p, q, prio):
    case = load_case()
    unit = case.model("pcs", case.spec.battery.pcs)
    pl, ql = P.capability(p, q, unit, priority=prio)
    assert abs(pl) <= unit.p_rated_mw + 1e-12
    assert pl * pl + ql * ql <= unit.sn_mva ** 2 * (1 + 1e-12)
    if prio == "p" and abs(p) <= unit.p_rated_mw:
        assert pl == p          # active power kept


def test_ramp_limits_the_rate_and_reaches_the_target(unit):
    u = unit.model_copy(update={"ramp_mw_per_s": 0.1})
    req = np.r_[np.zeros(5), np.ones(20), -np.ones(30)]
    out = P.ramp(req, 1.0, u)
    assert np.all(np.abs(np.diff(np.r_[0.0, out])) <= 0.1 + 1e-12)
    assert out[24] == pytest.approx(1.0) and out[-1] == pytest.approx(-1.0)
    np.testing.assert_array_equal(P.ramp(req, 1.0, unit), req)      # no limit in the seed set: unchanged
    with pytest.raises(ValueError, match="dt_s"):
        P.ramp(req, 0.0, u)


def test_reactive_power_modes(unit):
    p = np.array([0.0, 0.5, -1.0])
    pf = unit.model_copy(update={"q_mode": "pf", "pf": 0.9, "pf_sign": -1})
    np.testing.assert_allclose(P.q_setpoint(p, 1.0, pf), -np.abs(p) * np.tan(np.arccos(0.9)))
    qv = unit.model_copy(update={"q_mode": "qv"})
    q = P.q_setpoint(np.zeros(5), np.array([0.90, 0.945, 1.0, 1.055, 1.10]), qv)
    np.testing.assert_allclose(q, np.array([0.44, 0.22, 0.0, -0.22, -0.44]) * unit.sn_mva, atol=1e-12)
    assert np.all(P.q_setpoint(p, 1.0, unit.model_copy(update={"q_mode": "poc_pf"})) == 0.0)


def test_standby_draw_when_idle(unit):
    u = unit.model_copy(update={"standby_kw": 3.0})
    np.testing.assert_allclose(P.standby_mw(np.array([0.0, 0.01, 0.5]), u), [0.003, 0.003, 0.0])


def test_bad_pcs_parameters_are_rejected(tmp_path):
    import shutil

    from twin import paths

    case = load_case()
    pcs_name = case.spec.battery.pcs
    d = tmp_path / "models" / "pcs"
    d.mkdir(parents=True)
    text = (paths.models_dir() / "pcs" / f"{pcs_name}.toml").read_text()
    (d / f"{pcs_name}.toml").write_text(text + "\nqv_v_pu = [1.0, 0.9]\nqv_q_pu = [0.0, 0.4]\n")
    shutil.copy(case.path, tmp_path / case.path.name)
    with pytest.raises(CaseError, match="qv_v_pu"):
        load_case(tmp_path / case.path.name)
