"""Run studies on a case and write their results: NetCDF per study, ``checks.csv``, ``summary.json``, report.

Every file is written atomically (temporary name, then rename), so an interrupted run never leaves a file that
looks complete. The case is loaded and checked before anything is written: bad input changes nothing on disk.
"""

from __future__ import annotations

import copy
import json
import math
import os
import platform
import tempfile
import warnings
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from . import studies as study_registry
from .case import Case, load_case
from .limits import COLUMNS
from .network import build_net

__all__ = ["run_case", "versions", "default_out_dir", "atomic_write_text", "atomic_write_netcdf"]


def versions() -> dict[str, str]:
    """Versions of Python and the libraries that shape the results."""
    out = {"python": platform.python_version()}
    for pkg in ("twin", "pandapower", "numpy", "pandas", "scipy", "xarray", "pvlib", "numba", "h5netcdf"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def default_out_dir(case: Case) -> Path:
    return Path("results") / case.name


def _tmp_in(directory: Path, suffix: str) -> Path:
    fd, name = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=directory)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(name, 0o666 & ~umask)  # mkstemp makes 0600; results are ordinary files
    return Path(name)


def atomic_write_text(path: Path, text: str) -> Path:
    tmp = _tmp_in(path.parent, path.suffix)
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _encoding(ds) -> dict:
    """Lossless compression for long numeric variables (a year at 1 min is 525,600 steps per variable)."""
    enc = {}
    for name, var in ds.data_vars.items():
        if var.size >= 10_000 and var.dtype.kind in "fiub":
            enc[name] = {"compression": "gzip", "compression_opts": 4, "shuffle": True}
    return enc


def atomic_write_netcdf(path: Path, ds) -> Path:
    tmp = _tmp_in(path.parent, ".nc")
    try:
        ds.to_netcdf(tmp, engine="h5netcdf", encoding=_encoding(ds))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _jsonable(obj):
    """Plain JSON types from numpy scalars and nested containers; NaN and infinity become null."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, str):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None  # strict JSON has no NaN or infinity: null means "not applicable / not computed"
    return obj


def run_case(case: Case | str | Path | None = None, study_names: Iterable[str] | None = None,
             out_dir: Path | str | None = None, *, progress: bool = True) -> dict:
    """Run studies on a case and write their results into ``out_dir``.

    Writes ``<study>.nc`` for each study, ``checks.csv`` (all check rows), ``summary.json`` and ``report.html``.

    Parameters
    ----------
    case : Case, str or Path, optional
        A loaded case, a case file or an embedded case name (default: the seed case).
    study_names : iterable of str, optional
        Studies to run (default: every study, :func:`twin.studies.names`).
    out_dir : path, optional
        Output folder (default ``results/<case name>/``), created if needed.
    progress : bool
        Show progress bars.

    Returns
    -------
    dict
        The content of ``summary.json``: ``{"case", "case_sha256", "versions", "studies": {name: figures}}``.
    """
    if not isinstance(case, Case):
        case = load_case(case)
    names = list(study_names) if study_names is not None else study_registry.names()
    funcs = [study_registry.get(n) for n in names]  # unknown study: KeyError before anything is written
    for n in names:  # bad inputs of any study (a weather file, a scenario): CaseError before anything is written
        study_registry.check(n, case)
    out = Path(out_dir) if out_dir is not None else default_out_dir(case)
    out.mkdir(parents=True, exist_ok=True)

    net = build_net(case)
    results = []
    bar = tqdm(list(zip(names, funcs, strict=True)), desc=f"{case.name}", unit="study", disable=not progress)
    for name, fn in bar:
        bar.set_postfix_str(name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = fn(case, copy.deepcopy(net))
        for r in [res, *res.extra]:  # a study may return several results (e.g. one per load scenario)
            atomic_write_netcdf(out / f"{r.name}.nc", r.dataset)
            results.append(r)

    checks = pd.concat([r.checks for r in results], ignore_index=True) if results else pd.DataFrame(columns=COLUMNS)
    checks = checks[COLUMNS]
    tmp = _tmp_in(out, ".csv")
    try:
        checks.to_csv(tmp, index=False, float_format="%.6g")
        os.replace(tmp, out / "checks.csv")
    finally:
        tmp.unlink(missing_ok=True)

    summary = {
        "case": case.name,
        "case_sha256": case.sha256,
        "versions": versions(),
        "studies": {r.name: _jsonable(r.summary) for r in results},
    }
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, allow_nan=False))
    from .report import write_html

    write_html(out, case, summary, checks, {r.name: r.dataset for r in results}, net)
    return summary
