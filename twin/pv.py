"""PV output of the campus's PV systems over time, with pvlib (PVWatts), and its validation on field data.

The model chain follows pvlib's ``ModelChain`` with the PVWatts choices (Dobos 2014), composed here from pvlib's
functions so that each step stays visible and the solar position is computed only once (DESIGN.md pitfalls):

1. solar position at the **midpoint** of each interval (a weather row is the mean over the interval that starts
   at its timestamp), :func:`pvlib.solarposition.get_solarposition` (``nrel_numba`` when numba is installed);
2. plane-of-array irradiance, :func:`pvlib.irradiance.get_total_irradiance` (sky diffuse model of the parameter
   set, Hay-Davies by default), and the beam's angle-of-incidence loss, :func:`pvlib.iam.physical`;
3. cell temperature, :func:`pvlib.temperature.sapm_cell` (King et al. 2004);
4. DC power, :func:`pvlib.pvsystem.pvwatts_dc` with ``pdc0`` = the case's ``p_dc_kwp``, then the PVWatts system
   losses :func:`pvlib.pvsystem.pvwatts_losses` (soiling, shading, mismatch, wiring, availability, ...), applied to
   DC power as PVWatts does;
5. AC power, :func:`pvlib.inverter.pvwatts`, clipped at ``inverters x inverter_ac_kw_each`` (the same rating the
   pandapower sgen carries as ``sn_mva``, see :mod:`twin.network`).

Not modelled (PVWatts v5 does not either): inverter night tare, spectral mismatch, bifacial gain, row-to-row
shading geometry (the ``shading_pct`` loss covers it), snow cover (``snow_pct``).

Weather input (the convention of :mod:`twin.weather`): a pandas DataFrame with a tz-aware DatetimeIndex, each row
the mean over the interval starting at its timestamp, columns ``ghi``, ``dni``, ``dhi`` [W/m2], ``temp_air``
[degC], ``wind_speed`` [m/s] (``relative_humidity`` [%] optional, unused).

References
----------
.. [1] A. P. Dobos, "PVWatts Version 5 Manual", NREL/TP-6A20-62641, 2014, doi:10.2172/1158421.
.. [2] D. L. King, W. E. Boyson, J. A. Kratochvil, "Photovoltaic Array Performance Model", SAND2004-3535, 2004.
.. [3] B. Marion, "Comparison of predictive models for photovoltaic module performance", 33rd IEEE PVSC, 2008.
.. [4] W. F. Holmgren, C. W. Hansen, M. A. Mikofski, "pvlib python: a python package for modeling solar energy
   systems", JOSS 3(29), 884, 2018.
"""

from __future__ import annotations

import math
import time as _time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pvlib
import xarray as xr

from . import paths
from .case import Case, PvModel, PvSystem

__all__ = [
    "WEATHER_COLUMNS",
    "check_weather",
    "interval_of",
    "solar_position_midpoints",
    "pv_losses_pct",
    "effective_poa",
    "pv_from_poa",
    "pv_output",
    "validate_serf_west",
]

WEATHER_COLUMNS = ("ghi", "dni", "dhi", "temp_air", "wind_speed")


# --------------------------------------------------------------------------------------------------------------
# weather and solar position


def check_weather(weather: pd.DataFrame, columns=WEATHER_COLUMNS) -> None:
    """Check a weather table against the twin's convention; raise ``ValueError`` naming what is wrong.

    Parameters
    ----------
    weather : pandas.DataFrame
        Tz-aware DatetimeIndex, strictly increasing; one row per interval (mean over the interval starting at the
        timestamp); columns ``ghi``, ``dni``, ``dhi`` [W/m2], ``temp_air`` [degC], ``wind_speed`` [m/s].
    columns : sequence of str
        Required columns.
    """
    if not isinstance(weather, pd.DataFrame):
        raise ValueError(f"weather: expected a pandas DataFrame, found {type(weather).__name__}")
    missing = [c for c in columns if c not in weather.columns]
    if missing:
        raise ValueError(f"weather: missing column(s) {missing} (required: {list(columns)}; "
                         f"found: {list(weather.columns)})")
    idx = weather.index
    if not isinstance(idx, pd.DatetimeIndex) or idx.tz is None:
        raise ValueError("weather: expected a tz-aware DatetimeIndex (interval start times), "
                         f"found {type(idx).__name__}{'' if getattr(idx, 'tz', None) else ' without time zone'}")
    if (len(idx) > 1 and not idx.is_monotonic_increasing) or idx.has_duplicates:
        raise ValueError("weather: the index must be strictly increasing (interval start times)")
    bad = [c for c in columns if weather[c].isna().any()]
    if bad:
        n = {c: int(weather[c].isna().sum()) for c in bad}
        raise ValueError(f"weather: NaN values in column(s) {n}; fill or drop them explicitly before running")


