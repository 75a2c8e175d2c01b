"""Short circuit per IEC 60909-0:2016 at every bus (pandapower's ``calc_sc``, equivalent voltage source).

Faults: three-phase, two-phase (line-to-line) and single-phase (line-to-earth), each at maximum and minimum
conditions. Results per bus: initial symmetrical current Ik'', peak current ip, thermal equivalent current Ith
over the bus's fault duration, and the three-phase short-circuit power S''k.

Modelling choices (each one IEC 60909-0:2016 unless said otherwise):

- voltage factor c (Table 1): 1.10 / 1.00 at MV; at LV pandapower's ``lv_tol_percent=10`` gives
  c_max = 1.10 and c_min = 0.90 (LV systems with a +/-10 % tolerance). GB/T 12325 allows +/-7 % at 380 V,
  more than the +6 % of the c_max = 1.05 column, so the +10 % column is the conservative one
  (:data:`LV_TOL_PERCENT`);
- network transformers carry the correction factor K_T = 0.95 c_max / (1 + 0.6 x_T) for maximum currents
  (eq. (12a)); pandapower applies it;
- maximum currents: the utility source at S''kQmax and R/X max, direct-on-line cooling motors as asynchronous
  motors, and the PCS and PV inverters as current sources k * Ir (``net.sgen.k``, full-converter units).
  Minimum currents: S''kQmin and R/X min, line resistances at their end temperature
  (R_L = (1 + alpha (theta_e - 20 C)) R_L20, alpha from the cable parameter set; pandapower uses ``endtemp_degree`` = the cable's short-circuit
  limit), no motors and no converter contribution (minimum short-circuit conditions). pandapower itself drops
  the current sources for ``case="min"`` but keeps motors, so the minimum case runs on a copy of the net with
  motors and sgens out of service;
- cable parameter sets give R at 20 C with the copper temperature coefficient: maximum currents use R_L20
  (IEC 60909-0 4.3.2), minimum currents R at the end temperature;
- peak current with kappa method C (equivalent frequency fc = 20 Hz at 50 Hz) and ``topology="auto"``;
  ip = sqrt(2) (kappa Ik''_V + Ik''_cs) as pandapower computes it (current sources add no DC component);
- thermal equivalent current Ith = Ik'' sqrt(m + n) (Joule integral) with n = 1 (far from generator) and
  m from kappa and the fault duration tk: the MV clearing time for buses at 1 kV and above and the LV clearing
  time below (case ``[protection]``). pandapower's m uses f = 50 Hz; at 60 Hz this over-states m
  (conservative);
- single-phase faults: pandapower gives Ik''1 only. ip and Ith are derived from the same bus's three-phase
  ratios, ip1 = Ik''1 * ip3 / Ik''3 and Ith1 = Ik''1 * Ith3 / Ik''3 (IEC 60909-0 uses the three-phase kappa, m
  and n for unbalanced faults; using the ratios carries the current-source share of the 3ph fault over, an
  approximation written into the variables' attributes);
- neutral earthing: with an isolated or resonant-earthed MV neutral, a line-to-earth fault at buses
  galvanically connected to the MV network is not a short circuit in IEC 60909 terms (it is an earth fault
  with capacitive or compensated residual current): those values are NaN and get no check rows. LV buses
  behind Dyn transformers (solidly earthed LV neutral) keep their single-phase results.

Checks (maximum case, the worst of the three fault types for each quantity; the row's scenario names it, for
example ``"max 1ph"``), for every bus with switchgear ratings:

- Ik'' against the rated breaking current (the breaking current Ib taken equal to Ik'': far from generator,
  conservative) -- ``ikss_ka``;
- ip against the rated peak withstand / making current -- ``ip_ka``;
- Ith over tk against the rated short-time current referred to tk, Icw * sqrt(tcw / tk) (I^2 t equivalence) --
  ``ith_ka``;
- every cable: the adiabatic withstand Ith * sqrt(tk) <= k * S (IEC 60949, IEC 60364-5-54) with Ith at the
  cable's from bus over the MV clearing time, reported as the required cross-section against the actual one --
  ``sc_withstand_mm2``.

Minimum currents are stored (protection sensitivity) and summarised at the LV boards; they get no check rows.
"""

