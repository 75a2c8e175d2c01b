"""twin: an open-source digital twin of the power system of AI data-centre campuses.

Typical use::

    from twin.case import load_case
    from twin.network import build_net
    from twin.studies import loadflow

    case = load_case()                  # the embedded seed case (networks/shanghai_campus.toml)
    net = build_net(case)               # pandapower net, the single source of truth
    result = loadflow.run(case, net)    # xarray Dataset + check rows + key figures
"""

from importlib import metadata as _md

try:
    __version__ = _md.version("twin")
except _md.PackageNotFoundError:  # running from a checkout without installing
    __version__ = "0.1.0"
