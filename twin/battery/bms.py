"""BMS limits: charge and discharge current and power available as a function of SOC and temperature.

A battery management system allows the cell's continuous current only inside its temperature windows, derates it
towards their edges and tapers it near the SOC limits; the terminal voltage must stay within its limits. These
functions return the limits as arrays (per cell, any shape), so a dispatcher can respect them at every step
(power-grid-model's style: a single step is a batch of one).

Parameter sets live in ``models/battery/bms/<name>.toml`` (:class:`BmsModel`); the embedded ``lfp_default`` holds
the typical 280 Ah LFP data-sheet figures (0.5 C continuous charge and discharge, charging 0-55 degC, discharging
-20-55 degC) and estimated derating tables, each marked with its source and confidence.

Sign convention (DESIGN.md): current is positive when discharging; both limits are returned as magnitudes >= 0.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field, model_validator

from .. import paths
from ..case import Q, _read_toml, _Strict, _validate

__all__ = ["BmsModel", "DeratingTable", "SocTaper", "load_bms", "available_current", "available_power"]


def _unimodal(x: list[float]) -> bool:
    """Non-decreasing then non-increasing (a derating table that rises to full current and falls again)."""
    d = np.diff(np.asarray(x, dtype=float))
    peak = int(np.argmax(np.asarray(x)))
    return bool(np.all(d[:peak] >= 0) and np.all(d[peak:] <= 0))


def _fractions(v: list[float]) -> bool:
    return all(0.0 <= f <= 1.0 for f in v)


class DeratingTable(_Strict):
    """Fraction of the continuous current versus cell temperature, linear between points."""

    t_degc: list[float] = Field(min_length=2, description="temperature grid in degC, strictly increasing, "
                                "within -60 to 100")
    charge: list[float] = Field(min_length=2, description="charge derating fractions (0-1), one per grid point, "
                                "rising then falling with temperature")
    discharge: list[float] = Field(min_length=2, description="discharge derating fractions (0-1), one per grid "
                                   "point, rising then falling with temperature")

    @model_validator(mode="after")
    def _check(self):
        t = np.asarray(self.t_degc)
        if np.any(np.diff(t) <= 0) or t[0] < -60 or t[-1] > 100:
            raise ValueError("t_degc: expected a strictly increasing grid within -60 to 100 degC")
        for k in ("charge", "discharge"):
            v = getattr(self, k)
            if len(v) != len(t):
                raise ValueError(f"{k}: expected {len(t)} values (one per t_degc point), found {len(v)}")
            if not _fractions(v):
                raise ValueError(f"{k}: expected derating fractions within 0-1")
            if not _unimodal(v):
                raise ValueError(f"{k}: expected values rising then falling with temperature")
        return self


class SocTaper(_Strict):
    """Fraction of the continuous current versus SOC, linear between points."""

    soc: list[float] = Field(min_length=2, description="SOC grid (0-1), strictly increasing")
    charge: list[float] = Field(min_length=2, description="charge taper fractions (0-1), non-increasing with SOC")
    discharge: list[float] = Field(min_length=2, description="discharge taper fractions (0-1), non-decreasing "
                                   "with SOC")

    @model_validator(mode="after")
    def _check(self):
        s = np.asarray(self.soc)
        if np.any(np.diff(s) <= 0) or s[0] < 0 or s[-1] > 1:
            raise ValueError("soc: expected a strictly increasing grid within 0-1")
        for k, sign, word in (("charge", -1, "non-increasing"), ("discharge", 1, "non-decreasing")):
            v = getattr(self, k)
            if len(v) != len(s):
                raise ValueError(f"{k}: expected {len(s)} values (one per soc point), found {len(v)}")
            if not _fractions(v):
                raise ValueError(f"{k}: expected taper fractions within 0-1")
            if np.any(sign * np.diff(np.asarray(v)) < 0):
                raise ValueError(f"{k}: expected values {word} with SOC")
        return self


class BmsModel(_Strict):
    """BMS limits of one cell: ``models/battery/bms/<name>.toml``."""

    description: str = ""
    capacity_ah: float = Q("nominal cell capacity in Ah", gt=0, le=2000)
    i_charge_max_a: float = Q("continuous charge current limit in A", gt=0, le=5000)
    i_discharge_max_a: float = Q("continuous discharge current limit in A", gt=0, le=5000)
    v_min: float = Q("discharge cut-off voltage in V", gt=1.0, le=4.5)
    v_max: float = Q("charge cut-off voltage in V", gt=1.0, le=4.5)
    t_charge_min_degc: float = Q("lowest cell temperature for charging in degC", ge=-60, le=100)
    t_charge_max_degc: float = Q("highest cell temperature for charging in degC", ge=-60, le=100)
    t_discharge_min_degc: float = Q("lowest cell temperature for discharging in degC", ge=-60, le=100)
    t_discharge_max_degc: float = Q("highest cell temperature for discharging in degC", ge=-60, le=100)
    temperature: DeratingTable
    soc: SocTaper

    @model_validator(mode="after")
    def _check(self):
        if self.v_min >= self.v_max:
            raise ValueError(f"v_min: expected below v_max ({self.v_max:g} V), found {self.v_min:g}")
        if self.t_charge_min_degc >= self.t_charge_max_degc:
            raise ValueError("t_charge_min_degc: expected below t_charge_max_degc")
        if self.t_discharge_min_degc >= self.t_discharge_max_degc:
            raise ValueError("t_discharge_min_degc: expected below t_discharge_max_degc")
        return self


def load_bms(name_or_path: str | Path) -> BmsModel:
    """A BMS parameter set: a file path, or the name of an embedded set (``lfp_default``).

    Raises
    ------
    CaseError
        Naming the file and the key, what was expected and what was found.
    """
    p = Path(name_or_path)
    if p.suffix != ".toml":
        p = paths.models_dir() / "battery" / "bms" / f"{name_or_path}.toml"
    return _validate(p, BmsModel, _read_toml(p))


def _window(t, lo, hi):
    return (t >= lo) & (t <= hi)


def available_current(params: BmsModel, soc, t_cell_degc):
    """Charge and discharge current the BMS allows, per cell.

    ``i_max = i_continuous * f_T(T) * f_SOC(SOC)`` with both factors interpolated linearly in the parameter set's
    tables (held flat beyond the grid), and zero outside the temperature windows.

    Parameters
    ----------
    params : BmsModel
    soc : array_like
        State of charge, 0-1.
    t_cell_degc : array_like
        Cell temperature in degC (broadcast against ``soc``).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``(i_charge_max_a, i_discharge_max_a)``: magnitudes in A, >= 0.

    References
    ----------
    Typical 280 Ah LFP cell data sheets (continuous current, temperature windows); derating: estimates (L).
    """
    s, t = np.broadcast_arrays(np.asarray(soc, dtype=float), np.asarray(t_cell_degc, dtype=float))
    tt, ss = params.temperature, params.soc
    f_ch = np.interp(t, tt.t_degc, tt.charge) * np.interp(s, ss.soc, ss.charge)
    f_dis = np.interp(t, tt.t_degc, tt.discharge) * np.interp(s, ss.soc, ss.discharge)
    f_ch = np.where(_window(t, params.t_charge_min_degc, params.t_charge_max_degc), f_ch, 0.0)
    f_dis = np.where(_window(t, params.t_discharge_min_degc, params.t_discharge_max_degc), f_dis, 0.0)
    return params.i_charge_max_a * f_ch, params.i_discharge_max_a * f_dis


def available_power(params: BmsModel, soc, t_cell_degc, v_ocv_v, r_ohm=0.0):
    """Charge and discharge power the BMS allows, per cell, from a voltage estimate.

    The current limits of :func:`available_current` are further limited so that the terminal voltage
    ``v = v_ocv - i * r`` (``i`` + discharge) stays within ``v_min``-``v_max``; the power is ``|i| * v`` at that
    current. With ``r_ohm = 0`` the voltage estimate is ``v_ocv_v`` itself and only the current limits apply
    (zero power where the estimate is already outside the voltage limits).

    Parameters
    ----------
    params : BmsModel
    soc : array_like
        State of charge, 0-1.
    t_cell_degc : array_like
        Cell temperature in degC.
    v_ocv_v : array_like
        Open-circuit (or present) voltage estimate in V.
    r_ohm : array_like
        Effective cell resistance in ohm for the step (e.g. R0 plus the RC resistances), >= 0.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``(p_charge_max_w, p_discharge_max_w)``: magnitudes in W, >= 0.
    """
    i_ch, i_dis = available_current(params, soc, t_cell_degc)
    v, r = np.broadcast_arrays(np.asarray(v_ocv_v, dtype=float), np.asarray(r_ohm, dtype=float))
    if np.any(r < 0):
        raise ValueError("available_power: r_ohm must be >= 0")
    with np.errstate(divide="ignore", invalid="ignore"):
        i_ch_v = np.where(r > 0, (params.v_max - v) / r, np.where(v <= params.v_max, np.inf, 0.0))
        i_dis_v = np.where(r > 0, (v - params.v_min) / r, np.where(v >= params.v_min, np.inf, 0.0))
    i_ch = np.clip(np.minimum(i_ch, i_ch_v), 0.0, None)
    i_dis = np.clip(np.minimum(i_dis, i_dis_v), 0.0, None)
    return i_ch * (v + i_ch * r), i_dis * (v - i_dis * r)
