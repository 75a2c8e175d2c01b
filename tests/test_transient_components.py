"""Components of the transient simulator: induction motor circuits from nameplate data, duration-curve checks."""

import tomllib

import numpy as np
import pytest

from twin.paths import models_dir
from twin.transient.itic import (
    ITIC_LOWER,
    ITIC_UPPER,
    SEMI_F47,
    duration_curve_check,
    itic_check,
    longest_excursion,
    overload_check,
    semi_f47_check,
)
from twin.transient.motor import (
    current_pu,
    fit_circuit,
    impedance_pu,
    inertia_h_s,
    initial_slip,
    load_torque_pu,
    power_pu,
    torque_pu,
)

# ---------------------------------------------------------------------------------------------------------------
# motors

MOTORS = tomllib.loads((models_dir() / "cooling" / "chiller_plant_water_cooled.toml").read_text())["motors"]
FIT_KEYS = ("pn_mech_kw", "cos_phi", "efficiency_percent", "lrc_pu", "rx")


def _fit(m, **kw):
    return fit_circuit(*(m[k] for k in FIT_KEYS), **kw)


@pytest.fixture(params=MOTORS, ids=[m["name"] for m in MOTORS])
def motor(request):
    return request.param, _fit(request.param)


def test_seed_data_has_three_motors():
    assert [m["name"] for m in MOTORS] == ["CHWP", "CWP", "CTF"]


def test_fit_reproduces_rated_and_locked_rotor_points(motor):
    m, c = motor
    cphi = m["cos_phi"]
    s_rated = power_pu(c, 1.0, c.slip_rated)
    assert s_rated.real == pytest.approx(cphi, rel=1e-6)                       # P_in = pn_mech / eff
    assert s_rated.real / abs(s_rated) == pytest.approx(cphi, rel=1e-6)        # power factor
    assert abs(current_pu(c, 1.0, c.slip_rated)) == pytest.approx(1.0, rel=1e-6)
    assert abs(current_pu(c, 1.0, 1.0)) == pytest.approx(m["lrc_pu"], rel=1e-6)
    z1 = impedance_pu(c, 1.0)
    assert z1.real / z1.imag == pytest.approx(m["rx"], rel=1e-6)
    assert c.fit_residual < 1e-9
    assert c.s_base_kva == pytest.approx(m["pn_mech_kw"] / (m["efficiency_percent"] / 100 * cphi))
    # default split: Xs = Xr, Rs = Rr; plausible values for a 4-pole IE3 motor
    assert c.xs == pytest.approx(c.xr) and c.rs == pytest.approx(c.rr)
    assert 0.005 < c.slip_rated < 0.03 and 1.5 < c.xm < 4.0


def test_fit_efficiency_copper_only_within_stated_tolerance(motor):
    """Copper-only efficiency is above nameplate by the lumped other losses: 0 to 3.5 percentage points."""
    m, c = motor
    eff = m["efficiency_percent"] / 100
    assert 0.0 < c.efficiency_copper - eff < 0.035
    shaft = c.torque_rated_pu * (1 - c.slip_rated)
    assert shaft - c.p_other_loss_pu == pytest.approx(eff * m["cos_phi"], rel=1e-12)
    # power balance of the circuit at the rated point: input = stator copper + rotor copper + shaft
    p_in = power_pu(c, 1.0, c.slip_rated).real
    i2 = abs(current_pu(c, 1.0, c.slip_rated)) ** 2
    assert p_in == pytest.approx(c.rs * i2 + c.slip_rated * c.torque_rated_pu + shaft, rel=1e-12)


def test_breakdown_torque_and_monotonic_torque_slip(motor):
    _, c = motor
    ratio = c.breakdown_torque_pu / c.torque_rated_pu
    assert 1.5 < ratio < 4.0
    s = np.linspace(0.0, c.breakdown_slip, 2001)
    t = torque_pu(c, 1.0, s)
    assert np.all(np.diff(t) > 0)
    assert t.max() == pytest.approx(c.breakdown_torque_pu, rel=1e-6)
    assert float(torque_pu(c, 1.0, c.breakdown_slip)) == pytest.approx(c.breakdown_torque_pu, rel=1e-12)
    s_above = np.linspace(c.breakdown_slip, 1.0, 2001)
    assert np.all(np.diff(torque_pu(c, 1.0, s_above)) < 0)
    assert float(torque_pu(c, 1.0, 0.0)) == pytest.approx(0.0, abs=1e-15)
    # torque scales with |V|^2 and does not depend on the voltage's phase
    assert np.allclose(torque_pu(c, 0.8 * np.exp(0.3j), s), 0.64 * t)


