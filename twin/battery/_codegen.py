"""The battery system kernel specialised to one cell parameter set and BMS: table constants compiled in.

Every SOC table of the cell model and of the BMS (OCV, dU/dT, resistances, time constants, SOC taper) is piecewise
linear; on the union of their grids each is ``a + b z`` within a piece, and :func:`piece_tables` writes those
coefficients per piece (:mod:`twin.battery._syskernel` caches an element's piece and evaluates a table with one
multiply-add). The BMS temperature derating with its windows likewise (:func:`derating_tables`); activation energies
that are equal share one Arrhenius factor. :func:`kernel_for` writes the kernel module with these constants to a
cache directory (``$TWIN_KERNEL_CACHE``, else ``~/.cache/twin/kernels``, else the temporary directory), named by a
hash of its source, and imports it; numba caches its compiled code beside it, so a parameter set compiles once per
machine (about a minute for the system kernel, 20-30 s for a single cell's), and later runs start at once.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from .bms import BmsModel
from .params import CellParams

__all__ = ["kernel_for", "kernel_source"]

_BEGIN = "# --- table functions: generated per parameter set"
_END = "# --- end of table functions ---"
_loaded: dict[str, object] = {}


def _f(x: float) -> str:
    return repr(float(x))


def _arr(name: str, a: np.ndarray) -> str:
    body = ", ".join(_f(x) for x in np.ravel(a))
    return f"{name} = np.array([{body}]).reshape({tuple(a.shape)!r})"


def piece_tables(cell: CellParams, bms: BmsModel):
    """The SOC tables on the union of their grids: the grid, each piece's bounds and each table as ``a + b z`` per
    piece (columns in the order of the kernel's CF_* constants: OCV at T_ref, dU/dT, R0, R1, tau1, R2, tau2, BMS
    charge and discharge taper). Beyond the grid's ends every table is constant."""
    keys = (cell.r0_ohm, cell.r1_ohm, cell.tau1_s, cell.r2_ohm, cell.tau2_s)
    rsg = cell.r_soc if cell.r_soc is not None and any(isinstance(t, list) for t in keys) else [0.0, 1.0]
    tables = [(cell.soc, cell.ocv_v), (cell.soc, np.asarray(cell.dudt_mv_per_k) * 1e-3)]
    tables += [(rsg, np.broadcast_to(np.asarray(t, dtype=float), (len(rsg),))) for t in keys]
    tables += [(bms.soc.soc, bms.soc.charge), (bms.soc.soc, bms.soc.discharge)]
    ug = np.unique(np.concatenate([np.asarray(x, dtype=float) for x, _ in tables]))
    m = ug.size
    lo = np.concatenate([[-1e300], ug])
    hi = np.concatenate([ug, [1e300]])
    cf = np.zeros((m + 1, 2 * len(tables)))
    for q, (xs, ys) in enumerate(tables):
        xs = np.asarray(xs, dtype=float)
        ys = np.asarray(ys, dtype=float)
        for k in range(m + 1):
            if k == 0 or k == m:  # beyond the ends: constant
                cf[k, 2 * q] = ys[0] if k == 0 else ys[-1]
                continue
            xl, xr = ug[k - 1], ug[k]
            yl, yr = np.interp(xl, xs, ys), np.interp(xr, xs, ys)
            b = (yr - yl) / (xr - xl)
            cf[k, 2 * q] = yl - b * xl
            cf[k, 2 * q + 1] = b
    return ug, lo, hi, cf


def derating_tables(bms: BmsModel):
    """The BMS derating over the cell temperature (K) on the union of its grid and the charge and discharge windows
    (the factor is zero outside its window, which is closed at both ends in the BMS model and half-open here): the
    grid, each piece's bounds and the charge and discharge factors as ``a + b T`` per piece."""
    t = bms.temperature
    grid = np.asarray(t.t_degc, dtype=float) + 273.15
    win = np.array([bms.t_charge_min_degc, bms.t_charge_max_degc, bms.t_discharge_min_degc,
                    bms.t_discharge_max_degc]) + 273.15
    tg = np.unique(np.concatenate([grid, win]))

    def factor(x, ys, lo, hi):
        return np.where((x >= lo) & (x <= hi), np.interp(x, grid, np.asarray(ys, dtype=float)), 0.0)

    m = tg.size
    lo = np.concatenate([[-1e300], tg])
    hi = np.concatenate([tg, [1e300]])
    cf = np.zeros((m + 1, 4))
    for q, (ys, wl, wh) in enumerate(((t.charge, win[0], win[1]), (t.discharge, win[2], win[3]))):
        for k in range(m + 1):
            xl = tg[0] - 2.0 if k == 0 else tg[k - 1]
            xr = tg[-1] + 2.0 if k == m else tg[k]
            x1, x2 = xl + 0.25 * (xr - xl), xl + 0.75 * (xr - xl)  # inside the piece: its edges may jump
            y1, y2 = factor(x1, ys, wl, wh), factor(x2, ys, wl, wh)
            b = 0.0 if k in (0, m) else (y2 - y1) / (x2 - x1)
            cf[k, 2 * q] = y1 - b * x1
            cf[k, 2 * q + 1] = b
    return tg, lo, hi, cf


