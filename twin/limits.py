"""Limit checks: one row per check, the same columns in every study (``checks.csv``).

Columns: ``study, element, quantity, value, limit, unit, margin, status, criterion`` plus ``scenario`` (the
operating point, outage or fault case the row belongs to; empty when there is none).

``margin`` is signed and in the row's unit: positive means inside the limit (PASS), negative outside (FAIL).
A PASS whose margin is smaller than ``warn_margin_fraction`` of the limit is reported as WARN. A few checks are
advisory only (``advisory=True``): they WARN instead of FAIL (for example the power factor that only changes
the bill).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

COLUMNS = ["study", "scenario", "element", "quantity", "value", "limit", "unit", "margin", "status", "criterion"]
STATUSES = ("PASS", "WARN", "FAIL")


@dataclass
class Checker:
    """Collects check rows for one study.

    Parameters
    ----------
    study : str
        Study name written in every row.
    warn_margin_fraction : float
        A PASS within this fraction of its limit is a WARN (criteria file, ``warn_margin_fraction``).
    """

    study: str
    warn_margin_fraction: float = 0.05

    def __post_init__(self):
        self.rows: list[dict] = []

    def _add(self, scenario, element, quantity, value, limit, unit, margin, criterion, advisory=False, scale=None):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            status = "FAIL"
            margin = float("nan")
        elif margin < 0:
            status = "WARN" if advisory else "FAIL"
        else:
            ref = abs(scale if scale is not None else limit)
            status = "WARN" if margin < self.warn_margin_fraction * ref else "PASS"
        self.rows.append(dict(study=self.study, scenario=scenario, element=element, quantity=quantity,
                              value=float(value) if value is not None else float("nan"), limit=float(limit),
                              unit=unit, margin=float(margin), status=status, criterion=criterion))

    def upper(self, scenario, element, quantity, value, limit, unit, criterion, *, advisory=False):
        """``value <= limit``."""
        self._add(scenario, element, quantity, value, limit, unit, limit - value if value is not None else 0.0,
                  criterion, advisory)

    def lower(self, scenario, element, quantity, value, limit, unit, criterion, *, advisory=False):
        """``value >= limit``."""
        self._add(scenario, element, quantity, value, limit, unit, value - limit if value is not None else 0.0,
                  criterion, advisory)

    def band(self, scenario, element, quantity, value, lo, hi, unit, criterion):
        """``lo <= value <= hi``: one row, against the nearer limit; WARN scale is the band half-width."""
        if value is None or math.isnan(value):
            self._add(scenario, element, quantity, value, hi, unit, 0.0, criterion)
            return
        m_lo, m_hi = value - lo, hi - value
        limit, margin = (lo, m_lo) if m_lo < m_hi else (hi, m_hi)
        self._add(scenario, element, quantity, value, limit, unit, margin, criterion, scale=(hi - lo) / 2)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=COLUMNS)


def counts(checks: pd.DataFrame) -> dict:
    """Counts of rows by status, as ``summary.json`` reports them."""
    out = {"checks": int(len(checks))}
    for s in STATUSES:
        out[s.lower()] = int((checks.status == s).sum()) if len(checks) else 0
    return out