def test_initial_slip_round_trip(motor):
    m, c = motor
    assert initial_slip(c, m["cos_phi"], 1.0) == pytest.approx(c.slip_rated, rel=1e-9)
    p = np.array([0.2, 0.5, 0.8]) * m["cos_phi"]
    v = np.array([1.05, 1.0, 0.9])
    s = initial_slip(c, p, v)
    assert s.shape == (3,)
    assert np.allclose(power_pu(c, v, s).real, p, rtol=1e-10)
    assert np.all((s > 0) & (s < c.breakdown_slip))


def test_initial_slip_raises_when_the_motor_would_stall(motor):
    m, c = motor
    with pytest.raises(ValueError, match="stall"):
        initial_slip(c, m["cos_phi"], 0.5)      # rated power at half voltage: beyond breakdown (T_max/4 < rated)
    with pytest.raises(ValueError, match="no-load"):
        initial_slip(c, 0.0, 1.0)


def test_load_torque_quadratic():
    assert load_torque_pu(1.0, 0.8) == pytest.approx(0.8)
    assert np.allclose(load_torque_pu([0.0, 0.5, 1.0], 0.8), [0.0, 0.2, 0.8])
    assert load_torque_pu(0.495, 0.8, rated_speed_pu=0.99) == pytest.approx(0.2)
    assert load_torque_pu(0.5, 0.8, exponent=1.0) == pytest.approx(0.4)
    assert load_torque_pu(-0.5, 0.8) == pytest.approx(-0.2)
    with pytest.raises(ValueError, match="exponent"):
        load_torque_pu(1.0, 0.8, exponent=-1.0)


def test_inertia_defaults():
    assert inertia_h_s(110.0, "pump") == 0.5
    assert np.allclose(inertia_h_s([37.0, 90.0], "fan"), 2.0)
    with pytest.raises(ValueError, match="kind"):
        inertia_h_s(110.0, "compressor")
    with pytest.raises(ValueError, match="pn_mech_kw"):
        inertia_h_s(-1.0, "pump")


@pytest.mark.parametrize(("key", "value"), [
    ("pn_mech_kw", 0.0), ("cos_phi", 1.0), ("cos_phi", 0.0), ("efficiency_percent", 100.0),
    ("efficiency_percent", -5.0), ("lrc_pu", 1.0), ("rx", 0.0), ("rx", float("nan")),
])
def test_bad_motor_data_names_the_parameter(key, value):
    m = dict(MOTORS[0], **{key: value})
    with pytest.raises(ValueError, match=key):
        _fit(m)


def test_inconsistent_motor_data_raises():
    """A locked-rotor current of 1.5 pu at power factor 0.9: no single-cage circuit has both points."""
    with pytest.raises(ValueError, match="no single-cage circuit.*lrc_pu = 1.5"):
        fit_circuit(100.0, 0.9, 95.0, 1.5, 0.15)


def test_bad_split_ratio_names_the_parameter():
    with pytest.raises(ValueError, match="xs_over_xr"):
        _fit(MOTORS[0], xs_over_xr=0.0)


def test_other_split_still_reproduces_the_data():
    m = MOTORS[0]
    c = _fit(m, xs_over_xr=0.7, rs_over_rr=1.5)
    assert c.xs == pytest.approx(0.7 * c.xr) and c.rs == pytest.approx(1.5 * c.rr)
    assert abs(current_pu(c, 1.0, 1.0)) == pytest.approx(m["lrc_pu"], rel=1e-6)
    assert power_pu(c, 1.0, c.slip_rated).real == pytest.approx(m["cos_phi"], rel=1e-6)


# ---------------------------------------------------------------------------------------------------------------
# duration curves

T = np.arange(0, 2000) * 1e-3           # 2 s at 1 ms