def interval_of(index: pd.DatetimeIndex) -> pd.Timedelta:
    """The interval length of a regular time index (its ``freq``, else the median spacing).

    Raises ``ValueError`` for a single timestamp without ``freq``.
    """
    if index.freq is not None:
        return pd.Timedelta(pd.tseries.frequencies.to_offset(index.freq))
    if len(index) < 2:
        raise ValueError("weather: cannot infer the interval length from one row; give the index a freq")
    return pd.Timedelta(np.median(np.diff(index.asi8)), unit="ns")


def _numba_available() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def solar_position_midpoints(index: pd.DatetimeIndex, latitude_deg: float, longitude_deg: float,
                             altitude_m: float = 0.0, method: str | None = None) -> pd.DataFrame:
    """Solar position at the midpoint of each interval, computed once for all PV systems.

    Parameters
    ----------
    index : pandas.DatetimeIndex
        Interval start times (tz-aware).
    latitude_deg, longitude_deg : float
        Site position [deg north, deg east].
    altitude_m : float
        Site altitude [m].
    method : str, optional
        :func:`pvlib.solarposition.get_solarposition` method; default ``"nrel_numba"`` when numba is installed
        (about 1 s per year at 1 min after a one-off compile of a few s), else ``"nrel_numpy"``.

    Returns
    -------
    pandas.DataFrame
        Indexed by the midpoints ``index + interval/2``; columns of pvlib (``apparent_zenith``, ``zenith``,
        ``azimuth`` [deg], ...).
    """
    if method is None:
        method = "nrel_numba" if _numba_available() else "nrel_numpy"
    mid = index + interval_of(index) / 2
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Reloading spa", category=UserWarning)
        return pvlib.solarposition.get_solarposition(mid, latitude_deg, longitude_deg, altitude=altitude_m,
                                                     method=method)


# --------------------------------------------------------------------------------------------------------------
# model steps


def pv_losses_pct(params: PvModel) -> float:
    """Total PVWatts system loss [%] of a parameter set, :func:`pvlib.pvsystem.pvwatts_losses` (Dobos 2014)."""
    return float(pvlib.pvsystem.pvwatts_losses(
        soiling=params.soiling_pct, shading=params.shading_pct, snow=params.snow_pct,
        mismatch=params.mismatch_pct, wiring=params.wiring_pct, connections=params.connections_pct,
        lid=params.lid_pct, nameplate_rating=params.nameplate_rating_pct, age=params.age_pct,
        availability=params.availability_pct))


