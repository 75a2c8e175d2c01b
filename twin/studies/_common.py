"""Helpers shared by the snapshot studies: branch tables, variable attributes, voltage bands per bus."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr


def branch_table(net) -> pd.DataFrame:
    """Lines and transformers as one table of branches: name, kind (line/trafo), table index, from/to bus."""
    rows = []
    for i, r in net.line.iterrows():
        rows.append(dict(branch=r["name"], kind="line", idx=i, from_bus=r.from_bus, to_bus=r.to_bus, zone=r.zone))
    for i, r in net.trafo.iterrows():
        rows.append(dict(branch=r["name"], kind="trafo", idx=i, from_bus=r.hv_bus, to_bus=r.lv_bus, zone=r.zone))
    return pd.DataFrame(rows)


def branch_results(net, br: pd.DataFrame) -> dict[str, np.ndarray]:
    """loading_percent, p_from_mw, q_from_mvar, i_ka (from side), pl_mw per branch, NaN where out of service."""
    out = {k: np.full(len(br), np.nan) for k in ("loading_percent", "p_from_mw", "q_from_mvar", "i_ka", "pl_mw")}
    for n, r in enumerate(br.itertuples()):
        if r.kind == "line":
            res = net.res_line.loc[r.idx]
            vals = (res.loading_percent, res.p_from_mw, res.q_from_mvar, res.i_from_ka, res.pl_mw)
        else:
            res = net.res_trafo.loc[r.idx]
            vals = (res.loading_percent, res.p_hv_mw, res.q_hv_mvar, res.i_hv_ka, res.pl_mw)
        for k, v in zip(("loading_percent", "p_from_mw", "q_from_mvar", "i_ka", "pl_mw"), vals, strict=True):
            out[k][n] = v
    return out


def attrs(units: str, long_name: str, **extra) -> dict:
    return {"units": units, "long_name": long_name, **extra}


def bus_band(case, role: str, emergency: bool = False):
    """Voltage band (lo, hi, criterion) for a bus role: GB/T 12325 at the POC, campus band elsewhere."""
    v = case.criteria.voltage
    if role == "poc":
        b = v.poc
    else:
        b = v.campus_emergency if emergency else v.campus_normal
    return b.min_pu, b.max_pu, b.criterion


def loading_limit(case, kind: str, emergency: bool = False):
    lc = case.criteria.loading
    if kind == "line":
        lim = lc.line_emergency_percent if emergency else lc.line_max_percent
    else:
        lim = lc.trafo_emergency_percent if emergency else lc.trafo_max_percent
    return lim, (lc.criterion_emergency if emergency else lc.criterion_normal)


def bus_coords(net) -> dict:
    b = net.bus
    return {"bus": ("bus", b["name"].tolist()), "bus_zone": ("bus", b["zone"].astype(str).tolist()),
            "bus_role": ("bus", b["role"].astype(str).tolist()), "vn_kv": ("bus", b["vn_kv"].to_numpy(float))}


def branch_coords(br: pd.DataFrame) -> dict:
    return {"branch": ("branch", br.branch.tolist()), "branch_kind": ("branch", br.kind.tolist()),
            "branch_zone": ("branch", br.zone.astype(str).tolist())}


def finalize(ds: xr.Dataset, study: str, case) -> xr.Dataset:
    ds.attrs.update(study=study, case=case.name, case_sha256=case.sha256,
                    sign_convention="loads consume positive p_mw; PCS and PV produce positive p_mw; "
                                    "grid import positive when the campus draws from the utility")
    return ds