def _dip(start_ms, length_ms, value, base=1.0, n=T.size):
    v = np.full(n, base)
    v[start_ms:start_ms + length_ms] = value
    return v


def test_itic_dropout_19ms_passes_21ms_fails():
    ok = itic_check(T, _dip(100, 19, 0.0))
    assert bool(ok["pass"]) and float(ok.margin_ms_min) == pytest.approx(1.0, abs=1e-9)
    assert float(ok.binding_level) == 0.7
    bad = itic_check(T, _dip(100, 21, 0.0))
    assert not bool(bad["pass"]) and float(bad.margin_ms_min) == pytest.approx(-1.0, abs=1e-9)
    assert float(bad.binding_level) == 0.7
    # exactly 20 ms is on the curve and passes (durations rounded to 1 ns)
    assert bool(itic_check(T, _dip(100, 20, 0.0))["pass"])


def test_itic_sag_075_for_04s_passes_06s_fails():
    ok = itic_check(T, _dip(100, 400, 0.75))
    assert bool(ok["pass"])
    assert float(ok.margin_ms.sel(level=0.8)) == pytest.approx(100.0, abs=1e-9)
    assert float(ok.longest_s.sel(level=0.7)) == 0.0
    bad = itic_check(T, _dip(100, 600, 0.75))
    assert not bool(bad["pass"]) and float(bad.binding_level) == 0.8
    assert float(bad.margin_ms_min) == pytest.approx(-100.0, abs=1e-9)


def test_two_dips_keep_the_longest_not_the_sum():
    v = _dip(100, 15, 0.0)
    v[300:315] = 0.0                    # two 15 ms dropouts, 30 ms in total
    assert float(longest_excursion(T, v, 0.7)) == pytest.approx(0.015)
    assert bool(itic_check(T, v)["pass"])
    v[115:300] = 0.95                   # the gap between them stays above 0.7: still separate
    assert float(longest_excursion(T, v, 0.7)) == pytest.approx(0.015)
    assert float(longest_excursion(T, v, 0.99)) == pytest.approx(0.215)


def test_excursion_at_the_end_lasts_one_median_step():
    v = _dip(1990, 10, 0.0)             # last 10 samples
    assert float(longest_excursion(T, v, 0.5)) == pytest.approx(0.010)
    assert float(longest_excursion(T, np.zeros(T.size), 0.5)) == pytest.approx(2.0)
    assert float(longest_excursion(T, np.ones(T.size), 0.5)) == 0.0


def test_level_is_strict():
    v = _dip(100, 50, 0.7)
    assert float(longest_excursion(T, v, 0.7)) == 0.0
    assert float(longest_excursion(T, v, 0.7000001)) == pytest.approx(0.05)


def test_2d_per_element_with_names():
    v = np.column_stack([_dip(100, 19, 0.0), _dip(100, 21, 0.0), _dip(500, 3, 1.3), np.ones(T.size)])
    ds = itic_check(T, v, names=["hall1", "hall2", "hall3", "hall4"])
    assert ds.margin_ms.dims == ("level", "element")
    assert ds["pass"].values.tolist() == [True, False, True, True]
    assert ds.binding_level.sel(element="hall3") == 1.2               # 3 ms above 1.2 pu, 3 ms allowed
    assert float(ds.margin_ms_min.sel(element="hall3")) == pytest.approx(0.0, abs=1e-9)
    # a level not crossed keeps its whole allowed time as margin: 1 ms above 1.4 pu caps every ITIC margin
    assert float(ds.margin_ms_min.sel(element="hall4")) == pytest.approx(1.0, abs=1e-9)
    assert np.allclose(longest_excursion(T, v, 0.7), [0.019, 0.021, 0.0, 0.0])
    for var in ("longest_s", "allowed_s", "margin_ms", "pass", "binding_level", "margin_ms_min"):
        assert "units" in ds[var].attrs and "long_name" in ds[var].attrs
    assert set(ds.direction.values) == {"below", "above"}


