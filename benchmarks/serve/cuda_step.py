"""The server's decoding step on a CUDA device: eager against `compile=True` (CUDA graphs, serving/compiled_step.py).

Builds a randomly initialised model of SmolLM2-135M's shape (no download: only its configuration) in float32 on the
first CUDA device, and runs the engine alone, eager and compiled, in waves of 1, 8 and 32 concurrent greedy
requests (24-48 prompt tokens, 64 new tokens each). It checks that every request's tokens are the same in both
engines and, for a few, equal to `generate()` alone, and that a seeded sampled request repeats its tokens; it prints
tokens/s per wave and the compile time. Exits 1 when a check fails, 2 without a CUDA device (`--device cpu`: a dry
run of the script). Bounded: one pass over the waves per engine, 64 tokens per request.

    python benchmarks/serve/cuda_step.py [--waves 1,8,32] [--max-batch 32] [--device cuda]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time

import torch

import leanformers
from leanformers.serving.engine import Engine, GenerationRequest

SMOLLM2_SHAPE = dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                     num_key_value_heads=3, vocab_size=49152, max_position_embeddings=2048, tie_word_embeddings=True,
                     rope_theta=100000.0, rms_norm_eps=1e-5)
NEW_TOKENS = 64


def prompts(count: int, seed: int) -> list[list[int]]:
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(24, 49, (count,), generator=generator).tolist()
    return [torch.randint(10, 40000, (n,), generator=generator).tolist() for n in lengths]


def serve_wave(engine: Engine, wave: list[list[int]], **sampling) -> tuple[list[list[int]], float]:
    """Every prompt of `wave` submitted at once (greedy unless `sampling` says otherwise) -> (each request's tokens,
    tokens/s)."""
    outputs, finished = [[] for _ in wave], threading.Semaphore(0)

    def emitter(i):
        def emit(kind, payload):
            if kind == "token":
                outputs[i].append(payload[0])
            else:
                finished.release()
        return emit
    requests = [GenerationRequest(prompt_ids=p, max_tokens=NEW_TOKENS, emit=emitter(i), **{"temperature": 0.0,
                                  **sampling}) for i, p in enumerate(wave)]
    start = time.perf_counter()
    engine.submit(requests)
    for _ in requests:
        if not finished.acquire(timeout=600):
            raise TimeoutError("a wave took more than 10 minutes")
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return outputs, sum(map(len, outputs)) / (time.perf_counter() - start)


def run_engine(model, waves: list[list[list[int]]], max_batch: int, compile: bool) -> tuple[list, list, float]:
    start = time.perf_counter()  # compiling included: CPU's library is built in Engine(), CUDA's graphs at warm-up
    engine = Engine(model, max_batch=max_batch, max_queue=256, max_len=256, compile=compile)
    try:
        engine.warm_up()
        warm = time.perf_counter() - start
        results = [serve_wave(engine, wave) for wave in waves]
        seeded = [serve_wave(engine, waves[0], temperature=0.8, seed=7)[0] for _ in range(2)]
    finally:
        engine.shutdown()
    if seeded[0] != seeded[1]:
        raise AssertionError("a seeded sampled request gave other tokens when sent again")
    return [tokens for tokens, _ in results], [speed for _, speed in results], warm


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waves", default="1,8,32")
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--device", default="cuda", help="cpu: a dry run of this script (the CPU form of the step)")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: this check runs on a GPU machine only")
        return 2
    torch.manual_seed(0)
    config = leanformers.LlamaConfig(**SMOLLM2_SHAPE)
    model = leanformers.AutoModelForCausalLM.from_config(config).to(args.device).eval()
    waves = [prompts(int(n), seed) for seed, n in enumerate(args.waves.split(","))]
    eager, eager_speed, _ = run_engine(model, waves, args.max_batch, compile=False)
    compiled, compiled_speed, warm = run_engine(model, waves, args.max_batch, compile=True)
    name = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    print(f"{name}: compiled engine ready in {warm:.1f} s, compiling included")
    failures = 0
    for wave, ours, theirs, fast, slow in zip(waves, compiled, eager, compiled_speed, eager_speed):
        same = sum(a == b for a, b in zip(ours, theirs))
        failures += same != len(wave)
        print(f"{len(wave):3d} streams: eager {slow:8.1f} tokens/s, compiled {fast:8.1f} ({fast / slow:.2f}x), "
              f"tokens equal in {same}/{len(wave)} requests")
    for prompt, tokens in list(zip(waves[-1], compiled[-1]))[:4]:
        alone = model.generate(torch.tensor([prompt], device=args.device), max_new_tokens=NEW_TOKENS,
                               min_new_tokens=NEW_TOKENS, do_sample=False)[0, len(prompt):].tolist()
        failures += alone != tokens
        print("generate() alone equal:", alone == tokens)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
