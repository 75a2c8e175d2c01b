"""The ``twin`` command line: run studies on a case and write their results.

Bad input (a case that does not load, an unknown study) exits with status 2 and a one-line reason on stderr,
before anything is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import studies
from .case import CaseError, load_case, with_drivers
from .paths import DEFAULT_CASE, networks_dir

EPILOG = """examples:
  twin run                              every study on the embedded seed case -> results/shanghai_campus/
  twin run my_campus.toml --out out/    every study on your own case
  twin study loadflow --out out/lf      one study
  twin study timeseries --scenario sustained_training --period 2025 --resolution 1min --out out/ts
                                        a year of the campus in the loop, one load scenario
  twin study timeseries --period 2025-07-01/2025-07-08   one week (local dates, end exclusive)
  twin study switchover --out out/sw    loss of mains, island pick-up, shedding, bus transfer, return to grid
  twin study ridethrough --out out/rt   utility voltage dips and the campus's transfer logic
  twin study swing --out out/swing      AI-training power swings and flicker at the point of connection
  twin check my_campus.toml             load and check a case, print what it holds
  twin sld --out sld.png                draw the single-line diagram
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="twin",
        description="Digital twin of an AI data-centre campus power system: study cases, pandapower network, "
                    "load flow, short circuit (IEC 60909), N-1 contingency, limit checks and reports.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    case_help = f"case file, or the name of an embedded case (default: {DEFAULT_CASE})"

    r = sub.add_parser("run", help="run every study on a case and write results, checks, summary and report",
                       description="Run every study (" + ", ".join(studies.names()) + ") on a case. Writes "
                       "<study>.nc (xarray/NetCDF), checks.csv, summary.json and report.html into DIR.")
    r.add_argument("case", nargs="?", default=None, help=case_help)
    r.add_argument("--out", metavar="DIR", type=Path, default=None,
                   help="output folder (default: results/<case name>/)")
    _driver_options(r)

    s = sub.add_parser("study", help="run one study on a case",
                       description="Run one study and write its <study>.nc, checks.csv, summary.json and report.html.")
    s.add_argument("name", metavar="NAME", help="study: " + ", ".join(studies.names()))
    s.add_argument("case", nargs="?", default=None, help=case_help)
    s.add_argument("--out", metavar="DIR", type=Path, default=None, help="output folder (default: results/<case>/)")
    _driver_options(s)

    c = sub.add_parser("check", help="load and check a case; print its elements and ratings",
                       description="Load a case and its parameter sets, check them, and print a summary.")
    c.add_argument("case", nargs="?", default=None, help=case_help)

    d = sub.add_parser("sld", help="draw the single-line diagram of a case to a PNG/SVG/PDF file")
    d.add_argument("case", nargs="?", default=None, help=case_help)
    d.add_argument("--out", metavar="FILE", type=Path, default=Path("single_line.png"),
                   help="image file (default: single_line.png)")

    sub.add_parser("list", help="list the embedded cases and the studies")
    return p


def _driver_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scenario", metavar="NAME", default=None,
                   help="load scenario under models/scenarios/ (default: the case's [drivers] scenario)")
    p.add_argument("--weather", metavar="FILE", default=None,
                   help="weather file: EPW, TMY3, PVGIS TMY or CSV (default: the built-in synthetic typical year)")
    p.add_argument("--period", metavar="PERIOD", default=None,
                   help="year 'YYYY' or local dates 'YYYY-MM-DD/YYYY-MM-DD' (end exclusive) of the time series "
                        "(default: the case's [drivers] year)")
    p.add_argument("--resolution", metavar="STEP", default=None,
                   help="time step of the drivers and the time series, e.g. '1min', '15min', '1s' "
                        "(default: the case's [drivers] resolution_s)")


def _cmd_check(case_arg) -> int:
    from .battery import ratings
    from .network import build_net

    case = load_case(case_arg)
    net = build_net(case)
    s = case.spec
    print(f"{case.path}: OK  (case '{case.name}', sha256 {case.sha256[:12]})")
    print(f"  site: {s.site.name}, {s.site.latitude_deg} N {s.site.longitude_deg} E, {s.site.timezone}")
    print(f"  supply: {len(s.supply.incomers)} incomer(s) at {s.supply.vn_kv:g} kV, firm import cap "
          f"{s.supply.firm_import_cap_mw:g} MW, earthing {s.supply.earthing}")
    print(f"  network: {len(net.bus)} buses, {len(net.line)} cables, {len(net.trafo)} transformers, "
          f"{len(net.load)} loads, {len(net.motor)} motors, {len(net.sgen)} sources")
    print(f"  GPU halls: {len(s.halls)}, {sum(h.gpu_count for h in s.halls)} GPUs")
    r = ratings(case)
    if r is not None:
        print(f"  battery: {r.containers} containers, {r.p_ac_rated_mw:g} MW AC, {r.nameplate_dc_mwh:.2f} MWh DC "
              f"nameplate, {r.usable_ac_mwh:.2f} MWh usable AC ({r.duration_h:.2f} h at rated power)")
    print("  operating points: " + ", ".join(o.name for o in s.operating_points))
    return 0


def _cmd_sld(case_arg, out: Path) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from .network import build_net, plot_single_line

    case = load_case(case_arg)
    ax = plot_single_line(build_net(case), title=f"{case.name}: {case.spec.case.title}")
    out.parent.mkdir(parents=True, exist_ok=True)
    ax.figure.savefig(out, dpi=150, bbox_inches="tight")
    print(out)
    return 0


def _cmd_list() -> int:
    print("embedded cases:")
    for p in sorted(networks_dir().glob("*.toml")):
        print(f"  {p.stem:24s} {p}")
    print("studies: " + ", ".join(studies.names()))
    return 0


def _print_summary(summary: dict, out: Path) -> None:
    for name, fig in summary["studies"].items():
        print(f"  {name:30s} {fig.get('checks', 0):5d} checks: {fig.get('pass', 0)} PASS, {fig.get('warn', 0)} WARN, "
              f"{fig.get('fail', 0)} FAIL")
    print(f"results in {out}/ (summary.json, checks.csv, report.html)")


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "list":
            return _cmd_list()
        if args.command == "check":
            return _cmd_check(args.case)
        if args.command == "sld":
            return _cmd_sld(args.case, args.out)
        from .runner import default_out_dir, run_case

        case = load_case(args.case)
        if args.weather is not None and not Path(args.weather).exists():
            raise CaseError(f"--weather: no such file '{args.weather}'")
        weather = str(Path(args.weather).resolve()) if args.weather is not None else None
        case = with_drivers(case, weather_file=weather)
        from .studies.timeseries import with_options

        case = with_options(case, scenario=args.scenario, period=args.period, resolution=args.resolution)
        names = None
        if args.command == "study":
            if args.name not in studies.names():
                raise CaseError(f"no study '{args.name}': known studies are {studies.names()}")
            names = [args.name]
        out = args.out if args.out is not None else default_out_dir(case)
        summary = run_case(case, names, out)
        _print_summary(summary, out)
        return 0
    except (CaseError, FileNotFoundError) as exc:
        print(f"twin: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
