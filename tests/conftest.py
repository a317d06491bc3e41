"""Shared pytest fixtures."""

from pathlib import Path

import pytest

from raggym_env import Corpus, Document

SHARED_DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The offline benchmark files (``../shared/data``); skips the test when absent."""
    if not SHARED_DATA_DIR.is_dir():
        pytest.skip(f"shared benchmark data not found at {SHARED_DATA_DIR}")
    return SHARED_DATA_DIR


@pytest.fixture(scope="session")
def tiny_corpus() -> Corpus:
    """Four short documents: two people of a comparison question, a city, a planet."""
    return Corpus(
        [
            Document("d1", "Scott Derrickson", "Scott Derrickson is an American director."),
            Document("d2", "Ed Wood", "Ed Wood was an American filmmaker."),
            Document("d3", "Paris", "Paris is the capital of France."),
            Document("d4", "Uranus", "Voyager 2 approached Uranus; it launched on a Titan IIIE."),
        ],
        name="tiny",
    )
