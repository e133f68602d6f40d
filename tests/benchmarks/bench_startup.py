"""Start-up wall times: how long a user waits for ``xraydesk`` to answer or show its window.

    python tests/benchmarks/bench_startup.py [--data ../shared/data] [--repeat 3]

Every figure is a fresh process, timed from just before it starts until it exits (or, for
"window shown", until the main window has been shown and the event loop runs), the median
of --repeat runs, with the process's peak memory (resident set) beside it. The rows marked
"light" run as the light build does: torch, torchvision and the grad-cam package made
unimportable, on its runtime, ONNX Runtime. The graph cache is shared by the runs (warm),
except in the "first classify" rows (cold), where each run starts from an empty data
folder and graph cache, so it exports the model's graph and checks it against the card's
reference outputs, as every user's first run does. Two
baselines are measured in the same run, so the figures compare across noisy machines as
ratios: ``python -c pass`` (the interpreter alone) and
``python -c "import torch"`` (the floor for anything that runs the model).

To time another checkout (the code before a change), point PYTHONPATH at it:
``PYTHONPATH=/tmp/base13 python tests/benchmarks/bench_startup.py``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks.machine import cpu_name, load_average  # noqa: E402

# Run in the child: for each window shown (the start window, where there is one, then the
# main window), report the wall-clock time at which it is shown and the event loop runs
# (it answers input from then on); leave once the main window is up.
# With BENCH_BLOCK set, as the light build: torch and what needs it cannot be imported.
BLOCK = """
import os, sys
if os.environ.get("BENCH_BLOCK"):
    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "torchvision", "pytorch_grad_cam", "triton"):
                raise ImportError(name + " is not in the light build")
    sys.meta_path.insert(0, Block())
"""
WINDOW_SHOWN = (
    BLOCK
    + """
import os, sys, time
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QMainWindow

def _shown(self, event, _original=QMainWindow.showEvent):
    _original(self, event)
    name = type(self).__name__
    def _report():
        print(f"SHOWN-{name} {time.time():.6f}", flush=True)
        if name == "MainWindow":
            os._exit(0)
    QTimer.singleShot(0, _report)

QMainWindow.showEvent = _shown
from xraydesk.cli import main
sys.exit(main(sys.argv[1:]))
"""
)


# Run ``xraydesk ARGS`` and report the peak resident memory on stderr at exit.
RUN = (
    BLOCK
    + """
import atexit, resource
atexit.register(lambda: print(f"PEAK-KB {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}",
                              file=sys.stderr))
