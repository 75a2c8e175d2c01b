"""The report's loss-of-mains section, from a real switchover run (the seed case through the runner, once).

The run takes about 30 s; every test here reuses it (``twin run`` writes summary.json, checks.csv, switchover.nc and
report.html) and renders variants of its summary and Dataset with :func:`twin.report.render_html`.
"""

from __future__ import annotations

import copy
import json
import re

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from twin.report import render_html
from twin.runner import run_case


@pytest.fixture(scope="module")
def run(tmp_path_factory, seed_case):
    out = tmp_path_factory.mktemp("switchover")
    run_case(seed_case, ["switchover"], out, progress=False)
    summary = json.loads((out / "summary.json").read_text())
    checks = pd.read_csv(out / "checks.csv")
    with xr.open_dataset(out / "switchover.nc") as ds:
        ds = ds.load()
    return {"out": out, "html": (out / "report.html").read_text(encoding="utf-8"), "summary": summary,
            "checks": checks, "ds": ds}


def _pngs(html: str) -> int:
    return len(re.findall(r'src="data:image/png;base64,[A-Za-z0-9+/=]{100,}"', html))


def _section(html: str) -> str:
    assert html.count('<h2 id="switchover">') == 1
    return html.split('<h2 id="switchover">')[1].split("<h2 ")[0]


