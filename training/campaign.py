"""The training campaign: a queue of trainings that runs for hours in the background.

    python training/campaign.py start      # start, or resume, in the background (nice 19)
    python training/campaign.py status     # where it stands: job, epoch, images/s, ETA
    python training/campaign.py stop       # end it; the next start resumes
    python training/campaign.py run        # the runner itself, in the foreground
    python training/campaign.py adopt JOB  # a table or a choice from training/results

Why a runner of its own: one full training takes hours on a 2-core CPU and a session
lasts three, so every job must survive being killed at any moment and pick up where it
stopped. The queue (``training/campaign.json``) lists the jobs in order; each job is one
``train_bundled.py`` command whose checkpoints (every epoch and every few minutes within
one) live in the campaign folder under the user cache, outside the repository, so a
restart of the machine or of the session loses at most minutes. A job that finished is
recorded in ``state.json`` and never run again.

A changed queue (``start --new-commit`` moves the campaign to HEAD, whose
``campaign.json`` is then read): jobs are matched by id, so finished ones stay done, an
interrupted one resumes from its checkpoints, new ones run in their place in the order.
A recipe choice already made is made again when the queue now names candidates it did
not weigh, as long as no job training with that choice has started (``stale_choice``).
A train job that ``continues`` an earlier one of the same recipe and profile runs in that
job's work folder: the stages it finished are kept as they are (``train_bundled``
reuses a staged stage) and only the stages its ``--add-stage`` arguments add are
trained, so a candidate that needs more epochs costs those epochs, not the whole run.
A train job with ``base_from`` starts from the finished model of an earlier train job
(``train_bundled --base``): a backbone this project trained on other pools.

Why a pinned source tree: ``start`` runs the code of one commit, checked out as a git
worktree in the campaign folder, so refactoring the repository cannot change or break a
training half-way. The commit is recorded at the first start and kept for every resume;
``start --new-commit`` moves the campaign to the current HEAD (finished jobs stay done).

What it writes (all under ``--root``, default ``<user cache>/xraydesk/campaign``):
``campaign.log`` (one line a minute: job, phase, epoch, images/s, CPU, ETA),
``status.json`` (the same, the last line), ``logs/JOB.log`` (the job's whole output),
``work/JOB`` (checkpoints), ``out/JOB`` (held-out tables, shipped models and cards),
``chosen.json`` (the recipe the held-out tables chose). Nothing is copied into the
repository: shipping a finished model is a reviewed commit.

A new machine (the cache folder is per machine, and a project moved to another kind of
machine starts with an empty one): ``adopt JOB...`` takes a held-out job's committed
table (``training/results/JOB.json``) as its outcome instead of hours of training it
again, and a choose job's choice as made from those committed tables. A table is all a
choice weighs; the chosen job's predictions, which the trained model's operating rule is
chosen from, are not committed, so that job must run again (``job_command`` says so
instead of shipping a card without them).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
QUEUE = HERE / "campaign.json"
RESULTS = HERE / "results"
NICE = 19
LOG_EVERY_S = 60.0

LINE = re.compile(
    r"^\[(?P<phase>\w+)\] (?P<message>.*?) (?P<done>\d+)/(?P<total>\d+)"
    r"(?:.*? (?P<rate>[\d.]+) img/s)?(?:.*? eta (?P<eta>\d+)s)?"
)
EPOCH = re.compile(r"Epoch (\d+) of (\d+)")


def default_root() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("xraydesk", appauthor=False)) / "campaign"


def cpu_name() -> str:
    """The CPU (``xraydesk.model.device.cpu_model``, from this source tree) and its cores."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from xraydesk.model.device import cpu_model

    return f"{cpu_model()}, {os.cpu_count()} cores"


@dataclass
class Job:
    """One queue entry: a ``train_bundled.py`` command, or a recipe choice."""

    id: str
    recipe: str
    kind: str = "train"  # train | held-out | choose | soup
    profile: str | None = None
    args: list[str] = field(default_factory=list)
    candidates: list[str] = field(default_factory=list)  # choose: held-out job ids
    # train: the id of an earlier train job of the same recipe and profile whose stages
    # this one keeps; it trains only the stages it adds (``--add-stage`` in ``args``)
    continues: str | None = None
    # train: the id of an earlier train job whose finished model this one starts from
    # (``train_bundled --base``): a backbone trained here on other pools
    base_from: str | None = None
    # soup: the ids of earlier train jobs of the same recipe (runs on one split) whose
    # finished models are averaged and shipped (``train_bundled --soup``)
    of: list[str] = field(default_factory=list)
    note: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        return cls(**data)