def effective_poa(params: PvModel, weather: pd.DataFrame, solar_position: pd.DataFrame,
                  surface_tilt_deg: float | None = None, surface_azimuth_deg: float | None = None) -> dict:
    """Plane-of-array and effective irradiance on a fixed plane.

    Parameters
    ----------
    params : PvModel
        Geometry defaults, albedo, sky diffuse model and glass IAM parameters.
    weather : pandas.DataFrame
        ``ghi``, ``dni``, ``dhi`` [W/m2] (the twin's weather convention).
    solar_position : pandas.DataFrame
        Same length as ``weather``; ``apparent_zenith``, ``zenith``, ``azimuth`` [deg], at interval midpoints.
    surface_tilt_deg, surface_azimuth_deg : float, optional
        Override the parameter set's tilt [deg] and azimuth [deg east of north].

    Returns
    -------
    dict of numpy.ndarray
        ``poa_global``, ``poa_direct``, ``poa_diffuse``, ``effective`` [W/m2], ``aoi`` [deg].

    Notes
    -----
    :func:`pvlib.irradiance.get_total_irradiance` with extraterrestrial DNI from
    :func:`pvlib.irradiance.get_extra_radiation` (Hay-Davies, Perez) and relative air mass
    (Kasten-Young 1989, Perez); effective irradiance = beam x :func:`pvlib.iam.physical` + diffuse, as
    pvlib's ModelChain with ``aoi_model="physical"`` and no spectral loss (PVWatts v5, Dobos 2014).
    """
    tilt = params.surface_tilt_deg if surface_tilt_deg is None else surface_tilt_deg
    azim = params.surface_azimuth_deg if surface_azimuth_deg is None else surface_azimuth_deg
    times = solar_position.index
    zen = solar_position["apparent_zenith"].to_numpy()
    sazi = solar_position["azimuth"].to_numpy()
    kw = {}
    if params.transposition_model in ("haydavies", "perez"):
        kw["dni_extra"] = pvlib.irradiance.get_extra_radiation(times).to_numpy()
    if params.transposition_model == "perez":
        kw["airmass"] = pvlib.atmosphere.get_relative_airmass(zen)
    irr = pvlib.irradiance.get_total_irradiance(
        tilt, azim, zen, sazi, weather["dni"].to_numpy(), weather["ghi"].to_numpy(), weather["dhi"].to_numpy(),
        albedo=params.albedo, model=params.transposition_model, **kw)
    aoi = pvlib.irradiance.aoi(tilt, azim, zen, sazi)
    iam = pvlib.iam.physical(aoi, n=params.iam_n, K=params.iam_k_per_m, L=params.iam_l_m)
    poa_direct = np.asarray(irr["poa_direct"], dtype=float)
    poa_diffuse = np.asarray(irr["poa_diffuse"], dtype=float)
    return {"poa_global": np.asarray(irr["poa_global"], dtype=float), "poa_direct": poa_direct,
            "poa_diffuse": poa_diffuse, "effective": poa_direct * np.asarray(iam) + poa_diffuse,
            "aoi": np.asarray(aoi, dtype=float)}


def pv_from_poa(params: PvModel, effective_irradiance, t_cell_degc, pdc0_w: float, losses_pct: float = 0.0,
                ac_rating_w: float | None = None) -> dict:
    """DC (and AC) power from effective plane-of-array irradiance and cell temperature (PVWatts).

    Used by :func:`pv_output` and by validation on measured POA irradiance and module temperature
    (convert module to cell temperature first with :func:`pvlib.temperature.sapm_cell_from_module` and the
    parameter set's ``sapm_delta_t_k``).

    Parameters
    ----------
    params : PvModel
        ``gamma_pdc_per_k`` [1/K], ``temp_ref_degc`` [degC], ``low_irradiance_k`` [-], ``eta_inv_nom``,
        ``eta_inv_ref`` [-].
    effective_irradiance : array_like
        Irradiance reaching the cells [W/m2] (POA after angle-of-incidence loss).
    t_cell_degc : array_like
        Cell temperature [degC].
    pdc0_w : float
        DC rating at 1000 W/m2 and ``temp_ref_degc`` [W].
    losses_pct : float
        PVWatts system losses applied to DC power [%] (:func:`pv_losses_pct`).
    ac_rating_w : float, optional
        Inverter AC rating [W]; when given, AC power by :func:`pvlib.inverter.pvwatts` with the inverter's DC
        input rating ``ac_rating_w / eta_inv_nom`` so that AC output clips exactly at ``ac_rating_w``.

    Returns
    -------
    dict of numpy.ndarray
        ``p_dc_w`` [W] (after losses) and, with ``ac_rating_w``, ``p_ac_w`` [W].

    References
    ----------
    :func:`pvlib.pvsystem.pvwatts_dc` (Dobos 2014 eq. 1; low-irradiance ``k`` of Marion 2008, applied only below
    1000 W/m2), :func:`pvlib.inverter.pvwatts` (Dobos 2014 eq. 2-4).
    """
    k = params.low_irradiance_k if params.low_irradiance_k > 0 else None
    p_dc = pvlib.pvsystem.pvwatts_dc(np.asarray(effective_irradiance, dtype=float),
                                     np.asarray(t_cell_degc, dtype=float), pdc0_w, params.gamma_pdc_per_k,
                                     temp_ref=params.temp_ref_degc, k=k, cap_adjustment=k is not None)
    p_dc = np.asarray(p_dc, dtype=float) * (1.0 - losses_pct / 100.0)
    out = {"p_dc_w": p_dc}
    if ac_rating_w is not None:
        out["p_ac_w"] = np.asarray(pvlib.inverter.pvwatts(p_dc, ac_rating_w / params.eta_inv_nom,
                                                          eta_inv_nom=params.eta_inv_nom,
                                                          eta_inv_ref=params.eta_inv_ref), dtype=float)
    return out


