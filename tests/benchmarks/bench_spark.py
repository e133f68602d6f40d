"""Spark (local[N]) against the desktop batch engine: same files, same model, same run.

    OMP_NUM_THREADS=1 python tests/benchmarks/bench_spark.py --limit 1000 [--rounds 2]

The first ``--limit`` files of the kermany-pediatric manifest (default 500) are
classified by the bundled default model (``--model NAME`` for another) in fresh child
processes, interleaved round by round (desktop, Spark, desktop, Spark...):

1. desktop: ``Classifier.load`` then the batch engine (``xraydesk.batch.BatchRun``, not
   recording), what ``xraydesk classify`` runs;
2. Spark: a SparkSession on ``--master`` (default local[2]), then ``xraydesk.spark.classify``
   on a table of the paths, written to a fresh Parquet table.

Each child's time runs from its process start to its last row, so interpreter start,
imports, the model's load, Spark's Python workers and their model loads all count. Only
Spark's one-off session start (the JVM) is taken out, and reported apart: Spark is
judged without it, and shown with it too. Each child then runs the same job once more
(same process, same session): that ratio, the steady state of a long archive, is printed
beside the judged one, never instead of it. Both children find the model's exported graph
already cached (the parent loads the model once first), so neither pays the export, and
Spark's children find the JVM's class archive (``xraydesk.spark.jvm_archive``: a Spark
job on 8 files records it first), which every local session after the first one maps.

Where the time went: while each child runs, its process tree is sampled from /proc (the
driver, the JVM, pyspark's daemon, the Python workers) and each phase (start, session,
job, the job again) is printed with CPU ms per image by process, the cores the child kept
busy, those other processes took, and those left idle. On a loaded machine wall times
mostly measure the neighbours; CPU seconds per image say where Spark spends its own.

Prints the CPU, the load average before and after every child, images/s of each, the
ratio Spark / desktop (target: at least 0.75 on local[2], i.e. Spark's overhead at most
about 30 %; the median of the rounds), and exits 1 below it or when the two disagree on
how many files failed. A loaded machine slows both: compare the figures of one run.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.benchmarks.machine import cpu_name, load_average  # noqa: E402

TARGET = 0.75  # Spark's images/s at least this share of the desktop's (issue 28, item 4)
CONF = {"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false"}


def pool_files(data: Path, limit: int | None) -> list[Path]:
    pool = data / "kermany-pediatric"
    with open(pool / "manifest.csv", newline="") as fh:
        files = [pool / row["path"] for row in csv.DictReader(fh)]
    return files[:limit] if limit else files


def child_desktop(args: argparse.Namespace, spawned: float) -> dict:
    from xraydesk.batch.run import BatchOptions, BatchRun
    from xraydesk.classifier import Classifier

    files = [Path(line) for line in args.files.read_text().splitlines()[1:]]
    start = time.time()
    classifier = Classifier.load(args.model, device="cpu")
    loaded = time.time()
    options = BatchOptions(record=False, count_total=False, batch_size=args.batch)
    summary = BatchRun(files, classifier, options).run()
    done = time.time()
    BatchRun(files, classifier, options).run()  # again: the steady state
    end = time.time()
    return {
        "to_last_row_s": done - spawned,
        "start_and_imports_s": start - spawned,
        "model_load_s": loaded - start,
        "run_s": done - loaded,
        "again_s": end - done,
        "rows": summary.done,
        "failed": summary.failed,
        "runtime": classifier.device.label,
        "schedule": summary.schedule,
        "marks": [("start, load", spawned, loaded), ("job", loaded, done), ("again", done, end)],
    }


def child_spark(args: argparse.Namespace, spawned: float) -> dict:
    from xraydesk.spark import classify
    from xraydesk.spark.session import get_session

    start = time.time()
    conf = {**CONF, **dict(setting.split("=", 1) for setting in args.conf)}
    spark = get_session(args.master, "xraydesk-bench", conf)
    spark.sparkContext.setLogLevel("ERROR")
    session = time.time()
    summary = classify(args.files, args.out, model=args.model, spark=spark, batch_size=args.batch)
    done = time.time()
    again = args.out.with_name(args.out.name + "-again")
    classify(args.files, again, model=args.model, spark=spark, batch_size=args.batch)
    end = time.time()
    again_s = end - done  # the steady state: session, JVM and workers warm
    cores = spark.sparkContext.defaultParallelism
    spark.stop()
    return {
        "to_last_row_s": done - spawned,
        "start_and_imports_s": start - spawned,
        "session_start_s": session - start,
        "job_s": done - session,
        "again_s": again_s,
        "rows": summary.rows,
        "failed": summary.failed,
        "cores": cores,
        "marks": [
            ("start, imports", spawned, start),
            ("session", start, session),
            ("job", session, done),
            ("again", done, end),
        ],
    }


def run_child(kind: str, args: argparse.Namespace, files: Path, out: Path) -> dict:
    before = load_average()
    command = [sys.executable, __file__, "--child", kind, "--model", args.model]
    command += ["--master", args.master, "--batch", str(args.batch)]
    command += ["--files", str(files), "--out", str(out), "--spawned", str(time.time())]
    for setting in args.conf:
        command += ["--conf", setting]
    spawned = float(command[command.index("--spawned") + 1])
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cpu = TreeCpu(child.pid, spawned) if Path("/proc/stat").exists() else None
    stdout, stderr = child.communicate(timeout=3600)
    if cpu is not None:
        cpu.finish()
    if child.returncode != 0:
        raise SystemExit(f"{kind} child failed:\n{stderr[-3000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result["load_before"], result["load_after"] = before, load_average()
    if cpu is not None:
        marks = result.pop("marks")
        result["cpu"] = phase_lines(cpu, marks, max(1, result["rows"]))
        result["processes"] = cpu.processes()
        # CPU seconds to the last row, leaving out Spark's session start as its time does
        spent = [cpu.between(start, end) for name, start, end in marks[:-1] if name != "session"]
        if all(spent):
            result["cpu_to_last_row_s"] = round(sum(got["ours"] for got in spent), 2)
    return result


# -- where the time went: CPU seconds per process of a child's tree, sampled from /proc ---

HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
SAMPLE_S = 0.1
# a Spark child's processes: the driver (the child itself), the JVM (and spark-submit's
# launcher scripts), pyspark's daemon (forks the workers) and the Python workers
ROLES = ("driver", "jvm", "daemon", "workers")
# the daemon's module (``python -m``): pyspark's, or xraydesk's on local masters
# (``xraydesk.spark.daemon``); an argument of its own, not the JVM's setting that names it
DAEMONS = (b"pyspark.daemon", b"xraydesk.spark.daemon")


def _proc_table() -> dict[int, tuple[str, int, int]]:
    """pid: (command name, parent pid, CPU ticks user+system) for every process."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            text = Path(f"/proc/{name}/stat").read_text()
        except OSError:  # gone meanwhile
            continue
        close = text.rfind(")")
        fields = text[close + 2 :].split()
        table[int(name)] = (
            text[text.find("(") + 1 : close],
            int(fields[1]),
            int(fields[11]) + int(fields[12]),
        )
    return table


