"""Thermal models of the campus transformers over time: oil-immersed (IEC 60076-7) and dry-type (IEC 60076-12).

Batch-first: every function takes the load of many transformers at once as an array ``(transformer, time)`` (a
single transformer is a batch of one) and returns an :class:`xarray.Dataset` with dimensions ``(transformer,
time)`` and ``units``/``long_name`` on every variable.

Time convention (DESIGN.md): ``load_pu[:, i]`` and the ambient at ``time[i]`` are the means over the interval that
starts at ``time[i]``; each output temperature at ``time[i]`` is the state at the *end* of that interval
(``time[i] + step``). The initial state (before the first interval) is the steady state at ``initial_load_pu``
(default: the first interval's load) and the first ambient, IEC 60076-7's usual assumption, unless
``initial_top_oil_degc`` is given. Steps must be regular; a constant load is held over each step and the
exponential update is exact for it (so results do not depend on the step for piecewise-constant loads).

Oil-immersed transformers (parameter sets ``models/thermal/<name>.toml`` with ``kind = "oil"``, :class:`OilThermal`)
    IEC 60076-7:2018 clause 8.2.3 difference equations in their exponential form (REFERENCE.md, "Transformers"):
    top oil ``th_o`` follows ``th_a + d_or ((1 + R K^2) / (1 + R))^x`` with time constant ``k11 tau_o``; the
    hot-spot gradient is ``d_h1 - d_h2`` with ``d_h1 -> k21 H g_r K^y`` (time constant ``k22 tau_w``) and
    ``d_h2 -> (k21 - 1) H g_r K^y`` (time constant ``tau_o / k22``). Relative ageing rate (clause 6.3):
    ``V = 2^((th_h - 98)/6)`` for normal Kraft paper and ``V = exp(15000/383 - 15000/(th_h + 273))`` for thermally
    upgraded paper; loss of life in days at the reference hot spot = ``sum(V dt)``.
    The equations are those of Alliander's ``transformer-thermal-model`` (PyPI), which the project prefers to a
    hand-written copy; that library runs one transformer at a time in a Python loop (about 10 us per step), too slow
    for a year at 1-minute steps for tens of transformers in a design sweep. So the batch path here is one small
    numba kernel (a first-order exponential lag, used for every state), and :func:`oil_temperatures_library`
    runs the library itself on the same inputs: the tests require the two to agree to 1e-9 K, and both to reproduce
    IEC 60076-7's worked example (the library's own IEC test case). The ageing rates are checked against the
    library's :func:`transformer_thermal_model.aging.aging_rate_profile` the same way.

Dry-type (cast-resin) transformers (``kind = "dry"``, :class:`DryThermal`)
    IEC 60076-12:2008 loading guide for dry-type transformers: winding hot spot
    ``th_hs = th_a + d_hs(t)``, with the hot-spot rise following its ultimate value ``d_hs,r K^(2q)`` as a
    first-order exponential with the winding time constant ``tau_w`` (exact update over each step); ``d_hs,r`` is
    the rated hot-spot rise (the rated average winding rise times the hot-spot factor), ``q`` the load exponent.
    Life (REFERENCE.md, IEC 60076-12 table): ``L = a exp(b / T)`` hours with ``T`` the hot spot in kelvin, so the
    relative ageing rate against the rated hot spot ``T_r`` is ``V = exp(b / T_r - b / T)`` and the life fraction
    used is ``sum(dt / L(T))``. No maintained open library implements IEC 60076-12 (searched PyPI and GitHub:
    transformer-thermal-model covers only IEC 60076-7 oil-immersed units), so this part is written here with the
    same kernel as the oil model.

Calibration against field data: :func:`calibrate_top_oil` fits the top-oil parameters (``top_oil_rise_k``,
``tau_oil_min``, a load scale) by least squares to a measured top-oil series, with the ambient either measured or,
when absent (as in the ETT data set), a fitted proxy of annual and daily harmonics; :func:`error_metrics` gives
RMSE, bias and maximum error in K on data not used for fitting.

What the ETT field data (``../shared/data/ett_transformer/ETTh1.csv``, hourly, 2016-07 to 2018-06) can and cannot
show (``tests/test_thermal.py``): they hold oil temperature and six load channels in undocumented units, but no
ambient temperature and no rating, and the load explains little of the oil temperature (correlation of |S| of the
high side with OT: 0.08; the season dominates). With |S| = sqrt(HUFL^2 + HULL^2) as the load and the harmonic
ambient proxy: calibrated on the first year, RMSE 3.9 K (bias 0.0 K, max 16.5 K); validated on the second year,
RMSE 9.5 K, bias +8.6 K, max 25.4 K (the second year's oil is 7.7 K cooler on average, which no ambient proxy fitted
on the first year can know; the proxy alone does 8.9 K). Calibrated on alternate weeks and validated on the others:
RMSE 5.6 K / 5.7 K, bias 0.0 / -0.1 K, max 20.2 / 21.5 K, against 5.9 K for the proxy alone. The fitted
``tau_oil_min`` and load scale sit at their bounds (1000 min; 99th-percentile load 1.5 pu): the data do not identify
the IEC parameters, and these numbers do not validate the model's dynamics. That needs a heat-run test or SCADA
with top oil, ambient and load of a known unit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import xarray as xr
from numba import njit
from pydantic import model_validator

from .case import Case, Q, _Strict

__all__ = [
    "OilThermal", "DryThermal", "thermal_parameters", "oil_temperatures", "dry_temperatures",
    "oil_ageing_rate", "dry_ageing_rate", "oil_temperatures_library", "calibrate_top_oil", "TopOilFit",
    "error_metrics",
]

KIND = "thermal"


# --------------------------------------------------------------------------------------------------------------
# parameter sets (models/thermal/<name>.toml)


class OilThermal(_Strict):
    """IEC 60076-7 thermal parameters of an oil-immersed transformer (``models/thermal/<name>.toml``)."""

    description: str = ""
    kind: Literal["oil"]
    cooling: Literal["ONAN", "ONAF", "OF", "OD"]
    paper: Literal["normal", "upgraded"] = "normal"
    top_oil_rise_k: float = Q("top-oil rise over ambient at rated load (d_or) in K", gt=0, le=100)
    winding_gradient_k: float = Q("average winding-to-oil gradient at rated current (g_r) in K", ge=0, le=80)
    hot_spot_factor: float = Q("hot-spot factor H", ge=1, le=2.5)
    loss_ratio: float = Q("ratio R of load losses at rated current to no-load losses", gt=0, le=5000)
    oil_exponent_x: float = Q("oil exponent x", gt=0, le=2)
    winding_exponent_y: float = Q("winding exponent y", gt=0, le=3)
    k11: float = Q("thermal model constant k11", gt=0, le=5)
    k21: float = Q("thermal model constant k21", ge=1, le=5)
    k22: float = Q("thermal model constant k22", gt=0, le=5)
    tau_oil_min: float = Q("average oil time constant in minutes", gt=0, le=1000)
    tau_winding_min: float = Q("winding time constant in minutes", gt=0, le=100)
    ambient_surcharge_k: float = Q("added to the ambient for an enclosure or indoor installation, in K", ge=0, le=30,
                                   default=0.0)
    top_oil_limit_degc: float = Q("top-oil limit for normal cyclic loading in degC", gt=40, le=130, default=105.0)
    hot_spot_limit_degc: float = Q("hot-spot limit for normal cyclic loading in degC", gt=60, le=180, default=120.0)


class DryThermal(_Strict):
    """IEC 60076-12 thermal parameters of a dry-type (cast-resin) transformer (``models/thermal/<name>.toml``)."""

    description: str = ""
    kind: Literal["dry"]
    cooling: Literal["AN", "AF"]
    insulation_class: Literal["B", "F", "H"]
    winding_rise_k: float = Q("rated average winding rise over ambient in K (IEC 60076-11 limit)", gt=0, le=150)
    hot_spot_rise_k: float = Q("hot-spot rise over ambient at rated load in K", gt=0, le=200)
    load_exponent_q: float = Q("exponent q: hot-spot rise proportional to K^(2q)", gt=0, le=1.5)
    tau_winding_min: float = Q("winding thermal time constant in minutes", gt=0, le=600)
    rated_hot_spot_degc: float = Q("hot spot at which the insulation ages at the normal rate, degC", gt=60, le=250)
    hot_spot_limit_degc: float = Q("insulation system temperature (hot-spot limit), degC", gt=60, le=250)
    life_a_h: float = Q("life constant a of L = a exp(b/T), in hours", gt=0, le=1.0)
    life_b_k: float = Q("life constant b of L = a exp(b/T), in K", gt=1000, le=1e5)

    @model_validator(mode="after")
    def _check(self):
        if self.hot_spot_rise_k < self.winding_rise_k:
            raise ValueError(f"hot_spot_rise_k ({self.hot_spot_rise_k}) must not be below winding_rise_k "
                             f"({self.winding_rise_k}): the hot spot is the hottest point of the winding")
        if self.rated_hot_spot_degc > self.hot_spot_limit_degc:
            raise ValueError(f"rated_hot_spot_degc ({self.rated_hot_spot_degc}) must not exceed hot_spot_limit_degc "
                             f"({self.hot_spot_limit_degc})")
        return self

    @property
    def rated_life_h(self) -> float:
        """Insulation life at the rated hot spot in hours (``a exp(b / T_r)``)."""
        return float(self.life_a_h * np.exp(self.life_b_k / (self.rated_hot_spot_degc + 273.15)))


def thermal_parameters(case: Case, name: str) -> OilThermal | DryThermal:
    """The thermal parameter set ``models/thermal/<name>.toml`` of a case, as :class:`OilThermal` or :class:`DryThermal`.

    Looked up beside the case first, then in the embedded set (:meth:`twin.case.Case.parameter_set`); its ``kind``
    key picks the schema. Errors name the file and key (:class:`twin.case.CaseError`).
    """
    from .case import _read_toml, find_parameter_file

    kind = _read_toml(find_parameter_file(case.path, KIND, name)).get("kind")
    schema = DryThermal if kind == "dry" else OilThermal
    return case.parameter_set(KIND, name, schema)


# --------------------------------------------------------------------------------------------------------------
# the kernel: a batch of first-order exponential lags, exact for a constant input over each step


@njit(cache=True)
def _lag(u, a, y0):
    """``y[j, i] = u[j, i] + (y[j, i-1] - u[j, i]) * a[j]`` with ``y[j, -1] = y0[j]``."""
    n, m = u.shape
    y = np.empty_like(u)
    for j in range(n):
        prev = y0[j]
        aj = a[j]
        for i in range(m):
            prev = u[j, i] + (prev - u[j, i]) * aj
            y[j, i] = prev
    return y


# --------------------------------------------------------------------------------------------------------------
# input checks shared by both models


def _as_batch(x, name: str, n_time: int | None = None) -> np.ndarray:
    a = np.asarray(getattr(x, "values", x), dtype=float)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise ValueError(f"{name}: expected an array (transformer, time) or (time,), got shape {a.shape}")
    if n_time is not None and a.shape[1] != n_time:
        raise ValueError(f"{name}: {a.shape[1]} time steps, but time has {n_time}")
    if not np.all(np.isfinite(a)):
        bad = np.argwhere(~np.isfinite(a))[0]
        raise ValueError(f"{name}: not finite at transformer {bad[0]}, step {bad[1]} (NaN or inf); fill or drop "
                         "the gap before running the model")
    return a


def _step_s(time) -> float:
    t = pd.DatetimeIndex(time)
    if len(t) < 1:
        raise ValueError("time: needs at least one timestamp")
    if len(t) == 1:
        raise ValueError("time: one timestamp gives no step length; pass at least two")
    d = np.diff(t.asi8) / 1e9
    if np.any(d <= 0):
        raise ValueError(f"time: must increase strictly; step {int(np.argmax(d <= 0))} does not")
    if np.ptp(d) > 1e-6 * d[0]:
        raise ValueError(f"time: steps must be regular (found {d.min():g} s to {d.max():g} s); resample first")
    return float(d[0])


def _per_transformer(params, cls, n: int, names) -> list:
    plist = list(params) if isinstance(params, Sequence) and not isinstance(params, str) else [params] * n
    if len(plist) != n:
        raise ValueError(f"params: {len(plist)} parameter sets for {n} transformers")
    for k, p in enumerate(plist):
        if not isinstance(p, cls):
            raise ValueError(f"params[{k}] ({names[k]}): expected {cls.__name__} (kind = "
                             f"'{cls.model_fields['kind'].annotation.__args__[0]}'), got {type(p).__name__}"
                             + (f" of kind '{p.kind}'" if hasattr(p, "kind") else ""))
    return plist


def _prepare(load_pu, ambient_degc, time, names, initial_load_pu):
    t = pd.DatetimeIndex(time)
    dt = _step_s(t)
    k = _as_batch(load_pu, "load_pu", len(t))
    if np.any(k < 0):
        j, i = np.argwhere(k < 0)[0]
        raise ValueError(f"load_pu: negative at transformer {j}, step {i} ({k[j, i]:g}); the load is the magnitude "
                         "of apparent power (or current) in pu of rated, >= 0")
    if np.any(k > 5):
        raise ValueError(f"load_pu: {k.max():g} pu exceeds 5 pu; pass pu of rated, not kVA or A")
    n = k.shape[0]
    if np.ndim(getattr(ambient_degc, "values", ambient_degc)) == 0:
        ambient_degc = np.full(len(t), float(getattr(ambient_degc, "values", ambient_degc)))
    amb = _as_batch(ambient_degc, "ambient_degc", len(t))
    if amb.shape[0] not in (1, n):
        raise ValueError(f"ambient_degc: {amb.shape[0]} rows for {n} transformers (give 1 or {n})")
    if np.any(amb < -60) or np.any(amb > 70):
        raise ValueError(f"ambient_degc: {amb.min():g} to {amb.max():g} degC is outside -60..70 degC; "
                         "pass degrees Celsius")
    amb = np.broadcast_to(amb, k.shape)
    if names is None and "transformer" in getattr(load_pu, "coords", {}):
        names = list(load_pu["transformer"].values)
    if names is None:
        names = [f"T{j}" for j in range(n)]
    names = [str(s) for s in names]
    if len(names) != n:
        raise ValueError(f"names: {len(names)} names for {n} transformers")
    k0 = k[:, 0] if initial_load_pu is None else np.broadcast_to(np.asarray(initial_load_pu, float), (n,))
    if np.any(~np.isfinite(k0)) or np.any(k0 < 0):
        raise ValueError(f"initial_load_pu: must be finite and >= 0, got {k0}")
    return t, dt, k, amb, names, k0


def _field(plist, name):
    return np.array([getattr(p, name) for p in plist], dtype=float)


# --------------------------------------------------------------------------------------------------------------
# oil-immersed: IEC 60076-7


def oil_ageing_rate(hot_spot_degc, paper: Literal["normal", "upgraded"] = "normal"):
    """Relative ageing rate V of the paper insulation (IEC 60076-7:2018, 6.3, equations 2 and 3).

    Parameters
    ----------
    hot_spot_degc : array_like
        Winding hot-spot temperature, degC.
    paper : {"normal", "upgraded"}
        Normal Kraft paper (``2^((th_h - 98)/6)``, 1 at 98 degC) or thermally upgraded paper
        (``exp(15000/383 - 15000/(th_h + 273))``, 1 at 110 degC).
    """
    th = np.asarray(hot_spot_degc, dtype=float)
    if paper == "normal":
        return np.exp2((th - 98.0) / 6.0)
    if paper == "upgraded":
        return np.exp(15000.0 / 383.0 - 15000.0 / (th + 273.0))
    raise ValueError(f"paper: expected 'normal' or 'upgraded', got {paper!r}")


def _oil_ultimate(kk, p):
    """Ultimate top-oil rise and hot-spot gradient parts for loads ``kk`` (transformer, time); p: dict of arrays."""
    col = {k: v[:, None] for k, v in p.items()}
    d_o = col["top_oil_rise_k"] * ((1 + col["loss_ratio"] * kk**2) / (1 + col["loss_ratio"])) ** col["oil_exponent_x"]
    g = col["hot_spot_factor"] * col["winding_gradient_k"] * kk ** col["winding_exponent_y"]
    return d_o, g


_OIL_FIELDS = ("top_oil_rise_k", "winding_gradient_k", "hot_spot_factor", "loss_ratio", "oil_exponent_x",
               "winding_exponent_y", "k11", "k21", "k22", "tau_oil_min", "tau_winding_min", "ambient_surcharge_k")


def _oil_run(k, amb, dt, p, k0, th_o0):
    """Core of :func:`oil_temperatures` on plain arrays; p maps the field names to (n,) arrays."""
    d_o, g = _oil_ultimate(k, p)
    d_o0, g0 = _oil_ultimate(k0[:, None], p)
    amb_i = amb + p["ambient_surcharge_k"][:, None]
    y0 = amb_i[:, 0] + d_o0[:, 0] if th_o0 is None else th_o0
    top = _lag(np.ascontiguousarray(amb_i + d_o), np.exp(-dt / 60 / (p["k11"] * p["tau_oil_min"])), y0)
    k21 = p["k21"][:, None]
    h1 = _lag(np.ascontiguousarray(k21 * g), np.exp(-dt / 60 / (p["k22"] * p["tau_winding_min"])),
              p["k21"] * g0[:, 0])
    h2 = _lag(np.ascontiguousarray((k21 - 1) * g), np.exp(-dt / 60 * p["k22"] / p["tau_oil_min"]),
              (p["k21"] - 1) * g0[:, 0])
    return top, top + h1 - h2


def oil_temperatures(load_pu, ambient_degc, params: OilThermal | Sequence[OilThermal], time, *, names=None,
                     initial_load_pu=None, initial_top_oil_degc=None) -> xr.Dataset:
    """Top-oil and hot-spot temperatures, ageing rate and loss of life of oil-immersed transformers (IEC 60076-7).

    Parameters
    ----------
    load_pu : array_like, shape (transformer, time) or (time,)
        Load factor K: apparent power (or current) in pu of rated, mean over each interval, >= 0.
    ambient_degc : float or array_like, shape (time,), (1, time) or (transformer, time)
        Outdoor (cooling-air) temperature in degC, mean over each interval.
    params : OilThermal or sequence of OilThermal (one per transformer)
    time : DatetimeIndex-like
        Start of each interval; regular steps.
    names : sequence of str, optional
        Transformer names (coordinate ``transformer``; default: ``load_pu``'s coordinate of that name if it is a
        DataArray, else T0, T1, ...).
    initial_load_pu : float or array_like, optional
        Load whose steady state is the initial state (default: the first interval's load).
    initial_top_oil_degc : float or array_like, optional
        Initial top-oil temperature, overriding the steady state's.

    Returns
    -------
    xarray.Dataset
        ``top_oil_degc``, ``hot_spot_degc`` (at the end of each interval), ``ageing_rate`` (relative, pu),
        ``loss_of_life_days`` (cumulative, days at the reference hot spot), per ``(transformer, time)``; and per
        transformer ``top_oil_max_degc``, ``hot_spot_max_degc``, ``hot_spot_margin_k`` (limit minus maximum).

    References
    ----------
    IEC 60076-7:2018, Power transformers - Part 7: Loading guide for mineral-oil-immersed power transformers,
    clauses 6.3 and 8.2.3 (exponential solution of the difference equations).
    """
    t, dt, k, amb, names, k0 = _prepare(load_pu, ambient_degc, time, names, initial_load_pu)
    plist = _per_transformer(params, OilThermal, k.shape[0], names)
    p = {f: _field(plist, f) for f in _OIL_FIELDS}
    th_o0 = None
    if initial_top_oil_degc is not None:
        th_o0 = np.broadcast_to(np.asarray(initial_top_oil_degc, float), (k.shape[0],)).copy()
        if not np.all(np.isfinite(th_o0)) or np.any(th_o0 < -60) or np.any(th_o0 > 200):
            raise ValueError(f"initial_top_oil_degc: expected finite degC within -60..200, got {th_o0}")
    top, hot = _oil_run(k, amb, dt, p, k0, th_o0)
    rate = np.vstack([oil_ageing_rate(hot[j], plist[j].paper) for j in range(len(plist))])
    return _result(t, names, dt, top, hot, rate, plist, "IEC 60076-7:2018 clause 8.2.3 (exponential form)")


def _result(t, names, dt, top, hot, rate, plist, model):
    dims = ("transformer", "time")
    end = "at the end of the interval that starts at time"
    data = {
        "hot_spot_degc": xr.Variable(dims, hot, {"long_name": f"winding hot-spot temperature {end}", "units": "degC"}),
        "ageing_rate": xr.Variable(dims, rate, {"long_name": "relative ageing rate of the insulation "
                                                "(1 at the reference hot spot)", "units": "1"}),
        "loss_of_life_days": xr.Variable(dims, np.cumsum(rate, axis=1) * dt / 86400.0, {
            "long_name": "cumulative loss of life, equivalent days at the reference hot spot", "units": "d"}),
        "hot_spot_max_degc": xr.Variable(("transformer",), hot.max(axis=1), {
            "long_name": "maximum hot-spot temperature", "units": "degC"}),
        "hot_spot_limit_degc": xr.Variable(("transformer",), _field(plist, "hot_spot_limit_degc"), {
            "long_name": "hot-spot limit of the parameter set", "units": "degC"}),
    }
    data["hot_spot_margin_k"] = xr.Variable(("transformer",), data["hot_spot_limit_degc"].values - hot.max(axis=1), {
        "long_name": "hot-spot limit minus maximum hot spot (negative: limit exceeded)", "units": "K"})
    if top is not None:
        data["top_oil_degc"] = xr.Variable(dims, top, {"long_name": f"top-oil temperature {end}", "units": "degC"})
        data["top_oil_max_degc"] = xr.Variable(("transformer",), top.max(axis=1), {
            "long_name": "maximum top-oil temperature", "units": "degC"})
        data["top_oil_limit_degc"] = xr.Variable(("transformer",), _field(plist, "top_oil_limit_degc"), {
            "long_name": "top-oil limit of the parameter set", "units": "degC"})
    ds = xr.Dataset(data, coords={"transformer": names, "time": t})
    ds.attrs.update({"model": model, "step_s": dt, "time_convention": f"temperatures {end}; inputs are "
                     "interval means"})
    return ds


def oil_temperatures_library(load_pu, ambient_degc, params: OilThermal, time, *, initial_load_pu=None,
                             initial_top_oil_degc=None) -> pd.DataFrame:
    """The same single-transformer run by Alliander's ``transformer-thermal-model`` (the reference for the tests).

    Same inputs and time convention as :func:`oil_temperatures` for one transformer; returns a DataFrame with
    ``top_oil_degc`` and ``hot_spot_degc`` indexed by ``time``. Loads are passed in pu (nominal load 1, load loss
    ``R``, no-load loss 1) to the library's :class:`PowerTransformer` with every IEC constant from ``params``.
    With ``initial_top_oil_degc`` the library starts the hot-spot gradient at zero, which is
    :func:`oil_temperatures` with ``initial_load_pu=0``.
    """
    from transformer_thermal_model.cooler import CoolerType
    from transformer_thermal_model.model import Model
    from transformer_thermal_model.schemas import InputProfile, UserTransformerSpecifications
    from transformer_thermal_model.schemas.thermal_model.initial_state import InitialLoad, InitialTopOilTemp
    from transformer_thermal_model.transformer import PowerTransformer

    t, dt, k, amb, _, k0 = _prepare(load_pu, ambient_degc, time, None, initial_load_pu)
    if k.shape[0] != 1:
        raise ValueError("oil_temperatures_library runs one transformer; pass a 1-D load")
    p = params
    if p.k21 != int(p.k21) or p.k22 != int(p.k22):
        raise ValueError("transformer-thermal-model takes integer k21 and k22")
    specs = UserTransformerSpecifications(
        load_loss=p.loss_ratio, no_load_loss=1.0, nom_load_sec_side=1.0, amb_temp_surcharge=p.ambient_surcharge_k,
        top_oil_temp_rise=p.top_oil_rise_k, winding_oil_gradient=p.winding_gradient_k, hot_spot_fac=p.hot_spot_factor,
        time_const_oil=p.tau_oil_min, time_const_windings=p.tau_winding_min, oil_const_k11=p.k11,
        winding_const_k21=int(p.k21), winding_const_k22=int(p.k22), oil_exp_x=p.oil_exponent_x,
        winding_exp_y=p.winding_exponent_y)
    cooler = CoolerType.ONAF if p.cooling == "ONAF" else CoolerType.ONAN
    tr = PowerTransformer(user_specs=specs, cooling_type=cooler)
    # the library's row 0 holds the initial state, row i the load over (t[i-1], t[i]]: one leading row
    idx = pd.DatetimeIndex([t[0]]).append(t + pd.Timedelta(seconds=dt))
    prof = InputProfile.create(datetime_index=idx.tz_localize(None) if idx.tz is not None else idx,
                               load_profile=np.r_[k0[0], k[0]], ambient_temperature_profile=np.r_[amb[0, 0], amb[0]])
    if initial_top_oil_degc is not None:
        init = InitialTopOilTemp(initial_top_oil_temp=float(initial_top_oil_degc))
    else:
        init = InitialLoad(initial_load=float(k0[0]))
    out = Model(temperature_profile=prof, transformer=tr, initial_condition=init).run()
    hs = np.asarray(out.hot_spot_temp_profile, dtype=float)
    return pd.DataFrame({"top_oil_degc": np.asarray(out.top_oil_temp_profile, float)[1:], "hot_spot_degc": hs[1:]},
                        index=t)


# --------------------------------------------------------------------------------------------------------------
# dry-type: IEC 60076-12


def dry_ageing_rate(hot_spot_degc, params: DryThermal):
    """Relative ageing rate ``V = L(T_r) / L(T) = exp(b / T_r - b / T)`` of a dry-type insulation system.

    ``L = a exp(b / T)`` hours (IEC 60076-12, REFERENCE.md), ``T`` the hot spot in K, ``T_r`` the rated hot spot.
    """
    tk = np.asarray(hot_spot_degc, dtype=float) + 273.15
    return np.exp(params.life_b_k / (params.rated_hot_spot_degc + 273.15) - params.life_b_k / tk)


def dry_temperatures(load_pu, room_degc, params: DryThermal | Sequence[DryThermal], time, *, names=None,
                     initial_load_pu=None) -> xr.Dataset:
    """Winding hot spot, ageing rate and life consumption of dry-type transformers (IEC 60076-12).

    Parameters
    ----------
    load_pu : array_like, shape (transformer, time) or (time,)
        Load factor K in pu of rated, mean over each interval, >= 0.
    room_degc : float or array_like, shape (time,), (1, time) or (transformer, time)
        Cooling-air temperature around the transformer (the room or enclosure), degC.
    params : DryThermal or sequence of DryThermal
    time : DatetimeIndex-like
        Start of each interval; regular steps.
    names : sequence of str, optional
    initial_load_pu : float or array_like, optional
        Load whose steady state is the initial state (default: the first interval's load).

    Returns
    -------
    xarray.Dataset
        ``hot_spot_degc``, ``ageing_rate``, ``loss_of_life_days`` (equivalent days at the rated hot spot),
        ``life_used_fraction`` (cumulative ``sum(dt / L(T))``), and per transformer ``hot_spot_max_degc``,
        ``hot_spot_limit_degc`` (the insulation system temperature) and ``hot_spot_margin_k``.

    References
    ----------
    IEC 60076-12:2008, Power transformers - Part 12: Loading guide for dry-type power transformers.
    """
    t, dt, k, amb, names, k0 = _prepare(load_pu, room_degc, time, names, initial_load_pu)
    plist = _per_transformer(params, DryThermal, k.shape[0], names)
    rise = _field(plist, "hot_spot_rise_k")[:, None]
    q2 = 2 * _field(plist, "load_exponent_q")[:, None]
    tau_s = _field(plist, "tau_winding_min") * 60
    d = _lag(np.ascontiguousarray(rise * k**q2), np.exp(-dt / tau_s), rise[:, 0] * k0**q2[:, 0])
    hot = amb + d
    rate = np.vstack([dry_ageing_rate(hot[j], plist[j]) for j in range(len(plist))])
    ds = _result(t, names, dt, None, hot, rate, plist, "IEC 60076-12:2008 exponential hot-spot model")
    life_h = np.array([p.rated_life_h for p in plist])[:, None]
    ds["life_used_fraction"] = xr.Variable(("transformer", "time"), np.cumsum(rate, axis=1) * dt / 3600 / life_h, {
        "long_name": "cumulative fraction of the insulation life used (sum of dt / L(T))", "units": "1"})
    return ds


# --------------------------------------------------------------------------------------------------------------
# calibration against measured top-oil temperature


@dataclass(frozen=True)
class TopOilFit:
    """Result of :func:`calibrate_top_oil`.

    ``params``: the fitted parameter set; ``load_scale``: factor from the given load to pu of rated;
    ``ambient_coef_degc``: the ambient proxy's coefficients (mean, annual cos, sin, daily cos, sin) or ``None``
    when the ambient was measured; ``ambient_offset_k``: offset added to a measured ambient (0 for the proxy).
    """

    params: OilThermal
    load_scale: float
    ambient_coef_degc: tuple | None
    ambient_offset_k: float

    def ambient(self, time, ambient_degc=None) -> np.ndarray:
        """The ambient the fit uses over ``time``: measured plus offset, or the fitted proxy."""
        if self.ambient_coef_degc is None:
            return np.asarray(ambient_degc, float) + self.ambient_offset_k
        return _harmonics(pd.DatetimeIndex(time)) @ np.asarray(self.ambient_coef_degc)

    def predict(self, time, load, ambient_degc=None, initial_top_oil_degc=None) -> np.ndarray:
        """Modelled top oil over ``time`` (degC) for a load in the units of the fitting data."""
        ds = oil_temperatures(np.asarray(load, float) * self.load_scale, self.ambient(time, ambient_degc), self.params,
                              time, initial_top_oil_degc=initial_top_oil_degc)
        return ds["top_oil_degc"].values[0]


def _harmonics(t: pd.DatetimeIndex) -> np.ndarray:
    """Columns 1, cos/sin of the year, cos/sin of the day, at each interval's middle."""
    step = (t[1] - t[0]) if len(t) > 1 else pd.Timedelta(0)
    tm = t + step / 2
    yr = 2 * np.pi * (tm.dayofyear.values - 1 + tm.hour.values / 24) / 365.25
    dy = 2 * np.pi * (tm.hour.values + tm.minute.values / 60) / 24
    return np.column_stack([np.ones(len(t)), np.cos(yr), np.sin(yr), np.cos(dy), np.sin(dy)])


def calibrate_top_oil(time, load, measured_top_oil_degc, params: OilThermal, ambient_degc=None,
                      fit_mask=None) -> TopOilFit:
    """Fit ``top_oil_rise_k``, ``tau_oil_min`` and a load scale (load units -> pu) to a measured top-oil series.

    The other IEC constants (R, x, k11) stay those of ``params``: with an unknown rating, R and the load scale are
    not separately identifiable from top oil alone, and the load scale trades off against ``top_oil_rise_k``: it is
    bounded so that the 99th percentile of the load is 0.2-1.5 pu of rated. With ``ambient_degc`` measured, a constant offset is also
    fitted (sensor placement); without it, the ambient is a proxy of annual and daily harmonics fitted at the same
    time (5 coefficients), which then also absorbs any seasonal effect that is not ambient: say so when reporting.
    The start is the measured top oil. Least squares on the top-oil error (scipy ``least_squares``).

    Parameters
    ----------
    time : DatetimeIndex-like, regular
    load : array_like (time,)
        Load in any unit proportional to the transformer's apparent power (>= 0).
    measured_top_oil_degc : array_like (time,)
    params : OilThermal
        Starting values and the fixed constants.
    ambient_degc : array_like (time,), optional
    fit_mask : array_like of bool (time,), optional
        Steps whose error is fitted (default all); the model still runs over the whole series, so the other steps
        can be held out for validation (for example alternate weeks).
    """
    from scipy.optimize import least_squares

    t = pd.DatetimeIndex(time)
    load = _as_batch(load, "load", len(t))[0]
    meas = _as_batch(measured_top_oil_degc, "measured_top_oil_degc", len(t))[0]
    if np.any(load < 0):
        raise ValueError("load: must be >= 0 (use the magnitude of apparent power)")
    dt = _step_s(t)
    mask = np.ones(len(t), bool) if fit_mask is None else np.asarray(fit_mask, bool)
    if mask.shape != (len(t),) or not mask.any():
        raise ValueError(f"fit_mask: expected {len(t)} booleans with at least one True")
    scale0 = 1.0 / max(np.percentile(load, 99), 1e-9)
    H = None if ambient_degc is not None else _harmonics(t)
    amb_meas = None if ambient_degc is None else _as_batch(ambient_degc, "ambient_degc", len(t))[0]
    base = {f: np.array([getattr(params, f)], float) for f in _OIL_FIELDS}

    def unpack(z):
        p = dict(base)
        p["top_oil_rise_k"] = np.array([z[0]])
        p["tau_oil_min"] = np.array([z[1]])
        amb = amb_meas + z[3] if H is None else H @ z[3:]
        return p, z[2], amb

    def resid(z):
        p, s, amb = unpack(z)
        top, _ = _oil_run(load[None, :] * s, amb[None, :], dt, p, np.array([load[0] * s]), np.array([meas[0]]))
        return (top[0] - meas)[mask]

    if H is None:
        z0 = np.r_[params.top_oil_rise_k, params.tau_oil_min, scale0, 0.0]
    else:
        z0 = np.r_[params.top_oil_rise_k, params.tau_oil_min, scale0, np.linalg.lstsq(H[mask], meas[mask], rcond=None)[0]]
        z0[3] -= params.top_oil_rise_k * 0.5
    lo = np.r_[1.0, 5.0, 0.2 * scale0, np.full(len(z0) - 3, -np.inf)]
    hi = np.r_[100.0, 1000.0, 1.5 * scale0, np.full(len(z0) - 3, np.inf)]
    sol = least_squares(resid, np.clip(z0, lo + 1e-9, hi - 1e-9), bounds=(lo, hi), x_scale="jac")
    z = sol.x
    fitted = params.model_copy(update={"top_oil_rise_k": float(z[0]), "tau_oil_min": float(z[1])})
    if H is None:
        return TopOilFit(fitted, float(z[2]), None, float(z[3]))
    return TopOilFit(fitted, float(z[2]), tuple(float(v) for v in z[3:]), 0.0)


def error_metrics(model_degc, measured_degc) -> dict:
    """RMSE, bias (model minus measured) and maximum absolute error, all in K."""
    e = np.asarray(model_degc, float) - np.asarray(measured_degc, float)
    return {"rmse_k": float(np.sqrt(np.mean(e**2))), "bias_k": float(np.mean(e)), "max_abs_error_k": float(np.max(np.abs(e)))}
