"""Case loading: the embedded cases load; every kind of bad input gives a one-line error naming file and key."""

import re
import tomllib

import pytest
from conftest import write_variant
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twin.battery import ratings
from twin.case import CaseError, load_case
from twin.paths import networks_dir


def test_seed_case_loads(seed_case):
    s = seed_case.spec
    assert seed_case.name == "shanghai_campus"
    assert s.supply.firm_import_cap_mw == 6.0
    assert len(s.supply.incomers) == 2 and s.switching_station.sections == ["A", "B"]
    assert sum(h.gpu_count for h in s.halls) == 5000
    assert len(s.battery.containers) == 4
    assert {o.name for o in s.operating_points} >= {"training_peak", "night_charging", "midday_pv_light_load",
                                                     "battery_out", "stress_full_charge"}
    assert len(seed_case.sha256) == 64


def test_battery_ratings_follow_design_definitions(seed_case):
    r = ratings(seed_case)
    # DC nameplate = cells x cell energy: 4 x 11 racks x 416 cells x 280 Ah x 3.2 V
    assert r.nameplate_dc_mwh == pytest.approx(4 * 11 * 416 * 280 * 3.2 / 1e6, rel=1e-12)
    assert r.p_ac_rated_mw == pytest.approx(4.0)
    # usable AC energy is below the nameplate: SOC window 0.9 x DC 0.975 x PCS 0.975
    assert r.usable_ac_mwh == pytest.approx(r.nameplate_dc_mwh * 0.9 * 0.975 * 0.975, rel=1e-9)
    assert r.usable_ac_mwh < r.nameplate_dc_mwh


def test_sha_changes_with_content(tmp_path, seed_case):
    p = write_variant(tmp_path, "initial_soc = 0.5", "initial_soc = 0.6")
    assert load_case(p).sha256 != seed_case.sha256


BAD = [
    # (old text, new text, key expected in the message, words expected)
    ("gpu_count = 1248", "gpu_cnt = 1248", "halls[0].gpu_cnt", "did you mean 'gpu_count'"),
    ("s_sc_max_mva = 300.0", "s_sc_max_mva = -300.0", "supply.incomers[0].s_sc_max_mva", "found -300.0"),
    ("initial_soc = 0.5", "initial_soc = 1.5", "battery.initial_soc", "found 1.5"),
    ('{ name = "BESS1", section = "A"', '{ name = "BESS1", section = "C"', "battery.containers[0].section",
     "found 'C'"),
    ("length_km = 0.20,", "length_km = 200.0,", "halls[0].feeds[0].length_km", "km"),
    ('transformer = "scb_800kva_10-0.4"', 'transformer = "scb_800kva"', "auxiliaries[0].transformer",
     "models/transformers"),
    ("seed = 20261124 ", 'seed = "abc" ', "case.seed", "whole number"),
    ("firm_import_cap_mw = 6.0", "", "supply.firm_import_cap_mw", "missing key"),
    ('name = "H2"', 'name = "H1"', "halls[1].name", "already used"),
    ('operating_points = ["training_peak"]', 'operating_points = ["peak"]', "contingency.operating_points[0]",
     "found 'peak'"),
    ("gpu_count = 1256", "gpu_count = 1255", "halls[3].gpu_count", "multiple of gpus_per_server"),
    ("battery_p_mw = -4.0", "battery_p_mw = -5.0", "operating_points[4].battery_p_mw", "+/-4 MW"),
    ('timezone = "Asia/Shanghai"', 'timezone = "Asia/Shanghia"', "site", "time zone"),
]


@pytest.mark.parametrize("old,new,key,words", BAD)
def test_bad_input_names_file_and_key(tmp_path, old, new, key, words):
    p = write_variant(tmp_path, old, new)
    with pytest.raises(CaseError) as ei:
        load_case(p)
    msg = str(ei.value)
    assert "\n" not in msg
    assert str(p) in msg
    assert key in msg, msg
    assert words in msg, msg


def test_bad_parameter_set_names_its_own_file(tmp_path):
    """A broken parameter set beside a user's case: the error names that parameter-set file and key."""
    (tmp_path / "models" / "transformers").mkdir(parents=True)
    src = (networks_dir().parent / "models" / "transformers" / "scb_2500kva_10-0.4.toml").read_text()
    (tmp_path / "models" / "transformers" / "scb_2500kva_10-0.4.toml").write_text(
        src.replace("sn_mva = 2.5", "sn_mva = -2.5"))
    p = write_variant(tmp_path, "initial_soc = 0.5", "initial_soc = 0.5")
    with pytest.raises(CaseError, match=r"scb_2500kva_10-0\.4\.toml: key 'sn_mva'.*found -2\.5"):
        load_case(p)


def test_not_toml_and_missing_file(tmp_path):
    p = tmp_path / "broken.toml"
    p.write_text("[case\nname = 1")
    with pytest.raises(CaseError, match="not valid TOML"):
        load_case(p)
    with pytest.raises(CaseError, match="no such file|not found"):
        load_case(tmp_path / "nope.toml")
    with pytest.raises(CaseError, match="no embedded case"):
        load_case("no_such_campus")


def _flat_numeric_keys(d, prefix=""):
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict):
            yield from _flat_numeric_keys(v, key)
        elif isinstance(v, int | float) and not isinstance(v, bool) and re.search(r"_(mw|mva|kv|km|kw|ohm)$", k):
            yield key


SEED = tomllib.loads((networks_dir() / "shanghai_campus.toml").read_text())
NUMERIC_KEYS = sorted(_flat_numeric_keys({k: v for k, v in SEED.items() if isinstance(v, dict)}))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(NUMERIC_KEYS), value=st.floats(max_value=-1e-3, min_value=-1e6))
def test_negative_rating_anywhere_is_rejected(tmp_path_factory, key, value):
    """Generated cases: any rating, length or power with a unit in its key set negative is named in the error."""
    import copy

    import tomli_w

    data = copy.deepcopy(SEED)
    d = data
    parts = key.split(".")
    for p in parts[:-1]:
        d = d[p]
    d[parts[-1]] = value
    path = tmp_path_factory.mktemp("neg") / "case.toml"
    path.write_text(tomli_w.dumps(data))
    with pytest.raises(CaseError) as ei:
        load_case(path)
    assert key in str(ei.value)
