"""Weather: the synthetic typical year against the Shanghai climate table, the interval-start convention, and the
readers on generated EPW, TMY3 and CSV files (good and bad)."""

import numpy as np
import pandas as pd
import pytest
from conftest import write_variant

from twin.case import CaseError, load_case
from twin.weather import (
    COLUMNS,
    KC_MAX,
    WeatherFileError,
    clear_sky,
    climate_table,
    read_weather,
    resample_mean,
    solar_position,
    typical_year,
)

TZ = "Asia/Shanghai"


def monthly(df: pd.DataFrame) -> pd.DataFrame:
    """Monthly GHI (kWh/m2), diffuse fraction, mean temperature and RH, by local month."""
    loc = df.tz_convert(TZ)
    hours = (loc.index[1] - loc.index[0]) / pd.Timedelta("1h")
    g = loc.groupby(loc.index.month)
    return pd.DataFrame({"ghi": g["ghi"].sum() * hours / 1000, "df": g["dhi"].sum() / g["ghi"].sum(),
                         "temp": g["temp_air"].mean(), "rh": g["relative_humidity"].mean()})


def assert_matches_table(df, table):
    st = monthly(df)
    ghi_err = (st["ghi"].to_numpy() / np.array(table.ghi_kwh_m2) - 1)
    df_err = st["df"].to_numpy() - np.array(table.diffuse_fraction)
    t_err = st["temp"].to_numpy() - np.array(table.temp_air_mean_degc)
    rh_err = st["rh"].to_numpy() - np.array(table.relative_humidity_mean_percent)
    assert np.abs(ghi_err).max() < 0.03, ghi_err
    assert np.abs(df_err).max() < 0.05, df_err
    assert np.abs(t_err).max() < 0.5, t_err
    assert np.abs(rh_err).max() < 2.0, rh_err


@pytest.fixture(scope="module")
def case():
    return load_case("shanghai_campus")


@pytest.fixture(scope="module")
def table(case):
    return climate_table(case)


@pytest.fixture(scope="module")
def year_1h(case):
    return typical_year(case)


# ------------------------------------------------------------------------------------------------------------
# the table and the synthetic year


def test_climate_table_is_the_reference(table):
    assert table.ghi_kwh_m2[6] == 148.3 and sum(table.ghi_kwh_m2) == pytest.approx(1242, abs=1)
    assert table.diffuse_fraction[2] == 0.66 and table.temp_air_mean_degc[0] == 4.3
    assert "583670" in table.source


def test_missing_climate_table_names_key_and_folder(tmp_path):
    p = write_variant(tmp_path, 'climate = "shanghai"', 'climate = "atlantis"')
    with pytest.raises(CaseError, match=r"site\.climate.*climate.*atlantis"):
        typical_year(load_case(p))
    p = write_variant(tmp_path, 'climate = "shanghai"', "", name="noclimate.toml")
    with pytest.raises(CaseError, match=r"site\.climate.*models/climate.*found none"):
        typical_year(load_case(p))


def test_bad_climate_table_names_file_and_key(tmp_path):
    (tmp_path / "models" / "climate").mkdir(parents=True)
    from twin.paths import models_dir

    text = (models_dir() / "climate" / "shanghai.toml").read_text()
    (tmp_path / "models" / "climate" / "shanghai.toml").write_text(text.replace("66.1, 66.2,", "66.1,"))
    p = write_variant(tmp_path, "x", "x")
    with pytest.raises(CaseError, match=r"shanghai\.toml.*ghi_kwh_m2"):
        typical_year(load_case(p))


def test_year_layout_and_convention(case, year_1h):
    df = year_1h
    assert list(df.columns) == list(COLUMNS)
    assert str(df.index.tz) == "UTC" and len(df) == 8760 and df.index.is_monotonic_increasing
    assert df.index[0] == pd.Timestamp("2025-01-01 00:00", tz=TZ)
    assert df.index[-1] == pd.Timestamp("2025-12-31 23:00", tz=TZ)
    assert df.attrs["units"]["ghi"] == "W/m2"


@pytest.mark.parametrize("seed", [1, 7, 2024])
def test_monthly_statistics_match_table_hourly(case, table, seed):
    assert_matches_table(typical_year(case, seed=seed), table)


def test_monthly_statistics_match_table_minutely(case, table, year_1h):
    df = typical_year(case, freq="1min")
    assert len(df) == 525600
    assert_matches_table(df, table)
    hourly = resample_mean(df, "1h")
    assert_matches_table(hourly, table)
    # same seed: the minute year averages to the hourly year's weather (plus minute-scale variability)
    assert np.corrcoef(hourly["ghi"], year_1h["ghi"])[0, 1] > 0.9
    assert np.corrcoef(hourly["temp_air"], year_1h["temp_air"])[0, 1] > 0.99
    # minute-scale variability exists: within-hour std of GHI is not zero on broken-cloud hours
    within = df["ghi"].groupby(df.index.floor("1h")).std()
    assert within.quantile(0.9) > 20


