"""The algebraic network of the transient simulation: pandapower's admittance matrix, reduced to the buses that matter.

The transient studies build their network from the same pandapower net as every other study (DESIGN.md). For each
switching state (bus coupler open or closed) the net's bus admittance matrix is taken from pandapower's own load
flow (``net._ppc["internal"]["Ybus"]``, per unit on ``net.sn_mva``, the same cable temperature and ``"pi"``
transformer model as :func:`twin.network.run_loadflow`) and Kron-reduced to the buses that carry an element or may
carry a fault: the points of connection and the LV boards. The buses without injections (MV sections and
terminals) are eliminated exactly, ``Y_red = Y_kk - Y_ke Y_ee^-1 Y_ek``, and their voltages are recovered from the
kept ones with ``V_e = -Y_ee^-1 Y_ek V_k``. Dense matrices: a campus has tens of buses.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from ..network import run_loadflow

__all__ = ["ReducedNetwork", "reduce_network"]


@dataclass
class ReducedNetwork:
    """Kron-reduced admittance matrices of a net for a list of switching states.

    Attributes
    ----------
    kept : list of int
        pandapower bus indices of the reduced buses (in the matrices' order).
    y_pu : complex array (topology, kept, kept)
        Reduced admittance matrices, per unit on ``sn_mva``.
    recover : complex array (topology, bus, kept)
        ``V_all = recover @ V_kept`` for every bus of the net (pandapower row order).
    topologies : list of dict
        The switch states ``{switch name: closed}`` of each topology.
    """

    kept: list[int]
    y_pu: np.ndarray
    recover: np.ndarray
    topologies: list[dict]
    bus_names: list[str]
    sn_mva: float
    components: np.ndarray = None  # (topology, kept): connected part of the network each kept bus belongs to

    def __post_init__(self):
        if self.components is None:
            self.components = np.stack([_components(y) for y in self.y_pu]).astype(np.int64)

    def index(self, bus: int) -> int:
        """Position of pandapower bus ``bus`` among the kept buses."""
        return self.kept.index(int(bus))


def _components(y: np.ndarray) -> np.ndarray:
    """Label of the connected part of each bus of an admittance matrix (series admittances above 1e-9 pu)."""
    from scipy.sparse.csgraph import connected_components

    a = np.abs(y) > 1e-9 * max(np.abs(y).max(), 1.0)
    np.fill_diagonal(a, False)
    return connected_components(a, directed=False)[1]


def _ybus(net) -> tuple[np.ndarray, np.ndarray]:
    """Dense Ybus and the pd -> ppc bus lookup after pandapower's load flow of ``net`` (which must converge)."""
    run_loadflow(net)
    if not net.converged:
        raise RuntimeError("the load flow of the net did not converge: no admittance matrix")
    y = np.asarray(net._ppc["internal"]["Ybus"].todense(), dtype=complex)
    return y, np.asarray(net._pd2ppc_lookups["bus"])


def reduce_network(net, keep, topologies: list[dict] | None = None) -> ReducedNetwork:
    """Reduce a net's admittance matrix to the buses ``keep`` for each switching state.

    Parameters
    ----------
    net : pandapowerNet
        The campus net (with an operating point: its load flow must converge; loads do not enter the matrices).
    keep : list of int
        pandapower bus indices to keep; no two of them may be joined by a closed bus-bus switch.
    topologies : list of dict, optional
        Switch states ``{switch name: closed}`` applied to a copy of the net; default one topology, as it is.
    """
    keep = [int(b) for b in keep]
    topologies = topologies or [{}]
    names = net.switch["name"].astype(str).tolist()
    ys, recs = [], []
    for topo in topologies:
        n2 = copy.deepcopy(net)
        for sw, closed in topo.items():
            if sw not in names:
                raise ValueError(f"no switch '{sw}' in the net (have {names})")
            n2.switch.loc[names.index(sw), "closed"] = bool(closed)
        y, lk = _ybus(n2)
        kp = lk[keep]
        uk = list(dict.fromkeys(kp.tolist()))  # unique ppc buses kept, in order
        el = np.setdiff1d(np.arange(y.shape[0]), uk)
        ykk, yke, yek, yee = y[np.ix_(uk, uk)], y[np.ix_(uk, el)], y[np.ix_(el, uk)], y[np.ix_(el, el)]
        x = np.linalg.solve(yee, yek) if len(el) else np.zeros((0, len(uk)))
        yr = ykk - yke @ x
        # expand to the kept pd buses (fused buses share rows): a voltage per kept pd bus
        if len(uk) != len(keep):
            raise ValueError(f"kept buses {keep} are fused by closed switches in topology {topo}: keep one of each")
        full = yr
        ys.append(full)
        # recovery of every pd bus from the kept ppc buses
        rec_ppc = np.zeros((y.shape[0], len(uk)), dtype=complex)
        rec_ppc[uk, np.arange(len(uk))] = 1.0
        if len(el):
            rec_ppc[el, :] = -x
        recs.append(rec_ppc[lk[net.bus.index.to_numpy()], :])
    return ReducedNetwork(kept=keep, y_pu=np.stack(ys), recover=np.stack(recs), topologies=topologies,
                          bus_names=net.bus.loc[keep, "name"].astype(str).tolist(), sn_mva=float(net.sn_mva))
