"""Shared test fixtures: the real sample data folder and the repository root."""

import logging
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DEFAULT_NAMELIST = REPO / "namelists" / "osse_default.yaml"  # the default twin experiment (make demo)
SAMPLE_DATA = Path(os.environ.get("SMDA_SAMPLE_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture
def sample_data():
    """The real product samples (../shared/data); tests that need them skip, with this reason, without them."""
    if not SAMPLE_DATA.is_dir():
        pytest.skip(f"real sample data not found at {SAMPLE_DATA} (set SMDA_SAMPLE_DATA)")
    return SAMPLE_DATA


@pytest.fixture(autouse=True)
def default_log_levels():
    """``smda.run.cli.main`` sets the levels of the root and smda loggers: put them back after every test."""
    yield
    logging.getLogger("smda").setLevel(logging.NOTSET)
    logging.getLogger().setLevel(logging.WARNING)
