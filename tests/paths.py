"""Where the repository is, for every test module whatever folder it sits in.

Tests mirror the packages (tests/<package>/test_*.py, tests/integration/), so a
``Path(__file__).parents[n]`` depends on the depth; this one constant does not.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
MODELS_DIR = REPO_ROOT / "models"
