"""The training campaign's runner (training/campaign.py): queue, recipe choice, resume."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.paths import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "training"))

import campaign

TINY = ["--limit", "6", "--size", "32", "--batch", "8"]


def write_queue(path: Path, jobs: list[dict]) -> Path:
    path.write_text(json.dumps({"jobs": jobs}))
    return path


def table(accuracies: dict[str, float | None]) -> dict:
    return {
        "sources": {
            pool: ({"skipped": "too few"} if acc is None else {"accuracy": acc, "n": 10})
            for pool, acc in accuracies.items()
        }
    }


def test_the_shipped_queue_names_known_recipes_and_profiles():
    jobs = campaign.read_queue()
    ids = {j.id for j in jobs}
    for job in jobs:
        if job.kind == "choose":
            assert set(job.candidates) <= ids
            continue
        recipe = json.loads((REPO_ROOT / "training" / "configs" / f"{job.recipe}.json").read_text())
        if job.profile and job.profile != "@chosen":
            assert job.profile in recipe["profiles"], (job.id, job.profile)
    # the held-out tables come before the choice that reads them, and that before training
    order = [j.id for j in jobs]
    choose = next(j for j in jobs if j.kind == "choose")
    assert all(order.index(c) < order.index(choose.id) for c in choose.candidates)
    chosen = [j for j in jobs if j.profile == "@chosen"]
    assert chosen and all(order.index(j.id) > order.index(choose.id) for j in chosen)


def test_the_mean_over_held_out_pools_decides_and_the_worst_breaks_ties():
    assert campaign.held_out_score(table({"a": 0.9, "b": 0.6, "c": None})) == pytest.approx(
        (0.75, 0.6)
    )
    assert campaign.held_out_score(table({})) == (float("-inf"), float("-inf"))
    # the committed tables: base leads on the mean (0.463) though not on every pool
    rows = {
        job: dict(zip(("mean", "worst"), campaign.held_out_score(
            json.loads((campaign.RESULTS / f"{job}.json").read_text())), strict=True))
        for job in ("chest-held-out-base", "chest-held-out-shortcut", "chest-held-out-mix")
    }  # fmt: skip
    assert max(rows, key=lambda job: campaign.held_out_rank(rows[job])) == "chest-held-out-base"
    assert rows["chest-held-out-base"]["mean"] == pytest.approx(0.463, abs=5e-4)


def test_a_continuing_job_must_follow_a_train_job_of_its_recipe_and_profile(tmp_path: Path):
    base = {"id": "t", "recipe": "r", "profile": "p"}
    ok = write_queue(tmp_path / "ok.json", [base, {**base, "id": "u", "continues": "t"}])
    later = campaign.read_queue(ok)[1]
    assert later.continues == "t"
    command = campaign.job_command(later, tmp_path, tmp_path / "data", tmp_path / "src")
    assert command[command.index("--work") + 1] == str(tmp_path / "work" / "t")  # t's stages
    assert command[command.index("--out") + 1] == str(tmp_path / "out" / "u")  # its own card
    for wrong in (
        [{**base, "id": "u", "continues": "t"}, base],  # continues a later job
        [base, {**base, "id": "u", "profile": "q", "continues": "t"}],  # another profile
        [base, {**base, "id": "u", "recipe": "s", "continues": "t"}],  # another recipe
        [base, {"id": "u", "recipe": "r", "kind": "held-out", "continues": "t"}],
        [base, {**base, "id": "u", "continues": "nobody"}],
    ):
        with pytest.raises(SystemExit, match="continues"):
            campaign.read_queue(write_queue(tmp_path / "wrong.json", wrong))


def test_a_job_starts_from_the_model_of_an_earlier_train_job(tmp_path: Path):
    base = {"id": "adult", "recipe": "a"}
    tuned = {"id": "kids", "recipe": "k", "profile": "p", "base_from": "adult"}
    jobs = campaign.read_queue(write_queue(tmp_path / "ok.json", [base, tuned]))
    by_id = {j.id: j for j in jobs}
    with pytest.raises(RuntimeError, match="has not finished"):
        campaign.job_command(by_id["kids"], tmp_path, tmp_path / "data", tmp_path / "src", by_id)
    card = tmp_path / "out" / "adult" / "a.json"
    card.parent.mkdir(parents=True)
    card.write_text("{}")
    command = campaign.job_command(by_id["kids"], tmp_path, tmp_path, tmp_path, by_id)
    assert command[command.index("--base") + 1] == str(card)
    for wrong in (
        [tuned, base],  # an earlier job only
        [{**base, "kind": "held-out"}, tuned],  # a trained model only
        [base, {**tuned, "base_from": "nobody"}],
    ):
        with pytest.raises(SystemExit, match="starts from the model of"):
            campaign.read_queue(write_queue(tmp_path / "wrong.json", wrong))


def test_a_soup_job_averages_the_models_of_earlier_train_jobs_of_its_recipe(tmp_path: Path):
    runs = [{"id": f"run{k}", "recipe": "r", "profile": "p"} for k in (1, 2)]
    soup = {"id": "avg", "recipe": "r", "kind": "soup", "profile": "p", "of": ["run1", "run2"]}
    jobs = campaign.read_queue(write_queue(tmp_path / "ok.json", [*runs, soup]))
    by_id = {j.id: j for j in jobs}
    with pytest.raises(RuntimeError, match=r"run1, and .* has not finished"):
        campaign.job_command(by_id["avg"], tmp_path, tmp_path, tmp_path, by_id)
    cards = []
    for run in ("run1", "run2"):
        card = tmp_path / "out" / run / "r.json"
        card.parent.mkdir(parents=True)
        card.write_text("{}")
        cards.append(str(card))
    command = campaign.job_command(by_id["avg"], tmp_path, tmp_path, tmp_path, by_id)
    at = command.index("--soup")
    assert command[at + 1 : at + 3] == cards
    assert command[command.index("--out") + 1] == str(tmp_path / "out" / "avg")
    for wrong in (
        [*runs, {**soup, "of": ["run1"]}],  # two or more
        [*runs, {**soup, "of": ["run1", "run1"]}],
        [soup, *runs],  # earlier jobs only
        [runs[0], {**runs[1], "recipe": "s"}, soup],  # of its own recipe
        [runs[0], {**runs[1], "kind": "held-out"}, soup],  # trained models only
    ):
        with pytest.raises(SystemExit, match="must average two or more"):
            campaign.read_queue(write_queue(tmp_path / "wrong.json", wrong))


def test_choose_writes_the_best_candidate_and_training_uses_it(tmp_path: Path):
    jobs = {
        "a": campaign.Job(id="a", recipe="r", kind="held-out", profile="plain"),
        "b": campaign.Job(id="b", recipe="r", kind="held-out", profile="shortcut"),
        "gone": campaign.Job(id="gone", recipe="r", kind="held-out", profile="other"),
    }
    for job_id, accs in (("a", {"x": 0.95, "y": 0.55}), ("b", {"x": 0.85, "y": 0.70})):
        out = tmp_path / "out" / job_id
        out.mkdir(parents=True)
        (out / "r-held-out.json").write_text(json.dumps(table(accs)))
    pick = campaign.Job(id="pick", recipe="r", kind="choose", candidates=["a", "b", "gone"])
    chosen = campaign.choose(pick, tmp_path, jobs)
    assert chosen["profile"] == "shortcut"  # mean 0.775 beats 0.75
    assert any("missing" in row for row in chosen["table"])
    train = campaign.Job(id="t", recipe="r", profile="@chosen")
    assert campaign.resolve_profile(train, tmp_path) == "shortcut"
    # the shipped card's operating rule is chosen from the chosen job's held-out predictions,
    # and a training refuses to start (rather than ship a card without them) when they are gone
    with pytest.raises(RuntimeError, match="held-out predictions of b"):
        campaign.job_command(train, tmp_path, tmp_path / "data", tmp_path / "src")
    (tmp_path / "work" / "b" / "r" / "held-out").mkdir(parents=True)
    command = campaign.job_command(train, tmp_path, tmp_path / "data", tmp_path / "src")
    folder = command[command.index("--held-out-from") + 1]
    assert folder == str(tmp_path / "work" / "b" / "r" / "held-out")
    other = campaign.Job(id="u", recipe="elsewhere", profile="@chosen")
    with pytest.raises(RuntimeError, match="chosen profile"):
        campaign.resolve_profile(other, tmp_path)


def test_a_moved_queue_with_new_candidates_chooses_again_until_training_starts(tmp_path: Path):
    out = tmp_path / "out" / "a"
    out.mkdir(parents=True)
    (out / "r-held-out.json").write_text(json.dumps(table({"x": 0.9})))
    jobs = {"a": campaign.Job(id="a", recipe="r", kind="held-out", profile="plain")}
    campaign.choose(campaign.Job(id="pick", recipe="r", kind="choose", candidates=["a"]),
                    tmp_path, jobs)  # fmt: skip
    moved = campaign.Job(id="pick", recipe="r", kind="choose", candidates=["a", "ema"])
    train = campaign.Job(id="t", recipe="r", profile="@chosen")
    queue = [jobs["a"], moved, train]
    state = campaign.State(tmp_path)
    state.data["jobs"] = {"a": {"status": "done"}, "pick": {"status": "done"}}
    assert campaign.stale_choice(moved, tmp_path, queue, state)  # "ema" was never weighed
    same = campaign.Job(id="pick", recipe="r", kind="choose", candidates=["a"])
    assert not campaign.stale_choice(same, tmp_path, queue, state)
    state.data["jobs"]["t"] = {"status": "interrupted"}  # training with the choice began
    assert not campaign.stale_choice(moved, tmp_path, queue, state)

    # the runner, moved to a queue naming a finished new candidate, chooses again
    ema = tmp_path / "out" / "ema"
    ema.mkdir(parents=True)
    (ema / "r-held-out.json").write_text(json.dumps(table({"x": 0.95})))
    state.data["jobs"] = {k: {"status": "done", "attempts": 1} for k in ("a", "ema", "pick")}
    state.save()
    path = write_queue(tmp_path / "queue.json", [
        {"id": "a", "recipe": "r", "kind": "held-out", "profile": "plain"},
        {"id": "ema", "recipe": "r", "kind": "held-out", "profile": "plain-ema"},
        {"id": "pick", "recipe": "r", "kind": "choose", "candidates": ["a", "ema"]},
    ])  # fmt: skip
    assert campaign.run_queue(tmp_path, tmp_path, tmp_path, path, 3) == 0
    assert json.loads((tmp_path / "chosen.json").read_text())["r"]["profile"] == "plain-ema"
    assert "choosing again" in (tmp_path / "campaign.log").read_text()


def test_adopting_committed_tables_lets_the_choice_run_without_training_them(tmp_path: Path):
    results = tmp_path / "results"
    results.mkdir()
    for job_id, profile, accs in (("a", "plain", {"x": 0.9}), ("b", "shortcut", {"x": 0.6})):
        (results / f"{job_id}.json").write_text(
            json.dumps({**table(accs), "recipe": "r", "profile": profile})
        )
    queue = [
        campaign.Job(id="a", recipe="r", kind="held-out", profile="plain"),
        campaign.Job(id="b", recipe="r", kind="held-out", profile="shortcut"),
        campaign.Job(id="c", recipe="r", kind="held-out", profile="other"),
        campaign.Job(id="pick", recipe="r", kind="choose", candidates=["a", "b"]),
    ]
    root = tmp_path / "campaign"
    lines = campaign.adopt(root, queue, ["a", "b"], results)
    assert lines == ["a: done from a.json (no predictions)", "b: done from b.json (no predictions)"]
    state = campaign.State(root)
    assert state.data["jobs"]["a"]["status"] == "done"
    assert state.data["jobs"]["a"]["adopted"] == str(results / "a.json")
    # the choice weighs the adopted tables as it would tables trained here
    chosen = campaign.choose(queue[3], root, {j.id: j for j in queue})
    assert chosen["profile"] == "plain"
    # a second adoption leaves a done job alone; nothing else is adopted
    assert campaign.adopt(root, queue, ["a"], results) == ["a: already done, left as it is"]
    with pytest.raises(SystemExit, match="no committed table"):
        campaign.adopt(root, queue, ["c"], results)
    # a choice is made again from the committed tables, not from the campaign folder's
    root2 = tmp_path / "campaign2"
    (root2 / "out" / "b").mkdir(parents=True)  # a table trained here would have won
    (root2 / "out" / "b" / "r-held-out.json").write_text(json.dumps(table({"x": 0.99})))
    assert campaign.adopt(root2, queue, ["pick"], results) == [
        "pick: chose plain from the committed tables"
    ]
    made = json.loads((root2 / "chosen.json").read_text())["r"]
    assert made["profile"] == "plain" and made["from"] == str(results)
    assert campaign.State(root2).data["jobs"]["pick"]["status"] == "done"
    # a candidate without a committed table stops it: nothing is chosen
    missing = campaign.Job(id="pick2", recipe="r", kind="choose", candidates=["a", "c"])
    with pytest.raises(SystemExit, match="no committed table"):
        campaign.adopt(tmp_path / "campaign3", [*queue, missing], ["pick2"], results)
    assert not (tmp_path / "campaign3" / "chosen.json").exists()
    train = campaign.Job(id="t", recipe="r", kind="train", profile="@chosen")
    with pytest.raises(SystemExit, match="only tables and choices"):
        campaign.adopt(root, [*queue, train], ["t"], results)
    with pytest.raises(SystemExit, match="no job 'zz'"):
        campaign.adopt(root, queue, ["zz"], results)
    # a table of another profile cannot stand in for the job's run
    (results / "c.json").write_text(json.dumps({**table({"x": 1.0}), "recipe": "r",
                                                "profile": "plain"}))  # fmt: skip
    with pytest.raises(SystemExit, match="profile 'other'"):
        campaign.adopt(root, queue, ["c"], results)
    assert campaign.State(root).data["jobs"].get("c", {}).get("status", "pending") == "pending"


def test_the_committed_tables_can_be_adopted_by_the_shipped_queue(tmp_path: Path):
    held_out = [j.id for j in campaign.read_queue() if j.kind == "held-out"]
    committed = [i for i in held_out if (campaign.RESULTS / f"{i}.json").is_file()]
    assert committed  # the campaign's tables are in the repository
    lines = campaign.adopt(tmp_path, campaign.read_queue(), committed)
    assert all("done from" in line for line in lines)
    # and the choice they made, as training/results/README.md records it
    pick = next(j for j in campaign.read_queue() if j.kind == "choose")
    assert campaign.adopt(tmp_path, campaign.read_queue(), [pick.id]) == [
        f"{pick.id}: chose cpu from the committed tables"
    ]


def test_progress_lines_of_train_bundled_are_read(tmp_path: Path):
    job = campaign.Job(id="j", recipe="r")
    progress = campaign.Progress(tmp_path, job, "1/1")
    progress.feed("[training] Epoch 3 of 14 120/630 loss 0.912 acc 0.601 21.5 img/s eta 4200s\n")
    assert progress.status["epoch"] == "3/14"
    assert progress.status["images_per_s"] == pytest.approx(21.5)
    assert progress.status["eta_s"] == 4200
    line = (tmp_path / "campaign.log").read_text()
    assert "21.5 img/s" in line and "ETA 70 min" in line and progress.status["cpu"] in line


@pytest.mark.slow
def test_a_killed_campaign_resumes_from_its_checkpoints(shared_data: Path, tmp_path: Path):
    """The CPU smoke run: a tiny queue, killed in its training job, started again."""
    queue = write_queue(
        tmp_path / "queue.json",
        [
            {"id": "held", "recipe": "chest-3class", "kind": "held-out", "profile": "cpu",
             "args": [*TINY, "--held-out-epochs", "1"]},
            {"id": "pick", "recipe": "chest-3class", "kind": "choose", "candidates": ["held"]},
            {"id": "train", "recipe": "chest-3class", "profile": "@chosen",
             "args": [*TINY, "--epochs", "3"]},
            {"id": "more", "recipe": "chest-3class", "profile": "@chosen", "continues": "train",
             "args": [*TINY, "--epochs", "3", "--add-stage", '{"lr": 0.0003}']},
            {"id": "tuned", "recipe": "pediatric-pneumonia", "profile": "cpu-from-adult",
             "base_from": "train", "args": [*TINY, "--limit", "12", "--epochs", "1"]},
        ],
    )  # fmt: skip
    root = tmp_path / "campaign"
    cmd = [sys.executable, str(REPO_ROOT / "training" / "campaign.py"), "run", "--root", str(root),
           "--queue", str(queue), "--data", str(shared_data)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    first = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL)
    train_log = root / "logs" / "train.log"
    deadline = time.monotonic() + 600
    try:  # kill it once the training job has checkpointed its first epoch
        while "epoch record" not in (train_log.read_text() if train_log.is_file() else ""):
            assert first.poll() is None, "the campaign ended before it could be killed"
            assert time.monotonic() < deadline, "no epoch finished in 10 minutes"
            time.sleep(0.5)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    state = json.loads((root / "state.json").read_text())
    assert state["jobs"]["held"]["status"] == "done"
    assert state["jobs"]["train"]["status"] == "running"

    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert second.returncode == 0, second.stdout + second.stderr
    state = json.loads((root / "state.json").read_text())
    assert {k: v["status"] for k, v in state["jobs"].items()} == dict.fromkeys(
        ("held", "pick", "train", "more", "tuned"), "done"
    )
    assert state["jobs"]["train"]["attempts"] == 2
    assert "Resuming at epoch 2" in train_log.read_text()  # not started over
    held_out = json.loads((root / "out" / "held" / "chest-3class-held-out.json").read_text())
    ran = [p for p, row in held_out["sources"].items() if "accuracy" in row]
    assert ran, held_out
    for pool in ran:  # per-image logits kept for risk-coverage and operating rules
        assert (root / "work" / "held" / "chest-3class" / "held-out" / pool /
                "predictions.npz").is_file()  # fmt: skip
    assert (root / "out" / "train" / "chest-3class.json").is_file()
    log = (root / "campaign.log").read_text()
    assert "img/s" in log and "queue finished" in log

    # the continuing job kept the finished stages of "train" and trained only its own
    trained = json.loads((root / "out" / "train" / "chest-3class.json").read_text())["training"]
    more_log = (root / "logs" / "more.log").read_text()
    assert len(re.findall(r"^(?:training|resuming) chest-3class on", more_log, re.M)) == 1
    more = json.loads((root / "out" / "more" / "chest-3class.json").read_text())["training"]
    assert [s["stage"] for s in more["stages"]] == [*(s["stage"] for s in trained["stages"]),
                                                   len(trained["stages"]) + 1]  # fmt: skip
    assert more["stages"][-1]["lr"] == pytest.approx(0.0003)
    assert more["stages"][:-1] == trained["stages"]
    assert not (root / "work" / "more").exists()

    # the job with base_from started from the finished model of "train", and says so
    base = json.loads((root / "out" / "train" / "chest-3class.json").read_text())
    tuned = json.loads((root / "out" / "tuned" / "pediatric-pneumonia.json").read_text())
    label = f"{base['name']} {base['version']}"
    assert tuned["base_model"] == label
    assert tuned["training"]["stages"][0]["base"]["label"] == label
    assert tuned["training"]["stages"][0]["base"]["from_scratch"] is True
    assert tuned["training"]["settings"]["base"].endswith(f"which started from {label}")
    assert any(f"started from the weights of {label}" in line for line in tuned["limitations"])
    assert "starting from chest-adult" in tuned["description"]  # the profile's own words
    markdown = (root / "out" / "tuned" / "pediatric-pneumonia.md").read_text()
    assert f"ResNet-50 started from {label}" in markdown
    assert "--base" in (root / "campaign.log").read_text()


def test_risk_coverage_answers_the_most_confident_first(tmp_path: Path):
    import numpy as np
    import risk_coverage

    # 10 images: the 5 most confident right, the 5 least confident wrong
    margins = np.linspace(4.0, 0.2, 10)
    logits = np.stack([margins, np.zeros(10), np.zeros(10)], axis=1)
    labels = np.array([0] * 5 + [1] * 5)
    rc = risk_coverage.risk_coverage(logits, labels, temperature=1.0)
    by_cov = {row["coverage"]: row["accuracy"] for row in rc["by_coverage"]}
    assert by_cov[1.0] == pytest.approx(0.5)
    assert by_cov[0.5] == pytest.approx(1.0)
    everything = rc["by_threshold"][0]
    assert everything["threshold"] == 0.0 and everything["coverage"] == 1.0
    folder = tmp_path / "held-out" / "some-pool"
    folder.mkdir(parents=True)
    np.savez(folder / risk_coverage.PREDICTIONS_FILE, logits=logits, labels=labels,
             class_ids=np.array(["a", "b", "c"]), temperature=np.float32(1.0))  # fmt: skip
    assert risk_coverage.main([str(tmp_path / "held-out")]) == 0
    assert risk_coverage.folder_table(tmp_path / "held-out")["some-pool"]["n"] == 10
