"""A PACS node's address is checked when it is saved: `xraydesk pacs add n2 OK "a b" 104`
was saved and then failed at every echo as "could not be reached". IP addresses and DNS
names pass; spaces, a port glued to the address and malformed labels are refused with
the reason. Found by a hostile-input sweep."""

from __future__ import annotations

import pytest

from xraydesk.cli import main
from xraydesk.dicomnet.config import ConfigError, check_address, load_config, make_node


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "::1", "10.1.2.3", "pacs.hospital.local", "PACS-01", "pacs_01.lan"]
)
def test_addresses_and_names_pass(host: str) -> None:
    assert check_address(host) == host
    assert make_node("pacs", "PACS", host, 104).host == host


@pytest.mark.parametrize("host", ["a b", "10.0.0.5:104", "-pacs", "pacs-", "", "x" * 254, "p\x01"])
def test_malformed_addresses_are_refused(host: str) -> None:
    with pytest.raises(ConfigError, match="is not an IP address or a host name"):
        make_node("pacs", "PACS", host, 104)


def test_pacs_add_refuses_before_saving(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pacs", "add", "n2", "OK", "a b", "104"]) == 2
    assert "'a b' is not an IP address or a host name" in capsys.readouterr().err
    assert "n2" not in load_config().nodes