def read_queue(path: Path = QUEUE) -> list[Job]:
    jobs = [Job.from_dict(j) for j in json.loads(path.read_text())["jobs"]]
    ids = [j.id for j in jobs]
    if len(set(ids)) != len(ids):
        raise SystemExit(f"campaign: duplicate job ids in {path}")
    for number, job in enumerate(jobs):
        if job.kind not in ("train", "held-out", "choose", "soup"):
            raise SystemExit(f"campaign: job {job.id} has an unknown kind {job.kind!r}")
        before = {j.id: j for j in jobs[:number]}
        if job.continues is not None:
            earlier = before.get(job.continues)
            if (
                earlier is None
                or job.kind != "train"
                or earlier.kind != "train"
                or (earlier.recipe, earlier.profile) != (job.recipe, job.profile)
            ):
                raise SystemExit(
                    f"campaign: job {job.id} continues {job.continues}, which must be an "
                    "earlier train job of the same recipe and profile"
                )
        if job.base_from is not None:
            earlier = before.get(job.base_from)
            if earlier is None or job.kind != "train" or earlier.kind != "train":
                raise SystemExit(
                    f"campaign: job {job.id} starts from the model of {job.base_from}, which "
                    "must be an earlier train job"
                )
        if job.kind == "soup" and (
            len(set(job.of)) < 2
            or any(
                before.get(i) is None or before[i].kind != "train" or before[i].recipe != job.recipe
                for i in job.of
            )
        ):
            raise SystemExit(
                f"campaign: soup job {job.id} must average two or more earlier train jobs "
                "of its recipe"
            )
    return jobs


class State:
    """``state.json``: the pinned commit and each job's outcome, written atomically."""

    def __init__(self, root: Path) -> None:
        self.path = root / "state.json"
        self.data: dict[str, Any] = {"commit": None, "jobs": {}}
        if self.path.is_file():
            self.data = json.loads(self.path.read_text())

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2) + "\n")
        tmp.replace(self.path)

    def job(self, job_id: str) -> dict[str, Any]:
        return self.data["jobs"].setdefault(job_id, {"status": "pending", "attempts": 0})


# -- choosing a recipe from held-out tables ------------------------------------------------


def held_out_score(table: dict[str, Any]) -> tuple[float, float]:
    """(mean, worst) accuracy over the held-out pools that ran: higher is better.

    The mean over hospitals leads, the worst pool breaks ties. Why not the worst pool
    first (the rule until 2026-12-07): the same recipe, seed and split trained on two
    CPUs moved its worst pool's accuracy by 0.12 (0.165 and 0.046, kermany-pediatric held
    out), more than the gaps between the candidates, and the second run alone would have
    chosen another recipe; the mean over the pools moves far less
    (training/results/README.md).
    """
    accs = [
        float(row["accuracy"])
        for row in table.get("sources", {}).values()
        if isinstance(row, dict) and row.get("accuracy") is not None
    ]
    if not accs:
        return (float("-inf"), float("-inf"))
    return (sum(accs) / len(accs), min(accs))


def held_out_rank(row: dict[str, Any]) -> tuple[float, float]:
    """A choice row's rank (``held_out_score``'s order)."""
    return (row["mean"], row["worst"])


def choose(
    job: Job, root: Path, jobs: dict[str, Job], results: Path | None = None
) -> dict[str, Any]:
    """The candidate whose held-out table scores best; written to ``chosen.json``. The
    tables are the campaign folder's, or with ``results`` the committed ones."""
    rows = []
    for cid in job.candidates:
        cand = jobs[cid]
        table_path = (
            results / f"{cid}.json"
            if results is not None
            else root / "out" / cid / f"{cand.recipe}-held-out.json"
        )
        if not table_path.is_file():
            rows.append({"job": cid, "profile": cand.profile, "missing": str(table_path)})
            continue
        mean, worst = held_out_score(json.loads(table_path.read_text()))
        rows.append({"job": cid, "profile": cand.profile, "mean": mean, "worst": worst})
    scored = [r for r in rows if "mean" in r]
    if not scored:
        raise RuntimeError(f"no held-out table among {job.candidates}")
    best = max(scored, key=held_out_rank)
    chosen = {"recipe": job.recipe, "profile": best["profile"], "job": best["job"], "table": rows}
    if results is not None:
        chosen["from"] = str(results)
    path = root / "chosen.json"
    data = json.loads(path.read_text()) if path.is_file() else {}
    data[job.recipe] = chosen
    path.write_text(json.dumps(data, indent=2) + "\n")
    return chosen


