"""The batch load flow (power-grid-model) agrees with pandapower.runpp run the twin's way, step by step."""

import warnings

import numpy as np
import pandas as pd
import pytest

from twin.netbatch import ELEMENT_TABLES, BatchModel, injections_from_net
from twin.network import apply_operating_point, build_net, run_loadflow

N_STEPS = 50


def random_injections(net, rng, n):
    """Plausible per-step P, Q: loads 20-110 % of an operating point, motors on/off-ish at their power factor,
    PV 0 to rating at unity power factor, PCS charging or discharging up to rating with some reactive power."""
    base = injections_from_net(net)
    nl, nm = len(net.load), len(net.motor)
    f = rng.uniform(0.2, 1.1, (n, nl))
    out = {"load_p_mw": base["load_p_mw"] * f, "load_q_mvar": base["load_q_mvar"] * f}
    fm = rng.uniform(0.3, 1.1, (n, nm))
    tan_m = np.tan(np.arccos(net.motor.cos_phi.to_numpy(float)))
    out["motor_p_mw"] = base["motor_p_mw"] * fm
    out["motor_q_mvar"] = out["motor_p_mw"] * tan_m
    sg = net.sgen
    pv = (sg.type == "PV").to_numpy()
    p = np.where(pv, rng.uniform(0, 1, (n, len(sg))) * sg.sn_mva.to_numpy(float),
                 rng.uniform(-1, 1, (n, len(sg))) * sg.max_p_mw.to_numpy(float))
    q = np.where(pv, 0.0, rng.uniform(-0.2, 0.2, (n, len(sg))))
    out["sgen_p_mw"], out["sgen_q_mvar"] = p, q
    return out


def set_step(net, inj, k):
    """Write step k of the injections onto the pandapower net (motors through their loading, as runpp reads it)."""
    net.load["scaling"] = 1.0
    net.sgen["scaling"] = 1.0
    net.motor["scaling"] = 1.0
    net.load["p_mw"], net.load["q_mvar"] = inj["load_p_mw"][k], inj["load_q_mvar"][k]
    net.sgen["p_mw"], net.sgen["q_mvar"] = inj["sgen_p_mw"][k], inj["sgen_q_mvar"][k]
    m = net.motor
    net.motor["loading_percent"] = inj["motor_p_mw"][k] / (m.pn_mech_mw / (m.efficiency_percent / 100.0)) * 100.0


@pytest.fixture(scope="module", params=["shanghai_campus", "small_campus"])
def batch(request, seed_case, small_case):
    case = seed_case if request.param == "shanghai_campus" else small_case
    # start from an operating point so in-service flags (battery, PV) are those a study would see
    net = apply_operating_point(build_net(case), case, case.spec.operating_points[0])
    model = BatchModel(net)
    inj = random_injections(net, np.random.default_rng(case.spec.case.seed), N_STEPS)
    ds = model.run(**inj)
    return net, model, inj, ds


def test_agrees_with_pandapower_at_sampled_steps(batch):
    net, model, inj, ds = batch
    ds_nr = model.run(**inj, method="newton_raphson")
    assert ds.converged.all() and ds_nr.converged.all() and ds.attrs["n_retried_newton_raphson"] == 0
    for k in (0, 17, 33, N_STEPS - 1):
        set_step(net, inj, k)
        run_loadflow(net)
        for r in (ds.isel(step=k), ds_nr.isel(step=k)):
            _assert_matches(r, net)


def _assert_matches(r, net):
    """One step of the batch against pandapower's results on the net."""
    assert np.abs(r.vm_pu.values - net.res_bus.vm_pu.values).max() < 1e-6
    assert np.abs(r.va_degree.values - net.res_bus.va_degree.values).max() < 1e-4
    assert np.abs(r.line_loading_percent.values - net.res_line.loading_percent.values).max() < 1e-4
    assert np.abs(r.trafo_loading_percent.values - net.res_trafo.loading_percent.values).max() < 1e-4
    assert np.abs(r.p_ext_grid_mw.values - net.res_ext_grid.p_mw.values).max() < 1e-6
    assert np.abs(r.q_ext_grid_mvar.values - net.res_ext_grid.q_mvar.values).max() < 1e-6
    pl = net.res_line.pl_mw.sum() + net.res_trafo.pl_mw.sum()
    assert float(r.losses_mw) == pytest.approx(pl, abs=1e-6)


def test_every_step_balances(batch):
    net, _, inj, ds = batch
    on = {t: net[t].in_service.to_numpy(bool) for t in ELEMENT_TABLES}
    injected = (ds.p_import_mw.values + inj["sgen_p_mw"][:, on["sgen"]].sum(1)
                - inj["load_p_mw"][:, on["load"]].sum(1) - inj["motor_p_mw"][:, on["motor"]].sum(1))
    np.testing.assert_allclose(injected, ds.losses_mw.values, atol=1e-6)
    assert (ds.losses_mw > 0).all()
    assert np.abs(ds.balance_mismatch_mw).max() < 1e-6


