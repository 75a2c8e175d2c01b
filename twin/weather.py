"""Weather for the drivers: a built-in synthetic typical year, and readers for measured or typical-year files.

Every weather DataFrame here has the same shape (DESIGN.md conventions):

- a tz-aware :class:`pandas.DatetimeIndex` stored in UTC, regular, without gaps or duplicates;
- each row is the MEAN over the interval that STARTS at its timestamp;
- columns (pvlib names) ``ghi``, ``dni``, ``dhi`` (W/m2), ``temp_air`` (degC), ``relative_humidity`` (%),
  ``wind_speed`` (m/s); ``df.attrs["units"]`` says so.

Irradiance at an interval is computed at the interval's midpoint (the interval mean of a smooth quantity to second
order); :func:`solar_position` returns the solar position at those midpoints, indexed by the interval starts, and
the PV module passes the same index to reuse it instead of computing it again.

Why our own generator: pvlib provides clear-sky models, the Linke turbidity climatology, solar position and the
diffuse split, which are used here; it has no stochastic weather generator, and none of the maintained packages
reproduces a given monthly table (irradiation, diffuse fraction, temperature, humidity) at 1-minute steps. The
synthesis is therefore written here, in the spirit of the Aguiar-Collares-Pereira approach: a clear-sky index
driven by autoregressive processes, calibrated month by month to the table.

References
----------
.. [1] P. Ineichen and R. Perez, "A new airmass independent formulation for the Linke turbidity coefficient",
   Solar Energy 73(3), 151-157, 2002.
.. [2] D. G. Erbs, S. A. Klein and J. A. Duffie, "Estimation of the diffuse radiation fraction for hourly, daily
   and monthly-average global radiation", Solar Energy 28(4), 293-302, 1982.
.. [3] R. Aguiar and M. Collares-Pereira, "TAG: a time-dependent, autoregressive, Gaussian model for generating
   synthetic hourly radiation", Solar Energy 49(3), 167-174, 1992.
.. [4] W. J. Parton and J. A. Logan, "A model for diurnal variation in soil and air temperature", Agricultural
   Meteorology 23, 205-216, 1981.
.. [5] O. A. Alduchov and R. E. Eskridge, "Improved Magnus form approximation of saturation vapor pressure",
   J. Applied Meteorology 35, 601-609, 1996.
.. [6] I. Reda and A. Andreas, "Solar position algorithm for solar radiation applications", NREL/TP-560-34302, 2004.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pvlib
from pydantic import Field, model_validator
from scipy.signal import lfilter
from scipy.special import expit, logit

from .case import Case, CaseError, Q, _model_search_dirs, _Strict

__all__ = ["COLUMNS", "UNITS", "ClimateTable", "WeatherFileError", "climate_table", "solar_position", "clear_sky",
           "typical_year", "read_weather", "resample_mean"]

COLUMNS = ("ghi", "dni", "dhi", "temp_air", "relative_humidity", "wind_speed")
UNITS = {"ghi": "W/m2", "dni": "W/m2", "dhi": "W/m2", "temp_air": "degC", "relative_humidity": "%",
         "wind_speed": "m/s"}

KC_MAX = 1.1            # highest clear-sky index of an interval mean (cloud enhancement), -
MAX_ZENITH_DEG = 87.0   # above this (interval midpoint), all irradiance is taken as diffuse (as pvlib's erbs)
IRR_NOISE_WM2 = 10.0    # negative irradiance down to this is sensor night offset, clipped to 0; below, an error


class WeatherFileError(CaseError):
    """A weather file cannot be used. The message is one line: the file and what is wrong, where."""


# --------------------------------------------------------------------------------------------------------------
# the climate table (models/climate/<name>.toml)

Monthly = list[float]


def _monthly(desc: str):
    return Field(min_length=12, max_length=12, description=f"{desc}, 12 values January..December")


class ClimateTable(_Strict):
    """Monthly climate of a site (``models/climate/<name>.toml``): what a synthetic typical year reproduces."""

    description: str = ""
    source: str = Field(min_length=1, description="where the figures come from")
    station: str = ""
    ghi_kwh_m2: Monthly = _monthly("monthly global horizontal irradiation in kWh/m2")
    diffuse_fraction: Monthly = _monthly("monthly diffuse fraction (diffuse / global irradiation), 0-1")
    temp_air_mean_degc: Monthly = _monthly("monthly mean air temperature in degC")
    temp_air_max_degc: Monthly = _monthly("monthly highest air temperature in degC")
    temp_air_min_degc: Monthly = _monthly("monthly lowest air temperature in degC")
    relative_humidity_mean_percent: Monthly = _monthly("monthly mean relative humidity in %")
    wind_speed_mean_m_s: float = Q("annual mean wind speed at 10 m in m/s", gt=0, le=30)

    @model_validator(mode="after")
    def _check(self):
        for m in range(12):
            mon = f"month {m + 1}"
            if not 0 < self.ghi_kwh_m2[m] <= 300:
                raise ValueError(f"ghi_kwh_m2 of {mon} must be in (0, 300] kWh/m2, got {self.ghi_kwh_m2[m]}")
            if not 0.05 <= self.diffuse_fraction[m] <= 1:
                raise ValueError(f"diffuse_fraction of {mon} must be in [0.05, 1], got {self.diffuse_fraction[m]}")
            lo, mean, hi = self.temp_air_min_degc[m], self.temp_air_mean_degc[m], self.temp_air_max_degc[m]
            if not -60 <= lo < mean < hi <= 60:
                raise ValueError(f"air temperature of {mon}: need -60 <= min < mean < max <= 60 degC, "
                                 f"got {lo}, {mean}, {hi}")
            if not 5 <= self.relative_humidity_mean_percent[m] <= 100:
                raise ValueError(f"relative_humidity_mean_percent of {mon} must be in [5, 100], "
                                 f"got {self.relative_humidity_mean_percent[m]}")
        return self


def climate_table(case: Case) -> ClimateTable:
    """The site's climate table ``models/climate/<site.climate>.toml``, validated.

    Raises
    ------
    CaseError
        When the case names no climate table, or the table is not found (the message names the key
        ``site.climate`` and the folders searched) or is invalid (file and key).
    """
    name = case.spec.site.climate
    dirs = [str(d / "climate") for d in _model_search_dirs(case.path)]
    if name is None:
        raise CaseError(f"{case.path}: key 'site.climate': expected the name of a climate table in "
                        f"models/climate/ (searched {dirs}), found none")
    try:
        return case.parameter_set("climate", name, ClimateTable)
    except CaseError as exc:
        if "no parameter set" not in str(exc):
            raise
        raise CaseError(f"{case.path}: key 'site.climate': expected the name of a climate table in "
                        f"models/climate/ (searched {dirs}), found '{name}' ({exc})") from None


# --------------------------------------------------------------------------------------------------------------
# solar position, once per index

_SP_CACHE: dict[tuple, pd.DataFrame] = {}


def _location(case: Case) -> pvlib.location.Location:
    s = case.spec.site
    return pvlib.location.Location(s.latitude_deg, s.longitude_deg, tz=s.timezone, altitude=s.altitude_m)


def _step(index: pd.DatetimeIndex) -> pd.Timedelta:
    if len(index) < 2:
        raise ValueError("need at least two timestamps to know the interval length")
    return pd.Timedelta(index[1] - index[0])


def solar_position(case: Case, index: pd.DatetimeIndex) -> pd.DataFrame:
    """Solar position at the MIDPOINTS of the intervals that start at ``index``.

    Computed with the NREL SPA [6]_ (pvlib ``method="nrel_numpy"``), once per index: a second call with the same
    site and index returns a copy of the cached result. :func:`typical_year` calls it, and the PV module passes the weather's index to reuse it.

    Parameters
    ----------
    case : Case
        Supplies the site (latitude, longitude, altitude).
    index : pandas.DatetimeIndex
        Regular, tz-aware interval starts (a weather DataFrame's index).

    Returns
    -------
    pandas.DataFrame
        pvlib's columns (``apparent_zenith``, ``zenith``, ``apparent_elevation``, ``elevation``, ``azimuth`` in
        degrees, ``equation_of_time`` in minutes), evaluated at ``index + step / 2`` but indexed by ``index``
        so that it aligns with the weather rows.
    """
    if index.tz is None:
        raise ValueError("solar_position: index must be tz-aware")
    step = _step(index)
    s = case.spec.site
    key = (s.latitude_deg, s.longitude_deg, s.altitude_m, index[0].value, index[-1].value, len(index), step.value)
    if key not in _SP_CACHE:
        loc = _location(case)
        mid = index + step / 2
        # numpy SPA: computed once per index and cached, so numba's version does not pay back its compile, which
        # pvlib does not cache (a year at 1 min in a fresh process: numpy 2.4 s, numba 5.9 s cold / 1.3 s warm)
        sp = loc.get_solarposition(mid, method="nrel_numpy")
        sp.index = index
        if len(_SP_CACHE) >= 4:
            _SP_CACHE.pop(next(iter(_SP_CACHE)))
        _SP_CACHE[key] = sp
    return _SP_CACHE[key].copy()


def clear_sky(case: Case, index: pd.DatetimeIndex, solar_pos: pd.DataFrame | None = None) -> pd.DataFrame:
    """Clear-sky irradiance of the intervals that start at ``index``, evaluated at their midpoints.

    Ineichen-Perez [1]_ with pvlib's monthly Linke turbidity climatology, via
    :meth:`pvlib.location.Location.get_clearsky`.

    Parameters
    ----------
    case : Case
        Supplies the site.
    index : pandas.DatetimeIndex
        Regular, tz-aware interval starts.
    solar_pos : pandas.DataFrame, optional
        :func:`solar_position` of the same index (computed when not given).

    Returns
    -------
    pandas.DataFrame
        ``ghi``, ``dni``, ``dhi`` in W/m2, indexed by ``index``; zero when the sun is below the horizon at the
        midpoint.
    """
    sp = solar_position(case, index) if solar_pos is None else solar_pos
    mid = index + _step(index) / 2
    cs = _location(case).get_clearsky(mid, model="ineichen", solar_position=sp.set_axis(mid))
    cs = cs.set_axis(index)[["ghi", "dni", "dhi"]]
    return cs.mul((sp["zenith"].to_numpy() < 90).astype(float), axis=0)


# --------------------------------------------------------------------------------------------------------------
# interval means


def resample_mean(df: pd.DataFrame | pd.Series, freq: str | pd.Timedelta) -> pd.DataFrame | pd.Series:
    """Interval means over longer intervals, exactly: each output row is the mean of the rows it covers.

    Bins start at the first timestamp (``origin="start"``) and are labelled by their start, so a 1-minute
    year's hourly means equal a 1-hour series built with the same convention.

    Parameters
    ----------
    df : DataFrame or Series
        Interval-start means on a regular tz-aware index.
    freq : str or Timedelta
        Output interval, a whole multiple of the input step (``"1h"``, ``"15min"``, ``"1D"``).

    Raises
    ------
    ValueError
        When ``freq`` is not a multiple of the step, or an output interval is not fully covered (a gap, a
        missing value or a partial last interval): nothing is averaged over part of an interval.
    """
    step = _step(df.index)
    out_step = pd.Timedelta(freq)
    if out_step < step or out_step % step:
        raise ValueError(f"resample_mean: {out_step} is not a whole multiple of the data step {step}")
    n = out_step // step
    g = df.resample(out_step, closed="left", label="left", origin="start")
    counts = g.count()
    bad = counts < n if isinstance(counts, pd.Series) else (counts < n).any(axis=1)
    if bad.any():
        first = bad[bad].index[0]
        raise ValueError(f"resample_mean: the interval starting at {first} is not fully covered by data "
                         f"(need {n} values of step {step})")
    return g.mean()


# --------------------------------------------------------------------------------------------------------------
# the synthetic typical year


def _ar1(rng: np.random.Generator, n: int, phi: float) -> np.ndarray:
    """Stationary AR(1) with unit variance: x[k] = phi x[k-1] + sqrt(1 - phi^2) e[k]."""
    e = rng.standard_normal(n)
    e[0] /= np.sqrt(1 - phi**2)  # start in the stationary distribution
    return lfilter([np.sqrt(1 - phi**2)], [1.0, -phi], e)


def _bisect(fun, target: np.ndarray, lo: float, hi: float, increasing: bool, iters: int = 60) -> np.ndarray:
    """Vectorised bisection: x (one per month) with fun(x) == target, fun monotonic in each component."""
    a = np.full(target.shape, lo, float)
    b = np.full(target.shape, hi, float)
    for _ in range(iters):
        m = 0.5 * (a + b)
        below = fun(m) < target
        go_up = below if increasing else ~below
        a = np.where(go_up, m, a)
        b = np.where(go_up, b, m)
    return 0.5 * (a + b)


def _esat(t_degc):
    """Saturation vapour pressure over water in hPa, Magnus form with the coefficients of [5]_."""
    return 6.1094 * np.exp(17.625 * t_degc / (t_degc + 243.04))


def _rngs(seed) -> list[np.random.Generator]:
    if isinstance(seed, np.random.Generator):
        return list(seed.spawn(6))
    return [np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(6)]


def _year_index(tz: str, year: int, step: pd.Timedelta) -> pd.DatetimeIndex:
    t0 = pd.Timestamp(year=year, month=1, day=1, tz=tz)
    t1 = pd.Timestamp(year=year + 1, month=1, day=1, tz=tz)
    return pd.date_range(t0, t1, freq=step, inclusive="left").tz_convert("UTC")


def typical_year(case: Case, year: int | None = None, freq: str | pd.Timedelta = "1h",
                 seed: int | np.random.Generator | None = None) -> pd.DataFrame:
    """A synthetic typical year of weather for the case's site, calibrated to its monthly climate table.

    Method (each step a function of arrays over the whole year):

    1. Clear sky: Ineichen-Perez [1]_ with pvlib's Linke turbidity climatology
       (:meth:`pvlib.location.Location.get_clearsky`), at interval midpoints (:func:`solar_position`).
    2. Clouds: a latent Gaussian process, the sum of a daily AR(1) (day-to-day persistence, lag-1 correlation
       0.55), an hourly AR(1) (correlation time 3 h, interpolated between hour midpoints) and, for steps below
       1 h, a fast AR(1) (correlation time 10 min) for the minute-scale variability of broken cloud, in the
       spirit of TAG [3]_. The clear-sky index is ``kc = KC_MAX * expit(a_m + latent)``, bounded by 0 and
       ``KC_MAX`` = 1.1 (cloud enhancement), most variable at intermediate cloudiness. The offset ``a_m`` of each
       month is found by bisection so that the monthly GHI equals the table.
    3. Diffuse split: Erbs et al. [2]_ (:func:`pvlib.irradiance.erbs`) on the clearness index, then the logit of
       the diffuse fraction shifted per month (bisection) so that the monthly diffuse fraction equals the table,
       bounded so that DNI never exceeds the clear-sky DNI; all diffuse when the sun is below 3 degrees at the
       midpoint. DNI by closure, ``dni = (ghi - dhi) / cos(zenith)``.
    4. Air temperature: a smooth seasonal baseline whose monthly means equal the table, plus a daily AR(1)
       anomaly, plus a diurnal cycle after Parton-Logan [4]_ (minimum at sunrise, maximum at 14:30 solar time)
       whose range follows the table's spread and shrinks on cloudy days; each month's mean set to the table.
    5. Relative humidity: from a daily dew point (the day's mean temperature less a depression that varies
       from day to day and is smaller on cloudy days), so RH falls as the air warms during the day; the
       depression of each month is found by bisection so the monthly mean RH equals the table.
    6. Wind speed: lognormal daily and hourly AR(1) factors and an afternoon maximum, scaled to the table's
       annual mean.

    Parameters
    ----------
    case : Case
        Site (latitude, longitude, altitude, time zone) and climate table (``site.climate``).
    year : int, optional
        Calendar year in the site's local time (default ``case.spec.drivers.year``).
    freq : str or Timedelta, default "1h"
        Interval length: a divisor of one hour (``"1min"``, ``"15min"``) or a multiple of one hour (made from
        the hourly year with :func:`resample_mean`).
    seed : int or numpy.random.Generator, optional
        Seed of the random streams (default ``case.spec.case.seed``); the same seed gives the same year. The
        daily and hourly cloud and temperature patterns do not depend on ``freq``, so a 1-minute year with a
        seed averages to the same weather as the 1-hour year with that seed, plus the minute-scale variability.

    Returns
    -------
    pandas.DataFrame
        One row per interval of the local calendar year, index in UTC (interval starts), columns ``ghi``,
        ``dni``, ``dhi`` (W/m2), ``temp_air`` (degC), ``relative_humidity`` (%), ``wind_speed`` (m/s).
        Monthly GHI, diffuse fraction, mean temperature and mean RH (local months) equal the table to
        round-off.

    Raises
    ------
    CaseError
        When the site has no valid climate table.
    ValueError
        For a ``freq`` that neither divides nor is a multiple of one hour, or a table the site's clear sky
        cannot reach.
    """
    table = climate_table(case)
    site = case.spec.site
    year = case.spec.drivers.year if year is None else int(year)
    seed = case.spec.case.seed if seed is None else seed
    step = pd.Timedelta(freq)
    hour = pd.Timedelta("1h")
    if step <= pd.Timedelta(0):
        raise ValueError(f"typical_year: freq must be positive, got {freq!r}")
    if step > hour:
        if step % hour:
            raise ValueError(f"typical_year: freq {freq!r} must divide one hour or be a multiple of it")
        return resample_mean(typical_year(case, year, "1h", seed), step)
    if hour % step:
        raise ValueError(f"typical_year: freq {freq!r} must divide one hour or be a multiple of it")

    g_day, g_hour, g_fine, g_temp, g_rh, g_wind = _rngs(seed)
    index = _year_index(site.timezone, year, step)
    n = len(index)
    local = index.tz_convert(site.timezone)
    month = local.month.to_numpy() - 1                      # 0..11
    t_h = (np.arange(n) + 0.5) * (step / hour)               # hours since the local year start, at midpoints
    day = (local.dayofyear.to_numpy() - 1)                   # 0..365, local calendar day
    n_days = day[-1] + 1
    dayf = t_h / 24.0                                        # fractional day (midpoints)
    dt_h = step / hour

    # 1. clear sky at midpoints
    sp = solar_position(case, index)
    zen = sp["zenith"].to_numpy()
    cs = clear_sky(case, index, sp)
    ghi_cs = cs["ghi"].to_numpy()
    dni_cs = cs["dni"].to_numpy()
    sun = ghi_cs > 0

    # 2. clear-sky index, calibrated to the monthly GHI
    n_hours = int(np.ceil(t_h[-1])) + 1
    z = 1.6 * _ar1(g_day, n_days, 0.55)[day]
    z_hour = _ar1(g_hour, n_hours + 1, float(np.exp(-1 / 3.0)))
    z = z + 0.8 * np.interp(t_h, np.arange(n_hours + 1) + 0.5, z_hour)
    if step < hour:
        z = z + 0.9 * _ar1(g_fine, n, float(np.exp(-(step / pd.Timedelta("10min")))))
    target_wh = np.asarray(table.ghi_kwh_m2) * 1000.0
    m_sun, z_sun, cs_sun = month[sun], z[sun], ghi_cs[sun]
    reach = np.bincount(m_sun, KC_MAX * cs_sun, 12) * dt_h
    if np.any(target_wh >= 0.98 * reach):
        m = int(np.argmax(target_wh / reach))
        raise ValueError(f"typical_year: the table's GHI of month {m + 1} ({target_wh[m] / 1000:g} kWh/m2) is "
                         f"beyond the site's clear sky ({reach[m] / KC_MAX / 1000:.1f} kWh/m2)")

    def monthly_ghi(a):
        return np.bincount(m_sun, KC_MAX * expit(a[m_sun] + z_sun) * cs_sun, 12) * dt_h

    a = _bisect(monthly_ghi, target_wh, -15.0, 15.0, increasing=True)
    ghi = np.zeros(n)
    ghi[sun] = KC_MAX * expit(a[m_sun] + z_sun) * cs_sun

    # 3. diffuse split, calibrated to the monthly diffuse fraction
    doy = local.dayofyear.to_numpy()
    erbs = pvlib.irradiance.erbs(ghi[sun], zen[sun], doy[sun])
    dhi_erbs = np.asarray(erbs["dhi"], float)
    g = ghi[sun]
    f0 = np.clip(np.divide(dhi_erbs, g, out=np.ones_like(g), where=g > 0), 1e-6, 1 - 1e-9)
    cosz = np.cos(np.radians(zen[sun]))
    low = zen[sun] >= MAX_ZENITH_DEG
    f_lo = np.clip(1.0 - dni_cs[sun] * cosz / np.maximum(g, 1e-9), 0.0, 1.0)
    lf0 = logit(f0)

    def frac(d):
        f = np.maximum(expit(lf0 + d[m_sun]), f_lo)
        return np.where(low, 1.0, f)

    def monthly_df(d):
        return np.bincount(m_sun, frac(d) * g, 12) / np.bincount(m_sun, g, 12)

    target_df = np.asarray(table.diffuse_fraction)
    d = _bisect(monthly_df, target_df, -20.0, 20.0, increasing=True)
    got = monthly_df(d)
    if np.any(np.abs(got - target_df) > 0.005):
        m = int(np.argmax(np.abs(got - target_df)))
        raise ValueError(f"typical_year: the diffuse fraction {target_df[m]:g} of month {m + 1} cannot be "
                         f"reached with this sky (got {got[m]:.3f})")
    dhi = ghi.copy()
    dhi[sun] = frac(d) * g
    dni = np.zeros(n)
    dni[sun] = np.where(low, 0.0, (g - dhi[sun]) / np.maximum(cosz, 1e-3))

    # daily clear-sky index (cloudiness) for temperature and humidity
    kc_day = np.bincount(day, ghi, n_days) / np.maximum(np.bincount(day, ghi_cs, n_days), 1e-9)
    day_centre = np.arange(n_days) + 0.5
    day_month = np.asarray(pd.date_range(f"{year}-01-01", periods=n_days, freq="D").month) - 1

    # 4. air temperature
    t_mean = np.asarray(table.temp_air_mean_degc)
    spread = np.asarray(table.temp_air_max_degc) - np.asarray(table.temp_air_min_degc)
    dtr_m = np.clip(0.35 * spread, 4.0, 12.0)                         # mean diurnal range, K
    sigma_m = np.maximum((spread / 2 - dtr_m / 2) / 2.2, 0.5)         # day-to-day std, K
    mid_month = np.array([pd.Timestamp(year, m + 1, 15).dayofyear - 0.5 for m in range(12)])
    nodes_x = np.concatenate([mid_month - n_days, mid_month, mid_month + n_days])
    vals = t_mean.copy()
    for _ in range(6):  # baseline through mid-month nodes whose monthly means equal the table
        base_d = np.interp(day_centre, nodes_x, np.tile(vals, 3))
        vals = vals + t_mean - np.bincount(day_month, base_d, 12) / np.bincount(day_month, None, 12)
    base_d = np.interp(day_centre, nodes_x, np.tile(vals, 3))
    anom_d = sigma_m[day_month] * _ar1(g_temp, n_days, 0.7)
    dtr_d = dtr_m[day_month] * np.clip(0.55 + 0.5 * kc_day, 0.5, 1.1)
    t_day = np.interp(dayf, day_centre, base_d + anom_d)               # daily mean level, degC
    dtr = np.interp(dayf, day_centre, dtr_d)
    lat = np.radians(site.latitude_deg)
    decl = pvlib.solarposition.declination_spencer71(np.arange(1, n_days + 1))
    ws = np.degrees(np.arccos(np.clip(-np.tan(lat) * np.tan(decl), -1, 1)))
    sunrise = np.interp(dayf, day_centre, 12 - ws / 15)               # solar hours
    mid = index + step / 2
    utc_h = (mid.hour + mid.minute / 60 + mid.second / 3600).to_numpy()
    h_solar = np.mod(utc_h + site.longitude_deg / 15 + sp["equation_of_time"].to_numpy() / 60, 24)
    t_max_h = 14.5
    rising = (h_solar >= sunrise) & (h_solar <= t_max_h)
    h_after = np.where(h_solar > t_max_h, h_solar, h_solar + 24)
    shape = np.where(rising, -np.cos(np.pi * (h_solar - sunrise) / (t_max_h - sunrise)),
                     np.cos(np.pi * (h_after - t_max_h) / (sunrise + 24 - t_max_h)))
    temp = t_day + 0.5 * dtr * shape
    cnt = np.bincount(month, None, 12)
    temp += (t_mean - np.bincount(month, temp, 12) / cnt)[month]

    # 5. relative humidity from a daily dew point
    z_rh = _ar1(g_rh, n_days, 0.6)
    dep_var = np.interp(dayf, day_centre, 3.0 * (kc_day - 0.55) + 1.5 * z_rh)
    t_level = np.interp(dayf, day_centre, np.bincount(day, temp, n_days) / np.bincount(day, None, n_days))
    es_t = _esat(temp)

    def rh_of(dep_m):
        td = t_level - np.maximum(dep_m[month] + dep_var, 0.0)
        return np.minimum(100.0 * _esat(td) / es_t, 100.0)

    def monthly_rh(dep_m):
        return np.bincount(month, rh_of(dep_m), 12) / cnt

    dep = _bisect(monthly_rh, np.asarray(table.relative_humidity_mean_percent, float), -10.0, 40.0,
                  increasing=False)
    rh = rh_of(dep)

    # 6. wind speed
    w = np.exp(0.35 * _ar1(g_wind, n_days, 0.6))[day]
    w = w * np.exp(0.2 * np.interp(t_h, np.arange(n_hours + 1) + 0.5, _ar1(g_wind, n_hours + 1, 0.8)))
    w = w * (1 + 0.25 * np.cos(2 * np.pi * (h_solar - 14.0) / 24))
    wind = w * table.wind_speed_mean_m_s / w.mean()

    df = pd.DataFrame({"ghi": ghi, "dni": dni, "dhi": dhi, "temp_air": temp, "relative_humidity": rh,
                       "wind_speed": wind}, index=index)
    df.index.name = "time"
    df.attrs = {"units": dict(UNITS), "source": f"twin.weather.typical_year, climate '{site.climate}', "
                f"seed {seed if not isinstance(seed, np.random.Generator) else 'Generator'}",
                "convention": "interval-start means, UTC"}
    return df


# --------------------------------------------------------------------------------------------------------------
# readers

KINDS = ("epw", "tmy3", "pvgis", "csv")


def _sniff(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".epw":
        return "epw"
    if suffix == ".json":
        return "pvgis"
    if suffix == ".csv":
        with open(path, errors="replace") as fh:
            first, second = fh.readline(), fh.readline()
        if second.startswith("Date (MM/DD/YYYY)"):
            return "tmy3"
        if first.startswith("Latitude"):
            return "pvgis"
        return "csv"
    raise WeatherFileError(f"{path}: cannot tell the format from the suffix '{suffix}': pass kind= one of {KINDS}")


def _coerce_year(df: pd.DataFrame, year: int, path: Path) -> pd.DataFrame:
    """Re-label a typical year (months possibly from different years) to one calendar year, in its own tz."""
    idx = df.index
    leap = pd.Timestamp(year, 1, 1).is_leap_year
    feb29 = (idx.month == 2) & (idx.day == 29)
    if feb29.any() and not leap:
        warnings.warn(f"{path}: 29 February dropped to fit the non-leap year {year}", stacklevel=3)
        df, idx = df[~feb29], idx[~feb29]
    new = pd.to_datetime(pd.DataFrame({"year": year, "month": idx.month, "day": idx.day, "hour": idx.hour,
                                       "minute": idx.minute}))
    new = pd.DatetimeIndex(new).tz_localize(idx.tz)
    out = df.set_axis(new)
    if leap and not feb29.any():
        feb28 = (new.month == 2) & (new.day == 28)
        if feb28.any():
            warnings.warn(f"{path}: 29 February of the leap year {year} copied from 28 February", stacklevel=3)
            extra = out[feb28].set_axis(out.index[feb28] + pd.Timedelta("1D"))
            out = pd.concat([out, extra]).sort_index()
    return out


def _read_known(path: Path, kind: str) -> tuple[pd.DataFrame, bool]:
    """(data, interval_end) with pvlib's readers; pvlib's own labelling conventions handled here."""
    try:
        if kind == "epw":
            data, _ = pvlib.iotools.read_epw(path)
            return data, False      # pvlib already labels EPW hour h (ending at h) by its start h-1
        if kind == "tmy3":
            data, _ = pvlib.iotools.read_tmy3(path, map_variables=True)
            return data, True       # TMY3 labels each hour by its end (01:00 ... 24:00)
        data, _ = pvlib.iotools.read_pvgis_tmy(path, map_variables=True)
        return data, False          # PVGIS TMY: hour HH:00 UTC taken as the start of its hour (assumption, L)
    except WeatherFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parse failure becomes a one-line message naming the file
        msg = " ".join(str(exc).split())[:200]
        raise WeatherFileError(f"{path}: not a readable {kind.upper()} file ({type(exc).__name__}: {msg})") from None


def _read_csv(path: Path, column_map: dict | None, tz: str | None) -> pd.DataFrame:
    try:
        raw = pd.read_csv(path)
    except Exception as exc:  # noqa: BLE001
        raise WeatherFileError(f"{path}: not a readable CSV file ({' '.join(str(exc).split())[:200]})") from None
    cmap = dict(column_map or {})
    tcol = cmap.pop("time", raw.columns[0])
    if tcol not in raw.columns:
        raise WeatherFileError(f"{path}: no time column '{tcol}' (columns: {list(raw.columns)})")
    try:
        times = pd.to_datetime(raw[tcol], format="ISO8601")
    except Exception as exc:  # noqa: BLE001
        raise WeatherFileError(f"{path}: column '{tcol}' does not hold timestamps "
                               f"({' '.join(str(exc).split())[:150]})") from None
    idx = pd.DatetimeIndex(times)
    if idx.tz is None:
        if tz is None:
            raise WeatherFileError(f"{path}: timestamps in column '{tcol}' have no time zone: pass tz= "
                                   "(for example tz='Asia/Shanghai')")
        try:
            idx = idx.tz_localize(tz, ambiguous="raise", nonexistent="raise")
        except Exception as exc:  # noqa: BLE001
            raise WeatherFileError(f"{path}: cannot place the timestamps in time zone {tz!r} "
                                   f"({' '.join(str(exc).split())[:150]})") from None
    unknown = [v for v in cmap.values() if v not in raw.columns]
    if unknown:
        raise WeatherFileError(f"{path}: column_map names columns not in the file: {unknown} "
                               f"(columns: {list(raw.columns)})")
    data = raw.rename(columns={v: k for k, v in cmap.items()}).drop(columns=[tcol], errors="ignore")
    return data.set_axis(idx)


def _check(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Checks every weather table passes; returns it with the six columns, in UTC."""
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise WeatherFileError(f"{path}: missing columns {missing} (found {list(df.columns)}); "
                               "map them with column_map={ours: theirs}")
    df = df[list(COLUMNS)].apply(pd.to_numeric, errors="coerce").astype(float)
    idx = df.index
    if idx.tz is None:
        raise WeatherFileError(f"{path}: timestamps have no time zone: pass tz=")
    if len(idx) < 2:
        raise WeatherFileError(f"{path}: fewer than two rows")
    diff = np.diff(idx.asi8)
    if np.any(diff < 0):
        k = int(np.argmax(diff < 0))
        raise WeatherFileError(f"{path}: timestamps not in time order: {idx[k + 1]} follows {idx[k]} (row {k + 2})")
    if np.any(diff == 0):
        k = int(np.argmax(diff == 0))
        raise WeatherFileError(f"{path}: duplicated timestamp {idx[k]} (rows {k + 1} and {k + 2})")
    step = int(np.median(diff))
    if np.any(diff != step):
        k = int(np.argmax(diff != step))
        raise WeatherFileError(f"{path}: gap or irregular step after {idx[k]}: next timestamp {idx[k + 1]}, "
                               f"expected {idx[k] + pd.Timedelta(step)} (step {pd.Timedelta(step)})")
    for c in COLUMNS:
        bad = df[c].isna().to_numpy()
        if bad.any():
            raise WeatherFileError(f"{path}: missing or non-numeric value in column '{c}' at {idx[int(np.argmax(bad))]}")

    def impossible(c, mask, what):
        if mask.any():
            k = int(np.argmax(mask))
            raise WeatherFileError(f"{path}: physically impossible {c} = {df[c].iloc[k]:g} {UNITS[c]} at {idx[k]} "
                                   f"({what})")

    for c in ("ghi", "dni", "dhi"):
        v = df[c].to_numpy()
        impossible(c, v < -IRR_NOISE_WM2, f"below -{IRR_NOISE_WM2:g} W/m2")
        impossible(c, v > 1500, "above 1500 W/m2")
    impossible("temp_air", (df["temp_air"] < -60).to_numpy() | (df["temp_air"] > 60).to_numpy(),
               "outside -60..60 degC")
    rh = df["relative_humidity"].to_numpy()
    impossible("relative_humidity", (rh < 0) | (rh > 110), "outside 0..110 %")
    impossible("wind_speed", df["wind_speed"].to_numpy() < 0, "negative")
    impossible("wind_speed", df["wind_speed"].to_numpy() > 75, "above 75 m/s")
    df[["ghi", "dni", "dhi"]] = df[["ghi", "dni", "dhi"]].clip(lower=0.0)   # night offsets of a few W/m2
    df["relative_humidity"] = df["relative_humidity"].clip(upper=100.0)
    out = df.tz_convert("UTC")
    out.index.name = "time"
    out.attrs = {"units": dict(UNITS), "source": str(path), "convention": "interval-start means, UTC"}
    return out


