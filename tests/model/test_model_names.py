"""Model names that could not be files everywhere the app runs: Windows device names
(CON, nul.v2, COM1...) and a trailing dot (Windows drops it, so "a." and "a" collide)
are refused with the reason; ordinary names pass. Found by a hostile-input sweep of
``xraydesk train --name``."""

from __future__ import annotations

import pytest

from xraydesk.errors import ModelError
from xraydesk.model.library import validate_name


@pytest.mark.parametrize("name", ["CON", "con", "nul.v2", "COM1", "lpt9", "AUX"])
def test_windows_device_names_are_refused(name: str) -> None:
    with pytest.raises(ModelError, match="device name on Windows"):
        validate_name(name)


@pytest.mark.parametrize("name", ["site.", "../evil", ".hidden", "", "a" * 65, "x\x01y"])
def test_malformed_names_are_refused(name: str) -> None:
    with pytest.raises(ModelError, match="invalid model name"):
        validate_name(name)


@pytest.mark.parametrize("name", ["console", "COM10", "conv2", "site-a.v2", "chest_3class", "a"])
def test_ordinary_names_pass(name: str) -> None:
    assert validate_name(name) == name
