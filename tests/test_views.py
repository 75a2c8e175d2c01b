"""Plot helpers: the load-duration curve is right, and every view draws what it is given."""

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import xarray as xr  # noqa: E402

from twin import views  # noqa: E402


def _ds():
    t = pd.date_range("2025-01-01", periods=24 * 60, freq="1h")  # 60 days, naive UTC as the studies store it
    p = 5 + np.sin(np.arange(len(t)) * 2 * np.pi / 24)
    return xr.Dataset({"p_mw": ("time", p, {"units": "MW", "long_name": "power"}),
                       "h_mw": (("time", "hall"), np.c_[p, 2 * p], {"units": "MW", "long_name": "per hall"})},
                      coords={"time": t})


def test_load_duration_is_sorted_and_spans_the_period():
    ds = _ds()
    h, v = views.load_duration(ds.p_mw)
    assert np.all(np.diff(v) <= 0) and v[0] == ds.p_mw.max() and v[-1] == ds.p_mw.min()
    assert h[-1] == len(ds.time) * 1.0  # hours
    h2, v2 = views.load_duration(ds.h_mw)  # summed over halls
    np.testing.assert_allclose(v2, 3 * v)


def test_views_draw_their_data():
    ds = _ds()
    fig = views.plot_week(ds, ["p_mw", "h_mw"], "2025-01-05", tz="Asia/Shanghai")
    lines = [ln for ax in fig.axes for ln in ax.get_lines()]
    assert len(lines) == 2 and len(lines[0].get_xdata()) == 7 * 24
    ax = views.plot_month_hour(ds.p_mw, tz="Asia/Shanghai")
    img = np.ma.filled(ax.get_images()[0].get_array(), np.nan)
    assert img.shape == (12, 24) and np.isfinite(img[0]).all() and np.isnan(img[5]).all()  # only Jan-Mar have data
    ax = views.plot_load_duration({"p": ds.p_mw}, limit=5.5)
    assert len(ax.get_lines()) == 2
