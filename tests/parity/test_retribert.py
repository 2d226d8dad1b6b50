"""RetriBERT against transformers 4.34.1 (through its subprocess): question / answer embeddings (plain and in
checkpointed chunks), the retrieval loss, shared and separate encoders, its tokenizer, and saving both ways."""

from __future__ import annotations

import pytest
import torch

import leanformers
from leanformers import AutoModel, AutoTokenizer

from .legacy import REF434_PYTHON, run_legacy

CONFIG = dict(vocab_size=99, hidden_size=30, num_hidden_layers=2, num_attention_heads=3, intermediate_size=37,
              max_position_embeddings=64, projection_dim=11)
WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "dog", "##s", "ran", ",",
         ".", "a", "what", "is", "?"]
TEXTS = ["The cat sat on the mat.", "What is a dog?", "dogs ran, cats sat", "zebra"]

_REFERENCE = """
transformers.logging.set_verbosity_error()
result = {}
for name, spec in payload["models"].items():
    torch.manual_seed(0)
    model = transformers.RetriBertModel(transformers.RetriBertConfig(**spec["config"])).eval()
    model.save_pretrained(spec["folder"])
    q, qm, d, dm = (payload[k] for k in ("q", "q_mask", "d", "d_mask"))
    with torch.no_grad():
        out = {"questions": model.embed_questions(q, qm), "answers": model.embed_answers(d, dm),
               "loss": model(q, qm, d, dm), "loss_chunks": model(q, qm, d, dm, checkpoint_batch_size=2),
               "answers_chunks": model.embed_answers(d, dm, checkpoint_batch_size=2)}
        ours, info = transformers.RetriBertModel.from_pretrained(spec["ours"], output_loading_info=True)
        out["ours_info"] = sorted(info["missing_keys"] + info["unexpected_keys"])
        out["ours_loss"] = ours.eval()(q, qm, d, dm)
        out["ours_questions"] = ours.embed_questions(q, qm)
    result[name] = out
tok = transformers.RetriBertTokenizerFast.from_pretrained(payload["tokenizer"])
result["tokenizer"] = [dict(tok(text)) for text in payload["texts"]] + [dict(tok(*payload["texts"][:2]))]
"""


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    root = tmp_path_factory.mktemp("retribert")
    g = torch.Generator().manual_seed(0)
    payload = {"q": torch.randint(5, 99, (5, 7), generator=g), "q_mask": torch.ones(5, 7, dtype=torch.long),
               "d": torch.randint(5, 99, (5, 9), generator=g), "d_mask": torch.ones(5, 9, dtype=torch.long),
               "models": {}, "texts": TEXTS, "tokenizer": str(root / "tokenizer")}
    payload["q_mask"][1, 5:] = 0
    payload["d_mask"][3, 4:] = 0
    for share in (True, False):
        name = "shared" if share else "separate"
        config = dict(CONFIG, share_encoders=share)
        torch.manual_seed(1)
        leanformers.RetriBertModel(leanformers.RetriBertConfig(**config)).save_pretrained(root / f"{name}-ours")
        payload["models"][name] = {"config": config, "folder": str(root / name), "ours": str(root / f"{name}-ours")}
    (root / "tokenizer").mkdir()
    (root / "tokenizer" / "vocab.txt").write_text("\n".join(WORDS) + "\n", encoding="utf-8")
    (root / "tokenizer" / "tokenizer_config.json").write_text('{"tokenizer_class": "RetriBertTokenizer", '
                                                               '"do_lower_case": true}')
    return payload, run_legacy(_REFERENCE, payload, python=REF434_PYTHON)


@pytest.mark.parametrize("name", ["shared", "separate"])
def test_embeddings_and_loss_match_reference(cases, name):
    payload, reference = cases
    expected = reference[name]
    model = AutoModel.from_pretrained(payload["models"][name]["folder"])
    assert type(model) is leanformers.RetriBertModel and (model.bert_doc is None) == (name == "shared")
    q, qm, d, dm = (payload[k] for k in ("q", "q_mask", "d", "d_mask"))
    with torch.no_grad():
        torch.testing.assert_close(model.embed_questions(q, qm), expected["questions"], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(model.embed_answers(d, dm), expected["answers"], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(model.embed_answers(d, dm, checkpoint_batch_size=2), expected["answers_chunks"],
                                   atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(model(q, qm, d, dm), expected["loss"], atol=1e-5, rtol=1e-4)
    # the checkpointed chunks give the loss and the gradients of the plain run
    model.train()
    model.dropout.p = 0.0
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    losses, grads = [], []
    for size in (-1, 2):
        model.zero_grad()
        loss = model(q, qm, d, dm, checkpoint_batch_size=size)
        loss.backward()
        losses.append(loss.detach())
        grads.append(model.project_query.weight.grad.clone())
    torch.testing.assert_close(losses[1], expected["loss_chunks"], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(grads[1], grads[0], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", ["shared", "separate"])
def test_saved_by_us_loads_in_reference(cases, name):
    payload, reference = cases
    expected = reference[name]
    assert expected["ours_info"] == []
    ours = leanformers.RetriBertModel.from_pretrained(payload["models"][name]["ours"])
    q, qm, d, dm = (payload[k] for k in ("q", "q_mask", "d", "d_mask"))
    with torch.no_grad():
        torch.testing.assert_close(ours(q, qm, d, dm), expected["ours_loss"], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(ours.embed_questions(q, qm), expected["ours_questions"], atol=1e-5, rtol=1e-4)


def test_tokenizer_matches_reference(cases):
    payload, reference = cases
    tokenizer = AutoTokenizer.from_pretrained(payload["tokenizer"])
    assert type(tokenizer).__name__ == "RetriBertTokenizer"
    ours = [dict(tokenizer(text)) for text in TEXTS] + [dict(tokenizer(*TEXTS[:2]))]
    assert ours == reference["tokenizer"] and "token_type_ids" not in ours[0]
