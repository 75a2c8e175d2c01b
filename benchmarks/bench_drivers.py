"""Time a year of drivers on the seed case at 1 min and 1 h (prints seconds per step of the pipeline)."""

import time
import warnings

warnings.filterwarnings("ignore")

from twin import cooling, gpu, pv, weather  # noqa: E402
from twin.case import load_case, with_drivers  # noqa: E402
from twin.studies import drivers  # noqa: E402


def main():
    for step in (3600.0, 60.0):
        case = with_drivers(load_case(), resolution_s=step)
        index = drivers.year_index(case)
        t = [time.perf_counter()]
        w = weather.typical_year(case, freq=f"{int(step)}s")
        t.append(time.perf_counter())
        sp = weather.solar_position(case, w.index)
        t.append(time.perf_counter())
        p = pv.pv_output(case, w, sp)
        t.append(time.perf_counter())
        it = gpu.it_load(case, index)
        t.append(time.perf_counter())
        cooling.cooling_power(case, it.p_mw.sum("hall").values, w.temp_air.values, w.relative_humidity.values)
        t.append(time.perf_counter())
        drivers.run(case)
        t.append(time.perf_counter())
        names = ["weather", "solar position", "pv", "it load", "cooling", "whole study"]
        print(f"resolution {step:g} s, {len(index)} steps, PV {float(p.p_mw.sum()) * step / 3600:.0f} MWh")
        for n, a, b in zip(names, t[:-1], t[1:], strict=True):
            print(f"  {n:15s} {b - a:8.2f} s")


if __name__ == "__main__":
    main()