def test_variable_time_step():
    t = np.array([0.0, 0.010, 0.012, 0.0125, 0.030, 0.100, 0.200])
    v = np.array([1.0, 0.0, 0.0, 0.5, 1.0, 0.6, 1.0])
    # below 0.7: [0.010, 0.030) = 20 ms, then [0.100, 0.200) = 100 ms
    assert float(longest_excursion(t, v, 0.7)) == pytest.approx(0.100)
    assert float(longest_excursion(t, v, 0.1)) == pytest.approx(0.0025)
    ds = duration_curve_check(t, v, [0.1, 0.7], [0.002, 0.1])
    assert ds.margin_ms.values == pytest.approx([-0.5, 0.0], abs=1e-9)
    assert not bool(ds["pass"]) and float(ds.binding_level) == 0.1
    # the last sample lasts the median step: median of (10, 2, 0.5, 17.5, 70, 100) ms = 13.75 ms
    assert float(longest_excursion(t, np.r_[v[:-2], 1.0, 0.0], 0.1)) == pytest.approx(0.01375)


def test_upper_curve():
    assert ITIC_UPPER["levels_pu"] == (1.4, 1.2, 1.1)
    assert bool(itic_check(T, _dip(100, 3, 1.3))["pass"])                 # 3 ms at 130 %: on the curve
    assert not bool(itic_check(T, _dip(100, 4, 1.3))["pass"])             # 4 ms at 130 %
    assert bool(itic_check(T, _dip(100, 500, 1.15))["pass"])              # 0.5 s at 115 %
    bad = itic_check(T, _dip(100, 501, 1.15))
    assert not bool(bad["pass"]) and float(bad.binding_level) == 1.1
    assert not bool(itic_check(T, _dip(100, 2, 1.5))["pass"])             # 2 ms above 140 %: 1 ms allowed
    assert bool(itic_check(T, np.full(T.size, 1.1))["pass"])              # 110 % indefinitely


def test_overload_check_and_infinite_allowed():
    i = _dip(100, 1000, 1.15)                                            # 1 s at 1.15 pu
    ds = overload_check(T, i, [1.1, 1.5], [10.0, 0.2])
    assert bool(ds["pass"]) and float(ds.binding_level) == 1.5
    assert ds.margin_ms.values == pytest.approx([9000.0, 200.0])
    ds = overload_check(T, i, [1.1], [np.inf])                          # continuous rating: never binding
    assert bool(ds["pass"]) and np.isinf(float(ds.margin_ms_min)) and np.isnan(float(ds.binding_level))


def test_semi_f47():
    assert SEMI_F47["allowed_s"][0] == 0.0 and ITIC_LOWER["allowed_s"] == (0.02, 0.5, 10.0)
    assert bool(semi_f47_check(T, _dip(100, 200, 0.55))["pass"])          # 50 % region: 200 ms
    assert not bool(semi_f47_check(T, _dip(100, 201, 0.55))["pass"])
    assert bool(semi_f47_check(T, _dip(100, 1000, 0.85))["pass"])         # 80 % for 1 s
    assert not bool(semi_f47_check(T, _dip(100, 1, 0.45))["pass"])        # below 50 %: outside the duty
    assert bool(itic_check(T, _dip(100, 1, 0.45))["pass"])                # ... but within ITIC


@pytest.mark.parametrize(("args", "match"), [
    ((T[::-1], np.ones(T.size), [0.7], [0.02]), "increasing"),
    ((np.r_[0.0, 0.0, 1.0], np.ones(3), [0.7], [0.02]), "increasing"),
    ((T, np.ones(T.size - 1), [0.7], [0.02]), "shape"),
    ((T, np.ones((T.size, 2, 2)), [0.7], [0.02]), "shape"),
    ((T, np.ones(T.size), [-0.7], [0.02]), "levels"),
    ((T, np.ones(T.size), [0.7], [-0.02]), "allowed_s"),
    ((T, np.ones(T.size), [0.7, 0.8], [0.02]), "same length"),
    ((T, np.full(T.size, np.nan), [0.7], [0.02]), "NaN"),
    ((T[:1], np.ones(1), [0.7], [0.02]), "at least 2"),
])
def test_bad_curve_input_raises(args, match):
    with pytest.raises(ValueError, match=match):
        duration_curve_check(*args)


def test_bad_names_length():
    with pytest.raises(ValueError, match="names"):
        itic_check(T, np.ones((T.size, 2)), names=["only_one"])