def _check_solar_position(solar_position: pd.DataFrame, index: pd.DatetimeIndex) -> pd.DataFrame:
    need = ("apparent_zenith", "azimuth")
    missing = [c for c in need if c not in solar_position.columns]
    if missing:
        raise ValueError(f"solar_position: missing column(s) {missing} (pvlib.solarposition output expected)")
    if len(solar_position) != len(index):
        raise ValueError(f"solar_position: {len(solar_position)} rows for {len(index)} weather rows")
    mid = index + interval_of(index) / 2
    sp_idx = pd.DatetimeIndex(solar_position.index)
    if not (sp_idx.equals(mid) or sp_idx.equals(index)):
        raise ValueError("solar_position: its index must be the weather's interval midpoints (index + freq/2) "
                         "or, holding midpoint values, the interval starts (as twin.weather.solar_position)")
    return solar_position.set_axis(mid)


# --------------------------------------------------------------------------------------------------------------
# the campus's PV systems over time


def _system_geometry(m: PvModel, s: PvSystem) -> tuple[float, float]:
    tilt = m.surface_tilt_deg if s.surface_tilt_deg is None else s.surface_tilt_deg
    azim = m.surface_azimuth_deg if s.surface_azimuth_deg is None else s.surface_azimuth_deg
    return tilt, azim


