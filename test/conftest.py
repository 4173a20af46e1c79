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


@pytest.fixture(scope="session")
def assets(tmp_path_factory):
    """The bad-input tables' shared inputs: models, a street bag, its map, an engine on it."""
    from bad_input_support import make_assets

    yield from make_assets(tmp_path_factory)


@pytest.fixture(scope="session")
def nordland_drive():
    """The shared Nordland line as a drive through the engine with the shipped models: summer places
    1431-1610 as the map, the winter frames of the same places as queries in driving order, once with
    sequences and once with (simulated, rotated) odometry. {mode: [QueryOutcome]}."""
    from dejavu_ros.config import DejavuConfig
    from dejavu_ros.evaluation import calibration, scenarios
    from engine_fixtures import trained_extractor

    root = shared("nordland_64x32")
    places = range(1431, 1611)
    scenario = scenarios.nordland_route(root, places, places)
    extractor = trained_extractor()
    cfg = DejavuConfig()
    cfg.features.device = "cpu"
    return {mode: calibration.run_scenario(scenario, cfg, extractor, odometry=(
        scenarios.simulated_odometry(scenario.queries) if mode == "odometry" else None))
        for mode in ("sequence", "odometry")}
