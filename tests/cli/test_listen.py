"""``xraydesk listen`` with a TLS file that cannot be used: named with its role and the
cause, before the model loads. It said "cannot load the TLS certificate files ([Errno 2]
No such file or directory)", naming none of the two or three files."""

from __future__ import annotations

from pathlib import Path

from xraydesk.cli import main


def test_a_missing_tls_file_is_named_before_the_model_loads(tmp_path: Path, capsys) -> None:
    cert = tmp_path / "node.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    gone = tmp_path / "node.key"
    argv = ["listen", "--port", "0", "--tls-cert", str(cert), "--tls-key", str(gone)]
    assert main([*argv, "--model", str(tmp_path / "no-such-model")]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"xraydesk: TLS private key (--tls-key, or tls.key in dicomnet.json) {gone}: "
        "file not found\n"
    )  # the TLS file, not the missing model: checked first