def stale_choice(job: Job, root: Path, jobs: list[Job], state: State) -> bool:
    """Whether a finished choice must be made again: the queue (moved to a new commit with
    ``start --new-commit``) names candidates its table did not weigh, and no job that
    trains with this recipe's choice has started yet. Once one has, the choice stands: a
    resumed training must not change profile half-way, so later candidates' tables are
    only kept for the card's "What was tried"."""
    path = root / "chosen.json"
    chosen = json.loads(path.read_text()).get(job.recipe) if path.is_file() else None
    if chosen is None or set(job.candidates) <= {row["job"] for row in chosen["table"]}:
        return False
    return all(
        state.data["jobs"].get(j.id, {}).get("status", "pending") == "pending"
        for j in jobs
        if j.profile == "@chosen" and j.recipe == job.recipe
    )


def resolve_profile(job: Job, root: Path) -> str | None:
    """``@chosen`` stands for the profile a choose job picked for this recipe."""
    if job.profile != "@chosen":
        return job.profile
    path = root / "chosen.json"
    chosen = json.loads(path.read_text()).get(job.recipe) if path.is_file() else None
    if chosen is None:
        raise RuntimeError(f"job {job.id} needs a chosen profile for {job.recipe}; none yet")
    return chosen["profile"]


def chosen_held_out(job: Job, root: Path) -> Path:
    """The leave-one-source-out folder of the held-out job whose profile a train job
    ships: its predictions choose the shipped card's operating rule and shift calibration."""
    chosen = json.loads((root / "chosen.json").read_text())[job.recipe]
    folder = root / "work" / chosen["job"] / job.recipe / "held-out"
    if not folder.is_dir():
        raise RuntimeError(
            f"job {job.id} ships with the held-out predictions of {chosen['job']}, and "
            f"{folder} is missing (an adopted table carries none): run that job again"
        )
    return folder


def _committed_table(job: Job, results: Path) -> dict[str, Any]:
    """The committed table of held-out ``job``, checked to be of its recipe and profile."""
    table_path = results / f"{job.id}.json"
    if not table_path.is_file():
        raise SystemExit(f"campaign: {job.id}: no committed table {table_path}")
    table = json.loads(table_path.read_text())
    if (table.get("recipe"), table.get("profile")) != (job.recipe, job.profile):
        raise SystemExit(
            f"campaign: {table_path} is recipe {table.get('recipe')!r} profile "
            f"{table.get('profile')!r}, the job {job.recipe!r} profile {job.profile!r}"
        )
    return table


