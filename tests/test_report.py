"""The HTML study report: one self-contained page, numbers that match the checks, and an atomic write.

The load-flow results are real (the seed case through :func:`twin.studies.loadflow.run`). The short-circuit and
contingency Datasets are built here in the layout those studies return (fault x case x bus; outage x state x
bus/branch), with plausible values computed from the net's ratings, so that the report's handling of them is
tested whether or not those studies are present in the package.
"""

from __future__ import annotations

import json
import re
import time
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from twin.limits import Checker
from twin.report import write_html
from twin.runner import versions
from twin.studies import loadflow


@pytest.fixture(scope="module")
def lf(seed_case, seed_net):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return loadflow.run(seed_case, seed_net)


def _summary(case, results: dict) -> dict:
    """summary.json as the runner assembles it."""
    return {"case": case.name, "case_sha256": case.sha256, "versions": versions(),
            "studies": {name: r["summary"] for name, r in results.items()}}


def shortcircuit_like(case, net):
    """A Dataset shaped like the short-circuit study's (fault x case x bus) and its check rows.

    Ik'' at MV from the source's S_sc (IEC 60909 c = 1.1 at maximum, 1.0 at minimum); at LV from the
    transformer's rating and vk (infinite source), both good to some tens of %: enough to exercise the report.
    """
    b = net.bus
    s_sc = {"max": float(net.ext_grid.s_sc_max_mva.iloc[0]), "min": float(net.ext_grid.s_sc_min_mva.iloc[0])}
    c = {"max": 1.1, "min": 1.0}
    ik = np.zeros((2, 2, len(b)))
    lv_s = {tr.lv_bus: (tr.sn_mva, tr.vk_percent) for tr in net.trafo.itertuples()}
    for j, (i, row) in enumerate(b.iterrows()):
        for k, case_ in enumerate(("max", "min")):
            if i in lv_s:
                sn, vk = lv_s[i]
                i3 = c[case_] * sn / (np.sqrt(3) * row.vn_kv * vk / 100.0)
            else:
                i3 = c[case_] * s_sc[case_] / (np.sqrt(3) * row.vn_kv)
            ik[0, k, j] = i3
            ik[1, k, j] = 0.9 * i3 if i in lv_s else 0.03  # low-resistance earthed MV: small earth-fault current
    ds = xr.Dataset(
        {"ikss_ka": (("fault", "case", "bus"), ik, {"units": "kA", "long_name": "initial symmetrical current"}),
         "ip_ka": (("fault", "case", "bus"), 1.8 * np.sqrt(2) * ik, {"units": "kA", "long_name": "peak current"}),
         "ith_ka": (("fault", "case", "bus"), 1.05 * ik, {"units": "kA", "long_name": "thermal current"})},
        coords={"fault": ["3ph", "1ph"], "case": ["max", "min"], "bus": b["name"].tolist()},
        attrs={"study": "shortcircuit", "case": case.name})
    chk = Checker("shortcircuit", case.criteria.warn_margin_fraction)
    worst = ds.ikss_ka.max(("fault", "case"))
    for name, v, rating in zip(b["name"], worst.values, b.sc_breaking_ka, strict=True):
        chk.upper("max", name, "ikss_ka", float(v), float(rating), "kA", case.criteria.short_circuit.criterion_breaking)
    return ds, chk.frame()


