"""The study report: one self-contained HTML page for a power engineer reviewing a grid-connection study.

:func:`write_html` writes ``report.html`` into a run's output folder from what the runner already holds: the case,
``summary.json``, the check rows (``checks.csv``), each study's Dataset and the pandapower net. The page has the
case identity (title, site, SHA-256, library versions), an overview of PASS/WARN/FAIL per study, the headline
findings in words (grid import against the firm cap, worst voltage, worst loading, short-circuit margin, N-1 load
lost), the single-line diagram, result figures, the battery study's section, the year in the loop (the
timeseries study: per load scenario, findings in words, a table of key figures with units, the worst week, the import
duration curve and the monthly bills with and without the battery), the loss of mains (the switchover study: the
simulator's validity, the seed's claim of a seamless switchover checked, the bus transfer, island fault and return to
grid in words, key figures with units, one row per operating point, the first 0.5 s after the loss of mains, shedding
against its action delay, the bus transfer and the return to grid), the utility voltage dips (the ridethrough
study: the finding checked, an outcome map per dip type with the PCS's LVRT curve, the Virginia-like sequence, the
transfer logic, key figures), the power swings (the swing study: Plt, ramp and oscillation against their limits
without and with battery smoothing, the PCS headroom smoothing needs, one row per swing case, an oscillation and a job
start and stop over time), the FAIL and WARN rows and, folded away, every check row. A year at 1-minute steps (525,600 steps) is reduced before it is drawn (block maxima and means of the
worst week, a duration curve sampled at 2,000 points, monthly bills), so the page takes seconds, not minutes.
:func:`render_html` returns the same page as a string (for a notebook: ``IPython.display.HTML``).

Figures are drawn on :class:`matplotlib.figure.Figure` objects rendered by the Agg canvas and embedded as base64
PNG: no pyplot state is touched (a notebook's backend is left alone) and the page needs no other file. Each
figure is drawn only from the variables that exist, so a study that is absent or that lacks a variable leaves its
figure out; a variable that exists but holds no numbers is an error (:class:`ValueError`) and nothing is written.
The page is written atomically (a temporary file in ``out_dir``, then :func:`os.replace`), as DESIGN.md asks.
"""

from __future__ import annotations

import base64
import io
import math
import os
import tempfile
import warnings
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["write_html", "render_html"]

_STATUS_ORDER = {"FAIL": 0, "WARN": 1, "PASS": 2, "INFO": 3}
# decimals shown per unit; anything else gets 4 significant digits
_DECIMALS = {"MW": 2, "Mvar": 2, "MVA": 2, "MWh": 2, "pu": 3, "%": 1, "kA": 2, "kV": 2, "s": 2, "-": 3, "1": 3,
             "degC": 1, "degree": 2, "MW/s": 2, "MWh/h": 2}
# unit from the suffix of a summary.json key
_SUFFIX_UNITS = {"_mw_per_s": "MW/s", "_mwh_per_h": "MWh/h", "_mw": "MW", "_mvar": "Mvar", "_mva": "MVA", "_mwh": "MWh", "_pu": "pu", "_percent": "%",
                 "_ka": "kA", "_kv": "kV", "_s": "s", "_degc": "degC", "_h": "h"}
_QUANTITY_WORDS = {"vm_pu": "bus voltage", "loading_percent": "loading", "p_import_mw": "grid import",
                   "power_factor": "power factor", "ikss_ka": "Ik''", "ip_ka": "peak current ip",
                   "ith_ka": "thermal equivalent current Ith", "load_lost_mw": "load lost",
                   "load_to_shed_mw": "load to shed"}
_DPI = 100


# --------------------------------------------------------------------------------------------------------------
# public API


