"""The report's utility-dips (ridethrough) and power-swing (swing) sections, from a real run (the seed case through
the runner, once, about 25 s); every test here reuses it and renders variants of its summary and Datasets with
:func:`twin.report.render_html`.
"""

from __future__ import annotations

import copy
import json
import re

import pandas as pd
import pytest
import xarray as xr

from twin.report import render_html
from twin.runner import run_case

_STATUS_ORDER = {"FAIL": 0, "WARN": 1, "PASS": 2, "INFO": 3}


@pytest.fixture(scope="module")
def run(tmp_path_factory, seed_case):
    out = tmp_path_factory.mktemp("dips_swings")
    run_case(seed_case, ["ridethrough", "swing"], out, progress=False)
    summary = json.loads((out / "summary.json").read_text())
    checks = pd.read_csv(out / "checks.csv")
    ds = {}
    for name in ("ridethrough", "swing"):
        with xr.open_dataset(out / f"{name}.nc") as d:
            ds[name] = d.load()
    return {"html": (out / "report.html").read_text(encoding="utf-8"), "summary": summary, "checks": checks,
            "ds": ds}


def _pngs(html: str) -> int:
    return len(re.findall(r'src="data:image/png;base64,[A-Za-z0-9+/=]{100,}"', html))


def _section(html: str, sid: str) -> str:
    assert html.count(f'<h2 id="{sid}">') == 1
    return html.split(f'<h2 id="{sid}">')[1].split("<h2 ")[0]