def contingency_like(case, net, lf_ds, *, with_import: bool = True):
    """A Dataset shaped like the N-1 study's (outage x state x bus/branch) and its check rows.

    Losing an incomer drops its bus section until the bus transfer closes the coupler; afterwards the other
    incomer carries the whole campus. Any other single outage loses nothing (2N feeds).
    """
    op = case.spec.contingency.operating_points[0]
    base_import = float(lf_ds.p_import_mw.sel(operating_point=op))
    outages = [f"{inc.name}" for inc in case.spec.supply.incomers] + ["H1_TR_A", "CP_CBL_B", "BESS1_TR"]
    states = ["post_fault", "post_transfer"]
    lost = np.zeros((len(outages), 2))
    lost[0, 0] = lost[1, 0] = base_import / 2 + 2.0  # a section's share of load and battery
    imp = np.full((len(outages), 2), base_import)
    imp[:2, 0] = base_import - lost[:2, 0]
    shed = np.clip(imp - case.spec.supply.firm_import_cap_mw, 0, None)
    vm = np.broadcast_to(lf_ds.vm_pu.sel(operating_point=op).values, (len(outages), 2, lf_ds.sizes["bus"])).copy()
    vm[:2, 1] -= 0.01
    ld = np.broadcast_to(lf_ds.loading_percent.sel(operating_point=op).values,
                         (len(outages), 2, lf_ds.sizes["branch"])).copy()
    ld[:2, 1, :2] *= 2.0  # the remaining incomer carries both sections
    ds = xr.Dataset(
        {"vm_pu": (("outage", "state", "bus"), vm, {"units": "pu"}),
         "loading_percent": (("outage", "state", "branch"), ld, {"units": "%"}),
         "load_lost_mw": (("outage", "state"), lost, {"units": "MW"}),
         "load_to_shed_mw": (("outage", "state"), shed, {"units": "MW"})},
        coords={"outage": outages, "state": states, "bus": lf_ds.bus.values, "branch": lf_ds.branch.values},
        attrs={"study": "contingency", "case": case.name})
    if with_import:
        ds["p_import_mw"] = (("outage", "state"), imp, {"units": "MW"})
    chk = Checker("contingency", case.criteria.warn_margin_fraction)
    for k, o in enumerate(outages):
        chk.upper(o, "campus", "load_lost_mw", float(lost[k, 1]), 0.0, "MW", "Case rule: no load lost after transfer")
        for j, br in enumerate(ds.branch.values):
            chk.upper(o, str(br), "loading_percent", float(ld[k, 1, j]), 120.0, "%", "Case rule: emergency loading")
    return ds, chk.frame()


def _pngs(html: str) -> int:
    return len(re.findall(r'src="data:image/png;base64,[A-Za-z0-9+/=]{100,}"', html))


def test_seed_report_is_self_contained_and_matches_the_checks(tmp_path, seed_case, seed_net, lf):
    summary = _summary(seed_case, {"loadflow": {"summary": lf.summary}})
    t0 = time.perf_counter()
    path = write_html(tmp_path, seed_case, summary, lf.checks, {"loadflow": lf.dataset}, seed_net)
    elapsed = time.perf_counter() - t0
    assert path == tmp_path / "report.html" and path.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]  # no temporary file left
    html = path.read_text(encoding="utf-8")

    # self-contained: figures inline, nothing fetched from elsewhere
    assert "data:image/png;base64," in html
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert _pngs(html) == 4  # single-line diagram, voltages, import, loading

    # identity of the case
    assert seed_case.sha256 in html and seed_case.spec.site.name in html
    assert seed_case.spec.case.title.replace("&", "&amp;") in html

    # every operating point, the FAIL count as in the checks, the firm cap with its unit
    for op in seed_case.spec.operating_points:
        assert op.name in html
    n_fail, n_warn = int((lf.checks.status == "FAIL").sum()), int((lf.checks.status == "WARN").sum())
    assert n_fail > 0  # the seed case has a deliberate stress point that fails the cap
    assert f'id="total-fail">{n_fail}<' in html
    assert f"{n_fail} of {len(lf.checks)} checks FAIL and {n_warn} WARN" in html
    assert "6.0 MW firm cap" in html

    # headline figures computed from the data, with units
    imp = lf.dataset.p_import_mw
    worst_op = str(imp.operating_point[int(imp.argmax())].values)
    assert f"worst {worst_op}: {float(imp.max()):.2f} MW, {float(imp.max()) - 6.0:.2f} MW over" in html
    assert f"Lowest bus voltage {float(lf.dataset.vm_pu.min()):.3f} pu" in html
    assert f"Highest branch loading {float(lf.dataset.loading_percent.max()):.1f} %" in html

    # the FAIL/WARN table lists exactly those rows, FAIL first; the full table every row
    problems = html.split("Checks that FAIL or WARN")[1].split("<details>")[0]
    cells = re.findall(r'<td class="(FAIL|WARN)">', problems)
    assert cells == ["FAIL"] * n_fail + ["WARN"] * n_warn
    full = html.split("<summary>All")[1]
    assert full.count("<tr><td>loadflow</td>") == len(lf.checks)
    assert elapsed < 30  # about 1 s here; a generous bound against pathological slowness


