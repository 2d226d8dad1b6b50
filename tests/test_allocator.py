"""Loading a model makes glibc's malloc keep freed memory for reuse, so repeated forward passes stop faulting their
activations' pages in again; LEANFORMERS_MALLOC_TUNING=0 leaves malloc as it is."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from leanformers import allocator

FORWARDS = """
import resource, sys, torch, leanformers
torch.set_num_threads(2)
model = leanformers.AutoModel.from_pretrained(sys.argv[1]).eval()
ids = torch.randint(0, 100, (8, 128))  # activations of 1-4 MiB: above glibc's first map threshold
with torch.inference_mode():
    for _ in range(3):
        model(input_ids=ids)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        model(input_ids=ids)
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) // 5)
"""


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    import leanformers

    folder = tmp_path_factory.mktemp("bert")
    config = leanformers.BertConfig(vocab_size=100, hidden_size=256, intermediate_size=1024, num_hidden_layers=4,
                                    num_attention_heads=4)
    leanformers.BertModel(config).save_pretrained(folder)
    return folder


def _page_faults_per_forward(folder, **env) -> int:
    done = subprocess.run([sys.executable, "-c", FORWARDS, str(folder)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, **env})
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip().splitlines()[-1])


def test_forward_passes_reuse_freed_memory_once_a_model_is_loaded(bert_dir):
    assert platform.libc_ver()[0] == "glibc"  # the machines this project runs on; elsewhere nothing is tuned
    untuned = _page_faults_per_forward(bert_dir, LEANFORMERS_MALLOC_TUNING="0")
    tuned = _page_faults_per_forward(bert_dir)
    assert untuned > 500, untuned  # every forward maps its larger activations afresh
    assert tuned * 5 < untuned, (tuned, untuned)  # ~100 remain: not every block's pages again


def test_tuning_is_applied_once_and_can_be_turned_off(monkeypatch):
    calls = []
    monkeypatch.setattr(allocator, "_applied", None)
    monkeypatch.setattr(allocator, "_raise_thresholds", lambda: calls.append(1) or True)
    assert allocator.keep_freed_memory() and allocator.keep_freed_memory()
    assert calls == [1]
    monkeypatch.setattr(allocator, "_applied", None)
    monkeypatch.setenv("LEANFORMERS_MALLOC_TUNING", "0")
    assert allocator.keep_freed_memory() is False and calls == [1]