def test_physical_bounds(case, year_1h):
    df = year_1h
    cs = clear_sky(case, df.index)
    assert (df["ghi"] <= KC_MAX * cs["ghi"] + 1e-9).all()
    assert (df["ghi"][cs["ghi"] == 0] == 0).all()
    assert (df["dhi"] <= df["ghi"] + 1e-9).all() and (df["dhi"] >= 0).all()
    assert (df["dni"] >= 0).all() and (df["dni"] <= cs["dni"] * 1.001 + 1e-6).all()
    zen = np.radians(solar_position(case, df.index)["zenith"])
    closure = df["dhi"] + df["dni"] * np.cos(zen)
    assert np.allclose(closure, df["ghi"], atol=1e-6)
    assert df["relative_humidity"].between(0, 100).all() and (df["wind_speed"] >= 0).all()
    assert df["temp_air"].between(-20, 45).all()


def test_daily_cycles(year_1h):
    loc = year_1h.tz_convert(TZ)
    by_hour = loc.groupby(loc.index.hour).mean()
    assert 4 <= by_hour["temp_air"].idxmin() <= 7
    assert 13 <= by_hour["temp_air"].idxmax() <= 16
    assert by_hour["relative_humidity"].idxmin() in range(12, 17)
    assert np.corrcoef(by_hour["temp_air"], by_hour["relative_humidity"])[0, 1] < -0.8
    # day-to-day persistence of cloudiness
    daily = loc["ghi"].resample("1D").sum()
    assert 0.1 < daily.autocorr(1) < 0.9


def test_reproducible(case, year_1h):
    again = typical_year(case)
    pd.testing.assert_frame_equal(year_1h, again)
    other = typical_year(case, seed=case.spec.case.seed + 1)
    assert not np.allclose(other["ghi"], year_1h["ghi"])


def test_freq_multiple_of_an_hour(case, year_1h):
    three = typical_year(case, freq="3h")
    assert len(three) == 2920
    pd.testing.assert_frame_equal(three, resample_mean(year_1h, "3h"))
    with pytest.raises(ValueError, match="divide one hour"):
        typical_year(case, freq="7min")


def test_interval_start_clear_sky(case):
    """The value at t is the mean over [t, t + step): a clear-sky day at 1 h, from midpoints, integrates to
    pvlib's clear sky at 1-minute midpoints within 1 %."""
    from pvlib.location import Location

    s = case.spec.site
    loc = Location(s.latitude_deg, s.longitude_deg, tz=s.timezone, altitude=s.altitude_m)
    for day in ("2025-03-21", "2025-06-21", "2025-12-21"):
        hours = pd.date_range(day, periods=24, freq="1h", tz=TZ).tz_convert("UTC")
        ours = clear_sky(case, hours)
        fine = pd.date_range(day, periods=1440, freq="1min", tz=TZ) + pd.Timedelta("30s")
        sp = loc.get_solarposition(fine, method="nrel_numba")  # as twin.weather: no reload of pvlib's spa
        ref = loc.get_clearsky(fine, model="ineichen", solar_position=sp)
        assert ours["ghi"].sum() == pytest.approx(ref["ghi"].sum() / 60, rel=0.01)
        # and hour by hour the 1-h value is the mean of its own hour, not the previous one
        ref_h = ref["ghi"].to_numpy().reshape(24, 60).mean(axis=1)
        noon = int(np.argmax(ref_h))
        assert ours["ghi"].iloc[noon] == pytest.approx(ref_h[noon], rel=0.01)
        assert abs(ours["ghi"].iloc[7] - ref_h[7]) < 0.02 * ref_h[noon]


def test_resample_mean_exact():
    idx = pd.date_range("2025-01-01", periods=180, freq="1min", tz="UTC")
    s = pd.DataFrame({"a": np.random.default_rng(0).random(180)}, index=idx)
    h = resample_mean(s, "1h")
    assert np.allclose(h["a"], s["a"].to_numpy().reshape(3, 60).mean(axis=1))
    with pytest.raises(ValueError, match="not fully covered"):
        resample_mean(s.iloc[:150], "1h")
    with pytest.raises(ValueError, match="multiple"):
        resample_mean(s, "90s")


# ------------------------------------------------------------------------------------------------------------
# readers on generated files

