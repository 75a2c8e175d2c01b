"""Load flow at each named operating point of the case (pandapower Newton-Raphson).

Results per operating point: bus voltages, branch loadings and flows, grid import (P, Q) and power factor at the
point of connection, losses, battery set point. Checks: every bus against its voltage band (GB/T 12325 at the
point of connection, the campus band elsewhere), every branch against its loading limit, grid import against the
firm cap (instantaneous), and the point-of-connection power factor (advisory: it changes the bill, not safety).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from ..case import Case
from ..limits import Checker, counts
from ..network import apply_operating_point, build_net, grid_import, power_balance, run_loadflow
from . import StudyResult
from ._common import (
    attrs,
    branch_coords,
    branch_results,
    branch_table,
    bus_band,
    bus_coords,
    finalize,
    loading_limit,
)

NAME = "loadflow"


def check_state(chk: Checker, case: Case, net, scenario: str, br, *, emergency: bool = False,
                buses=None, check_cap: bool = True) -> None:
    """Voltage, loading and cap rows for one solved state of the net (used by the contingency study too).

    Buses with no result (unsupplied) are skipped here: the caller reports them as load lost.
    """
    b = net.bus
    idx = b.index if buses is None else buses
    for i in idx:
        vm = net.res_bus.at[i, "vm_pu"]
        if not np.isfinite(vm):
            continue
        lo, hi, crit = bus_band(case, b.at[i, "role"], emergency)
        chk.band(scenario, b.at[i, "name"], "vm_pu", float(vm), lo, hi, "pu", crit)
    res = branch_results(net, br)
    for n, r in enumerate(br.itertuples()):
        v = res["loading_percent"][n]
        if not np.isfinite(v):
            continue
        lim, crit = loading_limit(case, r.kind, emergency)
        chk.upper(scenario, r.branch, "loading_percent", float(v), lim, "%", crit)
    if check_cap:
        p, _ = grid_import(net)
        chk.upper(scenario, "POC", "p_import_mw", p, case.spec.supply.firm_import_cap_mw, "MW",
                  case.criteria.import_cap.criterion)


def run(case: Case, net=None) -> StudyResult:
    """Run the load flow at every operating point; see the module docstring."""
    net = build_net(case) if net is None else net
    crit = case.criteria
    chk = Checker(NAME, crit.warn_margin_fraction)
    ops = case.spec.operating_points
    br = branch_table(net)
    nb, nr, no = len(net.bus), len(br), len(ops)
    vm = np.full((no, nb), np.nan)
    va = np.full((no, nb), np.nan)
    bres = {k: np.full((no, nr), np.nan) for k in ("loading_percent", "p_from_mw", "q_from_mvar", "i_ka", "pl_mw")}
    scal = {k: np.full(no, np.nan) for k in ("p_import_mw", "q_import_mvar", "pf_poc", "losses_mw", "battery_p_mw",
                                             "pv_p_mw", "load_p_mw", "balance_mismatch_mw")}
    expect_ok = {}
    for k, op in enumerate(tqdm(ops, desc="load flow", unit="op", leave=False)):
        n = apply_operating_point(net, case, op)
        run_loadflow(n)
        vm[k] = n.res_bus.vm_pu.to_numpy()
        va[k] = n.res_bus.va_degree.to_numpy()
        res = branch_results(n, br)
        for key in bres:
            bres[key][k] = res[key]
        p, q = grid_import(n)
        inj_minus_cons, losses = power_balance(n)
        scal["p_import_mw"][k] = p
        scal["q_import_mvar"][k] = q
        scal["pf_poc"][k] = abs(p) / np.hypot(p, q) if np.hypot(p, q) > 0 else 1.0
        scal["losses_mw"][k] = losses
        scal["battery_p_mw"][k] = float(np.nansum(n.res_sgen.p_mw[n.sgen.type == "PCS"]))
        scal["pv_p_mw"][k] = float(np.nansum(n.res_sgen.p_mw[n.sgen.type == "PV"]))
        scal["load_p_mw"][k] = float(np.nansum(n.res_load.p_mw) + np.nansum(n.res_motor.p_mw))
        scal["balance_mismatch_mw"][k] = inj_minus_cons - losses
        before = len(chk.rows)
        check_state(chk, case, n, op.name, br)
        chk.lower(op.name, "POC", "power_factor", scal["pf_poc"][k], crit.power_factor.min, "-",
                  crit.power_factor.criterion, advisory=True)
        failed = any(r["status"] == "FAIL" for r in chk.rows[before:])
        if op.expect is not None:
            expect_ok[op.name] = (op.expect == "FAIL") == failed

    ds = xr.Dataset(
        {
            "vm_pu": (("operating_point", "bus"), vm, attrs("pu", "bus voltage magnitude")),
            "va_degree": (("operating_point", "bus"), va, attrs("degree", "bus voltage angle")),
            "loading_percent": (("operating_point", "branch"), bres["loading_percent"],
                                attrs("%", "branch loading (cables: of ampacity; transformers: of rating)")),
            "p_from_mw": (("operating_point", "branch"), bres["p_from_mw"], attrs("MW", "active power into the branch at its from/HV end")),
            "q_from_mvar": (("operating_point", "branch"), bres["q_from_mvar"], attrs("Mvar", "reactive power into the branch at its from/HV end")),
            "i_ka": (("operating_point", "branch"), bres["i_ka"], attrs("kA", "current at the from/HV end")),
            "pl_mw": (("operating_point", "branch"), bres["pl_mw"], attrs("MW", "branch active losses")),
            "p_import_mw": ("operating_point", scal["p_import_mw"], attrs("MW", "grid import at the point of connection, sum of incomers")),
            "q_import_mvar": ("operating_point", scal["q_import_mvar"], attrs("Mvar", "reactive import at the point of connection")),
            "pf_poc": ("operating_point", scal["pf_poc"], attrs("1", "power factor at the point of connection")),
            "losses_mw": ("operating_point", scal["losses_mw"], attrs("MW", "network active losses (cables and transformers)")),
            "battery_p_mw": ("operating_point", scal["battery_p_mw"], attrs("MW", "battery AC power at the PCS terminals (+ discharge)")),
            "pv_p_mw": ("operating_point", scal["pv_p_mw"], attrs("MW", "PV AC power")),
            "load_p_mw": ("operating_point", scal["load_p_mw"], attrs("MW", "total load (IT, cooling, auxiliaries)")),
            "balance_mismatch_mw": ("operating_point", scal["balance_mismatch_mw"],
                                    attrs("MW", "injections - consumption - losses (zero when the load flow balances)")),
        },
        coords={"operating_point": [o.name for o in ops], **bus_coords(net), **branch_coords(br),
                "firm_import_cap_mw": ((), case.spec.supply.firm_import_cap_mw, attrs("MW", "firm import cap"))},
    )
    checks = chk.frame()
    summary = counts(checks)
    imp = dict(zip(ds.operating_point.values.tolist(), np.round(scal["p_import_mw"], 4).tolist(), strict=True))
    summary.update(
        operating_points=len(ops),
        p_import_mw=imp,
        vm_min_pu=float(np.nanmin(vm)),
        vm_max_pu=float(np.nanmax(vm)),
        loading_max_percent=float(np.nanmax(bres["loading_percent"])),
        expected_outcomes_met=expect_ok,
        max_balance_mismatch_mw=float(np.nanmax(np.abs(scal["balance_mismatch_mw"]))),
    )
    return StudyResult(NAME, finalize(ds, NAME, case), checks, summary)
