"""Shared paths and small helpers of the test suite."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DATA = SHARED / "data"
BENCH = SHARED / "bench"
S2_COG = DATA / "sentinel2" / "S2A_29RKH_20200219_0_L2A"
S2_SAFE = (DATA / "sentinel2" /
           "S2A_MSIL2A_20221005T115411_N0400_R023_T29UNU_20221005T164454.SAFE")


@pytest.fixture(scope="session")
def repo():
    return REPO


@pytest.fixture(scope="session")
def shared():
    if not SHARED.is_dir():
        pytest.fail(f"{SHARED} is missing: the test data must sit beside "
                    "the repository (see README)")
    return SHARED
