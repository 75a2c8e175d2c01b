"""The campus as a pandapower network: the single source of truth for topology and electrical data (DESIGN.md).

:func:`build_net` turns a :class:`~twin.case.Case` into a pandapower net with named buses and elements, each
tagged with its ``zone`` (utility, substation, a hall, the cooling plant, a battery container, PV, auxiliaries)
and ``role``, the ratings the limit checks need, and coordinates for a single-line diagram
(:func:`plot_single_line`). :func:`apply_operating_point` sets loads and injections for a named operating point.

Conventions (DESIGN.md): loads consume positive ``p_mw``; the PCS (one ``sgen`` per container) and PV produce
positive ``p_mw``, so the battery discharges at positive power; grid import is the sum of the external grids'
``p_mw`` (positive when the campus draws from the utility).
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pandapower as pp

from . import load as loadmod
from .battery import ratings as battery_ratings
from .case import Case, OperatingPoint

__all__ = ["build_net", "apply_operating_point", "run_loadflow", "grid_import", "plot_single_line", "power_balance"]

# c factors of IEC 60909-0 Table 1 are applied by pandapower; the source impedance follows from S_sc and R/X.


def _feed_letter(k: int) -> str:
    return "ABCD"[k]


class _Layout:
    """Columns of the single-line diagram: one per incomer or feed, grouped by bus section."""

    def __init__(self, sections: list[str]):
        self.sections = sections
        self.cols: dict[str, list[str]] = {s: [] for s in sections}

    def add(self, section: str, key: str):
        self.cols[section].append(key)

    def x(self, section: str, key: str) -> float:
        x0 = 0.0
        for s in self.sections:
            if s == section:
                return x0 + self.cols[s].index(key)
            x0 += max(len(self.cols[s]), 1) + 1.5
        raise KeyError(section)

    def span(self, section: str) -> tuple[float, float]:
        n = max(len(self.cols[section]), 1)
        x0 = self.x(section, self.cols[section][0]) if self.cols[section] else 0.0
        return x0 - 0.4, x0 + n - 1 + 0.4


# y levels of the single-line diagram
_Y = {"poc": 4.0, "section": 3.0, "mv_terminal": 1.8, "lv_board": 0.8}


def _bus(net, name, vn_kv, zone, role, xy, sw=None):
    idx = pp.create_bus(net, vn_kv=vn_kv, name=name, zone=zone, type="b", geodata=xy)
    net.bus.loc[idx, "role"] = role
    net.bus.loc[idx, "sld_x"] = xy[0]
    net.bus.loc[idx, "sld_y"] = xy[1]
    if sw is not None:
        net.bus.loc[idx, "switchgear"] = sw[0]
        net.bus.loc[idx, "sc_breaking_ka"] = sw[1].breaking_ka
        net.bus.loc[idx, "sc_peak_ka"] = min(sw[1].peak_withstand_ka, sw[1].making_peak_ka)
        net.bus.loc[idx, "sc_short_time_ka"] = sw[1].short_time_ka
        net.bus.loc[idx, "sc_short_time_s"] = sw[1].short_time_s
        net.bus.loc[idx, "rated_current_a"] = sw[1].ir_a
    return idx


def _line(net, case, name, fb, tb, cable_name, length_km, zone, role):
    c = case.model("cables", cable_name)
    idx = pp.create_line_from_parameters(
        net, fb, tb, length_km=length_km, r_ohm_per_km=c.r_ohm_per_km, x_ohm_per_km=c.x_ohm_per_km,
        c_nf_per_km=c.c_nf_per_km, max_i_ka=c.max_i_ka, name=name, type="cs",
        r0_ohm_per_km=c.r0_ohm_per_km, x0_ohm_per_km=c.x0_ohm_per_km, c0_nf_per_km=c.c0_nf_per_km,
        endtemp_degree=c.t_sc_max_degc, alpha=c.alpha_per_k, temperature_degree_celsius=c.t_max_degc)
    net.line.loc[idx, "zone"] = zone
    net.line.loc[idx, "role"] = role
    net.line.loc[idx, "cable"] = cable_name
    net.line.loc[idx, "cross_section_mm2"] = c.cross_section_mm2
    net.line.loc[idx, "k_adiabatic"] = c.k_adiabatic
    return idx


def _trafo(net, case, name, hv, lv, tname, zone):
    t = case.model("transformers", tname)
    idx = pp.create_transformer_from_parameters(
        net, hv, lv, sn_mva=t.sn_mva, vn_hv_kv=t.vn_hv_kv, vn_lv_kv=t.vn_lv_kv, vkr_percent=t.vkr_percent,
        vk_percent=t.vk_percent, pfe_kw=t.pfe_kw, i0_percent=t.i0_percent, shift_degree=t.shift_degree,
        tap_side="hv", tap_neutral=t.tap_neutral, tap_min=t.tap_min, tap_max=t.tap_max,
        tap_step_percent=t.tap_step_percent, tap_pos=t.tap_pos, tap_changer_type="Ratio", name=name,
        vector_group=t.vector_group, vk0_percent=t.vk0_percent, vkr0_percent=t.vkr0_percent,
        mag0_percent=t.mag0_percent, mag0_rx=t.mag0_rx, si0_hv_partial=t.si0_hv_partial)
    net.trafo.loc[idx, "zone"] = zone
    net.trafo.loc[idx, "kind"] = t.kind
    net.trafo.loc[idx, "model"] = tname
    return idx


def _feed(net, case, layout, unit, letter, zone, section_bus, section, feed_spec, mvsw):
    """Cable from a bus section to a transformer, its MV terminal and LV board buses. Returns the LV bus."""
    key = f"{unit}_{letter}" if letter else unit
    x = layout.x(section, key)
    sfx = f"_{letter}" if letter else ""
    t = case.model("transformers", feed_spec.transformer)
    mv = _bus(net, f"{unit}_MV{sfx}", case.spec.supply.vn_kv, zone, "mv_terminal", (x, _Y["mv_terminal"]),
              (case.spec.switching_station.feeder_unit, mvsw))
    lvb = case.model("switchgear", feed_spec.lv_board)
    lv = _bus(net, f"{unit}_LV{sfx}", t.vn_lv_kv, zone, "lv_board", (x, _Y["lv_board"]), (feed_spec.lv_board, lvb))
    _line(net, case, f"{unit}_CBL{sfx}", section_bus, mv, feed_spec.cable, feed_spec.length_km, zone, "feeder")
    _trafo(net, case, f"{unit}_TR{sfx}", mv, lv, feed_spec.transformer, zone)
    return lv


def build_net(case: Case):
    """Build the pandapower net of a case (no operating point applied: see :func:`apply_operating_point`).

    Returns
    -------
    pandapowerNet
        Buses carry ``zone``, ``role`` (poc, mv_section, mv_terminal, lv_board), switchgear short-circuit ratings
        (``sc_breaking_ka``, ``sc_peak_ka``, ``sc_short_time_ka``, ``sc_short_time_s``) and ``sld_x``/``sld_y``.
        Lines carry ``cross_section_mm2`` and ``k_adiabatic``; loads a ``group`` (it, cooling, aux, bess_aux) and
        ``unit``; sgens their ``type`` (PCS or PV) and IEC 60909 ``k``.
    """
    s = case.spec
    net = pp.create_empty_network(name=case.name, f_hz=s.supply.frequency_hz, sn_mva=1.0)
    for tbl in ("bus", "line", "trafo", "load", "sgen", "motor"):
        for col in ("zone", "role", "group", "unit"):
            if col not in net[tbl].columns:
                net[tbl][col] = ""
            net[tbl][col] = net[tbl][col].astype(object)
    net.bus["switchgear"] = ""
    net.bus["switchgear"] = net.bus["switchgear"].astype(object)
    net.line["cable"] = net.line.get("cable", "")
    net.line["cable"] = net.line["cable"].astype(object)
    net.trafo["kind"] = ""
    net.trafo["kind"] = net.trafo["kind"].astype(object)
    net.trafo["model"] = ""
    net.trafo["model"] = net.trafo["model"].astype(object)

    ss = s.switching_station
    mvsw_station = case.model("switchgear", ss.switchgear)
    mvsw_feeder = case.model("switchgear", ss.feeder_unit)

    # layout: incomers first, then the feeds on each section
    lay = _Layout(list(ss.sections))
    for inc in s.supply.incomers:
        lay.add(inc.section, inc.name)
    for h in s.halls:
        for k, f in enumerate(h.feeds):
            lay.add(f.section, f"{h.name}_{_feed_letter(k)}")
    for c in s.cooling_plants:
        for k, f in enumerate(c.feeds):
            lay.add(f.section, f"{c.name}_{_feed_letter(k)}")
    if s.battery is not None:
        for c in s.battery.containers:
            lay.add(c.section, c.name)
    for p in s.pv:
        lay.add(p.section, p.name)
    for a in s.auxiliaries:
        lay.add(a.section, a.name)

    sec_bus = {}
    for sec in ss.sections:
        x0, x1 = lay.span(sec)
        sec_bus[sec] = _bus(net, f"SWS_{sec}", s.supply.vn_kv, "substation", "mv_section",
                            ((x0 + x1) / 2, _Y["section"]), (ss.switchgear, mvsw_station))
        net.bus.loc[sec_bus[sec], "sld_x0"] = x0
        net.bus.loc[sec_bus[sec], "sld_x1"] = x1
    for a, b in zip(ss.sections[:-1], ss.sections[1:], strict=True):
        pp.create_switch(net, sec_bus[a], sec_bus[b], et="b", closed=ss.coupler_closed, type="CB",
                         name=f"BC_{a}_{b}")

    # utility supply
    for inc in s.supply.incomers:
        x = lay.x(inc.section, inc.name)
        poc = _bus(net, f"{inc.name}_POC", s.supply.vn_kv, "utility", "poc", (x, _Y["poc"]),
                   (ss.switchgear, mvsw_station))
        rx_max, rx_min = 1.0 / inc.x_r_max, 1.0 / inc.x_r_min
        zero = _zero_sequence(case, inc, rx_max, rx_min)
        eg = pp.create_ext_grid(net, poc, vm_pu=1.0, name=inc.name, s_sc_max_mva=inc.s_sc_max_mva,
                                s_sc_min_mva=inc.s_sc_min_mva, rx_max=rx_max, rx_min=rx_min, **zero)
        net.ext_grid.loc[eg, "capacity_mw"] = inc.capacity_mw
        _line(net, case, f"{inc.name}_CBL", poc, sec_bus[inc.section], inc.cable, inc.length_km, "utility", "incomer")

    # GPU halls: each feed its own transformer and LV board, IT load split over the feeds (2N)
    for h in s.halls:
        for k, f in enumerate(h.feeds):
            letter = _feed_letter(k)
            lv = _feed(net, case, lay, h.name, letter, f"hall_{h.name}", sec_bus[f.section], f.section, f, mvsw_feeder)
            i = pp.create_load(net, lv, p_mw=0.0, q_mvar=0.0, name=f"{h.name}_IT_{letter}")
            net.load.loc[i, ["zone", "group", "unit"]] = [f"hall_{h.name}", "it", h.name]

    # cooling plants: VSD compressors as loads, DOL pumps and fans as motors (they feed short circuits)
    for c in s.cooling_plants:
        model = case.model("cooling", c.model)
        for k, f in enumerate(c.feeds):
            letter = _feed_letter(k)
            zone = f"cooling_{c.name}"
            lv = _feed(net, case, lay, c.name, letter, zone, sec_bus[f.section], f.section, f, mvsw_feeder)
            i = pp.create_load(net, lv, p_mw=0.0, q_mvar=0.0, name=f"{c.name}_CHILLERS_{letter}")
            net.load.loc[i, ["zone", "group", "unit"]] = [zone, "cooling", c.name]
            vn = net.bus.at[lv, "vn_kv"]
            for m in model.motors:
                for n in range(m.count_per_feed):
                    j = pp.create_motor(net, lv, pn_mech_mw=m.pn_mech_kw / 1000.0, cos_phi=m.cos_phi,
                                        efficiency_percent=m.efficiency_percent, loading_percent=m.loading_percent,
                                        name=f"{c.name}_{m.name}{n + 1}_{letter}", lrc_pu=m.lrc_pu, rx=m.rx,
                                        vn_kv=vn, cos_phi_n=m.cos_phi, efficiency_n_percent=m.efficiency_percent)
                    net.motor.loc[j, ["zone", "group", "unit"]] = [zone, "cooling", c.name]
                    net.motor.loc[j, "rated_loading_percent"] = m.loading_percent

    # battery containers: PCS as one sgen each (DESIGN.md), container auxiliaries as a load
    if s.battery is not None:
        b = s.battery
        cont = case.model("battery/containers", b.container)
        pcs = case.model("pcs", b.pcs)
        feed = _FeedSpec(b.transformer, b.lv_board)
        for c in b.containers:
            zone = f"battery_{c.name}"
            lv = _feed(net, case, lay, c.name, "", zone, sec_bus[c.section], c.section,
                       feed.with_cable(c.cable, c.length_km), mvsw_feeder)
            g = pp.create_sgen(net, lv, p_mw=0.0, q_mvar=0.0, sn_mva=pcs.sn_mva, name=f"{c.name}_PCS", type="PCS",
                               k=pcs.k_sc, generator_type="current_source", max_p_mw=pcs.p_rated_mw,
                               min_p_mw=-pcs.p_rated_mw)
            net.sgen.loc[g, ["zone", "unit"]] = [zone, c.name]
            i = pp.create_load(net, lv, p_mw=0.0, q_mvar=0.0, name=f"{c.name}_AUX")
            net.load.loc[i, ["zone", "group", "unit"]] = [zone, "bess_aux", c.name]
            net.load.loc[i, "rated_p_mw"] = cont.aux_kw / 1000.0
            net.load.loc[i, "rated_pf"] = cont.aux_power_factor

    for p in s.pv:
        m = case.model("pv", p.model)
        zone = f"pv_{p.name}"
        lv = _feed(net, case, lay, p.name, "", zone, sec_bus[p.section], p.section, p, mvsw_feeder)
        ac = p.inverters * m.inverter_ac_kw_each / 1000.0
        g = pp.create_sgen(net, lv, p_mw=0.0, q_mvar=0.0, sn_mva=ac, name=f"{p.name}_INV", type="PV", k=m.k_sc,
                           generator_type="current_source", max_p_mw=ac, min_p_mw=0.0)
        net.sgen.loc[g, ["zone", "unit"]] = [zone, p.name]

    for a in s.auxiliaries:
        zone = f"aux_{a.name}"
        lv = _feed(net, case, lay, a.name, "", zone, sec_bus[a.section], a.section, a, mvsw_feeder)
        i = pp.create_load(net, lv, p_mw=0.0, q_mvar=0.0, name=f"{a.name}_LOAD")
        net.load.loc[i, ["zone", "group", "unit"]] = [zone, "aux", a.name]
        net.load.loc[i, "rated_p_mw"] = a.p_kw / 1000.0
        net.load.loc[i, "rated_pf"] = a.power_factor
    return net


class _FeedSpec:
    """A feed assembled from the battery's shared transformer/board and each container's own cable."""

    def __init__(self, transformer, lv_board, cable=None, length_km=None):
        self.transformer, self.lv_board, self.cable, self.length_km = transformer, lv_board, cable, length_km

    def with_cable(self, cable, length_km):
        return _FeedSpec(self.transformer, self.lv_board, cable, length_km)


def _zero_sequence(case: Case, inc, rx_max: float, rx_min: float) -> dict:
    """Zero-sequence data of the utility source from the case's neutral earthing.

    The source's zero-sequence reactance is taken equal to its positive-sequence reactance (the utility's
    110/10 kV transformer, YNd with an earthing transformer or a neutral resistor: X0 ~ X1, an assumption);
    a low-resistance earthed neutral adds ``3 R_N`` to R0 (IEC 60909-0 4.2.1). Isolated and resonant neutrals
    give no earth-fault current in IEC 60909 terms: R0 is set very high and the short-circuit study reports the
    single-phase fault at MV as not applicable.
    """
    s = case.spec.supply
    out = {}
    for tag, s_sc, rx, c in (("max", inc.s_sc_max_mva, rx_max, 1.1), ("min", inc.s_sc_min_mva, rx_min, 1.0)):
        x1 = c * s.vn_kv ** 2 / s_sc / np.sqrt(1.0 + rx ** 2)
        if s.earthing == "solid":
            r0x0 = rx
        elif s.earthing == "low_resistance":
            r0x0 = rx + 3.0 * s.earthing_r_ohm / x1
        else:  # isolated or resonant: no low-impedance zero-sequence path
            r0x0 = 1e6 / x1
        out[f"x0x_{tag}"] = 1.0
        out[f"r0x0_{tag}"] = r0x0
    return out


# --------------------------------------------------------------------------------------------------------------
# operating points


def _set_loads(net, case: Case, op: OperatingPoint) -> float:
    """Set every load, motor and PV injection for ``op``; return total IT power in MW."""
    s = case.spec
    it_total = 0.0
    for h in s.halls:
        srv = case.model("it", h.server)
        p = float(loadmod.hall_it_power_mw(srv, h.gpu_count, h.network_storage_kw, op.it_utilisation))
        it_total += p
        mask = (net.load.group == "it") & (net.load.unit == h.name)
        n = int(mask.sum())
        net.load.loc[mask, "p_mw"] = p / n
        net.load.loc[mask, "q_mvar"] = float(loadmod.q_from_pf(p / n, srv.power_factor))
    cool_total = op.cooling_kw_per_kw_it * it_total
    n_feeds = sum(len(c.feeds) for c in s.cooling_plants)
    for c in s.cooling_plants:
        model = case.model("cooling", c.model)
        per_feed = cool_total / n_feeds
        scale, comp = loadmod.split_cooling_feed(model, per_feed)
        mask = (net.load.group == "cooling") & (net.load.unit == c.name)
        net.load.loc[mask, "p_mw"] = comp
        net.load.loc[mask, "q_mvar"] = float(loadmod.q_from_pf(comp, model.drive_power_factor))
        mm = net.motor.unit == c.name
        net.motor.loc[mm, "loading_percent"] = net.motor.loc[mm, "rated_loading_percent"] * scale
    for grp, frac in (("aux", op.aux_fraction), ("bess_aux", 1.0)):
        mask = net.load.group == grp
        if mask.any():
            p = net.load.loc[mask, "rated_p_mw"].astype(float) * frac
            net.load.loc[mask, "p_mw"] = p.values
            net.load.loc[mask, "q_mvar"] = loadmod.q_from_pf(p.values, net.load.loc[mask, "rated_pf"].astype(float).values)
    pv = net.sgen.type == "PV"
    net.sgen.loc[pv, "p_mw"] = net.sgen.loc[pv, "sn_mva"] * op.pv_fraction
    net.sgen.loc[pv, "q_mvar"] = 0.0
    return it_total


def _set_battery(net, p_total_mw: float):
    pcs = (net.sgen.type == "PCS") & net.sgen.in_service
    n = int(pcs.sum())
    if n:
        net.sgen.loc[pcs, "p_mw"] = p_total_mw / n
        net.sgen.loc[pcs, "q_mvar"] = 0.0


def grid_import(net) -> tuple[float, float]:
    """Grid import at the point of connection, summed over the incomers: (P in MW, Q in Mvar)."""
    r = net.res_ext_grid[net.ext_grid.in_service]
    return float(np.nansum(r.p_mw)), float(np.nansum(r.q_mvar))


def run_loadflow(net) -> None:
    """pandapower Newton-Raphson load flow with the options every study uses.

    Cable resistance is taken at the conductor's continuous temperature limit (90 degC for XLPE, from R20 and
    alpha; pandapower's ``consider_line_temperature``): conservative for voltage drop and losses.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp.runpp(net, algorithm="nr", calculate_voltage_angles=True, init="dc", trafo_model="pi",
                 max_iteration=30, tolerance_mva=1e-9, consider_line_temperature=True)


