"""Batch load flow of the campus net for time series: all steps solved in one power-grid-model batch call.

The pandapower net from :func:`twin.network.build_net` stays the single source of truth (DESIGN.md). A
:class:`BatchModel` converts it once into a power-grid-model (PGM) model with power-grid-model-io's pandapower
converter, and corrects what the converter does differently from the twin's ``pandapower.runpp`` settings
(:func:`twin.network.run_loadflow`):

- the external grids become ideal sources (the converter maps their short-circuit power into a source impedance
  that ``runpp`` does not model; DESIGN.md "Known pitfalls");
- cable resistance is taken at the conductor temperature, ``R20 (1 + alpha (T - 20))``, as ``runpp`` does with
  ``consider_line_temperature=True``;
- loads must be constant-power (the twin's are); DOL motors are mapped by the converter as constant-power loads
  and the PCS and PV are ``sgen`` (PGM ``sym_gen``); the net has no ``storage`` element, which the converter rejects.

With pandapower's ``trafo_model="pi"`` (what ``run_loadflow`` uses) the transformer models are the same, so the two
solvers agree to their tolerances (measured about 1e-11 pu on the embedded cases; the test suite requires 1e-6 pu
at sampled steps).

:meth:`BatchModel.run` takes per-step P and Q of every load, motor and sgen (arrays ``(step, element)`` in MW and
Mvar, the net's row order) and solves all steps in one batch calculation; one step is a batch of one. Results come
back as an :class:`xarray.Dataset` (step x bus / line / trafo / ext_grid) with ``units`` and ``long_name`` on every
variable. Steps that do not converge are flagged in ``converged`` and their results are NaN, never filled.

Sign conventions (DESIGN.md): loads and motors consume positive ``p_mw``; sgens (PCS, PV) produce positive
``p_mw``; grid import at the external grids is positive when the campus draws from the utility.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["BatchModel", "ELEMENT_TABLES", "injections_from_net"]

#: the pandapower tables whose P and Q vary per step, in the order :meth:`BatchModel.run` takes them
ELEMENT_TABLES = ("load", "motor", "sgen")

_MAX_ITERATION = {"iterative_current": 100, "newton_raphson": 30}  # defaults per power-grid-model algorithm
_IDEAL_SOURCE_SK_VA = 1e40  # short-circuit power of an ideal source (runpp's ext_grid has no impedance)


def _attrs(units: str, long_name: str) -> dict:
    return {"units": units, "long_name": long_name}


@dataclass(frozen=True)
class _Tables:
    """Row positions in the PGM input arrays of the pandapower elements, in the net's row order."""

    bus: np.ndarray
    line: np.ndarray
    trafo: np.ndarray
    source: np.ndarray
    load: np.ndarray  # positions in sym_load
    motor: np.ndarray  # positions in sym_load
    sgen: np.ndarray  # positions in sym_gen


def injections_from_net(net) -> dict[str, np.ndarray]:
    """P and Q of every load, motor and sgen as pandapower's load flow would take them from the net.

    Returns
    -------
    dict
        ``{"load_p_mw", "load_q_mvar", "motor_p_mw", "motor_q_mvar", "sgen_p_mw", "sgen_q_mvar"}``, each a 1-D
        array in the net's row order (scaling applied; motors from mechanical power, loading, efficiency and
        cos phi as pandapower computes them). Add a leading step axis (``a[None, :]``) for a batch of one.
    """
    out = {}
    for tbl in ("load", "sgen"):
        df = net[tbl]
        out[f"{tbl}_p_mw"] = (df.p_mw * df.scaling).to_numpy(float)
        out[f"{tbl}_q_mvar"] = (df.q_mvar * df.scaling).to_numpy(float)
    m = net.motor
    p = (m.pn_mech_mw / (m.efficiency_percent / 100.0) * m.loading_percent / 100.0 * m.scaling).to_numpy(float)
    out["motor_p_mw"] = p
    out["motor_q_mvar"] = p * np.tan(np.arccos(m.cos_phi.to_numpy(float)))
    return out


def _step_labels(step, n: int) -> pd.Index:
    """Step labels: ``0 .. n - 1`` by default; timezone-aware timestamps are stored in UTC (DESIGN.md)."""
    idx = pd.RangeIndex(n) if step is None else pd.Index(step)
    if idx.shape != (n,):
        raise ValueError(f"step: expected {n} labels, got shape {idx.shape}")
    if isinstance(idx, pd.DatetimeIndex) and idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    return idx


