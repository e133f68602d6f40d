"""Flat memory: ``xraydesk classify`` over 50,000 files needs no more than over 1,000.

    OMP_NUM_THREADS=1 python tests/benchmarks/bench_batch_memory.py            # 50,000 files
    OMP_NUM_THREADS=1 python tests/benchmarks/bench_batch_memory.py --files 5000  # quick

Runs the real command, ``python -m xraydesk classify FOLDER --recursive --no-skip`` with
the bundled ``chest-3class`` model, in a fresh process with a fresh data folder (a new
results database; the exported runtime graphs are shared with the user's cache so the
run does not start with an export). FOLDER holds ``--files`` symbolic links to the
pool images of the shared data (never copies), the pools repeated as often as needed,
``--per-folder`` links to a sub-folder, so every row is classified (``--no-skip``),
stored in the database and printed, as a user's archive would be.

The child's resident memory (VmRSS and its peak VmHWM, from ``/proc/PID/status``) is
sampled whenever it prints a row and twice a second; printed every ``--report-every``
rows and at the end: the peak after 1,000 files, the peak after all of them, their
ratio, the rate, the CPU and the load average. Exits 1 when the final peak is more than
10 % above the peak after 1,000 files (or the run failed). The machine may be shared:
memory does not depend on the load, the rate does.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.benchmarks.machine import cpu_name, load_average  # noqa: E402

POOLS = ("covid-cxnet", "covid19-radiography", "kermany-pediatric", "ozturk-nih")
EARLY = 1000  # the reference: the peak after this many files
GROWTH_LIMIT = 1.10  # the final peak may be at most 10 % above the early one
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}


def pool_files(data: Path) -> list[Path]:
    """Every image of the pools (LABEL/FILE), in a stable order."""
    files = []
    for pool in POOLS:
        root = data / pool
        if root.is_dir():
            files += sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    return files


def link_folder(files: list[Path], count: int, root: Path, per_folder: int) -> Path:
    """``count`` links to ``files`` (repeated), ``per_folder`` to a sub-folder of ``root``."""
    for k in range(count):
        folder = root / f"part{k // per_folder:04d}"
        if k % per_folder == 0:
            folder.mkdir(parents=True)
        source = files[k % len(files)]
        os.symlink(source, folder / f"{k:07d}{source.suffix}")
    return root


def memory_kib(pid: int) -> tuple[int, int] | None:
    """(VmRSS, VmHWM) of a process in KiB; None once it has gone."""
    values = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    values[key] = int(rest.split()[0])
    except OSError:
        return None
    if len(values) < 2:
        return None
    return values["VmRSS"], values["VmHWM"]


class Sampler:
    """The child's memory, sampled by row count (from its output) and by time."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.rows = 0
        self.rss = self.hwm = 0
        self.early_hwm: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def sample(self) -> None:
        got = memory_kib(self.pid)
        if got is not None:
            self.rss, hwm = got
            self.hwm = max(self.hwm, hwm)

    def row(self) -> None:
        self.rows += 1
        if self.rows == EARLY or self.rows % 100 == 0:
            self.sample()
        if self.rows == EARLY:
            self.early_hwm = self.hwm

    def _poll(self) -> None:
        while not self._stop.wait(0.5):
            self.sample()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def mib(kib: int | None) -> str:
    return "-" if kib is None else f"{kib / 1024:.0f} MiB"


def runtime_cache() -> Path:
    """The user's exported-graph cache (the child's data folder is fresh)."""
    from xraydesk import paths
    from xraydesk.environment import RUNTIME_CACHE

    given = os.environ.get(RUNTIME_CACHE)
    return Path(given) if given else paths.data_dir() / "cache" / "runtime"


def run(args: argparse.Namespace, work: Path) -> int:
    files = pool_files(args.data)
    if not files:
        print(f"no pool images under {args.data}", file=sys.stderr)
        return 2
    folder = link_folder(files, args.files, work / "archive", args.per_folder)
    print(f"CPU: {cpu_name()}; load average {load_average()}")
    print(
        f"{args.files} files: links to {len(files)} pool images (repeated "
        f"{args.files / len(files):.1f}x), {args.per_folder} per folder; model {args.model}; "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}",
        flush=True,
    )
    env = dict(os.environ)
    env["XRAYDESK_DATA_DIR"] = str(work / "data")
    env["XRAYDESK_RUNTIME_CACHE"] = str(runtime_cache())
    command = [sys.executable, "-m", "xraydesk", "classify", str(folder), "--recursive"]
    command += ["--no-skip", "--model", args.model]
    start = time.monotonic()
    child = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    sampler = Sampler(child.pid)
    assert child.stdout is not None and child.stderr is not None
    errors: list[str] = []
    drain = threading.Thread(target=lambda: errors.extend(child.stderr), daemon=True)
    drain.start()
    first = True
    for _line in child.stdout:
        if first:  # the header line
            first = False
            continue
        sampler.row()
        if sampler.rows % args.report_every == 0:
            rate = sampler.rows / (time.monotonic() - start)
            print(
                f"  {sampler.rows:>7} rows  RSS {mib(sampler.rss)}  peak {mib(sampler.hwm)}  "
                f"{rate:.1f} img/s  load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
    code = child.wait()
    sampler.stop()
    drain.join(timeout=5)
    seconds = time.monotonic() - start
    early, final = sampler.early_hwm, sampler.hwm
    rate = sampler.rows / seconds
    print(f"exit code {code}; {sampler.rows} rows in {seconds:.0f} s ({rate:.1f} img/s)")
    print("".join(errors[-6:]).rstrip())
    print(f"peak RSS after {EARLY} files: {mib(early)}")
    print(f"peak RSS after {sampler.rows} files: {mib(final)}")
    print(f"CPU: {cpu_name()}; load average {load_average()}")
    if code != 0 or early is None or sampler.rows < args.files:
        print("FAIL: the run did not finish every file")
        return 1
    ratio = final / early
    verdict = "ok" if ratio <= GROWTH_LIMIT else "FAIL"
    print(f"ratio {ratio:.3f} (limit {GROWTH_LIMIT:.2f}): {verdict}")
    return 0 if ratio <= GROWTH_LIMIT else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=50_000)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--model", default="chest-3class")
    parser.add_argument("--per-folder", type=int, default=1000)
    parser.add_argument("--report-every", type=int, default=1000)
    args = parser.parse_args(argv)
    if args.files < EARLY:
        parser.error(f"--files must be at least {EARLY}")
    with tempfile.TemporaryDirectory(prefix="xraydesk-bench-memory-") as tmp:
        return run(args, Path(tmp))


if __name__ == "__main__":
    raise SystemExit(main())
