"""The hub cache after concurrent, killed and disk-full downloads: complete, or without the file - never a damaged
blob that a later offline load would use. Downloads come from a local stand-in for the hub (tests/hub_server.py)."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, SPLADE, fixture_path

import leanformers
from leanformers.errors import ResourceNotFoundError
from tests.hub_server import blob_id, local_hub

REPO = "hostile/splade"
CHUNK = 10 * 1024 * 1024  # huggingface_hub writes a download in pieces of this size
LOAD = """
import json, sys
import leanformers
from leanformers.errors import LeanformersError
try:
    model = leanformers.AutoModelForMaskedLM.from_pretrained(sys.argv[1], cache_dir=sys.argv[2])
    print(json.dumps({"ok": sum(p.numel() for p in model.parameters())}))
except LeanformersError as err:
    print(json.dumps({"error": type(err).__name__, "message": str(err)}))
"""


@pytest.fixture(scope="module")
def hub():
    source = fixture_path(*SPLADE)
    with local_hub() as server:
        server.add(REPO, {name: (source / name).read_bytes() for name in ("config.json", "model.safetensors")})
        yield server


def _env(hub) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_CACHE") and "proxy" not in k.lower()}
    env.update(HF_ENDPOINT=hub.url, NO_PROXY="127.0.0.1", HF_HUB_DISABLE_TELEMETRY="1", OMP_NUM_THREADS="1",
               PYTHONPATH=str(ROOT / "src"))
    return env


def _start(hub, cache, limit_bytes=None) -> subprocess.Popen:
    def limit():  # a disk that fills up: writes past the limit fail with EFBIG instead of killing the process
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.Popen([sys.executable, "-c", LOAD, REPO, str(cache)], env=_env(hub), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=limit if limit_bytes else None)


def _result(process) -> dict:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def _blobs_are_whole(hub, cache: Path):
    """Every blob in the cache holds exactly the bytes its name (the ETag) promises."""
    data = hub.repos[REPO].files
    by_id = {blob_id(name, content): content for name, content in data.items()}
    for blob in cache.rglob("blobs/*"):
        if blob.suffix == ".incomplete" or blob.name.endswith(".lock"):
            continue
        assert blob.name in by_id and blob.read_bytes() == by_id[blob.name], blob


def _offline_load(cache):
    return leanformers.AutoModelForMaskedLM.from_pretrained(REPO, cache_dir=cache)  # this process is offline


def test_two_processes_download_the_same_repo(hub, tmp_path):
    cache = tmp_path / "cache"
    first, second = _start(hub, cache), _start(hub, cache)
    results = [_result(first), _result(second)]
    assert results[0] == results[1] and "ok" in results[0]
    _blobs_are_whole(hub, cache)
    assert sum(p.numel() for p in _offline_load(cache).parameters()) == results[0]["ok"]


def test_killed_download_leaves_no_file_that_an_offline_load_uses(hub, tmp_path):
    cache = tmp_path / "cache"
    hub.release.clear()
    hub.break_transfer("model.safetensors", after=CHUNK + 1000, times=1, stall=True)
    process = _start(hub, cache)
    try:
        deadline = time.monotonic() + 240
        while not any(p.stat().st_size >= CHUNK for p in cache.rglob("*.incomplete")):
            assert process.poll() is None and time.monotonic() < deadline, "the download never got under way"
            time.sleep(0.2)
    finally:
        process.kill()
        process.wait(timeout=30)
        hub.release.set()
    _blobs_are_whole(hub, cache)
    with pytest.raises(ResourceNotFoundError, match="model.safetensors"):
        _offline_load(cache)
    assert "ok" in _result(_start(hub, cache))  # the next online load completes the file
    _blobs_are_whole(hub, cache)


def test_disk_full_leaves_no_damaged_blob(hub, tmp_path):
    cache = tmp_path / "cache"
    full = _result(_start(hub, cache, limit_bytes=5_000_000))  # the 17 MB weights do not fit
    assert full["error"] == "ResourceNotFoundError", full
    assert "model.safetensors" in full["message"] and "disk" in full["message"]
    _blobs_are_whole(hub, cache)
    with pytest.raises(ResourceNotFoundError, match="model.safetensors"):
        _offline_load(cache)
    assert "ok" in _result(_start(hub, cache))
    _blobs_are_whole(hub, cache)
    weights = hashlib.sha256(hub.repos[REPO].files["model.safetensors"]).hexdigest()
    assert [p.name for p in cache.rglob(f"blobs/{weights}")] == [weights]