def _text(html: str) -> str:
    """Visible text: tags dropped, entities of quotes undone."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&#39;", "'").replace("&amp;", "&")


def _mw(v) -> str:
    return f"{v:.2f} MW"


def test_switchover_section_from_a_real_run(run, seed_case):
    s = run["summary"]["studies"]["switchover"]
    html = run["html"]
    sec = _section(html)
    text = _text(sec)
    # the simulator's validity, stated
    assert f"Validity of the simulator: {s['validity']}." in text
    # the claim, checked against the key figures
    claim = "Seed claim 'millisecond-class seamless switchover on loss of mains'"
    assert claim in text
    if s["island_survives_without_shedding"]:
        assert f"{claim}: held." in text
    else:
        assert f"{claim}: NOT held." in text
        assert f"up to {_mw(s['load_lost_mw'])} of load is lost" in text
        assert (f"the island picks up with nothing lost is {_mw(s['max_island_pickup_mw'])}, against the design "
                f"campus load {_mw(s['design_campus_load_mw'])} ({s['design_operating_point']})") in text
        if s["shedding_needed_mw"] is not None:
            assert (f"needs {_mw(s['shedding_needed_mw'])} of IT load shed (GPU power capping) within "
                    f"{s['shedding_max_delay_ms']:.4g} ms of the loss of mains") in text
        else:
            assert "No shedding at any action delay studied saves the island" in text
        for op, r in s["per_operating_point"].items():
            assert f"{op} {_mw(r['load_lost_mw'])}" in text
    # island fault against the short-time trip, bus transfer, return to grid
    assert (f"draws {s['island_fault_current_ka']:.2f} kA (grid-connected: {s['grid_fault_current_ka']:.2f} kA) "
            f"against the LV incomer's short-time trip Isd {s['lv_short_time_trip_ka']:.2f} kA") in text
    assert ("the protection still clears faults" in text) == s["island_fault_cleared"]
    assert "Bus transfer (one incomer lost" in text
    assert f"load lost {_mw(s['bus_transfer_load_lost_mw'])} (motors and drives)" in text
    assert ("must act to ride the servers through" in text) == s["bus_transfer_battery_must_act"]
    if s["resync_closed_after_s"] is not None:
        assert f"closes on synchro-check {s['resync_closed_after_s']:.2f} s after the grid returns" in text

    # the key-figure table: every value with its unit, or a word
    table = sec.split('<table class="sw-figures">')[1].split("</table>")[0]
    cells = re.findall(r"<tr><td>([^<]*)</td><td class=\"num\">([^<]*)</td><td><code>([^<]*)</code>", table)
    assert len(cells) >= 24 + len(s["shedding_by_delay_mw"])
    for label, value, key in cells:
        assert (re.fullmatch(r"-?[\d.]+(e[-+]\d+)? (MW|ms|s|kA|pu)", value)
                or value in ("yes", "no", "pass", "fail", "n/a", "none saves the island")
                or key == "design_operating_point"), (label, value)
    keys = {k: v for _, v, k in cells}
    assert keys["max_island_pickup_mw"] == _mw(s["max_island_pickup_mw"])
    assert keys["lv_short_time_trip_ka"] == f"{s['lv_short_time_trip_ka']:.2f} kA"
    assert keys["island_survives_without_shedding"] == ("yes" if s["island_survives_without_shedding"] else "no")
    for d, mw in s["shedding_by_delay_mw"].items():
        assert keys[f"shedding_by_delay_mw.{d}"] == ("none saves the island" if mw is None else _mw(mw))
    # one row per operating point
    points = sec.split('<table class="sw-points">')[1].split("</table>")[0]
    for op in s["operating_points"]:
        assert f"<tr><td>{op}</td>" in points

    # figures: loss of mains at the design point, shedding vs delay, bus transfer, return to grid
    n_fig = 3 + int(np.isfinite(run["ds"].shed_needed_mw.values).any())
    assert _pngs(sec) == n_fig
    assert f"Loss of mains at {s['design_operating_point']}: the first 0.5 s" in sec
    assert "Bus transfer on the loss of one incomer" in sec and "Return to grid</h3>" in sec
    # the headline names the claim with the status of the load-lost checks; the overview counts the study's rows
    head = html.split("Headline findings")[1].split("</ul>")[0]
    ch = run["checks"]
    lost = ch[(ch.study == "switchover") & (ch.quantity == "load lost")]
    worst = "FAIL" if (lost.status == "FAIL").any() else ("WARN" if (lost.status == "WARN").any() else "PASS")
    assert re.search(rf'badge {worst}">{worst}</span>Loss of mains: Seed claim', head)
    assert f'<td>switchover</td><td class="num">{s["checks"]}</td>' in html
    assert re.search(r'src="(https?:)?//', html) is None


def test_switchover_section_variants(run, seed_case, seed_net):
    """The claim held; no shedding that helps (the shedding figure left out, said so); no Dataset (words and the
    table, no figures); no switchover study at all (no section, the page still renders)."""
    summary, checks, ds = run["summary"], run["checks"], run["ds"]

    held = copy.deepcopy(summary)
    sw = held["studies"]["switchover"]
    sw.update(island_survives_without_shedding=True, shedding_needed_mw=None, shedding_max_delay_ms=None,
              shedding_by_delay_mw={k: None for k in sw["shedding_by_delay_mw"]})
    no_shed = ds.assign(shed_needed_mw=ds.shed_needed_mw * np.nan)
    html = render_html(seed_case, held, checks[checks.quantity != "load lost"], {"switchover": no_shed}, seed_net)
    text = _text(_section(html))
    assert "seamless switchover on loss of mains': held." in text
    assert "Shedding that keeps the island alive" not in html
    assert "switchover: shed_needed_mw has no finite value" in html
    assert _pngs(_section(html)) == 3

    nothing = copy.deepcopy(summary)
    nothing["studies"]["switchover"].update(island_survives_without_shedding=False, shedding_needed_mw=None)
    html = render_html(seed_case, nothing, checks, {}, seed_net)
    text = _text(_section(html))
    assert "NOT held." in text and "No shedding at any action delay studied saves the island" in text
    assert _pngs(_section(html)) == 0 and "Key figures, loss of mains" in html

    html = render_html(seed_case, {"studies": {}}, pd.DataFrame(), {}, seed_net)
    assert 'id="switchover"' not in html and "seamless switchover" not in html
    assert _pngs(html) == 1  # the single-line diagram
