"""Time the foundation's snapshot studies on the seed case (prints seconds per step)."""

import time
import warnings

warnings.filterwarnings("ignore")

from twin import studies  # noqa: E402
from twin.case import load_case  # noqa: E402
from twin.network import build_net  # noqa: E402


def main():
    t0 = time.perf_counter()
    case = load_case()
    t1 = time.perf_counter()
    net = build_net(case)
    t2 = time.perf_counter()
    print(f"load_case  {t1 - t0:8.3f} s")
    print(f"build_net  {t2 - t1:8.3f} s  ({len(net.bus)} buses)")
    for name in studies.names():
        fn = studies.get(name)
        fn(case, net)  # warm-up (numba compile in pandapower)
        t = time.perf_counter()
        res = fn(case, net)
        print(f"{name:10s} {time.perf_counter() - t:8.3f} s  ({len(res.checks)} checks)")


if __name__ == "__main__":
    main()
