"""AutoModel.from_pretrained of a bert-base-sized safetensors checkpoint: time and peak resident memory."""

from __future__ import annotations

import gc
import time

from common import (BERT_BASE, ensure_bert_base, library, peak_rss_bytes, read_through, repeat, reset_peak_rss,
                    rss_bytes, summary)

NAME = "load"
METRIC = ("median_s", "lower")


def cases(quick: bool) -> list[dict]:
    return [{"checkpoint": "bert-base-random", "dtype": "float32"}]


def prepare(quick: bool) -> None:
    read_through(ensure_bert_base())  # both libraries then start from a warm page cache


def measure(lib: str, case: dict, quick: bool) -> dict:
    module = library(lib)
    auto_model = module.AutoModel
    getattr(module, "BertModel")  # import the model code first: only loading is measured
    path = str(BERT_BASE)

    # First load in this process: page cache may be cold for neither library (the runner warms the files).
    before = rss_bytes()
    exact_peak = reset_peak_rss()
    start = time.perf_counter()
    model = auto_model.from_pretrained(path)
    first_s = time.perf_counter() - start
    peak = peak_rss_bytes() if exact_peak else max(peak_rss_bytes(), rss_bytes())
    parameters = sum(p.numel() for p in model.parameters())
    resident_after = rss_bytes()
    first_forward_s = _first_forward(model)  # memory-mapped weights are paged in here, not during the load
    resident_after_forward = rss_bytes()
    del model
    gc.collect()

    times = repeat(lambda: auto_model.from_pretrained(path), warmup=0, repeats=3 if quick else 10)
    return {**summary(times), "first_load_s": first_s, "parameters": parameters,
            "peak_rss_delta_mb": (peak - before) / 2**20, "rss_after_load_delta_mb": (resident_after - before) / 2**20,
            "first_forward_s": first_forward_s,
            "rss_after_first_forward_delta_mb": (resident_after_forward - before) / 2**20, "peak_is_exact": exact_peak}


def _first_forward(model) -> float:
    import torch

    ids = torch.arange(1000, 1016).unsqueeze(0)
    start = time.perf_counter()
    with torch.inference_mode():
        model(input_ids=ids)
    return time.perf_counter() - start
