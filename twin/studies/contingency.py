"""N-1 contingency: every incomer, transformer, MV cable and battery container out in turn.

At each operating point listed in ``[contingency] operating_points`` of the case, one element at a time is taken
out of service on a copy of the operating point's net, and the campus is solved in two states:

``immediate``
    Just after the outage, before any automatic action. Buses left without a path to an in-service external grid
    (:func:`pandapower.topology.unsupplied_buses`) carry no load: the IT, cooling, auxiliary and motor load on
    them is *load lost*; PCS and PV on them are *lost injections*.
``after_transfer``
    After the automatic actions a class A campus relies on: the automatic bus transfer (when the case has
    ``switching_station.bus_transfer``, every open bus coupler ``BC_*`` between a dead and a live bus section is
    closed) and then the 2N load shift (the IT load of a hall, the chiller load and the DOL motors of a cooling
    plant, whose feed is dead move onto that unit's surviving feed(s)). Whatever is still unsupplied is load lost.

The outages (``outage_kind``):

- ``incomer``: the utility feeder, i.e. the incomer cable (``net.line.role == "incomer"``) together with the
  external grid at its point of connection;
- ``transformer``: every transformer;
- ``mv_cable``: every 10 kV feeder cable (``net.line.role == "feeder"``);
- ``battery_container``: one battery container out at a time, modelled as its PCS ``sgen`` out of service (its
  share of the battery power is lost, so the grid import rises). The container's own auxiliaries stay on.
  Nothing is left unsupplied, so the two states are equal apart from their label.

An outage of an element that is already out of service at an operating point (a PCS at an operating point with
the battery out) changes nothing and is still reported, so that every operating point has the same outages.

Checks per state, with the scenario label ``"{operating point} | {outage} | {state}"``: bus voltages and branch
loadings against the *emergency* criteria and the grid import against the firm cap
(:func:`twin.studies.loadflow.check_state`), and the load lost: after the transfer it must be zero (GB 50174-2017
class A, 2N supply); in the immediate state the row is advisory (WARN, not FAIL), because the load is only
interrupted until the transfer acts. A load flow that does not converge is marked (``converged`` False, its
results NaN) with a FAIL row of quantity ``converged``; a state with no energised bus at all has nothing to solve
and is reported with zero import and every bus NaN.

Accounting. *Load lost* (``load_lost_mw``) is the demand at set point of the in-service loads and motors on
unsupplied buses, except the battery containers' auxiliaries (group ``bess_aux``), which go down with their
container and are part of its lost net injection rather than lost campus load. *Injection lost*
(``injection_lost_mw``) is the set-point power of the PCS and PV that the outage takes off (the outaged PCS, and
any ``sgen`` on an unsupplied bus). ``load_to_shed_mw = max(0, p_import_mw - firm cap)`` is the power that must
be shed (or covered by other means) to respect the contract cap in that state.

Dataset layout: dimensions ``operating_point x outage x state`` (plus ``bus``, ``branch`` or ``coupler``); the
``operating_point`` dimension is always present, of length one for the seed case, so that the shape of the
results never depends on the case. Outage labels are ``"<element> out"`` with the pandapower element name
(``"H1_TR_A out"``, ``"INC_A_CBL out"`` for incomer A, ``"BESS1_PCS out"``). The out-of-service element's own
results are NaN.

Written here rather than with :mod:`pandapower.contingency`: that module solves each outage once, without the
automatic bus transfer and 2N load shift that decide whether a data-centre campus survives an outage.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import pandapower as pp
import pandapower.topology as top
import xarray as xr
from tqdm.auto import tqdm

from ..case import Case
from ..limits import Checker, counts
from ..network import apply_operating_point, build_net, grid_import, power_balance, run_loadflow
from . import StudyResult
from ._common import attrs, branch_coords, branch_results, branch_table, bus_coords, finalize
from .loadflow import check_state

NAME = "contingency"

STATES = ("immediate", "after_transfer")
# load groups whose units (a hall, a cooling plant) are fed 2N: their load moves to a surviving feed
SHIFT_GROUPS = ("it", "cooling")
# load groups that belong to a battery container: lost with it, not counted as campus load lost
CONTAINER_GROUPS = ("bess_aux",)

CRITERION_LOST = "N-1: no loss of load after automatic transfer (GB 50174-2017 class A: 2N supply)"
CRITERION_CONVERGED = "the load flow of every outage state must converge (DESIGN.md: mark it, never drop it)"


@dataclass(frozen=True)
class Outage:
    """One N-1 outage.

    Attributes
    ----------
    label : str
        ``"<element> out"``, the outage coordinate of the Dataset.
    kind : str
        ``incomer``, ``transformer``, ``mv_cable`` or ``battery_container``.
    element : str
        Name of the element taken out (for an incomer its cable, taken out with its external grid).
    table : str
        pandapower table of the element (``line``, ``trafo``, ``sgen``).
    idx : int
        Index of the element in that table.
    ext_grid : int or None
        For an incomer, the external grid at its point of connection, taken out with the cable.
    """

    label: str
    kind: str
    element: str
    table: str
    idx: int
    ext_grid: int | None = None


def outages(net) -> list[Outage]:
    """The N-1 outages of a campus net: incomers, transformers, MV cables, then battery containers.

    Parameters
    ----------
    net : pandapowerNet
        A net from :func:`twin.network.build_net`.

    Returns
    -------
    list of Outage
    """
    out = []
    for i, ln in net.line[net.line.role == "incomer"].iterrows():
        eg = net.ext_grid.index[net.ext_grid.bus.isin([ln.from_bus, ln.to_bus])]
        out.append(Outage(f"{ln['name']} out", "incomer", str(ln["name"]), "line", int(i),
                          int(eg[0]) if len(eg) else None))
    for i, tr in net.trafo.iterrows():
        out.append(Outage(f"{tr['name']} out", "transformer", str(tr["name"]), "trafo", int(i)))
    for i, ln in net.line[net.line.role == "feeder"].iterrows():
        out.append(Outage(f"{ln['name']} out", "mv_cable", str(ln["name"]), "line", int(i)))
    for i, sg in net.sgen[net.sgen.type == "PCS"].iterrows():
        out.append(Outage(f"{sg['name']} out", "battery_container", str(sg["name"]), "sgen", int(i)))
    return out


def take_out(net, outage: Outage) -> None:
    """Take the outage's element (and an incomer's external grid) out of service, in place."""
    net[outage.table].at[outage.idx, "in_service"] = False
    if outage.ext_grid is not None:
        net.ext_grid.at[outage.ext_grid, "in_service"] = False


def bus_transfer(net) -> list[str]:
    """Automatic bus transfer, in place: close every open bus coupler between a dead and a live bus section.

    Repeats until no coupler closes (so a chain of sections is re-energised section by section).

    Parameters
    ----------
    net : pandapowerNet

    Returns
    -------
    list of str
        Names of the couplers closed, in the order they closed.
    """
    closed: list[str] = []
    couplers = net.switch.index[(net.switch.et == "b") & net.switch["name"].astype(str).str.startswith("BC_")]
    sections = set(net.bus.index[net.bus.role == "mv_section"])
    while True:
        dead = top.unsupplied_buses(net)
        if not dead & sections:
            return closed
        for i in couplers:
            a, b = net.switch.at[i, "bus"], net.switch.at[i, "element"]
            if not net.switch.at[i, "closed"] and ((a in dead) != (b in dead)) and {a, b} <= sections:
                net.switch.at[i, "closed"] = True
                closed.append(str(net.switch.at[i, "name"]))
                break
        else:
            return closed


def shift_2n(net) -> list[str]:
    """2N load shift, in place: loads and motors of a 2N unit on a dead bus move to the unit's surviving bus(es).

    A unit is a hall (IT load) or a cooling plant (chillers and DOL motors): ``unit`` of the loads of group
    ``it``/``cooling`` and of the motors. The moved elements keep their set points; with several surviving
    buses they are spread over them in turn. A unit with no surviving bus keeps its elements where they are
    (they stay unsupplied: load lost).

    Parameters
    ----------
    net : pandapowerNet

    Returns
    -------
    list of str
        One ``"<element> -> <bus>"`` per moved element.
    """
    dead = top.unsupplied_buses(net)
    rows = {}
    for tbl in ("load", "motor"):
        df = net[tbl]
        rows[tbl] = df.index[df.in_service & df.group.isin(SHIFT_GROUPS)]
    alive: dict[str, set] = {}
    for tbl, idx in rows.items():
        for i in idx:
            if net[tbl].at[i, "bus"] not in dead:
                alive.setdefault(net[tbl].at[i, "unit"], set()).add(int(net[tbl].at[i, "bus"]))
    moved = []
    turn: dict[tuple[str, str], int] = {}
    for tbl, idx in rows.items():
        for i in idx:
            unit = net[tbl].at[i, "unit"]
            targets = sorted(alive.get(unit, ()))
            if net[tbl].at[i, "bus"] not in dead or not targets:
                continue
            k = turn.get((tbl, unit), 0)
            turn[(tbl, unit)] = k + 1
            net[tbl].at[i, "bus"] = targets[k % len(targets)]
            moved.append(f"{net[tbl].at[i, 'name']} -> {net.bus.at[targets[k % len(targets)], 'name']}")
    return moved


def demand_mw(net, table: str):
    """Active-power demand at set point of every element of ``net.load`` or ``net.motor``, in MW (pandas Series).

    Loads: ``p_mw * scaling``; motors: ``pn_mech_mw * loading_percent / efficiency_percent * scaling``, the
    electrical input as pandapower's motor element computes it.
    """
    df = net[table]
    if table == "load":
        return df.p_mw * df.scaling
    return df.pn_mech_mw * df.loading_percent / df.efficiency_percent * df.scaling


def load_lost_mw(net, dead: set) -> float:
    """Campus load on unsupplied buses in MW: in-service loads (not container auxiliaries) and motors."""
    ld, mo = net.load, net.motor
    m_load = ld.in_service & ld.bus.isin(dead) & ~ld.group.isin(CONTAINER_GROUPS)
    m_motor = mo.in_service & mo.bus.isin(dead)
    return float(demand_mw(net, "load")[m_load].sum() + demand_mw(net, "motor")[m_motor].sum())


def injection_lost_mw(net, dead: set, outage: Outage) -> float:
    """Set-point power of the PCS/PV lost: the outaged PCS and every in-service sgen on an unsupplied bus, in MW."""
    sg = net.sgen
    lost = sg.in_service & sg.bus.isin(dead)
    total = float((sg.p_mw * sg.scaling)[lost].sum())
    if outage.table == "sgen":
        total += float(sg.at[outage.idx, "p_mw"] * sg.at[outage.idx, "scaling"])
    return total


def _solve(net) -> bool:
    """Load flow of one state; False if it does not converge. A net with no energised bus is not solved."""
    if not (net.ext_grid.in_service.any()) or len(top.unsupplied_buses(net)) == len(net.bus):
        return True
    try:
        run_loadflow(net)
    except pp.LoadflowNotConverged:
        return False
    return True


def _state_values(net, br, outage: Outage, energised: bool, converged: bool, cap_mw: float) -> dict:
    """Result arrays and scalars of one solved (or failed) state."""
    nb, nr = len(net.bus), len(br)
    out = dict(vm_pu=np.full(nb, np.nan), loading_percent=np.full(nr, np.nan), p_import_mw=np.nan,
               q_import_mvar=np.nan, p_load_mw=np.nan, p_sgen_mw=np.nan, losses_mw=np.nan,
               balance_mismatch_mw=np.nan)
    if converged and not energised:
        out.update(p_import_mw=0.0, q_import_mvar=0.0, p_load_mw=0.0, p_sgen_mw=0.0, losses_mw=0.0,
                   balance_mismatch_mw=0.0)
    elif converged:
        out["vm_pu"] = net.res_bus.vm_pu.reindex(net.bus.index).to_numpy(float)
        lp = branch_results(net, br)["loading_percent"]
        if outage.table in ("line", "trafo"):
            kind = "line" if outage.table == "line" else "trafo"
            lp[((br.kind == kind) & (br.idx == outage.idx)).to_numpy()] = np.nan
        out["loading_percent"] = lp
        p, q = grid_import(net)
        inj_minus_cons, losses = power_balance(net)
        out.update(p_import_mw=p, q_import_mvar=q, losses_mw=losses, balance_mismatch_mw=inj_minus_cons - losses,
                   p_load_mw=float(np.nansum(net.res_load.p_mw) + np.nansum(net.res_motor.p_mw)),
                   p_sgen_mw=float(np.nansum(net.res_sgen.p_mw)))
    out["load_to_shed_mw"] = max(0.0, out["p_import_mw"] - cap_mw) if np.isfinite(out["p_import_mw"]) else np.nan
    return out


def _check(chk: Checker, case: Case, net, br, scenario: str, state: str, converged: bool, energised: bool,
           lost_mw: float) -> None:
    """Check rows of one state: voltages, loadings and cap (emergency criteria), convergence, load lost."""
    if not converged:
        chk.lower(scenario, "load flow", "converged", 0.0, 1.0, "-", CRITERION_CONVERGED)
    elif energised:
        check_state(chk, case, net, scenario, br, emergency=True)
    if state == "after_transfer":
        chk.upper(scenario, "campus load", "load_lost_mw", lost_mw, 0.0, "MW", CRITERION_LOST)
    else:
        t = case.spec.switching_station.bus_transfer_time_s
        chk.upper(scenario, "campus load", "load_lost_mw", lost_mw, 0.0, "MW",
                  "informative: load interrupted until the automatic transfer acts "
                  f"(<= bus_transfer_time_s = {t:g} s)", advisory=True)


def run(case: Case, net=None) -> StudyResult:
    """Run the N-1 contingency study at the case's contingency operating points; see the module docstring.

    Parameters
    ----------
    case : Case
    net : pandapowerNet, optional
        The campus net (built from the case if not given); it is not modified.

    Returns
    -------
    StudyResult
        Dataset over ``operating_point x outage x state`` (x ``bus``/``branch``/``coupler``), check rows and
        summary figures (worst load lost after transfer, worst load to shed, voltage and loading extremes).
    """
    net = build_net(case) if net is None else net
    chk = Checker(NAME, case.criteria.warn_margin_fraction)
    cap = case.spec.supply.firm_import_cap_mw
    ops = list(case.spec.contingency.operating_points)
    outs = outages(net)
    br = branch_table(net)
    couplers = net.switch.index[(net.switch.et == "b") & net.switch["name"].astype(str).str.startswith("BC_")]
    shape = (len(ops), len(outs), len(STATES))
    scalar_names = ("p_import_mw", "q_import_mvar", "load_lost_mw", "load_to_shed_mw", "injection_lost_mw",
                    "p_load_mw", "p_sgen_mw", "losses_mw", "balance_mismatch_mw")
    vm = np.full((*shape, len(net.bus)), np.nan)
    loading = np.full((*shape, len(br)), np.nan)
    scal = {k: np.full(shape, np.nan) for k in scalar_names}
    converged = np.zeros(shape, dtype=bool)
    coupler_closed = np.zeros((*shape, len(couplers)), dtype=bool)
    actions = np.full(shape, "", dtype=object)
    p_intact = np.full(len(ops), np.nan)
    intact_ok = np.zeros(len(ops), dtype=bool)

    progress = tqdm(total=len(ops) * len(outs), desc="contingency", unit="outage", leave=False)
    for k, op in enumerate(ops):
        base = apply_operating_point(net, case, op)
        intact = copy.deepcopy(base)
        intact_ok[k] = _solve(intact)
        p_intact[k] = grid_import(intact)[0] if intact_ok[k] else np.nan
        for j, o in enumerate(outs):
            first = copy.deepcopy(base)
            take_out(first, o)
            second = copy.deepcopy(first)
            acts = bus_transfer(second) if case.spec.switching_station.bus_transfer else []
            acts += shift_2n(second)
            solved = {}
            for s, (state, n) in enumerate(zip(STATES, (first, second), strict=True)):
                if state == "after_transfer" and not acts:
                    n = first  # no automatic action: the state is the immediate one under another label
                    ok = solved["immediate"]
                else:
                    ok = solved[state] = _solve(n)
                dead = top.unsupplied_buses(n)
                energised = bool(n.ext_grid.in_service.any()) and len(dead) < len(n.bus)
                vals = _state_values(n, br, o, energised, ok, cap)
                vm[k, j, s], loading[k, j, s] = vals.pop("vm_pu"), vals.pop("loading_percent")
                vals["load_lost_mw"] = load_lost_mw(n, dead)
                vals["injection_lost_mw"] = injection_lost_mw(n, dead, o)
                for key, v in vals.items():
                    scal[key][k, j, s] = v
                converged[k, j, s] = ok
                coupler_closed[k, j, s] = n.switch.loc[couplers, "closed"].to_numpy(bool)
                actions[k, j, s] = "; ".join(acts) if state == "after_transfer" else ""
                _check(chk, case, n, br, f"{op} | {o.label} | {state}", state, ok, energised,
                       vals["load_lost_mw"])
            progress.update()
    progress.close()

    d3 = ("operating_point", "outage", "state")
    ds = xr.Dataset(
        {
            "vm_pu": ((*d3, "bus"), vm, attrs("pu", "bus voltage magnitude (NaN: bus unsupplied or load flow failed)")),
            "loading_percent": ((*d3, "branch"), loading,
                                attrs("%", "branch loading (cables: of ampacity; transformers: of rating); "
                                           "NaN for the outaged element")),
            "p_import_mw": (d3, scal["p_import_mw"], attrs("MW", "grid import at the point of connection, sum of incomers")),
            "q_import_mvar": (d3, scal["q_import_mvar"], attrs("Mvar", "reactive import at the point of connection")),
            "load_lost_mw": (d3, scal["load_lost_mw"],
                             attrs("MW", "campus load (IT, cooling, auxiliaries, motors) left unsupplied, at set point")),
            "load_to_shed_mw": (d3, scal["load_to_shed_mw"],
                                attrs("MW", "max(0, grid import - firm cap): power to shed or cover to respect the cap")),
            "injection_lost_mw": (d3, scal["injection_lost_mw"],
                                  attrs("MW", "PCS and PV power lost with the outage, at set point (+ = generation)")),
            "p_load_mw": (d3, scal["p_load_mw"], attrs("MW", "load served (loads and motors) from the load flow")),
            "p_sgen_mw": (d3, scal["p_sgen_mw"], attrs("MW", "PCS and PV injection from the load flow")),
            "losses_mw": (d3, scal["losses_mw"], attrs("MW", "network active losses (cables and transformers)")),
            "balance_mismatch_mw": (d3, scal["balance_mismatch_mw"],
                                    attrs("MW", "injections - consumption - losses (zero when the load flow balances)")),
            "converged": (d3, converged, attrs("1", "the state's load flow converged (or had nothing to solve)")),
            "coupler_closed": ((*d3, "coupler"), coupler_closed, attrs("1", "bus coupler closed in this state")),
            "actions": (d3, actions.astype(str),
                        attrs("1", "automatic actions taken (bus transfer, 2N load shift); empty when none")),
            "p_import_intact_mw": ("operating_point", p_intact,
                                   attrs("MW", "grid import of the intact net at the operating point")),
        },
        coords={"operating_point": ops, "outage": [o.label for o in outs], "state": list(STATES),
                "outage_kind": ("outage", [o.kind for o in outs]),
                "outage_element": ("outage", [o.element for o in outs]),
                "coupler": ("coupler", net.switch.loc[couplers, "name"].astype(str).tolist()),
                **bus_coords(net), **branch_coords(br),
                "firm_import_cap_mw": ((), cap, attrs("MW", "firm import cap"))},
    )
    checks = chk.frame()
    return StudyResult(NAME, finalize(ds, NAME, case), checks, _summary(ds, checks))


def _summary(ds: xr.Dataset, checks) -> dict:
    """Key figures for ``summary.json``.

    ``outages_failing`` maps ``"<operating point> | <outage>"`` to the quantities that FAIL in either state
    (``load_lost_mw``, ``p_import_mw``, ``vm_pu``, ``loading_percent``, ``converged``).
    """
    after = ds.sel(state="after_transfer")
    lost = after.load_lost_mw
    labels = [f"{op} | {o}" for op in ds.operating_point.values for o in ds.outage.values]
    lost_flat = lost.values.ravel()
    ok = ds.converged.values
    failed: dict[str, set] = {}
    for scenario, quantity in checks.loc[checks.status == "FAIL", ["scenario", "quantity"]].itertuples(index=False):
        failed.setdefault(scenario.rsplit(" | ", 1)[0], set()).add(quantity)

    def _max(a):
        return float(np.nanmax(a)) if np.isfinite(a).any() else float("nan")

    def _min(a):
        return float(np.nanmin(a)) if np.isfinite(a).any() else float("nan")

    return {
        **counts(checks),
        "operating_points": ds.operating_point.values.tolist(),
        "outages": int(ds.sizes["outage"]),
        "load_lost_after_transfer_max_mw": _max(lost.values),
        "load_to_shed_max_mw": _max(ds.load_to_shed_mw.values),
        "vm_min_pu": _min(ds.vm_pu.values),
        "vm_max_pu": _max(ds.vm_pu.values),
        "loading_max_percent": _max(ds.loading_percent.values),
        "outages_with_load_lost": [lab for lab, v in zip(labels, lost_flat, strict=True) if v > 0],
        "not_converged": [f"{ds.operating_point.values[a]} | {ds.outage.values[b]} | {ds.state.values[c]}"
                          for a, b, c in zip(*np.nonzero(~ok), strict=True)],
        "p_import_intact_mw": dict(zip(ds.operating_point.values.tolist(),
                                       ds.p_import_intact_mw.values.round(4).tolist(), strict=True)),
        "outages_failing": {k: sorted(v) for k, v in sorted(failed.items())},
    }
