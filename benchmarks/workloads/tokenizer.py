"""Tokenizer throughput: 10,000 mixed sentences in one padded, truncated call returning PyTorch tensors."""

from __future__ import annotations

import hashlib
import random

from common import MINILM, library, repeat, summary

NAME = "tokenizer"
METRIC = ("sentences_per_s", "higher")

PIECES = [
    "The quick brown fox jumps over the lazy dog.", "Transformers changed natural language processing",
    "Café crème, naïve façade, résumé — accents everywhere", "机器学习正在改变世界", "東京は日本の首都です",
    "Emoji time 🤗🚀✨ and more 🎉", "   odd   whitespace\tand\ttabs\n", "[CLS] inline [SEP] special [MASK] tokens",
    "Numbers 3.14159, 2,718 and 1e-10", "Hyphen-ated, under_scored and CamelCased words", "¿Qué tal? Ça va!",
    "a", "Supercalifragilisticexpialidocious antidisestablishmentarianism",
]


def sentences(count: int, seed: int = 0) -> list[str]:
    """A fixed mix of short and long sentences (1 to 40 pieces), the same for both libraries."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(PIECES) for _ in range(rng.choice((1, 2, 3, 5, 8, 13, 40)))) for _ in range(count)]


def cases(quick: bool) -> list[dict]:
    return [{"sentences": 10_000, "tokenizer": "all-MiniLM-L6-v2"}]


def prepare(quick: bool) -> None:
    if not (MINILM / "tokenizer.json").exists():
        raise FileNotFoundError(f"{MINILM} is missing: run `bash scripts/fetch_fixtures.sh` first.")


def measure(lib: str, case: dict, quick: bool) -> dict:
    tokenizer = library(lib).AutoTokenizer.from_pretrained(str(MINILM))
    texts = sentences(case["sentences"])

    def call():
        return tokenizer(texts, padding=True, truncation=True, return_tensors="pt")

    batch = call()
    times = repeat(call, warmup=0 if quick else 1, repeats=3 if quick else 10)
    stats = summary(times)
    return {**stats, "sentences_per_s": case["sentences"] / stats["median_s"],
            "tokens": int(batch["attention_mask"].sum()), "padded_shape": list(batch["input_ids"].shape),
            "fingerprint": hashlib.sha256(batch["input_ids"].numpy().tobytes()).hexdigest()[:16]}
