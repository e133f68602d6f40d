"""Trust test fixtures: a real test-split radiograph shared by the verdict and front-door tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.xrays import split_test_paths
from xraydesk.imaging import load_xray


@pytest.fixture(scope="module")
def chest_pixels(shared_data: Path) -> np.ndarray:
    """A real test-split radiograph (the gate never trained on it) as 12-bit pixels."""
    unit = load_xray(shared_data / split_test_paths(1)[0]).render()
    return np.round(unit * 4095).astype(np.uint16)
