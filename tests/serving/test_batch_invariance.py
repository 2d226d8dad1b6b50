"""Batch-invariant decoding: a row's logits and greedy tokens are bitwise those it has alone, in generate() with
padding (batch_invariant=True) and in the server's scheduler where requests join and leave at different steps."""

from __future__ import annotations

import threading
import time

import pytest
import torch

import leanformers
from leanformers.generation import batch_invariant as batch_invariant_module
from leanformers.generation.batch_invariant import batch_invariant
from leanformers.serving.engine import Engine, GenerationRequest

NEW_TOKENS = 10
LENGTHS = [5, 9, 3, 17, 70, 2, 33, 12]  # 70: more than one block of queries (QUERY_BLOCK)


def _prompts(seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randint(3, 49152, (n,), generator=generator) for n in LENGTHS]


@pytest.fixture(scope="module", params=["llama", "gpt2"])
def model(request, tiny_llama_dir, tiny_gpt2_dir):
    folder = tiny_llama_dir if request.param == "llama" else tiny_gpt2_dir
    return leanformers.AutoModelForCausalLM.from_pretrained(folder).eval()


def _alone(model, prompt, **kwargs):
    out = model.generate(prompt[None], max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False,
                         return_dict_in_generate=True, output_logits=True, **kwargs)
    return out.sequences[0, len(prompt):], torch.stack([step[0] for step in out.logits])


def test_padded_batch_generate_is_bitwise_the_rows_alone(model):
    prompts = _prompts()
    width = max(LENGTHS)
    ids = torch.full((len(prompts), width), 2, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt):], mask[row, width - len(prompt):] = prompt, 1
    batched = model.generate(ids, attention_mask=mask, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS,
                             do_sample=False, return_dict_in_generate=True, output_logits=True, batch_invariant=True)
    for row, prompt in enumerate(prompts):
        tokens, logits = _alone(model, prompt, batch_invariant=True)
        assert torch.equal(batched.sequences[row, width:], tokens), row
        assert torch.equal(torch.stack([step[row] for step in batched.logits]), logits), row
        plain_tokens, plain_logits = _alone(model, prompt)
        assert torch.equal(plain_tokens, tokens), row  # same greedy tokens as the default kernels here
        # logits reach ~18 with these weights: float32 rounding (which even moves with the weights' memory
        # alignment) reaches ~1e-4 there, so the bound scales with them
        torch.testing.assert_close(plain_logits, logits, rtol=1e-4, atol=2e-5 * logits.abs().max().item())


@pytest.mark.parametrize("forms", ["this processor's", "Intel's"])  # Intel's: calls of 8 rows, on any processor
@pytest.mark.parametrize("inputs, outputs, bias", [(576, 1536, False), (1536, 576, True), (128, 49152, False)])
def test_linear_rows_do_not_depend_on_their_neighbours(monkeypatch, forms, inputs, outputs, bias):
    if forms == "Intel's":
        monkeypatch.setattr(batch_invariant_module, "ROW_MULTIPLE", 8)
        monkeypatch.setattr(batch_invariant_module, "CALL_ROWS", 8)
    torch.manual_seed(0)
    weight, bias = torch.randn(outputs, inputs), torch.randn(outputs) if bias else None
    rows = torch.randn(70, inputs)
    picked = range(0, 70, 3)
    with batch_invariant():
        alone = {i: torch.nn.functional.linear(rows[i:i + 1], weight, bias)[0] for i in picked}
        for count in (1, 2, 3, 5, 8, 13, 33, 70):
            together = torch.nn.functional.linear(rows[:count], weight, bias)
            for i in (i for i in picked if i < count):
                assert torch.equal(together[i], alone[i]), (count, i)


def _run_engine(model, prompts, joins, max_batch=4):
    """Run `prompts` through an Engine; prompt i is submitted once `joins[i]` tokens of earlier requests came out.
    -> ({index: tokens}, {index: finish reason})."""
    engine = Engine(model, max_batch=max_batch, max_queue=64, max_len=128, invariant=True)
    tokens, reasons, produced = {}, {}, [0]
    done = threading.Event()

    def emitter(i):
        def emit(kind, payload):
            if kind == "token":
                tokens.setdefault(i, []).append(payload[0])
                produced[0] += 1
            else:
                reasons[i] = payload
                if len(reasons) == len(prompts):
                    done.set()
        return emit

    try:
        for i in sorted(range(len(prompts)), key=lambda i: joins[i]):
            deadline = time.monotonic() + 60
            while produced[0] < joins[i] and time.monotonic() < deadline:
                time.sleep(0.001)
            engine.submit([GenerationRequest(prompt_ids=prompts[i].tolist(), max_tokens=NEW_TOKENS + i % 3,
                                             emit=emitter(i), temperature=0.0)])
        assert done.wait(120), f"only {len(reasons)} of {len(prompts)} requests finished"
    finally:
        engine.shutdown()
    assert engine.kv_bytes == _kv_bytes(model, max_batch, 128)  # allocated once, never grown
    return tokens, reasons


def _kv_bytes(model, slots, length):
    config = model.config
    layers = getattr(config, "num_hidden_layers", None) or config.n_layer
    heads = getattr(config, "num_key_value_heads", None) or getattr(config, "n_head", None)
    dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads \
        if hasattr(config, "num_attention_heads") else config.n_embd // config.n_head
    return 2 * layers * slots * heads * length * dim * 4


def test_scheduler_joins_and_leaves_bitwise_like_alone(model):
    prompts = _prompts(1)
    joins = [0, 0, 3, 3, 7, 12, 20, 21]  # later requests join while earlier ones decode
    tokens, reasons = _run_engine(model, prompts, joins)
    for i, prompt in enumerate(prompts):
        expected = model.generate(prompt[None], max_new_tokens=NEW_TOKENS + i % 3, min_new_tokens=NEW_TOKENS + i % 3,
                                  do_sample=False, batch_invariant=True)[0, len(prompt):]
        assert tokens[i] == expected.tolist(), i
        assert reasons[i] == "length"
