"""``xraydesk monitor --save-baseline`` on a period without a classified image: it exited
0 and wrote nothing, without a word. Now it says so and exits 2; a period with images
still writes its baseline."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from xraydesk.batch.database import ResultStore
from xraydesk.batch.rows import ResultRow
from xraydesk.cli import main
from xraydesk.model.card import ModelCard


def _one_day(db: Path, card: ModelCard, count: int) -> None:
    store = ResultStore(db)
    run = store.start_run(["/x"], False, card)
    now, cid = datetime.now(UTC).isoformat(), card.class_ids[0]
    rows = [
        ResultRow(Path(f"/x/{k}.png"), card.label, cid, {cid: 0.9}, classified_at=now)
        for k in range(count)
    ]
    store.add_rows(run, "key", 0, rows)
    store.finish_run(run, "completed")
    store.close()


def test_an_empty_database_saves_no_baseline_and_says_so(tmp_path: Path, capsys) -> None:
    db, target = tmp_path / "results.sqlite", tmp_path / "baseline.json"
    ResultStore(db).close()  # the tables, no row
    assert main(["monitor", "--db", str(db), "--save-baseline", str(target)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"xraydesk: --save-baseline {target}: no classified images in this period, so there "
        "is no baseline to save; nothing was written\n"
    )
    assert not target.exists()


def test_a_model_without_images_in_the_period_saves_none(
    test_model_path: Path, tmp_path: Path, capsys
) -> None:
    db, target = tmp_path / "results.sqlite", tmp_path / "baseline.json"
    _one_day(db, ModelCard.read(test_model_path), 3)
    argv = ["monitor", "--db", str(db), "--model", "other 1.0", "--save-baseline", str(target)]
    assert main(argv) == 2
    assert "no classified images of other 1.0 in this period" in capsys.readouterr().err
    assert not target.exists()


def test_a_period_with_images_still_writes_its_baseline(
    test_model_path: Path, tmp_path: Path, capsys
) -> None:
    db, target = tmp_path / "results.sqlite", tmp_path / "baseline.json"
    card = ModelCard.read(test_model_path)
    _one_day(db, card, 3)
    assert main(["monitor", "--db", str(db), "--save-baseline", str(target)]) == 0
    assert f"baseline of 3 images written to {target}" in capsys.readouterr().out
    saved = json.loads(target.read_text())
    assert saved["images"] == 3 and saved["model"] == card.label
