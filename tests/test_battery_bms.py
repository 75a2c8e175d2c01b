"""BMS limits (twin.battery.bms): derating bounds, temperature windows, SOC taper, voltage limits, bad files."""

import tomllib

import numpy as np
import pytest
import tomli_w

from twin import paths
from twin.battery import bms
from twin.case import CaseError

SRC = paths.models_dir() / "battery" / "bms" / "lfp_default.toml"


@pytest.fixture(scope="module")
def p():
    return bms.load_bms("lfp_default")


def test_default_set_matches_data_sheet_figures(p):
    assert p.i_charge_max_a == pytest.approx(0.5 * p.capacity_ah)      # 0.5 C continuous
    assert p.i_discharge_max_a == pytest.approx(0.5 * p.capacity_ah)
    assert (p.t_charge_min_degc, p.t_charge_max_degc) == (0.0, 55.0)
    assert (p.t_discharge_min_degc, p.t_discharge_max_degc) == (-20.0, 55.0)


def test_limits_within_bounds_and_full_in_the_nominal_range(p):
    soc, t = np.meshgrid(np.linspace(0, 1, 41), np.linspace(-40, 80, 121))
    i_ch, i_dis = bms.available_current(p, soc, t)
    assert i_ch.shape == soc.shape and i_dis.shape == soc.shape
    assert np.all((i_ch >= 0) & (i_ch <= p.i_charge_max_a))
    assert np.all((i_dis >= 0) & (i_dis <= p.i_discharge_max_a))
    mid = (t >= 15) & (t <= 45) & (soc >= 0.1) & (soc <= 0.9)
    assert np.all(i_ch[mid] == p.i_charge_max_a) and np.all(i_dis[mid] == p.i_discharge_max_a)
    # derated, not cut, just outside the full-current band
    for temp in (5.0, 48.0):
        c, d = bms.available_current(p, 0.5, temp)
        assert 0 < c < p.i_charge_max_a and 0 < d < p.i_discharge_max_a


def test_zero_outside_temperature_windows(p):
    t = np.array([-30.0, -20.1, -5.0, -0.01, 55.01, 60.0])
    i_ch, _ = bms.available_current(p, 0.5, t)
    assert np.all(i_ch == 0)                                   # no charge below 0 or above 55 degC
    _, i_dis = bms.available_current(p, 0.5, np.array([-20.5, 55.5, 70.0]))
    assert np.all(i_dis == 0)
    _, i_dis_cold = bms.available_current(p, 0.5, -10.0)
    assert i_dis_cold > 0                                      # discharge allowed down to -20 degC


def test_taper_at_soc_limits(p):
    soc = np.linspace(0, 1, 101)
    i_ch, i_dis = bms.available_current(p, soc, 25.0)
    assert np.all(np.diff(i_ch) <= 0) and np.all(np.diff(i_dis) >= 0)
    assert i_ch[-1] == 0 and i_dis[0] == 0
    assert 0 < i_ch[97] < p.i_charge_max_a and 0 < i_dis[3] < p.i_discharge_max_a


def test_power_respects_voltage_limits(p):
    r = 0.5e-3
    v = np.array([3.0, 3.3, 3.6])
    p_ch, p_dis = bms.available_power(p, 0.5, 25.0, v, r)
    i_ch, i_dis = bms.available_current(p, 0.5, 25.0)
    # recover the currents and check the terminal voltages at the limits
    ic = (-v + np.sqrt(v**2 + 4 * r * p_ch)) / (2 * r)
    idis = (v - np.sqrt(v**2 - 4 * r * p_dis)) / (2 * r)
    assert np.all(v + ic * r <= p.v_max + 1e-12) and np.all(v - idis * r >= p.v_min - 1e-12)
    assert np.all(ic <= i_ch + 1e-9) and np.all(idis <= i_dis + 1e-9)
    assert ic[-1] == pytest.approx((p.v_max - 3.6) / r)        # voltage-limited near full
    # no resistance: power = current limit x voltage estimate, zero once the estimate is past a limit
    p_ch0, p_dis0 = bms.available_power(p, 0.5, 25.0, np.array([2.4, 3.3, 3.7]))
    np.testing.assert_allclose(p_ch0, [i_ch * 2.4, i_ch * 3.3, 0.0])
    np.testing.assert_allclose(p_dis0, [0.0, i_dis * 3.3, i_dis * 3.7])


def _bad(tmp_path, edit):
    data = tomllib.loads(SRC.read_text())
    edit(data)
    f = tmp_path / "bad.toml"
    f.write_text(tomli_w.dumps(data))
    return f


@pytest.mark.parametrize("edit, key, words", [
    (lambda d: d["soc"].__setitem__("soc", [0.0, 0.05, 0.1, 0.9, 0.95, 1.2]), "soc", "0-1"),
    (lambda d: d["soc"].__setitem__("charge", [1.0, 1.0, 1.0, 0.3, 1.0, 0.0]), "soc", "non-increasing"),
    (lambda d: d["temperature"].__setitem__("discharge", [0.3, 0.5, 0.7, 0.8, 0.9, 1.2, 1.0, 0.5, 0.0]),
     "temperature", "0-1"),
    (lambda d: d["temperature"].__setitem__("charge", [0.0, 0.5, 0.1, 0.2, 0.5, 1.0, 1.0, 0.5, 0.0]),
     "temperature", "rising then falling"),
    (lambda d: d["temperature"].__setitem__("t_degc", [-20.0, -10.0, 5.0, 0.0, 10.0, 15.0, 45.0, 50.0, 55.0]),
     "temperature", "strictly increasing"),
    (lambda d: d.__setitem__("i_charge_max_a", -1.0), "i_charge_max_a", "> 0"),
    (lambda d: d.__setitem__("v_min", 3.7), "v_min", "below v_max"),
    (lambda d: d.__setitem__("i_charge_max", 1.0), "i_charge_max", "did you mean"),
])
def test_bad_files_rejected_with_file_and_key(tmp_path, edit, key, words):
    f = _bad(tmp_path, edit)
    with pytest.raises(CaseError) as e:
        bms.load_bms(f)
    msg = str(e.value)
    assert str(f) in msg and key in msg and words in msg


def test_missing_file(tmp_path):
    with pytest.raises(CaseError, match="file not found"):
        bms.load_bms(tmp_path / "nope.toml")
