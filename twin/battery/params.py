"""Parameter sets of the equivalent-circuit (ECM) cell model: schema, loading and packing for the numba kernels.

A parameter set lives in ``models/battery/ecm/<name>.toml`` (kind ``"battery/ecm"``), beside but separate from the
nameplate data in ``models/battery/cells/`` that the case loader reads (:class:`twin.case.CellModel`), so the two
schemas never clash. Keys carry their unit; every error is one line naming the file and the key, like the case
loader's (:class:`twin.case.CaseError`).

The model (see :mod:`twin.battery.cell`) is Plett's enhanced equivalent circuit with two RC pairs [1]_:
open-circuit voltage ``OCV(SOC, T) = OCV_ref(SOC) + (T - T_ref) dU/dT(SOC)`` from tables, an optional instantaneous
hysteresis ``-h sgn(I)``, a series resistance ``R0`` and two RC pairs ``(R1, tau1)``, ``(R2, tau2)`` given as tables
over SOC (or scalars) at ``t_ref_degc``, each resistance following Arrhenius in temperature [2]_ with its own
activation energy; the capacitances ``C_i = tau_i / R_i`` do not depend on temperature, so ``tau_i(T)`` scales like
``R_i(T)``. Tables are linear in SOC between their points and constant beyond the first and last point.

References
----------
.. [1] G. L. Plett, *Battery Management Systems, Vol. 1: Battery Modeling*, Artech House, 2015, ch. 2.
.. [2] REFERENCE.md, "LFP cells and battery systems": Arrhenius activation energy of order 20-35 kJ/mol.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import Field, model_validator

from ..case import Case, CaseError, Q, _read_toml, _Strict, _validate

__all__ = ["CellParams", "PackedCell", "load_cell", "pack", "KIND"]

KIND = "battery/ecm"
R_GAS = 8.314462618  # J/(mol K)

SocGrid = list[float]
Table = float | list[float]


def _inc(xs) -> bool:
    return all(b > a for a, b in zip(xs[:-1], xs[1:], strict=True))


class CellParams(_Strict):
    """Equivalent-circuit electro-thermal parameters of one cell (units in the keys).

    SOC tables: ``soc`` is the grid of ``ocv_v`` and ``dudt_mv_per_k``; ``r_soc`` the grid of any resistance or
    time-constant table (a key given as a single number is constant in SOC).
    """

    description: str = ""
    chemistry: str = "LFP"
    capacity_ah: float = Q("capacity in Ah", gt=0, le=2000)
    t_ref_degc: float = Q("reference temperature of the tables in degC", ge=-40, le=80, default=25.0)
    soc: SocGrid = Field(..., min_length=2, description="SOC grid of the OCV and dU/dT tables (0-1, increasing)")
    ocv_v: list[float] = Field(..., min_length=2, description="open-circuit voltage in V at t_ref_degc on the soc "
                                                              "grid, strictly increasing, 0.5-5 V")
    dudt_mv_per_k: list[float] = Field(..., min_length=2, description="entropic coefficient dU/dT in mV/K on the soc "
                                                                      "grid, |dU/dT| <= 5 mV/K")
    hysteresis_v: float = Q("instantaneous hysteresis: OCV offset in V (charge +h, discharge -h)", ge=0, le=0.2,
                            default=0.0)
    r_soc: SocGrid | None = Field(None, min_length=2, description="SOC grid of the resistance and time-constant "
                                                                    "tables (0-1, increasing)")
    r0_ohm: Table = Field(..., description="series resistance in ohm at t_ref_degc, > 0 and <= 10")
    r1_ohm: Table = Field(..., description="first RC pair resistance in ohm at t_ref_degc, > 0 and <= 10")
    tau1_s: Table = Field(..., description="first RC pair time constant in s at t_ref_degc, > 0 and <= 1e5")
    r2_ohm: Table = Field(..., description="second RC pair resistance in ohm at t_ref_degc, > 0 and <= 10")
    tau2_s: Table = Field(..., description="second RC pair time constant in s at t_ref_degc, > 0 and <= 1e5")
    ea_r0_j_per_mol: float = Q("Arrhenius activation energy of R0 in J/mol", ge=0, le=2e5)
    ea_r1_j_per_mol: float = Q("Arrhenius activation energy of R1 (and tau1) in J/mol", ge=0, le=2e5)
    ea_r2_j_per_mol: float = Q("Arrhenius activation energy of R2 (and tau2) in J/mol", ge=0, le=2e5)
    heat_capacity_j_per_k: float = Q("cell heat capacity in J/K (mass x specific heat)", gt=0, le=1e6)
    r_th_k_per_w: float = Q("thermal resistance cell -> ambient in K/W", gt=0, le=1e4)
    v_min: float = Q("discharge cut-off voltage in V", gt=0.5, le=5)
    v_max: float = Q("charge cut-off voltage in V", gt=0.5, le=5)
    i_max_charge_a: float = Q("maximum charge current (magnitude) in A", gt=0, le=1e5)
    i_max_discharge_a: float = Q("maximum discharge current in A", gt=0, le=1e5)
    t_min_degc: float = Q("minimum operating cell temperature in degC", ge=-60, le=60)
    t_max_degc: float = Q("maximum operating cell temperature in degC", ge=0, le=120)

    @model_validator(mode="after")
    def _check_limits(self):
        errs = _table_errors(self)
        if errs:
            key, exp, found = errs[0]
            more = f" (and {len(errs) - 1} more)" if len(errs) > 1 else ""
            raise ValueError(f"{_TABLE_MARK}'{key}': expected {exp}, found {found!r}{more}")
        if not self.v_min < self.v_max:
            raise ValueError(f"{_TABLE_MARK}'v_min': expected less than v_max ({self.v_max}), found {self.v_min}")
        if not self.t_min_degc < self.t_max_degc:
            raise ValueError(f"{_TABLE_MARK}'t_min_degc': expected less than t_max_degc ({self.t_max_degc}), "
                             f"found {self.t_min_degc}")
        return self


def _table_errors(p: CellParams) -> list[tuple[str, str, object]]:
    """Checks of the SOC tables pydantic cannot express field by field: (key, expected, found) per error."""
    errs = []

    def grid(key):
        xs = getattr(p, key)
        if xs is None:
            return None
        if any(x < 0 or x > 1 for x in xs):
            errs.append((key, "an SOC grid within 0-1", xs))
        elif not _inc(xs):
            errs.append((key, "an SOC grid strictly increasing", xs))
        return xs

    soc = grid("soc")
    rsoc = grid("r_soc")
    if len(p.ocv_v) != len(soc):
        errs.append(("ocv_v", f"{len(soc)} values, one per soc point", p.ocv_v))
    elif not _inc(p.ocv_v):
        errs.append(("ocv_v", "OCV strictly increasing in SOC", p.ocv_v))
    elif any(v < 0.5 or v > 5 for v in p.ocv_v):
        errs.append(("ocv_v", "OCV values in 0.5-5 V", p.ocv_v))
    if len(p.dudt_mv_per_k) != len(soc):
        errs.append(("dudt_mv_per_k", f"{len(soc)} values, one per soc point", p.dudt_mv_per_k))
    elif any(abs(x) > 5 for x in p.dudt_mv_per_k):
        errs.append(("dudt_mv_per_k", "|dU/dT| <= 5 mV/K", p.dudt_mv_per_k))
    for key, hi in (("r0_ohm", 10), ("r1_ohm", 10), ("r2_ohm", 10), ("tau1_s", 1e5), ("tau2_s", 1e5)):
        val = getattr(p, key)
        vals = val if isinstance(val, list) else [val]
        if isinstance(val, list):
            if rsoc is None:
                errs.append((key, "a number, or a table with an r_soc grid", val))
                continue
            if len(val) != len(rsoc):
                errs.append((key, f"{len(rsoc)} values, one per r_soc point", val))
                continue
        if any(x <= 0 for x in vals):
            errs.append((key, "values > 0", val))
        elif any(x > hi for x in vals):
            errs.append((key, f"values <= {hi:g}", val))
    return errs


_TABLE_MARK = "table key "


def _validate_cell(path: Path, data: dict) -> CellParams:
    try:
        return _validate(path, CellParams, data)
    except CaseError as exc:
        msg = str(exc)
        # a table check names its own key: "<file>: key '(top level)': expected table key 'k': ..., found a table"
        head = f"{path}: key '(top level)': expected {_TABLE_MARK}"
        if msg.startswith(head):
            body = msg[len(head):]
            body = body.replace(", found a table", "", 1) if body.count(", found a table") else body
            msg = f"{path}: key {body}"
        raise CaseError(msg) from None


def load_cell(source: str | Path | Case, name: str | None = None) -> CellParams:
    """Load and validate an ECM cell parameter set.

    Parameters
    ----------
    source : str, Path or Case
        A TOML file path; or a :class:`twin.case.Case`, with ``name`` the parameter set under
        ``models/battery/ecm/`` (looked up beside the case first, then embedded); or, with ``source`` a bare name
        and ``name`` None, the embedded set ``models/battery/ecm/<source>.toml``.
    name : str, optional
        Parameter set name when ``source`` is a Case.

    Returns
    -------
    CellParams

    Raises
    ------
    twin.case.CaseError
        One line naming the file and the key, what was expected and what was found.
    """
    if isinstance(source, Case):
        if name is None:
            raise CaseError(f"{source.path}: load_cell needs the name of a parameter set in models/{KIND}/")
        if (KIND, name) not in source.models:
            from ..case import find_parameter_file

            f = find_parameter_file(source.path, KIND, name)
            source.models[(KIND, name)] = _validate_cell(f, _read_toml(f))
            source.model_paths[(KIND, name)] = f
        return source.models[(KIND, name)]
    p = Path(source)
    if p.suffix != ".toml" and not p.exists():
        from .. import paths

        p = paths.models_dir() / KIND / f"{source}.toml"
    return _validate_cell(p, _read_toml(p))


@dataclass(frozen=True)
class PackedCell:
    """A cell parameter set as flat float64 arrays for the numba kernels (SI units, temperatures in K).

    ``soc``/``ocv``/``dudt`` (V/K) with their cumulative integrals ``ocv_int``/``dudt_int`` over SOC from the first
    grid point; ``r_soc`` with ``r0``, ``r1``, ``tau1``, ``r2``, ``tau2`` (constant tables are two points);
    ``scal`` holds, in order, capacity (A s), T_ref (K), Ea/R_gas of R0, R1, R2 (K), heat capacity (J/K), thermal
    resistance (K/W), v_min, v_max (V), max charge and discharge current (A), T_min, T_max (K), hysteresis (V).
    """

    soc: np.ndarray
    ocv: np.ndarray
    dudt: np.ndarray
    ocv_int: np.ndarray
    dudt_int: np.ndarray
    r_soc: np.ndarray
    r0: np.ndarray
    r1: np.ndarray
    tau1: np.ndarray
    r2: np.ndarray
    tau2: np.ndarray
    scal: np.ndarray

    def arrays(self):
        return (self.soc, self.ocv, self.dudt, self.ocv_int, self.dudt_int, self.r_soc, self.r0, self.r1,
                self.tau1, self.r2, self.tau2, self.scal)


def _cumint(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Exact integral of the piecewise-linear ``y(x)`` from ``x[0]`` to each grid point."""
    out = np.zeros_like(x)
    out[1:] = np.cumsum(0.5 * (y[1:] + y[:-1]) * np.diff(x))
    return out