from __future__ import annotations

import copy
import logging
import warnings
from contextlib import contextmanager

import numpy as np
import pandapower.shortcircuit as pp_sc
import xarray as xr

from ..case import Case
from ..limits import Checker, counts
from ..network import build_net
from . import StudyResult
from ._common import attrs, bus_coords, finalize

NAME = "shortcircuit"
FAULTS = ("3ph", "2ph", "1ph")
CASES = ("max", "min")
# pandapower's LV voltage tolerance: 10 -> c_max 1.10, c_min 0.90 (IEC 60909-0:2016 Table 1, module docstring)
LV_TOL_PERCENT = 10
# IEC 60909-0 low voltage: nominal voltage up to 1 kV
LV_LIMIT_KV = 1.0
# earthing schemes for which a line-to-earth fault on the MV network is not an IEC 60909 short circuit
UNEARTHED = ("isolated", "resonant")


# ------------------------------------------------------------------------------------------------------------
# array functions


def thermal_time_s(vn_kv, tk_mv_s: float, tk_lv_s: float) -> np.ndarray:
    """Fault duration tk per bus for the thermal equivalent current.

    Parameters
    ----------
    vn_kv : array_like
        Nominal voltage of each bus in kV.
    tk_mv_s, tk_lv_s : float
        Fault clearing time in s at buses of 1 kV and above, and below 1 kV (case ``[protection]``).

    Returns
    -------
    numpy.ndarray
        tk in s per bus.
    """
    return np.where(np.asarray(vn_kv, dtype=float) >= LV_LIMIT_KV, tk_mv_s, tk_lv_s)


