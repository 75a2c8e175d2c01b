"""Economics of the battery over a study horizon: bills with and without it, and the savings split.

Three grid-import series of the same horizon go through the tariff's bill (:func:`twin.tariff.bill`: energy by
period, monthly maximum-demand charge, power-factor adjustment):

- ``with battery``: the import the year-in-the-loop study computed (battery, PV, losses, shedding);
- ``without battery``: the same campus with the battery out of service (no PCS power, no container auxiliaries,
  no shedding, the cap not held), PV as available;
- ``without battery and PV``: as above without PV either.

Savings: ``total = bill(without battery) - bill(with battery)``, split by bill component: ``energy`` (time-of-use
arbitrage, net of the battery's losses and auxiliaries), ``demand`` (the monthly maximum-demand charge the cap
and peak shaving lower) and ``power_factor``; the PV's own saving is ``bill(without battery and PV) -
bill(without battery)``. Shedding lowers the with-battery bill; its energy and its value at the energy prices are
reported beside the savings, not hidden in them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .tariff import TariffModel, bill, price

__all__ = ["savings"]


def _bill_summary(b: dict) -> dict:
    return {"total_cny": b["total_cny"], "energy_cny": float(sum(b["energy_cny"].values())),
            "demand_cny": b["demand_cny"], "pf_adjustment_cny": b["pf_adjustment_cny"],
            "energy_mwh": float(sum(b["energy_mwh"].values()))}


def savings(tariff: TariffModel, index: pd.DatetimeIndex, p_with_mw, q_with_mvar, p_without_mw, q_without_mvar,
            p_without_pv_mw, q_without_pv_mvar, p_shed_mw=None) -> dict:
    """Bills with and without the battery (and PV) and the savings split (module docstring).

    Parameters
    ----------
    tariff : TariffModel
    index : DatetimeIndex
        Timezone-aware interval starts, constant step.
    p_with_mw, q_with_mvar : array (n,)
        Grid import with the battery (MW, Mvar).
    p_without_mw, q_without_mvar : array (n,)
        Grid import without the battery (MW, Mvar).
    p_without_pv_mw, q_without_pv_mvar : array (n,)
        Grid import without battery and PV (MW, Mvar).
    p_shed_mw : array (n,), optional
        Load shed to hold the cap (MW).

    Returns
    -------
    dict
        ``with_battery``, ``without_battery``, ``without_battery_pv`` (each ``total_cny``, ``energy_cny``,
        ``demand_cny``, ``pf_adjustment_cny``, ``energy_mwh``); ``savings_cny`` (total), ``savings_energy_cny``,
        ``savings_demand_cny``, ``savings_pf_cny``, ``savings_pv_cny``, ``shed_energy_mwh``, ``shed_value_cny``;
        ``monthly`` (DataFrame: total CNY per month of each bill).
    """
    b_with = bill(tariff, index, p_with_mw, q_with_mvar)
    b_wo = bill(tariff, index, p_without_mw, q_without_mvar)
    b_wopv = bill(tariff, index, p_without_pv_mw, q_without_pv_mvar)
    w, wo, wopv = _bill_summary(b_with), _bill_summary(b_wo), _bill_summary(b_wopv)
    dt_h = (index[1] - index[0]).total_seconds() / 3600.0
    shed = np.zeros(len(index)) if p_shed_mw is None else np.asarray(p_shed_mw, float)
    monthly = pd.DataFrame({"with_battery_cny": b_with["monthly"]["total_cny"],
                            "without_battery_cny": b_wo["monthly"]["total_cny"],
                            "without_battery_pv_cny": b_wopv["monthly"]["total_cny"]})
    return {
        "with_battery": w, "without_battery": wo, "without_battery_pv": wopv,
        "savings_cny": wo["total_cny"] - w["total_cny"],
        "savings_energy_cny": wo["energy_cny"] - w["energy_cny"],
        "savings_demand_cny": wo["demand_cny"] - w["demand_cny"],
        "savings_pf_cny": wo["pf_adjustment_cny"] - w["pf_adjustment_cny"],
        "savings_pv_cny": wopv["total_cny"] - wo["total_cny"],
        "shed_energy_mwh": float(shed.sum() * dt_h),
        "shed_value_cny": float((shed * price(tariff, index)).sum() * dt_h * 1000.0),
        "monthly": monthly,
    }
