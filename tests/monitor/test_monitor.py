"""Monitoring (issue 30): per-day figures of the results database, the node's Prometheus
endpoint scraped by a real Prometheus server, and the drift check of `xraydesk monitor`.

Real components: the results database written by ``ResultStore`` / ``Worklist`` (and by
the node and ``xraydesk classify``), prometheus-client's HTTP server, the Debian
``prometheus`` binary on loopback, pynetdicom sending to the node on loopback.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from tests.dicom_factory import make_dicom
from tests.paths import REPO_ROOT
from xraydesk.batch.database import ResultStore, default_db_path
from xraydesk.batch.rows import ResultRow
from xraydesk.cli import main
from xraydesk.dicomnet.worklist import CLASSIFIED, FAILED, WorkItem, Worklist
from xraydesk.model.card import ModelCard
from xraydesk.monitor.daily import daily_stats
from xraydesk.monitor.drift import Thresholds, class_mix_check, rate_check
from xraydesk.monitor.prometheus import serve_metrics
from xraydesk.trust.codes import LATERAL, OUT_OF_DISTRIBUTION, ResultWarning

PATIENT_NAME, PATIENT_ID = "DOE^JANE", "PID-998877"


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


def _fill(db: Path, card: ModelCard) -> None:
    """Three batch rows (one reused, one error) and three worklist rows (one failed)."""
    ood = ResultWarning(OUT_OF_DISTRIBUTION, "unlike")
    store = ResultStore(db)
    run = store.start_run(["/x"], False, card)
    at = datetime.now(UTC).isoformat()
    a, b = card.class_ids[0], card.class_ids[1]
    rows = [
        ResultRow(Path("/x/1.png"), card.label, a, {a: 0.8, b: 0.2}, seconds=0.1,
                  classified_at=at, warnings=[ood, ResultWarning(LATERAL, "side")]),
        ResultRow(Path("/x/2.png"), card.label, b, {a: 0.4, b: 0.6}, seconds=0.3,
                  classified_at=at, reused=True),
        ResultRow(Path("/x/3.png"), card.label, error="cannot decode", classified_at=at),
    ]  # fmt: skip
    store.add_rows(run, "key", 0, rows)
    store.finish_run(run, "completed")
    store.close()
    with Worklist(db) as worklist:
        for k, (pred, status) in enumerate([(b, CLASSIFIED), (b, CLASSIFIED), (None, FAILED)]):
            item = WorkItem(f"1.2.3.{k}", patient_name=PATIENT_NAME, patient_id=PATIENT_ID)
            row = worklist.add(item)
            worklist.set_result(
                row,
                status=status,
                model=card.label,
                prediction=pred,
                probabilities={a: 0.1, b: 0.9} if pred else None,
                error=None if pred else "not classified",
                seconds=2.0,
                warnings=[ood.line] if k == 0 else [],
            )


def test_daily_figures_count_batch_and_worklist_rows(test_model_path: Path, tmp_path: Path):
    card = ModelCard.read(test_model_path)
    db = tmp_path / "results.sqlite"
    _fill(db, card)
    days = daily_stats(db)
    assert [(d.day, d.model) for d in days] == [(_today(), card.label)]
    day = days[0]
    a, b = card.class_ids[0], card.class_ids[1]
    # the reused batch row is not counted again; errors and failed rows are indeterminate
    assert day.images == 5 and day.classes == {a: 1, b: 2} and day.indeterminate == 2
    assert day.warnings == {OUT_OF_DISTRIBUTION: 2, LATERAL: 1}
    assert day.mean_confidence == pytest.approx((0.8 + 0.9 + 0.9) / 3)
    assert day.mean_latency == pytest.approx((0.1 + 0.0 + 2.0 * 3) / 5)
    assert not daily_stats(db, since=datetime(2001, 1, 1).date(), until=datetime(2001, 1, 2).date())
    assert daily_stats(tmp_path / "none.sqlite") == []


def test_metrics_endpoint_serves_the_counts_without_identifiers(test_model_path, tmp_path):
    card = ModelCard.read(test_model_path)
    db = tmp_path / "results.sqlite"
    _fill(db, card)
    server = serve_metrics(db, 0)
    try:
        assert server._server.server_address[0] == "127.0.0.1"  # loopback unless asked
        text = urllib.request.urlopen(server.url, timeout=10).read().decode()
    finally:
        server.stop()
    label = card.label
    assert f'xraydesk_images_total{{model="{label}"}} 5.0' in text
    assert f'xraydesk_indeterminate_total{{model="{label}"}} 2.0' in text
    assert f'xraydesk_warnings_total{{code="out_of_distribution",model="{label}"}} 2.0' in text
    assert f'xraydesk_daily_images{{day="{_today()}",model="{label}"}} 5.0' in text
    assert PATIENT_NAME not in text and PATIENT_ID not in text and "1.2.3." not in text
    labels = {
        name.split("=")[0]
        for line in text.splitlines()
        if "{" in line and not line.startswith("#")
        for name in line[line.index("{") + 1 : line.index("}")].split(",")
    }
    assert labels <= {"model", "class", "code", "day"}


@pytest.mark.parametrize(
    ("baseline", "current", "drifted"),
    [
        ({"normal": 60, "pneumonia": 40}, {"normal": 58, "pneumonia": 42}, False),
        ({"normal": 60, "pneumonia": 40}, {"normal": 20, "pneumonia": 30, "covid19": 50}, True),
        # a large distance on a handful of images is not judged
        ({"normal": 60, "pneumonia": 40}, {"pneumonia": 10}, False),
        # significant on many images, yet too small a change to matter
        ({"normal": 6000, "pneumonia": 4000}, {"normal": 5600, "pneumonia": 4400}, False),
    ],
)
def test_class_mix_drift_needs_significance_size_and_enough_images(baseline, current, drifted):
    check = class_mix_check(baseline, current, Thresholds())
    assert check.drifted is drifted
    if sum(current.values()) < Thresholds().min_images:
        assert not check.judged and "too few" in check.test


def test_rate_drift_needs_significance_and_size():
    limits = Thresholds()
    assert rate_check("ood", (5, 100), (40, 100), limits).drifted
    assert not rate_check("ood", (5, 100), (8, 100), limits).drifted
    assert not rate_check("ood", (500, 10000), (700, 10000), limits).drifted  # p tiny, 2 %
    assert not rate_check("ood", (0, 100), (0, 100), limits).drifted


def test_monitor_baseline_days_of_the_store(test_model_path: Path, tmp_path: Path, capsys):
    """A baseline period of the database: 50/50 on 2020-01-01, 90/10 today is drift (exit
    1, the trend printed per day); the baseline day against itself is not."""
    card = ModelCard.read(test_model_path)
    a, b = card.class_ids[0], card.class_ids[1]
    db = tmp_path / "results.sqlite"
    store = ResultStore(db)
    run = store.start_run(["/x"], False, card)
    old, now = "2020-01-01T10:00:00.000+00:00", datetime.now(UTC).isoformat()
    plan = [(old, a)] * 50 + [(old, b)] * 50 + [(now, a)] * 90 + [(now, b)] * 10
    rows = [
        ResultRow(Path(f"/x/{k}.png"), card.label, c, {c: 0.9}, classified_at=at)
        for k, (at, c) in enumerate(plan)
    ]
    store.add_rows(run, "key", 0, rows)
    store.finish_run(run, "completed")
    store.close()
    base = ["monitor", "--db", str(db), "--baseline-days", "2020-01-01..2020-01-01"]
    assert main(base) == 1
    out = capsys.readouterr().out
    assert f"{_today()} {card.label}: 100 images" in out and "DRIFT: class mix" in out
    assert main([*base, "--since", "2020-01-01", "--until", "2020-01-01"]) == 0
    out = capsys.readouterr().out
    assert "2020-01-01" in out and "DRIFT" not in out
    assert main([*base[:3], "--baseline-days", "2020-01-02"]) == 2
    assert "FROM..TO" in capsys.readouterr().err


def test_a_damaged_database_is_named_not_a_traceback(tmp_path, capsys):
    """`monitor` names the file and exits 2; the endpoint answers with readable 0."""
    db = tmp_path / "results.sqlite"
    db.write_bytes(b"this is not a database" * 100)
    assert main(["monitor", "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert str(db) in err and "Traceback" not in err
    server = serve_metrics(db, 0)
    try:
        text = urllib.request.urlopen(server.url, timeout=10).read().decode()
    finally:
        server.stop()
    assert "xraydesk_database_readable 0.0" in text and "Traceback" not in text


def test_monitor_refuses_a_bad_baseline_with_its_name(tmp_path, capsys):
    bad = tmp_path / "report.json"
    bad.write_text('{"format": "something else"}')
    assert main(["monitor", "--db", str(tmp_path / "r.sqlite"), "--baseline", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "not a baseline" in err and "Traceback" not in err
    bad.write_text("{")
    assert main(["monitor", "--baseline", str(bad)]) == 2
    assert "not JSON" in capsys.readouterr().err


# -- drift between pools, through `xraydesk classify` runs ------------------------------------

POOL_SAMPLE = 40
CHEST_3CLASS = REPO_ROOT / "models" / "chest-3class.json"


def _pool_files(shared_data: Path, pool: str) -> list[Path]:
    lines = (shared_data / pool / "manifest.csv").read_text().splitlines()[1:]
    return [shared_data / pool / line.split(",")[0] for line in lines]


def _classify_into(tmp_path: Path, monkeypatch, name: str, files: list[Path]) -> Path:
    """A `xraydesk classify FOLDER` run (a folder run is recorded) into its own data
    folder; its results database. The images are copied to a temporary folder."""
    folder = tmp_path / f"{name}-images"
    folder.mkdir()
    for k, path in enumerate(files):
        shutil.copyfile(path, folder / f"{k:03d}{path.suffix}")
    data = tmp_path / name
    monkeypatch.setenv("XRAYDESK_DATA_DIR", str(data))
    args = ["classify", str(folder), "--model", str(CHEST_3CLASS), "--device", "cpu"]
    assert main(args) == 0
    assert default_db_path() == data / "results.sqlite"
    return data / "results.sqlite"


@pytest.mark.slow
def test_monitor_warns_when_another_pool_arrives_and_not_for_the_same_pool(
    shared_data: Path, tmp_path: Path, monkeypatch, capsys
):
    """A baseline of kermany-pediatric images (saved by `monitor --save-baseline`, or the
    validation report of the same images), then another seeded sample of the same pool:
    no drift; covid19-radiography images: drift."""
    rng = np.random.default_rng(30)
    kermany = _pool_files(shared_data, "kermany-pediatric")
    covid = _pool_files(shared_data, "covid19-radiography")
    picked = rng.choice(len(kermany), 2 * POOL_SAMPLE, replace=False)
    base_files = [kermany[i] for i in picked[:POOL_SAMPLE]]
    same_files = [kermany[i] for i in picked[POOL_SAMPLE:]]
    other_files = [covid[i] for i in rng.choice(len(covid), POOL_SAMPLE, replace=False)]

    base_db = _classify_into(tmp_path, monkeypatch, "baseline", base_files)
    baseline = tmp_path / "baseline.json"
    assert main(["monitor", "--db", str(base_db), "--save-baseline", str(baseline)]) == 0
    saved = json.loads(baseline.read_text())
    assert saved["images"] == POOL_SAMPLE and sum(saved["classes"].values()) > 0
    capsys.readouterr()

    same_db = _classify_into(tmp_path, monkeypatch, "same", same_files)
    assert main(["monitor", "--db", str(same_db), "--baseline", str(baseline)]) == 0
    out = capsys.readouterr().out
    assert "DRIFT" not in out and out.count("ok: ") == 3, out

    other_db = _classify_into(tmp_path, monkeypatch, "other", other_files)
    assert main(["monitor", "--db", str(other_db), "--baseline", str(baseline)]) == 1
    captured = capsys.readouterr()
    assert "DRIFT: class mix" in captured.out, captured.out
    assert "drift from the baseline" in captured.err

    # the same judgement from the site's validation report of the baseline images
    site = tmp_path / "site"
    for k, path in enumerate(base_files):
        label = "normal" if path.parent.name == "normal" else "pneumonia"
        (site / label).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, site / label / f"{k:03d}{path.suffix}")
    out = tmp_path / "validation"
    validate = ["validate", str(CHEST_3CLASS), str(site), "-o", str(out), "--no-pdf"]
    assert main([*validate, "--device", "cpu"]) == 0
    report = str(out.with_suffix(".json"))
    capsys.readouterr()
    assert main(["monitor", "--db", str(same_db), "--baseline", report]) == 0
    assert "DRIFT" not in capsys.readouterr().out
    assert main(["monitor", "--db", str(other_db), "--baseline", report]) == 1
    assert "DRIFT: class mix" in capsys.readouterr().out


def test_listen_metrics_port_serves_on_loopback(test_model_path: Path, tmp_path: Path):
    """`xraydesk listen --metrics-port 0` (a subprocess, as users run it): the endpoint is
    on 127.0.0.1, counts an image sent to the node, and the node stops on SIGTERM."""
    import re
    import signal
    import sys

    from xraydesk.dicomnet import NodeConfig, make_node, send_files

    film = make_dicom(
        tmp_path / "film.dcm",
        np.random.default_rng(1).integers(0, 4096, (96, 96), dtype=np.uint16),
        bits_stored=12,
        extra={"PatientName": PATIENT_NAME, "PatientID": PATIENT_ID},
    )
    command = [sys.executable, "-m", "xraydesk", "listen", "--port", "0", "--allow-ae", "SENDER"]
    command += ["--model", str(test_model_path), "--device", "cpu", "--metrics-port", "0"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        text = ""
        for _ in range(30):  # the start-up lines: the node's and the endpoint's
            line = proc.stderr.readline()
            text += line
            if not line or ("metrics on" in text and "listening on" in text):
                break
        node_port = int(re.search(r"listening on 127\.0\.0\.1:(\d+)", text).group(1))  # type: ignore[union-attr]
        url = re.search(r"metrics on (http://127\.0\.0\.1:\d+/metrics)", text).group(1)  # type: ignore[union-attr]
        config = NodeConfig(ae_title="SENDER")
        assert send_files(config, make_node("n", "XRAYDESK", "127.0.0.1", node_port), [film]).ok
        deadline = time.monotonic() + 60
        body = ""
        while "xraydesk_images_total{" not in body and time.monotonic() < deadline:
            time.sleep(0.5)
            body = urllib.request.urlopen(url, timeout=10).read().decode()
        assert re.search(r'xraydesk_images_total\{model="[^"]+"\} 1\.0', body), body
        assert PATIENT_NAME not in body and PATIENT_ID not in body
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert PATIENT_NAME not in out + err and PATIENT_ID not in out + err


def test_chi_square_matches_scipy():
    """The dependency-free test of homogeneity gives scipy's statistic, p and dof
    (Yates-corrected 2 x 2 tables included), on random tables and far tails."""
    stats = pytest.importorskip("scipy.stats")
    from xraydesk.monitor.chi2 import chi2_sf, contingency

    rng = np.random.default_rng(7)
    for _ in range(100):
        table = rng.integers(1, 80, (int(rng.integers(2, 4)), int(rng.integers(2, 6))))
        for correction in (False, True):
            stat, p, dof = contingency(table.tolist(), correction)
            want = stats.chi2_contingency(table, correction=correction)
            assert dof == want[2]
            assert stat == pytest.approx(want[0], rel=1e-9)
            assert p == pytest.approx(want[1], rel=1e-6, abs=1e-12)
    for dof in range(1, 10):
        for x in (0.5, 3.84, 30.0, 150.0):
            assert chi2_sf(x, dof) == pytest.approx(stats.chi2.sf(x, dof), rel=1e-6, abs=1e-300)
    assert contingency([[5, 0], [7, 0]]) == (0.0, 1.0, 0)