def pv_output(case: Case, weather: pd.DataFrame, solar_position: pd.DataFrame | None = None,
              power_factor: float = 1.0, verbose: bool = False) -> xr.Dataset:
    """AC output of every PV system of a case over time.

    Parameters
    ----------
    case : Case
        The study case; ``case.spec.pv`` lists the systems, ``case.spec.site`` gives the position.
    weather : pandas.DataFrame
        The twin's weather convention (module docstring): tz-aware index of interval starts, interval means of
        ``ghi``, ``dni``, ``dhi`` [W/m2], ``temp_air`` [degC], ``wind_speed`` [m/s].
    solar_position : pandas.DataFrame, optional
        Precomputed solar position evaluated at the interval midpoints, shared with other drivers: indexed by
        the midpoints (:func:`solar_position_midpoints`) or by the interval starts
        (:func:`twin.weather.solar_position`); computed once here when not given. Standard atmosphere for
        refraction (pvlib's 12 degC, pressure from the site altitude).
    power_factor : float
        Operating power factor of the inverters (Q generated, pandapower's sgen sign), 1 = unity (default).
        Must be at least the parameter set's ``power_factor_min``; Q = P tan(acos(pf)), limited so that
        P^2 + Q^2 <= S^2 with S = the inverter AC rating (active power has priority).
    verbose : bool
        Print the run time.

    Returns
    -------
    xarray.Dataset
        Dimensions ``(time, pv_system)``, ``time`` = the weather index (interval starts): ``p_mw`` (AC at the
        inverter terminals, after PVWatts losses incl. availability and clipping at inverters x
        inverter_ac_kw_each), ``q_mvar``, ``p_dc_mw`` (DC after losses), ``poa_global`` [W/m2], ``t_cell``
        [degC]; coordinates ``p_dc_kwp``, ``ac_rating_mw``, ``q_capability_mvar`` per system.

    Raises
    ------
    ValueError
        Weather not in the convention (the message names the missing column), a power factor below the
        capability, or a solar position that does not match the weather.
    """
    t0 = _time.perf_counter()
    check_weather(weather)
    if solar_position is None:  # the weather module's cached solar position of the same index (computed once)
        from .weather import solar_position as _solpos

        solar_position = _solpos(case, weather.index)
    solar_position = _check_solar_position(solar_position, weather.index)
    if not 0 < power_factor <= 1:
        raise ValueError(f"power_factor: expected a value in (0, 1], found {power_factor}")
    n, systems = len(weather), case.spec.pv
    names = [s.name for s in systems]
    shape = (n, len(systems))
    var = {k: np.zeros(shape) for k in ("p_mw", "q_mvar", "p_dc_mw", "poa_global", "t_cell")}
    kwp, ac_mw, q_cap = [], [], []
    for j, s in enumerate(systems):
        m = case.model("pv", s.model)
        if power_factor < m.power_factor_min:
            raise ValueError(f"power_factor {power_factor} is below the capability of PV system '{s.name}' "
                             f"(power_factor_min = {m.power_factor_min} in models/pv/{s.model}.toml)")
        tilt, azim = _system_geometry(m, s)
        irr = effective_poa(m, weather, solar_position, tilt, azim)
        t_cell = np.asarray(pvlib.temperature.sapm_cell(
            irr["poa_global"], weather["temp_air"].to_numpy(), weather["wind_speed"].to_numpy(),
            m.sapm_a, m.sapm_b, m.sapm_delta_t_k), dtype=float)
        ac_w = s.inverters * m.inverter_ac_kw_each * 1e3
        out = pv_from_poa(m, irr["effective"], t_cell, s.p_dc_kwp * 1e3, pv_losses_pct(m), ac_rating_w=ac_w)
        p = out["p_ac_w"] / 1e6
        q = p * math.tan(math.acos(power_factor))
        q = np.minimum(q, np.sqrt(np.maximum((ac_w / 1e6) ** 2 - p**2, 0.0)))
        var["p_mw"][:, j], var["q_mvar"][:, j], var["p_dc_mw"][:, j] = p, q, out["p_dc_w"] / 1e6
        var["poa_global"][:, j], var["t_cell"][:, j] = irr["poa_global"], t_cell
        kwp.append(s.p_dc_kwp)
        ac_mw.append(ac_w / 1e6)
        q_cap.append(ac_w / 1e6 * math.tan(math.acos(m.power_factor_min)))
    meta = {
        "p_mw": ("MW", "PV active power at the inverter AC terminals (PVWatts, after losses and clipping)"),
        "q_mvar": ("Mvar", "PV reactive power (generated positive); |Q| <= q_capability_mvar within S = rating"),
        "p_dc_mw": ("MW", "PV DC power at the inverter input (PVWatts DC after system losses)"),
        "poa_global": ("W m-2", "plane-of-array global irradiance"),
        "t_cell": ("degC", "cell temperature (SAPM)"),
    }
    ds = xr.Dataset(
        {k: (("time", "pv_system"), v, {"units": meta[k][0], "long_name": meta[k][1]}) for k, v in var.items()},
        coords={"time": weather.index, "pv_system": names,
                "p_dc_kwp": ("pv_system", kwp, {"units": "kW", "long_name": "DC rating at STC"}),
                "ac_rating_mw": ("pv_system", ac_mw, {"units": "MW", "long_name": "inverters x AC rating"}),
                "q_capability_mvar": ("pv_system", q_cap, {
                    "units": "Mvar", "long_name": "reactive capability at rated P (power_factor_min)"})},
        attrs={"model": "pvlib PVWatts v5 (Dobos 2014): haydavies/physical IAM/SAPM temperature",
               "time_convention": "value = mean over the interval starting at the timestamp; "
                                  "solar position at interval midpoints",
               "power_factor": power_factor, "pvlib_version": pvlib.__version__})
    if verbose:
        print(f"pv_output: {n} steps x {len(systems)} systems in {_time.perf_counter() - t0:.2f} s")
    return ds


# --------------------------------------------------------------------------------------------------------------
# validation on NREL PVDAQ SERF West


def _load_pv_params(name: str) -> PvModel:
    from .case import _read_toml, _validate

    f = paths.models_dir() / "pv" / f"{name}.toml"
    return _validate(f, PvModel, _read_toml(f))


def _read_validation_case(path: Path) -> dict:
    from .case import _read_toml

    return _read_toml(path)