def scale_by_reference(ikss_ka, ikss_ref_ka, x_ref_ka) -> np.ndarray:
    """A current derived from a reference fault's ratio: ``ikss * x_ref / ikss_ref``.

    Used for the single-phase peak and thermal currents, which pandapower does not give:
    ip1 = Ik''1 * ip3 / Ik''3 = kappa3 * sqrt(2) * Ik''1 and
    Ith1 = Ik''1 * Ith3 / Ik''3 = Ik''1 * sqrt(m3 + n3)
    (IEC 60909-0:2016: the peak and thermal currents of unbalanced faults use the three-phase kappa, m and n).

    Parameters
    ----------
    ikss_ka : array_like
        Initial symmetrical current of the fault in question, kA.
    ikss_ref_ka, x_ref_ka : array_like
        Initial symmetrical current and the derived current (ip or Ith) of the reference fault, kA.

    Returns
    -------
    numpy.ndarray
        The derived current in kA (NaN where the reference current is zero or missing).
    """
    ikss_ref = np.asarray(ikss_ref_ka, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(ikss_ref > 0, np.asarray(x_ref_ka, dtype=float) / ikss_ref, np.nan)
    return np.asarray(ikss_ka, dtype=float) * ratio


def short_time_equivalent_ka(icw_ka, tcw_s, tk_s) -> np.ndarray:
    """Rated short-time withstand current referred to the fault duration: ``Icw * sqrt(tcw / tk)``.

    Equal I^2 t: Ith^2 tk <= Icw^2 tcw (IEC 62271-1 and IEC 61439-1 rated short-time withstand current, with
    the IEC 60909-0:2016 thermal equivalent current).

    Parameters
    ----------
    icw_ka : array_like
        Rated short-time withstand current in kA.
    tcw_s : array_like
        Its rated duration in s.
    tk_s : array_like
        Fault duration in s.

    Returns
    -------
    numpy.ndarray
        Permissible Ith over tk in kA.
    """
    tcw, tk = np.asarray(tcw_s, dtype=float), np.asarray(tk_s, dtype=float)
    return np.asarray(icw_ka, dtype=float) * np.sqrt(tcw / tk)


def adiabatic_cross_section_mm2(ith_ka, tk_s, k_a_s05_per_mm2) -> np.ndarray:
    """Cross-section a conductor needs to carry a fault adiabatically: ``S = Ith * sqrt(tk) / k``.

    IEC 60949 (adiabatic short-circuit rating) and IEC 60364-5-54 (k factor).

    Parameters
    ----------
    ith_ka : array_like
        Thermal equivalent short-circuit current in kA.
    tk_s : array_like
        Fault duration in s.
    k_a_s05_per_mm2 : array_like
        Adiabatic factor k in A*s^0.5/mm2 (143 for Cu XLPE 90 -> 250 C).

    Returns
    -------
    numpy.ndarray
        Required cross-section in mm2.
    """
    return (np.asarray(ith_ka, dtype=float) * 1e3 * np.sqrt(np.asarray(tk_s, dtype=float))
            / np.asarray(k_a_s05_per_mm2, dtype=float))


def earth_fault_not_iec60909(vn_kv, supply_vn_kv: float, earthing: str) -> np.ndarray:
    """Buses where a single-phase fault is not an IEC 60909 short circuit (isolated or resonant MV neutral).

    Parameters
    ----------
    vn_kv : array_like
        Nominal voltage of each bus in kV.
    supply_vn_kv : float
        Nominal voltage of the supply (the MV network whose neutral ``earthing`` describes) in kV.
    earthing : str
        ``low_resistance``, ``solid``, ``isolated`` or ``resonant``.

    Returns
    -------
    numpy.ndarray of bool
        True at buses galvanically connected to the MV network when its neutral is isolated or resonant.
    """
    vn = np.asarray(vn_kv, dtype=float)
    return np.isclose(vn, supply_vn_kv) & (earthing in UNEARTHED)


def worst_fault(values) -> tuple[np.ndarray, np.ndarray]:
    """The largest value over the fault axis (axis 0), ignoring NaN, and the index of the fault that gives it.

    Parameters
    ----------
    values : array_like, shape (n_faults, n)

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Worst value per column (NaN where every fault is NaN) and the fault index (0 there).
    """
    v = np.asarray(values, dtype=float)
    filled = np.where(np.isnan(v), -np.inf, v)
    k = np.argmax(filled, axis=0)
    worst = np.take_along_axis(v, k[None, :], axis=0)[0]
    return worst, k


# ------------------------------------------------------------------------------------------------------------
# pandapower calls


@contextmanager
def _quiet():
    """Silence pandapower's warnings and log messages during a calculation (and restore them after)."""
    log = logging.getLogger("pandapower")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        log.setLevel(level)


def contribution_net(net, case: str):
    """A copy of the net with the sources IEC 60909-0 counts for ``case`` in service.

    Maximum currents: everything as built (utility, DOL motors, PCS and PV current sources). Minimum currents:
    motors and converter-interfaced sources out of service (IEC 60909-0:2016 minimum conditions: motors
    neglected; current sources only in the maximum case).
    """
    n = copy.deepcopy(net)
    if case == "min":
        n.motor["in_service"] = False
        n.sgen["in_service"] = False
    return n


def bus_currents(net, fault: str, case: str, tk_s: float) -> dict[str, np.ndarray]:
    """Run ``pandapower.shortcircuit.calc_sc`` at every bus and return its results as arrays.

    Parameters
    ----------
    net : pandapowerNet
        Modified in place (``res_bus_sc``): pass a copy (see :func:`contribution_net`).
    fault : {"3ph", "2ph", "1ph"}
    case : {"max", "min"}
    tk_s : float
        Fault duration for Ith in s.

    Returns
    -------
    dict
        ``ikss_ka``, ``ip_ka``, ``ith_ka``, ``skss_mw``, ``rk_ohm``, ``xk_ohm`` per bus in ``net.bus`` order
        (NaN where pandapower gives nothing: ip and Ith for 1ph, S''k for 1ph).
    """
    with _quiet():
        pp_sc.calc_sc(net, fault=fault, case=case, lv_tol_percent=LV_TOL_PERCENT, topology="auto", ip=True,
                      ith=True, tk_s=float(tk_s), kappa_method="C")
    r = net.res_bus_sc.reindex(net.bus.index)
    out = {}
    for col in ("ikss_ka", "ip_ka", "ith_ka", "skss_mw", "rk_ohm", "xk_ohm"):
        out[col] = r[col].to_numpy(float) if col in r.columns else np.full(len(net.bus), np.nan)
    return out


def fault_currents(net, tk_values_s) -> dict[str, np.ndarray]:
    """Short-circuit currents for every fault type, case and bus.

    Parameters
    ----------
    net : pandapowerNet
        The campus net (not modified).
    tk_values_s : sequence of float
        The fault durations for which Ith is wanted, in s.

    Returns
    -------
    dict
        ``ikss_ka`` and ``ip_ka`` of shape (fault, case, bus); ``ith_ka`` of shape (tk, fault, case, bus);
        ``skss_mw``, ``rk_ohm``, ``xk_ohm`` of the three-phase fault, shape (case, bus). The single-phase ip
        and Ith are derived with :func:`scale_by_reference` from the three-phase ones.
    """
    nb, nf, nc, nt = len(net.bus), len(FAULTS), len(CASES), len(tk_values_s)
    ikss = np.full((nf, nc, nb), np.nan)
    ip = np.full((nf, nc, nb), np.nan)
    ith = np.full((nt, nf, nc, nb), np.nan)
    three = {k: np.full((nc, nb), np.nan) for k in ("skss_mw", "rk_ohm", "xk_ohm")}
    f3, f1 = FAULTS.index("3ph"), FAULTS.index("1ph")
    for c, case in enumerate(CASES):
        n = contribution_net(net, case)
        for f, fault in enumerate(FAULTS):
            if fault == "1ph":
                continue
            for t, tk in enumerate(tk_values_s):  # Ik'' and ip do not depend on tk: keep the last run's
                r = bus_currents(n, fault, case, tk)
                ith[t, f, c] = r["ith_ka"]
            ikss[f, c], ip[f, c] = r["ikss_ka"], r["ip_ka"]
            if fault == "3ph":
                for k in three:
                    three[k][c] = r[k]
        r = bus_currents(n, "1ph", case, tk_values_s[0])
        ikss[f1, c] = r["ikss_ka"]
        ip[f1, c] = scale_by_reference(ikss[f1, c], ikss[f3, c], ip[f3, c])
        for t in range(nt):
            ith[t, f1, c] = scale_by_reference(ikss[f1, c], ikss[f3, c], ith[t, f3, c])
    return {"ikss_ka": ikss, "ip_ka": ip, "ith_ka": ith, **three}


# ------------------------------------------------------------------------------------------------------------
# the study


def _check_buses(chk: Checker, case: Case, net, res: dict, tk_bus: np.ndarray) -> list[str]:
    """Breaking, peak and thermal rows per bus with switchgear ratings; returns the names of buses without."""
    crit = case.criteria.short_circuit
    b = net.bus
    cmax = CASES.index("max")
    cols = ("sc_breaking_ka", "sc_peak_ka", "sc_short_time_ka", "sc_short_time_s")
    rating = {k: (b[k].to_numpy(float) if k in b.columns else np.full(len(b), np.nan)) for k in cols}
    rated = np.all([np.isfinite(rating[k]) for k in cols], axis=0)
    ith_limit = short_time_equivalent_ka(rating["sc_short_time_ka"], rating["sc_short_time_s"], tk_bus)
    rows = (("ikss_ka", res["ikss_ka"][:, cmax], rating["sc_breaking_ka"], crit.criterion_breaking),
            ("ip_ka", res["ip_ka"][:, cmax], rating["sc_peak_ka"], crit.criterion_peak),
            ("ith_ka", res["ith_bus_ka"][:, cmax], ith_limit, crit.criterion_thermal))
    names = b["name"].tolist()
    for qty, values, limit, text in rows:
        worst, k = worst_fault(values)
        for i in np.flatnonzero(rated):
            chk.upper(f"max {FAULTS[k[i]]}", names[i], qty, float(worst[i]), float(limit[i]), "kA", text)
    return [n for n, r in zip(names, rated, strict=True) if not r]


def _cables(case: Case, net, res: dict, tk_values: list[float]) -> dict[str, np.ndarray]:
    """Adiabatic withstand of every cable: Ith at its from bus (max case, worst fault), MV clearing time."""
    tk_mv = case.spec.protection.clearing_time_mv_s
    ln = net.line
    pos = net.bus.index.get_indexer(ln.from_bus.to_numpy())
    ith = res["ith_ka"][tk_values.index(tk_mv), :, CASES.index("max")][:, pos]
    worst, k = worst_fault(ith)
    nan = np.full(len(ln), np.nan)
    sect = ln["cross_section_mm2"].to_numpy(float) if "cross_section_mm2" in ln.columns else nan
    kad = ln["k_adiabatic"].to_numpy(float) if "k_adiabatic" in ln.columns else nan
    return {"ith_ka": worst, "fault": np.array([FAULTS[j] for j in k], dtype=object),
            "required_mm2": adiabatic_cross_section_mm2(worst, tk_mv, kad), "cross_section_mm2": sect,
            "tk_s": tk_mv}


def _worst_rows(checks) -> dict:
    """Per check quantity, the row with the smallest margin (element, scenario, value, limit, margin)."""
    out = {}
    for qty, grp in checks.groupby("quantity", sort=False):
        r = grp.loc[grp.margin.fillna(-np.inf).idxmin()]
        out[qty] = {"element": r.element, "scenario": r.scenario, "value": round(float(r.value), 4),
                    "limit": round(float(r.limit), 4), "margin": round(float(r.margin), 4), "unit": r.unit,
                    "status": r.status}
    return out


def run(case: Case, net=None) -> StudyResult:
    """Short circuit at every bus per IEC 60909-0, switchgear and cable checks; see the module docstring."""
    net = build_net(case) if net is None else net
    s = case.spec
    chk = Checker(NAME, case.criteria.warn_margin_fraction)
    vn = net.bus.vn_kv.to_numpy(float)
    tk_mv, tk_lv = s.protection.clearing_time_mv_s, s.protection.clearing_time_lv_s
    tk_values = sorted({tk_mv, tk_lv})
    tk_bus = thermal_time_s(vn, tk_mv, tk_lv)

    res = fault_currents(net, tk_values)
    na = earth_fault_not_iec60909(vn, s.supply.vn_kv, s.supply.earthing)
    f1 = FAULTS.index("1ph")
    for key in ("ikss_ka", "ip_ka"):
        res[key][f1][:, na] = np.nan
    res["ith_ka"][:, f1][:, :, na] = np.nan
    # Ith at each bus's own fault duration
    t_idx = np.searchsorted(tk_values, tk_bus)
    res["ith_bus_ka"] = np.take_along_axis(res["ith_ka"], t_idx[None, None, None, :], axis=0)[0]

    unrated = _check_buses(chk, case, net, res, tk_bus)
    cab = _cables(case, net, res, tk_values)
    crit_cable = case.criteria.short_circuit.criterion_cable
    for n, name in enumerate(net.line["name"]):
        if np.isfinite(cab["cross_section_mm2"][n]):
            chk.upper(f"max {cab['fault'][n]}", name, "sc_withstand_mm2", float(cab["required_mm2"][n]),
                      float(cab["cross_section_mm2"][n]), "mm2", crit_cable)

    dims, cb = ("fault", "case", "bus"), ("case", "bus")
    unearthed = s.supply.earthing in UNEARTHED
    na_note = (f"single-phase values at buses of {s.supply.vn_kv:g} kV are NaN: with an "
               f"{s.supply.earthing} MV neutral a line-to-earth fault there is not an IEC 60909 short circuit"
               if unearthed else "")
    derived = ("single-phase values derived from the same bus's three-phase fault: x1 = Ik''1 * x3 / Ik''3 "
               "(IEC 60909-0: three-phase kappa, m, n; approximation)")
    a_ikss = attrs("kA", "initial symmetrical short-circuit current Ik''", standard="IEC 60909-0:2016",
                   note=na_note)
    a_ip = attrs("kA", "peak short-circuit current ip (kappa method C)", note_1ph=derived,
                 standard="IEC 60909-0:2016, peak short-circuit current")
    a_ith = attrs("kA", "thermal equivalent short-circuit current Ith over the bus's fault duration tk_s",
                  standard="IEC 60909-0:2016, Joule integral, n = 1", note_1ph=derived)
    a_skss = attrs("MVA", "initial symmetrical short-circuit power S''k = sqrt(3) Un Ik'' (3ph fault)")
    a_rk = attrs("ohm", "positive-sequence short-circuit resistance Rk at the bus (three-phase fault)")
    a_xk = attrs("ohm", "positive-sequence short-circuit reactance Xk at the bus (three-phase fault)")
    a_cith = attrs("kA", "Ith at the cable's from bus over the MV clearing time (max case, worst fault type)")
    a_creq = attrs("mm2", "cross-section needed for adiabatic withstand, Ith * sqrt(tk) / k (IEC 60949)")
    ds = xr.Dataset(
        {
            "ikss_ka": (dims, res["ikss_ka"], a_ikss),
            "ip_ka": (dims, res["ip_ka"], a_ip),
            "ith_ka": (dims, res["ith_bus_ka"], a_ith),
            "skss_mw": (cb, res["skss_mw"], a_skss),
            "rk_ohm": (cb, res["rk_ohm"], a_rk),
            "xk_ohm": (cb, res["xk_ohm"], a_xk),
            "cable_ith_ka": ("line", cab["ith_ka"], a_cith),
            "cable_required_mm2": ("line", cab["required_mm2"], a_creq),
        },
        coords={
            "fault": list(FAULTS),
            "case": list(CASES),
            **bus_coords(net),
            "tk_s": ("bus", tk_bus, attrs("s", "fault duration for Ith (MV or LV clearing time)")),
            "line": ("line", net.line["name"].tolist()),
            "line_from_bus": ("line", net.bus["name"].reindex(net.line.from_bus).tolist()),
            "cross_section_mm2": ("line", cab["cross_section_mm2"], attrs("mm2", "conductor cross-section")),
            "cable_governing_fault": ("line", cab["fault"].astype(str)),
        },
    )
    ds.attrs.update(
        standard="IEC 60909-0:2016, equivalent voltage source at the fault location (pandapower calc_sc)",
        lv_tol_percent=LV_TOL_PERCENT,
        c_factors="MV c_max 1.10 c_min 1.00; LV c_max 1.10 c_min 0.90 (lv_tol_percent=10)",
        max_case="utility at s_sc_max_mva and rx_max; DOL motors; PCS and PV as current sources k * Ir",
        min_case="utility at s_sc_min_mva and rx_min; no motors, no current sources; cable R at end temp.",
        earthing=s.supply.earthing,
        earth_fault_note=na_note or "single-phase faults computed at every bus",
        tk_mv_s=tk_mv, tk_lv_s=tk_lv,
    )
    checks = chk.frame()
    summary = counts(checks)
    summary.update(_key_figures(ds))
    summary.update(worst=_worst_rows(checks), buses_without_ratings=unrated, earthing=s.supply.earthing)
    return StudyResult(NAME, finalize(ds, NAME, case), checks, summary)


def _key_figures(ds: xr.Dataset) -> dict:
    """Maximum Ik'' and ip per voltage level, minimum Ik'' at LV buses (protection sensitivity)."""
    lv = ds.vn_kv.values < LV_LIMIT_KV
    mx = ds.sel(case="max").max("fault")
    mn = ds.sel(case="min")
    out = {"ikss_max_ka": {}, "ip_max_ka": {}, "ith_max_ka": {}}
    for level, mask in (("mv", ~lv), ("lv", lv)):
        for key in out:
            v = mx[key.replace("_max", "")].values[mask]
            out[key][level] = round(float(np.nanmax(v)), 4) if np.isfinite(v).any() else None
    out["ikss_min_lv_ka"] = {}
    out["ikss_min_lv_bus"] = {}
    for fault in ("1ph", "2ph"):
        v = mn.ikss_ka.sel(fault=fault).values[lv]
        if np.isfinite(v).any():
            i = int(np.nanargmin(v))
            out["ikss_min_lv_ka"][fault] = round(float(v[i]), 4)
            out["ikss_min_lv_bus"][fault] = str(ds.bus.values[lv][i])
    return out
