"""Shared fixtures.

``shared_data`` is the one way tests find ../shared/data. Set XRAYDESK_TEST_DATA to
point elsewhere. Where it is missing the test skips with the reason, except under
XRAYDESK_REQUIRE_DATA=1 (set by .ci/run, since CI always has the data), where it fails.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.paths import REPO_ROOT

DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data"


# Tests that start a real outside component (Orthanc, local Spark with its Java runtime)
# through these fixtures are integration tests, marked so automatically; tests that start
# one themselves (Xvfb, Prometheus, a PyInstaller build) carry the mark in their file, and
# every test under tests/integration/ has it too.
# The quick local run leaves them out: pytest -m "not slow and not integration".
INTEGRATION_FIXTURES = frozenset({"orthanc_server", "spark"})
INTEGRATION_DIR = Path(__file__).resolve().parent / "integration"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        in_folder = INTEGRATION_DIR in Path(item.path).resolve().parents
        if in_folder or INTEGRATION_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


def _data_root() -> Path:
    return Path(os.environ.get("XRAYDESK_TEST_DATA", DEFAULT_DATA))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    root = _data_root()
    if not (root / "README.md").is_file():
        reason = (
            f"shared test data not found at {root} "
            "(set XRAYDESK_TEST_DATA to the folder holding the pools and samples/)"
        )
        if os.environ.get("XRAYDESK_REQUIRE_DATA") == "1":
            pytest.fail(reason + "; XRAYDESK_REQUIRE_DATA=1 forbids skipping")
        pytest.skip(reason)
    return root


@pytest.fixture(scope="session")
def samples_dir(shared_data: Path) -> Path:
    return shared_data / "samples"


@pytest.fixture(scope="session")
def _runtime_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("runtime-cache")


@pytest.fixture(autouse=True)
def _isolated_data_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, _runtime_cache: Path
):
    """No test ever writes into the real user data folder. Exported runtime graphs
    (xraydesk.runtime, keyed by the weights' sha256) are shared by the session: each
    bundled model is exported once, not once per test."""
    monkeypatch.setenv("XRAYDESK_DATA_DIR", str(tmp_path_factory.mktemp("xraydesk-data")))
    monkeypatch.setenv("XRAYDESK_RUNTIME_CACHE", str(_runtime_cache))


@pytest.fixture(scope="session")
def test_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Card path of a small random 3-class model (shared by the whole session; read-only)."""
    from tests.model_factory import make_test_model

    return make_test_model(tmp_path_factory.mktemp("test-model"))


@pytest.fixture(scope="session")
def test_classifier(test_model_path: Path):
    from xraydesk.classifier import Classifier

    return Classifier.load(test_model_path, device="cpu")