def test_shapes_units_and_batch_of_one(batch):
    net, model, inj, ds = batch
    assert dict(ds.sizes) == {"step": N_STEPS, "bus": len(net.bus), "line": len(net.line),
                              "trafo": len(net.trafo), "ext_grid": len(net.ext_grid)}
    for name, var in ds.data_vars.items():
        assert var.attrs.get("units") and var.attrs.get("long_name"), name
    assert ds.vm_pu.attrs["units"] == "pu" and ds.p_import_mw.attrs["units"] == "MW"
    assert list(ds.bus.values) == net.bus["name"].tolist()
    # one step is a batch of one, and gives the same numbers as inside the big batch
    one = model.run(**{k: v[5:6] for k, v in inj.items()}, step=["t5"])
    assert one.sizes["step"] == 1 and one.step.values[0] == "t5"
    np.testing.assert_allclose(one.vm_pu.values[0], ds.vm_pu.values[5], atol=1e-12)
    # timezone-aware step labels are stored in UTC (DESIGN.md)
    t = pd.date_range("2026-06-01 12:00", periods=2, freq="min", tz="Asia/Shanghai")
    two = model.run(**{k: v[:2] for k, v in inj.items()}, step=t)
    assert two.step.values[0] == np.datetime64("2026-06-01T04:00")


def test_non_converged_step_is_flagged_not_filled(seed_net):
    model = BatchModel(seed_net)
    inj = {k: np.repeat(v[None, :], 3, axis=0) for k, v in injections_from_net(seed_net).items()}
    inj["load_p_mw"][1] = 50.0  # 50 MW on every 0.4 kV board: no solution
    with pytest.warns(RuntimeWarning, match="1 of 3 steps did not converge"):
        ds = model.run(**inj)
    assert ds.converged.values.tolist() == [True, False, True]
    assert np.isnan(ds.vm_pu.values[1]).all() and np.isnan(ds.p_import_mw.values[1])
    assert np.isfinite(ds.vm_pu.values[[0, 2]]).all()
    assert ds.attrs["n_not_converged"] == 1 and "step 1" in ds.attrs["not_converged"]
    assert ds.attrs["n_retried_newton_raphson"] == 1  # Newton-Raphson tried it again, and failed too


def test_steps_the_fixed_point_gives_up_on_are_solved_by_newton_raphson(seed_net):
    model = BatchModel(seed_net)
    inj = {k: np.repeat(v[None, :], 3, axis=0) for k, v in injections_from_net(seed_net).items()}
    inj["load_p_mw"][1] *= 1.5
    ref = model.run(**inj, method="newton_raphson")
    ds = model.run(**inj, max_iteration=2)  # too few fixed-point iterations: every step is retried
    assert ds.converged.all() and ds.attrs["n_retried_newton_raphson"] == 3
    np.testing.assert_allclose(ds.vm_pu.values, ref.vm_pu.values, atol=1e-12)


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(load_p_mw=d["load_p_mw"][:, :-1]), r"load_p_mw: expected 15 load elements \(columns\), got 14"),
    (lambda d: d["sgen_q_mvar"].__setitem__((2, 1), np.nan), r"sgen_q_mvar: 1 non-finite value\(s\), first at step 2"),
    (lambda d: d.update(motor_p_mw=d["motor_p_mw"][0]), r"motor_p_mw: expected a 2-D array"),
    (lambda d: d.update(motor_q_mvar=d["motor_q_mvar"][:2]), r"motor_q_mvar: expected 4 steps \(rows\)"),
    (lambda d: d.update(load_q_mvar=[["a"] * 15] * 4), r"load_q_mvar: expected numbers"),
    (lambda d: d.update(method="gauss_seidel"), r"method: expected one of"),
])
def test_bad_input_rejected_with_one_line_message(seed_net, change, message):
    model = BatchModel(seed_net)
    inj = {k: np.repeat(v[None, :], 4, axis=0) for k, v in injections_from_net(seed_net).items()}
    change(inj)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=message) as e:
            model.run(**inj)
    assert "\n" not in str(e.value)


def test_every_operating_point_as_a_batch_of_one(seed_case, seed_net):
    """Out-of-service elements (battery out) and the net's own injections (motors from their loading) included."""
    for op in seed_case.spec.operating_points:
        net = apply_operating_point(seed_net, seed_case, op)
        ds = BatchModel(net).run(**{k: v[None, :] for k, v in injections_from_net(net).items()})
        run_loadflow(net)
        _assert_matches(ds.isel(step=0), net)
