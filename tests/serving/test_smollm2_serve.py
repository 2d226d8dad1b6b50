"""`leanformers serve` with no model serves the embedded SmolLM2-135M-Instruct GGUF: a greedy chat answer is the
one generate() gives alone, also while other requests run beside it."""

from __future__ import annotations

import concurrent.futures

import openai
import pytest
import torch
from conftest import fixture_path

import leanformers

from .conftest import SMOLLM2, SMOLLM2_FILE

CHATS = [[{"role": "user", "content": "What is the capital of France?"}],
         [{"role": "system", "content": "You answer in French."}, {"role": "user", "content": "Bonjour ?"}],
         [{"role": "user", "content": "Write a haiku about the sea."}]]
MAX_TOKENS = 16


@pytest.fixture(scope="module")
def server(start_server):
    return start_server("--max-batch", 4, "--max-model-len", 256, "--batch-invariant")  # no MODEL: the default


def _ask(url, chat):
    client = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0, timeout=300)
    answer = client.chat.completions.create(model="SmolLM2-135M-Instruct.Q4_1", messages=chat,
                                            max_tokens=MAX_TOKENS, temperature=0)
    return answer.choices[0].message.content, answer.usage.completion_tokens


def test_default_model_chat_equals_generate_alone_and_together(server):
    folder = fixture_path(*SMOLLM2)
    tokenizer = leanformers.AutoTokenizer.from_pretrained(folder, gguf_file=SMOLLM2_FILE)
    model = leanformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file=SMOLLM2_FILE).eval()
    with concurrent.futures.ThreadPoolExecutor(len(CHATS)) as pool:
        together = list(pool.map(lambda chat: _ask(server.url, chat), CHATS, timeout=600))
    for chat, (text, count) in zip(CHATS, together):
        ids = tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=True, return_dict=False)
        out = model.generate(torch.tensor([ids]), max_new_tokens=MAX_TOKENS, do_sample=False,
                             batch_invariant=True)[0, len(ids):].tolist()
        out = out[:out.index(2) + 1] if 2 in out else out
        assert text == tokenizer.decode(out, skip_special_tokens=True)
        assert count == len(out)
        plain = model.generate(torch.tensor([ids]), max_new_tokens=MAX_TOKENS, do_sample=False)[0, len(ids):]
        assert plain.tolist()[:len(out)] == out  # the default kernels agree on these tokens too
