"""A real Prometheus server scrapes the DICOM node's metrics endpoint (issue 30) while
pynetdicom stores images, and every query of the sample Grafana dashboard runs on it.
Moved from tests/monitor/test_monitor.py: it starts an outside server, so it is an
integration test (left out of the quick run)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.dicom_factory import make_dicom
from tests.paths import REPO_ROOT
from tests.real_films import pool_films
from xraydesk.dicomnet.worklist import Worklist
from xraydesk.monitor.prometheus import serve_metrics

PATIENT_NAME, PATIENT_ID = "DOE^JANE", "PID-998877"
DASHBOARD = REPO_ROOT / "packaging" / "grafana" / "xraydesk-dashboard.json"


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


def _prometheus() -> str:
    found = shutil.which("prometheus") or (
        "/usr/bin/prometheus" if Path("/usr/bin/prometheus").is_file() else None
    )
    if found is None:
        reason = "the prometheus server is not installed (Debian package prometheus)"
        if os.environ.get("XRAYDESK_REQUIRE_DATA") == "1":
            pytest.fail(reason + "; XRAYDESK_REQUIRE_DATA=1 forbids skipping")
        pytest.skip(reason)
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _query(port: int, promql: str) -> dict[tuple, float]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    data = json.loads(urllib.request.urlopen(url, timeout=10).read())
    assert data["status"] == "success"
    return {
        tuple(sorted(r["metric"].items())): float(r["value"][1]) for r in data["data"]["result"]
    }


@pytest.mark.integration
def test_prometheus_scrapes_the_node_while_images_arrive(test_classifier, tmp_path, shared_data):
    """A real Prometheus (1 s scrapes) reads the node's endpoint while pynetdicom stores
    images; what its query API reports matches the worklist, class by class. The films
    are mostly real radiographs (8-bit pool films widened to 12 bits): the input gate
    withholds the class of pixel noise, and the per-class counter needs images with a
    class; the one noise picture gives the warnings counter its series."""
    from xraydesk.dicomnet import NodeConfig, StorageNode, make_node, send_files

    binary = _prometheus()
    pixels = [
        np.asarray(Image.open(source).convert("L"), dtype=np.uint16) * 16
        for source in pool_films(shared_data, 7)
    ]  # and one noise picture, so the warnings counter has a series too
    pixels.append(np.random.default_rng(30).integers(0, 4096, (96, 96), dtype=np.uint16))
    films = [
        make_dicom(
            tmp_path / f"film-{k}.dcm",
            image,
            bits_stored=12,
            extra={"PatientName": PATIENT_NAME, "PatientID": PATIENT_ID},
        )
        for k, image in enumerate(pixels)
    ]
    config = NodeConfig(ae_title="XRAYDESK", port=0, allowed_ae_titles=("XRAYDESK",))
    with StorageNode(config, test_classifier) as node:
        metrics = serve_metrics(node.worklist.path, 0)
        prom_port = _free_port()
        (tmp_path / "prometheus.yml").write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: xraydesk\n    static_configs:\n"
            f"      - targets: ['127.0.0.1:{metrics.port}']\n"
        )
        prom = subprocess.Popen(
            [
                binary,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            target = make_node("self", "XRAYDESK", "127.0.0.1", node.port)
            assert send_files(config, target, films[:3]).ok  # while Prometheus starts
            assert send_files(config, target, films[3:]).ok
            assert node.wait_idle(120)
            with Worklist(node.worklist.path) as worklist:
                items = worklist.items()
            assert len(items) == len(films)
            classes = Counter(i.prediction for i in items if i.prediction)
            assert classes, "no real film got a class: the per-class counter is untested"
            deadline = time.monotonic() + 90
            seen: dict[tuple, float] = {}
            while time.monotonic() < deadline:
                try:
                    seen = _query(prom_port, "sum(xraydesk_images_total)")
                except OSError:
                    seen = {}
                if seen.get(()) == len(films):
                    break
                assert prom.poll() is None, "prometheus exited"
                time.sleep(1)
            assert seen.get(()) == len(films), f"Prometheus reported {seen}"
            by_class = _query(prom_port, "sum by (class) (xraydesk_predictions_total)")
            assert {dict(k)["class"]: v for k, v in by_class.items()} == dict(classes)
            daily = _query(prom_port, "sum by (day) (xraydesk_daily_images)")
            assert daily == {(("day", _today()),): float(len(films))}
            series = _query(prom_port, '{__name__=~"xraydesk_.*"}')
            text = json.dumps(list(series))
            assert PATIENT_NAME not in text and PATIENT_ID not in text
            _check_dashboard(prom_port, {dict(k)["__name__"] for k in series})
        finally:
            prom.terminate()
            prom.wait(timeout=30)
            metrics.stop()


def _check_dashboard(prom_port: int, names: set[str]) -> None:
    """Every query of the sample Grafana dashboard runs on the real Prometheus and names
    only metrics the endpoint exposes (so a renamed metric breaks this test)."""
    import re

    panels = json.loads(DASHBOARD.read_text())["panels"]
    exprs = [t["expr"] for p in panels for t in p["targets"]]
    assert len(exprs) >= 8
    for expr in exprs:
        used = set(re.findall(r"\bxraydesk_[a-z_]+", expr))
        assert used and used <= names, (expr, used - names)
        _query(prom_port, expr.replace("$model", ".*"))  # asserts status success
