"""Shared pytest set-up: markers, the --runslow switch, fp32 matmuls, and common fixtures."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# Full-precision fp32 matmuls on backends that would otherwise use TF32 (CUDA); a no-op on CPU.
os.environ.setdefault("MLX_ENABLE_TF32", "0")
# Imported before any test module imports mlx, so OpenBLAS (when installed) is loaded first.
import mlx_impl  # noqa: E402,F401

FIXTURES = ROOT / "tests" / "fixtures" / "speech"
SHARED_SPEECH = ROOT.parent / "shared" / "speech"


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help="also run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow test: run with --runslow (make test-all)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def read_manifest(folder: Path) -> list[dict]:
    """The clip manifest's entries, each with `path` (parity.clips.manifest)."""
    from parity.clips import manifest

    return manifest(folder)


@pytest.fixture(scope="session")
def fixture_clips() -> list[dict]:
    """The committed espeak-ng clips: dicts with id, path, text."""
    return read_manifest(FIXTURES)


@pytest.fixture(scope="session")
def shared_clips() -> list[dict]:
    """The real speech clips in ../shared/speech (skips, with the reason, when absent)."""
    if not (SHARED_SPEECH / "manifest.jsonl").exists():
        pytest.skip(f"real speech clips not found at {SHARED_SPEECH} (CI lays them beside the clone)")
    return read_manifest(SHARED_SPEECH)
