"""Battery: system ratings here; the cell model and its parts in submodules.

- :mod:`twin.battery.params` -- cell parameter sets (``models/battery/ecm/``), checked on loading;
- :mod:`twin.battery.cell` -- the cell's electro-thermal equivalent-circuit model, single-cell reference kernel
  (current and power control, limits by bisection; calibration and the PyBaMM comparison use it);
- :mod:`twin.battery.system` -- the system: racks on each container's DC bus, every cell / rack / container
  granularity, BMS limits, cell -> rack -> air thermal network and HVAC (kernel :mod:`twin.battery._syskernel`,
  specialised per parameter set by :mod:`twin.battery._codegen`);
- :mod:`twin.battery.calibration` -- HPPC fit and constant-current validation (K2 26650 data);
- :mod:`twin.battery.bms` -- charge and discharge limits against SOC and temperature;
- :mod:`twin.battery.ageing` -- capacity fade and resistance growth (NREL BLAST-Lite's LFP model, coded here).

Ratings follow DESIGN.md: the energy rating is the beginning-of-life DC nameplate (cells x cell energy); the power
rating is AC active power at the PCS terminals; usable AC energy is computed, not entered.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..case import Case


def pcs_efficiency(p_ac_mw, p_rated_mw: float, eta_nom: float, eta_ref: float):
    """PCS efficiency at AC power ``p_ac_mw`` (PVWatts curve shape, pvlib.inverter.pvwatts; REFERENCE.md).

    ``eta = eta_nom / eta_ref * (-0.0162 z - 0.0059 / z + 0.9858)`` with ``z = |P| / P_rated`` (0 < z <= 1).
    """
    import numpy as np

    z = np.clip(np.abs(np.asarray(p_ac_mw, dtype=float)) / p_rated_mw, 1e-6, None)
    return eta_nom / eta_ref * (-0.0162 * z - 0.0059 / z + 0.9858)


@dataclass(frozen=True)
class BatteryRatings:
    containers: int
    cells: int
    nameplate_dc_mwh: float        # DC nameplate, cells x cell energy (MWh)
    usable_dc_mwh: float           # inside the BMS SOC window (MWh)
    usable_ac_mwh: float           # delivered at the PCS AC terminals, discharging at rated power (MWh)
    p_ac_rated_mw: float           # AC active power at the PCS terminals (MW)
    s_pcs_mva: float               # PCS apparent-power rating (MVA)
    duration_h: float              # usable AC energy / rated AC power (h)
    aux_mw: float                  # HVAC and BMS, all containers (MW)


def ratings(case: Case) -> BatteryRatings | None:
    """The battery's ratings from the case, or None if the case has no battery."""
    b = case.spec.battery
    if b is None:
        return None
    cont = case.model("battery/containers", b.container)
    cell = case.model("battery/cells", cont.cell)
    pcs = case.model("pcs", b.pcs)
    n = len(b.containers)
    cells = n * cont.racks * cont.cells_series_per_rack * cont.cells_parallel_per_rack
    nameplate = cells * cell.capacity_ah * cell.v_nominal / 1e6
    usable_dc = nameplate * (cont.soc_max - cont.soc_min)
    eta_pcs = float(pcs_efficiency(pcs.p_rated_mw, pcs.p_rated_mw, pcs.eta_nom, pcs.eta_ref))
    usable_ac = usable_dc * cont.dc_efficiency_one_way * eta_pcs
    p = n * pcs.p_rated_mw
    return BatteryRatings(containers=n, cells=cells, nameplate_dc_mwh=nameplate, usable_dc_mwh=usable_dc,
                          usable_ac_mwh=usable_ac, p_ac_rated_mw=p, s_pcs_mva=n * pcs.sn_mva,
                          duration_h=usable_ac / p, aux_mw=n * cont.aux_kw / 1000.0)
