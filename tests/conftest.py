"""Shared pytest fixtures."""

from pathlib import Path

import pytest

SHARED_DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The offline benchmark files (``../shared/data``); skips the test when absent."""
    if not SHARED_DATA_DIR.is_dir():
        pytest.skip(f"shared benchmark data not found at {SHARED_DATA_DIR}")
    return SHARED_DATA_DIR