def test_report_with_shortcircuit_and_contingency(tmp_path, seed_case, seed_net, lf):
    sc, sc_checks = shortcircuit_like(seed_case, seed_net)
    ct, ct_checks = contingency_like(seed_case, seed_net, lf.dataset)
    checks = pd.concat([lf.checks, sc_checks, ct_checks], ignore_index=True)
    summary = _summary(seed_case, {"loadflow": {"summary": lf.summary},
                                   "shortcircuit": {"summary": {"checks": len(sc_checks)}},
                                   "contingency": {"summary": {"checks": len(ct_checks)}}})
    html = write_html(tmp_path, seed_case, summary, checks,
                      {"loadflow": lf.dataset, "shortcircuit": sc, "contingency": ct}, seed_net).read_text()
    assert _pngs(html) == 6
    assert "Short-circuit currents against breaking ratings" in html and "N-1 contingencies" in html
    assert f'id="total-fail">{int((checks.status == "FAIL").sum())}<' in html
    # the largest Ik'' and the smallest breaking margin, from the data
    ik = sc.ikss_ka.max(("fault", "case"))
    assert f"Highest initial short-circuit current Ik&#39;&#39; {float(ik.max()):.2f} kA" in html
    margin = seed_net.bus.sc_breaking_ka.to_numpy() - ik.values
    k = int(np.argmin(margin))
    assert f"Smallest breaking-current margin at {seed_net.bus.name.iloc[k]}" in html
    # N-1: load lost per state, and the import after the outage against the cap
    assert f"post_fault: {float(ct.load_lost_mw.max()):.2f} MW (outage INC_A)" in html
    assert "post_transfer: none" in html
    assert f"N-1: highest grid import {float(ct.p_import_mw.max()):.2f} MW" in html
    # one row per study in the overview, counts from the checks
    for study, frame in (("shortcircuit", sc_checks), ("contingency", ct_checks)):
        assert f"<td>{study}</td><td class=\"num\">{len(frame)}</td>" in html


def test_report_draws_only_what_exists(tmp_path, seed_case, seed_net, lf):
    """Missing studies and missing variables leave their figures and findings out, nothing else."""
    ct, _ = contingency_like(seed_case, seed_net, lf.dataset, with_import=False)
    sc = xr.Dataset({"ip_ka": (("bus",), np.ones(lf.dataset.sizes["bus"]))}, coords={"bus": lf.dataset.bus.values})
    lf_ds = lf.dataset.drop_vars(["loading_percent", "pf_poc"])
    lf_ds["p_import_mw"] = lf_ds.p_import_mw * np.nan  # as if no operating point had converged
    html = write_html(tmp_path, seed_case, _summary(seed_case, {"loadflow": {"summary": lf.summary}}),
                      lf.checks, {"loadflow": lf_ds, "shortcircuit": sc, "contingency": ct}, seed_net).read_text()
    assert _pngs(html) == 3  # single-line, voltages, N-1 (no import, no loading, no Ik'')
    assert "Branch loading" not in html and "Short-circuit currents" not in html
    assert "Grid import per operating point" not in html and "Operating points</h3>" not in html
    assert "loadflow: p_import_mw has no finite value" in html  # said, not silently dropped
    assert "N-1: highest grid import" not in html and "N-1 contingencies" in html

    # no studies at all: still a valid page with the diagram
    empty = write_html(tmp_path, seed_case, {}, pd.DataFrame(), {}, seed_net).read_text()
    assert _pngs(empty) == 1 and "No limit checks were run." in empty


