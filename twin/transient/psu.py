"""Server power-supply hold-up: the DC-link energy fitted to the specification's two hold-up points.

A PSU's bulk capacitor carries the server through an input interruption until its voltage falls below what the
DC-DC stage needs. Specifications give minimum hold-up times at two loads (REFERENCE.md: 10 ms at 100 % and 12 ms
at 70 % load, a common Intel server PSU specification, H). A capacitor alone would give ``t = E / load``, which
cannot meet both points (10 ms at full load would give 14.3 ms at 70 %): the DC-DC stage draws more as the bulk
voltage falls. The affine law ``t = E / (load + l0)`` fits both points exactly and is what :mod:`.sim` uses: the
usable energy ``E`` (s x rated power) drains at ``load + l0`` (rated power = 1) while the input is lost, and at that
rate scaled by the input's shortfall while the input is only partly lost.
"""

from __future__ import annotations

import numpy as np

__all__ = ["fit_holdup", "holdup_s"]


def fit_holdup(holdup_ms, load_fraction) -> tuple[float, float]:
    """Usable DC-link energy and equivalent extra drain fitted to two hold-up points.

    Parameters
    ----------
    holdup_ms : sequence of 2 floats
        Hold-up times in ms at the two loads.
    load_fraction : sequence of 2 floats
        The loads, as fractions of the PSU rating (0-1].

    Returns
    -------
    (energy_s, l0) : tuple of float
        Usable energy in seconds at rated power, and the extra drain ``l0`` in fractions of rated power, so that
        ``holdup = energy_s / (load + l0)``.
    """
    (t1, t2), (l1, l2) = np.asarray(holdup_ms, float) / 1000.0, np.asarray(load_fraction, float)
    if not (np.isfinite([t1, t2, l1, l2]).all() and t1 > 0 and t2 > 0 and 0 < l1 <= 1 and 0 < l2 <= 1):
        raise ValueError(f"hold-up points must be positive times at loads in (0, 1], got {holdup_ms} ms at "
                         f"{load_fraction}")
    if l1 == l2 or (t1 - t2) * (l1 - l2) >= 0:
        raise ValueError(f"hold-up must be longer at the lighter load: got {holdup_ms} ms at {load_fraction}")
    l0 = (t2 * l2 - t1 * l1) / (t1 - t2)
    if l0 < 0:
        raise ValueError(f"hold-up points {holdup_ms} ms at {load_fraction} rise faster than 1/load: a DC link "
                         "cannot give them (the fitted extra drain would be negative)")
    return float(t1 * (l1 + l0)), float(l0)


def holdup_s(load_fraction, energy_s: float, l0: float):
    """Hold-up time in s at a load (fraction of the PSU rating, array-like) from :func:`fit_holdup`'s figures."""
    return energy_s / (np.asarray(load_fraction, float) + l0)
