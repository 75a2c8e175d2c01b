"""Cooling plant over time: chiller COP from the weather, water-side free cooling, pumps, fans, PUE.

A quasi-static plant model, one value per time step, vectorised over the horizon (numpy), one plant at a time:

1. Heat load (MW thermal) = IT power x (1 + ``heat_loss_fraction``) + the air-side (CRAH/CDU) fan and pump power,
   all of which ends up in the chilled water.
2. Heat-rejection reference temperature: the outdoor wet-bulb (cooling towers; Stull 2011 from dry-bulb and
   relative humidity) or dry-bulb (dry coolers). Free-running tower water leaves at reference + approach.
3. Water-side economiser: a plate heat exchanger pre-cools the chilled-water return with tower water. Free-cooling
   fraction ``f = clip((T_return - T_fc) / (T_return - T_supply), 0, 1)`` with ``T_fc`` = tower water +
   heat-exchanger approach: 1 is full free cooling (chillers off), between 0 and 1 partial.
4. Chillers carry ``(1 - f)`` of the heat load with a Carnot-fraction COP::

       T_evap = T_chw_supply - evaporator_approach
       T_cond = max(T_tower_water, min_condenser_water) + condenser_range + condenser_approach
       COP    = clip(carnot_fraction * T_evap[K] / (T_cond - T_evap), cop_min, cop_max)

   (the lift-based Carnot-fraction model of e.g. Gordon & Ng, "Cool Thermodynamics", 2000, in its simplest
   form; part-load effects of VSD compressors are not modelled).
5. Pumps (role ``pump``) follow the heat load, heat-rejection fans (role ``fan``) the heat rejected (heat load +
   compressor power), both linear between a no-load fraction and their design electrical power, which is the
   motor parameter set's power at its ``loading_percent`` (as the snapshot network uses it) at the plant's design
   heat load. These are the direct-on-line (DOL) motors; their share of the plant's power is an output for the
   dynamic studies (motor load that stalls or re-accelerates after a dip).
6. Reactive power: DOL motors at their ``cos_phi``, VSD compressors and air-side drives at
   ``drive_power_factor``. Motor power factor falling at part load is not modelled (L).

Written here rather than taken from a library: no maintained Python package models a chiller plant's electrical
demand from weather at this level (CoolProp/TESPy model components in detail, EnergyPlus needs a building model).

PUE follows ISO/IEC 30134-2 (The Green Grid): annual facility energy over IT energy, see :func:`pue`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from .case import Case, CaseError, CoolingModel
from .load import hall_it_power_mw, motor_electrical_mw

__all__ = ["wet_bulb_stull", "chiller_cop", "free_cooling_fraction", "cooling_power", "design_heat_mw",
           "campus_full_it_mw", "facility_power_mw", "pue"]

_KELVIN = 273.15


def wet_bulb_stull(temp_air_degc, relative_humidity_pct):
    """Wet-bulb temperature at sea-level pressure from dry-bulb and relative humidity (Stull 2011).

    Parameters
    ----------
    temp_air_degc : array_like
        Dry-bulb air temperature in degC (the fit is for -20 to 50 degC).
    relative_humidity_pct : array_like
        Relative humidity in % (0-100); values are clipped to the fit's range 5-99 %.

    Returns
    -------
    numpy.ndarray
        Wet-bulb temperature in degC, never above the dry-bulb.

    References
    ----------
    R. Stull, "Wet-Bulb Temperature from Relative Humidity and Air Temperature", J. Appl. Meteor. Climatol. 50
    (2011) 2267-2269. Error within about -1 K to +0.65 K over the fit's range.
    """
    t = np.asarray(temp_air_degc, dtype=float)
    rh = np.asarray(relative_humidity_pct, dtype=float)
    if np.isnan(t).any() or np.isnan(rh).any():
        raise ValueError("wet_bulb_stull: temperature and relative humidity must not contain NaN")
    if (rh < 0).any() or (rh > 100).any():
        raise ValueError(f"wet_bulb_stull: relative humidity must be 0-100 %, found {rh.min():g}-{rh.max():g}")
    rh = np.clip(rh, 5.0, 99.0)
    tw = (t * np.arctan(0.151977 * np.sqrt(rh + 8.313659)) + np.arctan(t + rh) - np.arctan(rh - 1.676331)
          + 0.00391838 * rh ** 1.5 * np.arctan(0.023101 * rh) - 4.686035)
    return np.minimum(tw, t)


def _reference_temp(model: CoolingModel, temp_air_degc, wet_bulb_degc):
    return np.asarray(wet_bulb_degc if model.heat_rejection == "cooling_tower" else temp_air_degc, dtype=float)


def chiller_cop(model: CoolingModel, t_reference_degc):
    """Chiller COP (kW cooling per kW electrical) from the heat-rejection reference temperature.

    Parameters
    ----------
    model : CoolingModel
        The plant's parameter set (temperatures in degC, approaches in K).
    t_reference_degc : array_like
        Wet-bulb (cooling towers) or dry-bulb (dry coolers) temperature in degC.

    Returns
    -------
    numpy.ndarray
        COP, within ``[cop_min, cop_max]``: ``carnot_fraction * T_evap / (T_cond - T_evap)`` (temperatures in K).
    """
    t_ref = np.asarray(t_reference_degc, dtype=float)
    t_cw = np.maximum(t_ref + model.tower_approach_k, model.min_condenser_water_degc)
    t_cond = t_cw + model.condenser_range_k + model.condenser_approach_k + _KELVIN
    t_evap = model.chw_supply_degc - model.evaporator_approach_k + _KELVIN
    lift = t_cond - t_evap
    with np.errstate(divide="ignore", invalid="ignore"):
        cop = np.where(lift > 0, model.carnot_fraction * t_evap / np.where(lift > 0, lift, 1.0), model.cop_max)
    return np.clip(cop, model.cop_min, model.cop_max)


def free_cooling_fraction(model: CoolingModel, t_reference_degc):
    """Share of the heat load the water-side economiser carries (0: none, 1: full free cooling).

    ``clip((T_return - T_fc) / (T_return - T_supply), 0, 1)`` with ``T_fc = t_reference + tower_approach +
    economiser_hx_approach`` (degC); 0 everywhere when the plant has no economiser.
    """
    t_ref = np.asarray(t_reference_degc, dtype=float)
    if not model.economiser:
        return np.zeros_like(t_ref)
    t_fc = t_ref + model.tower_approach_k + model.economiser_hx_approach_k
    span = model.chw_return_degc - model.chw_supply_degc
    return np.clip((model.chw_return_degc - t_fc) / span, 0.0, 1.0)


def _model_file(case: Case, name: str) -> str:
    return str(case.model_paths.get(("cooling", name), f"models/cooling/{name}.toml"))


def _check_model(case: Case, name: str, model: CoolingModel) -> None:
    f = _model_file(case, name)
    if model.chw_return_degc <= model.chw_supply_degc:
        raise CaseError(f"{f}: key 'chw_return_degc': expected more than chw_supply_degc "
                        f"({model.chw_supply_degc:g}), found {model.chw_return_degc:g}")
    if model.cop_max <= model.cop_min:
        raise CaseError(f"{f}: key 'cop_max': expected more than cop_min ({model.cop_min:g}), "
                        f"found {model.cop_max:g}")
    names = {m.name for m in model.motors}
    for m in model.motors:
        if m.name not in model.motor_roles:
            raise CaseError(f"{f}: key 'motor_roles': expected a role ('pump' or 'fan') for motor '{m.name}', "
                            f"found none")
    extra = sorted(set(model.motor_roles) - names)
    if extra:
        raise CaseError(f"{f}: key 'motor_roles': expected names of motors {sorted(names)}, found {extra}")


def campus_full_it_mw(case: Case) -> float:
    """Campus IT power at full utilisation in MW (every hall's servers at 1.0 plus network and storage)."""
    return float(sum(hall_it_power_mw(case.model("it", h.server), h.gpu_count, h.network_storage_kw, 1.0)
                     for h in case.spec.halls))


def design_heat_mw(case: Case) -> dict[str, float]:
    """Design heat load of each cooling plant in MW thermal.

    A plant's ``design_heat_mw`` when given; otherwise the campus's full IT load x (1 + ``heat_loss_fraction``)
    plus its air-side power, shared equally over the plants.
    """
    plants = case.spec.cooling_plants
    full_it = campus_full_it_mw(case)
    out = {}
    for p in plants:
        m: CoolingModel = case.model("cooling", p.model)
        if m.design_heat_mw is not None:
            out[p.name] = m.design_heat_mw
        else:
            out[p.name] = full_it * (1.0 + m.heat_loss_fraction + m.air_side_kw_per_kw_it) / len(plants)
    return out


def _as_series(name: str, x, time):
    """A 1-D float array and its time coordinate (from a DataArray, a Series, or ``time``)."""
    if isinstance(x, xr.DataArray):
        if x.ndim != 1:
            raise ValueError(f"cooling_power: {name} must be one-dimensional over time, has dims {x.dims}")
        coord = x[x.dims[0]].values
        arr = x.values
    elif isinstance(x, pd.Series):
        coord, arr = x.index.values, x.values
    else:
        arr, coord = np.asarray(x, dtype=float), None
    arr = np.atleast_1d(np.asarray(arr, dtype=float))
    if arr.ndim != 1:
        raise ValueError(f"cooling_power: {name} must be one-dimensional over time, has shape {arr.shape}")
    if np.isnan(arr).any():
        raise ValueError(f"cooling_power: {name} contains NaN at {int(np.isnan(arr).sum())} steps")
    return arr, (coord if time is None else None)


def cooling_power(case: Case, it_mw, temp_air_degc, relative_humidity_pct, time=None) -> xr.Dataset:
    """Electrical demand of each cooling plant over time.

    Parameters
    ----------
    case : Case
        The study case: its ``cooling_plants`` and their parameter sets (``models/cooling``).
    it_mw : array_like, pandas.Series or xarray.DataArray
        Campus IT power in MW over time (shared over the plants in proportion to their design heat load).
    temp_air_degc : array_like
        Outdoor dry-bulb temperature in degC, same length.
    relative_humidity_pct : array_like
        Outdoor relative humidity in %, same length.
    time : array_like, optional
        The time coordinate; by default the index of the first of the inputs that has one, else 0..n-1.

    Returns
    -------
    xarray.Dataset
        Dims ``(time, cooling_plant)``. ``p_mw`` (= ``compressor_mw + pump_mw + fan_mw + air_side_mw``),
        ``q_mvar``, each component, ``heat_load_mw``, ``heat_rejected_mw`` (= heat load + compressor),
        ``chiller_load_mw``, ``cop``, ``free_cooling_fraction``, ``load_fraction`` (heat load / design),
        ``dol_mw`` and ``dol_motor_share`` (direct-on-line motor power and its share of ``p_mw``),
        ``pump_loading_scale`` and ``fan_loading_scale`` (motor loading per unit of the parameter set's
        ``loading_percent``), ``kw_per_kw_it``; ``wet_bulb_degc`` over time. Units in ``attrs``.

    Raises
    ------
    ValueError
        Inputs of different lengths, NaN, negative IT power, relative humidity outside 0-100 %.
    CaseError
        A cooling parameter set that is inconsistent (return colder than supply, a motor without a role).
    """
    it, c0 = _as_series("it_mw", it_mw, time)
    ta, c1 = _as_series("temp_air_degc", temp_air_degc, time)
    rh, c2 = _as_series("relative_humidity_pct", relative_humidity_pct, time)
    if not (len(it) == len(ta) == len(rh)):
        raise ValueError(f"cooling_power: inputs must have the same length, found it_mw {len(it)}, "
                         f"temp_air_degc {len(ta)}, relative_humidity_pct {len(rh)}")
    if (it < 0).any():
        raise ValueError(f"cooling_power: it_mw must be >= 0, found {it.min():g}")
    if time is None:
        time = next((c for c in (c0, c1, c2) if c is not None), np.arange(len(it)))
    plants = case.spec.cooling_plants
    if not plants:
        raise CaseError(f"{case.path}: key 'cooling_plants': expected at least one plant for cooling_power, "
                        f"found none")
    design = design_heat_mw(case)
    total_design = sum(design.values())
    wb = wet_bulb_stull(ta, rh)

    names = ["p_mw", "q_mvar", "compressor_mw", "pump_mw", "fan_mw", "air_side_mw", "heat_load_mw",
             "heat_rejected_mw", "chiller_load_mw", "cop", "free_cooling_fraction", "load_fraction", "dol_mw",
             "dol_motor_share", "pump_loading_scale", "fan_loading_scale", "kw_per_kw_it"]
    cols: dict[str, list] = {k: [] for k in names}
    for plant in plants:
        m: CoolingModel = case.model("cooling", plant.model)
        _check_model(case, plant.model, m)
        n_feeds = len(plant.feeds)
        d_heat = design[plant.name]
        it_p = it * d_heat / total_design
        air = m.air_side_kw_per_kw_it * it_p
        heat = it_p * (1.0 + m.heat_loss_fraction) + air
        t_ref = _reference_temp(m, ta, wb)
        fc = free_cooling_fraction(m, t_ref)
        cop = chiller_cop(m, t_ref)
        chiller = heat * (1.0 - fc)
        comp = chiller / cop
        rejected = heat + comp
        x = heat / d_heat
        s_pump = m.pump_min_fraction + (1.0 - m.pump_min_fraction) * x
        s_fan = m.fan_min_fraction + (1.0 - m.fan_min_fraction) * rejected / d_heat
        pump = np.zeros_like(it)
        fan = np.zeros_like(it)
        q_dol = np.zeros_like(it)
        for mot in m.motors:
            p_design = n_feeds * mot.count_per_feed * motor_electrical_mw(
                mot.pn_mech_kw, mot.loading_percent, mot.efficiency_percent)
            p = p_design * (s_pump if m.motor_roles[mot.name] == "pump" else s_fan)
            if m.motor_roles[mot.name] == "pump":
                pump = pump + p
            else:
                fan = fan + p
            q_dol = q_dol + p * np.tan(np.arccos(mot.cos_phi))
        dol = pump + fan
        p_tot = comp + dol + air
        q_tot = q_dol + (comp + air) * np.tan(np.arccos(m.drive_power_factor))
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(p_tot > 0, dol / np.where(p_tot > 0, p_tot, 1.0), 0.0)
            kpk = np.where(it_p > 0, p_tot / np.where(it_p > 0, it_p, 1.0), np.nan)
        for k, v in zip(names, [p_tot, q_tot, comp, pump, fan, air, heat, rejected, chiller, cop, fc, x, dol,
                                share, s_pump, s_fan, kpk], strict=True):
            cols[k].append(np.broadcast_to(v, it.shape))

    units = {"p_mw": ("MW", "cooling plant active power"), "q_mvar": ("Mvar", "cooling plant reactive power"),
             "compressor_mw": ("MW", "chiller compressor power (VSD)"),
             "pump_mw": ("MW", "chilled- and condenser-water pump power (DOL)"),
             "fan_mw": ("MW", "heat-rejection fan power (DOL)"),
             "air_side_mw": ("MW", "CRAH and CDU fan and pump power (VSD/EC)"),
             "heat_load_mw": ("MW", "heat load on the chilled water"),
             "heat_rejected_mw": ("MW", "heat rejected to ambient"),
             "chiller_load_mw": ("MW", "heat load carried by the chillers"),
             "cop": ("1", "chiller coefficient of performance"),
             "free_cooling_fraction": ("1", "share of the heat load carried by the economiser"),
             "load_fraction": ("1", "heat load per unit of the plant's design heat load"),
             "dol_mw": ("MW", "direct-on-line motor power"),
             "dol_motor_share": ("1", "share of the plant's active power drawn by direct-on-line motors"),
             "pump_loading_scale": ("1", "pump loading per unit of the parameter set's loading_percent"),
             "fan_loading_scale": ("1", "fan loading per unit of the parameter set's loading_percent"),
             "kw_per_kw_it": ("kW/kW", "cooling plant power per unit of the IT power it cools")}
    tindex = time if isinstance(time, pd.DatetimeIndex) else None
    if tindex is None and np.asarray(time).dtype == object:
        try:
            tindex = pd.DatetimeIndex(time)
        except (TypeError, ValueError):
            tindex = None
    if tindex is not None and tindex.tz is not None:
        time = tindex.tz_convert("UTC").tz_localize(None).values   # stored in UTC (DESIGN.md)
    coords = {"time": np.asarray(time), "cooling_plant": [p.name for p in plants]}
    data = {k: (("time", "cooling_plant"), np.stack(cols[k], axis=1), {"units": units[k][0],
                                                                         "long_name": units[k][1]})
            for k in names}
    data["wet_bulb_degc"] = (("time",), wb, {"units": "degC", "long_name": "outdoor wet-bulb temperature "
                                              "(Stull 2011)"})
    data["it_mw"] = (("time",), it, {"units": "MW", "long_name": "campus IT power"})
    ds = xr.Dataset(data, coords=coords)
    if tindex is not None and tindex.tz is not None:
        ds["time"].attrs["timezone"] = "UTC"
    ds.attrs["design_heat_mw"] = [design[p.name] for p in plants]
    ds.attrs["pue_definition"] = "PUE = (IT + cooling + auxiliaries + losses) / IT over the same period (energy)"
    return ds


def facility_power_mw(it_mw, cooling_mw, aux_mw=0.0, losses_mw=0.0):
    """Facility power in MW: IT + cooling + auxiliaries + electrical losses (each array_like in MW)."""
    return (np.asarray(it_mw, dtype=float) + np.asarray(cooling_mw, dtype=float) + np.asarray(aux_mw, dtype=float)
            + np.asarray(losses_mw, dtype=float))


def pue(it_mw, facility_mw) -> float:
    """Power usage effectiveness over a period: facility energy / IT energy.

    Parameters
    ----------
    it_mw : array_like
        IT power in MW at equal time steps.
    facility_mw : array_like
        Facility power in MW at the same steps: IT + cooling + auxiliaries + electrical losses when they are
        given (:func:`facility_power_mw`); PV and battery are not part of it (PUE is a demand-side measure).

    Returns
    -------
    float
        ``sum(facility) / sum(IT)`` (equal steps, so the energy ratio of ISO/IEC 30134-2); 1 or more.

    References
    ----------
    ISO/IEC 30134-2:2016, Data centres - Key performance indicators - Part 2: Power usage effectiveness.
    """
    it = np.asarray(it_mw, dtype=float)
    fac = np.asarray(facility_mw, dtype=float)
    if it.shape != fac.shape:
        raise ValueError(f"pue: it_mw and facility_mw must have the same shape, found {it.shape} and {fac.shape}")
    if np.isnan(it).any() or np.isnan(fac).any():
        raise ValueError("pue: inputs must not contain NaN")
    e_it = it.sum()
    if e_it <= 0:
        raise ValueError(f"pue: IT energy must be positive, found {e_it:g}")
    return float(fac.sum() / e_it)