def test_failure_midway_leaves_no_report(tmp_path, seed_case, seed_net, lf):
    broken = lf.dataset.copy()
    broken["vm_pu"] = xr.full_like(broken.vm_pu, "not a number", dtype=object)
    summary = _summary(seed_case, {"loadflow": {"summary": lf.summary}})
    with pytest.raises(ValueError, match="'vm_pu' of the loadflow Dataset"):
        write_html(tmp_path, seed_case, summary, lf.checks, {"loadflow": broken}, seed_net)
    assert list(tmp_path.iterdir()) == []

    # a report from an earlier run stays as it was
    old = tmp_path / "report.html"
    old.write_text("earlier report")
    with pytest.raises(ValueError):
        write_html(tmp_path, seed_case, summary, lf.checks, {"loadflow": broken}, seed_net)
    assert old.read_text() == "earlier report" and list(tmp_path.iterdir()) == [old]


def test_text_is_escaped(tmp_path, seed_case, seed_net, lf):
    row = lf.checks.iloc[[0]].assign(element="<script>alert(1)</script>", status="FAIL", margin=-1.0)
    checks = pd.concat([lf.checks, row], ignore_index=True)
    html = write_html(tmp_path, seed_case, {}, checks, {"loadflow": lf.dataset}, seed_net).read_text()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert f'id="total-fail">{int((checks.status == "FAIL").sum())}<' in html


