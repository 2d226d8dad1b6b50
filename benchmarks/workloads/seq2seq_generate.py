"""Summarisation-style beam search: 4 beams over a 512-token input, 64 new tokens, on random bart-base-sized and
t5-small-sized encoder-decoders saved by transformers."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

from common import BENCH_DIR, library, read_through, repeat, summary

NAME = "seq2seq_generate"
METRIC = ("median_s", "lower")
CHECKPOINTS = {
    "bart-base": ("BartForConditionalGeneration", "BartConfig", dict(
        vocab_size=50265, d_model=768, encoder_layers=6, decoder_layers=6, encoder_attention_heads=12,
        decoder_attention_heads=12, encoder_ffn_dim=3072, decoder_ffn_dim=3072)),
    "t5-small": ("T5ForConditionalGeneration", "T5Config", dict(
        vocab_size=32128, d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_heads=8, decoder_start_token_id=0)),
}
WRITE_SCRIPT = """
import json, sys, torch, transformers
class_name, config_name, config = sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
torch.manual_seed(0)
model = getattr(transformers, class_name)(getattr(transformers, config_name)(**config))
model.save_pretrained(sys.argv[1])
print(sum(p.numel() for p in model.parameters()))
"""


def cases(quick: bool) -> list[dict]:
    return [{"model": name, "input_tokens": 512, "new_tokens": 16 if quick else 64, "num_beams": 4}
            for name in CHECKPOINTS]


def checkpoint(name: str):
    """The random checkpoint `name`, written once by transformers (safetensors, float32)."""
    folder = BENCH_DIR / f"{name}-random"
    marker = folder / "bench.json"
    if not marker.exists():
        folder.mkdir(parents=True, exist_ok=True)
        class_name, config_name, config = CHECKPOINTS[name]
        done = subprocess.run([sys.executable, "-c", WRITE_SCRIPT, str(folder), class_name, config_name,
                               json.dumps(config)], capture_output=True, text=True, timeout=900,
                              env={**os.environ, "TRANSFORMERS_VERBOSITY": "error"})
        if done.returncode != 0:
            raise RuntimeError(f"could not write the {name} bench checkpoint:\n{done.stderr[-2000:]}")
        marker.write_text(json.dumps({"parameters": int(done.stdout.split()[-1]), "writer": "transformers"}))
    return folder


def prepare(quick: bool) -> None:
    for name in CHECKPOINTS:
        read_through(checkpoint(name))


def measure(lib: str, case: dict, quick: bool) -> dict:
    import torch

    module = library(lib)
    model = module.AutoModelForSeq2SeqLM.from_pretrained(str(checkpoint(case["model"]))).eval()
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(10, model.config.vocab_size - 10, (1, case["input_tokens"]), generator=generator)
    new = case["new_tokens"]  # exactly this many: random weights would otherwise stop at any early EOS

    def step():
        with torch.inference_mode():
            return model.generate(input_ids, attention_mask=torch.ones_like(input_ids), num_beams=case["num_beams"],
                                  max_new_tokens=new, min_new_tokens=new, do_sample=False)

    sequences = step()
    times = repeat(step, warmup=0 if quick else 1, repeats=2 if quick else 5)
    result = summary(times)
    return {**result, "tokens_per_s": new / result["median_s"], "output_shape": list(sequences.shape),
            "fingerprint": hashlib.sha256(json.dumps(sequences.tolist()).encode()).hexdigest()[:16]}