def _adopted(state: State, job_id: str, source: Path) -> None:
    state.data["jobs"][job_id] = {
        "status": "done",
        "attempts": 0,
        "adopted": str(source),
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    state.save()


def adopt(root: Path, jobs: list[Job], ids: list[str], results: Path = RESULTS) -> list[str]:
    """Record held-out jobs as done from their committed tables, and a choice as made
    from the committed tables of its candidates; the lines to print.

    Only a job not yet done is adopted, only a held-out one or a choice, and only from
    tables of the same recipe and profile, so a table can never stand in for another
    recipe's run. Why a choice too: it was made once, on the machine that trained every
    candidate, and the committed results say what it chose; made again when one
    candidate is trained anew, it would weigh one new table against old ones (the same
    recipe, seed and split gave the pediatric fold 0.165 on the Intel Xeon and 0.046 on
    the AMD EPYC), and could pick a candidate whose predictions are not on this machine.
    """
    by_id = {j.id: j for j in jobs}
    state = State(root)
    lines = []
    for job_id in ids:
        job = by_id.get(job_id)
        table_path = results / f"{job_id}.json"
        if job is None:
            raise SystemExit(f"campaign: no job {job_id!r} in the queue")
        if job.kind not in ("held-out", "choose"):
            raise SystemExit(f"campaign: {job_id} is a {job.kind} job; only tables and choices")
        if state.job(job_id)["status"] == "done":
            lines.append(f"{job_id}: already done, left as it is")
            continue
        if job.kind == "choose":
            for cid in job.candidates:  # each table checked as an adopted one would be
                _committed_table(by_id[cid], results)
            chosen = choose(job, root, by_id, results)
            _adopted(state, job_id, results)
            append_log(root, f"[{job_id}] chose {chosen['profile']} from the committed tables")
            lines.append(f"{job_id}: chose {chosen['profile']} from the committed tables")
            continue
        table = _committed_table(job, results)
        out = root / "out" / job_id / f"{job.recipe}-held-out.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(table, indent=2) + "\n")
        _adopted(state, job_id, table_path)
        append_log(root, f"[{job_id}] adopted the committed table {table_path.name}")
        lines.append(f"{job_id}: done from {table_path.name} (no predictions)")
    return lines


# -- running -------------------------------------------------------------------------------


def base_card(job: Job, root: Path, jobs: dict[str, Job]) -> Path:
    """The finished model card a ``base_from`` job starts from (that job's ``--out``)."""
    return finished_card(job, job.base_from or "", root, jobs)


def finished_card(job: Job, earlier_id: str, root: Path, jobs: dict[str, Job]) -> Path:
    """The model card an earlier train job shipped (its ``--out``), which ``job`` needs."""
    earlier = jobs.get(earlier_id)
    if earlier is None:
        raise RuntimeError(f"job {job.id} needs the model of {earlier_id}: no such job")
    card = root / "out" / earlier.id / f"{earlier.recipe}.json"
    if not card.is_file():
        raise RuntimeError(
            f"job {job.id} needs the model of {earlier.id}, and {card} is missing: "
            "that job has not finished"
        )
    return card


def job_command(
    job: Job, root: Path, data: Path, source: Path, jobs: dict[str, Job] | None = None
) -> list[str]:
    """The job's train_bundled command; ``jobs`` (the queue by id) resolves ``base_from``."""
    cmd = [
        sys.executable,
        "-u",
        str(source / "training" / "train_bundled.py"),
        job.recipe,
        "--data",
        str(data),
        "--out",
        str(root / "out" / job.id),
        "--work",
        # a continuing job keeps the finished stages in the work folder of the job it
        # continues (train_bundled reuses a staged stage as it is) and adds its own there
        str(root / "work" / (job.continues or job.id)),
    ]
    profile = resolve_profile(job, root)
    if profile:
        cmd += ["--profile", profile]
    if job.kind in ("train", "soup") and job.profile == "@chosen":
        cmd += ["--held-out-from", str(chosen_held_out(job, root))]
    if job.base_from is not None:
        cmd += ["--base", str(base_card(job, root, jobs or {}))]
    if job.kind == "soup":
        cmd += ["--soup", *(str(finished_card(job, i, root, jobs or {})) for i in job.of)]
    if job.kind == "held-out":
        cmd.append("--held-out-only")
    # one compute thread while the session works, both while it does not (``run_job``)
    return [*cmd, "--threads", "auto", *job.args]


class Progress:
    """Reads a job's output lines; one line to campaign.log and status.json when the
    phase or epoch changes and otherwise every minute, so even a run that lasts seconds
    leaves its rate in the log."""

    def __init__(self, root: Path, job: Job, position: str) -> None:
        self.root, self.job, self.position = root, job, position
        self.last_log = 0.0
        self.status: dict[str, Any] = {"job": job.id, "position": position, "cpu": cpu_name()}
        self.started = time.time()

    def feed(self, line: str) -> None:
        match = LINE.match(line)
        if match is None:
            if line.startswith(("held out ", "  held out ", "shipped ")):
                self.log(line.strip())
            return
        epoch = EPOCH.search(match["message"])
        stage = (self.status.get("phase"), self.status.get("epoch"))
        self.status.update(
            phase=match["phase"],
            done=int(match["done"]),
            total=int(match["total"]),
            epoch=f"{epoch[1]}/{epoch[2]}" if epoch else self.status.get("epoch"),
        )
        if match["rate"]:
            self.status["images_per_s"] = float(match["rate"])
        if match["eta"]:
            self.status["eta_s"] = int(match["eta"])
        changed = stage != (self.status["phase"], self.status["epoch"])
        if changed or time.monotonic() - self.last_log >= LOG_EVERY_S:
            self.log()

    def log(self, text: str | None = None) -> None:
        self.last_log = time.monotonic()
        now = time.strftime("%Y-%m-%d %H:%M:%S")
        s = self.status
        self.status["updated"] = now
        self.status["elapsed_s"] = round(time.time() - self.started)
        if text is None:
            eta = s.get("eta_s")
            text = (
                f"{s.get('phase', '?')} epoch {s.get('epoch') or '-'} "
                f"{s.get('done', 0)}/{s.get('total', 0)}, "
                f"{s.get('images_per_s', 0.0):.1f} img/s, "
                f"ETA {'?' if eta is None else f'{eta / 60:.0f} min'} (this run)"
            )
        append_log(self.root, f"{now} [{self.job.id} {self.position}] {text} | {s['cpu']}")
        (self.root / "status.json").write_text(json.dumps(self.status, indent=2) + "\n")


def append_log(root: Path, line: str) -> None:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "campaign.log", "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def run_job(
    job: Job, root: Path, data: Path, source: Path, position: str, jobs: dict[str, Job]
) -> int:
    """One train_bundled command, its output teed to logs/JOB.log; its exit code."""
    cmd = job_command(job, root, data, source, jobs)
    env = {**os.environ, "PYTHONPATH": str(source), "PYTHONUNBUFFERED": "1"}
    # One compute thread unless told otherwise: on this 2-core machine the campaign shares
    # the CPU with the session's own work, and a torch process with two OpenMP threads
    # whose other core is busy waits at every parallel region for a descheduled thread
    # (measured on the Intel Xeon: a 64 px ResNet-50 forward pass took 2.4 s with two
    # threads under load against 0.064 s with one), so two threads are far slower there.
    # The job's ``--threads auto`` (``idle_cores``) takes the second core while it is idle.
    env.setdefault("OMP_NUM_THREADS", "1")
    (root / "logs").mkdir(parents=True, exist_ok=True)
    progress = Progress(root, job, position)
    progress.log("start: " + " ".join(cmd[2:]))
    with (
        open(root / "logs" / f"{job.id}.log", "a", encoding="utf-8") as log,
        subprocess.Popen(
            cmd,
            cwd=source,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        ) as proc,
    ):
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            log.flush()
            progress.feed(line)
        code = proc.wait()
    progress.log(f"exit {code} after {(time.time() - progress.started) / 60:.1f} min")
    return code