class BatchModel:
    """A power-grid-model of a pandapower campus net, built once, solved for batches of steps.

    Parameters
    ----------
    net : pandapowerNet
        A net from :func:`twin.network.build_net`. Topology, ratings, in-service flags, transformer taps and
        switch states are taken as they are now; later changes to the net are not seen (build a new model).

    Attributes
    ----------
    element_names : dict
        ``{"load": [...], "motor": [...], "sgen": [...]}``: the names of the columns :meth:`run` expects.
    """

    def __init__(self, net):
        import structlog.testing
        from power_grid_model import ComponentType, PowerGridModel
        from power_grid_model_io.converters import PandaPowerConverter

        if len(net.get("storage", [])):
            raise ValueError("net has pandapower storage elements: model the PCS as sgen (DESIGN.md)")
        ld = net.load
        zi = [c for c in ld.columns if c.startswith(("const_z", "const_i"))]
        if len(ld) and (ld[zi].fillna(0) != 0).any().any():
            raise ValueError("net has voltage-dependent loads (const_z/const_i percent): only constant-power "
                             "loads are supported")
        conv = PandaPowerConverter(system_frequency=float(net.f_hz), log_level=logging.ERROR)
        # the converter logs (through structlog's global logger) that zero-sequence data is ignored: irrelevant to
        # a balanced load flow, so its log is captured rather than printed
        with warnings.catch_warnings(), structlog.testing.capture_logs():
            warnings.simplefilter("ignore")
            data, _ = conv.load_input_data(net)
        ct = ComponentType
        src = data[ct.source]
        src["sk"] = _IDEAL_SOURCE_SK_VA  # ideal source, as runpp's ext_grid
        pos_src = self._positions(conv, data, ct.source, "ext_grid", net.ext_grid.index)
        src["u_ref"][pos_src] = net.ext_grid.vm_pu.to_numpy(float)
        src["u_ref_angle"][pos_src] = np.radians(net.ext_grid.va_degree.to_numpy(float))
        line = data[ct.line]
        pos_line = self._positions(conv, data, ct.line, "line", net.line.index)
        alpha = net.line.get("alpha", np.nan)
        temp = net.line.get("temperature_degree_celsius", np.nan)
        factor = np.nan_to_num(1.0 + np.asarray(alpha, float) * (np.asarray(temp, float) - 20.0), nan=1.0)
        line["r1"][pos_line] = line["r1"][pos_line] * factor

        self._ct = ct
        self._model = PowerGridModel(data, system_frequency=float(net.f_hz))
        self._pos = _Tables(
            bus=self._positions(conv, data, ct.node, "bus", net.bus.index),
            line=pos_line,
            trafo=self._positions(conv, data, ct.transformer, "trafo", net.trafo.index),
            source=pos_src,
            load=self._positions(conv, data, ct.sym_load, "load", net.load.index, "const_power"),
            motor=self._positions(conv, data, ct.sym_load, "motor", net.motor.index, "motor_load"),
            sgen=self._positions(conv, data, ct.sym_gen, "sgen", net.sgen.index),
        )
        self.element_names = {t: net[t]["name"].astype(str).tolist() for t in ELEMENT_TABLES}
        self._status = {t: net[t].in_service.to_numpy(bool) for t in ELEMENT_TABLES}
        self._sym_load_ids = np.concatenate([data[ct.sym_load]["id"][self._pos.load],
                                             data[ct.sym_load]["id"][self._pos.motor]])
        self._sym_gen_ids = data[ct.sym_gen]["id"][self._pos.sgen]
        # data for results (pandapower's definitions)
        self._bus = {"name": net.bus["name"].astype(str).tolist(), "vn_kv": net.bus.vn_kv.to_numpy(float)}
        ln = net.line
        self._line = {"name": ln["name"].astype(str).tolist(),
                      "i_max_ka": (ln.max_i_ka * ln.df * ln.parallel).to_numpy(float),
                      "in_service": ln.in_service.to_numpy(bool)}
        tr = net.trafo
        row = {b: k for k, b in enumerate(net.bus.index)}
        hv_row = np.array([row[b] for b in tr.hv_bus], dtype=np.int64)
        lv_row = np.array([row[b] for b in tr.lv_bus], dtype=np.int64)
        self._trafo = {"hv_row": hv_row, "lv_row": lv_row,
                       "hv_bus_kv": net.bus.vn_kv.to_numpy(float)[hv_row],
                       "lv_bus_kv": net.bus.vn_kv.to_numpy(float)[lv_row], "name": tr["name"].astype(str).tolist(),
                       "vn_hv_kv": tr.vn_hv_kv.to_numpy(float), "vn_lv_kv": tr.vn_lv_kv.to_numpy(float),
                       "s_rated_mva": (tr.sn_mva * tr.parallel * tr.df).to_numpy(float),
                       "in_service": tr.in_service.to_numpy(bool)}
        eg = net.ext_grid
        self._ext_grid = {"name": eg["name"].astype(str).tolist(), "in_service": eg.in_service.to_numpy(bool)}

    @staticmethod
    def _positions(conv, data, comp, table, index, name=None) -> np.ndarray:
        ids = np.array([conv.get_id(table, int(i), name) for i in index], dtype=np.int64)
        arr_ids = data[comp]["id"]
        order = np.argsort(arr_ids)
        pos = order[np.searchsorted(arr_ids, ids, sorter=order)]
        if len(ids) and not np.array_equal(arr_ids[pos], ids):
            raise RuntimeError(f"power-grid-model conversion lost {table} elements")
        return pos

    # ----------------------------------------------------------------------------------------------------------

    def _check(self, key: str, a, n_steps: int | None) -> np.ndarray:
        tbl = key.split("_")[0]
        n_el = len(self.element_names[tbl])
        try:
            arr = np.asarray(a, dtype=float)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{key}: expected numbers, got {type(a).__name__} ({e})") from None
        if arr.ndim != 2:
            raise ValueError(f"{key}: expected a 2-D array (step, {tbl}) of shape (n_steps, {n_el}), got shape "
                             f"{arr.shape} (one step is a batch of one: a[None, :])")
        if arr.shape[1] != n_el:
            raise ValueError(f"{key}: expected {n_el} {tbl} elements (columns), got {arr.shape[1]}")
        if n_steps is not None and arr.shape[0] != n_steps:
            raise ValueError(f"{key}: expected {n_steps} steps (rows) like the other inputs, got {arr.shape[0]}")
        bad = ~np.isfinite(arr)
        if bad.any():
            s, e = np.argwhere(bad)[0]
            raise ValueError(f"{key}: {int(bad.sum())} non-finite value(s), first at step {s}, "
                             f"{tbl} '{self.element_names[tbl][e]}'")
        return arr

    def run(self, *, load_p_mw, load_q_mvar, motor_p_mw, motor_q_mvar, sgen_p_mw, sgen_q_mvar, step=None,
            method: str = "iterative_current", threading: int = -1, tolerance_pu: float = 1e-10,
            max_iteration: int | None = None) -> xr.Dataset:
        """Solve the load flow of every step in one power-grid-model batch calculation.

        Parameters
        ----------
        load_p_mw, load_q_mvar : array (step, load)
            Consumption of each pandapower ``load`` (MW, Mvar; positive = consumed), the net's row order.
        motor_p_mw, motor_q_mvar : array (step, motor)
            Consumption of each pandapower ``motor`` (MW, Mvar), taken as constant-power loads.
        sgen_p_mw, sgen_q_mvar : array (step, sgen)
            Injection of each ``sgen`` (PCS: + discharge, - charge; PV), MW and Mvar.
            Elements out of service in the net contribute nothing whatever their values.
        step : array-like, optional
            Labels of the steps, for example timestamps (timezone-aware ones are converted to UTC and stored
            without zone); default ``0 .. n_steps - 1``.
        method : {"iterative_current", "newton_raphson"}
            power-grid-model's algorithm. Both solve the same equations as ``runpp`` (same solution to the
            tolerance); ``"iterative_current"`` (fixed point on a factorised admittance matrix, the default) is
            about twice as fast on the campus nets, and the steps where it does not converge are solved again
            with Newton-Raphson in a second batch call (counted in the ``n_retried_newton_raphson`` attribute).
        threading : int
            power-grid-model's threading: -1 sequential, 0 all hardware threads, n > 0 that many threads.
        tolerance_pu : float
            Convergence tolerance on the largest voltage change of an iteration (pu).
        max_iteration : int, optional
            Iterations before a step is declared not converged; default 100 for iterative current, 30 for
            Newton-Raphson (as :func:`twin.network.run_loadflow`).

        Returns
        -------
        xarray.Dataset
            ``vm_pu``, ``va_degree`` (step, bus); ``line_loading_percent``, ``line_i_ka`` (step, line);
            ``trafo_loading_percent`` (step, trafo); ``p_ext_grid_mw``, ``q_ext_grid_mvar`` (step, ext_grid);
            ``p_import_mw``, ``q_import_mvar``, ``losses_mw``, ``balance_mismatch_mw``, ``converged`` (step).
            Results of steps that did not converge are NaN and ``converged`` is False there.
        """
        ct = self._ct
        from power_grid_model import initialize_array

        if method not in _MAX_ITERATION:
            raise ValueError(f"method: expected one of {sorted(_MAX_ITERATION)}, got {method!r}")
        arrs = {}
        n = None
        for key, val in (("load_p_mw", load_p_mw), ("load_q_mvar", load_q_mvar), ("motor_p_mw", motor_p_mw),
                         ("motor_q_mvar", motor_q_mvar), ("sgen_p_mw", sgen_p_mw), ("sgen_q_mvar", sgen_q_mvar)):
            arrs[key] = self._check(key, val, n)
            n = arrs[key].shape[0]
        if n == 0:
            raise ValueError("load_p_mw: no steps given (expected at least one row)")
        step = _step_labels(step, n)

        upd_load = initialize_array("update", ct.sym_load, (n, len(self._sym_load_ids)))
        upd_load["id"] = self._sym_load_ids
        upd_load["p_specified"] = np.hstack([arrs["load_p_mw"], arrs["motor_p_mw"]]) * 1e6
        upd_load["q_specified"] = np.hstack([arrs["load_q_mvar"], arrs["motor_q_mvar"]]) * 1e6
        update = {ct.sym_load: upd_load}
        if len(self._sym_gen_ids):
            upd_gen = initialize_array("update", ct.sym_gen, (n, len(self._sym_gen_ids)))
            upd_gen["id"] = self._sym_gen_ids
            upd_gen["p_specified"] = arrs["sgen_p_mw"] * 1e6
            upd_gen["q_specified"] = arrs["sgen_q_mvar"] * 1e6
            update[ct.sym_gen] = upd_gen
        out, failed, msgs = self._solve(update, method, tolerance_pu, max_iteration, threading)
        retried = 0
        if method == "iterative_current" and failed.size:
            # the fixed-point iteration gave up: Newton-Raphson (runpp's algorithm) tries those steps again
            sub = {k: v[failed] for k, v in update.items()}
            out2, failed2, msgs2 = self._solve(sub, "newton_raphson", tolerance_pu, None, threading)
            for comp, attrs_ in out.items():
                for attr, val in attrs_.items():
                    val[failed] = out2[comp][attr]
            retried = int(failed.size)
            msgs = {int(failed[i]): m for i, m in msgs2.items()}
            failed = failed[failed2]
        converged = np.ones(n, bool)
        converged[failed] = False
        messages = "; ".join(f"step {step[i]}: {msgs.get(int(i), 'not converged')}" for i in failed[:5])
        if failed.size:
            warnings.warn(f"batch load flow: {failed.size} of {n} steps did not converge (flagged in 'converged', "
                          f"results NaN there); first: {messages.split('; ')[0]}", RuntimeWarning, stacklevel=2)
        ds = self._results(out, arrs, step, converged, messages)
        ds.attrs.update(method=method, n_retried_newton_raphson=retried)
        return ds

    def _solve(self, update, method, tolerance_pu, max_iteration, threading):
        """One power-grid-model batch call; returns (columnar output, failed step positions, {position: message})."""
        ct = self._ct
        out = self._model.calculate_power_flow(
            update_data=update, error_tolerance=tolerance_pu,
            max_iterations=_MAX_ITERATION[method] if max_iteration is None else int(max_iteration),
            calculation_method=method, threading=threading, continue_on_batch_error=True,
            output_component_types={ct.node: ["u_pu", "u_angle", "energized"],
                                    ct.line: ["p_from", "p_to", "i_from", "i_to"],
                                    ct.transformer: ["p_from", "p_to", "s_from", "s_to"],
                                    ct.source: ["p", "q"]})
        err = self._model.batch_error
        if err is None:
            return out, np.zeros(0, dtype=np.int64), {}
        failed = np.asarray(err.failed_scenarios, dtype=np.int64)
        msgs = list(err.error_messages) if err.error_messages is not None else []
        return out, failed, {int(i): " ".join(str(m).split()) for i, m in zip(failed, msgs, strict=False)}

    def _results(self, out, arrs, step, converged, messages) -> xr.Dataset:
        ct, p = self._ct, self._pos
        bad = ~converged

        def take(comp, attr, pos):
            a = np.asarray(out[comp][attr], dtype=float)[:, pos]
            a[bad] = np.nan
            return a

        dead = take(ct.node, "energized", p.bus) == 0  # isolated buses: NaN, as pandapower reports them
        vm = np.where(dead, np.nan, take(ct.node, "u_pu", p.bus))
        va = np.where(dead, np.nan, np.degrees(take(ct.node, "u_angle", p.bus)))
        # lines: current at either end against max_i_ka * df * parallel (pandapower res_line)
        i_line = np.maximum(take(ct.line, "i_from", p.line), take(ct.line, "i_to", p.line)) / 1e3
        ln_off = ~self._line["in_service"]
        i_line[:, ln_off] = np.where(bad[:, None], np.nan, 0.0)
        line_loading = i_line / self._line["i_max_ka"] * 100.0
        pl_line = (take(ct.line, "p_from", p.line) + take(ct.line, "p_to", p.line)) / 1e6
        # transformers: pandapower's "current" loading, max over both sides of I * vn_kv * sqrt(3) / sn_mva
        tr = self._trafo
        # (I = S / (sqrt(3) vm vn_bus), as pandapower computes the branch currents from its bus voltages)
        ld_hv = take(ct.transformer, "s_from", p.trafo) / 1e6 / (vm[:, tr["hv_row"]] * tr["hv_bus_kv"]) * tr["vn_hv_kv"]
        ld_lv = take(ct.transformer, "s_to", p.trafo) / 1e6 / (vm[:, tr["lv_row"]] * tr["lv_bus_kv"]) * tr["vn_lv_kv"]
        trafo_loading = np.maximum(ld_hv, ld_lv) / tr["s_rated_mva"] * 100.0
        trafo_loading[:, ~tr["in_service"]] = np.where(bad[:, None], np.nan, 0.0)
        pl_trafo = (take(ct.transformer, "p_from", p.trafo) + take(ct.transformer, "p_to", p.trafo)) / 1e6
        p_eg = take(ct.source, "p", p.source) / 1e6
        q_eg = take(ct.source, "q", p.source) / 1e6
        losses = np.nansum(pl_line, axis=1) + np.nansum(pl_trafo, axis=1)
        st = self._status
        inj = (p_eg.sum(axis=1) + arrs["sgen_p_mw"][:, st["sgen"]].sum(axis=1)
               - arrs["load_p_mw"][:, st["load"]].sum(axis=1) - arrs["motor_p_mw"][:, st["motor"]].sum(axis=1))
        losses[bad] = np.nan
        a = _attrs
        ds = xr.Dataset(
            {
                "vm_pu": (("step", "bus"), vm, a("pu", "bus voltage magnitude")),
                "va_degree": (("step", "bus"), va, a("degree", "bus voltage angle")),
                "line_i_ka": (("step", "line"), i_line, a("kA", "cable current, larger of both ends")),
                "line_loading_percent": (("step", "line"), line_loading,
                                         a("%", "cable loading: current against max_i_ka * df * parallel")),
                "line_pl_mw": (("step", "line"), pl_line, a("MW", "cable active losses")),
                "trafo_loading_percent": (("step", "trafo"), trafo_loading,
                                          a("%", "transformer loading: max over both sides of I * vn_kv * sqrt(3) "
                                                 "against sn_mva * parallel * df (pandapower 'current')")),
                "trafo_pl_mw": (("step", "trafo"), pl_trafo, a("MW", "transformer active losses")),
                "p_ext_grid_mw": (("step", "ext_grid"), p_eg,
                                  a("MW", "active power import at each external grid (+ campus draws)")),
                "q_ext_grid_mvar": (("step", "ext_grid"), q_eg,
                                    a("Mvar", "reactive power import at each external grid (+ campus draws)")),
                "p_import_mw": ("step", p_eg.sum(axis=1),
                                a("MW", "grid import at the point of connection, sum of incomers")),
                "q_import_mvar": ("step", q_eg.sum(axis=1),
                                  a("Mvar", "reactive import at the point of connection, sum of incomers")),
                "losses_mw": ("step", losses, a("MW", "network active losses (cables and transformers)")),
                "balance_mismatch_mw": ("step", inj - losses,
                                        a("MW", "injections - consumption - losses (zero when the step balances)")),
                "converged": ("step", converged, a("1", "load flow converged at this step")),
            },
            coords={"step": step, "bus": self._bus["name"], "line": self._line["name"],
                    "trafo": self._trafo["name"], "ext_grid": self._ext_grid["name"],
                    "vn_kv": ("bus", self._bus["vn_kv"], a("kV", "bus nominal voltage"))},
        )
        ds.attrs.update(solver="power-grid-model batch power flow", n_not_converged=int((~converged).sum()),
                        sign_convention="loads consume positive p_mw; PCS and PV produce positive p_mw; "
                                        "grid import positive when the campus draws from the utility")
        if messages:
            ds.attrs["not_converged"] = messages
        return ds