from xraydesk.cli import main
sys.exit(main(sys.argv[1:]))
"""
)


def wall(cmd: list[str], env: dict[str, str]) -> dict[str, float]:
    """Seconds from just before the process starts until it exits (key ""), and until it
    printed each ``MARKER TIME`` line (key MARKER). It runs in the code's folder: ``-m`` and
    ``-c`` put the working folder first on sys.path, before PYTHONPATH."""
    start = time.time()
    code = env["PYTHONPATH"].split(os.pathsep)[0]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=code)
    end = time.time()
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {done.returncode}\n{done.stderr}")
    times = {"": end - start}
    for line in done.stdout.splitlines():
        if line.startswith("SHOWN-"):
            marker, at = line.split()
            times.setdefault(marker, float(at) - start)
    for line in done.stderr.splitlines():
        if line.startswith("PEAK-KB "):
            times["peak_mb"] = int(line.split()[1]) / 1024
    return times


def median_s(
    cmd: list[str], env: dict[str, str], repeat: int, fresh_cache: bool = False
) -> dict[str, float]:
    """Medians over ``repeat`` runs; ``fresh_cache``: each run with an empty data folder and
    graph cache (the first classify of a model, which exports its graph)."""
    runs = []
    for _ in range(repeat):
        if fresh_cache:
            fresh = tempfile.mkdtemp(prefix="bench-first-")
            env = {**env, "XRAYDESK_RUNTIME_CACHE": fresh, "XRAYDESK_DATA_DIR": fresh + "/data"}
        runs.append(wall(cmd, env))
    return {key: statistics.median(run[key] for run in runs if key in run) for key in runs[0]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-screenshot", action="store_true", help="leave out the slowest")
    args = parser.parse_args()
    dicom = args.data / "samples" / "dicom" / "siim-cr-jpeg-baseline.dcm"
    if not dicom.is_file():
        print(f"{dicom}: not found (use --data)", file=sys.stderr)
        return 2
    scratch = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    env = dict(os.environ)
    env["XRAYDESK_DATA_DIR"] = str(scratch / "data")  # never the user's settings or models
    env["QT_QPA_PLATFORM"] = "offscreen"
    env.setdefault("PYTHONPATH", str(ROOT))
    py = [sys.executable]
    xd = [*py, "-c", RUN]
    code = env["PYTHONPATH"].split(os.pathsep)[0]
    print(f"CPU: {cpu_name()} ({os.cpu_count()} cores visible)")
    print(f"load average at start: {load_average()}")
    print(f"code: {code}; median of {args.repeat} fresh processes each\n")
    if env.pop("PYTHONDONTWRITEBYTECODE", None):
        # every process would compile its modules from source again (~0.2 s for classify):
        # an installed app has them compiled, so the runs here may write them once
        print("PYTHONDONTWRITEBYTECODE unset for the runs (an install has compiled modules)\n")
        subprocess.run([*py, "-c", RUN, "--version"], env=env, capture_output=True)

    rows: list[tuple[str, float, float | None]] = []

    def measure(
        label: str,
        cmd: list[str],
        markers: dict[str, str] | None = None,
        light: bool = False,
        fresh_cache: bool = False,
    ) -> None:
        run_env = {**env, "BENCH_BLOCK": "1", "XRAYDESK_RUNTIME": "onnxruntime"} if light else env
        times = median_s(cmd, run_env, args.repeat, fresh_cache)
        for marker, what in (markers or {"": label}).items():
            if marker in times:
                peak = times.get("peak_mb") if not markers else None
                rows.append((what, times[marker], peak))
                shown = f"{peak:6.0f} MB" if peak else ""
                print(f"  {what:50s} {times[marker]:6.2f} s {shown}", flush=True)

    measure("baseline: python -c pass", [*py, "-c", "pass"])
    measure("baseline: python -c 'import torch'", [*py, "-c", "import torch"])
    measure("xraydesk --version", [*xd, "--version"])
    measure("xraydesk models", [*xd, "models"])
    measure("xraydesk models --json", [*xd, "models", "--json"])
    measure("xraydesk classify ONE.dcm (warm)", [*xd, "classify", str(dicom)])
    measure(
        "first classify of the model (cold: exports it)",
        [*xd, "classify", "--no-skip", str(dicom)],
        fresh_cache=True,
    )
    measure("light: xraydesk --version", [*xd, "--version"], light=True)
    measure("light: xraydesk classify ONE.dcm (warm)", [*xd, "classify", str(dicom)], light=True)
    measure(
        "light: first classify of the model (cold: exports it)",
        [*xd, "classify", "--no-skip", str(dicom)],
        light=True,
        fresh_cache=True,
    )
    shown = {
        "SHOWN-StartWindow": "start window shown (xraydesk ONE.dcm)",
        "SHOWN-MainWindow": "main window shown (xraydesk ONE.dcm)",
    }
    measure("window", [*py, "-c", WINDOW_SHOWN, str(dicom)], shown)
    light_shown = {marker: f"light: {what}" for marker, what in shown.items()}
    measure("light window", [*py, "-c", WINDOW_SHOWN, str(dicom)], light_shown, light=True)
    if not args.skip_screenshot:
        shot = scratch / "shot.png"
        measure(
            "xraydesk --screenshot OUT.png ONE.dcm", [*xd, "--screenshot", str(shot), str(dicom)]
        )

    print(f"\nload average at the end: {load_average()}")
    torch_s = rows[1][1]
    print(f"\n{'what':50s} {'wall s':>7s} {'x import torch':>15s} {'peak MB':>8s}")
    for label, seconds, peak in rows:
        memory = f"{peak:8.0f}" if peak else f"{'':8s}"
        print(f"{label:50s} {seconds:7.2f} {seconds / torch_s:15.2f} {memory}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