def run_queue(root: Path, data: Path, source: Path, queue: Path, max_attempts: int) -> int:
    """Run every job not yet done, in order; a job that fails ``max_attempts`` times is
    recorded as failed and the queue goes on (later jobs may not need it)."""
    jobs = read_queue(queue)
    by_id = {j.id: j for j in jobs}
    state = State(root)
    append_log(
        root,
        f"{time.strftime('%Y-%m-%d %H:%M:%S')} runner up, pid {os.getpid()}, "
        f"source {source}, commit {state.data.get('commit')}, {cpu_name()}",
    )
    for number, job in enumerate(jobs, start=1):
        record = state.job(job.id)
        if (
            job.kind == "choose"
            and record["status"] == "done"
            and stale_choice(job, root, jobs, state)
        ):
            record["status"] = "pending"
            append_log(root, f"[{job.id}] the queue names new candidates: choosing again")
        if record["status"] in ("done", "failed"):
            continue
        position = f"{number}/{len(jobs)}"
        while record["status"] not in ("done", "failed"):
            record["attempts"] += 1
            record["status"] = "running"
            record.setdefault("started", time.strftime("%Y-%m-%d %H:%M:%S"))
            state.save()
            try:
                if job.kind == "choose":
                    chosen = choose(job, root, by_id)
                    append_log(root, f"[{job.id}] chose {chosen['profile']}: {chosen['table']}")
                    code = 0
                else:
                    code = run_job(job, root, data, source, position, by_id)
            except RuntimeError as exc:
                append_log(root, f"[{job.id}] cannot run: {exc}")
                code = 1
            if code == 0:
                record.update(status="done", finished=time.strftime("%Y-%m-%d %H:%M:%S"))
            elif code < 0 or code in (130, 137, 143):  # killed: leave it for the next start
                record["status"] = "interrupted"
                state.save()
                return code
            elif record["attempts"] >= max_attempts:
                record["status"] = "failed"
            state.save()
    append_log(root, f"{time.strftime('%Y-%m-%d %H:%M:%S')} queue finished")
    return 0


