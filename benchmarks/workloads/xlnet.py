"""XLNet forward (1x128 and 8x128 tokens, the language-model head) and greedy decoding the way XLNet decodes (a
masked dummy target token each step, the memory carried; a 32-token prompt, 64 new tokens, batch 1 and 4), on a
random model of xlnet-base-cased's shape (12 layers, d_model 768, 12 heads, d_inner 3072, vocabulary 32,000,
mem_len None as in its config) written once by transformers (float32)."""

from __future__ import annotations

import json
import sys

from common import BENCH_DIR, library
from lm_timing import cases, decode_result, ensure_checkpoint, forward_result, random_ids

NAME = "xlnet"
# process CPU seconds per call (one thread): steadier than wall time on a machine shared with other work
METRIC = ("cpu_s", "lower")
CHECKPOINT = BENCH_DIR / "xlnet-base-random"
CONFIG = dict(vocab_size=32000, d_model=768, n_layer=12, n_head=12, d_inner=3072, ff_activation="gelu",
              attn_type="bi", mem_len=None, reuse_len=None, bi_data=False, clamp_len=-1, same_length=False)
WRITE_SCRIPT = """
import json, sys, torch, transformers
torch.manual_seed(0)
model = transformers.XLNetLMHeadModel(transformers.XLNetConfig(**json.loads(sys.argv[2])))
model.save_pretrained(sys.argv[1])
print(sum(p.numel() for p in model.parameters()))
"""

__all__ = ["NAME", "METRIC", "cases", "prepare", "measure"]


def prepare(quick: bool) -> None:
    ensure_checkpoint(CHECKPOINT, WRITE_SCRIPT, sys.executable, json.dumps(CONFIG))


def measure(lib: str, case: dict, quick: bool) -> dict:
    import torch

    model = library(lib).XLNetLMHeadModel.from_pretrained(str(CHECKPOINT)).eval()
    if case["task"] == "forward":
        ids = random_ids(case["batch"], case["seq"], CONFIG["vocab_size"])
        mask = torch.ones_like(ids)

        def step():
            with torch.inference_mode():
                return model(input_ids=ids, attention_mask=mask).logits

        return forward_result(step, case, quick)
    ids = random_ids(case["batch"], case["prompt"], CONFIG["vocab_size"])
    new = case["new_tokens"]

    def generate():
        with torch.inference_mode():
            return model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new, min_new_tokens=new,
                                  do_sample=False, pad_token_id=model.config.pad_token_id)

    return decode_result(generate, case, quick)