def _header(cell: CellParams, bms: BmsModel) -> str:
    out = [f"{_BEGIN} (cell: {cell.description!r}) ---", ""]
    ug, lo, hi, cf = piece_tables(cell, bms)
    out += [_arr("_UG", ug), _arr("_PLO", lo), _arr("_PHI", hi), _arr("_PCF", cf), "", ""]
    tg, tlo, thi, tcf = derating_tables(bms)
    out += [_arr("_TG", tg), _arr("_TLO", tlo), _arr("_THI", thi), _arr("_TCF", tcf)]
    for q, key in enumerate(("_R0", "_R1", "_T1", "_R2", "_T2")):
        a, b = cf[:, 4 + 2 * q], cf[:, 5 + 2 * q]
        const = bool(np.all(b == 0.0) and np.all(a == a[0]))
        out += [f"{key}K = {const}", f"{key}V = {_f(a[0]) if const else '0.0'}"]
    out += [f"_SAME01 = {cell.ea_r0_j_per_mol == cell.ea_r1_j_per_mol}",
            f"_SAME12 = {cell.ea_r1_j_per_mol == cell.ea_r2_j_per_mol}"]
    return "\n".join(out) + "\n"


_LOOP_MARK = "# --- closed-loop kernel (appended to the generated battery kernel module) ---"


def kernel_source(cell: CellParams, bms: BmsModel) -> str:
    """Source of the kernel module specialised to ``cell`` and ``bms``, with the closed-loop kernel of
    :mod:`twin.ems._loopkernel` appended (it calls this module's ``run_system``).

    numba's cache does not follow calls into other modules, so the source of the EMS rules and PCS functions the
    loop calls is hashed into the module's name (a comment line): a change there makes a new module.
    """
    pkg = Path(__file__).parent.parent
    body = (Path(__file__).parent / "_syskernel.py").read_text()
    a = body.index(_BEGIN)
    b = body.index(_END)
    loop = (pkg / "ems" / "_loopkernel.py").read_text()
    deps = hashlib.sha256(((pkg / "ems" / "rules.py").read_text() + (pkg / "pcs.py").read_text()).encode())
    return (body[:a] + _header(cell, bms) + body[b:] + "\n\n" + loop[loop.index(_LOOP_MARK):]
            + f"\n# dependencies: twin.ems.rules + twin.pcs sha256 {deps.hexdigest()[:16]}\n")


def _cache_dir() -> Path:
    for d in (os.environ.get("TWIN_KERNEL_CACHE"), os.path.join(os.path.expanduser("~"), ".cache", "twin", "kernels"),
              os.path.join(tempfile.gettempdir(), f"twin-kernels-{os.getuid() if hasattr(os, 'getuid') else 0}")):
        if not d:
            continue
        try:
            Path(d).mkdir(parents=True, exist_ok=True)
            probe = Path(d) / ".probe"
            probe.write_text("")
            probe.unlink()
            return Path(d)
        except OSError:
            continue
    raise OSError("no writable directory for the battery kernel cache: set TWIN_KERNEL_CACHE")


def load_generated(src: str, prefix: str, what: str):
    """Import the generated kernel module ``src`` from the cache directory (written there first if it is not, named
    ``prefix`` + a hash of the source; numba caches its compiled code beside it), once per process."""
    digest = hashlib.sha256(src.encode()).hexdigest()[:16]
    if digest in _loaded:
        return _loaded[digest]
    name = f"{prefix}{digest}"
    path = _cache_dir() / f"{name}.py"
    if not path.exists() or path.read_text() != src:
        sys.stderr.write(f"twin: compiling the {what} (first use on this machine, up to a minute; cached in "
                         f"{path.parent})\n")
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(src)
        os.replace(tmp, path)
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    _loaded[digest] = mod
    return mod


def kernel_for(cell: CellParams, bms: BmsModel):
    """The kernel module for this cell parameter set and BMS (generated, cached on disk, imported once)."""
    return load_generated(kernel_source(cell, bms), "twin_battery_kernel_",
                          "battery kernel for this cell and BMS parameter set")