def apply_operating_point(net, case: Case, op: OperatingPoint | str, *, copy_net: bool = True):
    """Set the loads and injections of an operating point on (a copy of) the net.

    For ``battery_p_mw = "hold_cap"`` the battery charges as hard as the firm import cap allows (never
    discharging), found by iterating load flows so that network losses are included; if the campus already
    imports more than the cap with the battery idle, the battery stays idle and the cap check will FAIL.

    Returns
    -------
    pandapowerNet
        With ``net.operating_point`` set to the name, ``net.battery_setpoint_mw`` to the total battery power.
    """
    if isinstance(op, str):
        op = case.operating_point(op)
    if copy_net:
        net = copy.deepcopy(net)
    pcs = net.sgen.type == "PCS"
    net.sgen.loc[pcs, "in_service"] = op.battery_in_service
    net.load.loc[net.load.group == "bess_aux", "in_service"] = op.battery_in_service
    _set_loads(net, case, op)
    r = battery_ratings(case)
    p_max = r.p_ac_rated_mw if (r is not None and op.battery_in_service) else 0.0
    if op.battery_p_mw == "hold_cap":
        cap = case.spec.supply.firm_import_cap_mw
        p_b = 0.0
        for _ in range(8):
            _set_battery(net, p_b)
            run_loadflow(net)
            imp, _ = grid_import(net)
            new = float(np.clip(p_b + (imp - cap), -p_max, 0.0))
            if abs(new - p_b) < 1e-7:
                break
            p_b = new
        setpoint = p_b
    else:
        setpoint = float(op.battery_p_mw)  # within the in-service rating: checked when the case is loaded
    _set_battery(net, setpoint)
    net["operating_point"] = op.name
    net["battery_setpoint_mw"] = setpoint
    return net


