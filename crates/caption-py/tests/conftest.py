"""Shared fixtures: the repository's paths, the metrics' fixture corpora, and small trained runs
made with the `xtask` binary of this checkout (built by `cargo build -p xtask`)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SHARED = Path(os.environ.get("CAPTION_SHARED", ROOT.parent / "shared"))
FLICKR8K = SHARED / "data" / "flickr8k"


def xtask_binary() -> Path:
    """The `xtask` binary of this checkout (CARGO_TARGET_DIR respected; CAPTION_XTASK overrides)."""
    if "CAPTION_XTASK" in os.environ:
        return Path(os.environ["CAPTION_XTASK"])
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    binary = target / "debug" / "xtask"
    if not binary.exists():
        pytest.fail(f"{binary} is missing: build it first (cargo build -p xtask)")
    return binary


def xtask(*args: object) -> str:
    """Runs `cargo xtask ARGS` (the binary) and returns its standard output; fails the test with
    both streams when it fails."""
    done = subprocess.run([str(xtask_binary()), *map(str, args)], capture_output=True, text=True)
    assert done.returncode == 0, f"xtask {args}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="session")
def metric_cases() -> list[dict]:
    """caption-metrics' fixture corpora (hypotheses and references, as strings)."""
    path = ROOT / "crates" / "caption-metrics" / "tests" / "fixtures" / "random.json"
    return json.loads(path.read_text())["cases"]


@pytest.fixture(scope="session")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated shapes dataset of 16 images."""
    data = tmp_path_factory.mktemp("shapes") / "shapes"
    xtask("prepare-data", "--dataset", "shapes", "--images", 16, "--size", 80, "--out", data, "--threshold", 2, "-q")
    return data


TRAIN = ["--encoder", "random", "--image-size", 75, "--batch-size", 16, "--embed-size", 24, "--hidden-size", 32]
TRAIN += ["--lr", "0.003", "--device", "cpu", "-q", "--epochs", 1]


@pytest.fixture(scope="session")
def lstm_run(shapes: Path) -> Path:
    """The CNN-to-RNN model trained one epoch on `shapes`."""
    run = shapes.parent / "lstm"
    xtask("train", "--data", shapes, "--run", run, *TRAIN)
    return run


@pytest.fixture(scope="session")
def attention_run(shapes: Path) -> Path:
    """The Show, Attend and Tell model trained one epoch on `shapes`."""
    run = shapes.parent / "attention"
    xtask("train", "--data", shapes, "--run", run, *TRAIN, "--decoder", "attention")
    return run