EPW_HEADER = [
    "LOCATION,Shanghai,SH,CHN,IWEC Data,583670,31.17,121.43,8.0,7.0",
    "DESIGN CONDITIONS,0", "TYPICAL/EXTREME PERIODS,0", "GROUND TEMPERATURES,0",
    "HOLIDAYS/DAYLIGHT SAVINGS,No,0,0,0", "COMMENTS 1,synthetic test file", "COMMENTS 2,",
    "DATA PERIODS,1,1,Data,Sunday, 1/ 1,12/31",
]


def epw_row(year, month, day, hour, ghi, temp):
    dni, dhi = 0.5 * ghi, 0.5 * ghi
    return (f"{year},{month},{day},{hour},60,?9?9?9,{temp},{temp - 3},80,101325,0,0,300,{ghi},{dni},{dhi},"
            "0,0,0,0,180,3.0,5,5,20,77777,9,999999999,20,0.1,0,88,0.2,0,0")


def write_epw(path, rows):
    path.write_text("\n".join(EPW_HEADER + rows) + "\n")
    return path


def known_epw(tmp_path):
    """Two days, the second from another year (as in a typical year): GHI = 10 x EPW hour on day 1."""
    rows = [epw_row(1999, 1, 1, h, 10 * h, 5.0 + 0.1 * h) for h in range(1, 25)]
    rows += [epw_row(2003, 1, 2, h, 20 * h, 6.0) for h in range(1, 25)]
    return write_epw(tmp_path / "site.epw", rows)


def test_read_epw_interval_start_utc(tmp_path, case):
    df = read_weather(known_epw(tmp_path))
    assert list(df.columns) == list(COLUMNS) and str(df.index.tz) == "UTC" and len(df) == 48
    # EPW hour 1 is 00:00-01:00 local standard time (UTC+8): labelled by its start, stored in UTC
    assert df.index[0] == pd.Timestamp("1998-12-31 16:00", tz="UTC")
    assert df["ghi"].iloc[0] == 10 and df["temp_air"].iloc[0] == pytest.approx(5.1)
    assert df["ghi"].iloc[24] == 20                 # the 2003 day re-labelled to the first row's year
    df = read_weather(known_epw(tmp_path), case)      # the case's year
    assert df.index[0] == pd.Timestamp("2025-01-01 00:00", tz=TZ)


def test_read_tmy3_interval_end_shifted(tmp_path):
    lines = ['722780,"PHOENIX SKY HARBOR",AZ,-7.0,33.450,-111.983,339',
             "Date (MM/DD/YYYY),Time (HH:MM),GHI (W/m^2),DNI (W/m^2),DHI (W/m^2),Dry-bulb (C),RHum (%),Wspd (m/s)"]
    for h in range(1, 25):
        lines.append(f"01/01/1988,{h:02d}:00,{10 * h},{5 * h},{5 * h},{h / 10:.1f},50,2.0")
    p = tmp_path / "phoenix_tmy3.csv"
    p.write_text("\n".join(lines) + "\n")
    df = read_weather(p)
    # the row labelled 01:00 is the hour 00:00-01:00 local (UTC-7) = 07:00 UTC
    assert df.index[0] == pd.Timestamp("1988-01-01 07:00", tz="UTC") and df["ghi"].iloc[0] == 10
    assert df.index[-1] == pd.Timestamp("1988-01-02 06:00", tz="UTC") and df["ghi"].iloc[-1] == 240


def csv_text(times, ghi=None, temp=None):
    n = len(times)
    ghi = [100.0] * n if ghi is None else ghi
    temp = [20.0] * n if temp is None else temp
    rows = ["timestamp,GHI,DNI,DHI,Tamb,RH,WS"]
    rows += [f"{t},{g},{g / 2},{g / 2},{tt},60,2" for t, g, tt in zip(times, ghi, temp, strict=True)]
    return "\n".join(rows) + "\n"


CMAP = {"time": "timestamp", "ghi": "GHI", "dni": "DNI", "dhi": "DHI", "temp_air": "Tamb",
        "relative_humidity": "RH", "wind_speed": "WS"}


def test_read_csv_tz_and_interval_end(tmp_path):
    times = [f"2025-06-01 {h:02d}:15:00" for h in range(0, 4)]
    times = [f"2025-06-01 00:{m:02d}:00" for m in range(15, 61, 15)[:3]] + ["2025-06-01 01:00:00"]
    p = tmp_path / "meter.csv"
    p.write_text(csv_text(times, ghi=[1.0, 2.0, 3.0, 4.0]))
    df = read_weather(p, column_map=CMAP, tz=TZ)
    assert df.index[0] == pd.Timestamp("2025-06-01 00:15", tz=TZ) and df["ghi"].iloc[0] == 1.0
    end = read_weather(p, column_map=CMAP, tz=TZ, interval="end")
    assert end.index[0] == pd.Timestamp("2025-06-01 00:00", tz=TZ) and end["ghi"].iloc[0] == 1.0
    assert (end.index[1] - end.index[0]) == pd.Timedelta("15min")
    p.write_text(csv_text([t.replace(" ", "T") + "+08:00" for t in times]))
    assert read_weather(p, column_map=CMAP).index[0] == pd.Timestamp("2025-06-01 00:15", tz=TZ)