def write_html(out_dir: Path, case, summary: dict, checks: pd.DataFrame, datasets: dict[str, xr.Dataset],
               net) -> Path:
    """Write the study report ``out_dir/report.html`` atomically.

    Parameters
    ----------
    out_dir : Path
        Output folder of the run (must exist).
    case : twin.case.Case
        The study case.
    summary : dict
        Content of ``summary.json``: ``{"case", "case_sha256", "versions", "studies": {name: key figures}}``.
    checks : pandas.DataFrame
        All check rows (:data:`twin.limits.COLUMNS`).
    datasets : dict of str to xarray.Dataset
        Study name to its result Dataset; studies that did not run are simply absent.
    net : pandapowerNet
        The net from :func:`twin.network.build_net` (topology, ratings and diagram coordinates; no results needed).

    Returns
    -------
    Path
        The written ``report.html``.

    Raises
    ------
    ValueError
        If a result variable the report draws holds no numbers; nothing is written then.
    """
    out_dir = Path(out_dir)
    html = render_html(case, summary, checks, datasets, net)  # everything that can fail happens before writing
    path = out_dir / "report.html"
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-report-", suffix=".html", dir=out_dir)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(html)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a report is for reading
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def render_html(case, summary: dict, checks: pd.DataFrame, datasets: dict[str, xr.Dataset], net) -> str:
    """The report page as a string; see :func:`write_html` for the parameters."""
    import jinja2

    checks = _normalise_checks(checks)
    datasets = dict(datasets or {})
    summary = summary or {}
    crit = case.criteria
    cap = _firm_cap(case, datasets.get("loadflow"))
    warn_frac = float(crit.warn_margin_fraction)

    overview, totals = _overview(summary, checks, datasets)
    overall = _overall(totals)
    findings = _findings(case, checks, datasets, net, cap, warn_frac, summary.get("studies") or {})
    battery = _battery_section(case, checks, datasets.get("battery"), (summary.get("studies") or {}).get("battery"),
                               cap, warn_frac)
    timeseries = _timeseries_section(case, checks, datasets, summary.get("studies") or {}, cap)
    switchover = _switchover_section(case, checks, datasets.get("switchover"),
                                     (summary.get("studies") or {}).get("switchover"))
    ridethrough = _ridethrough_section(case, checks, datasets.get("ridethrough"),
                                       (summary.get("studies") or {}).get("ridethrough"))
    swing = _swing_section(case, checks, datasets.get("swing"), (summary.get("studies") or {}).get("swing"))
    sld = _sld_figure(net, datasets.get("loadflow"))
    figures = [f for f in (_voltage_figure(case, datasets.get("loadflow")),
                           _import_figure(datasets.get("loadflow"), cap),
                           _loading_figure(case, datasets.get("loadflow")),
                           _shortcircuit_figure(datasets.get("shortcircuit"), net),
                           _contingency_figure(datasets.get("contingency"), cap),
                           *_drivers_figures(case, datasets.get("drivers"), cap)) if f is not None]

    problems = checks[checks.status.isin(["FAIL", "WARN"])].copy()
    problems["_order"] = problems.status.map(_STATUS_ORDER)
    problems["_rel"] = _relative_margin(problems)
    problems = problems.sort_values(["_order", "_rel"], na_position="first", kind="stable")

    site = case.spec.site
    tz = ZoneInfo(site.timezone)
    versions = summary.get("versions") or {}
    env = jinja2.Environment(loader=jinja2.PackageLoader("twin", "templates"), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    ctx = dict(
        title=case.spec.case.title or case.name,
        case_name=case.name,
        generated=datetime.now(tz).strftime(f"%Y-%m-%d %H:%M {site.timezone}"),
        site=(f"{site.name} ({_latlon(site.latitude_deg, site.longitude_deg)}, {site.altitude_m:g} m, "
              f"time zone {site.timezone})"),
        cap_text=_fmt_cap(cap),
        criteria_name=case.spec.case.criteria,
        criteria_description=crit.description,
        sha256=case.sha256 or summary.get("case_sha256", ""),
        versions=sorted(versions.items(), key=lambda kv: (kv[0] not in ("twin", "python"), kv[0])),
        overview=overview,
        totals=totals,
        overall=overall,
        findings=findings,
        battery=battery,
        timeseries=timeseries,
        switchover=switchover,
        ridethrough=ridethrough,
        swing=swing,
        notes=_empty_variables(datasets),
        op_table=_op_table(case, checks, datasets.get("loadflow"), cap, warn_frac),
        key_figures=_key_figures(summary),
        sld=sld,
        figures=figures,
        problems=_check_rows(problems),
        all_checks=_check_rows(checks),
        sign_convention=(datasets.get("loadflow").attrs.get("sign_convention") if "loadflow" in datasets else None)
        or "loads consume positive p_mw; PCS and PV produce positive p_mw; grid import positive when the campus "
           "draws from the utility",
        warn_text=f"{100 * warn_frac:g} %",
    )
    return env.get_template("report.html.j2").render(**ctx)


# --------------------------------------------------------------------------------------------------------------
# formatting


def _fmt(value, unit: str = "", *, signed: bool = False) -> str:
    """A number with its unit (``"6.48 MW"``); ``"n/a"`` for None or NaN."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "n/a" if value is None else str(value)
    if not math.isfinite(v):
        return "n/a"
    d = _DECIMALS.get(unit)
    sign = "+" if signed else ""
    if d is not None and 0 < abs(v) < 0.5 * 10.0 ** -d:
        text = f"{v:{sign}.2g}"  # a tiny value (a power mismatch, say) is not shown as zero
    elif d is not None:
        text = f"{v:{sign}.{d}f}"
    else:
        text = f"{v:{sign}.4g}"
    if text.lstrip("+-").strip("0.") == "":  # no "-0.00"
        text = text.replace("-", "").replace("+", "")
    return text if unit in ("", "-", "1") else f"{text} {unit}"


def _plain(value, unit: str, *, signed: bool = False) -> str:
    """A number formatted for ``unit`` but without it (for a table whose header names the unit)."""
    text = _fmt(value, unit, signed=signed)
    return text[: -len(unit) - 1] if unit not in ("", "-", "1") and text.endswith(f" {unit}") else text


def _fmt_cap(cap: float) -> str:
    return f"{cap:.1f} MW" if math.isfinite(cap) else "n/a"


def _latlon(lat: float, lon: float) -> str:
    return f"{abs(lat):.2f}\N{DEGREE SIGN} {'N' if lat >= 0 else 'S'}, {abs(lon):.2f}\N{DEGREE SIGN} {'E' if lon >= 0 else 'W'}"


def _words(quantity: str) -> str:
    return _QUANTITY_WORDS.get(quantity, quantity)


def _unit_of_key(key: str) -> str:
    for suf, unit in _SUFFIX_UNITS.items():
        if key.endswith(suf):
            return unit
    return ""


# --------------------------------------------------------------------------------------------------------------
# checks and overview


def _normalise_checks(checks: pd.DataFrame | None) -> pd.DataFrame:
    from .limits import COLUMNS

    if checks is None:
        return pd.DataFrame(columns=COLUMNS)
    checks = checks.copy()
    for col in COLUMNS:
        if col not in checks.columns:
            checks[col] = np.nan if col in ("value", "limit", "margin") else ""
    for col in ("value", "limit", "margin"):
        checks[col] = pd.to_numeric(checks[col], errors="coerce")
    for col in ("study", "scenario", "element", "quantity", "unit", "status", "criterion"):
        checks[col] = checks[col].fillna("").astype(str)
    return checks.reset_index(drop=True)


def _relative_margin(rows: pd.DataFrame) -> pd.Series:
    """Margin as a fraction of the limit (the margin itself where the limit is zero)."""
    lim = rows["limit"].abs()
    return rows["margin"] / lim.where(lim > 0, 1.0)


def _check_rows(rows: pd.DataFrame) -> list[dict]:
    rel = _relative_margin(rows)
    out = []
    for r, q in zip(rows.itertuples(index=False), rel, strict=True):
        u = r.unit
        out.append(dict(study=r.study, scenario=r.scenario, element=r.element, quantity=r.quantity,
                        value=_fmt(r.value, u), limit=_fmt(r.limit, u), margin=_fmt(r.margin, u, signed=True),
                        rel=_fmt(100 * q, "%", signed=True), status=r.status, criterion=r.criterion))
    return out


def _counts(rows: pd.DataFrame) -> dict:
    return {"checks": int(len(rows)), "pass": int((rows.status == "PASS").sum()),
            "warn": int((rows.status == "WARN").sum()), "fail": int((rows.status == "FAIL").sum())}


def _status_of(c: dict) -> str:
    if c["fail"]:
        return "FAIL"
    if c["warn"]:
        return "WARN"
    return "PASS" if c["checks"] else "INFO"


def _overview(summary: dict, checks: pd.DataFrame, datasets: dict) -> tuple[list[dict], dict]:
    """One row per study (summary.json order, then any other study in the checks or datasets) and the totals."""
    studies = list((summary.get("studies") or {}).keys())
    for name in list(checks.study.unique()) + list(datasets):
        if name not in studies:
            studies.append(name)
    rows = []
    for name in studies:
        sub = checks[checks.study == name]
        c = _counts(sub)
        if not len(sub):  # no rows in the frame: take the counts summary.json reports, if any
            fig = (summary.get("studies") or {}).get(name) or {}
            c = {k: int(fig.get(k, 0) or 0) for k in ("checks", "pass", "warn", "fail")}
        rows.append(dict(study=name, status=_status_of(c), **c))
    totals = _counts(checks)
    return rows, totals


def _overall(totals: dict) -> dict:
    status = _status_of(totals)
    if status == "FAIL":
        text = (f"{totals['fail']} of {totals['checks']} checks FAIL and {totals['warn']} WARN: the design as "
                f"studied does not meet every criterion.")
    elif status == "WARN":
        text = f"No check fails; {totals['warn']} of {totals['checks']} checks WARN (within the margin of a limit)."
    elif status == "PASS":
        text = f"All {totals['checks']} checks PASS."
    else:
        text = "No limit checks were run."
    return {"status": status, "text": text}


def _key_figures(summary: dict, max_chars: int = 600) -> list[dict]:
    """summary.json's key figures (not the counts) as text, units from the key names; long ones shortened."""
    out = []
    for study, figs in (summary.get("studies") or {}).items():
        for key, val in (figs or {}).items():
            if key in ("checks", "pass", "warn", "fail"):
                continue
            text = _fmt_any(val, _unit_of_key(key))
            if len(text) > max_chars:
                text = text[:max_chars].rsplit(" ", 1)[0] + " \u2026 (in full in summary.json)"
            out.append(dict(study=study, key=key, value=text))
    return out


def _fmt_any(v, unit: str) -> str:
    """A summary.json value of any shape; a dict's own ``unit`` entry (a check row) or its keys give units."""
    if isinstance(v, dict):
        if not v:
            return "none"
        unit = v.get("unit", unit) if isinstance(v.get("unit"), str) else unit
        parts = []
        for k, x in v.items():
            if k == "unit":
                continue
            text = _fmt_any(x, _unit_of_key(str(k)) or unit)
            parts.append(f"{k}: ({text})" if isinstance(x, dict) and x else f"{k}: {text}")
        return "; ".join(parts)
    if isinstance(v, list | tuple):
        return ", ".join(_fmt_any(x, unit) for x in v) or "none"
    if isinstance(v, bool | np.bool_):
        return "yes" if v else "no"
    if isinstance(v, int | np.integer) and not unit:
        return str(v)
    if isinstance(v, int | float | np.number):
        return _fmt(v, unit) if unit else f"{float(v):.4g}"
    return str(v)


def _where(where: dict, skip: str, *, named: bool) -> str:
    """Labels of an extreme value's position, e.g. ``"operating point training_peak, outage X out"``."""
    items = [(d, x) for d, x in where.items() if d != skip]
    return ", ".join(f"{d.replace('_', ' ')} {x}" if named else x for d, x in items)


# --------------------------------------------------------------------------------------------------------------
# data access


def _numeric(ds: xr.Dataset | None, name: str) -> xr.DataArray | None:
    """A variable as float, or None if the Dataset or the variable is absent or has no finite value (the
    page says so: :func:`_empty_variables`).

    Raises
    ------
    ValueError
        If the variable exists but does not hold numbers.
    """
    if ds is None or name not in ds.variables:
        return None
    da = ds[name]
    try:
        out = da.astype(float)
    except (TypeError, ValueError) as exc:
        study = ds.attrs.get("study", "a study")
        raise ValueError(f"report: variable '{name}' of the {study} Dataset does not hold numbers "
                         f"(dtype {da.dtype}): {exc}") from exc
    return out if np.isfinite(out.values).any() else None


def _empty_variables(datasets: dict) -> list[str]:
    """Numeric result variables with no finite value (a study that did not converge anywhere, say)."""
    out = []
    for study, ds in datasets.items():
        for name, da in ds.data_vars.items():
            if np.issubdtype(da.dtype, np.number) and da.size and not np.isfinite(da.values).any():
                out.append(f"{study}: {name} has no finite value; what would be drawn from it is left out.")
    return out


def _labels(da: xr.DataArray, dim: str) -> list[str]:
    if dim in da.coords:
        return [str(v) for v in np.asarray(da[dim].values).ravel()]
    return [str(i) for i in range(da.sizes[dim])]


def _extreme(da: xr.DataArray, kind: str) -> tuple[float, dict]:
    """Largest (``"max"``) or smallest (``"min"``) finite value and its labels per dimension."""
    arr = np.asarray(da.values, dtype=float)
    if arr.size == 0 or not np.isfinite(arr).any():
        return float("nan"), {}
    flat = np.where(np.isfinite(arr), arr, -np.inf if kind == "max" else np.inf)
    k = int(np.argmax(flat) if kind == "max" else np.argmin(flat))
    idx = np.unravel_index(k, arr.shape) if arr.ndim else ()
    return float(arr[idx]), {d: _labels(da, d)[i] for d, i in zip(da.dims, idx, strict=True)}


def _reduce_to(da: xr.DataArray, keep: tuple[str, ...], how: str = "max") -> xr.DataArray:
    """Reduce every dimension not in ``keep`` (max or min, NaN-skipping)."""
    other = [d for d in da.dims if d not in keep]
    if not other:
        return da
    return da.max(other, skipna=True) if how == "max" else da.min(other, skipna=True)


def _firm_cap(case, ds: xr.Dataset | None) -> float:
    if ds is not None and "firm_import_cap_mw" in ds.variables:
        return float(ds["firm_import_cap_mw"].values)
    return float(case.spec.supply.firm_import_cap_mw)


def _status_upper(value: float, limit: float, warn_frac: float) -> str:
    if not math.isfinite(value):
        return "FAIL"
    m = limit - value
    return "FAIL" if m < 0 else ("WARN" if m < warn_frac * abs(limit) else "PASS")


def _status_band(value: float, lo: float, hi: float, warn_frac: float) -> str:
    if not math.isfinite(value):
        return "FAIL"
    m = min(value - lo, hi - value)
    return "FAIL" if m < 0 else ("WARN" if m < warn_frac * (hi - lo) / 2 else "PASS")


def _worst_status(checks: pd.DataFrame, study: str, quantity: str) -> str | None:
    rows = checks[(checks.study == study) & (checks.quantity == quantity)]
    if not len(rows):
        return None
    return min(rows.status, key=lambda s: _STATUS_ORDER.get(s, 9))


def _bus_names(ds_bus: list[str], net) -> list[str]:
    """Bus labels as names (a Dataset may label buses by pandapower index)."""
    names = net.bus["name"].astype(str)
    idx = {str(i): n for i, n in names.items()}
    if all(b in idx for b in ds_bus) and not set(ds_bus) & set(names):
        return [idx[b] for b in ds_bus]
    return ds_bus


# --------------------------------------------------------------------------------------------------------------
# headline findings


def _findings(case, checks: pd.DataFrame, datasets: dict, net, cap: float, warn_frac: float,
              summary_studies: dict | None = None) -> list[dict]:
    summary_studies = summary_studies or {}
    out: list[dict] = []
    out += _loadflow_findings(case, checks, datasets.get("loadflow"), net, cap, warn_frac)
    out += _shortcircuit_findings(checks, datasets.get("shortcircuit"), net, warn_frac)
    out += _contingency_findings(case, checks, datasets.get("contingency"), net, cap, warn_frac)
    out += _drivers_findings(case, summary_studies.get("drivers"), cap)
    out += _battery_headline(checks, summary_studies.get("battery"), cap)
    out += _timeseries_headline(checks, summary_studies, cap)
    out += _switchover_headline(checks, summary_studies.get("switchover"))
    out += _rt_headline(checks, summary_studies.get("ridethrough"))
    out += _swing_headline(checks, summary_studies.get("swing"))
    covered = set()
    for f in out:  # a finding covers one (study, quantity) or a list of them
        c = f.get("covers")
        covered |= set(c) if isinstance(c, list) else {c}
    for study in checks.study.unique():  # the tightest check of every study, unless a finding above says it
        rows = checks[checks.study == study]
        rel = _relative_margin(rows)
        r = rows.loc[rel.fillna(-np.inf).idxmin()]
        fails = rows[rows.status == "FAIL"]
        if {(study, q) for q in [r.quantity, *fails.quantity]} <= covered:
            continue
        what = ", ".join(f"{_words(q)} \u00d7{n}" for q, n in fails.quantity.value_counts().items())
        text = (f"{study}: tightest check is {_words(r.quantity)} at {r.element}"
                f"{f' ({r.scenario})' if r.scenario else ''}: {_fmt(r.value, r.unit)} against "
                f"{_fmt(r.limit, r.unit)}, margin {_fmt(r.margin, r.unit, signed=True)}.")
        if len(fails):
            text += f" {len(fails)} FAIL ({what})."
        out.append(dict(status=r.status, text=text))
    return out


def _drivers_findings(case, fig: dict | None, cap: float) -> list[dict]:
    """Plain-words lines from the drivers study's key figures (a year of weather, PV, IT, cooling)."""
    if not fig or "it_energy_mwh" not in fig:
        return []
    out = [dict(status="INFO", text=(
        f"Drivers ({fig.get('scenario')} scenario, {fig.get('resolution_s', 0):g} s steps): IT {_fmt(fig['it_energy_mwh'], 'MWh')} "
        f"a year, peak {_fmt(fig['it_peak_mw'], 'MW')}; facility {_fmt(fig['facility_energy_mwh'], 'MWh')}, peak "
        f"{_fmt(fig['facility_peak_mw'], 'MW')}; annual PUE {fig['pue_annual']:.3f}; PV "
        f"{_fmt(fig['pv_energy_mwh'], 'MWh')}"
        + (f" ({fig['pv_specific_yield_kwh_kwp']:.0f} kWh/kWp)" if fig.get("pv_specific_yield_kwh_kwp") else "")
        + f"; GHI {fig['ghi_annual_kwh_m2']:.0f} kWh/m2."))]
    hours = fig.get("hours_net_load_above_cap_h")
    if hours is not None:
        status = "FAIL" if fig.get("days_cap_not_holdable", 0) else ("WARN" if hours > 0 else "PASS")
        out.append(dict(status=status, covers=("drivers", "energy_above_cap_mwh"), text=(
            f"Facility load less PV is above the {_fmt_cap(cap)} cap for {hours:.0f} h of the year; the worst day "
            f"has {_fmt(fig.get('energy_above_cap_max_day_mwh', float('nan')), 'MWh')} above the cap; on "
            f"{fig.get('days_cap_not_holdable', 0)} days the battery cannot cover it or recharge under the cap.")))
    return out


def _drivers_figures(case, ds, cap: float) -> list[dict | None]:
    """A July week of the drivers, month-by-hour net load and load-duration curves (:mod:`twin.views`)."""
    if ds is None or "time" not in ds.dims or "facility_p_mw" not in ds:
        return []
    from . import views

    tz = case.spec.site.timezone
    out = []
    names = [v for v in ("facility_p_mw", "it_p_mw", "cooling_p_mw", "pv_p_mw", "temp_air", "price_cny_per_kwh")
             if v in ds]
    year = pd.DatetimeIndex(ds.time.values)[len(ds.time) // 2].year
    fig = _new_figure(10.0, 1.5 * len(names) + 0.6)
    views.plot_week(ds, names, f"{year}-07-14", tz=tz, fig=fig)
    out.append({"title": "A week of the drivers (July)", "png": _png(fig),
                "caption": f"Facility load, IT load (all halls), cooling, PV, outdoor temperature and energy price over "
                           f"the week from {year}-07-14, local time ({tz})."})
    fig = _new_figure(9.0, 4.0)
    views.plot_month_hour(ds.net_load_mw, tz=tz, ax=fig.subplots())
    out.append({"title": "Facility load less PV by month and hour", "png": _png(fig),
                "caption": "Mean of facility load less PV (MW) by month and local hour: the grid import with the "
                           "battery idle, before network losses."})
    fig = _new_figure(8.0, 4.0)
    views.plot_load_duration({"facility load": ds.facility_p_mw, "facility less PV": ds.net_load_mw,
                              "IT load": ds.it_p_mw}, ax=fig.subplots(), limit=cap,
                             limit_label=f"firm import cap {_fmt_cap(cap)}")
    out.append({"title": "Load-duration curves", "png": _png(fig),
                "caption": "Hours of the year at or above each power; the dashed line is the firm import cap."})
    return out


# --------------------------------------------------------------------------------------------------------------
# battery study


_BATTERY_QUANTITIES = ["usable_ac_energy_mwh", "duration_at_rated_power_h", "p_import_mw", "p_import_15min_mw",
                       "energy_above_cap_unserved_mwh", "t_cell_max_degc"]


def _battery_headline(checks, fig: dict | None, cap: float) -> list[dict]:
    """Two headline lines from the battery study (claims; design day); the details are in its own section."""
    if not fig or "usable_ac_measured_mwh" not in fig:
        return []
    claim = (f"Battery, measured with the system model ({fig['granularity']} granularity, {fig['dt_s']:g} s): "
             f"usable AC energy {_fmt(fig['usable_ac_measured_mwh'], 'MWh')} against the claimed "
             f"{_fmt(fig['claimed_energy_mwh'], 'MWh')}; rated power ({_fmt(fig['p_ac_rated_mw'], 'MW')}) held for "
             f"{fig['duration_at_rated_power_h']:.2f} h against the claimed {fig['claimed_duration_h']:.2f} h "
             f"(see the Battery section).")
    status = _worst_status(checks, "battery", "usable_ac_energy_mwh") or "INFO"
    d = _worst_status(checks, "battery", "duration_at_rated_power_h")
    if d is not None and _STATUS_ORDER[d] < _STATUS_ORDER.get(status, 9):
        status = d
    unserved = fig["design_day_energy_above_cap_unserved_mwh"]
    peak = fig["design_day_peak_import_mw"]
    if unserved > 0 or peak > cap:
        day = (f"Battery on the design day {fig['design_day']} (drivers' day with the "
               f"{fig.get('design_day_basis', 'most energy above the cap')}): the battery cannot hold the "
               f"{_fmt_cap(cap)} cap. Of {_fmt(fig['design_day_energy_above_cap_before_mwh'], 'MWh')} above the cap "
               f"(plus {_fmt(fig['design_day_aux_energy_mwh'], 'MWh')} of the battery's own auxiliaries) it delivers "
               f"{_fmt(fig['design_day_battery_discharge_mwh'], 'MWh')}; "
               f"{_fmt(unserved, 'MWh')} are not served and import peaks at {_fmt(peak, 'MW')} "
               f"({_fmt(peak - cap, 'MW')} over the cap).")
        if fig.get("design_day_empty_at_local"):
            day += f" Starting full, it is empty at {fig['design_day_empty_at_local']} local time."
        if fig.get("design_day_headroom_below_cap_mwh") is not None:
            day += (f" The day's headroom under the cap, all there is to recharge, is "
                    f"{_fmt(fig['design_day_headroom_below_cap_mwh'], 'MWh')}.")
    elif fig.get("design_day_energy_above_cap_before_mwh", 0) <= 0:
        day = (f"Battery on the design day {fig['design_day']} (drivers' day with the "
               f"{fig.get('design_day_basis', 'highest peak')}): the site load never exceeds the {_fmt_cap(cap)} "
               f"cap; import peaks at {_fmt(peak, 'MW')} with the battery idle.")
    else:
        day = (f"Battery on the design day {fig['design_day']} (drivers' day with the "
               f"{fig.get('design_day_basis', 'most energy above the cap')}): the battery holds the {_fmt_cap(cap)} "
               f"cap, serving {_fmt(fig['design_day_battery_discharge_mwh'], 'MWh')}; import peaks at "
               f"{_fmt(peak, 'MW')}, lowest SOC {fig['design_day_soc_min']:.3f}.")
    statuses = [s for s in (_worst_status(checks, "battery", q) for q in _BATTERY_QUANTITIES[2:]) if s]
    day_status = min(statuses, key=lambda x: _STATUS_ORDER.get(x, 9)) if statuses else "INFO"
    return [dict(status=status, text=claim, covers=[("battery", q) for q in _BATTERY_QUANTITIES[:2]]),
            dict(status=day_status, text=day, covers=[("battery", q) for q in _BATTERY_QUANTITIES[2:]])]


def _battery_section(case, checks, ds, fig: dict | None, cap: float, warn_frac: float) -> dict | None:
    """The battery section: what was simulated, findings in plain words, a table of the figures, three figures."""
    if ds is None or not fig or "usable_ac_measured_mwh" not in fig:
        return None
    f = fig
    intro = (f"The battery system model (twin.battery.system: {f['granularity']} granularity, cells' electro-thermal "
             f"model, BMS limits, container thermal network with its HVAC) run at {f['dt_s']:g} s steps on the "
             f"case's battery: a capacity test at {ds.attrs.get('capacity_test_t_amb_degc', 25):g} degC, a design "
             f"day of peak shaving (a preview dispatch rule; the EMS study builds the real one) and an ageing "
             f"projection (BLAST-Lite LFP). AC powers at the PCS terminals (PCS efficiency curve), + discharging.")
    gap = f["usable_measured_vs_computed"]
    out = []
    st = _worst_status(checks, "battery", "usable_ac_energy_mwh") or "INFO"
    out.append(dict(status=st, text=(
        f"Usable AC energy, measured from SOC {ds.attrs.get('soc_max', float('nan')):g} to "
        f"{ds.attrs.get('soc_min', float('nan')):g} at rated power: {_fmt(f['usable_ac_measured_mwh'], 'MWh')} "
        f"(the ratings compute {_fmt(f['usable_ac_computed_mwh'], 'MWh')}, {100 * gap:+.1f} %; the DC nameplate is "
        f"{_fmt(f['nameplate_dc_mwh'], 'MWh')}, the claim checked {_fmt(f['claimed_energy_mwh'], 'MWh')}: "
        f"[battery_study] claimed_energy_mwh, by default the DC nameplate). The ratings "
        f"assume a constant DC efficiency and the nominal cell voltage; the model integrates the open-circuit voltage "
        f"(above nominal over most of the window) less the cells' resistive losses at this current.")))
    st = _worst_status(checks, "battery", "duration_at_rated_power_h") or "INFO"
    out.append(dict(status=st, text=(
        f"Rated power {_fmt(f['p_ac_rated_mw'], 'MW')} is held for {f['duration_at_rated_power_h']:.2f} h "
        f"({_fmt(f['energy_at_rated_power_mwh'], 'MWh')}) against the claimed {f['claimed_duration_h']:.2f} h; it "
        f"ends at: {f['discharge_stop']}. The discharge to the window's end takes {f['discharge_duration_h']:.2f} h.")))
    out.append(dict(status="INFO", text=(
        f"Round trip at rated power: {_fmt(f['charge_ac_mwh'], 'MWh')} AC in for "
        f"{_fmt(f['usable_ac_measured_mwh'], 'MWh')} out: {100 * f['round_trip_efficiency']:.1f} % AC to AC, "
        f"{100 * f['round_trip_efficiency_with_aux']:.1f} % counting the HVAC and BMS "
        f"({_fmt(f['aux_energy_cycle_mwh'], 'MWh')} over the cycle).")))
    out += _battery_headline(checks, f, cap)[1:]
    flags = {k: v for k, v in (f.get("design_day_bms_flag_steps") or {}).items() if v}
    flag_text = ", ".join(f"{k} {v}" for k, v in flags.items()) if flags else "none"
    st = _worst_status(checks, "battery", "t_cell_max_degc") or "INFO"
    out.append(dict(status=st, text=(
        f"Design day: SOC between {f['design_day_soc_min']:.3f} and {f['design_day_soc_max']:.3f} (ends at "
        f"{f['design_day_soc_end']:.3f}); hottest cell {_fmt(f['design_day_t_cell_max_degc'], 'degC')} with the "
        f"outdoor air up to {_fmt(f['design_day_t_outdoor_max_degc'], 'degC')}; largest cell voltage spread in a "
        f"container {1000 * f['design_day_v_cell_spread_max_v']:.1f} mV"
        + (" (identical racks at rack granularity: the spread needs granularity 'cell')"
           if f["granularity"] != "cell" else "")
        + f"; battery auxiliaries {_fmt(f['design_day_aux_energy_mwh'], 'MWh')} over the day, peak "
        f"{f['design_day_aux_peak_kw']:.1f} kW; steps limited by the BMS (container-steps per flag): {flag_text}.")))
    years = f.get("ageing_years") or []
    q, r = f.get("ageing_capacity") or [], f.get("ageing_resistance") or []
    parts = "; ".join(f"{y:g} year{'s' if y != 1 else ''}: capacity {100 * a:.1f} %, resistance {100 * b:.1f} %"
                      for y, a, b in zip(years, q, r, strict=False))
    key10 = next((k for k in f if k.startswith("usable_ac_") and k.endswith("y_mwh")), None)
    out.append(dict(status="INFO", text=(
        f"Ageing, with every day like the design day ({f['ageing_efc_per_year']:.0f} equivalent full cycles a "
        f"year including the recharge each day needs, an upper bound of the duty): {parts}"
        + (f"; usable AC energy then {_fmt(f[key10], 'MWh')}." if key10 else ".")
        + (" The cell temperature left the model's 10-45 degC range: extrapolated." if f.get("ageing_extrapolated")
           else ""))))
    figures = []
    from .studies import battery as bstudy

    for title, fn, w, h, cap_text in (
            ("Design day: grid import against the firm cap, battery power and SOC", bstudy.plot_design_day, 10.0,
             5.5, f"Local day {f['design_day']}. Grey: facility load less PV with the battery idle; red: grid import "
                  f"with the battery (its auxiliaries included); green: battery AC power (+ discharge); dashed: the "
                  f"{_fmt_cap(cap)} firm cap. Bottom: mean SOC of each container, dotted: the EMS window."),
            ("Design day: cell and container temperatures, battery auxiliaries", bstudy.plot_thermal, 10.0, 4.8,
             "Outdoor air, container air (warmest container) and the hottest cell; the HVAC's electrical draw with "
             "the fixed auxiliaries, and the heat it removes, all containers."),
            ("Ageing projection", bstudy.plot_ageing, 8.0, 3.6,
             "Relative capacity and resistance with the design day repeated daily (BLAST-Lite LFP/graphite 250 Ah "
             "model, coded in twin.battery.ageing; resistance growth L).")):
        fg = _new_figure(w, h)
        fn(ds, fig=fg)
        figures.append({"title": title, "png": _png(fg), "caption": cap_text})
    return {"intro": intro, "findings": out, "figures": figures}


def _voltage_findings(case, ds, study: str, band_name: str, prefix: str, warn_frac: float) -> list[dict]:
    """Lowest and highest bus voltage against the band of the bus (``band_name``: campus_normal or
    campus_emergency; the point of connection always against its own band)."""
    vm = _numeric(ds, "vm_pu")
    if vm is None or "bus" not in vm.dims:
        return []
    out = []
    roles = _labels(ds, "bus_role") if "bus_role" in ds.coords and ds["bus_role"].dims == ("bus",) else None
    bus_names = _labels(vm, "bus")
    v_crit = case.criteria.voltage
    for kind, word in (("min", "lowest"), ("max", "highest")):
        v, where = _extreme(vm, kind)
        if not where:
            continue
        bus = where["bus"]
        poc = roles is not None and roles[bus_names.index(bus)] == "poc"
        band = v_crit.poc if poc else getattr(v_crit, band_name)
        band_text = "point-of-connection" if poc else band_name.replace("_", " ")
        scen = _where(where, "bus", named=bool(prefix))
        out.append(dict(status=_status_band(v, band.min_pu, band.max_pu, warn_frac),
                        text=f"{prefix}{word.capitalize() if not prefix else word} bus voltage {_fmt(v, 'pu')} at "
                             f"{bus} ({scen}); {band_text} band {_fmt(band.min_pu, 'pu')} to "
                             f"{_fmt(band.max_pu, 'pu')}.",
                        covers=(study, "vm_pu")))
    return out


def _branch_kind(ds, da, net, branch: str) -> str:
    """``line`` or ``trafo`` for a branch label, from the Dataset's ``branch_kind`` or else the net."""
    if "branch_kind" in ds.coords and ds["branch_kind"].dims == ("branch",):
        return _labels(ds, "branch_kind")[_labels(da, "branch").index(branch)]
    return "trafo" if branch in set(net.trafo["name"].astype(str)) else "line"


def _loading_findings(case, ds, net, study: str, rating: str, prefix: str, warn_frac: float) -> list[dict]:
    """Highest branch loading against the ``rating`` (normal or emergency) limit of its kind."""
    ld = _numeric(ds, "loading_percent")
    if ld is None or "branch" not in ld.dims:
        return []
    v, where = _extreme(ld, "max")
    if not where:
        return []
    br = where["branch"]
    kind = _branch_kind(ds, ld, net, br)
    lc = case.criteria.loading
    lim = {("line", "normal"): lc.line_max_percent, ("trafo", "normal"): lc.trafo_max_percent,
           ("line", "emergency"): lc.line_emergency_percent,
           ("trafo", "emergency"): lc.trafo_emergency_percent}[(kind, rating)]
    scen = _where(where, "branch", named=bool(prefix))
    what = "cable" if kind == "line" else "transformer"
    word = "highest" if prefix else "Highest"
    return [dict(status=_status_upper(v, lim, warn_frac),
                 text=f"{prefix}{word} branch loading {_fmt(v, '%')} on {what} {br} ({scen}); {rating} limit "
                      f"{_fmt(lim, '%')} of rating.", covers=(study, "loading_percent"))]


def _loadflow_findings(case, checks, ds, net, cap, warn_frac) -> list[dict]:
    out = []
    imp = _numeric(ds, "p_import_mw")
    if imp is not None and imp.ndim == 1:
        ops, vals = _labels(imp, imp.dims[0]), np.asarray(imp.values, dtype=float)
        over = [(o, v) for o, v in zip(ops, vals, strict=True) if v > cap]
        parts = "; ".join(f"{o} {_fmt(v, 'MW')}" for o, v in zip(ops, vals, strict=True))
        if over:
            o, v = max(over, key=lambda t: t[1])
            text = (f"Grid import exceeds the {_fmt_cap(cap)} firm cap at {len(over)} of {len(ops)} operating "
                    f"points (worst {o}: {_fmt(v, 'MW')}, {_fmt(v - cap, 'MW')} over). Import: {parts}.")
            status = "FAIL"
        else:
            k = int(np.nanargmax(vals))
            text = (f"Grid import stays within the {_fmt_cap(cap)} firm cap at every operating point (highest "
                    f"{ops[k]}: {_fmt(vals[k], 'MW')}, {_fmt(cap - vals[k], 'MW')} headroom). Import: {parts}.")
            status = _status_upper(float(vals[k]), cap, warn_frac)
        out.append(dict(status=status, text=text, covers=("loadflow", "p_import_mw")))
    out += _voltage_findings(case, ds, "loadflow", "campus_normal", "", warn_frac)
    out += _loading_findings(case, ds, net, "loadflow", "normal", "", warn_frac)
    pf = _numeric(ds, "pf_poc")
    if pf is not None and pf.ndim == 1:
        v, where = _extreme(pf, "min")
        if where:
            ref = case.criteria.power_factor.min
            status = _worst_status(checks, "loadflow", "power_factor") or ("WARN" if v < ref else "PASS")
            out.append(dict(status=status,
                            text=f"Lowest power factor at the point of connection {_fmt(v, '-')} "
                                 f"({', '.join(where.values())}) against the {_fmt(ref, '-')} tariff reference "
                                 f"(advisory: it changes the bill, not the supply).",
                            covers=("loadflow", "power_factor")))
    return out


def _sc_ratings(ds: xr.Dataset, net, buses: list[str]) -> np.ndarray:
    """Rated breaking current per bus in kA: from the Dataset if it carries it, else from the net's buses."""
    for name in ("sc_breaking_ka", "breaking_ka", "rated_breaking_ka", "ib_rated_ka"):
        if name in ds.variables and ds[name].dims == ("bus",):
            return np.asarray(ds[name].values, dtype=float)
    if "sc_breaking_ka" not in net.bus.columns:
        return np.full(len(buses), np.nan)
    by_name = dict(zip(net.bus["name"].astype(str), pd.to_numeric(net.bus["sc_breaking_ka"], errors="coerce"),
                       strict=True))
    return np.array([by_name.get(b, np.nan) for b in _bus_names(buses, net)], dtype=float)


def _shortcircuit_findings(checks, ds, net, warn_frac) -> list[dict]:
    ik = _numeric(ds, "ikss_ka")
    if ik is None or "bus" not in ik.dims:
        return []
    out = []
    v, where = _extreme(ik, "max")
    if where:
        bus = _bus_names([where["bus"]], net)[0]
        scen = ", ".join(x for d, x in where.items() if d != "bus")
        out.append(dict(status="INFO", text=f"Highest initial short-circuit current Ik'' {_fmt(v, 'kA')} at {bus} "
                                            f"({scen})."))
    per_bus = _reduce_to(ik, ("bus",))
    buses = _labels(per_bus, "bus")
    rating = _sc_ratings(ds, net, buses)
    margin = rating - np.asarray(per_bus.values, dtype=float)
    if np.isfinite(margin).any():
        k = int(np.nanargmin(margin))
        status = _worst_status(checks, "shortcircuit", "ikss_ka") or _status_upper(
            float(per_bus.values[k]), float(rating[k]), warn_frac)
        out.append(dict(status=status,
                        text=f"Smallest breaking-current margin at {_bus_names([buses[k]], net)[0]}: Ik'' "
                             f"{_fmt(per_bus.values[k], 'kA')} against {_fmt(rating[k], 'kA')} rated breaking "
                             f"current ({_fmt(margin[k], 'kA', signed=True)}, "
                             f"{_fmt(100 * margin[k] / rating[k], '%', signed=True)}).",
                        covers=("shortcircuit", "ikss_ka")))
    return out


def _contingency_findings(case, checks, ds, net, cap, warn_frac) -> list[dict]:
    if ds is None:
        return []
    out = []
    n_out = ds.sizes.get("outage")
    for name, what in (("load_lost_mw", "Load lost"), ("load_to_shed_mw", "Load to shed to respect the cap")):
        da = _numeric(ds, name)
        if da is None or "outage" not in da.dims:
            continue
        keep = ("outage", "state") if "state" in da.dims else ("outage",)
        red = _reduce_to(da, keep)
        states = _labels(red, "state") if "state" in red.dims else [None]
        parts = []
        for s in states:
            sub = red.sel(state=s) if s is not None else red
            v, where = _extreme(sub, "max")
            if not where:
                continue
            label = f"{s}: " if s is not None else ""
            parts.append(f"{label}{_fmt(v, 'MW')} (outage {where['outage']})" if v > 1e-6 else f"{label}none")
        total = float(np.nanmax(np.asarray(red.values, dtype=float))) if red.size else float("nan")
        status = _worst_status(checks, "contingency", name) or ("INFO" if total > 1e-6 else "PASS")
        head = f"N-1 ({n_out} outages)" if n_out else "N-1"
        if not math.isfinite(total) or total <= 1e-6:
            text = f"{head}: {what.lower()}: none in any outage."
        else:
            text = f"{head}: {what.lower()}, largest per state: {'; '.join(parts)}."
        out.append(dict(status=status, text=text, covers=("contingency", name)))
    imp = _numeric(ds, "p_import_mw")
    if imp is not None and "outage" in imp.dims:
        v, where = _extreme(imp, "max")
        if where:
            status = _worst_status(checks, "contingency", "p_import_mw") or _status_upper(v, cap, warn_frac)
            text = (f"N-1: highest grid import {_fmt(v, 'MW')} ({_where(where, '', named=True)}) "
                    f"against the {_fmt_cap(cap)} firm cap.")
            out.append(dict(status=status, text=text, covers=("contingency", "p_import_mw")))
    out += _voltage_findings(case, ds, "contingency", "campus_emergency", "N-1: ", warn_frac)
    out += _loading_findings(case, ds, net, "contingency", "emergency", "N-1: ", warn_frac)
    return out


def _op_table(case, checks, ds, cap, warn_frac) -> dict | None:
    imp = _numeric(ds, "p_import_mw")
    if imp is None or imp.ndim != 1:
        return None
    dim = imp.dims[0]
    ops = _labels(imp, dim)
    desc = {o.name: o.description for o in case.spec.operating_points}
    # the unit is in the header, so the cells hold plain numbers
    cols = [("battery_p_mw", "Battery (MW, + discharge)", "MW"), ("pv_p_mw", "PV (MW)", "MW"),
            ("load_p_mw", "Load (MW)", "MW"), ("losses_mw", "Losses (MW)", "MW"), ("pf_poc", "PF at POC (-)", "-")]
    extra = [(_numeric(ds, v), h, u) for v, h, u in cols]
    extra = [(da, h, u) for da, h, u in extra if da is not None and da.dims == (dim,)]
    headers = (["Operating point", "Description", "Grid import (MW)", f"Margin to the {_fmt_cap(cap)} cap (MW)"]
               + [h for _, h, _ in extra] + ["Cap check"])
    rows = []
    for k, op in enumerate(ops):
        p = float(imp.values[k])
        st = checks[(checks.study == "loadflow") & (checks.quantity == "p_import_mw") & (checks.scenario == op)]
        status = st.status.iloc[0] if len(st) else _status_upper(p, cap, warn_frac)
        cells = [dict(text=op, cls=""), dict(text=desc.get(op, ""), cls="desc"),
                 dict(text=_plain(p, "MW"), cls="num"), dict(text=_plain(cap - p, "MW", signed=True), cls="num")]
        cells += [dict(text=_plain(da.values[k], u), cls="num") for da, _, u in extra]
        cells.append(dict(text=status, cls=status))
        rows.append(dict(cells=cells))
    return {"headers": headers, "rows": rows}


# --------------------------------------------------------------------------------------------------------------
# figures


def _new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig, dpi: int = _DPI) -> str:
    """The figure as base64 PNG; the figure is cleared afterwards (it was never registered with pyplot)."""
    try:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
        return base64.b64encode(buf.getvalue()).decode("ascii")
    finally:
        fig.clear()


def _sld_figure(net, lf: xr.Dataset | None) -> dict:
    from .network import plot_single_line

    values, note = None, ""
    vm = _numeric(lf, "vm_pu")
    if vm is not None and "bus" in vm.dims:
        low = _reduce_to(vm, ("bus",), "min")
        by_name = dict(zip(_bus_names(_labels(low, "bus"), net), np.asarray(low.values, dtype=float), strict=True))
        values = pd.Series({i: by_name[n] for i, n in net.bus["name"].astype(str).items() if n in by_name})
        note = " The number under each bus is its lowest voltage over the operating points, in pu."
    # narrow enough that the diagram's small labels stay legible when the page scales it to its width
    span = float(net.bus.sld_x.max() - net.bus.sld_x.min() + 2)
    fig = _new_figure(max(8.0, 0.5 * span), 5.2)
    ax = fig.subplots()
    plot_single_line(net, ax=ax, values=values, title=f"Single-line diagram: {net.name}")
    return {"png": _png(fig, dpi=150),
            "caption": "Bus sections in black, cables in blue (dotted: out of service), transformers as double "
                       "circles; loads \u25bc, motors \u25cf, PCS and PV \u25b2. The bus coupler is drawn dashed "
                       "when open." + note}


def _voltage_figure(case, ds) -> dict | None:
    vm = _numeric(ds, "vm_pu")
    if vm is None or "bus" not in vm.dims or vm.ndim > 2:
        return None
    scen_dim = next((d for d in vm.dims if d != "bus"), None)
    buses = _labels(vm, "bus")
    x = np.arange(len(buses))
    fig = _new_figure(max(9.0, 0.24 * len(buses) + 2.5), 4.4)
    ax = fig.subplots()
    scen = _labels(vm, scen_dim) if scen_dim else [""]
    markers = "osD^v<>ph*"
    for k, s in enumerate(scen):
        y = vm.isel({scen_dim: k}).values if scen_dim else vm.values
        ax.plot(x, y, marker=markers[k % len(markers)], ms=4, lw=0.8, label=s or "vm_pu")
    v = case.criteria.voltage
    band = v.campus_normal
    for val, va in ((band.min_pu, "top"), (band.max_pu, "bottom")):
        ax.axhline(val, color="tab:red", ls="--", lw=1)
        ax.text(len(buses) - 0.4, val, f"campus band {val:g} pu", color="tab:red", fontsize=7, va=va, ha="right")
    lo = min(band.min_pu, float(np.nanmin(vm.values))) - 0.01
    hi = max(band.max_pu, float(np.nanmax(vm.values))) + 0.01
    ax.set_ylim(lo, hi)
    ax.set_xticks(x, buses, rotation=90, fontsize=7)
    ax.set_xlim(-0.7, len(buses) - 0.3)
    ax.set_ylabel("voltage magnitude (pu)")
    ax.grid(axis="y", alpha=0.3)
    fig.legend(fontsize=7, ncols=min(len(scen), 6), loc="outside upper center", frameon=False)
    return {"title": "Bus voltages per operating point", "png": _png(fig),
            "caption": f"Voltage magnitude at every bus. Red dashed: campus normal band {band.min_pu:g} to "
                       f"{band.max_pu:g} pu ({band.criterion}). The points of connection are checked against the "
                       f"wider band {v.poc.min_pu:g} to {v.poc.max_pu:g} pu ({v.poc.criterion})."}


def _import_figure(ds, cap: float) -> dict | None:
    imp = _numeric(ds, "p_import_mw")
    if imp is None or imp.ndim != 1:
        return None
    ops = _labels(imp, imp.dims[0])
    vals = np.asarray(imp.values, dtype=float)
    fig = _new_figure(max(6.5, 1.25 * len(ops) + 1.5), 3.8)
    ax = fig.subplots()
    colors = ["tab:red" if v > cap else "tab:blue" for v in vals]
    bars = ax.bar(np.arange(len(ops)), vals, color=colors, width=0.6)
    ax.bar_label(bars, labels=[_fmt(v, "MW") for v in vals], fontsize=8, padding=2)
    ax.axhline(cap, color="black", ls="--", lw=1.2, label=f"firm import cap {_fmt_cap(cap)}")
    ax.legend(fontsize=8, loc="upper left")
    ax.set_xticks(np.arange(len(ops)), ops, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("grid import (MW)")
    ax.set_ylim(min(0.0, float(np.nanmin(vals)) * 1.15), max(cap, float(np.nanmax(vals))) * 1.15)
    ax.grid(axis="y", alpha=0.3)
    return {"title": "Grid import per operating point", "png": _png(fig),
            "caption": f"Active power imported at the point of connection (sum of incomers); red where it exceeds "
                       f"the {_fmt_cap(cap)} firm import cap."}


def _loading_figure(case, ds) -> dict | None:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    ld = _numeric(ds, "loading_percent")
    if ld is None or "branch" not in ld.dims:
        return None
    mx = _reduce_to(ld, ("branch",))
    names = _labels(mx, "branch")
    kinds = _labels(ds, "branch_kind") if "branch_kind" in ds.coords else ["line"] * len(names)
    vals = np.asarray(mx.values, dtype=float)
    lc = case.criteria.loading
    fig = _new_figure(max(9.0, 0.24 * len(names) + 2.5), 4.0)
    ax = fig.subplots()
    x = np.arange(len(names))
    style = {"line": ("tab:blue", "cable", lc.line_max_percent),
             "trafo": ("tab:orange", "transformer", lc.trafo_max_percent)}
    ax.bar(x, vals, color=[style.get(k, style["line"])[0] for k in kinds], width=0.7)
    handles = []
    for kind, (color, label, lim) in style.items():
        xs = x[np.asarray(kinds) == kind]
        if not len(xs):
            continue
        ax.hlines(lim, xs.min() - 0.45, xs.max() + 0.45, color=color, ls="--", lw=1.2)
        handles += [Patch(color=color, label=label),
                    Line2D([], [], color=color, ls="--", label=f"{label} limit {lim:g} %")]
    ax.legend(handles=handles, fontsize=7, ncols=4, loc="upper right")
    ax.set_xticks(x, names, rotation=90, fontsize=7)
    ax.set_xlim(-0.7, len(names) - 0.3)
    ax.set_ylabel("loading (% of rating)")
    ax.set_ylim(0, max(float(np.nanmax(vals)) if np.isfinite(vals).any() else 0.0,
                       lc.line_max_percent, lc.trafo_max_percent) * 1.12)
    ax.grid(axis="y", alpha=0.3)
    dims = ", ".join(d.replace("_", " ") + "s" for d in ld.dims if d != "branch") or "the study"
    return {"title": "Branch loading (maximum over operating points)", "png": _png(fig),
            "caption": f"Highest loading of each cable (of ampacity) and transformer (of nameplate rating) over the "
                       f"{dims}; dashed lines: the continuous limits ({lc.criterion_normal})."}


def _shortcircuit_figure(ds, net) -> dict | None:
    ik = _numeric(ds, "ikss_ka")
    if ik is None or "bus" not in ik.dims:
        return None
    fault_dim = "fault" if "fault" in ik.dims else None
    keep = ("bus", fault_dim) if fault_dim else ("bus",)
    red = _reduce_to(ik, keep)
    buses = _labels(red, "bus")
    names = _bus_names(buses, net)
    x = np.arange(len(buses))
    fig = _new_figure(max(9.0, 0.24 * len(buses) + 2.5), 4.2)
    ax = fig.subplots()
    faults = _labels(red, fault_dim) if fault_dim else [None]
    markers = "os^Dv"
    for k, f in enumerate(faults):
        y = red.sel({fault_dim: f}).values if fault_dim else red.values
        ax.plot(x, y, ls="none", marker=markers[k % len(markers)], ms=5, label=f"Ik'' {f}" if f else "Ik''")
    rating = _sc_ratings(ds, net, buses)
    if np.isfinite(rating).any():
        ax.plot(x, rating, ls="none", marker="_", ms=12, mew=2.5, color="black", label="rated breaking current")
    ax.set_xticks(x, names, rotation=90, fontsize=7)
    ax.set_xlim(-0.7, len(buses) - 0.3)
    ax.set_ylim(0, None)
    ax.set_ylabel("current (kA)")
    ax.grid(axis="y", alpha=0.3)
    fig.legend(fontsize=7, ncols=len(faults) + 1, loc="outside upper center", frameon=False)
    other = [d for d in ik.dims if d not in keep]
    over = f" (maximum over {', '.join(other)})" if other else ""
    return {"title": "Short-circuit currents against breaking ratings", "png": _png(fig),
            "caption": f"Initial symmetrical short-circuit current Ik'' (IEC 60909-0) at every bus{over}, per fault "
                       f"type, against the rated short-circuit breaking current of the switchgear at the bus."}


def _contingency_figure(ds, cap: float) -> dict | None:
    if ds is None:
        return None
    panels = []
    for name, label in (("load_lost_mw", "load lost (MW)"), ("load_to_shed_mw", "load to shed (MW)"),
                        ("p_import_mw", "grid import (MW)")):
        da = _numeric(ds, name)
        if da is not None and "outage" in da.dims:
            keep = ("outage", "state") if "state" in da.dims else ("outage",)
            panels.append((name, label, _reduce_to(da, keep)))
    if not panels:
        return None
    outages = _labels(panels[0][2], "outage")
    fig = _new_figure(max(8.0, 0.3 * len(outages) + 2.5), 2.1 * len(panels) + 1.2)
    axes = np.atleast_1d(fig.subplots(len(panels), 1, sharex=True))
    x = np.arange(len(outages))
    for ax, (name, label, da) in zip(axes, panels, strict=True):
        states = _labels(da, "state") if "state" in da.dims else [None]
        w = 0.8 / len(states)
        for k, s in enumerate(states):
            sub = da.sel(state=s) if s is not None else da
            sub = sub.reindex(outage=panels[0][2]["outage"].values) if "outage" in sub.coords else sub
            ax.bar(x - 0.4 + w * (k + 0.5), np.asarray(sub.values, dtype=float), width=w, label=s or name)
        if name == "p_import_mw":
            ax.axhline(cap, color="black", ls="--", lw=1.2, label=f"firm cap {_fmt_cap(cap)}")
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    handles, labels = [], []
    for ax in axes:  # one legend for all panels: the states share their colours
        for h, lbl in zip(*ax.get_legend_handles_labels(), strict=True):
            if lbl not in labels:
                handles.append(h)
                labels.append(lbl)
    fig.legend(handles, labels, fontsize=7, ncols=len(labels), loc="outside upper center", frameon=False)
    axes[-1].set_xticks(x, outages, rotation=90, fontsize=7)
    axes[-1].set_xlim(-0.7, len(outages) - 0.3)
    other = sorted({d for name, _, _ in panels for d in ds[name].dims} - {"outage", "state"})
    over = f"; the largest over {', '.join(d.replace('_', ' ') + 's' for d in other)}" if other else ""
    return {"title": "N-1 contingencies", "png": _png(fig),
            "caption": "Per outage (and per state after the outage, where the study reports states): "
                       + ", ".join(lbl for _, lbl, _ in panels) + over + "."}


# --------------------------------------------------------------------------------------------------------------
# year in the loop (timeseries study): one part per load scenario

_TS_CAP_QUANTITIES = ["grid_import_max_mw", "cap_exceeded_minutes", "demand_15min_max_mw"]
_TS_CLAIM_QUANTITIES = ["arbitrage_savings_cny_per_year", "claim_2mw_4h_events_held_fraction"]


def _timeseries_results(datasets: dict, summary_studies: dict) -> list[tuple[str, xr.Dataset | None, dict]]:
    """``(result name, Dataset, key figures)`` of every timeseries scenario present: ``timeseries`` first, then
    ``timeseries_<scenario>`` in summary.json's order."""
    names = [n for n in list(summary_studies) + list(datasets) if n == "timeseries" or n.startswith("timeseries_")]
    names = sorted(dict.fromkeys(names), key=lambda n: n != "timeseries")
    out = []
    for n in names:
        fig = summary_studies.get(n) or {}
        if "grid_import_max_mw" in fig:  # summary.json writes NaN as null: back to NaN, shown as "n/a"
            out.append((n, datasets.get(n), {k: float("nan") if v is None else v for k, v in fig.items()}))
    return out


def _cny(v) -> str:
    """A sum of money in whole yuan with thousands separators (``"1,349,831 CNY"``)."""
    try:
        x = float(v)
    except (TypeError, ValueError):
        return "n/a"
    return f"{x:,.0f} CNY" if math.isfinite(x) else "n/a"


def _saves(v) -> str:
    """``"saves 1,234 CNY"``, or ``"costs 1,234 CNY more"`` for a negative saving."""
    x = float(v)
    return f"costs {_cny(-x)} more" if math.isfinite(x) and x < 0 else f"saves {_cny(x)}"


def _n(count, word: str) -> str:
    """``"1 event"``, ``"3 events"``."""
    return f"{int(count):,} {word}{'' if int(count) == 1 else 's'}"


def _ts_status(checks: pd.DataFrame, scenario: str, quantities: list[str]) -> str | None:
    """Worst status of the timeseries checks of ``scenario`` on ``quantities`` (None if there is none)."""
    rows = checks[checks.study.str.startswith("timeseries") & (checks.scenario == scenario)
                  & checks.quantity.isin(quantities)]
    if not len(rows):
        return None
    return min(rows.status, key=lambda s: _STATUS_ORDER.get(s, 9))


def _ts_period_text(f: dict) -> str:
    start, end = str(f.get("period_start", ""))[:10], str(f.get("period_end", ""))[:10]
    return (f"{start} to {end} (end exclusive), {f.get('steps', 0):,} steps of {f.get('resolution_s', 0):g} s, "
            f"EMS strategy '{f.get('strategy', '?')}'")


def _ts_cap_text(f: dict, cap: float) -> str:
    if f.get("cap_exceeded_minutes", 0) <= 0:
        return (f"the campus stays under the {_fmt_cap(cap)} firm cap at every step (highest import "
                f"{_fmt(f['grid_import_max_mw'], 'MW')}, {_fmt(cap - f['grid_import_max_mw'], 'MW')} headroom; highest "
                f"15-minute demand {_fmt(f['demand_15min_max_mw'], 'MW')}, {f['cap_exceeded_15min_intervals']} "
                f"15-minute intervals over the cap)")
    return (f"the campus exceeds the {_fmt_cap(cap)} firm cap for {f['cap_exceeded_minutes']:,.0f} min "
            f"({_fmt(f['cap_exceeded_energy_mwh'], 'MWh')} above it, in {_n(f['cap_exceeded_events'], 'event')}, the "
            f"longest {f['cap_exceeded_longest_min']:,.0f} min; highest import {_fmt(f['grid_import_max_mw'], 'MW')}, "
            f"{_fmt(f['cap_exceeded_max_mw'], 'MW')} over); the 15-minute demand the meter bills is above the cap in "
            f"{_n(f['cap_exceeded_15min_intervals'], 'interval')} (highest {_fmt(f['demand_15min_max_mw'], 'MW')})")


def _timeseries_headline(checks: pd.DataFrame, summary_studies: dict, cap: float) -> list[dict]:
    """Headline lines per timeseries scenario: the firm cap over the period and shedding; the bill and the seed's
    claims; the details are in its own section."""
    out = []
    for name, _, f in _timeseries_results({}, summary_studies):
        sc = str(f.get("scenario", ""))
        status = _ts_status(checks, sc, _TS_CAP_QUANTITIES) or ("FAIL" if f.get("cap_exceeded_minutes", 0) > 0
                                                               else "PASS")
        text = (f"Year in the loop, {sc} scenario ({str(f.get('period_start', ''))[:10]} to "
                f"{str(f.get('period_end', ''))[:10]}): {_ts_cap_text(f, cap)}; IT load shed "
                f"{_fmt(f.get('shed_energy_mwh', 0.0), 'MWh')} (see the Year in the loop section).")
        out.append(dict(status=status, text=text, covers=[(s, q) for s in {"timeseries", name} for q in _TS_CAP_QUANTITIES]))
        if "annual_savings_cny" not in f:
            continue
        text = (f"Year in the loop, {sc} scenario: the battery {_saves(f['annual_savings_cny'])} over the period "
                f"({_cny(f['annual_cost_without_battery_cny'])} without it, {_cny(f['annual_cost_cny'])} with it)")
        status = "INFO"
        if "claim_arbitrage_cny_per_year" in f:
            text += (f"; arbitrage {_cny(f['claim_arbitrage_cny_per_year'])} a year against the claimed several "
                     f"million")
            status = _ts_status(checks, sc, ["arbitrage_savings_cny_per_year"]) or status
        if "claim_2mw_4h_events" in f:
            text += (f"; {f.get('claim_2mw_4h_events_held', 0):,} of {f['claim_2mw_4h_events']:,} events within 2 MW "
                     f"and 4 h above the cap held")
            st2 = _ts_status(checks, sc, ["claim_2mw_4h_events_held_fraction"])
            if st2 is not None and _STATUS_ORDER.get(st2, 9) < _STATUS_ORDER.get(status, 9):
                status = st2
        out.append(dict(status=status, text=text + ".",
                        covers=[(s, q) for s in {"timeseries", name} for q in _TS_CLAIM_QUANTITIES]))
    return out


def _timeseries_section(case, checks: pd.DataFrame, datasets: dict, summary_studies: dict, cap: float) -> list[dict]:
    """The year-in-the-loop section, one part per load scenario: what ran, findings in words, a table of the key
    figures with units and three figures (worst week, import duration curve, monthly bills)."""
    parts = []
    for name, ds, f in _timeseries_results(datasets, summary_studies):
        sc = str(f.get("scenario", name))
        findings = _timeseries_findings(checks, f, cap)
        bills = _ts_monthly_bills(case, ds) if ds is not None else None
        figures = [] if ds is None else [g for g in (_ts_week_figure(case, ds, f, cap),
                                                     _ts_duration_figure(ds, f, cap),
                                                     _ts_bill_figure(bills, f)) if g is not None]
        intro = (f"Scenario '{sc}' (result {name}): {_ts_period_text(f)}. Drivers, EMS, PCS and the battery's "
                 f"electro-thermal model in closed loop with a batch load flow of every step, iterated on the network "
                 f"losses ({_fmt_iter(f)}); transformer hot spots (IEC 60076-7 / -12) and the bill (tariff "
                 f"'{case.spec.drivers.tariff}').")
        if f.get("note"):
            intro += f" Note: {f['note']}."
        parts.append({"name": name, "scenario": sc, "intro": intro, "findings": findings,
                      "table": _timeseries_table(f), "figures": figures})
    return parts


def _fmt_iter(f: dict) -> str:
    it = f.get("loss_iterations")
    n = len(it) if isinstance(it, list) else it
    conv = f.get("loss_iteration_converged")
    return f"{n} passes, {'converged' if conv else 'NOT converged'}" if n is not None else "passes not reported"


def _timeseries_findings(checks: pd.DataFrame, f: dict, cap: float) -> list[dict]:
    sc = str(f.get("scenario", ""))
    out = []
    st = _ts_status(checks, sc, _TS_CAP_QUANTITIES) or ("FAIL" if f.get("cap_exceeded_minutes", 0) > 0 else "PASS")
    text = _ts_cap_text(f, cap)
    text = text[0].upper() + text[1:] + "."
    shed = f.get("shed_energy_mwh", 0.0)
    text += (f" IT load shed (GPU power capping): {_fmt(shed, 'MWh')}" + (f", worth {_cny(f['shed_value_cny'])} at the "
             f"energy prices." if shed > 0 and "shed_value_cny" in f else "."))
    if f.get("curtailed_energy_mwh", 0) > 0:
        text += f" PV curtailed (no export): {_fmt(f['curtailed_energy_mwh'], 'MWh')}."
    out.append(dict(status=st, text=text))
    if "annual_cost_cny" in f:
        text = (f"Electricity bill over the period: {_cny(f['annual_cost_cny'])} with the battery, "
                f"{_cny(f['annual_cost_without_battery_cny'])} without it: the battery "
                f"{_saves(f['annual_savings_cny'])} (time-of-use arbitrage {_cny(f['savings_arbitrage_cny'])}, "
                f"maximum-demand charge {_cny(f['savings_demand_cny'])}, power-factor adjustment "
                f"{_cny(f.get('savings_power_factor_cny', float('nan')))}; the arbitrage is net of the battery's "
                f"losses and auxiliaries); the PV saves a further {_cny(f['savings_pv_cny'])}.")
        out.append(dict(status="INFO", text=text))
    if "claim_arbitrage_cny_per_year" in f:
        st = _ts_status(checks, sc, ["arbitrage_savings_cny_per_year"]) or "INFO"
        text = (f"Seed claim 'several million CNY a year from arbitrage': {_cny(f['claim_arbitrage_cny_per_year'])} "
                f"a year (the period's arbitrage saving scaled to 365 days; 'several million' read as at least "
                f"{_cny(2e6)}).")
        if "claim_2mw_4h_events" in f:
            n, held = f["claim_2mw_4h_events"], f.get("claim_2mw_4h_events_held", 0)
            text += (f" Seed claim '2 MW above the cap for 4 h': {held:,} of {n:,} events of the period that stay within "
                     f"2 MW and 4 h above the cap (load without the battery) are held under the cap; "
                     f"{_n(f.get('events_above_cap_without_battery', n), 'event')} above the cap without the "
                     f"battery, "
                     f"the largest {_fmt(f.get('events_above_cap_without_battery_max_mw', float('nan')), 'MW')} "
                     f"over.")
            st2 = _ts_status(checks, sc, ["claim_2mw_4h_events_held_fraction"])
            if st2 is not None and _STATUS_ORDER.get(st2, 9) < _STATUS_ORDER.get(st, 9):
                st = st2
        out.append(dict(status=st, text=text))
    if "battery_equivalent_full_cycles" in f:
        st = _ts_status(checks, sc, ["soc_min", "soc_max", "t_cell_max_degc"]) or "INFO"
        out.append(dict(status=st, text=(
            f"Battery: {_fmt(f['battery_discharge_mwh'], 'MWh')} discharged, {_fmt(f['battery_charge_mwh'], 'MWh')} "
            f"charged ({f['battery_equivalent_full_cycles']:.1f} equivalent full cycles, "
            f"{f['battery_equivalent_full_cycles_per_year']:.0f} a year); {_round_trip_text(f)}; its auxiliaries "
            f"{_fmt(f['battery_aux_mwh'], 'MWh')}; "
            f"SOC between {_fmt(f['soc_min'], '-')} and {_fmt(f['soc_max'], '-')}; hottest cell "
            f"{_fmt(f['t_cell_max_degc'], 'degC')}.")))
    st = _ts_status(checks, sc, ["hot_spot_max_degc", "loading_max_percent", "vm_pu_worst"]) or "INFO"
    out.append(dict(status=st, text=(
        f"Equipment: hottest transformer winding {_fmt(f.get('transformer_hotspot_max_degc'), 'degC')} (loss of life "
        f"at most {f.get('transformer_loss_of_life_max_days', float('nan')):.3g} d over the period); highest cable "
        f"loading {_fmt(f.get('cable_loading_max_percent'), '%')}; bus voltages outside their band for "
        f"{f.get('voltage_violation_minutes', 0):,.0f} min; lowest power factor at the point of connection "
        f"{_fmt(f.get('power_factor_min'), '-')} (import above 5 % of the cap).")))
    err = f.get("energy_balance_error_rel", float("nan"))
    bad = f.get("load_flow_not_converged_steps", 0)
    st = "PASS" if (math.isfinite(err) and err < 1e-3 and not bad and f.get("loss_iteration_converged", True)) \
        else "WARN"
    err_text = _fmt(100 * err, "%") if err >= 5e-4 else f"{err:.1e}"
    out.append(dict(status=st, text=(
        f"Energy balance over the period (import + PV + battery discharge = IT less shed + cooling + auxiliaries + "
        f"battery auxiliaries + battery charge + losses): relative error {err_text}"
        f" (import {_fmt(f.get('import_energy_mwh'), 'MWh')}, PV {_fmt(f.get('pv_energy_mwh'), 'MWh')}, network "
        f"losses {_fmt(f.get('losses_energy_mwh'), 'MWh')}); loss iteration {_fmt_iter(f)}; load flow not "
        f"converged at {bad} steps.")))
    return out


def _round_trip_text(f: dict) -> str:
    rt = f.get("battery_round_trip_ac", float("nan"))
    if f.get("battery_charge_mwh", 1.0) <= 0:
        return "no charge over the period (AC energy out over AC energy in: n/a)"
    if not math.isfinite(rt) or rt > 1.0:
        return ("AC energy out over AC energy in "
                + (f"{_fmt(100 * rt, '%')}" if math.isfinite(rt) else "n/a")
                + " (not a round-trip efficiency: the SOC at the end of the period is not the SOC at its start)")
    return f"AC energy out over AC energy in {_fmt(100 * rt, '%')}"


def _timeseries_table(f: dict) -> list[dict]:
    """Key figures of one scenario as (figure, value with its unit) rows; figures the study did not report are
    left out."""
    rows = [
        ("Highest grid import", "grid_import_max_mw", "MW"), ("Firm import cap", "cap_mw", "MW"),
        ("Highest 15-minute mean demand", "demand_15min_max_mw", "MW"),
        ("Time above the cap", "cap_exceeded_minutes", "min"),
        ("Energy above the cap", "cap_exceeded_energy_mwh", "MWh"),
        ("Largest excess over the cap", "cap_exceeded_max_mw", "MW"),
        ("Events above the cap", "cap_exceeded_events", "events"),
        ("Longest event above the cap", "cap_exceeded_longest_min", "min"),
        ("15-minute intervals above the cap", "cap_exceeded_15min_intervals", "intervals"),
        ("IT energy shed", "shed_energy_mwh", "MWh"), ("PV energy curtailed", "curtailed_energy_mwh", "MWh"),
        ("Grid import energy", "import_energy_mwh", "MWh"), ("PV energy fed in", "pv_energy_mwh", "MWh"),
        ("Network losses", "losses_energy_mwh", "MWh"),
        ("Battery discharge", "battery_discharge_mwh", "MWh"), ("Battery charge", "battery_charge_mwh", "MWh"),
        ("Battery equivalent full cycles", "battery_equivalent_full_cycles", "cycles"),
        ("Battery equivalent full cycles a year", "battery_equivalent_full_cycles_per_year", "cycles/year"),
        ("Battery AC energy out / AC energy in", "battery_round_trip_ac", "%"),
        ("Battery auxiliaries", "battery_aux_mwh", "MWh"),
        ("Lowest SOC (0-1)", "soc_min", "-"), ("Highest SOC (0-1)", "soc_max", "-"),
        ("Hottest cell", "t_cell_max_degc", "degC"),
        ("Bill with the battery", "annual_cost_cny", "CNY"),
        ("Bill without the battery", "annual_cost_without_battery_cny", "CNY"),
        ("Savings, total", "annual_savings_cny", "CNY"),
        ("Savings, time-of-use arbitrage", "savings_arbitrage_cny", "CNY"),
        ("Savings, maximum-demand charge", "savings_demand_cny", "CNY"),
        ("Savings, power-factor adjustment", "savings_power_factor_cny", "CNY"),
        ("Savings of the PV", "savings_pv_cny", "CNY"), ("Value of the shed IT energy", "shed_value_cny", "CNY"),
        ("Arbitrage, scaled to a year (claim: several million)", "claim_arbitrage_cny_per_year", "CNY/year"),
        ("Events within 2 MW and 4 h above the cap (without battery)", "claim_2mw_4h_events", "events"),
        ("... of which held under the cap", "claim_2mw_4h_events_held", "events"),
        ("Hottest transformer winding", "transformer_hotspot_max_degc", "degC"),
        ("Largest transformer loss of life", "transformer_loss_of_life_max_days", "d"),
        ("Highest cable loading", "cable_loading_max_percent", "%"),
        ("Time with a bus voltage outside its band", "voltage_violation_minutes", "min"),
        ("Lowest power factor at the point of connection (0-1)", "power_factor_min", "-"),
        ("Energy balance error (relative)", "energy_balance_error_rel", "%"),
        ("Steps where the load flow did not converge", "load_flow_not_converged_steps", "steps"),
        ("Run time", ("timing_s", "total"), "s"),
    ]
    out = []
    for label, key, unit in rows:
        v = f.get(key[0], {}).get(key[1]) if isinstance(key, tuple) else f.get(key)
        if v is None:
            continue
        if unit == "%" and key in ("battery_round_trip_ac", "energy_balance_error_rel"):
            v = 100.0 * float(v)
        if unit in ("CNY", "CNY/year"):
            text = _cny(v) + ("/year" if unit == "CNY/year" else "")
        elif unit in ("events", "intervals", "steps"):
            text = f"{int(v):,} {unit}"
        elif unit == "d":
            text = f"{float(v):.3g} d" if math.isfinite(float(v)) else "n/a"
        elif unit in ("min", "cycles", "cycles/year"):
            text = f"{float(v):,.{1 if unit != 'min' else 0}f} {unit}" if math.isfinite(float(v)) else "n/a"
        elif key == "energy_balance_error_rel" and 0 < abs(v) < 0.05:
            text = f"{v:.1e} %"
        else:
            text = _fmt(v, unit)
        out.append({"label": label, "value": text, "key": key if isinstance(key, str) else ".".join(key)})
    return out


# ---- timeseries figures


def _local_times(ds: xr.Dataset, tz: str) -> pd.DatetimeIndex:
    idx = pd.DatetimeIndex(ds.time.values)
    return (idx.tz_localize("UTC") if idx.tz is None else idx).tz_convert(tz)


def _without_battery_mw(ds: xr.Dataset) -> tuple[np.ndarray, str]:
    """Grid import without the battery: the study's own series if the Dataset carries it, else the import with the
    battery's power, auxiliaries, shedding and curtailment undone (network losses as with the battery)."""
    if "p_import_without_battery_mw" in ds:
        return np.asarray(ds.p_import_without_battery_mw.values, float), "the study's import without the battery"
    p = np.nan_to_num(np.asarray(ds.p_import_mw.values, float))
    for name, sign in (("p_battery_mw", 1.0), ("p_battery_aux_mw", -1.0), ("p_shed_mw", 1.0),
                       ("p_curtailed_mw", 1.0)):
        if name in ds:
            p = p + sign * np.nan_to_num(np.asarray(ds[name].values, float))
    return p, "the import with the battery's power, auxiliaries, shedding and curtailment undone (losses as with it)"


def _reduce_steps(values: np.ndarray, k: int, how: str) -> np.ndarray:
    """Blocks of ``k`` steps reduced to their mean or maximum (the tail block may be shorter)."""
    if k <= 1:
        return values
    n = values.shape[0]
    nb = -(-n // k)
    pad = np.full(nb * k, np.nan)
    pad[:n] = values
    blocks = pad.reshape(nb, k)
    with warnings.catch_warnings():  # a block of non-converged steps (NaN) stays NaN, without a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmax(blocks, axis=1) if how == "max" else np.nanmean(blocks, axis=1)


def _worst_week(local: pd.DatetimeIndex, excess: np.ndarray, imp: np.ndarray) -> tuple[int, int]:
    """Positions [a, b) of the 7 local days with the most energy above the cap in ``excess`` (the highest import
    if there is none)."""
    days = local.normalize()
    s = pd.Series(np.maximum(excess, 0.0), index=days).groupby(level=0).sum()
    if not (s > 0).any():
        s = pd.Series(imp, index=days).groupby(level=0).max()
    roll = s.rolling(min(7, len(s)), min_periods=1).sum().shift(-(min(7, len(s)) - 1)).dropna()
    start = roll.idxmax() if len(roll) else s.index[0]
    a = int(np.searchsorted(local, start))
    b = int(np.searchsorted(local, start + pd.Timedelta(days=7)))
    return a, max(b, a + 1)


def _ts_week_figure(case, ds: xr.Dataset, f: dict, cap: float) -> dict | None:
    imp = _numeric(ds, "p_import_mw")
    if imp is None or imp.dims != ("time",):
        return None
    tz = case.spec.site.timezone
    local = _local_times(ds, tz)
    p = np.asarray(imp.values, float)
    p_wo, wo_text = _without_battery_mw(ds)
    a, b = _worst_week(local, p_wo - cap, p)
    dt_s = float(ds.attrs.get("resolution_s", (local[1] - local[0]).total_seconds() if len(local) > 1 else 60))
    k = max(1, -(-(b - a) // 2500))  # about 2,500 points: block maxima for the import, means for the rest
    t = local[a:b][::k]
    m = len(t)
    has_bat = "soc" in ds and _numeric(ds, "p_battery_mw") is not None
    fig = _new_figure(10.0, 6.2 if has_bat else 3.4)
    axes = np.atleast_1d(fig.subplots(3 if has_bat else 1, 1, sharex=True,
                                      gridspec_kw={"height_ratios": [2.2, 1.2, 1]} if has_bat else None))
    ax = axes[0]
    ax.plot(t, _reduce_steps(p_wo[a:b], k, "max")[:m], color="0.6", lw=0.7, label="import without the battery")
    ax.plot(t, _reduce_steps(p[a:b], k, "max")[:m], color="tab:red", lw=0.8, label="grid import with the battery")
    ax.axhline(cap, color="black", ls="--", lw=1.2, label=f"firm cap {_fmt_cap(cap)}")
    ax.set_ylabel("power (MW)")
    top = max(cap, float(np.nanmax(p_wo[a:b], initial=cap)), float(np.nanmax(p[a:b], initial=cap)))
    ax.set_ylim(min(0.0, float(np.nanmin(p[a:b], initial=0.0))), 1.22 * top)
    ax.legend(fontsize=7, ncols=3, loc="upper center")
    ax.grid(alpha=0.3)
    if has_bat:
        pb = _reduce_steps(np.asarray(ds.p_battery_mw.values, float)[a:b], k, "mean")[:m]
        axes[1].fill_between(t, np.maximum(pb, 0.0), 0, color="tab:green", lw=0, label="discharging (+)")
        axes[1].fill_between(t, np.minimum(pb, 0.0), 0, color="tab:blue", lw=0, label="charging (-)")
        if "p_shed_mw" in ds and float(np.nanmax(ds.p_shed_mw.values[a:b], initial=0.0)) > 0:
            axes[1].plot(t, _reduce_steps(np.asarray(ds.p_shed_mw.values, float)[a:b], k, "max")[:m],
                         color="tab:purple", lw=0.8, label="IT shed")
        axes[1].set_ylabel("battery AC\npower (MW)")
        axes[1].legend(fontsize=7, ncols=3, loc="upper right")
        axes[1].grid(alpha=0.3)
        axes[2].plot(t, _reduce_steps(np.asarray(ds.soc.values, float)[a:b], k, "mean")[:m], color="tab:olive",
                     lw=0.9)
        axes[2].set_ylabel("SOC (-)")
        axes[2].set_ylim(0, 1)
        axes[2].grid(alpha=0.3)
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(tz=local.tz)
    axes[-1].xaxis.set_major_locator(locator)
    axes[-1].xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=local.tz))
    axes[-1].set_xlabel(f"local time ({tz})")
    day0 = local[a].strftime("%Y-%m-%d")
    block = f" (maxima of {k * dt_s / 60.0:g}-min blocks; the battery and SOC panels: their means)" if k > 1 else ""
    return {"title": f"Worst week ({day0} to {local[b - 1].strftime('%Y-%m-%d')}): grid import against the firm cap, "
                     f"battery power and SOC",
            "png": _png(fig),
            "caption": f"The seven local days with the most energy above the {_fmt_cap(cap)} cap without the battery "
                       f"(or, with none, the highest import). Grey: {wo_text}; red: grid import with the battery"
                       f"{block}; dashed: the firm cap. "
                       + ("Middle: battery AC power at the PCS terminals (+ discharging); bottom: mean SOC of the "
                          "containers." if has_bat else "")}


def _ts_duration_figure(ds: xr.Dataset, f: dict, cap: float) -> dict | None:
    imp = _numeric(ds, "p_import_mw")
    if imp is None or imp.dims != ("time",):
        return None
    dt_h = float(ds.attrs.get("resolution_s", 60.0)) / 3600.0
    fig = _new_figure(8.0, 4.0)
    ax = fig.subplots()
    p_wo, wo_text = _without_battery_mw(ds)
    for vals, label, color in ((p_wo, "without the battery", "0.6"), (np.asarray(imp.values, float),
                                                                     "grid import with the battery", "tab:red")):
        v = np.sort(vals[np.isfinite(vals)])[::-1]
        if not v.size:
            continue
        at_cap = np.array([np.searchsorted(-v, -cap)] if v[0] > cap else [], dtype=int)
        pos = np.unique(np.concatenate((np.linspace(0, v.size - 1, 2000).astype(int), at_cap)).clip(0, v.size - 1))
        ax.plot(pos * dt_h, v[pos], color=color, lw=1.2, label=label)
    ax.axhline(cap, color="black", ls="--", lw=1.2, label=f"firm cap {_fmt_cap(cap)}")
    ax.set_xlabel("hours of the period at or above the power (h)")
    ax.set_ylabel("power at the point of connection (MW)")
    ax.set_xlim(0, None)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    hours = f.get("cap_exceeded_minutes", 0.0) / 60.0
    return {"title": "Grid import duration curve", "png": _png(fig),
            "caption": f"Grid import sorted from highest to lowest against the {_fmt_cap(cap)} firm cap: above it "
                       f"for {hours:,.1f} h of the period with the battery. Grey: {wo_text}."}


def _ts_monthly_bills(case, ds: xr.Dataset) -> pd.DataFrame | None:
    """Monthly bills (CNY) with and without the battery, from the tariff (:func:`twin.tariff.bill`)."""
    from . import tariff as tariff_mod

    imp = _numeric(ds, "p_import_mw")
    if imp is None or imp.dims != ("time",) or ds.sizes["time"] < 2:
        return None
    tar = tariff_mod.load_tariff(case)
    index = pd.DatetimeIndex(ds.time.values)
    index = index.tz_localize("UTC") if index.tz is None else index
    q = np.nan_to_num(np.asarray(ds.q_import_mvar.values, float)) if "q_import_mvar" in ds else None
    with_b = tariff_mod.bill(tar, index, np.nan_to_num(np.asarray(imp.values, float)), q)["monthly"]
    p_wo, _ = _without_battery_mw(ds)
    q_wo = q
    if q is not None and "q_container_mvar" in ds:
        q_wo = q + np.nan_to_num(np.asarray(ds.q_container_mvar.values, float)).sum(axis=1)
    if "q_import_without_battery_mvar" in ds:
        q_wo = np.asarray(ds.q_import_without_battery_mvar.values, float)
    wo = tariff_mod.bill(tar, index, p_wo, q_wo)["monthly"]
    return pd.DataFrame({"with_battery_cny": with_b["total_cny"], "without_battery_cny": wo["total_cny"],
                         "with_energy_cny": with_b["energy_cny"], "with_demand_cny": with_b["demand_cny"],
                         "without_energy_cny": wo["energy_cny"], "without_demand_cny": wo["demand_cny"]})


def _ts_bill_figure(bills: pd.DataFrame | None, f: dict) -> dict | None:
    if bills is None or not len(bills):
        return None
    fig = _new_figure(max(6.0, 0.6 * len(bills) + 3.0), 3.8)
    ax = fig.subplots()
    x = np.arange(len(bills))
    for off, col, label, color in ((-0.2, "without_battery", "without the battery", "0.65"),
                                   (0.2, "with_battery", "with the battery", "tab:blue")):
        short = col.replace("_battery", "")
        e, d = bills[f"{short}_energy_cny"] / 1e6, bills[f"{short}_demand_cny"] / 1e6
        tot = bills[f"{col}_cny"] / 1e6
        ax.bar(x + off, e, width=0.4, color=color, label=f"{label}: energy")
        ax.bar(x + off, d, width=0.4, bottom=e, color=color, alpha=0.5, hatch="//", edgecolor="white",
               label=f"{label}: maximum demand")
        ax.bar(x + off, tot - e - d, width=0.4, bottom=e + d, color="tab:red", alpha=0.6,
               label="power-factor adjustment" if off > 0 else None)
    ax.set_xticks(x, bills.index, rotation=45 if len(bills) > 6 else 0, fontsize=8)
    ax.set_xlim(-0.5 - 0.4 * (len(bills) < 4), len(bills) - 0.5 + 0.4 * (len(bills) < 4))
    ax.set_ylabel("bill (million CNY)")
    ax.grid(axis="y", alpha=0.3)
    ax2 = ax.twinx()  # the saving is small against the bill: on its own axis
    ax2.plot(x, (bills.without_battery_cny - bills.with_battery_cny) / 1e3, "kD", ms=5,
             label="battery saving (right axis)")
    ax2.axhline(0.0, color="black", lw=0.6, ls=":")
    ax2.set_ylabel("battery saving (thousand CNY)")
    handles, labels = [sum(z, []) for z in zip(ax.get_legend_handles_labels(), ax2.get_legend_handles_labels(),
                                               strict=True)]
    ax.legend(handles, labels, fontsize=7, ncols=2, loc="upper left",
              bbox_to_anchor=(0, -0.18 if len(bills) > 6 else -0.12))
    total_w, total_wo = float(bills.with_battery_cny.sum()), float(bills.without_battery_cny.sum())
    return {"title": "Monthly electricity bills with and without the battery", "png": _png(fig),
            "caption": f"Energy charge (solid), maximum-demand charge (hatched) and power-factor adjustment (red); "
                       f"black diamonds: the battery's saving (bill without less bill with, right axis), "
                       f"per local calendar month ({_n(len(bills), 'month')}), from the tariff; totals "
                       f"{_cny(total_w)} with the battery, "
                       f"{_cny(total_wo)} without (the study: {_cny(f.get('annual_cost_cny'))} and "
                       f"{_cny(f.get('annual_cost_without_battery_cny'))}). A month the period only touches is billed "
                       f"a full month's demand charge."}


# --------------------------------------------------------------------------------------------------------------
# loss of mains (switchover study): switchover to the battery, island, bus transfer, island fault, return to grid

_SW_CLAIM_QUANTITIES = ["load lost", "IT reduction needed at once"]
_SW_FAULT_QUANTITIES = ["fault current vs short-time trip"]


def _sw_figures(fig: dict | None) -> dict | None:
    """The switchover study's key figures (summary.json's nulls back to NaN), or None if it did not run."""
    if not fig or "island_survives_without_shedding" not in fig:
        return None

    def nan(v):
        if isinstance(v, dict):
            return {k: nan(x) for k, x in v.items()}
        return float("nan") if v is None else v

    return {k: nan(v) for k, v in fig.items()}


def _sw_status(checks: pd.DataFrame, quantities: list[str], scenario_prefix: str = "") -> str | None:
    """Worst status of the switchover checks on ``quantities`` (scenarios starting with ``scenario_prefix``)."""
    rows = checks[(checks.study == "switchover") & checks.quantity.isin(quantities)
                  & checks.scenario.str.startswith(scenario_prefix)]
    if not len(rows):
        return None
    return min(rows.status, key=lambda s: _STATUS_ORDER.get(s, 9))


def _finite(v) -> bool:
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def _ms(v) -> str:
    """A time in ms (``"3 ms"``, ``"12.5 ms"``)."""
    return f"{float(v):.4g} ms" if _finite(v) else "n/a"


def _yes_no(v, yes: str = "yes", no: str = "no") -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else (yes if v else no)


def _sw_lost_by_point(f: dict) -> str:
    per = f.get("per_operating_point") or {}
    parts = [f"{op} {_fmt(r.get('load_lost_mw'), 'MW')}" for op, r in per.items() if isinstance(r, dict)]
    return ", ".join(parts)


def _sw_claim(checks: pd.DataFrame, f: dict) -> dict:
    """The seed's claim 'millisecond-class seamless switchover on loss of mains', checked."""
    design = f.get("design_operating_point", "?")
    detect = (f" The PCS detect the islanding {_ms(f['islanding_detected_after_ms'])} after the loss of mains and "
              f"form the island" if _finite(f.get("islanding_detected_after_ms")) else "")
    if f["island_survives_without_shedding"]:
        text = (f"Seed claim 'millisecond-class seamless switchover on loss of mains': held.{detect}; at every "
                f"operating point studied the island carries the whole campus with no server, motor or drive lost "
                f"(largest island pick-up {_fmt(f.get('max_island_pickup_mw'), 'MW')}, design campus load "
                f"{_fmt(f.get('design_campus_load_mw'), 'MW')} at {design}).")
        return dict(status=_sw_status(checks, _SW_CLAIM_QUANTITIES) or "PASS", text=text,
                    covers=[("switchover", q) for q in _SW_CLAIM_QUANTITIES])
    text = (f"Seed claim 'millisecond-class seamless switchover on loss of mains': NOT held.{detect}"
            f"{',' if detect else ''} but the island does not carry the campus: up to "
            f"{_fmt(f.get('load_lost_mw'), 'MW')} of load is lost ({_sw_lost_by_point(f)}; server PSU dropouts up to "
            f"{_fmt(f.get('psu_dropout_mw'), 'MW')}). The largest campus load the island picks up with nothing lost "
            f"is {_fmt(f.get('max_island_pickup_mw'), 'MW')}, against the design campus load "
            f"{_fmt(f.get('design_campus_load_mw'), 'MW')} ({design}).")
    need, delay = f.get("shedding_needed_mw"), f.get("shedding_max_delay_ms")
    avail = f.get("shedding_available_mw")
    if _finite(need):
        text += (f" Keeping the island alive at {design} needs {_fmt(need, 'MW')} of IT load shed (GPU power "
                 f"capping) within {_ms(delay)} of the loss of mains")
        if _finite(avail):
            text += (f"; power capping gives at most {_fmt(avail, 'MW')} (servers at idle power)"
                     + (", so whole server groups must be shed as well" if float(need) > float(avail) else ""))
        text += "."
    else:
        text += f" No shedding at any action delay studied saves the island at {design}."
    return dict(status=_sw_status(checks, _SW_CLAIM_QUANTITIES) or "FAIL", text=text,
                covers=[("switchover", q) for q in _SW_CLAIM_QUANTITIES])


def _sw_fault_text(f: dict) -> str:
    ik, isd = f.get("island_fault_current_ka"), f.get("lv_short_time_trip_ka")
    text = (f"a bolted three-phase fault on an LV board of the island draws {_fmt(ik, 'kA')} (grid-connected: "
            f"{_fmt(f.get('grid_fault_current_ka'), 'kA')}) against the LV incomer's short-time trip Isd "
            f"{_fmt(isd, 'kA')}: ")
    if f.get("island_fault_cleared"):
        return text + "the protection still clears faults in island operation."
    ratio = f" ({100 * float(ik) / float(isd):.0f} % of Isd)" if _finite(ik) and _finite(isd) and isd else ""
    return (text + f"the short-time trip does not pick up{ratio}; in island operation the faults are left to "
                   f"slower protection or to the PCS current limit (settings or a protection scheme for the island "
                   f"are needed).")


def _switchover_headline(checks: pd.DataFrame, fig: dict | None) -> list[dict]:
    """Headline lines of the switchover study (the claim; the island fault); the details are in its section."""
    f = _sw_figures(fig)
    if f is None:
        return []
    claim = _sw_claim(checks, f)
    out = [dict(claim, text=f"Loss of mains: {claim['text']} (See the Loss of mains section.)")]
    if "island_fault_current_ka" in f:
        st = _sw_status(checks, _SW_FAULT_QUANTITIES) or ("PASS" if f.get("island_fault_cleared") else "FAIL")
        t = _sw_fault_text(f)
        out.append(dict(status=st, text=f"Island fault: {t[0].upper()}{t[1:]}",
                        covers=[("switchover", q) for q in _SW_FAULT_QUANTITIES]))
    return out


def _switchover_section(case, checks: pd.DataFrame, ds: xr.Dataset | None, fig: dict | None) -> dict | None:
    """The loss-of-mains section: the simulator's validity, the seed's claim checked, the other scenarios in words,
    a table of the key figures with units, one row per operating point and four small figures."""
    f = _sw_figures(fig)
    if f is None:
        return None
    o = case.spec.switchover
    design = f.get("design_operating_point", "?")
    ops = f.get("operating_points") or list(f.get("per_operating_point") or {})
    validity = f.get("validity") or (ds.attrs.get("validity") if ds is not None else None) or "not reported"
    intro = (f"RMS simulation (twin.transient.sim) of the campus network with the PCS (grid-following, forming the "
             f"island on loss of mains), the server PSUs' hold-up, the DOL motors and the drives, at "
             f"{o.step_ms:g} ms steps: loss of both incomers at {', '.join(ops) or 'the operating points'} (design "
             f"point, with the most IT load: {design}), the island's pick-up and the shedding it needs, the bus "
             f"transfer on the loss of one incomer, a fault in the island and the return to grid.")
    validity_text = (f"Validity of the simulator: {validity}. Values within the first cycle after an event "
                     f"(the grey band of the figures) are indicative only.")
    findings = [_sw_claim(checks, f)]
    per = f.get("per_operating_point") or {}
    if per:
        fmin = min((r.get("frequency_min_hz", float("nan")) for r in per.values()), default=float("nan"),
                   key=lambda x: x if _finite(x) else math.inf)
        imax = max((r.get("pcs_current_max_pu", float("nan")) for r in per.values()), default=float("nan"),
                   key=lambda x: x if _finite(x) else -math.inf)
    else:
        fmin = imax = float("nan")
    st = _sw_status(checks, ["ITIC margin", "frequency", "settled frequency", "overload margin", "BMS limit flags"],
                    "loss of mains") or "INFO"
    findings.append(dict(status=st, text=(
        f"During the loss of mains: ITIC at the servers' supply {_yes_no(f.get('itic_pass'), 'passes', 'fails')} at "
        f"every operating point; lowest hall LV board voltage from one cycle after the event "
        f"{_fmt(f.get('min_hall_lv_voltage_pu'), 'pu')}; lowest island frequency {_fmt(fmin, 'Hz')} (island band "
        f"\u00b1{o.island_frequency_band_hz:g} Hz); highest PCS current {_fmt(imax, 'pu')} of rated, the PCS "
        f"overload curve {_yes_no(f.get('pcs_overload_pass'), 'respected', 'exceeded')}."
        + (f" Server PSU hold-up as modelled: {ds.attrs['psu_holdup_fit']} (load in pu of the PSU rating)."
           if ds is not None and ds.attrs.get("psu_holdup_fit") else ""))))
    if "bus_transfer_itic_pass" in f:
        st = _sw_status(checks, ["ITIC margin"], "bus transfer") or "INFO"
        ss = case.spec.switching_station
        how = (f"the coupler closing {ss.bus_transfer_time_s:g} s after" if ss.bus_transfer
               else "no automatic bus transfer")
        findings.append(dict(status=st, text=(
            f"Bus transfer (one incomer lost, the PCS on its section stopping, {how}): ITIC at the servers' supply "
            f"{_yes_no(f['bus_transfer_itic_pass'], 'passes', 'fails')} (2N feeds); the LV boards of the dead "
            f"section stay below 0.9 pu for {_fmt(f.get('bus_transfer_longest_dip_below_0_9_pu_s'), 's')}; load lost "
            f"{_fmt(f.get('bus_transfer_load_lost_mw'), 'MW')} (motors and drives); the battery "
            + ("must act to ride the servers through." if f.get("bus_transfer_battery_must_act")
               else "need not act for the servers."))))
    if "island_fault_current_ka" in f:
        st = _sw_status(checks, _SW_FAULT_QUANTITIES) or ("PASS" if f.get("island_fault_cleared") else "FAIL")
        t = _sw_fault_text(f)
        bus = ds.attrs.get("fault_bus") if ds is not None else None
        findings.append(dict(status=st, text=(f"Island fault{f' on {bus}' if bus else ''} at the island's pick-up "
                                              f"load: {t}")))
    if "resync_closed_after_s" in f:
        st = _sw_status(checks, ["reclosed within 3 s"], "return to grid") or "INFO"
        closed = f["resync_closed_after_s"]
        when = (f"the incomer closes on synchro-check {_fmt(closed, 's')} after the grid returns"
                if _finite(closed) else "the incomer does not close on synchro-check within 3 s")
        findings.append(dict(status=st, text=(
            f"Return to grid ({o.return_to_grid_s:g} s after the loss of mains, at the island's pick-up load): {when}; "
            f"ITIC at the servers' supply {_yes_no(f.get('resync_itic_pass'), 'passes', 'fails')}; load lost "
            f"{_fmt(f.get('resync_load_lost_mw'), 'MW')}.")))
    figures = [] if ds is None else [g for g in (_sw_lom_figure(case, ds, f), _sw_shed_figure(ds, f),
                                                 _sw_bus_transfer_figure(case, ds, f),
                                                 _sw_resync_figure(case, ds, f)) if g is not None]
    return {"intro": intro, "validity": validity_text, "findings": findings, "table": _sw_table(f),
            "points": _sw_points_table(f), "figures": figures}


def _sw_table(f: dict) -> list[dict]:
    """The key figures with their units (a yes/no in words)."""
    rows = [
        ("Design operating point (most IT load)", "design_operating_point", "text"),
        ("Islanding detected after the loss of mains", "islanding_detected_after_ms", "ms"),
        ("Island survives without shedding", "island_survives_without_shedding", "yes/no"),
        ("Load lost on loss of mains (worst operating point)", "load_lost_mw", "MW"),
        ("Server PSU dropouts (worst operating point)", "psu_dropout_mw", "MW"),
        ("Design campus load", "design_campus_load_mw", "MW"),
        ("Largest island pick-up with nothing lost", "max_island_pickup_mw", "MW"),
        ("IT shedding needed at the design point (shortest delay)", "shedding_needed_mw", "MW"),
        ("Longest action delay at which shedding saves the island", "shedding_max_delay_ms", "ms"),
        ("GPU power capping available (servers down to idle)", "shedding_available_mw", "MW"),
        ("Lowest hall LV board voltage (from one cycle after)", "min_hall_lv_voltage_pu", "pu"),
        ("ITIC at the servers' supply, loss of mains", "itic_pass", "pass/fail"),
        ("PCS within their overload curve", "pcs_overload_pass", "yes/no"),
        ("Bus transfer: ITIC at the servers' supply", "bus_transfer_itic_pass", "pass/fail"),
        ("Bus transfer: longest LV board dip below 0.9 pu", "bus_transfer_longest_dip_below_0_9_pu_s", "s"),
        ("Bus transfer: load lost", "bus_transfer_load_lost_mw", "MW"),
        ("Bus transfer: battery must act", "bus_transfer_battery_must_act", "yes/no"),
        ("Island fault current (LV board, bolted, 100 ms)", "island_fault_current_ka", "kA"),
        ("Same fault, grid-connected", "grid_fault_current_ka", "kA"),
        ("LV incomer short-time trip Isd", "lv_short_time_trip_ka", "kA"),
        ("Island fault cleared by the short-time trip", "island_fault_cleared", "yes/no"),
        ("Return to grid: incomer closed after", "resync_closed_after_s", "s"),
        ("Return to grid: ITIC at the servers' supply", "resync_itic_pass", "pass/fail"),
        ("Return to grid: load lost", "resync_load_lost_mw", "MW"),
    ]
    out = _key_rows(f, rows)
    by_delay = f.get("shedding_by_delay_mw") or {}
    for d, mw in by_delay.items():
        out.append({"label": f"IT shedding needed, acting {d} ms after the loss of mains",
                    "value": _fmt(mw, "MW") if _finite(mw) else "none saves the island",
                    "key": f"shedding_by_delay_mw.{d}"})
    return out


def _sw_points_table(f: dict) -> dict | None:
    """One row per operating point: the loss of mains there."""
    per = f.get("per_operating_point") or {}
    if not per:
        return None
    cols = [("Campus load (MW)", "campus_load_mw", "MW"), ("Load lost (MW)", "load_lost_mw", "MW"),
            ("PSU dropouts (MW)", "psu_dropout_mw", "MW"), ("Lowest LV voltage (pu)", "min_hall_lv_voltage_pu", "pu"),
            ("Lowest frequency (Hz)", "frequency_min_hz", "Hz"), ("Highest PCS current (pu)", "pcs_current_max_pu",
                                                                  "pu"),
            ("ITIC margin (ms)", "itic_margin_ms_min", "ms")]
    rows = []
    for op, r in per.items():
        if not isinstance(r, dict):
            continue
        cells = [_plain(r.get(k), u) if u != "ms" else _ms(r.get(k)).removesuffix(" ms") for _, k, u in cols]
        surv = r.get("survives")
        rows.append({"op": op, "cells": cells, "status": "PASS" if surv else "FAIL",
                     "survives": _yes_no(surv)})
    return {"headers": [c for c, _, _ in cols], "rows": rows}


# ---- switchover figures


def _sw_event_axes(ax, cycle: float) -> None:
    """The event at 0 and its first cycle (``cycle`` in the axis' unit: outside the RMS model's validity) shaded."""
    ax.axvspan(0.0, cycle, color="0.85", lw=0, zorder=0)
    ax.axvline(0.0, color="0.3", lw=0.8, ls=":")
    ax.grid(alpha=0.3)
    ax.tick_params(labelsize=7)


def _sw_lom_figure(case, ds: xr.Dataset, f: dict) -> dict | None:
    """Loss of mains at the design point: hall supply voltage, PCS current, frequency, IT load served."""
    design = f.get("design_operating_point")
    v = _numeric(ds, "hall_supply_v_pu")
    if v is None or "operating_point" not in v.dims or "time" not in v.dims:
        return None
    labels = _labels(v, "operating_point")
    if design not in labels:
        design = labels[0]
    t_ev = float(ds.attrs.get("t_event_s", 0.0))
    win = ds.sel(operating_point=design).sel(time=slice(t_ev - 0.05, t_ev + 0.5))
    x = (win.time.to_numpy() - t_ev) * 1000.0
    fig = _new_figure(9.0, 4.6)
    axes = fig.subplots(2, 2, sharex=True).ravel()
    for h in _labels(win, "hall"):
        axes[0].plot(x, win.hall_supply_v_pu.sel(hall=h).astype(float), lw=0.9, label=h)
    axes[0].axhline(0.9, color="black", lw=0.7, ls="--")
    axes[0].set_ylabel("hall supply\nvoltage (pu)", fontsize=8)
    axes[0].legend(fontsize=6, ncols=4, loc="lower right")
    if "inverter_i_pu" in win:
        kinds = _labels(win, "inverter_kind") if "inverter_kind" in win.coords else []
        invs = [n for n, k in zip(_labels(win, "inverter"), kinds, strict=False) if k == "PCS"] or \
            _labels(win, "inverter")
        for n in invs:
            axes[1].plot(x, win.inverter_i_pu.sel(inverter=n).astype(float), lw=0.9, label=n)
        axes[1].axhline(1.0, color="black", lw=0.7, ls="--")
        axes[1].legend(fontsize=6, ncols=2, loc="lower right")
    axes[1].set_ylabel("PCS current\n(pu of rated)", fontsize=8)
    if "frequency_hz" in win:
        f0 = float(case.spec.supply.frequency_hz)
        band = case.spec.switchover.island_frequency_band_hz
        axes[2].plot(x, win.frequency_hz.astype(float), color="tab:purple", lw=1.0)
        for y in (f0 - band, f0 + band):
            axes[2].axhline(y, color="black", lw=0.7, ls="--")
    axes[2].set_ylabel("frequency (Hz)", fontsize=8)
    if "hall_served_mw" in win:
        axes[3].plot(x, win.hall_served_mw.sum("hall").astype(float), color="tab:green", lw=1.0, label="served")
        if "hall_lost_mw" in win:
            axes[3].plot(x, win.hall_lost_mw.sum("hall").astype(float), color="tab:red", lw=1.0,
                         label="dropped out")
        axes[3].set_ylim(bottom=0)
        axes[3].legend(fontsize=6, loc="center right")
    axes[3].set_ylabel("IT load, all\nhalls (MW)", fontsize=8)
    for ax in axes:
        _sw_event_axes(ax, 20.0)
        ax.set_xlim(x[0], x[-1])
    for ax in axes[2:]:
        ax.set_xlabel("time after the loss of mains (ms)", fontsize=8)
    return {"title": f"Loss of mains at {design}: the first 0.5 s", "png": _png(fig),
            "caption": f"Both incomers lost at 0 ms (t = {t_ev:g} s of the simulation). Voltage the servers see "
                       f"per hall (the better of their 2N feeds, or the UPS output; dashed 0.9 pu), PCS current in pu "
                       f"of rated (dashed: rated), island frequency (dashed: the "
                       f"\u00b1{case.spec.switchover.island_frequency_band_hz:g} Hz island band) and the IT load "
                       f"served and dropped out. Grey: the first cycle, where the RMS model is not valid."}


def _sw_shed_figure(ds: xr.Dataset, f: dict) -> dict | None:
    need = _numeric(ds, "shed_needed_mw")
    if need is None or need.dims != ("shed_delay_ms",):
        return None
    d = np.asarray(ds.shed_delay_ms.values, float)
    y = np.asarray(need.values, float)
    pos = np.arange(d.size)  # the delays are spread over decades: evenly spaced, labelled
    fig = _new_figure(5.6, 3.0)
    ax = fig.subplots()
    ok = np.isfinite(y)
    ax.plot(pos[ok], y[ok], "o-", color="tab:blue", lw=1.0, ms=4, label="IT shedding needed")
    avail = f.get("shedding_available_mw")
    top = float(np.nanmax(y))
    if _finite(avail):
        ax.axhline(float(avail), color="tab:orange", lw=1.0, ls="--", label="GPU power capping available")
        top = max(top, float(avail))
    it0 = None
    design = f.get("design_operating_point")
    if "hall_served_mw" in ds and "operating_point" in ds.dims and design in _labels(ds, "operating_point"):
        it0 = float(ds.hall_served_mw.sel(operating_point=design).isel(time=0).sum())
        ax.axhline(it0, color="black", lw=0.8, ls=":", label="IT load at the design point")
        top = max(top, it0)
    if (~ok).any():
        ax.plot(pos[~ok], np.full((~ok).sum(), 1.05 * top), "x", color="tab:red", ms=7,
                label="no shedding saves the island")
    ax.set_ylim(0, 1.18 * top)
    ax.set_xticks(pos, [f"{v:g}" for v in d], fontsize=7)
    ax.tick_params(labelsize=7)
    ax.set_xlabel("action delay after the loss of mains (ms)", fontsize=8)
    ax.set_ylabel("IT load shed (MW)", fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, loc="lower right")
    return {"title": f"Shedding that keeps the island alive against the action delay ({design})", "png": _png(fig),
            "caption": "The least IT load shed (GPU power capping, then whole server groups) at each action delay "
                       "that keeps the island alive with nothing else lost; a red cross: no amount of shedding at that "
                       "delay saves it. Dashed: what power capping alone can give (servers at idle power)."}


def _sw_bus_transfer_figure(case, ds: xr.Dataset, f: dict) -> dict | None:
    sup = _numeric(ds, "bus_transfer_supply_v_pu")
    brd = _numeric(ds, "bus_transfer_board_vm_pu")
    if sup is None or brd is None or "time_bt" not in ds.coords:
        return None
    t_ev = float(ds.attrs.get("t_event_s", 0.0))
    x = ds.time_bt.to_numpy() - t_ev
    fig = _new_figure(9.0, 2.6)
    axes = fig.subplots(1, 2, sharey=True)
    for h in _labels(sup, "hall"):
        axes[0].plot(x, sup.sel(hall=h), lw=0.9, label=h)
    for b in _labels(brd, "board"):
        axes[1].plot(x, brd.sel(board=b), lw=0.9, label=b)
    ss = case.spec.switching_station
    for ax, title in zip(axes, ("voltage the servers see", "LV board voltage"), strict=True):
        ax.axhline(0.9, color="black", lw=0.7, ls="--")
        if ss.bus_transfer:
            ax.axvline(ss.bus_transfer_time_s, color="tab:green", lw=0.8, ls="-.")
        _sw_event_axes(ax, 0.02)
        ax.set_xlim(x[0], x[-1])
        ax.set_title(title, fontsize=8)
        ax.set_xlabel("time after the incomer is lost (s)", fontsize=8)
        ax.legend(fontsize=6, ncols=4 if ax is axes[1] else 2, loc="center right")
    axes[0].set_ylabel("voltage (pu)", fontsize=8)
    how = (f"the coupler closes {ss.bus_transfer_time_s:g} s later (dash-dot)" if ss.bus_transfer
           else "no automatic bus transfer")
    return {"title": "Bus transfer on the loss of one incomer", "png": _png(fig),
            "caption": f"One incomer lost at 0 s, the PCS on its section stop (anti-islanding), {how}. Left: the "
                       f"voltage the servers see per hall (2N feeds); right: each hall LV board. Dashed: 0.9 pu; "
                       f"longest dip below it {_fmt(f.get('bus_transfer_longest_dip_below_0_9_pu_s'), 's')}."}


def _sw_resync_figure(case, ds: xr.Dataset, f: dict) -> dict | None:
    fr = _numeric(ds, "resync_frequency_hz")
    sup = _numeric(ds, "resync_supply_v_pu")
    if fr is None or sup is None or "time_rs" not in ds.coords:
        return None
    t_ev = float(ds.attrs.get("t_event_s", 0.0))
    x = ds.time_rs.to_numpy() - t_ev
    t_ret = case.spec.switchover.return_to_grid_s
    closed = f.get("resync_closed_after_s")
    fig = _new_figure(9.0, 2.4)
    axes = fig.subplots(1, 2, sharex=True)
    axes[0].plot(x, fr, color="tab:purple", lw=1.0)
    axes[0].set_ylabel("frequency (Hz)", fontsize=8)
    for h in _labels(sup, "hall"):
        axes[1].plot(x, sup.sel(hall=h), lw=0.9, label=h)
    axes[1].set_ylabel("hall supply voltage (pu)", fontsize=8)
    axes[1].legend(fontsize=6, ncols=4, loc="center right")
    for ax in axes:
        _sw_event_axes(ax, 0.02)
        ax.set_xlim(x[0], x[-1])
        ax.axvline(t_ret, color="tab:blue", lw=0.8, ls="--")
        if _finite(closed):
            ax.axvline(t_ret + float(closed), color="tab:green", lw=0.8, ls="-.")
        ax.set_xlabel("time after the loss of mains (s)", fontsize=8)
    when = (f"the incomer closes on synchro-check {_fmt(closed, 's')} later (dash-dot)" if _finite(closed)
            else "the incomer does not close")
    return {"title": "Return to grid", "png": _png(fig),
            "caption": f"Island at its pick-up load; the grid returns {t_ret:g} s after the loss of mains (dashed), "
                       f"the grid-forming PCS synchronise and {when}. Island frequency and the voltage the servers "
                       f"see per hall."}


# --------------------------------------------------------------------------------------------------------------
# utility voltage dips (ridethrough study) and AI-training power swings (swing study)

_RT_OUTCOMES = ("rides through", "transfers to the battery", "load lost")
_RT_COLOURS = ("#81c995", "#8ab4f8", "#f28b82")  # green, blue, red
_RT_LOST_QUANTITIES = ["worst load lost over the dip map"]
_RT_LVRT_QUANTITIES = ["LVRT violations (island transfers inside the curve)"]
_RT_SEQ_QUANTITIES = ["load the grid loses"]
_RT_TYPE_WORDS = {"A": "balanced (type A)", "B": "single-phase (type B at 10 kV)",
                  "C": "phase-to-phase (type C at 10 kV, D on the LV boards)"}


def _figs_nan(fig: dict | None) -> dict:
    """A study's key figures with summary.json's nulls back to NaN ({} if it did not run)."""
    def nan(v):
        if isinstance(v, dict):
            return {k: nan(x) for k, x in v.items()}
        return float("nan") if v is None else v

    return {k: nan(v) for k, v in (fig or {}).items()}


def _study_status(checks: pd.DataFrame, study: str, quantities: list[str] | None = None, scenario=None) -> str | None:
    """Worst status of a study's checks (on ``quantities``; scenarios for which ``scenario(name)`` is true)."""
    rows = checks[checks.study == study]
    if quantities is not None:
        rows = rows[rows.quantity.isin(quantities)]
    if scenario is not None and len(rows):
        rows = rows[rows.scenario.astype(str).map(scenario)]
    if not len(rows):
        return None
    return min(rows.status, key=lambda s: _STATUS_ORDER.get(s, 9))


def _key_rows(f: dict, rows: list[tuple[str, str, str]]) -> list[dict]:
    """Table rows (label, value with unit, summary.json key) for the keys present in ``f``."""
    out = []
    for label, key, unit in rows:
        if key not in f:
            continue
        v = f[key]
        if unit == "text":
            text = str(v)
        elif unit == "yes/no":
            text = _yes_no(v)
        elif unit == "pass/fail":
            text = _yes_no(v, "pass", "fail")
        elif unit == "count":
            text = str(int(v)) if _finite(v) else "n/a"
        elif unit == "ms":
            text = _ms(v)
        else:
            text = _fmt(v, unit)
        out.append({"label": label, "value": text, "key": key})
    return out


def _int(v) -> int | None:
    return int(v) if _finite(v) else None


# ---- ride-through


def _rt_dip_counts(f: dict) -> str:
    n = _int(f.get("dips"))
    parts = [f"{_int(f[k])} {w}" for k, w in (("dips_rides_through", "ride through"),
                                             ("dips_transfers_to_battery", "transfer to the battery"),
                                             ("dips_load_lost", "lose load")) if _int(f.get(k)) is not None]
    if not parts:
        return ""
    return f"Of the {n} dips of the map, " + ", ".join(parts) + "." if n is not None else ", ".join(parts) + "."


def _rt_claim(checks: pd.DataFrame, f: dict) -> dict:
    """The finding 'the campus rides through utility dips without losing load', checked."""
    worst = f.get("load_lost_mw_worst")
    counts_text = _rt_dip_counts(f)
    st = _study_status(checks, "ridethrough", _RT_LOST_QUANTITIES)
    held = _finite(worst) and float(worst) <= 1e-6
    if held:
        text = (f"Finding 'the campus rides through utility voltage dips with nothing lost': held. {counts_text} "
                f"No server, motor or drive is lost anywhere on the map.")
        return dict(status=st or "PASS", text=text, covers=[("ridethrough", q) for q in _RT_LOST_QUANTITIES])
    text = (f"Finding 'the campus rides through utility voltage dips with nothing lost': NOT held. {counts_text} "
            f"Up to {_fmt(worst, 'MW')} of load is lost on one dip and the grid sees up to "
            f"{_fmt(f.get('grid_lost_mw_worst'), 'MW')} of import disappear 1 s after the dip.")
    return dict(status=st or ("FAIL" if _finite(worst) else "INFO"), text=text,
                covers=[("ridethrough", q) for q in _RT_LOST_QUANTITIES])


def _rt_virginia_text(f: dict) -> str:
    lost = f.get("virginia_sequence_load_lost_mw")
    text = (f"in the constructed Virginia-like sequence of dips the grid loses {_fmt(lost, 'MW')} of load "
            f"(servers lost {_fmt(f.get('virginia_servers_lost_mw'), 'MW')}); the campus transfers to its battery "
            f"{_int(f.get('virginia_transfers')) if _int(f.get('virginia_transfers')) is not None else 'n/a'} "
            f"time(s)")
    if "virginia_locked_out" in f:
        text += (" and its transfer logic locks out (further dips reach the load directly)"
                 if f.get("virginia_locked_out") else " and its transfer logic does not lock out")
    if "virginia_load_lost_mw_without_transfer" in f:
        text += (f"; without any transfer to the battery the grid would lose "
                 f"{_fmt(f['virginia_load_lost_mw_without_transfer'], 'MW')}"
                 + (f" (servers lost {_fmt(f['virginia_servers_lost_mw_without_transfer'], 'MW')})"
                    if "virginia_servers_lost_mw_without_transfer" in f else ""))
    return text + "."


_RT_RECLOSE_QUANTITIES = ["load lost"]


def _rt_reclose_text(f: dict) -> str:
    back = f.get("reclosing_back_on_grid_after_s")
    return (f"a dip followed by the utility's auto-reclosing loses {_fmt(f['reclosing_load_lost_mw'], 'MW')} of load"
            + (f", the grid losing {_fmt(f.get('reclosing_grid_lost_mw'), 'MW')}" if "reclosing_grid_lost_mw" in f
               else "")
            + (f"; the campus is back on the grid after {_fmt(back, 's')}" if _finite(back) else "") + ".")


def _rt_headline(checks: pd.DataFrame, fig: dict | None) -> list[dict]:
    """Headline lines of the ride-through study; the details are in its section."""
    f = _figs_nan(fig)
    if "load_lost_mw_worst" not in f:
        return []
    claim = _rt_claim(checks, f)
    out = [dict(claim, text=f"Utility dips: {claim['text']} (See the Utility voltage dips section.)")]
    if "virginia_sequence_load_lost_mw" in f:
        st = _study_status(checks, "ridethrough", _RT_SEQ_QUANTITIES)
        t = _rt_virginia_text(f)
        covers = [("ridethrough", q) for q in _RT_SEQ_QUANTITIES]
        if "reclosing_load_lost_mw" in f:
            t += f" Also, {_rt_reclose_text(f)}"
            covers += [("ridethrough", q) for q in _RT_RECLOSE_QUANTITIES]
            st = min([x for x in (st, _study_status(checks, "ridethrough", _RT_RECLOSE_QUANTITIES,
                                                    lambda x: "reclos" in x)) if x] or [None],
                     key=lambda x: _STATUS_ORDER.get(x, 9))
        out.append(dict(status=st or "INFO", text=f"Sequence of dips: {t[0].upper()}{t[1:]}", covers=covers))
    lv = _rt_lvrt_finding(checks, f, None, None)
    if lv is not None:
        out.append(dict(lv, text=f"Utility dips: {lv['text']}"))
    return out


def _rt_lvrt_curve(case, ds: xr.Dataset | None) -> tuple[list[float], list[float]] | None:
    """The PCS's LVRT curve (times since the dip's start, voltages): the Dataset's attributes, else the case's."""
    t = v = None
    if ds is not None and "lvrt_t_s" in ds.attrs and "lvrt_v_pu" in ds.attrs:
        t, v = ds.attrs["lvrt_t_s"], ds.attrs["lvrt_v_pu"]
    else:
        o = getattr(getattr(case, "spec", None), "ridethrough", None)
        t, v = getattr(o, "lvrt_t_s", None), getattr(o, "lvrt_v_pu", None)
    try:
        t, v = [float(x) for x in np.atleast_1d(t)], [float(x) for x in np.atleast_1d(v)]
    except (TypeError, ValueError):
        return None
    return (t, v) if len(t) >= 2 and len(t) == len(v) else None


def _rt_lvrt_finding(checks: pd.DataFrame, f: dict, case, ds: xr.Dataset | None) -> dict | None:
    """The PCS against its LVRT curve (and HVRT, if the study reports it)."""
    if "pcs_lvrt_pass" not in f and "lvrt_violations" not in f:
        return None
    n = _int(f.get("lvrt_violations"))
    st = _study_status(checks, "ridethrough", _RT_LVRT_QUANTITIES)
    ok = f.get("pcs_lvrt_pass")
    if ok is None or isinstance(ok, float):
        ok = n == 0 if n is not None else None
    curve = _rt_lvrt_curve(case, ds) if case is not None else None
    ctext = (" (curve: " + ", ".join(f"{v:g} pu at {t:g} s" for t, v in zip(*curve, strict=True)) + "; L)"
             if curve else "")
    text = (f"PCS low-voltage ride-through{ctext}: "
            + ("the campus never islands inside the curve, where the PCS must stay connected to the grid."
               if ok else f"the campus islands inside the curve, where the PCS must stay connected to the grid, on "
                          f"{n if n is not None else 'some'} dip(s) of the map (LVRT violations).")
            + (f" HVRT: {_yes_no(f['pcs_hvrt_pass'], 'within the curve', 'outside the curve')}."
               if "pcs_hvrt_pass" in f else ""))
    return dict(status=st or ("PASS" if ok else "FAIL" if ok is not None else "INFO"), text=text,
                covers=[("ridethrough", q) for q in _RT_LVRT_QUANTITIES])


def _ridethrough_section(case, checks: pd.DataFrame, ds: xr.Dataset | None, fig: dict | None) -> dict | None:
    """The utility-dips section: method and validity, the finding checked, the Virginia-like sequence, the PCS's
    LVRT, the transfer logic, a table of key figures and the outcome maps and the sequence as figures."""
    f = _figs_nan(fig)
    if not f and ds is None:
        return None
    o = getattr(case.spec, "ridethrough", None)
    op = f.get("operating_point") or (ds.attrs.get("operating_point") if ds is not None else None) or "?"
    kinds = _labels(ds, "dip_type") if ds is not None and "dip_type" in ds.coords else list(getattr(o, "types", []))
    kind_words = ", ".join(_RT_TYPE_WORDS.get(k, f"type {k}") for k in kinds) or "the dip types of the case"
    step = getattr(getattr(case.spec, "switchover", None), "step_ms", None)
    intro = (f"RMS simulation (twin.transient.sim) of the campus network at {op}"
             f"{f', {step:g} ms steps' if step else ''}: the utility's voltage falls to a retained voltage for a "
             f"duration and returns, for every combination of dip type ({kind_words}), retained voltage and "
             f"duration, and in a constructed sequence of dips like the Virginia event (six faults in 82 s on 10 "
             f"July 2024). Each dip either rides through (the campus stays on the grid, nothing lost), transfers to "
             f"the battery (the PCS island the campus, nothing lost) or loses load (server PSUs beyond their "
             f"hold-up, motor contactors, drives). Unbalanced dips are judged on the worst phase at each hall's LV "
             f"board behind the Dyn11 transformers (the simulator is positive-sequence; the negative sequence is "
             f"carried in proportion).")
    validity = f.get("validity") or (ds.attrs.get("validity") if ds is not None else None) or "not reported"
    validity_text = (f"Validity of the simulator: {validity}. Dips shorter than about one cycle are indicative "
                     f"only.")
    findings = []
    if "load_lost_mw_worst" in f:
        findings.append(_rt_claim(checks, f))
    # per dip type, from the map
    if ds is not None and "outcome" in ds and "dip_type" in ds["outcome"].dims:
        lost = _numeric(ds, "load_lost_mw")
        for k in kinds:
            oc = np.asarray(ds["outcome"].sel(dip_type=k).values)
            n = [int((oc == i).sum()) for i in range(3)]
            worst = float(lost.sel(dip_type=k).max()) if lost is not None else float("nan")
            st = _study_status(checks, "ridethrough", _RT_LOST_QUANTITIES, lambda s, k=k: f"(type {k}" in s)
            findings.append(dict(status=st or ("PASS" if n[2] == 0 else "FAIL"), text=(
                f"{_RT_TYPE_WORDS.get(k, f'Type {k}')[0].upper()}{_RT_TYPE_WORDS.get(k, f'type {k}')[1:]} dips: "
                f"{n[0]} ride through, {n[1]} transfer to the battery, {n[2]} lose load"
                + (f" (worst {_fmt(worst, 'MW')})" if n[2] else "") + ".")))
    if "virginia_sequence_load_lost_mw" in f:
        t = _rt_virginia_text(f)
        findings.append(dict(status=_study_status(checks, "ridethrough", _RT_SEQ_QUANTITIES) or "INFO",
                             text=f"Sequence of dips: {t[0].upper()}{t[1:]}"))
    if "reclosing_load_lost_mw" in f:
        st = _study_status(checks, "ridethrough", ["load lost"], lambda s: "reclos" in s)
        t = _rt_reclose_text(f)
        findings.append(dict(status=st or "INFO", text=f"Reclosing: {t[0].upper()}{t[1:]}"))
    lv = _rt_lvrt_finding(checks, f, case, ds)
    if lv is not None:
        findings.append(lv)
    logic = ds.attrs.get("transfer_logic") if ds is not None else None
    findings.append(dict(status="INFO", text=(
        "The campus's transfer logic (data: models/dynamics [transfer]"
        + (f": {logic}" if logic else "") + ") decides how much load the grid loses: whether a dip islands the "
        "campus onto its battery (the grid loses the import, the load is kept), when it returns to the grid, and "
        "when repeated transfers lock it out so that later dips reach the load directly.")))
    table = _key_rows(f, [
        ("Operating point", "operating_point", "text"),
        ("Dips simulated", "dips", "count"),
        ("Dips ridden through (on the grid, nothing lost)", "dips_rides_through", "count"),
        ("Dips transferred to the battery (nothing lost)", "dips_transfers_to_battery", "count"),
        ("Dips with load lost", "dips_load_lost", "count"),
        ("Dips within ITIC at every hall's supply", "itic_pass_dips", "count"),
        ("Worst load lost over the map", "load_lost_mw_worst", "MW"),
        ("Worst import the grid loses 1 s after a dip", "grid_lost_mw_worst", "MW"),
        ("Virginia sequence: load the grid loses", "virginia_sequence_load_lost_mw", "MW"),
        ("Virginia sequence: servers lost", "virginia_servers_lost_mw", "MW"),
        ("Virginia sequence: transfers to the battery", "virginia_transfers", "count"),
        ("Virginia sequence: transfer logic locked out", "virginia_locked_out", "yes/no"),
        ("Virginia sequence without transfers: load the grid loses", "virginia_load_lost_mw_without_transfer", "MW"),
        ("Virginia sequence without transfers: servers lost", "virginia_servers_lost_mw_without_transfer", "MW"),
        ("Dip with reclosing: load lost", "reclosing_load_lost_mw", "MW"),
        ("Dip with reclosing: load the grid loses", "reclosing_grid_lost_mw", "MW"),
        ("Dip with reclosing: back on the grid after", "reclosing_back_on_grid_after_s", "s"),
        ("PCS LVRT (no island transfer inside the curve)", "pcs_lvrt_pass", "pass/fail"),
        ("LVRT violations (dips)", "lvrt_violations", "count"),
        ("PCS HVRT", "pcs_hvrt_pass", "pass/fail"),
    ])
    figures = []
    if ds is not None:
        figures += [g for g in _rt_map_figures(case, ds) if g is not None]
        g = _rt_virginia_figure(case, ds, f)
        if g is not None:
            figures.append(g)
    return {"intro": intro, "validity": validity_text, "findings": findings, "table": table, "figures": figures}


def _rt_map_figures(case, ds: xr.Dataset) -> list[dict]:
    """One outcome map per dip type: outcome over retained voltage x duration, load lost in the cells, the LVRT."""
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.patches import Patch

    oc = _numeric(ds, "outcome")
    if oc is None or set(oc.dims) != {"dip_type", "depth_pu", "duration_s"}:
        return []
    oc = oc.transpose("dip_type", "depth_pu", "duration_s")
    lost = _numeric(ds, "load_lost_mw")
    lost = lost.transpose("dip_type", "depth_pu", "duration_s") if lost is not None and set(lost.dims) == set(
        oc.dims) else None
    depths = np.asarray(ds.depth_pu.values, float)
    durs = np.asarray(ds.duration_s.values, float)
    curve = _rt_lvrt_curve(case, ds)
    cmap, norm = ListedColormap(list(_RT_COLOURS)), BoundaryNorm([-0.5, 0.5, 1.5, 2.5], 3)
    out = []
    for k in _labels(oc, "dip_type"):
        z = np.asarray(oc.sel(dip_type=k).values, float)
        fig = _new_figure(7.6, 3.9)
        ax = fig.subplots()
        # evenly spaced cells (the durations span decades), labelled with their values
        ax.pcolormesh(np.arange(durs.size + 1) - 0.5, np.arange(depths.size + 1) - 0.5, np.ma.masked_invalid(z),
                      cmap=cmap, norm=norm, edgecolors="white", linewidth=0.6)
        if lost is not None and depths.size * durs.size <= 200:
            lv = np.asarray(lost.sel(dip_type=k).values, float)
            for i in range(depths.size):
                for j in range(durs.size):
                    if _finite(lv[i, j]) and lv[i, j] > 1e-6:
                        ax.text(j, i, f"{lv[i, j]:.1f}", ha="center", va="center", fontsize=6.5, color="0.15")
        if curve is not None and depths.size >= 2 and durs.size >= 2 and np.all(np.diff(depths) > 0) and \
                np.all(np.diff(durs) > 0):
            # a rectangular dip of duration T stays inside the curve if its voltage is above the curve at T (the
            # curve rises with time): drawn on the map's axes, by interpolation between the cells
            tt = np.geomspace(durs[0], durs[-1], 60)
            vb = np.interp(tt, curve[0], curve[1], right=curve[1][-1])
            xs = np.interp(np.log(tt), np.log(durs), np.arange(durs.size))
            ys = np.interp(vb, depths, np.arange(depths.size), left=-0.5, right=depths.size - 0.5)
            ax.plot(xs, ys, color="black", lw=1.4, ls="--")
        ax.set_xticks(np.arange(durs.size), [f"{d:g}" for d in durs], fontsize=7)
        ax.set_yticks(np.arange(depths.size), [f"{d:g}" for d in depths], fontsize=7)
        ax.set_xlabel("dip duration (s)", fontsize=8)
        ax.set_ylabel("retained voltage (pu)", fontsize=8)
        handles = [Patch(facecolor=c, label=w) for c, w in zip(_RT_COLOURS, _RT_OUTCOMES, strict=True)]
        if curve is not None:
            from matplotlib.lines import Line2D
            handles.append(Line2D([], [], color="black", lw=1.4, ls="--", label="PCS LVRT curve"))
        ax.legend(handles=handles, fontsize=6.5, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        words = _RT_TYPE_WORDS.get(k, f"type {k}")
        out.append({"title": f"Outcome of {words} dips", "png": _png(fig), "caption": (
            f"Outcome of each dip at the point of connection ({words}) over its retained voltage and duration: rides "
            f"through (green), transfers to the battery (blue), load lost (red, the MW lost written in the cell)."
            + (" Dashed: the PCS's LVRT curve (retained voltage against time since the dip's start, L); above it the "
               "PCS must stay connected, so a transfer there is an LVRT violation (the study judges it on the PCS's "
               "terminal voltage)." if curve is not None else ""))})
    return out


def _rt_virginia_figure(case, ds: xr.Dataset, f: dict) -> dict | None:
    """The Virginia-like sequence: import from the grid, IT load running and time on the battery."""
    grid = _numeric(ds, "virginia_grid_p_mw")
    it = _numeric(ds, "virginia_it_served_mw")
    if (grid is None and it is None) or "time_v" not in ds.coords:
        return None
    t = np.asarray(ds.time_v.values, float)
    fig = _new_figure(9.5, 3.2)
    ax = fig.subplots()
    if it is not None:
        ax.plot(t, it.values, color="tab:green", lw=1.6, label="IT load running")
    if grid is not None:  # on top, dashed: the two coincide where both are zero
        ax.plot(t, grid.values, color="tab:blue", lw=1.0, ls="--", label="import from the grid")
    isl = _numeric(ds, "virginia_islanded")
    if isl is not None:
        on = np.nan_to_num(np.asarray(isl.values, float)) > 0.5
        ax.fill_between(t, 0, 1, where=on, transform=ax.get_xaxis_transform(), color="tab:orange", alpha=0.18,
                        lw=0, label="on the battery (islanded)")
    times = getattr(getattr(getattr(case, "spec", None), "ridethrough", None), "virginia_times_s", None) or []
    for k, tv in enumerate(times):
        ax.axvline(float(tv), color="0.3", lw=0.7, ls=":", label="dips" if k == 0 else None)
    ax.set_xlim(t[0], t[-1])
    ax.set_xlabel("time (s)", fontsize=8)
    ax.set_ylabel("MW", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6.5, loc="lower left")
    seq = ds.attrs.get("virginia")
    return {"title": "A Virginia-like sequence of dips", "png": _png(fig), "caption": (
        f"Constructed sequence{f' ({seq})' if seq else ''}: the import from the grid, the IT load running and the "
        f"time on the battery (shaded); dotted: the dips. The grid loses "
        f"{_fmt(f.get('virginia_sequence_load_lost_mw'), 'MW')} of load by the end; servers lost "
        f"{_fmt(f.get('virginia_servers_lost_mw'), 'MW')}.")}


# ---- power swings

_SWING_QUANTITIES = {"plt": "Plt", "ramp": "ramp rate", "osc": "oscillation amplitude 0.05-5 Hz"}


def _swing_with(s: str) -> bool:
    return str(s).endswith("battery smoothing")


def _swing_limits_text(f: dict, suffix: str) -> list[tuple[str, str, bool | None]]:
    """(name, text, within the limit) for Plt, ramp and oscillation, without (``suffix=''``) or with smoothing."""
    out = []
    for label, key, lim, unit in (("Plt", "plt_max", "plt_limit", "1"),
                                  ("ramp rate", "ramp_max_mw_per_s", "ramp_limit_mw_per_s", "MW/s"),
                                  ("oscillation", "oscillation_max_mw", "oscillation_limit_mw", "MW")):
        v, li = f.get(key + suffix), f.get(lim)
        if not _finite(v):
            continue
        ok = bool(float(v) <= float(li)) if _finite(li) else None
        out.append((label, f"{label} {_fmt(v, unit)}" + (f" against {_fmt(li, unit)} ({'holds' if ok else 'exceeded'})"
                                                           if ok is not None else ""), ok))
    return out


def _swing_claim(checks: pd.DataFrame, f: dict) -> list[dict]:
    """Findings: the limits without and with smoothing, and the headroom smoothing needs."""
    out = []
    for suffix, label, pred in (("", "without smoothing", lambda s: not _swing_with(s)),
                                ("_with_smoothing", "with battery smoothing", _swing_with)):
        parts = _swing_limits_text(f, suffix)
        if not parts:
            continue
        st = _study_status(checks, "swing", list(_SWING_QUANTITIES.values()), pred)
        broken = [n for n, _, ok in parts if ok is False]
        held = [n for n, _, ok in parts if ok]
        status = st or ("FAIL" if broken else "PASS" if held else "INFO")
        text = (f"At the point of connection {label} (worst case of the training oscillations, job start/stop and "
                f"checkpoint): " + "; ".join(t for _, t, _ in parts) + ". "
                + (f"Limits that hold: {', '.join(held)}. " if held else "")
                + (f"Limits exceeded: {', '.join(broken)}." if broken else "Every limit holds."))
        if suffix == "":
            text = (f"Finding 'the training load is a steady load at the point of connection': "
                    f"{'held' if not broken else 'NOT held'}. The largest job swings "
                    f"{_fmt(f.get('swing_mw'), 'MW')} between its compute and communication phases. " + text)
        out.append(dict(status=status, text=text, covers=[("swing", q) for q in _SWING_QUANTITIES.values()]))
    if "smoothing_headroom_mw" in f:
        st = _study_status(checks, "swing", ["smoothing power"])
        out.append(dict(status=st or "INFO", text=(
            f"Smoothing needs PCS headroom: the battery smooths the import only within the "
            f"{_fmt(f['smoothing_headroom_mw'], 'MW')} of PCS power the EMS keeps free from its cap-holding dispatch "
            f"(the dispatch that holds the import under the firm cap must leave it unused)"
            + (f"; the battery throughputs up to {_fmt(f['battery_throughput_mwh_per_h_max'], 'MWh')} per hour of "
               f"smoothing" if _finite(f.get("battery_throughput_mwh_per_h_max")) else "") + "."),
            covers=[("swing", "smoothing power")]))
    return out


def _swing_headline(checks: pd.DataFrame, fig: dict | None) -> list[dict]:
    f = _figs_nan(fig)
    if "plt_max" not in f and "ramp_max_mw_per_s" not in f:
        return []
    out = _swing_claim(checks, f)
    return [dict(x, text=f"Power swings: {x['text']} (See the Power swings section.)") for x in out
            if not x["text"].startswith("Smoothing needs")]


def _swing_section(case, checks: pd.DataFrame, ds: xr.Dataset | None, fig: dict | None) -> dict | None:
    """The power-swing section: method and validity, the limits checked without and with smoothing, the headroom
    smoothing needs, key figures, a table per swing case and two figures."""
    f = _figs_nan(fig)
    if not f and ds is None:
        return None
    o = getattr(case.spec, "swing", None)
    op = f.get("operating_point") or (ds.attrs.get("operating_point") if ds is not None else None) or "?"
    intro = ("The campus IT load at " + op + " swings with the largest synchronous training job: its compute and "
             "communication phases alternate every iteration (periods "
             + (", ".join(f"{p:g}" for p in o.periods_s) + " s" if o is not None else "of 0.2-20 s")
             + "), the job starts and stops, and it stalls for a checkpoint. At the point of connection: the import, "
             "its ramp rate (largest change between consecutive "
             + (f"{o.ramp_window_s:g}-s" if o is not None else "1-s") + " means), its oscillation (largest spectral "
             "amplitude between 0.05 and 5 Hz) and the voltage through the utility's Thevenin source at minimum "
             "short-circuit power, with flicker Pst from the IEC 61000-4-15 flickermeter (Plt of a stationary swing "
             "equals its Pst); then the same with a battery smoothing controller (the import follows the load's "
             "low-pass" + (f" of {o.smoothing_filter_s:g} s" if o is not None else "") + ", ramp-limited, through "
             "the PCS's power loop and within its headroom).")
    method = ds.attrs.get("method") if ds is not None else None
    validity = ("Validity: quasi-static network (algebraic), valid for modulation up to a few hertz; the campus's "
                "internal voltage drops do not change the point of connection's voltage"
                + (f" ({method})" if method else "") + ". The ramp and oscillation limits are the case's (no "
                "published limit for loads, L).")
    findings = _swing_claim(checks, f)
    table = _key_rows(f, [
        ("Operating point", "operating_point", "text"),
        ("Swing of the largest job (compute to communication)", "swing_mw", "MW"),
        ("Pst, worst case, without smoothing", "pst_max", "1"),
        ("Plt, worst case, without smoothing", "plt_max", "1"),
        ("Plt limit (GB/T 12326)", "plt_limit", "1"),
        ("Ramp rate, worst case, without smoothing", "ramp_max_mw_per_s", "MW/s"),
        ("Ramp-rate limit", "ramp_limit_mw_per_s", "MW/s"),
        ("Oscillation 0.05-5 Hz, worst case, without smoothing", "oscillation_max_mw", "MW"),
        ("Oscillation limit", "oscillation_limit_mw", "MW"),
        ("Voltage fluctuation, worst case, without smoothing", "dv_max_percent", "%"),
        ("Pst, worst case, with smoothing", "pst_max_with_smoothing", "1"),
        ("Plt, worst case, with smoothing", "plt_max_with_smoothing", "1"),
        ("Ramp rate, worst case, with smoothing", "ramp_max_mw_per_s_with_smoothing", "MW/s"),
        ("Oscillation 0.05-5 Hz, worst case, with smoothing", "oscillation_max_mw_with_smoothing", "MW"),
        ("PCS headroom the EMS keeps free for smoothing", "smoothing_headroom_mw", "MW"),
        ("Battery throughput of smoothing (worst case)", "battery_throughput_mwh_per_h_max", "MWh/h"),
    ])
    cases = _swing_cases_table(checks, ds)
    figures = []
    if ds is not None:
        figures = [g for g in (_swing_oscillation_figure(ds, f), _swing_job_figure(ds, f)) if g is not None]
    return {"intro": intro, "validity": validity, "findings": findings, "table": table, "cases": cases,
            "figures": figures}


def _swing_cases_table(checks: pd.DataFrame, ds: xr.Dataset | None) -> dict | None:
    """One row per swing case: Pst, ramp and oscillation without and with smoothing, coloured by their checks."""
    if ds is None or "swing_case" not in ds.dims:
        return None
    cols = [("Pst (= Plt)", "pst", "1", "Plt"), ("Ramp (MW/s)", "ramp_mw_per_s", "MW/s", "ramp rate"),
            ("Oscillation (MW)", "oscillation_mw", "MW", "oscillation amplitude 0.05-5 Hz")]
    have = [c for c in cols if any(f"{c[1]}_{lab}" in ds for lab in ("without", "with"))]
    if not have:
        return None
    sw = checks[checks.study == "swing"]
    headers, rows = [], []
    for title, _, _, _ in have:
        headers += [f"{title} without", f"{title} with"]
    has_batt = "battery_p_max_mw_with" in ds
    if has_batt:
        headers.append("Battery power (MW)")
    for i, name in enumerate(_labels(ds, "swing_case")):
        cells = []
        for _, key, unit, q in have:
            for lab, scen in (("without", name), ("with", f"{name}, battery smoothing")):
                var = f"{key}_{lab}"
                v = float(ds[var].values[i]) if var in ds else float("nan")
                r = sw[(sw.scenario == scen) & (sw.quantity == q)]
                if unit == "MW/s" and _finite(v) and abs(v) < 0.005:
                    v = 0.0  # below the table's resolution (a fast square wave's 1-s means hardly change)
                cells.append({"text": _plain(v, unit) if unit not in ("1",) else _fmt(v, "1"),
                              "cls": f"num {r.status.iloc[0]}" if len(r) else "num"})
        if has_batt:
            cells.append({"text": _plain(float(ds["battery_p_max_mw_with"].values[i]), "MW"), "cls": "num"})
        rows.append({"case": name, "cells": cells})
    return {"headers": headers, "rows": rows}


def _swing_pick_oscillation(ds: xr.Dataset) -> str | None:
    """The oscillation case with the worst ramp rate without smoothing (the first oscillation case otherwise)."""
    if "swing_case" not in ds.dims:
        return None
    names = _labels(ds, "swing_case")
    osc = [i for i, n in enumerate(names) if n.startswith("oscillation")]
    if not osc:
        return None
    ramp = _numeric(ds, "ramp_mw_per_s_without")
    if ramp is None or ramp.dims != ("swing_case",):
        return names[osc[0]]
    vals = np.asarray(ramp.values, float)[osc]
    return names[osc[int(np.nanargmax(np.where(np.isfinite(vals), vals, -np.inf)))]]


def _swing_panels(ax_p, ax_b, ds: xr.Dataset, case_name: str, t0: float, t1: float) -> None:
    t = np.asarray(ds.time.values, float)
    m = (t >= t0) & (t <= t1)
    for var, label, colour in (("p_poc_mw_without", "without smoothing", "tab:red"),
                               ("p_poc_mw_with", "with battery smoothing", "tab:blue")):
        da = _numeric(ds, var)
        if da is not None and "swing_case" in da.dims:
            ax_p.plot(t[m], da.sel(swing_case=case_name).values[m], color=colour, lw=0.9, label=label)
    b = _numeric(ds, "battery_p_mw")
    if b is not None and "swing_case" in b.dims:
        ax_b.plot(t[m], b.sel(swing_case=case_name).values[m], color="tab:orange", lw=0.9)
    ax_b.axhline(0.0, color="0.4", lw=0.6)
    for ax in (ax_p, ax_b):
        ax.set_xlim(t[m][0] if m.any() else t0, t[m][-1] if m.any() else t1)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    ax_b.set_xlabel("time (s)", fontsize=8)


def _swing_oscillation_figure(ds: xr.Dataset, f: dict) -> dict | None:
    """About 60 s of one oscillation case: the import without and with smoothing, the battery's power."""
    name = _swing_pick_oscillation(ds)
    if name is None or "time" not in ds.coords or not any(v in ds for v in ("p_poc_mw_without", "p_poc_mw_with")):
        return None
    t = np.asarray(ds.time.values, float)
    t0 = t[0] + 0.5 * (t[-1] - t[0]) - 45.0  # away from the start (the flickermeter's settling), before the middle
    t0 = max(t[0], t0)
    fig = _new_figure(9.5, 4.0)
    ax_p, ax_b = fig.subplots(2, 1, sharex=True, height_ratios=[2, 1])
    _swing_panels(ax_p, ax_b, ds, name, t0, t0 + 60.0)
    ax_p.set_ylabel("import at the point\nof connection (MW)", fontsize=8)
    ax_b.set_ylabel("battery (MW,\n+ discharge)", fontsize=8)
    ax_p.legend(fontsize=6.5, loc="upper right")
    return {"title": f"Training oscillation ({name}): 60 s at the point of connection", "png": _png(fig),
            "caption": (f"The import at the point of connection over 60 s of the {name} case (the oscillation case "
                        f"with the largest ramp rate without smoothing): the job's compute and communication phases "
                        f"without smoothing (red) and with battery smoothing (blue), and the battery's smoothing "
                        f"power (+ discharge), within the {_fmt(f.get('smoothing_headroom_mw'), 'MW')} headroom.")}


def _swing_job_figure(ds: xr.Dataset, f: dict) -> dict | None:
    """The job's start and stop: 60 s around each, without and with smoothing, the battery's power."""
    if "time" not in ds.coords or "swing_case" not in ds.dims or "job_start_stop" not in _labels(ds, "swing_case") or \
            not any(v in ds for v in ("p_poc_mw_without", "p_poc_mw_with")):
        return None
    t = np.asarray(ds.time.values, float)
    edges = [t[0] + 0.25 * (t[-1] - t[0]), t[0] + 0.75 * (t[-1] - t[0])]  # the study's start and stop times
    fig = _new_figure(9.5, 4.0)
    axes = fig.subplots(2, 2, sharey="row", height_ratios=[2, 1])
    for j, (te, title) in enumerate(zip(edges, ("job starts", "job stops"), strict=True)):
        _swing_panels(axes[0, j], axes[1, j], ds, "job_start_stop", te - 15.0, te + 45.0)
        axes[0, j].set_title(title, fontsize=8)
    axes[0, 0].set_ylabel("import at the point\nof connection (MW)", fontsize=8)
    axes[1, 0].set_ylabel("battery (MW,\n+ discharge)", fontsize=8)
    axes[0, 0].legend(fontsize=6.5, loc="lower right")
    return {"title": "Training job start and stop at the point of connection", "png": _png(fig),
            "caption": (f"The largest job ({_fmt(f.get('swing_mw'), 'MW')} swing) starting and stopping with the "
                        f"servers' rise time, 60 s around each edge: the import without smoothing (red) steps; with "
                        f"smoothing (blue) its target follows the load's low-pass at no more than 80 % of the ramp "
                        f"limit ({_fmt(f.get('ramp_limit_mw_per_s'), 'MW/s')}) and the PCS covers the difference up "
                        f"to its headroom ({_fmt(f.get('smoothing_headroom_mw'), 'MW')}); what exceeds the headroom "
                        f"reaches the grid as a step.")}
