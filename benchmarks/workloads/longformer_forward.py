"""Longformer forward at 1,024 and 4,096 tokens (window 512, global attention on the first token): time and peak
resident memory, to show both grow linearly with the length."""

from __future__ import annotations

from common import library, peak_rss_bytes, repeat, reset_peak_rss, rss_bytes, summary

NAME = "longformer_forward"
METRIC = ("median_s", "lower")
# a quarter of longformer-base's width and depth; the window is the real one, which is what sets the memory
CONFIG = dict(vocab_size=1000, hidden_size=192, num_hidden_layers=3, num_attention_heads=3, intermediate_size=768,
              max_position_embeddings=4098, attention_window=512)


def cases(quick: bool) -> list[dict]:
    return [{"batch": 1, "seq": seq} for seq in (1024, 4096)]


def prepare(quick: bool) -> None:
    """Nothing to fetch: the model is built from its config with a fixed seed."""


def measure(lib: str, case: dict, quick: bool) -> dict:
    import torch

    module = library(lib)
    torch.manual_seed(0)
    model = module.LongformerModel(module.LongformerConfig(**CONFIG)).eval()
    shape = (case["batch"], case["seq"])
    inputs = {"input_ids": torch.randint(3, CONFIG["vocab_size"], shape, generator=torch.Generator().manual_seed(0)),
              "attention_mask": torch.ones(shape, dtype=torch.long),
              "global_attention_mask": torch.zeros(shape, dtype=torch.long)}
    inputs["global_attention_mask"][:, 0] = 1

    def step():
        with torch.inference_mode():
            return model(**inputs).last_hidden_state

    before = rss_bytes()
    exact_peak = reset_peak_rss()
    out = step()
    peak = peak_rss_bytes() if exact_peak else max(peak_rss_bytes(), rss_bytes())
    times = repeat(step, warmup=0 if quick else 1, repeats=2 if quick else 5)
    return {**summary(times), "peak_rss_delta_mb": (peak - before) / 2**20, "peak_is_exact": exact_peak,
            "output_shape": list(out.shape), "tokens_per_s": case["batch"] * case["seq"] / summary(times)["median_s"]}
