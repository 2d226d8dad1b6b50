"""Transformer-XL forward (1x128 and 8x128 tokens) and greedy decoding (a 32-token prompt, 64 new tokens, batch 1
and 4; the memory is carried between steps) against transformers 4.34.1, the last release that runs it, measured in
its own interpreter (.venv-ref434).

The model is base-sized (not transfo-xl-wt103's 285M parameters, too slow for a shared CPU): 16 layers, d_model
512, 8 heads of 64, d_inner 2048, a 32,000-word vocabulary cut at 4,000 and 12,000 with div_val 4 (adaptive input
and softmax), mem_len 256, clamp_len 1000, same_length; random weights written once by 4.34.1 (float32)."""

from __future__ import annotations

from common import BENCH_DIR, ROOT, library
from lm_timing import cases, decode_result, ensure_checkpoint, forward_result, random_ids

NAME = "transfo_xl"
# process CPU seconds per call (one thread): steadier than wall time on a machine shared with other work
METRIC = ("cpu_s", "lower")
PYTHONS = {"transformers": str(ROOT / ".venv-ref434" / "bin" / "python")}
CHECKPOINT = BENCH_DIR / "transfo-xl-base-random"
CONFIG = dict(vocab_size=32000, cutoffs=[4000, 12000], d_model=512, d_embed=512, n_head=8, d_head=64, d_inner=2048,
              div_val=4, n_layer=16, mem_len=256, clamp_len=1000, same_length=True, untie_r=True, pre_lnorm=False)
WRITE_SCRIPT = """
import json, sys, warnings, torch, transformers
warnings.filterwarnings("ignore")
torch.manual_seed(0)
model = transformers.TransfoXLLMHeadModel(transformers.TransfoXLConfig(**json.loads(sys.argv[2])))
model.save_pretrained(sys.argv[1])
print(sum(p.numel() for p in model.parameters()))
"""

__all__ = ["NAME", "METRIC", "PYTHONS", "cases", "prepare", "measure"]


def prepare(quick: bool) -> None:
    import json

    ensure_checkpoint(CHECKPOINT, WRITE_SCRIPT, PYTHONS["transformers"], json.dumps(CONFIG))


def measure(lib: str, case: dict, quick: bool) -> dict:
    import warnings

    import torch

    warnings.filterwarnings("ignore")  # 4.34.1 announces its deprecation
    model = library(lib).TransfoXLLMHeadModel.from_pretrained(str(CHECKPOINT)).eval()
    if case["task"] == "forward":
        ids = random_ids(case["batch"], case["seq"], CONFIG["vocab_size"])

        def step():
            with torch.inference_mode():
                return model(ids).prediction_scores

        return forward_result(step, case, quick)
    ids = random_ids(case["batch"], case["prompt"], CONFIG["vocab_size"])
    new = case["new_tokens"]

    def generate():
        with torch.inference_mode():
            return model.generate(ids, max_new_tokens=new, min_new_tokens=new, do_sample=False, pad_token_id=0)

    return decode_result(generate, case, quick)