HOURS = [f"2025-06-01 {h:02d}:00:00" for h in range(6)]


@pytest.mark.parametrize("times, kw, match", [
    (HOURS, {"ghi": [100, 100, -50, 100, 100, 100]}, r"impossible ghi = -50 W/m2 at 2025-06-01 02:00"),
    (HOURS, {"temp": [20, 20, 20, 70, 20, 20]}, r"impossible temp_air = 70 degC .*-60\.\.60"),
    (HOURS[:3] + HOURS[4:], {}, r"gap .* after 2025-06-01 02:00.*next timestamp 2025-06-01 04:00"),
    (HOURS[:3] + HOURS[2:5], {}, r"duplicated timestamp 2025-06-01 02:00"),
    (HOURS[:2] + [HOURS[3], HOURS[2]] + HOURS[4:], {}, r"not in time order: 2025-06-01 02:00"),
])
def test_bad_csv_rejected(tmp_path, times, kw, match):
    p = tmp_path / "bad.csv"
    p.write_text(csv_text(times, **kw))
    with pytest.raises(WeatherFileError, match=match) as err:
        read_weather(p, column_map=CMAP, tz="UTC")
    assert "bad.csv" in str(err.value) and "\n" not in str(err.value)


def test_bad_files_messages(tmp_path):
    p = tmp_path / "w.csv"
    p.write_text(csv_text(HOURS))
    with pytest.raises(WeatherFileError, match=r"w\.csv: timestamps .* no time zone: pass tz="):
        read_weather(p, column_map=CMAP)
    with pytest.raises(WeatherFileError, match=r"missing columns \['ghi', 'dni', 'dhi', 'temp_air'"):
        read_weather(p, tz="UTC")
    with pytest.raises(ValueError, match=r"missing columns \['wind_speed'\]"):
        read_weather(p, tz="UTC", column_map={k: v for k, v in CMAP.items() if k != "wind_speed"})
    with pytest.raises(WeatherFileError, match="column_map names columns not in the file"):
        read_weather(p, tz="UTC", column_map={**CMAP, "ghi": "Global"})
    q = tmp_path / "w.dat"
    q.write_text("x")
    with pytest.raises(WeatherFileError, match=r"w\.dat: cannot tell the format"):
        read_weather(q)
    e = write_epw(tmp_path / "broken.epw", ["1999,1,1,not,an,epw"])
    with pytest.raises(WeatherFileError, match=r"broken\.epw: not a readable EPW file"):
        read_weather(e)
    with pytest.raises(WeatherFileError, match="interval applies to plain CSV"):
        read_weather(known_epw(tmp_path), interval="end")
    with pytest.raises(WeatherFileError, match="file not found"):
        read_weather(tmp_path / "nothing.epw")


def test_read_pvgis_json_typical_year(tmp_path, case):
    """A PVGIS TMY (JSON) whose months come from different years is re-labelled to one year, in UTC."""
    import json

    def hour(t, g):
        return {"time(UTC)": t, "T2m": 10.0, "RH": 70.0, "G(h)": g, "Gb(n)": g / 2, "Gd(h)": g / 2,
                "IR(h)": 300.0, "WS10m": 2.5, "WD10m": 180.0, "SP": 101000.0}

    rows = [hour(f"20070131:{h:02d}00", 10.0 * h) for h in range(24)]
    rows += [hour(f"20120201:{h:02d}00", 5.0 * h) for h in range(24)]
    src = {"inputs": {"location": {"latitude": 31.2, "longitude": 121.5}}, "meta": {"inputs": {}},
           "outputs": {"months_selected": [{"month": 1, "year": 2007}, {"month": 2, "year": 2012}],
                       "tmy_hourly": rows}}
    p = tmp_path / "pvgis_tmy.json"
    p.write_text(json.dumps(src))
    df = read_weather(p, case)
    assert df.index[0] == pd.Timestamp("2025-01-31 00:00", tz="UTC") and len(df) == 48
    assert df["ghi"].iloc[25] == 5.0 and df.index.to_series().diff().iloc[1:].nunique() == 1