def test_timeseries_section(tmp_path, seed_case, seed_net, lf):
    """The year-in-the-loop section: one part per load scenario with the headline figures of summary.json in
    words and in a table (every value with its unit), the monthly bills recomputed from the Dataset matching the
    study's, three figures each; and a year at 1-minute steps renders in seconds (figures reduced first)."""
    from twin.runner import _jsonable
    from twin.studies import timeseries as ts

    case = ts.with_options(seed_case, period="2025-07-01/2025-07-04", resolution="15min")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = ts.run(case, seed_net, progress=False)
    results = [res, *res.extra]
    assert [r.name for r in results] == ["timeseries", "timeseries_sustained_training"]
    checks = pd.concat([lf.checks, *(r.checks for r in results)], ignore_index=True)
    summary = _summary(seed_case, {"loadflow": {"summary": lf.summary},
                                   **{r.name: {"summary": r.summary} for r in results}})
    summary = json.loads(json.dumps(_jsonable(summary), allow_nan=False))  # as summary.json holds it: NaN -> null
    datasets = {"loadflow": lf.dataset, **{r.name: r.dataset for r in results}}
    html = write_html(tmp_path, seed_case, summary, checks, datasets, seed_net).read_text()
    assert _pngs(html) == 4 + 3 * len(results)  # loadflow's four, then worst week, duration curve, bills per scenario
    section = html.split('<h2 id="timeseries">')[1].split("<h2 ")[0]
    parts = section.split("<h3 id=\"ts-")[1:]
    assert [p.split('"')[0] for p in parts] == ["timeseries", "timeseries_sustained_training"]
    for part, r in zip(parts, results, strict=True):
        s = r.summary
        assert f"Scenario {s['scenario']}</h3>" in part
        # the cap in words, from the key figures
        if s["cap_exceeded_minutes"] > 0:
            assert (f"exceeds the 6.0 MW firm cap for {s['cap_exceeded_minutes']:,.0f} min "
                    f"({s['cap_exceeded_energy_mwh']:.2f} MWh above it") in part
            k = s["cap_exceeded_15min_intervals"]
            assert f"above the cap in {k:,} interval{'s' if k != 1 else ''}" in part
        else:
            assert "stays under the 6.0 MW firm cap at every step" in part
        assert f"IT load shed (GPU power capping): {s['shed_energy_mwh']:.2f} MWh" in part
        # the bill and its split, the claims, the hot spot, the energy balance
        assert (f"{s['annual_cost_cny']:,.0f} CNY with the battery, {s['annual_cost_without_battery_cny']:,.0f} CNY "
                f"without it: the battery {'saves' if s['annual_savings_cny'] >= 0 else 'costs'} "
                f"{abs(s['annual_savings_cny']):,.0f} CNY{'' if s['annual_savings_cny'] >= 0 else ' more'} "
                f"(time-of-use arbitrage {s['savings_arbitrage_cny']:,.0f} CNY, maximum-demand charge "
                f"{s['savings_demand_cny']:,.0f} CNY") in part
        assert f"{s['claim_arbitrage_cny_per_year']:,.0f} CNY a year" in part
        assert f"{s['claim_2mw_4h_events_held']:,} of {s['claim_2mw_4h_events']:,} events" in part
        assert f"hottest transformer winding {s['transformer_hotspot_max_degc']:.1f} degC" in part
        assert "Energy balance over the period" in part and "loss iteration" in part
        # the key-figure table: every value carries a unit (dimensionless ones say so in the label)
        table = part.split('<table class="ts-figures">')[1].split("</table>")[0]
        cells = re.findall(r"<tr><td>([^<]*)</td><td class=\"num\">([^<]*)</td>", table)
        assert len(cells) >= 30
        units = r"(MW|MWh|min|%|degC|d|s|CNY|CNY/year|cycles|cycles/year|events|intervals|steps)"
        for label, value in cells:
            assert re.fullmatch(rf"-?[\d,.]+(e[-+]\d+)? {units}", value) or value == "n/a" or (
                "(0-1)" in label and re.fullmatch(r"[\d.]+", value)), (label, value)
        assert f"<td>Highest grid import</td><td class=\"num\">{s['grid_import_max_mw']:.2f} MW</td>" in table
        # the monthly bills are recomputed from the Dataset with the tariff: the with-battery total is the study's
        assert f"totals {s['annual_cost_cny']:,.0f} CNY with the battery" in part
        assert "Worst week (" in part and "Grid import duration curve" in part
    # the headline findings name each scenario's cap result, with the status of its checks
    head = html.split("Headline findings")[1].split("</ul>")[0]
    for r in results:
        st = r.checks[r.checks.quantity.isin(["grid_import_max_mw", "cap_exceeded_minutes", "demand_15min_max_mw"])]
        worst = "FAIL" if (st.status == "FAIL").any() else ("WARN" if (st.status == "WARN").any() else "PASS")
        assert re.search(rf'badge {worst}">{worst}</span>Year in the loop, {r.summary["scenario"]} scenario', head)

    # a year at 1-minute steps (the short run's values repeated): the figures are reduced before drawing
    ds = results[0].dataset
    n = 525_600
    t_year = pd.date_range("2024-12-31 16:00", periods=n, freq="1min")  # 2025 in Shanghai, as UTC
    keep = [v for v in ds.data_vars if ds[v].dims == ("time",)] + ["soc_container", "q_container_mvar"]
    year = xr.Dataset({v: (ds[v].dims, np.resize(ds[v].values, (n,) + ds[v].shape[1:])) for v in keep},
                      coords={"time": t_year, "container": ds.container.values},
                      attrs={**ds.attrs, "resolution_s": 60.0})
    big = {**results[0].summary, "period_start": "2025-01-01 00:00:00+08:00",
           "period_end": "2026-01-01 00:00:00+08:00", "steps": n, "resolution_s": 60.0}
    t0 = time.perf_counter()
    html = write_html(tmp_path, seed_case, _summary(seed_case, {"timeseries": {"summary": big}}),
                      results[0].checks, {"timeseries": year}, seed_net).read_text()
    elapsed = time.perf_counter() - t0
    print(f"report of a year at 1 min: {elapsed:.1f} s")
    assert _pngs(html) == 1 + 3 and "(12 months)" in html  # the diagram and the three timeseries figures
    assert elapsed < 60  # about 5 s here on a quiet machine