def _variability(poa: pd.Series) -> float:
    """Sum of absolute POA changes over twice the day's peak: about 1 for a clear day, larger with clouds."""
    p = poa.clip(lower=0).to_numpy()
    return float(np.abs(np.diff(p)).sum() / (2 * p.max())) if p.max() > 0 else float("inf")


def validate_serf_west(data_dir: str | Path | None = None, case_file: str | Path | None = None) -> dict:
    """Validate the PVWatts DC model on NREL PVDAQ SERF West (15 min, 5 winter days, Golden CO).

    Steps (driven by ``validation/pv_serf_west.toml``):

    1. data quality: per day, measured DC energy / POA energy against the median day, and the number of
       intervals with significant POA but (almost) no DC power; such days (snow, outage) are flagged with the
       reason, never silently dropped;
    2. fit the DC rating ``pdc0`` [W] on one clear kept day, with the parameter set's temperature coefficient
       and low-irradiance correction fixed: linear least squares of measured DC power on
       :func:`pv_from_poa` at ``pdc0 = 1 W`` (closed form, the model is linear in ``pdc0``); cell temperature
       from the mean back-of-module temperature by :func:`pvlib.temperature.sapm_cell_from_module`;
    3. validate daily DC energy on the other kept days, and 15-min DC power (RMSE, bias, max error).

    Parameters
    ----------
    data_dir : str or Path, optional
        The shared field-data folder (default :func:`twin.paths.shared_data_dir`).
    case_file : str or Path, optional
        The validation case (default ``validation/pv_serf_west.toml``).

    Returns
    -------
    dict
        ``days`` (per day: measured energies, ratio, kept, reason), ``flagged`` {day: reason}, ``kept``,
        ``fit`` (day, pdc0_w, fixed parameters), ``validation`` (per day measured/modelled energy [Wh] and
        error [%]; ``rmse_w``, ``bias_w``, ``max_abs_error_w`` on daytime 15-min DC power), ``acceptance``.

    Raises
    ------
    FileNotFoundError
        The data file is not there.
    """
    case_file = Path(case_file) if case_file else paths.validation_dir() / "pv_serf_west.toml"
    vc = _read_validation_case(case_file)
    data_dir = Path(data_dir) if data_dir else paths.shared_data_dir()
    if data_dir is None:
        raise FileNotFoundError("no shared data folder (../shared/data beside the checkout, or $TWIN_DATA)")
    f = data_dir / vc["data"]["file"]
    if not f.exists():
        raise FileNotFoundError(f"{f}: SERF West data not found (named in {case_file})")
    col, q, acc = vc["columns"], vc["quality"], vc["acceptance"]
    raw = pd.read_csv(f, index_col=0, parse_dates=True)
    need = [col["dc_power_w"], col["poa_w_m2"], *col["module_temp_degc"]]
    missing = [c for c in need if c not in raw.columns]
    if missing:
        raise ValueError(f"{f}: missing column(s) {missing} named in {case_file}")
    raw.index = raw.index.tz_localize(vc["data"]["timezone"])
    dt_h = vc["data"]["interval_min"] / 60.0
    params = _load_pv_params(vc["model"]["parameter_set"])

    dc = raw[col["dc_power_w"]].clip(lower=0.0)
    poa = raw[col["poa_w_m2"]].clip(lower=0.0)
    t_mod = raw[col["module_temp_degc"]].mean(axis=1)
    t_cell = pd.Series(pvlib.temperature.sapm_cell_from_module(t_mod, poa, params.sapm_delta_t_k),
                       index=raw.index)
    day = raw.index.normalize()

    # 1. data quality
    e_dc = dc.groupby(day).sum() * dt_h
    e_poa = poa.groupby(day).sum() * dt_h
    ratio = e_dc / e_poa.where(e_poa > 0)
    med = float(ratio.median())
    sig = poa > q["poa_significant_w_m2"]
    dead = (sig & (dc < q["dc_fraction_of_expected_max"] * poa * med)).groupby(day).sum()
    days, flagged, kept = {}, {}, []
    for d in e_dc.index:
        key = d.strftime("%Y-%m-%d")
        rel = float(ratio[d] / med) if np.isfinite(ratio[d]) else float("nan")
        reasons = []
        if e_poa[d] < q["daily_poa_min_wh_m2"]:
            reasons.append(f"POA energy {e_poa[d]:.0f} Wh/m2 < {q['daily_poa_min_wh_m2']:g} Wh/m2 (too dark)")
        if not rel >= q["ratio_min_of_median"]:
            reasons.append(f"DC/POA energy ratio {rel:.3f} of the median day (< {q['ratio_min_of_median']:g})")
        if dead[d] > 0:
            reasons.append(f"{int(dead[d])} interval(s) with POA > {q['poa_significant_w_m2']:g} W/m2 and DC < "
                           f"{100 * q['dc_fraction_of_expected_max']:g} % of expected")
        # kept when the day's energy ratio is normal and it is bright enough; dead intervals are reported
        ok = rel >= q["ratio_min_of_median"] and e_poa[d] >= q["daily_poa_min_wh_m2"]
        if not ok:
            reasons.append("likely snow cover or outage for most of the day" if rel < 0.5
                           else "likely snow or frost cover, or an outage, for part of the day")
        days[key] = {"dc_energy_wh": float(e_dc[d]), "poa_energy_wh_m2": float(e_poa[d]),
                     "dc_poa_ratio_m2": float(ratio[d]), "ratio_of_median": rel,
                     "dead_intervals": int(dead[d]), "kept": bool(ok),
                     "reason": "; ".join(reasons) if reasons else "DC/POA ratio normal, no dead intervals"}
        if ok:
            kept.append(key)
        else:
            flagged[key] = days[key]["reason"]
    if len(kept) < 2:
        raise ValueError(f"{f}: only {len(kept)} kept day(s); need one to fit and one to validate")

    # 2. fit pdc0 on one clear kept day
    fit_day = vc["model"].get("fit_day", "auto")
    if fit_day == "auto":
        fit_day = min(kept, key=lambda k: _variability(poa[k]))
    elif fit_day not in kept:
        raise ValueError(f"{case_file}: fit_day {fit_day} is not a kept day (kept: {kept})")
    unit = pd.Series(pv_from_poa(params, poa, t_cell, 1.0)["p_dc_w"], index=raw.index)
    x, y = unit[fit_day].to_numpy(), dc[fit_day].to_numpy()
    pdc0 = float(x @ y / (x @ x))

    # 3. validate on the other kept days
    model = unit * pdc0
    val_days = [k for k in kept if k != fit_day]
    per_day = {}
    for k in val_days:
        em, ep = float(dc[k].sum() * dt_h), float(model[k].sum() * dt_h)
        per_day[k] = {"measured_wh": em, "modelled_wh": ep, "error_pct": 100.0 * (ep - em) / em}
    mask = day.isin(pd.DatetimeIndex(val_days).tz_localize(raw.index.tz)) & (poa > 20.0)
    err = (model - dc)[mask]
    worst = max(abs(v["error_pct"]) for v in per_day.values())
    band = acc["daily_dc_energy_error_pct_max"]
    return {
        "case": str(case_file), "data_file": str(f),
        "days": days, "flagged": flagged, "kept": kept,
        "fit": {"day": fit_day, "pdc0_w": pdc0, "method": "linear least squares on 15-min DC power",
                "gamma_pdc_per_k": params.gamma_pdc_per_k, "low_irradiance_k": params.low_irradiance_k,
                "sapm_delta_t_k": params.sapm_delta_t_k, "variability": _variability(poa[fit_day])},
        "validation": {"days": val_days, "per_day": per_day,
                       "rmse_w": float(np.sqrt((err**2).mean())), "bias_w": float(err.mean()),
                       "max_abs_error_w": float(err.abs().max()), "n_intervals": int(mask.sum()),
                       "note": "power metrics on 15-min DC power of the validation days with POA > 20 W/m2"},
        "acceptance": {"daily_dc_energy_error_pct_max": band, "max_abs_daily_error_pct": worst,
                       "energy_passed": bool(worst <= band),
                       "pdc0_plausible": bool(acc["pdc0_w_min"] <= pdc0 <= acc["pdc0_w_max"])},
    }
