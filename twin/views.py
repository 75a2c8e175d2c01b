"""Plot helpers for time series a person would rather look at than read: a week of every driver, month-by-hour
heat maps and load-duration curves. Each takes an xarray Dataset or DataArray with a ``time`` dimension (UTC, as
stored) and shows it in the site's local time; each returns the matplotlib Axes (or Figure) it drew on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr


def _local_index(da: xr.DataArray, tz: str | None) -> pd.DatetimeIndex:
    idx = pd.DatetimeIndex(da["time"].values)
    if idx.tz is None:
        idx = idx.tz_localize("UTC")
    return idx.tz_convert(tz) if tz else idx


def _label(da: xr.DataArray) -> str:
    name = da.attrs.get("long_name", da.name or "")
    units = da.attrs.get("units", "")
    return f"{name} ({units})" if units else str(name)


def _series(da: xr.DataArray) -> xr.DataArray:
    """Sum over every dimension other than time (for example halls or PV systems)."""
    other = [d for d in da.dims if d != "time"]
    out = da.sum(other) if other else da
    out.attrs = da.attrs
    return out


def plot_week(ds: xr.Dataset, variables: list[str], start, tz: str | None = None, fig=None):
    """One panel per variable over the seven days from ``start`` (local date, for example ``"2025-07-14"``).

    Variables with extra dimensions are summed over them (campus totals).
    """
    import matplotlib.pyplot as plt

    fig = fig or plt.figure(figsize=(11, 1.8 * len(variables) + 0.6))
    axes = fig.subplots(len(variables), 1, sharex=True, squeeze=False)[:, 0]
    for ax, v in zip(axes, variables, strict=True):
        da = _series(ds[v])
        idx = _local_index(da, tz)
        t0 = pd.Timestamp(start, tz=idx.tz)
        sel = (idx >= t0) & (idx < t0 + pd.Timedelta(days=7))
        ax.plot(idx[sel], da.values[sel], lw=0.8)
        ax.set_ylabel(f"{v}\n({da.attrs.get('units', '')})", fontsize=7)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel(f"local time ({tz or 'UTC'})")
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    return fig


def plot_month_hour(da: xr.DataArray, tz: str | None = None, ax=None, cmap: str = "viridis"):
    """Heat map of the mean value by month (rows) and local hour of day (columns)."""
    import matplotlib.pyplot as plt

    da = _series(da)
    idx = _local_index(da, tz)
    df = pd.DataFrame({"v": da.values, "m": idx.month, "h": idx.hour})
    grid = df.pivot_table(index="m", columns="h", values="v", aggfunc="mean").reindex(index=range(1, 13),
                                                                                      columns=range(24))
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 4))
    im = ax.imshow(grid.values, aspect="auto", origin="upper", cmap=cmap, extent=(-0.5, 23.5, 12.5, 0.5))
    ax.set_xlabel(f"hour of day ({tz or 'UTC'})")
    ax.set_ylabel("month")
    ax.set_yticks(range(1, 13))
    ax.figure.colorbar(im, ax=ax, label=_label(da))
    return ax


def load_duration(da: xr.DataArray) -> tuple[np.ndarray, np.ndarray]:
    """(hours, value) of the load-duration curve: values sorted high to low against cumulative hours."""
    da = _series(da)
    idx = pd.DatetimeIndex(da["time"].values)
    dt_h = (idx[1] - idx[0]).total_seconds() / 3600.0 if len(idx) > 1 else 1.0
    v = np.sort(np.asarray(da.values, dtype=float))[::-1]
    return np.arange(1, len(v) + 1) * dt_h, v


def plot_load_duration(arrays: dict[str, xr.DataArray], ax=None, limit: float | None = None,
                       limit_label: str = "limit"):
    """Load-duration curves of several series on one Axes, with an optional horizontal limit (for example the cap)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4))
    units = ""
    for name, da in arrays.items():
        h, v = load_duration(da)
        ax.plot(h, v, label=name)
        units = da.attrs.get("units", units)
    if limit is not None:
        ax.axhline(limit, color="k", ls="--", lw=1, label=limit_label)
    ax.set_xlabel("hours in the year at or above (h)")
    ax.set_ylabel(f"power ({units})" if units else "value")
    ax.grid(alpha=0.3)
    ax.legend()
    return ax
