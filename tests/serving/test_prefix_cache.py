"""`Engine(prefix_cache=TOKENS)` (`leanformers serve --prefix-cache`): a prompt that begins like an earlier one
starts from its kept keys and values - alone, or beside others in one padded pass - and
gets generate()'s greedy tokens; the server's option reaches the engine and its metrics; the cache keeps whole
blocks within its capacity and drops the least recently used first, never a block before the blocks that follow
it."""

from __future__ import annotations

import threading

import httpx2 as httpx
import pytest
import torch

import leanformers
from leanformers.serving.engine import Engine, GenerationRequest
from leanformers.serving.prefixes import PREFIX_BLOCK, PrefixCache
from leanformers.serving.slots import KVSlots


@pytest.fixture(scope="module")
def llama(tiny_llama_dir):
    return leanformers.AutoModelForCausalLM.from_pretrained(tiny_llama_dir).eval()


def _run(engine, requests) -> dict:
    """Submit `requests` at once -> {index: [(token, logprob), ...]} once every one is done."""
    log, done = {i: [] for i in range(len(requests))}, threading.Semaphore(0)
    for i, request in enumerate(requests):
        request.emit = lambda kind, payload, i=i: (log[i].append((payload[0], payload[1][0])) if kind == "token"
                                                   else done.release())
    engine.submit(requests)
    for _ in requests:
        assert done.acquire(timeout=120), "the engine did not finish in time"
    return log


def test_prompts_beginning_alike_reuse_the_prefix_and_decode_like_generate(llama):
    generator = torch.Generator().manual_seed(1)
    tokens = lambda n: torch.randint(3, 1000, (n,), generator=generator).tolist()  # noqa: E731
    system = tokens(21)  # two whole blocks shared
    prompts = [system + tokens(6),                                            # alone: nothing kept yet
               system + tokens(3), system + tokens(11), system + tokens(30), tokens(9),  # one padded pass
               system + tokens(90)]                                           # longer than a chunk: alone
    requests = [GenerationRequest(prompt_ids=p, max_tokens=6, emit=None, temperature=0.0, top_logprobs=0)
                for p in prompts]
    prefills = []
    hook = llama.register_forward_pre_hook(
        lambda module, args, kwargs: prefills.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True)
    engine = Engine(llama, max_batch=4, max_queue=8, max_len=256, prefill_chunk=64, prefix_cache=128)
    try:
        log = _run(engine, requests[:1])
        log.update({i + 1: got for i, got in _run(engine, requests[1:5]).items()})
        log[5] = _run(engine, requests[5:])[0]
    finally:
        engine.shutdown()
        hook.remove()
    assert [r.reused for r in requests] == [0, 16, 16, 16, 0, 16]
    assert engine.metrics.reused_prompt_tokens == 4 * 16
    config = llama.config
    head_dim = config.hidden_size // config.num_attention_heads
    per_token = 2 * config.num_hidden_layers * config.num_key_value_heads * head_dim * 4  # keys and values, float32
    assert engine.kv_bytes == (4 * 256 + 128) * per_token  # the slots and the prefix cache's capacity
    assert (4, 30 + 21 - 16) in prefills  # the padded pass ran the rest of each prompt only
    assert (1, 21 + 90 - 16) in prefills
    for i, prompt in enumerate(prompts):
        expected = llama.generate(torch.tensor([prompt]), max_new_tokens=6, min_new_tokens=6, do_sample=False,
                                  return_dict_in_generate=True, output_logits=True)
        assert [token for token, _ in log[i]] == expected.sequences[0, len(prompt):].tolist(), i
        first = float(expected.logits[0][0].log_softmax(-1)[log[i][0][0]])  # chosen from the prefill's logits
        assert log[i][0][1] == pytest.approx(first, abs=1e-4), i


def test_the_server_option_keeps_the_system_turn_for_the_next_request(start_server, tiny_llama_dir):
    server = start_server(tiny_llama_dir, "--prefix-cache", 64, "--max-batch", 2, "--max-model-len", 128)
    model = httpx.get(server.url + "/v1/models").json()["data"][0]["id"]
    body = {"model": model, "max_tokens": 5, "temperature": 0,
            "messages": [{"role": "system", "content": "You answer in one short sentence, politely."},
                         {"role": "user", "content": "Name a colour."}]}
    answers = [httpx.post(server.url + "/v1/chat/completions", json=body, timeout=60).json() for _ in range(2)]
    assert answers[0]["choices"][0]["message"] == answers[1]["choices"][0]["message"]
    metrics = httpx.get(server.url + "/metrics").text
    reused = next(line for line in metrics.splitlines() if line.startswith("leanformers_reused_prompt_tokens_total"))
    prompt_tokens = answers[1]["usage"]["prompt_tokens"]
    assert int(reused.split()[-1]) == (prompt_tokens - 2) // 8 * 8  # the second request's whole blocks


def _slots(rows: int = 2, length: int = 64) -> KVSlots:
    slots = KVSlots(rows, length)
    slots.keys = [torch.randn(rows, 2, length, 4) for _ in range(3)]
    slots.values = [torch.randn(rows, 2, length, 4) for _ in range(3)]
    return slots


def test_the_cache_keeps_whole_blocks_and_leaves_two_tokens_to_prefill():
    slots, cache = _slots(), PrefixCache(capacity=8 * PREFIX_BLOCK)
    prompt = list(range(100, 126))  # 3 whole blocks and 2 tokens
    assert cache.lookup(prompt) == []
    cache.insert(prompt, slots, 1)
    assert len(cache.blocks) == 3 and cache.allocated_bytes == 3 * 3 * 2 * 2 * PREFIX_BLOCK * 4 * 4
    blocks = cache.lookup(prompt)
    assert len(blocks) == 3
    for layer, (keys, values) in enumerate(zip(slots.keys, slots.values)):
        assert torch.equal(torch.cat([block[layer, 0] for block in blocks], 1), keys[1, :, :24])
        assert torch.equal(torch.cat([block[layer, 1] for block in blocks], 1), values[1, :, :24])
    assert len(cache.lookup(prompt[:25])) == 2  # at least two tokens are left to prefill
    assert len(cache.lookup(prompt[:8] + [7] * 20)) == 1  # a block is found only after the same blocks
    assert cache.lookup([7] + prompt) == []


def test_the_least_recently_used_blocks_go_first_and_a_block_never_before_those_after_it():
    slots, cache = _slots(), PrefixCache(capacity=3 * PREFIX_BLOCK)
    first = list(range(100, 126))
    second = first[:8] + list(range(500, 518))  # shares the first block
    cache.insert(first, slots, 0)
    cache.insert(second, slots, 1)  # two new blocks: the first prompt's last two go, the shared one stays
    assert len(cache.lookup(first)) == 1 and len(cache.lookup(second)) == 3
    small = PrefixCache(capacity=PREFIX_BLOCK)  # room for one block: a prompt keeps its first
    small.insert(first, slots, 0)
    assert len(small.lookup(first)) == 1 and len(small.blocks) == 1


def test_a_prefix_cache_and_batch_invariance_exclude_each_other(llama):
    with pytest.raises(ValueError, match="prefix cache and batch invariance"):
        Engine(llama, invariant=True, prefix_cache=256)
