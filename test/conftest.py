"""Shared fixtures: where the real data lives, and small helpers used across test files."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("DEJAVU_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared(*parts: str) -> Path:
    """Path into ../shared/data; skips the test when that data set is not on this machine."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not available: {path}")
    return path


@pytest.fixture
def shared_data():
    return shared


def pytest_configure(config):
    # One intra-op thread: the test inputs are small, and on a 2-core machine that runs anything
    # else at the same time, torch's thread pool spinning against it makes kernels many times slower.
    import torch

    torch.set_num_threads(1)
