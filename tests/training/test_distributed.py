"""Two processes under torchrun (gloo, CPU): DDP and FSDP runs end where one process with the doubled batch ends."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from . import distributed_worker

WORKER = Path(distributed_worker.__file__)


def _weights(folder) -> dict:
    return load_file(os.path.join(folder, "final", "model.safetensors"))


def _assert_close_weights(a: dict, b: dict, atol: float):
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=atol, rtol=1e-4, msg=key)


@pytest.fixture(scope="module")
def runs(tiny_bert_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("distributed")
    single = distributed_worker.run(str(tiny_bert_dir), str(out / "single"), 8, "ddp")
    done = _two_processes(tiny_bert_dir, out / "two")
    if done.returncode != 0 and "Signal 6 (SIGABRT)" in done.stderr:
        # A rare abort inside torch's distributed runtime ("terminate called without an active exception": seen
        # once, not in 35 runs since): the run is repeated once from scratch; a second failure fails the test.
        warnings.warn(f"two-process run aborted, repeated once:\n{done.stderr[-2000:]}")
        shutil.rmtree(out / "two", ignore_errors=True)
        done = _two_processes(tiny_bert_dir, out / "two")
    assert done.returncode == 0, done.stderr[-4000:]
    return out, single


def _two_processes(model_dir, out) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", "PYTHONFAULTHANDLER": "1",
           "TORCH_SHOW_CPP_STACKTRACES": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(WORKER),
               str(model_dir), str(out), "4", "ddp", "fsdp", "fsdp_resume"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=400)


def test_ddp_matches_one_process_with_doubled_batch(runs):
    out, single = runs
    folder = out / "two" / "ddp"
    ranks = [json.loads((folder / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert [r["should_save"] for r in ranks] == [True, False]
    assert ranks[0]["losses"] == pytest.approx(single["losses"], abs=1e-5)
    _assert_close_weights(_weights(folder), _weights(out / "single" / "ddp"), atol=1e-5)
    for rank in ranks:  # evaluation outputs gathered from both ranks: every example counted once
        assert rank["metrics"]["eval_count"] == distributed_worker.NUM_EVAL
        assert rank["metrics"]["eval_accuracy"] == single["metrics"]["eval_accuracy"]
        assert rank["metrics"]["eval_loss"] == pytest.approx(single["metrics"]["eval_loss"], abs=1e-5)
    checkpoint = set(os.listdir(folder / "checkpoint-6"))
    assert {"rng_state_0.pth", "rng_state_1.pth", "model.safetensors", "optimizer.pt"} <= checkpoint
    assert "rng_state.pth" not in checkpoint


def test_fsdp_matches_one_process_and_resumes(runs):
    out, single = runs
    fsdp, resumed = out / "two" / "fsdp", out / "two" / "fsdp_resume"
    rank0 = json.loads((fsdp / "rank0.json").read_text())
    assert rank0["losses"] == pytest.approx(single["losses"], abs=1e-5)
    _assert_close_weights(_weights(fsdp), _weights(out / "single" / "ddp"), atol=1e-5)
    _assert_close_weights(_weights(resumed), _weights(fsdp), atol=1e-6)
    assert json.loads((resumed / "rank1.json").read_text())["metrics"]["eval_count"] == distributed_worker.NUM_EVAL


@pytest.mark.parametrize("use_cpu,ddp_backend,expected", [
    (False, None, ("nccl", "cuda")), (True, None, ("gloo", "cpu")), (False, "gloo", ("gloo", "cuda"))])
def test_process_group_backend_and_device_choice(monkeypatch, tmp_path, use_cpu, ddp_backend, expected):
    """What a torchrun launch on GPUs would do, without GPUs: NCCL and this rank's CUDA device when CUDA is there
    (gloo and the CPU with use_cpu=True; ddp_backend overrides), decided as the arguments are built."""
    import torch.distributed as dist

    from leanformers import TrainingArguments

    calls = {}
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", lambda index: calls.setdefault("set_device", index))
    monkeypatch.setattr(dist, "is_initialized", lambda: "backend" in calls)
    monkeypatch.setattr(dist, "init_process_group", lambda backend, timeout: calls.update(backend=backend,
                                                                                         timeout=timeout))
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=use_cpu, ddp_backend=ddp_backend, ddp_timeout=60)
    backend, device_type = expected
    assert calls["backend"] == backend and calls["timeout"].total_seconds() == 60
    assert args.device.type == device_type
    if device_type == "cuda":
        assert args.device.index == 1 and calls["set_device"] == 1
    else:
        assert "set_device" not in calls
