"""``xraydesk pacs add`` with TLS files: they were dropped without a word (the node was
saved with --tls, the files nowhere), so the first TLS echo failed against a PACS whose
certificate only the given CA signs. They are now saved as this node's TLS files (one
set in dicomnet.json, for every TLS association), after each is checked."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.dicomnet.tls_files import self_signed_tls
from xraydesk.cli import main
from xraydesk.dicomnet import NodeConfig, StorageNode
from xraydesk.dicomnet.config import TlsFiles, config_path, load_config

NODE_AET = "XRAYDESK"


@pytest.fixture
def tls(tmp_path: Path) -> TlsFiles:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a certificate")
    return self_signed_tls(tmp_path)


def _tls_options(tls: TlsFiles) -> list[str]:
    return ["--tls-cert", str(tls.cert), "--tls-key", str(tls.key), "--tls-ca", str(tls.ca)]


def test_tls_files_given_to_add_are_saved_and_used_by_the_next_command(tls: TlsFiles, capsys):
    listening = NodeConfig(ae_title=NODE_AET, port=0, allowed_ae_titles=(NODE_AET,), tls=tls)
    with StorageNode(listening, None) as secure:
        add = ["pacs", "add", "secure", NODE_AET, "127.0.0.1", str(secure.port), "--tls"]
        assert main([*add, *_tls_options(tls)]) == 0
        out = capsys.readouterr().out
        assert f"TLS files of this node (for every TLS association): certificate {tls.cert}" in out
        config = load_config()
        assert config.tls == tls and config.node("secure").tls
        saved = json.loads(config_path().read_text())["tls"]
        assert saved == {"cert": str(tls.cert), "key": str(tls.key), "ca": str(tls.ca)}
        # no TLS option now: the saved files verify the node's self-signed certificate
        assert main(["pacs", "echo", "secure", "--ae-title", NODE_AET]) == 0, capsys.readouterr()
        assert "answered C-ECHO" in capsys.readouterr().out


def test_tls_files_without_tls_are_refused_and_nothing_is_saved(tls: TlsFiles, capsys):
    assert main(["pacs", "add", "plain", "ORTHANC", "10.1.2.3", "4242", *_tls_options(tls)]) == 2
    err = capsys.readouterr().err
    assert "plain is added without --tls, so no TLS file would be used with it" in err
    assert not config_path().exists()


def test_a_missing_tls_file_is_named_and_nothing_is_saved(tls: TlsFiles, tmp_path: Path, capsys):
    gone = tmp_path / "gone-ca.pem"
    add = ["pacs", "add", "secure", "ORTHANC", "10.1.2.3", "4242", "--tls"]
    assert main([*add, "--tls-ca", str(gone)]) == 2
    err = capsys.readouterr().err
    assert (
        f"TLS CA certificate (--tls-ca, or tls.ca in dicomnet.json) {gone}: file not found" in err
    )
    assert not config_path().exists()


def test_a_node_added_without_tls_options_keeps_the_saved_files(tls: TlsFiles, capsys):
    NodeConfig(tls=tls).save()
    assert main(["pacs", "add", "other", "ORTHANC", "10.1.2.4", "104"]) == 0
    assert "TLS files" not in capsys.readouterr().out
    config = load_config()
    assert config.tls == tls and not config.node("other").tls


def test_the_ae_title_given_to_add_is_saved_as_this_nodes(capsys):
    """``pacs add ... --ae-title XRAYDESK1`` saved the node and dropped the title, so the
    PACS, told to expect XRAYDESK1, refused this node's next association."""
    assert main(["pacs", "add", "pacs1", "ORTHANC", "10.1.2.5", "104", "--ae-title", "XRD1"]) == 0
    assert "this node's AE title (for every association): XRD1" in capsys.readouterr().out
    assert load_config().ae_title == "XRD1"
    # a title DICOM cannot carry is refused, and nothing is saved
    assert main(["pacs", "add", "pacs2", "ORTHANC", "10.1.2.6", "104", "--ae-title", "x" * 17]) == 2
    config = load_config()
    assert config.ae_title == "XRD1" and "pacs2" not in config.nodes