def power_balance(net) -> tuple[float, float]:
    """(injections - consumption, losses) in MW after a load flow; the two agree when the load flow balances."""
    inj = float(np.nansum(net.res_ext_grid.p_mw)) + float(np.nansum(net.res_sgen.p_mw))
    cons = float(np.nansum(net.res_load.p_mw)) + float(np.nansum(net.res_motor.p_mw))
    losses = float(np.nansum(net.res_line.pl_mw)) + float(np.nansum(net.res_trafo.pl_mw))
    return inj - cons, losses


# --------------------------------------------------------------------------------------------------------------
# single-line diagram


def plot_single_line(net, ax=None, *, values=None, title=None):
    """Draw a readable single-line diagram of the campus net with matplotlib.

    Parameters
    ----------
    net : pandapowerNet
        A net from :func:`build_net` (uses ``sld_x``/``sld_y``).
    ax : matplotlib Axes, optional
    values : pandas Series, optional
        A value per bus index (for example ``vm_pu``) written under each bus name.
    title : str, optional

    Returns
    -------
    matplotlib Axes
    """
    import matplotlib.pyplot as plt

    if ax is None:
        width = max(10.0, 0.75 * (net.bus.sld_x.max() - net.bus.sld_x.min() + 2))
        _, ax = plt.subplots(figsize=(width, 6.5))
    colors = {"utility": "tab:gray", "substation": "black"}
    b = net.bus
    for i, row in b.iterrows():
        x, y = row.sld_x, row.sld_y
        if row.role == "mv_section":
            ax.plot([row.sld_x0, row.sld_x1], [y, y], color="black", lw=5, solid_capstyle="butt")
            ax.text(row.sld_x0, y + 0.12, f"{row['name']}  {row.vn_kv:g} kV", fontsize=8, weight="bold")
            continue
        c = colors.get(row.zone, _zone_color(row.zone))
        ax.plot([x - 0.3, x + 0.3], [y, y], color=c, lw=3, solid_capstyle="butt")
        label = row["name"]
        if values is not None and i in values.index:
            label += f"\n{values[i]:.3f}"
        ax.text(x, y - 0.08, label, fontsize=5.5, ha="center", va="top", rotation=0)
    for _, ln in net.line.iterrows():
        fb, tb = b.loc[ln.from_bus], b.loc[ln.to_bus]
        # a line at a bus section leaves it at the column of the line's other end
        xf = tb.sld_x if fb.role == "mv_section" else fb.sld_x
        xt = fb.sld_x if tb.role == "mv_section" else tb.sld_x
        ls = "-" if ln.in_service else ":"
        ax.plot([xf, xt], [fb.sld_y, tb.sld_y], color="tab:blue", lw=1.2, ls=ls)
    for _, tr in net.trafo.iterrows():
        hv, lv = b.loc[tr.hv_bus], b.loc[tr.lv_bus]
        ym = (hv.sld_y + lv.sld_y) / 2
        ax.plot([hv.sld_x, hv.sld_x], [hv.sld_y, ym + 0.12], color="k", lw=1)
        ax.plot([lv.sld_x, lv.sld_x], [ym - 0.12, lv.sld_y], color="k", lw=1)
        for dy in (0.06, -0.06):
            ax.add_patch(plt.Circle((hv.sld_x, ym + dy), 0.09, fill=False, lw=1))
    for _, sw in net.switch[net.switch.et == "b"].iterrows():
        b1, b2 = b.loc[sw.bus], b.loc[sw.element]
        xa, xb = b1.sld_x1, b2.sld_x0
        ax.plot([xa, xb], [b1.sld_y, b2.sld_y], color="k", lw=1.5, ls="-" if sw.closed else "--")
        ax.text((xa + xb) / 2, b1.sld_y + 0.12, f"{sw['name']} ({'closed' if sw.closed else 'open'})",
                fontsize=6, ha="center")
    for _, eg in net.ext_grid.iterrows():
        bb = b.loc[eg.bus]
        ax.annotate("", xy=(bb.sld_x, bb.sld_y + 0.05), xytext=(bb.sld_x, bb.sld_y + 0.55),
                    arrowprops=dict(arrowstyle="-|>", color="tab:gray"))
        ax.text(bb.sld_x, bb.sld_y + 0.6, f"{eg['name']}\n{eg.s_sc_max_mva:g} MVA", fontsize=6, ha="center")
    for tbl, marker, color in (("load", "v", "tab:red"), ("motor", "o", "tab:purple"), ("sgen", "^", "tab:green")):
        df = net[tbl]
        for bus, grp in df.groupby("bus"):
            bb = b.loc[bus]
            kinds = ", ".join(sorted({_short(n) for n in grp["name"]}))
            ax.plot([bb.sld_x], [bb.sld_y - 0.45 - (0.2 if tbl == "sgen" else 0)], marker=marker, color=color, ms=5)
            if tbl != "motor":
                ax.text(bb.sld_x + 0.12, bb.sld_y - 0.47 - (0.2 if tbl == "sgen" else 0), kinds, fontsize=5)
    ax.set_title(title or f"Single-line diagram: {net.name}")
    ax.set_axis_off()
    ax.set_ylim(-0.2, 5.0)
    return ax


def _short(name: str) -> str:
    parts = name.split("_")
    return parts[1] if len(parts) > 1 else name


def _zone_color(zone: str) -> str:
    for key, c in (("hall", "tab:red"), ("cooling", "tab:purple"), ("battery", "tab:green"), ("pv", "goldenrod"),
                   ("aux", "tab:brown")):
        if zone.startswith(key):
            return c
    return "tab:gray"
