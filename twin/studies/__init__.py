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
    extra: list = field(default_factory=list)  # further results of the same study (e.g. other load scenarios)


# study name -> module under twin.studies, in the order ``twin run`` runs them (imported when used)
STUDIES = {"loadflow": "loadflow", "shortcircuit": "shortcircuit", "contingency": "contingency",
           "drivers": "drivers", "battery": "battery", "timeseries": "timeseries",
           "switchover": "switchover", "ridethrough": "ridethrough", "swing": "swing"}


def names() -> list[str]:
    return list(STUDIES)


def check(name: str, case) -> None:
    """Run a study's input check (its module's ``check(case)``, if it has one) without running the study."""
    import importlib

    fn = getattr(importlib.import_module(f"{__name__}.{STUDIES[name]}"), "check", None)
    if fn is not None:
        fn(case)


def get(name: str) -> Callable:
    """The ``run(case, net=None)`` function of a study."""
    import importlib

    if name not in STUDIES:
        raise KeyError(f"no study '{name}': known studies are {names()}")
    return importlib.import_module(f"{__name__}.{STUDIES[name]}").run