def pack(p: CellParams) -> PackedCell:
    """Flatten a :class:`CellParams` into :class:`PackedCell` arrays (SI units, K) for the kernels."""
    f = lambda v: np.ascontiguousarray(v, dtype=np.float64)  # noqa: E731
    soc, ocv, dudt = f(p.soc), f(p.ocv_v), f(p.dudt_mv_per_k) * 1e-3
    tables = [p.r0_ohm, p.r1_ohm, p.tau1_s, p.r2_ohm, p.tau2_s]
    rs = f(p.r_soc) if p.r_soc is not None and any(isinstance(t, list) for t in tables) else f([0.0, 1.0])
    tab = [f(t) if isinstance(t, list) else np.full(rs.size, float(t)) for t in tables]
    scal = f([p.capacity_ah * 3600.0, p.t_ref_degc + 273.15, p.ea_r0_j_per_mol / R_GAS, p.ea_r1_j_per_mol / R_GAS,
              p.ea_r2_j_per_mol / R_GAS, p.heat_capacity_j_per_k, p.r_th_k_per_w, p.v_min, p.v_max,
              p.i_max_charge_a, p.i_max_discharge_a, p.t_min_degc + 273.15, p.t_max_degc + 273.15, p.hysteresis_v])
    return PackedCell(soc, ocv, dudt, _cumint(soc, ocv), _cumint(soc, dudt), rs, *tab, scal)