def read_weather(path: str | Path, case: Case | None = None, *, kind: str | None = None,
                 column_map: dict[str, str] | None = None, tz: str | None = None,
                 interval: str = "start") -> pd.DataFrame:
    """Read a weather file into the twin's convention (interval-start means, UTC, pvlib column names).

    Formats, told by ``kind`` or the file (suffix, then the header of a ``.csv``):

    - ``"epw"``: EnergyPlus weather, :func:`pvlib.iotools.read_epw`. EPW labels hour h as the hour ending at
      h; pvlib already labels it by its start, so no further shift.
    - ``"tmy3"``: NSRDB TMY3, :func:`pvlib.iotools.read_tmy3`; labelled by the hour's end, shifted back 1 h.
    - ``"pvgis"``: PVGIS TMY (csv, json or epw), :func:`pvlib.iotools.read_pvgis_tmy`; UTC, HH:00 taken as the
      start of the hour (assumption).
    - ``"csv"``: a plain CSV with a time column (``column_map["time"]``, default the first column) and our six
      columns, named directly or through ``column_map``; naive timestamps need ``tz``; ``interval="end"``
      when each row is labelled by the end of its interval (shifted back one step).

    Typical-year files (EPW, TMY3, PVGIS), whose months come from different years, are re-labelled to one year:
    the case's ``drivers.year`` when a case is given, else the first row's year (29 February dropped or copied
    from 28 February, with a warning). Irradiance between -10 and 0 W/m2 (sensor night offset) is set to 0 and
    RH between 100 and 110 % to 100; anything beyond is rejected.

    Parameters
    ----------
    path : str or Path
        The file.
    case : Case, optional
        Supplies the year typical-year files are re-labelled to.
    kind : {"epw", "tmy3", "pvgis", "csv"}, optional
        The format, when the file does not tell.
    column_map : dict, optional
        Our column name (``ghi``, ..., ``time``) -> the file's column name.
    tz : str, optional
        IANA time zone of naive timestamps (CSV); required when they are naive.
    interval : {"start", "end"}, default "start"
        Whether a CSV row's timestamp is the start or the end of its interval; the other formats have a fixed
        convention and accept only the default.

    Returns
    -------
    pandas.DataFrame
        Columns ``ghi``, ``dni``, ``dhi`` (W/m2), ``temp_air`` (degC), ``relative_humidity`` (%), ``wind_speed``
        (m/s), index tz-aware UTC interval starts.

    Raises
    ------
    WeatherFileError (a ValueError)
        One line naming the file and the problem: unreadable file, missing columns (named), naive timestamps
        without ``tz``, non-monotonic, duplicated or missing timestamps (where), physically impossible values
        (which, where).
    """
    path = Path(path)
    if not path.is_file():
        raise WeatherFileError(f"{path}: file not found")
    if interval not in ("start", "end"):
        raise WeatherFileError(f"{path}: interval must be 'start' or 'end', got {interval!r}")
    kind = _sniff(path) if kind is None else kind.lower()
    if kind not in KINDS:
        raise WeatherFileError(f"{path}: unknown kind {kind!r}, expected one of {KINDS}")
    if kind == "csv":
        data = _read_csv(path, column_map, tz)
        if interval == "end" and len(data.index) >= 2:
            data = data.set_axis(data.index - (data.index[1] - data.index[0]))
    else:
        if interval != "start":
            raise WeatherFileError(f"{path}: interval applies to plain CSV files; the {kind.upper()} format fixes "
                                   "its own labelling")
        data, end = _read_known(path, kind)
        if column_map:
            data = data.rename(columns={v: k for k, v in column_map.items() if k != "time"})
        if end:
            data = data.set_axis(data.index - pd.Timedelta("1h"))
        years = data.index.year
        year = case.spec.drivers.year if case is not None else int(years[0])
        if case is not None or (years != years[0]).any():
            data = _coerce_year(data, year, path)
    return _check(data, path)
