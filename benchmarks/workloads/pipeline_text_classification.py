"""text-classification pipeline throughput: 2,000 inputs of very mixed length (5 to 200 words, log-uniform: as many
inputs of 5-14 words as of 63-200), batch_size 32, on a bert-base-sized classifier. transformers pads each batch of
32 consecutive inputs to its longest (about 70% of the positions it computes are padding); leanformers orders the
inputs by length first, so a batch pads only to neighbours of similar length."""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import shutil
import subprocess
import sys
import time

from common import BENCH_DIR, MINILM, library

NAME = "pipeline_text_classification"
METRIC = ("inputs_per_s", "higher")
TASK = "text-classification"
HEAD = "BertForSequenceClassification"
CONFIG = {"num_labels": 2}

WORDS = ("the of and to in is was for on that with as by at from his her it an be this are or which had not but "
         "people time year city music film game team house water school market world story history night river "
         "light money system road family season power report church village island station program language "
         "quickly slowly happily brightly quietly played wrote built found moved called opened grew became "
         "Paris London Tokyo Berlin Brooklyn Sylvain Marie Ahmed Chen Garcia Hugging Face Google Amazon").split()

SCRIPT = """
import json, sys, torch, transformers
torch.manual_seed(0)
config = transformers.BertConfig(**json.loads(sys.argv[3]))  # bert-base shape
getattr(transformers, sys.argv[2])(config).save_pretrained(sys.argv[1])
"""


def texts(count: int, seed: int = 0) -> list[str]:
    """Inputs of 5 to 200 words (log-uniform lengths), the same for both libraries."""
    rng = random.Random(seed)
    lengths = [round(math.exp(rng.uniform(math.log(5), math.log(200)))) for _ in range(count)]
    return [" ".join(rng.choice(WORDS) for _ in range(length)) + "." for length in lengths]


def checkpoint(head: str, config: dict):
    """Random bert-base weights with `head`, saved once by the reference library, with the MiniLM (bert-base-uncased)
    tokenizer."""
    folder = BENCH_DIR / f"bert-base-{head}"
    marker = folder / "bench.json"
    if marker.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(folder), head, json.dumps(config)], capture_output=True,
                          text=True, timeout=900, env={**os.environ, "TRANSFORMERS_VERBOSITY": "error"})
    if done.returncode != 0:
        raise RuntimeError(f"could not write the bench checkpoint:\n{done.stderr[-2000:]}")
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(MINILM / name, folder / name)
    marker.write_text(json.dumps({"head": head, "writer": "transformers", "seed": 0}))
    return folder


def cases(quick: bool) -> list[dict]:
    return [{"inputs": 600 if quick else 2000, "batch_size": 32, "words": "5-200 log-uniform"}]


def prepare(quick: bool) -> None:
    checkpoint(HEAD, CONFIG)


def padding_report(tokenizer, inputs: list[str], batch_size: int) -> dict:
    """Share of computed positions that are padding, batching in input order vs ordered by length."""
    lengths = [len(ids) for ids in tokenizer(inputs, truncation=True)["input_ids"]]

    def padded(order):
        return sum(max(lengths[i] for i in order[s:s + batch_size]) * len(order[s:s + batch_size])
                   for s in range(0, len(order), batch_size))

    real = sum(lengths)
    in_order = padded(list(range(len(lengths))))
    by_length = padded(sorted(range(len(lengths)), key=lambda i: -lengths[i]))
    return {"real_tokens": real, "padding_share_in_order": 1 - real / in_order,
            "padding_share_by_length": 1 - real / by_length}


def fingerprint(results) -> str:
    labels = [item["label"] if isinstance(item, dict) else [e["entity"] for e in item] for item in results]
    return hashlib.sha256(json.dumps(labels).encode()).hexdigest()[:16]


def run(lib: str, case: dict, quick: bool, task: str, head: str, config: dict, call_kwargs: dict) -> dict:
    module = library(lib)
    pipe = module.pipeline(task, model=str(checkpoint(head, config)), device="cpu")
    inputs = texts(case["inputs"])
    pipe(inputs[:8], batch_size=case["batch_size"], **call_kwargs)  # warm-up
    start, cpu_start = time.perf_counter(), time.process_time()
    results = pipe(inputs, batch_size=case["batch_size"], **call_kwargs)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    # CPU seconds too: on a machine shared with other work they move less than wall time does
    return {"seconds": seconds, "inputs_per_s": len(inputs) / seconds, "cpu_seconds": cpu_seconds,
            "inputs_per_cpu_s": len(inputs) / cpu_seconds, "fingerprint": fingerprint(results),
            **padding_report(pipe.tokenizer, inputs, case["batch_size"])}


def measure(lib: str, case: dict, quick: bool) -> dict:
    return run(lib, case, quick, TASK, HEAD, CONFIG, {"truncation": True})
