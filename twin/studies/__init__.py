"""Studies: one module each, every one a function ``run(case, net=None) -> StudyResult``.

A study returns an xarray Dataset (units and long names in attributes) and its rows of limit checks
(:mod:`twin.limits`), plus the key figures that go into ``summary.json``. The registry :data:`STUDIES` is what
``twin run`` runs, in order; later issues add their studies here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd
import xarray as xr


@dataclass
class StudyResult:
    name: str
    dataset: xr.Dataset
    checks: pd.DataFrame
    summary: dict = field(default_factory=dict)


def _registry() -> dict[str, Callable]:
    from . import contingency, loadflow, shortcircuit

    return {"loadflow": loadflow.run, "shortcircuit": shortcircuit.run, "contingency": contingency.run}


def names() -> list[str]:
    return list(_registry())


def get(name: str) -> Callable:
    reg = _registry()
    if name not in reg:
        raise KeyError(f"no study '{name}': known studies are {list(reg)}")
    return reg[name]
