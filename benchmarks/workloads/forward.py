"""Encoder forward latency of bert-base under torch.inference_mode, float32 and bfloat16."""

from __future__ import annotations

from common import BERT_BASE, ensure_bert_base, library, repeat, summary

NAME = "forward"
METRIC = ("median_s", "lower")


def cases(quick: bool) -> list[dict]:
    return [{"batch": batch, "seq": 128, "dtype": dtype}
            for dtype in ("float32", "bfloat16") for batch in (1, 8)]


def prepare(quick: bool) -> None:
    ensure_bert_base()


def measure(lib: str, case: dict, quick: bool) -> dict:
    import torch

    module = library(lib)
    dtype = getattr(torch, case["dtype"])
    model = module.AutoModel.from_pretrained(str(BERT_BASE), dtype=dtype).eval()
    generator = torch.Generator().manual_seed(0)
    shape = (case["batch"], case["seq"])
    inputs = {"input_ids": torch.randint(1000, 30000, shape, generator=generator),
              "attention_mask": torch.ones(shape, dtype=torch.long),
              "token_type_ids": torch.zeros(shape, dtype=torch.long)}

    def step():
        with torch.inference_mode():
            return model(**inputs).last_hidden_state

    out = step()
    repeats = 3 if quick else 20
    times = repeat(step, warmup=1 if quick else 3, repeats=repeats)
    return {**summary(times), "output_dtype": str(out.dtype), "output_shape": list(out.shape),
            "tokens_per_s": case["batch"] * case["seq"] / summary(times)["median_s"]}
