"""Shared fixtures: seeds, a per-test repro folder, and the `cuda` skip."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch

# every pass is followed by IR.lint() in the tests (compiles outside them lint once, at the end)
os.environ.setdefault("ATTNCC_CHECK_PASSES", "1")

SEED = 1234


@pytest.fixture(autouse=True)
def _seed_everything():
    """Every test starts from the same global RNG state, so failures reproduce by test ID."""
    random.seed(SEED)
    np.random.seed(SEED)  # noqa: NPY002 - legacy global state some libraries still read
    torch.manual_seed(SEED)
    yield


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(SEED)


@pytest.fixture
def repro_dir(tmp_path, monkeypatch):
    """Points $ATTNCC_REPRO_DIR at a fresh folder (for tests of the harness's dump)."""
    folder = tmp_path / "repro"
    monkeypatch.setenv("ATTNCC_REPRO_DIR", str(folder))
    return folder


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device; torch.cuda.is_available() is False")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