def _text(html: str) -> str:
    """Visible text: tags dropped, entities of quotes undone."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&#39;", "'").replace("&amp;", "&")


def _worst(checks: pd.DataFrame, study: str, quantities: list[str], scenario=None) -> str:
    rows = checks[(checks.study == study) & checks.quantity.isin(quantities)]
    if scenario is not None:
        rows = rows[rows.scenario.map(scenario)]
    return min(rows.status, key=_STATUS_ORDER.get)


def test_ridethrough_section_from_a_real_run(run):
    s = run["summary"]["studies"]["ridethrough"]
    ds = run["ds"]["ridethrough"]
    checks = run["checks"]
    sec = _section(run["html"], "ridethrough")
    text = _text(sec)
    # method and validity
    assert "RMS simulation (twin.transient.sim)" in text
    assert f"Validity of the simulator: {ds.attrs['validity']}." in text
    # the finding, with the badge of the study's own checks
    claim = "Finding 'the campus rides through utility voltage dips with nothing lost'"
    held = s["load_lost_mw_worst"] <= 1e-6
    assert f"{claim}: {'held' if held else 'NOT held'}." in text
    st = _worst(checks, "ridethrough", ["worst load lost over the dip map"])
    assert re.search(rf'<span class="badge {st}">{st}</span>{re.escape(claim)}', sec.replace("&#39;", "'"))
    if not held:
        assert f"Up to {s['load_lost_mw_worst']:.2f} MW of load is lost" in text
    assert (f"Of the {s['dips']} dips of the map, {s['dips_rides_through']} ride through, "
            f"{s['dips_transfers_to_battery']} transfer to the battery, {s['dips_load_lost']} lose load.") in text
    # the Virginia-like sequence, the LVRT, the transfer logic
    assert f"the grid loses {s['virginia_sequence_load_lost_mw']:.2f} MW of load" in text
    assert f"transfers to its battery {s['virginia_transfers']} time(s)" in text
    st = _worst(checks, "ridethrough", ["load the grid loses"], lambda x: x == "Virginia sequence")
    assert f'<span class="badge {st}">{st}</span>Sequence of dips:' in sec
    assert "PCS low-voltage ride-through" in text
    if not s["pcs_lvrt_pass"]:
        assert f"on {s['lvrt_violations']} dip(s) of the map (LVRT violations)" in text
    assert "transfer logic (data: models/dynamics [transfer]" in text
    assert "decides how much load the grid loses" in text
    assert ds.attrs["transfer_logic"] in text
    # key figures with units
    for key, want in (("load_lost_mw_worst", f"{s['load_lost_mw_worst']:.2f} MW"),
                      ("grid_lost_mw_worst", f"{s['grid_lost_mw_worst']:.2f} MW"),
                      ("virginia_sequence_load_lost_mw", f"{s['virginia_sequence_load_lost_mw']:.2f} MW"),
                      ("virginia_servers_lost_mw", f"{s['virginia_servers_lost_mw']:.2f} MW"),
                      ("virginia_transfers", str(s["virginia_transfers"])),
                      ("virginia_locked_out", "yes" if s["virginia_locked_out"] else "no"),
                      ("pcs_lvrt_pass", "pass" if s["pcs_lvrt_pass"] else "fail"),
                      ("lvrt_violations", str(s["lvrt_violations"])),
                      ("dips_rides_through", str(s["dips_rides_through"])),
                      ("dips_transfers_to_battery", str(s["dips_transfers_to_battery"])),
                      ("dips_load_lost", str(s["dips_load_lost"]))):
        assert f"{want} {key}" in text, key
    # one outcome map per dip type, with the LVRT curve; the sequence
    kinds = [str(k) for k in ds.dip_type.values]
    assert _pngs(sec) == len(kinds) + 1
    assert text.count("Dashed: the PCS's LVRT curve") == len(kinds)
    assert "A Virginia-like sequence of dips" in text
    # in the headline findings too, and no generic 'tightest check' line for the study
    head = _text(run["html"].split("Headline findings")[1].split("<h2")[0])
    assert "Utility dips: Finding 'the campus rides through utility voltage dips" in head
    assert "ridethrough: tightest check" not in head


def test_swing_section_from_a_real_run(run):
    s = run["summary"]["studies"]["swing"]
    ds = run["ds"]["swing"]
    checks = run["checks"]
    sec = _section(run["html"], "swing")
    text = _text(sec)
    assert "IEC 61000-4-15" in text and "Validity: quasi-static network" in text
    # the limits, without and with smoothing, in words with the checks' badges
    for suffix, label, pred in (("", "without smoothing", lambda x: not x.endswith("battery smoothing")),
                                ("_with_smoothing", "with battery smoothing", lambda x: x.endswith("battery smoothing"))):
        st = _worst(checks, "swing", ["Plt", "ramp rate", "oscillation amplitude 0.05-5 Hz"], pred)
        assert re.search(rf'<span class="badge {st}">{st}</span>[^<]*At the point of connection {label}', sec)
        for name, key, lim, unit, fmt in (("Plt", "plt_max", "plt_limit", "", "{:.3f}"),
                                          ("ramp rate", "ramp_max_mw_per_s", "ramp_limit_mw_per_s", " MW/s", "{:.2f}"),
                                          ("oscillation", "oscillation_max_mw", "oscillation_limit_mw", " MW", "{:.2f}")):
            holds = s[key + suffix] <= s[lim]
            assert (f"{name} {fmt.format(s[key + suffix])}{unit} against {fmt.format(s[lim])}{unit} "
                    f"({'holds' if holds else 'exceeded'})") in text, (name, label)
    broken = s["ramp_max_mw_per_s"] > s["ramp_limit_mw_per_s"] or s["oscillation_max_mw"] > s["oscillation_limit_mw"] \
        or s["plt_max"] > s["plt_limit"]
    assert (f"Finding 'the training load is a steady load at the point of connection': "
            f"{'NOT held' if broken else 'held'}.") in text
    # smoothing needs PCS headroom the EMS keeps free from its cap-holding dispatch
    assert (f"within the {s['smoothing_headroom_mw']:.2f} MW of PCS power the EMS keeps free from its cap-holding "
            f"dispatch") in text
    st = _worst(checks, "swing", ["smoothing power"])
    assert f'<span class="badge {st}">{st}</span>Smoothing needs PCS headroom' in sec
    # key figures with units
    for key, want in (("swing_mw", f"{s['swing_mw']:.2f} MW"), ("pst_max", f"{s['pst_max']:.3f}"),
                      ("plt_max", f"{s['plt_max']:.3f}"), ("ramp_max_mw_per_s", f"{s['ramp_max_mw_per_s']:.2f} MW/s"),
                      ("oscillation_max_mw", f"{s['oscillation_max_mw']:.2f} MW"),
                      ("pst_max_with_smoothing", f"{s['pst_max_with_smoothing']:.3f}"),
                      ("ramp_max_mw_per_s_with_smoothing", f"{s['ramp_max_mw_per_s_with_smoothing']:.2f} MW/s"),
                      ("oscillation_max_mw_with_smoothing", f"{s['oscillation_max_mw_with_smoothing']:.2f} MW"),
                      ("smoothing_headroom_mw", f"{s['smoothing_headroom_mw']:.2f} MW"),
                      ("plt_limit", f"{s['plt_limit']:.3f}"),
                      ("ramp_limit_mw_per_s", f"{s['ramp_limit_mw_per_s']:.2f} MW/s"),
                      ("oscillation_limit_mw", f"{s['oscillation_limit_mw']:.2f} MW")):
        assert f"{want} {key}" in text, key
    # one row per swing case, Pst / ramp / oscillation without and with smoothing
    table = sec.split('<table class="swing-cases">')[1].split("</table>")[0]
    cases = [str(c) for c in ds.swing_case.values]
    assert table.count("<tr>") == len(cases) + 1
    for i, c in enumerate(cases):
        row = _text(table.split(f"<td>{c}</td>")[1].split("</tr>")[0]).split()
        assert row[0] == f"{float(ds.pst_without.values[i]):.3f}" and row[1] == f"{float(ds.pst_with.values[i]):.3f}"
        assert row[4] == f"{float(ds.oscillation_mw_without.values[i]):.2f}"
    # two figures: an oscillation case and the job's start and stop
    assert _pngs(sec) == 2
    assert "Training job start and stop at the point of connection" in text
    assert re.search(r"Training oscillation \(oscillation_[0-9.]+s\): 60 s at the point of connection", text)
    head = _text(run["html"].split("Headline findings")[1].split("<h2")[0])
    assert "Power swings: Finding 'the training load is a steady load" in head
    assert "swing: tightest check" not in head


def test_sections_absent_or_partial(run, seed_case, seed_net):
    summary, checks, ds = run["summary"], run["checks"], run["ds"]
    # both studies absent
    html = render_html(seed_case, {**summary, "studies": {}}, checks.iloc[0:0], {}, seed_net)
    assert 'id="ridethrough"' not in html and 'id="swing"' not in html
    # summaries only (no Datasets): sections in words, no figures
    html = render_html(seed_case, summary, checks, {}, seed_net)
    for sid in ("ridethrough", "swing"):
        assert _pngs(_section(html, sid)) == 0
    # Datasets lacking variables, summaries lacking keys (a study that changed shape)
    s2 = copy.deepcopy(summary)
    for k in ("virginia_locked_out", "pcs_lvrt_pass", "lvrt_violations", "dips", "dips_transfers_to_battery"):
        s2["studies"]["ridethrough"].pop(k, None)
    for k in ("smoothing_headroom_mw", "oscillation_max_mw_with_smoothing", "plt_limit"):
        s2["studies"]["swing"].pop(k, None)
    rt = ds["ridethrough"].drop_vars(["outcome", "virginia_islanded", "virginia_it_served_mw"])
    rt.attrs.pop("transfer_logic", None)
    sw = ds["swing"].drop_vars(["p_poc_mw_with", "battery_p_mw", "pst_with", "ramp_mw_per_s_without"])
    html = render_html(seed_case, s2, checks, {"ridethrough": rt, "swing": sw}, seed_net)
    rs, ss = _section(html, "ridethrough"), _section(html, "swing")
    assert _pngs(rs) == 1  # the sequence; no outcome maps without the outcome
    assert _pngs(ss) == 2
    assert "PCS low-voltage ride-through" not in _text(rs)
    assert "decides how much load the grid loses" in _text(rs)
    assert "Smoothing needs PCS headroom" not in _text(ss)
    # a third dip type (type B) in the map
    b = ds["ridethrough"].sel(dip_type=[str(ds["ridethrough"].dip_type.values[0])]).assign_coords(dip_type=["B"])
    rt3 = xr.concat([ds["ridethrough"].drop_sel(dip_type="B", errors="ignore"), b], dim="dip_type",
                    data_vars="minimal")
    html = render_html(seed_case, summary, checks, {"ridethrough": rt3, "swing": ds["swing"]}, seed_net)
    rs = _section(html, "ridethrough")
    assert "Outcome of single-phase (type B at 10 kV) dips" in _text(rs)
    assert _pngs(rs) == rt3.sizes["dip_type"] + 1
