"""Shared pytest set-up: offline guard, hypothesis profile, paths to the built book."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from flashtrade_lib import netguard
from flashtrade_lib.measure import bench

ROOT = Path(__file__).resolve().parents[1]
BUILD_HTML = ROOT / "_build" / "html"

# Fixed-size property tests: deterministic example counts, no wall-clock deadline
# (the CI machine is a shared 2-core CPU).
settings.register_profile(
    "ci",
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Tests never reach the internet: only loopback sockets are allowed.
netguard.install()

# A benchmark a test runs measures nothing that is recorded, and `make test` keeps the machine busy by design
# (the chapters run beside the tests): never wait for a quiet machine (bench.start_watch's bound; 60 s by default).
os.environ.setdefault(bench.QUIET_WAIT_ENV, "0")


@pytest.fixture(scope="session")
def built_book() -> Path:
    """The HTML book built by `make book` (the `make test` target builds it first)."""
    index = BUILD_HTML / "index.html"
    if not index.is_file():
        pytest.fail(f"{index} does not exist: build the book first (make book)", pytrace=False)
    return BUILD_HTML


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A run folder from `flashtrade train` on a tiny synthetic market (seconds): for the CLI's
    fault tests of predict, backtest and checkpoints."""
    from flashtrade_lib.cli import main

    out = tmp_path_factory.mktemp("run")
    argv = ["train", "--out", str(out), "--data", "synthetic", "--n-bars", "900", "--n-assets", "1",
            "--planted-lag", "8", "--lookback", "16", "--epochs", "1", "--batch-size", "16",
            "--d-model", "16", "--n-heads", "2", "--n-layers", "1", "--max-steps-per-epoch", "2",
            "--no-progress"]
    assert main(argv) == 0
    return out
