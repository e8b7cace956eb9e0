"""gt-bench's CodeCarbon driver: an OfflineEmissionsTracker in process-tracking mode,
measuring every second, as a user would start it around their job.

    python codecarbon_driver.py [--load-mode] [--cpu-power W] --secs S [-- CMD ARGS...]

Without CMD it tracks for S seconds (its own process: the benchmark reads the CPU
time of this process while the tracker's thread works and the main thread sleeps).
With CMD it tracks while CMD runs as its child (process mode covers the tracked
process and its children), then for S more seconds. `--load-mode` forces CodeCarbon's
CPU-load mode with the given CPU power (its process tracking splits power by the
CPU time of the tracked tree only in that mode; with RAPL it reports the counter).

Prints `ready` once the tracker runs, the child's output lines prefixed `child: `,
`child_cpu_s S` (getrusage of the reaped child and its descendants), and at the end one JSON line: the tracker's cumulative CPU energy after each
measurement, with the monotonic time of that measurement.
"""

import argparse
import json
import resource
import subprocess
import sys
import time

from codecarbon import OfflineEmissionsTracker


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--secs", type=float, required=True)
    parser.add_argument("--load-mode", action="store_true")
    parser.add_argument("--cpu-power", type=float, default=40.0)
    parser.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    options = dict(
        country_iso_code="FRA",
        tracking_mode="process",
        measure_power_secs=1,
        output_methods=[],
        log_level="error",
    )
    if args.load_mode:
        options.update(force_mode_cpu_load=True, force_cpu_power=args.cpu_power)
    tracker = OfflineEmissionsTracker(**options)
    samples = []
    measure = tracker._do_measurements

    def recorded():
        measure()
        samples.append([time.monotonic(), tracker._total_cpu_energy.kWh * 3.6e6])

    tracker._do_measurements = recorded
    tracker.start()
    print("ready", flush=True)
    cmd = [c for c in args.cmd if c != "--"]
    if cmd:
        child = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=False)
        for line in child.stdout.splitlines():
            print("child:", line, flush=True)
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        print("child_cpu_s", usage.ru_utime + usage.ru_stime, flush=True)
    time.sleep(args.secs)
    tracker.stop()
    modes = [getattr(h, "_mode", type(h).__name__) for h in tracker._hardware]
    print(
        json.dumps(
            {
                "cpu_joules": tracker._total_cpu_energy.kWh * 3.6e6,
                "samples": samples,
                "hardware": modes,
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
