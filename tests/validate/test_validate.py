"""``xraydesk validate MODEL FOLDER``: the site acceptance report, through the CLI.

The report's figures are checked against an independent computation from its own
per-image rows (plain numpy and the Wilson formula written out here), the verdicts
against the batch engine's, and bad input against clear messages and exit codes.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.cli_child import run_cli
from tests.dicom_factory import make_dicom
from tests.hostile_files import small_png
from xraydesk.cli import main
from xraydesk.imaging import load_xray

Z95 = 1.959963984540054  # the 97.5th percentile of the standard normal distribution


def wilson(successes: int, n: int) -> tuple[float, float]:
    """Wilson score interval, written out from Wilson (1927)."""
    p = successes / n
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n**2)) / (1 + Z95**2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def run_validate(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(["validate", *args])
    out, err = capsys.readouterr()
    return code, out, err


def check_figures_independently(report: dict) -> None:
    """Every headline figure of the report equals a numpy computation from its rows."""
    classes = report["model"]["classes"]
    rows = report["images"]
    figures = report["figures"]
    answered = [r for r in rows if not r["withheld"]]
    labels = np.array([classes.index(r["label"]) for r in answered])
    preds = np.array([classes.index(r["prediction"]) for r in answered])
    k = len(classes)
    cm = np.zeros((k, k), dtype=int)
    for t, p in zip(labels, preds, strict=True):
        cm[t, p] += 1
    metrics = figures["metrics"]
    assert metrics["confusion_matrix"] == cm.tolist()
    assert figures["n_per_class"] == {c: sum(r["label"] == c for r in rows) for c in classes}
    right = int((labels == preds).sum())
    assert metrics["accuracy"] == pytest.approx(right / len(answered))
    assert metrics["accuracy_ci95"] == pytest.approx(wilson(right, len(answered)), abs=1e-9)
    for i, cid in enumerate(classes):
        pc = metrics["per_class"][cid]
        pos, neg = labels == i, labels != i
        if pos.any():
            tp = int((preds[pos] == i).sum())
            assert pc["sensitivity"] == pytest.approx(tp / pos.sum())
            assert pc["sensitivity_ci95"] == pytest.approx(wilson(tp, int(pos.sum())), abs=1e-9)
        else:  # no image of the class at the site: no sensitivity, not a sensitivity of 0
            assert pc["sensitivity"] is None and pc["sensitivity_ci95"] is None
        if neg.any():
            tn = int((preds[neg] != i).sum())
            assert pc["specificity"] == pytest.approx(tn / neg.sum())
            assert pc["specificity_ci95"] == pytest.approx(wilson(tn, int(neg.sum())), abs=1e-9)
    flagged = sum(bool(r["warnings"]) for r in rows)
    assert figures["flagged"]["share"] == pytest.approx(flagged / len(rows))
    assert figures["withheld"]["n"] == len(rows) - len(answered)
    # the most confidently wrong images are the wrong answers with the highest confidence
    wrong = sorted(
        (-r["probabilities"][r["prediction"]], r["name"])
        for r in answered
        if r["prediction"] != r["label"]
    )
    shown = [w["name"] for w in figures["most_confidently_wrong"]]
    assert shown == [name for _, name in wrong[: len(shown)]]


@pytest.mark.slow
@pytest.mark.data
def test_validate_a_pool_as_a_site(shared_data: Path, tmp_path: Path, capsys) -> None:
    """ozturk-nih as a site, a seeded subset: the JSON's figures match an independent
    computation, the verdicts are the batch engine's, the PDF has its four pages and the
    card comparison names where the site is worse."""
    site = shared_data / "ozturk-nih"
    out = tmp_path / "site"
    args = ["chest-3class", str(site), "--sample", "90", "--seed", "7", "-o", str(out)]
    code, stdout, stderr = run_validate([*args, "--device", "cpu"], capsys)
    assert code == 0, stderr
    report = json.loads(out.with_suffix(".json").read_text())
    assert len(report["images"]) == 90 and report["site"]["sampled"]
    assert report["site"]["images_labelled"] == 985
    check_figures_independently(report)
    # the same verdict as the batch front door (xraydesk classify) for the same files
    from xraydesk.batch.run import classify_paths
    from xraydesk.classifier import Classifier
    from xraydesk.model.library import resolve_model

    few = report["images"][:6]
    classifier = Classifier.load(resolve_model("chest-3class"), device="cpu")
    rows = list(classify_paths([site / r["name"] for r in few], classifier))
    for mine, theirs in zip(few, rows, strict=True):
        assert mine["prediction"] == theirs.prediction
        assert mine["warnings"] == theirs.warning_codes
        for cid, p in theirs.probabilities.items():
            assert mine["probabilities"][cid] == pytest.approx(p, abs=1e-6)
    # the comparison with the card: every "worse" row is below the card by the rule
    for row in report["comparison"]:
        if row["verdict"] in ("worse", "clearly worse") and not row["lower_is_better"]:
            beyond = row["card_ci95"] is not None and row["site"] < row["card_ci95"][0]
            assert beyond or row["card"] - row["site"] > 0.05
        if row["verdict"] == "clearly worse":
            assert row["site_ci95"][1] < row["card"]
    assert stdout.count("\n") >= 2 and "accuracy" in stdout
    pdf = out.with_suffix(".pdf")
    assert pdf.read_bytes().startswith(b"%PDF")
    if shutil.which("pdftoppm"):
        subprocess.run(["pdftoppm", "-r", "30", "-png", str(pdf), str(tmp_path / "p")], check=True)
        assert len(list(tmp_path.glob("p-*.png"))) == 4


@pytest.mark.slow
@pytest.mark.data
def test_kermany_labels_need_a_mapping(shared_data: Path, tmp_path: Path, capsys) -> None:
    """bacterial and viral are no class of chest-3class: refused with the fix named, then
    accepted with --map, and the JSON says how each site label was read."""
    site = shared_data / "kermany-pediatric"
    out = tmp_path / "k"
    code, _, err = run_validate(["chest-3class", str(site), "-o", str(out)], capsys)
    assert code == 2 and "'bacterial'" in err and "--map bacterial=" in err
    assert not out.with_suffix(".json").exists()
    args = ["chest-3class", str(site), "--map", "bacterial=pneumonia", "--map", "viral=pneumonia"]
    args += ["--sample", "40", "-o", str(out), "--no-pdf", "--device", "cpu"]
    code, _, err = run_validate(args, capsys)
    assert code == 0, err
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["site"]["mapping"] == {
        "bacterial": "pneumonia",
        "normal": "normal",
        "viral": "pneumonia",
    }
    assert {r["site_label"] for r in report["images"] if r["label"] == "pneumonia"} <= {
        "bacterial",
        "viral",
    }
    assert not out.with_suffix(".pdf").exists()
    assert report["figures"]["n_per_class"]["covid19"] == 0  # a child has no COVID-19 here
    covid = next(r for r in report["comparison"] if r["metric"] == "sensitivity covid19")
    assert covid["site"] is None and covid["verdict"] == "no figure"
    check_figures_independently(report)


def _real_films(samples_dir: Path) -> list[Path]:
    """Real radiographs the input gate passes (random pixels it flags, and the verdict
    then gives them no class: issue 27)."""
    return sorted((samples_dir / "fullres").glob("*.png"))


def _dicom_site(root: Path, samples_dir: Path) -> None:
    """Six DICOM files with subgroup facts and patient identifiers in their headers, the
    pixels of a real radiograph (12 bits, 256 x 256)."""
    unit = load_xray(_real_films(samples_dir)[0]).render()
    step = max(1, min(unit.shape) // 256)
    film = np.round(unit[::step, ::step] * 4095).astype(np.uint16)
    facts = [("normal", "F", "034Y"), ("normal", "M", "071Y"), ("pneumonia", "F", "052Y")]
    facts += [("pneumonia", "M", "008Y"), ("covid19", "F", "066Y"), ("covid19", "M", "045Y")]
    for i, (label, sex, age) in enumerate(facts):
        (root / label).mkdir(parents=True, exist_ok=True)
        pixels = film
        extra = {"PatientSex": sex, "PatientAge": age, "Manufacturer": "Acme Imaging"}
        # a site's file names may carry the patient id, as the NIH file names do
        make_dicom(root / label / f"P-0001_{i}.dcm", pixels, bits_stored=12, extra=extra)


def test_dicom_site_subgroups_and_no_identifiers(
    tmp_path: Path, test_model_path: Path, samples_dir: Path, capsys
) -> None:
    """Subgroups come from the headers; with --hide-names no patient name, id or birth
    date (header or file name) reaches the report (JSON or PDF) or the terminal."""
    site = tmp_path / "site"
    _dicom_site(site, samples_dir)
    out = tmp_path / "r"
    args = [str(test_model_path), str(site), "-o", str(out), "--hide-names"]
    code, stdout, stderr = run_validate(args, capsys)
    assert code == 0, stderr
    assert "the model card states no test figures to compare with" in stdout
    report = json.loads(out.with_suffix(".json").read_text())
    groups = report["figures"]["subgroups"]
    assert [g["value"] for g in groups["sex"]] == ["F", "M"]
    assert [g["n"] for g in groups["sex"]] == [3, 3]
    assert {g["value"]: g["n"] for g in groups["age_band"]} == {
        "0-17": 1,
        "18-39": 1,
        "40-64": 2,
        "65+": 2,
    }
    assert groups["manufacturer"] == [
        {**groups["manufacturer"][0], "value": "Acme Imaging", "n": 6}
    ]
    check_figures_independently(report)
    assert sorted(r["name"] for r in report["images"])[0] == "covid19/image-1.dcm"
    everything = out.with_suffix(".json").read_bytes() + out.with_suffix(".pdf").read_bytes()
    for secret in ("Doe^Jane", "Doe", "P-0001", "19700101"):
        assert secret.encode() not in everything
        assert secret not in stdout + stderr


def test_unreadable_file_is_named_and_counted_as_withheld(
    tmp_path: Path, test_model_path: Path, samples_dir: Path, capsys
) -> None:
    """A corrupt image still gets its row: named with its cause on stderr, withheld in the
    report, exit 1; the other images are validated."""
    site = tmp_path / "site"
    films = _real_films(samples_dir)
    for i, label in enumerate(["normal", "pneumonia", "covid19", "normal"]):
        (site / label).mkdir(parents=True, exist_ok=True)
        shutil.copy(films[i], site / label / f"ok{i}.png")
    broken = site / "pneumonia" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    out = tmp_path / "r"
    code, _, stderr = run_validate(
        [str(test_model_path), str(site), "-o", str(out), "--no-pdf"], capsys
    )
    assert code == 1
    assert str(broken) in stderr and "no answer" in stderr and "Traceback" not in stderr
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["figures"]["withheld"]["n"] == 1
    row = next(r for r in report["images"] if r["name"] == "pneumonia/broken.png")
    assert row["withheld"] and row["error"]
    check_figures_independently(report)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_named_pipe_among_the_films_is_an_error_row_not_a_hang(
    tmp_path: Path, test_model_path: Path, samples_dir: Path
) -> None:
    """A named pipe called x.png in a class folder: the batch run refused it, then the
    subgroup step opened it to read a DICOM header and waited for a writer for good."""
    site = tmp_path / "site"
    films = _real_films(samples_dir)
    for i, label in enumerate(["normal", "pneumonia", "covid19"]):
        (site / label).mkdir(parents=True)
        shutil.copy(films[i], site / label / f"ok{i}.png")
    os.mkfifo(site / "normal" / "x.png")
    out = tmp_path / "r"
    args = [str(test_model_path), str(site), "-o", str(out), "--no-pdf"]
    done = run_cli(tmp_path, "validate", *args, timeout=180)  # a child: a hang ends
    assert done.code == 1, done.stderr
    assert "x.png" in done.stderr and "named pipe" in done.stderr
    assert "Traceback" not in done.stderr
    report = json.loads(out.with_suffix(".json").read_text())
    row = next(r for r in report["images"] if r["name"] == "normal/x.png")
    assert row["withheld"] and row["error"]


def test_labels_from_a_csv_with_skip(tmp_path: Path, test_model_path: Path, capsys) -> None:
    """--labels reads path,label; --map NAME=skip leaves a label out and says so."""
    site = tmp_path / "site"
    site.mkdir()
    rows = [("a.png", "Normal"), ("b.png", "COVID-19"), ("c.png", "other"), ("d.png", "normal")]
    for i, (name, _) in enumerate(rows):
        (site / name).write_bytes(small_png(seed=i))
    labels = tmp_path / "labels.csv"
    with labels.open("w", newline="") as handle:
        csv.writer(handle).writerows([("path", "label"), *rows])
    out = tmp_path / "r"
    args = [str(test_model_path), str(site), "--labels", str(labels), "--map", "other=skip"]
    code, _, stderr = run_validate([*args, "-o", str(out), "--no-pdf"], capsys)
    assert code == 0, stderr
    report = json.loads(out.with_suffix(".json").read_text())
    assert [r["name"] for r in report["images"]] == ["a.png", "b.png", "d.png"]
    assert [r["label"] for r in report["images"]] == ["normal", "covid19", "normal"]
    assert report["site"]["skipped_by_mapping"] == 1


def _bad_inputs(tmp: Path) -> list[tuple[list[str], str]]:
    """(arguments after MODEL, text the message must contain), one per kind of bad input."""
    empty = tmp / "empty"
    (empty / "normal").mkdir(parents=True)
    flat = tmp / "flat"
    flat.mkdir()
    (flat / "x.png").write_bytes(small_png())
    odd = tmp / "odd"
    (odd / "fracture").mkdir(parents=True)
    (odd / "fracture" / "x.png").write_bytes(small_png())
    no_columns = tmp / "cols.csv"
    no_columns.write_text("file,class\nx.png,normal\n")
    gone = tmp / "gone.csv"
    gone.write_text("path,label\nmissing.png,normal\n")
    ragged = tmp / "ragged.csv"  # a cell past the header's columns, then an unknown label
    ragged.write_text("path,label\nx.png,normal,extra\nx.png,tumour\n")
    blocked = tmp / "a-file"
    blocked.write_text("not a folder")
    return [
        ([str(tmp / "nowhere")], "does not exist"),
        ([str(empty)], "no image found"),
        ([str(flat)], "no class subfolders"),
        ([str(odd)], "'fracture'"),
        ([str(odd), "--map", "fracture"], "expected SITE_LABEL=CLASS"),
        ([str(odd), "--map", "fracture=broken"], "no class 'broken'"),
        ([str(flat), "--labels", str(no_columns)], "columns path and label"),
        ([str(flat), "--labels", str(gone)], "missing.png: the image does not exist"),
        ([str(flat), "--labels", str(tmp / "none.csv")], "labels file does not exist"),
        ([str(odd), "--map", "fracture=skip"], "no labelled image left"),
        ([str(flat), "--labels", str(ragged)], "'tumour' (from"),
        ([str(odd), "--map", "fracture=normal", "-o", str(blocked / "r")], "cannot write there"),
        ([str(odd), "--map", "fracture=normal", "--sample", "0"], "--sample 0"),
        (["--map", "a=b", str(odd)], "no class 'b'"),
    ]


def test_bad_input_gives_a_clear_message(tmp_path: Path, test_model_path: Path, capsys) -> None:
    """Each kind of bad input: exit 2, one message naming the file or folder and the
    cause, no traceback and no report."""
    out = tmp_path / "never"
    for args, expected in _bad_inputs(tmp_path):
        code, _, stderr = run_validate([str(test_model_path), "-o", str(out), *args], capsys)
        assert code == 2, (args, stderr)
        assert expected in stderr, (args, stderr)
        assert "Traceback" not in stderr and stderr.startswith("xraydesk: ")
        assert not out.with_suffix(".json").exists()


def test_worse_is_called_by_the_cards_interval_or_the_margin() -> None:
    """The rule the report states: worse below the card's interval or more than 0.05
    below its value (ECE: above); clearly worse when the site's interval leaves out the
    card's value; card intervals not stored come from its confusion matrix (Wilson)."""
    from xraydesk.validate.compare import compare_with_card

    ids = ["a", "b"]
    card = {  # 1000 images; accuracy 0.9 (Wilson 0.880-0.917), sensitivity of b 0.8
        "accuracy": 0.9,
        "confusion_matrix": [[500, 0], [100, 400]],
        "per_class": {"a": {"recall": 1.0, "auc": 0.95}, "b": {"recall": 0.8, "auc": 0.95}},
        "macro_auc": 0.95,
        "ece": 0.02,
    }

    def site(acc, acc_ci, sens_b, sens_b_ci, auc, ece):
        per = {"sensitivity": 1.0, "specificity": 0.8, "auc": auc}
        return {
            "accuracy": acc,
            "accuracy_ci95": acc_ci,
            "macro_auc": auc,
            "ece": ece,
            "per_class": {"a": dict(per), "b": {**per, "sensitivity": sens_b,
                                                 "sensitivity_ci95": sens_b_ci}},
        }  # fmt: skip

    rows = compare_with_card(site(0.87, [0.80, 0.92], 0.79, [0.7, 0.85], 0.91, 0.08), card, ids)
    verdict = {r["metric"]: r["verdict"] for r in rows}
    card_acc = next(r for r in rows if r["metric"] == "accuracy")
    assert card_acc["card_ci95"] == pytest.approx(wilson(900, 1000))
    assert verdict["accuracy"] == "worse"  # 0.87 < 0.880, within 0.05; site CI holds 0.9
    assert verdict["sensitivity b"] == "not worse"  # 0.79 is in the card's 0.763-0.833
    assert verdict["macro AUC"] == "not worse"  # no card interval, 0.04 below: not > 0.05
    assert verdict["ECE"] == "worse"  # 0.06 above the card's
    assert verdict["specificity a"] == "not worse"  # the card's 0.8: equal
    rows = compare_with_card(site(0.7, [0.6, 0.8], 0.7, [0.6, 0.78], 0.85, 0.02), card, ids)
    verdict = {r["metric"]: r["verdict"] for r in rows}
    assert verdict["accuracy"] == "clearly worse"  # the site's 0.6-0.8 leaves out 0.9
    assert verdict["sensitivity b"] == "clearly worse"
    assert verdict["macro AUC"] == "worse"  # 0.1 below, no interval on the site row