def _machine_ticks() -> tuple[int, int]:
    """(busy, all) CPU ticks of the whole machine since boot (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return sum(values) - idle, sum(values)


class TreeCpu:
    """CPU seconds of a child's process tree by role, and the machine's busy time, sampled
    every ``SAMPLE_S`` in a thread while the child runs (Linux only). A process's last
    sampled ticks are kept after it exits, so at most ``SAMPLE_S`` of its CPU is missed.
    Why CPU seconds: on a loaded machine wall time says more about the neighbours than
    about Spark; CPU seconds per image, per process, say where Spark spends its own."""

    def __init__(self, root: int, since: float) -> None:
        self.root = root
        self.ticks: dict[int, int] = {}
        self.roles: dict[int, tuple[str, str]] = {}  # pid: (command name, role)
        # nothing spent at ``since`` (before the child was started)
        zero = dict.fromkeys(ROLES, 0.0)
        self.samples: list[tuple[float, dict[str, float], int, int]] = [
            (since, zero, *_machine_ticks())
        ]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _role(self, pid: int, comm: str, table: dict[int, tuple[str, int, int]]) -> str:
        if pid == self.root:
            return "driver"
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            command = b""
        args = command.split(b"\0")
        if any(arg in DAEMONS or arg.endswith(b"pyspark/daemon.py") for arg in args):
            parent = self.roles.get(table[pid][1], ("", ""))[1]
            return "workers" if parent in ("daemon", "workers") else "daemon"
        if b"pyspark.worker" in command:
            return "workers"
        return "jvm"  # java, and the launcher scripts that exec it

    def _sample(self) -> None:
        table = _proc_table()
        mine = {self.root} | set(self.ticks)
        grew = True
        while grew:  # descendants, parents first
            grew = False
            for pid, (_comm, parent, _ticks) in table.items():
                if pid not in mine and parent in mine:
                    mine.add(pid)
                    grew = True
        for pid in sorted(mine, key=lambda p: (p != self.root, table.get(p, ("", 0))[1])):
            if pid not in table:
                continue
            comm, _parent, ticks = table[pid]
            if self.roles.get(pid, ("",))[0] != comm:  # new, or exec'd (bash -> java)
                self.roles[pid] = (comm, self._role(pid, comm, table))
            self.ticks[pid] = ticks
        by_role = dict.fromkeys(ROLES, 0.0)
        for pid, ticks in self.ticks.items():
            by_role[self.roles[pid][1]] += ticks / HZ
        self.samples.append((time.time(), by_role, *_machine_ticks()))

    def _loop(self) -> None:
        while not self.stop.is_set():
            try:
                self._sample()
            except (OSError, ValueError, IndexError):  # /proc not there: no figures
                return
            self.stop.wait(SAMPLE_S)

    def processes(self) -> dict[str, int]:
        """How many processes of each role ran (a second daemon, or more workers than
        cores, means Spark started Python twice)."""
        counts = dict.fromkeys(ROLES, 0)
        for _comm, role in self.roles.values():
            counts[role] += 1
        return {role: n for role, n in counts.items() if n}

    def finish(self) -> None:
        self.stop.set()
        self.thread.join()

    def between(self, start: float, end: float) -> dict[str, float] | None:
        """CPU seconds by role, ours (all roles), others (the rest of the machine) and
        idle, from the last sample at or before ``start`` to the first at or after ``end``."""
        before = [s for s in self.samples if s[0] <= start]
        after = [s for s in self.samples if s[0] >= end]
        if not before or not after:
            return None
        (t0, r0, b0, a0), (t1, r1, b1, a1) = before[-1], after[0]
        cpu = {role: r1[role] - r0[role] for role in ROLES}
        cpu["ours"] = sum(cpu.values())
        cpu["others"] = max(0.0, (b1 - b0) / HZ - cpu["ours"])
        cpu["idle"] = (a1 - a0 - (b1 - b0)) / HZ
        cpu["wall"] = t1 - t0
        return cpu


def phase_lines(cpu: TreeCpu, marks: list[tuple[str, float, float]], rows: int) -> list[str]:
    """One line per phase: wall, our cores busy, CPU ms per image by role, others and idle
    cores (what a neighbour took, what nobody used)."""
    lines = []
    for name, start, end in marks:
        got = cpu.between(start, end)
        if got is None or got["wall"] <= 0:
            continue
        wall = got["wall"]
        roles = ", ".join(
            f"{role} {1000 * got[role] / rows:.1f}" for role in ROLES if got[role] >= 0.05
        )
        lines.append(
            f"  {name:<16} {wall:6.1f} s wall, ours {got['ours'] / wall:.2f} cores, "
            f"others {got['others'] / wall:.2f}, idle {got['idle'] / wall:.2f}; "
            f"CPU ms/image: {1000 * got['ours'] / rows:.1f} ({roles})"
        )
    return lines


def rate(rows: int, seconds: float) -> float:
    return round(rows / seconds, 1) if seconds > 0 else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--limit", type=int, default=500, help="first N files of the pool")
    parser.add_argument("--rounds", type=int, default=1, help="desktop/Spark pairs, interleaved")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--model", default="chest-3class", help="library model name or card")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument(
        "--conf", action="append", default=[], metavar="KEY=VALUE", help="a Spark setting"
    )
    parser.add_argument("--child", choices=("desktop", "spark"), help=argparse.SUPPRESS)
    parser.add_argument("--files", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--spawned", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run = child_desktop if args.child == "desktop" else child_spark
        print(json.dumps(run(args, args.spawned)))
        return 0

    work = Path(tempfile.mkdtemp(prefix="bench-spark-"))
    try:
        return compare(args, work)
    finally:  # the exported graph, the Parquet tables, the JVM's class archive (180 MB)
        shutil.rmtree(work, ignore_errors=True)


def compare(args: argparse.Namespace, work: Path) -> int:
    """The rounds, in ``work``; 0 when Spark reached the target and the rows agree."""
    os.environ.setdefault("XRAYDESK_DATA_DIR", str(work / "data"))  # children inherit it
    from xraydesk.classifier import Classifier
    from xraydesk.model.library import resolve_model

    card = resolve_model(args.model)
    args.model = str(card.path)
    runtime = Classifier.load(card, device="cpu").device.label  # exports the graph once
    files = pool_files(args.data.resolve(), args.limit)
    table = work / "files.csv"
    table.write_text("path\n" + "".join(f"{f}\n" for f in files))
    print(f"CPU: {cpu_name()}; load average {load_average()}")
    print(f"{card.label} on {runtime}; {len(files)} files; Spark {args.master}")

    # the first local session records the JVM's class archive (spark.jvm_archive) as it
    # exits, once per machine: done here, as the graph's export, so every round maps it
    table_few = work / "few.csv"
    table_few.write_text("path\n" + "".join(f"{f}\n" for f in files[:8]))
    run_child("spark", args, table_few, work / "ready.parquet")

    rounds = []
    for k in range(args.rounds):
        desktop = run_child("desktop", args, table, work / f"unused-{k}")
        spark = run_child("spark", args, table, work / f"out-{k}.parquet")
        rounds.append((desktop, spark))
        cpu = {"desktop": desktop.pop("cpu", []), "spark": spark.pop("cpu", [])}
        print(json.dumps({"round": k + 1, "desktop": desktop, "spark": spark}, indent=1))
        for side, lines in cpu.items():
            print(f"where the time went, {side} (CPU ms/image are per image of the job):")
            print("\n".join(lines))

    ratios, with_start, on_the_job, steady = [], [], [], []
    for desktop, spark in rounds:
        desk = rate(desktop["rows"], desktop["to_last_row_s"])
        without = spark["to_last_row_s"] - spark["session_start_s"]
        ratios.append(rate(spark["rows"], without) / desk)
        with_start.append(rate(spark["rows"], spark["to_last_row_s"]) / desk)
        on_the_job.append(
            rate(spark["rows"], spark["job_s"]) / rate(desktop["rows"], desktop["run_s"])
        )
        steady.append(
            rate(spark["rows"], spark["again_s"]) / rate(desktop["rows"], desktop["again_s"])
        )
        print(
            f"desktop {desk} images/s; Spark {rate(spark['rows'], without)} images/s without "
            f"its session start ({spark['session_start_s']:.1f} s), "
            f"{rate(spark['rows'], spark['to_last_row_s'])} with it"
        )
    ratio = statistics.median(ratios)
    per_cpu = [
        (desktop["cpu_to_last_row_s"] / spark["cpu_to_last_row_s"])
        for desktop, spark in rounds
        if desktop.get("cpu_to_last_row_s") and spark.get("cpu_to_last_row_s")
    ]
    if per_cpu:  # robust to a loaded machine: what each spent, not what it was given
        print(
            f"Spark / desktop, images per CPU-second (all their processes, to the last row, "
            f"Spark without its session start): {statistics.median(per_cpu):.2f}"
        )
    print(
        f"Spark / desktop, images/s: {ratio:.2f} without the session start (target >= "
        f"{TARGET}), {statistics.median(with_start):.2f} with it; on the job alone (after "
        f"each has its model / session): {statistics.median(on_the_job):.2f}; the same job "
        f"again in the same process and session: {statistics.median(steady):.2f}"
    )
    print(f"load average after: {load_average()}")
    agree = all(
        s["rows"] == len(files) and s["failed"] == d["failed"] and d["rows"] == len(files)
        for d, s in rounds
    )
    if not agree:
        print("the desktop and Spark disagree on rows or failures")
    return 0 if agree and ratio >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
