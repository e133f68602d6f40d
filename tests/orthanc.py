"""A real Orthanc PACS for the DICOM network tests, on loopback ports chosen free.

``orthanc_server`` (a fixture, imported by the test modules) starts Debian's ``Orthanc``
binary with a temporary configuration: DICOM and HTTP ports picked free, storage and
index in a temporary folder, HTTP only from this machine, no plugins. Where the binary
is missing the tests skip with the reason, except under CI=true or
XRAYDESK_REQUIRE_DATA=1 (.ci/run installs it with apt-get), where they fail, as
``shared_data`` does for the data.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ORTHANC_AET = "ORTHANC"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_orthanc() -> str | None:
    return shutil.which("Orthanc") or next(
        (p for p in ("/usr/sbin/Orthanc", "/usr/bin/Orthanc") if os.access(p, os.X_OK)), None
    )


def require_orthanc() -> str:
    exe = find_orthanc()
    if exe is None:
        reason = "Orthanc is not installed (apt-get install orthanc): DICOM network tests need it"
        if os.environ.get("CI") == "true" or os.environ.get("XRAYDESK_REQUIRE_DATA") == "1":
            pytest.fail(reason + "; CI forbids skipping")
        pytest.skip(reason)
    return exe


class Orthanc:
    def __init__(self, exe: str, folder: Path) -> None:
        self.exe = exe
        self.folder = folder
        self.dicom_port = free_port()
        self.http_port = free_port()
        self.log_path = folder / "orthanc.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def config(self) -> dict[str, Any]:
        return {
            "Name": "xraydesk-test",
            "StorageDirectory": str(self.folder / "storage"),
            "IndexDirectory": str(self.folder / "index"),
            "DicomAet": ORTHANC_AET,
            "DicomPort": self.dicom_port,
            "HttpPort": self.http_port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomCheckCalledAet": True,
            "DicomAlwaysAllowEcho": True,
            "DicomAlwaysAllowStore": True,
            "DicomModalities": {},
            "Plugins": [],
            "ConcurrentJobs": 2,
            "SaveJobs": False,
            "StorageCompression": False,
            "OverwriteInstances": True,
        }

    def start(self) -> None:
        config_file = self.folder / "orthanc.json"
        config_file.write_text(json.dumps(self.config(), indent=2))
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [self.exe, str(config_file)], stdout=log, stderr=subprocess.STDOUT, cwd=self.folder
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Orthanc exited: {self.log_path.read_text()[-2000:]}")
            try:
                self.get("/system")
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)
        raise RuntimeError("Orthanc did not start within 30 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    # -- REST ------------------------------------------------------------------------------
    def request(self, method: str, path: str, body: bytes | None = None) -> Any:
        req = urllib.request.Request(self.url + path, data=body, method=method)
        if body is not None:
            req.add_header("Content-Type", "application/octet-stream")
        with urllib.request.urlopen(req, timeout=60) as resp:
            data = resp.read()
        return json.loads(data) if data else None

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post_json(self, path: str, payload: Any) -> Any:
        return self.request("POST", path, json.dumps(payload).encode())

    def upload(self, path: Path) -> dict[str, Any]:
        return self.request("POST", "/instances", path.read_bytes())

    def add_modality(self, name: str, aet: str, port: int, host: str = "127.0.0.1") -> None:
        payload = {"AET": aet, "Host": host, "Port": port}
        self.request("PUT", f"/modalities/{name}", json.dumps(payload).encode())

    def version(self) -> str:
        return str(self.get("/system")["Version"])


@pytest.fixture(scope="module")
def orthanc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    server = Orthanc(require_orthanc(), tmp_path_factory.mktemp("orthanc"))
    server.start()
    try:
        yield server
    finally:
        server.stop()
