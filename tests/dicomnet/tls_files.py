"""A self-signed certificate for the DICOM node's TLS tests (openssl, loopback only)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from xraydesk.dicomnet import TlsFiles


def self_signed_tls(folder: Path) -> TlsFiles:
    """A one-day certificate for 127.0.0.1 in ``folder``, its own CA (needs openssl)."""
    cert, key = folder / "node.pem", folder / "node.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=xraydesk-test", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return TlsFiles(cert=cert, key=key, ca=cert)
