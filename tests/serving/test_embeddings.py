"""/v1/embeddings on the real all-MiniLM-L6-v2 through the openai client: mean pooling and normalisation as
sentence-transformers does, checked against the reference transformers model; base64 encoding; pipeline routes."""

from __future__ import annotations

import base64

import httpx2 as httpx
import numpy as np
import openai
import pytest
import torch
import transformers
from conftest import fixture_path

from .conftest import MINILM, InProcessServer

TEXTS = ["A cat sits on the mat.", "Stocks fell sharply today, the worst day since March.", "Café 北京 😀"]


@pytest.fixture(scope="module")
def server():
    running = InProcessServer(fixture_path(*MINILM))
    yield running
    running.stop()


def _reference():
    folder = fixture_path(*MINILM)
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    model = transformers.AutoModel.from_pretrained(folder).eval()
    batch = tokenizer(TEXTS, padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    return torch.nn.functional.normalize(pooled, dim=1), int(batch["attention_mask"].sum())


def test_embeddings_match_sentence_transformers_pooling(server):
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="none", max_retries=0, timeout=120)
    expected, tokens = _reference()
    floats = client.embeddings.create(model="model", input=TEXTS, encoding_format="float")
    got = torch.tensor([d.embedding for d in floats.data])
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert floats.usage.prompt_tokens == tokens and [d.index for d in floats.data] == [0, 1, 2]
    raw = httpx.post(server.url + "/v1/embeddings", json={"input": TEXTS, "encoding_format": "base64"}).json()
    decoded = np.stack([np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4") for d in raw["data"]])
    assert np.array_equal(decoded, got.numpy())
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="model", input=TEXTS, dimensions=10)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="model", messages=[{"role": "user", "content": "hi"}])


def test_pipeline_route_and_its_errors(server):
    answer = httpx.post(server.url + "/v1/pipeline/feature-extraction", json={"inputs": "hello"}, timeout=60)
    assert answer.status_code == 200 and len(answer.json()["result"][0][0]) == 384
    unknown = httpx.post(server.url + "/v1/pipeline/fill-mask", json={"inputs": "a [MASK]"}, timeout=60)
    assert unknown.status_code == 404 and "feature-extraction" in unknown.json()["error"]["message"]
    missing = httpx.post(server.url + "/v1/pipeline/feature-extraction", json={"text": "hello"}, timeout=60)
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "inputs"


def test_shutting_down_answers_503(server):
    server.state.draining = True
    try:
        answer = httpx.post(server.url + "/v1/embeddings", json={"input": "hello"}, timeout=30)
        assert answer.status_code == 503 and answer.json()["error"]["code"] == "shutting_down"
        assert httpx.get(server.url + "/health", timeout=30).status_code == 503
    finally:
        server.state.draining = False
    assert httpx.post(server.url + "/v1/embeddings", json={"input": "hello"}, timeout=30).status_code == 200
