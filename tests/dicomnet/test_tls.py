"""TLS files that cannot be used are named with their role and the cause before OpenSSL
reads them: its errors said "[Errno 2] No such file or directory" without saying which
of the certificate, the key or the CA, and a named pipe would block it for good."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.dicomnet.tls_files import self_signed_tls
from xraydesk.dicomnet.config import ConfigError, TlsFiles
from xraydesk.dicomnet.tls import client_context, server_context

BOTH_WAYS = (server_context, client_context)


@pytest.fixture
def tls(tmp_path: Path) -> TlsFiles:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a certificate")
    return self_signed_tls(tmp_path)


@pytest.mark.parametrize("make", BOTH_WAYS)
def test_a_missing_file_is_named_with_its_role(make, tls: TlsFiles, tmp_path: Path) -> None:
    gone = tmp_path / "gone.key"
    with pytest.raises(ConfigError) as raised:
        make(TlsFiles(cert=tls.cert, key=gone, ca=tls.ca))
    assert str(raised.value) == (
        f"TLS private key (--tls-key, or tls.key in dicomnet.json) {gone}: file not found"
    )


@pytest.mark.parametrize("make", BOTH_WAYS)
def test_a_pipe_a_folder_or_a_loop_is_named_not_read(make, tls: TlsFiles, tmp_path: Path):
    fifo = tmp_path / "ca.pem"
    os.mkfifo(fifo)
    loop = tmp_path / "loop.pem"
    loop.symlink_to(loop.name)
    cases = {
        fifo: "it is a named pipe, not a PEM file",
        tmp_path: "it is a folder, not a PEM file",
        loop: "a loop of symbolic links: it leads to no file or folder",
    }
    for path, cause in cases.items():
        with pytest.raises(ConfigError) as raised:
            make(TlsFiles(cert=tls.cert, key=tls.key, ca=path))
        assert (
            str(raised.value)
            == f"TLS CA certificate (--tls-ca, or tls.ca in dicomnet.json) {path}: {cause}"
        )


def test_a_file_openssl_refuses_is_named(tls: TlsFiles, tmp_path: Path) -> None:
    not_pem = tmp_path / "node.key.txt"
    not_pem.write_text("not a key\n")
    with pytest.raises(ConfigError) as raised:
        server_context(TlsFiles(cert=tls.cert, key=not_pem))
    message = str(raised.value)
    assert message.startswith(f"cannot load the TLS files {tls.cert}, {not_pem} (")


def test_good_files_load_both_ways(tls: TlsFiles) -> None:
    assert server_context(tls).verify_mode.name == "CERT_REQUIRED"
    assert client_context(tls).check_hostname