# -- start, stop, status -------------------------------------------------------------------


def git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def pinned_source(root: Path, state: State, new_commit: bool) -> Path:
    """The worktree of the campaign's commit (made, or moved to HEAD, as asked)."""
    if state.data.get("commit") is None or new_commit:
        state.data["commit"] = git("rev-parse", "HEAD")
        state.save()
    commit = state.data["commit"]
    source = root / "src" / commit[:12]
    if not (source / "training" / "train_bundled.py").is_file():
        source.parent.mkdir(parents=True, exist_ok=True)
        git("worktree", "prune")
        git("worktree", "add", "--detach", str(source), commit)
    return source


def running_pid(root: Path) -> int | None:
    pid_file = root / "runner.pid"
    if not pid_file.is_file():
        return None
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 0)
        return pid
    except (ValueError, ProcessLookupError, PermissionError):
        return None


def start(args: argparse.Namespace) -> int:
    root = args.root
    if (pid := running_pid(root)) is not None:
        print(f"campaign: already running (pid {pid}); see {root / 'campaign.log'}")
        return 0
    state = State(root)
    source = pinned_source(root, state, args.new_commit)
    cmd = [
        sys.executable,
        str(source / "training" / "campaign.py"),
        "run",
        "--root",
        str(root),
        "--data",
        str(args.data.resolve()),
        "--source",
        str(source),
    ]
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "runner.out", "a") as out:
        proc = subprocess.Popen(
            ["nice", "-n", str(NICE), *cmd],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    (root / "runner.pid").write_text(f"{proc.pid}\n")
    print(
        f"campaign: started (pid {proc.pid}, nice {NICE}) at commit "
        f"{state.data['commit'][:12]}; log {root / 'campaign.log'}"
    )
    return 0


def stop(args: argparse.Namespace) -> int:
    pid = running_pid(args.root)
    if pid is None:
        print("campaign: not running")
        return 0
    os.killpg(os.getpgid(pid), signal.SIGTERM)
    print(f"campaign: stopped pid {pid}; the next start resumes from the checkpoints")
    return 0


def status(args: argparse.Namespace) -> int:
    root = args.root
    state = State(root)
    pid = running_pid(root)
    print(f"campaign folder {root}")
    print(
        f"runner: {'running, pid ' + str(pid) if pid else 'not running'}; "
        f"commit {(state.data.get('commit') or '-')[:12]}"
    )
    for job in read_queue(args.queue):
        rec = state.data["jobs"].get(job.id, {"status": "pending"})
        shown = f"{rec['status']} (adopted)" if rec.get("adopted") else rec["status"]
        print(f"  {job.id:28s} {shown:16s} {job.note}")
    if (root / "status.json").is_file():
        print("now: " + (root / "status.json").read_text().strip())
    log = root / "campaign.log"
    if log.is_file():
        print("last log lines:")
        for line in log.read_text().splitlines()[-5:]:
            print("  " + line)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("start", "run", "stop", "status", "adopt"))
    parser.add_argument("jobs", nargs="*", help="(adopt) held-out job ids")
    parser.add_argument("--root", type=Path, default=None, help="campaign folder")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--queue", type=Path, default=QUEUE)
    parser.add_argument("--source", type=Path, default=ROOT, help="(run) source tree")
    parser.add_argument("--new-commit", action="store_true", help="(start) pin HEAD")
    parser.add_argument("--max-attempts", type=int, default=3)
    args = parser.parse_args(argv)
    args.root = (args.root or default_root()).resolve()
    if args.command == "start":
        return start(args)
    if args.command == "stop":
        return stop(args)
    if args.command == "status":
        return status(args)
    if args.command == "adopt":
        if not args.jobs:
            parser.error("adopt needs one or more held-out job ids")
        for line in adopt(args.root, read_queue(args.queue), args.jobs):
            print(line)
        return 0
    queue = args.source / "training" / "campaign.json" if args.queue == QUEUE else args.queue
    return run_queue(args.root, args.data, args.source.resolve(), queue, args.max_attempts)


if __name__ == "__main__":
    sys.exit(main())
