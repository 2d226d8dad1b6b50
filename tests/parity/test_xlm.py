"""XLM against transformers 5: every head on tiny models (3 heads of width 10, one and three languages, learned and
sinusoidal positions, bidirectional and causal), masks given as attention_mask, as `lengths` or read off the
padding, the key/value cache, the adaptive softmax, generate() and saving in both directions."""

from __future__ import annotations

import pytest
import torch
import transformers
from safetensors import safe_open

import leanformers
from leanformers.cache import DynamicCache, EncoderDecoderCache

from .harness import assert_outputs_close

BASE = dict(vocab_size=61, emb_dim=30, n_layers=2, n_heads=3, max_position_embeddings=40, start_n_top=3, end_n_top=2,
            dropout=0.0, attention_dropout=0.0)
VARIANTS = {"plain": {}, "langs-sinusoidal-relu": dict(n_langs=3, sinusoidal_embeddings=True, gelu_activation=False),
            "causal-langs": dict(causal=True, n_langs=3)}
HEADS = {"XLMModel": "AutoModel", "XLMWithLMHeadModel": "AutoModelForMaskedLM",
         "XLMForSequenceClassification": "AutoModelForSequenceClassification",
         "XLMForTokenClassification": "AutoModelForTokenClassification",
         "XLMForMultipleChoice": "AutoModelForMultipleChoice",
         "XLMForQuestionAnsweringSimple": "AutoModelForQuestionAnswering", "XLMForQuestionAnswering": None}
FLAGS = dict(output_attentions=True, output_hidden_states=True)
BATCH, SEQ, PAD = 2, 9, 2


def build(name: str, folder, seed: int = 0, **config):
    """A tiny random reference model saved to `folder` (eval mode)."""
    torch.manual_seed(seed)
    labels = 3 if name.endswith(("SequenceClassification", "TokenClassification")) else 2
    model = getattr(transformers, name)(transformers.XLMConfig(**{**BASE, "num_labels": labels, **config})).eval()
    model.save_pretrained(folder)
    return model


def inputs_for(config, choices: int = 0, seed: int = 0) -> dict:
    """Token ids whose last row ends in 3 pad tokens, its attention mask, and languages when there are several."""
    g = torch.Generator().manual_seed(seed)
    rows = BATCH * max(choices, 1)
    ids = torch.randint(4, config.vocab_size, (rows, SEQ), generator=g)
    ids[-1, -3:] = PAD
    out = {"input_ids": ids, "attention_mask": (ids != PAD).long()}
    if config.n_langs > 1:
        out["langs"] = torch.randint(0, config.n_langs, (rows, SEQ), generator=g)
    return {k: v.view(BATCH, choices, SEQ) for k, v in out.items()} if choices else out


def labels_for(name: str, config) -> dict:
    g = torch.Generator().manual_seed(1)
    if name == "XLMWithLMHeadModel":
        labels = torch.randint(0, config.vocab_size, (BATCH, SEQ), generator=g)
        labels[:, 0] = -100
        return {"labels": labels}
    if name.endswith("SequenceClassification"):
        return {"labels": torch.tensor([2, 0])}
    if name.endswith("TokenClassification"):
        return {"labels": torch.randint(0, 3, (BATCH, SEQ), generator=g)}
    if name.endswith("MultipleChoice"):
        return {"labels": torch.tensor([1, 0])}
    if name.endswith("QuestionAnsweringSimple"):
        return {"start_positions": torch.tensor([1, 12]), "end_positions": torch.tensor([3, 4])}
    if name.endswith("QuestionAnswering"):
        return {"start_positions": torch.tensor([1, 5]), "end_positions": torch.tensor([3, 5]),
                "cls_index": torch.tensor([0, 2]), "is_impossible": torch.tensor([0.0, 1.0])}
    return {}


def _indexed(values: tuple) -> dict:
    return {str(i): v for i, v in enumerate(values)}


def _same(ours, reference, **kwargs):
    with torch.no_grad():
        expected = reference(**kwargs)
        got = ours(**kwargs)
    assert type(got).__name__ == type(expected).__name__
    assert_outputs_close(got, expected)
    return got


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_head_matches_reference(variant, tmp_path):
    for name, auto_name in HEADS.items():
        folder = tmp_path / name
        reference = build(name, folder, **VARIANTS[variant])
        ours = getattr(leanformers, name).from_pretrained(folder).eval()
        if auto_name:
            assert type(getattr(leanformers, auto_name).from_pretrained(folder)) is type(ours)
        choices = 2 if name.endswith("MultipleChoice") else 0
        inputs = inputs_for(reference.config, choices)
        labels = labels_for(name, reference.config)
        got = _same(ours, reference, **inputs, **labels, **FLAGS)
        assert ("loss" in got) == bool(labels) and len(got.hidden_states) == 3 and len(got.attentions) == 2
        with torch.no_grad():
            as_tuple = ours(**inputs, **labels, **FLAGS, return_dict=False)
            assert_outputs_close(_indexed(as_tuple), _indexed(reference(**inputs, **labels, **FLAGS).to_tuple()))
        _same(ours, reference, **inputs)  # no weights wanted: the fused attention kernel
        if choices:
            continue
        ids = inputs["input_ids"]
        _same(ours, reference, input_ids=ids, lengths=torch.tensor([SEQ, SEQ - 3]), **FLAGS)
        _same(ours, reference, input_ids=ids, token_type_ids=torch.ones_like(ids),
              position_ids=torch.arange(SEQ).flip(0).expand(BATCH, -1))
        if name == "XLMModel":
            embeds = reference.embeddings(ids)
            _same(ours, reference, inputs_embeds=embeds, attention_mask=inputs["attention_mask"], **FLAGS)
        if name == "XLMForQuestionAnswering":
            p_mask = torch.zeros(BATCH, SEQ)
            p_mask[:, :2] = 1
            _same(ours, reference, **inputs, p_mask=p_mask, cls_index=torch.tensor([0, 3]), **FLAGS)
            _same(ours, reference, **inputs, **{k: v for k, v in labels.items() if k.endswith("positions")})


def test_cache_continues_a_causal_text(tmp_path):
    reference = build("XLMWithLMHeadModel", tmp_path, **VARIANTS["causal-langs"])
    ours = leanformers.XLMWithLMHeadModel.from_pretrained(tmp_path)
    inputs = inputs_for(reference.config)
    inputs.pop("attention_mask")
    head = {k: v[:, :5] for k, v in inputs.items()}
    with torch.no_grad():
        full = ours(**inputs).logits
        for cache in (DynamicCache(), EncoderDecoderCache(DynamicCache(), DynamicCache())):
            first = ours(**head, cache=cache).logits
            rest = ours(**inputs, cache=cache).logits  # the whole text again: the cached part is not recomputed
            assert cache.get_seq_length() == SEQ and rest.shape[1] == SEQ - 5
            torch.testing.assert_close(torch.cat([first, rest], dim=1), full, atol=1e-5, rtol=1e-4)
        theirs = transformers.EncoderDecoderCache(transformers.DynamicCache(), transformers.DynamicCache())
        reference(**head, cache=theirs)
        torch.testing.assert_close(rest, reference(**inputs, cache=theirs).logits, atol=1e-5, rtol=1e-4)


def test_adaptive_softmax_against_corrected_reference(tmp_path):
    """transformers' adaptive softmax fails on any (batch, seq) input; it is compared on the flattened positions
    it meant (log-probabilities per position, the loss over the positions not labelled -100)."""
    reference = build("XLMWithLMHeadModel", tmp_path, asm=True, asm_cutoffs=[7, 40], asm_div_value=3.0)
    ours = leanformers.AutoModelForMaskedLM.from_pretrained(tmp_path)
    inputs, labels = inputs_for(reference.config), labels_for("XLMWithLMHeadModel", reference.config)["labels"]
    with pytest.raises(RuntimeError):
        reference(**inputs)
    with torch.no_grad():
        hidden = reference.transformer(**inputs).last_hidden_state.reshape(BATCH * SEQ, -1)
        proj = reference.pred_layer.proj
        kept = labels.view(-1) != -100
        expected_scores = proj.log_prob(hidden).view(BATCH, SEQ, -1)
        expected_loss = proj(hidden[kept], labels.view(-1)[kept]).loss
        got = ours(**inputs, labels=labels)
    torch.testing.assert_close(got.logits, expected_scores, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(got.loss, expected_loss, atol=1e-5, rtol=1e-4)
    # transformers 5 cannot load an adaptive-softmax checkpoint, not even its own: we write the same tensors
    with pytest.raises(AttributeError):
        transformers.XLMWithLMHeadModel.from_pretrained(tmp_path)
    ours.save_pretrained(tmp_path / "ours")
    with safe_open(tmp_path / "ours" / "model.safetensors", "pt") as mine, \
            safe_open(tmp_path / "model.safetensors", "pt") as theirs:
        assert sorted(mine.keys()) == sorted(theirs.keys())
    again = leanformers.XLMWithLMHeadModel.from_pretrained(tmp_path / "ours")
    with torch.no_grad():
        assert_outputs_close(again(**inputs, labels=labels), got, atol=0, rtol=0)


@pytest.mark.parametrize("variant", ["plain", "causal-langs"])
def test_generate_greedy_and_beam(variant, tmp_path):
    reference = build("XLMWithLMHeadModel", tmp_path, lang_id=1, **VARIANTS[variant])
    ours = leanformers.AutoModelForCausalLM.from_pretrained(tmp_path)
    prompt = torch.randint(4, 61, (2, 4), generator=torch.Generator().manual_seed(3))
    for settings in (dict(do_sample=False), dict(num_beams=3, do_sample=False, num_return_sequences=2)):
        settings.update(max_new_tokens=6, pad_token_id=PAD)
        with torch.no_grad():
            expected = reference.generate(prompt, **settings)
            assert torch.equal(ours.generate(prompt, **settings), expected), settings


@pytest.mark.parametrize("name", ["XLMWithLMHeadModel", "XLMForQuestionAnswering", "XLMForMultipleChoice"])
def test_saved_by_us_loads_in_reference(name, tmp_path):
    build(name, tmp_path / "ref", **VARIANTS["langs-sinusoidal-relu"])
    ours = getattr(leanformers, name).from_pretrained(tmp_path / "ref")
    with torch.no_grad():
        for param in ours.parameters():
            param.add_(0.01 * torch.randn_like(param))
    ours.save_pretrained(tmp_path / "ours")
    theirs, info = getattr(transformers, name).from_pretrained(tmp_path / "ours", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    inputs = inputs_for(ours.config, 2 if name.endswith("MultipleChoice") else 0)
    _same(ours, theirs.eval(), **inputs, **FLAGS)
    with torch.no_grad():
        assert_outputs_close(getattr(leanformers, name).from_pretrained(tmp_path / "ours")(**inputs), ours(**inputs),
                             atol=0, rtol=0)


def test_config_and_errors(tmp_path):
    build("XLMModel", tmp_path)
    config = leanformers.AutoConfig.from_pretrained(tmp_path)
    assert type(config) is leanformers.XLMConfig and config.hidden_size == 30 and config.n_words == 61
    assert config.pad_index == config.pad_token_id == 2
    with pytest.raises(leanformers.errors.ConfigError, match="asm_cutoffs"):
        leanformers.XLMWithLMHeadModel(leanformers.XLMConfig(**BASE, asm=True))
    with pytest.raises(TypeError, match="DynamicCache"):
        leanformers.XLMModel(config)(torch.ones(2, 4, dtype=torch.long), cache={})
    with pytest.raises(ValueError, match="lengths"):
        leanformers.XLMModel(config)(torch.ones(2, 4, dtype=torch.long), lengths=torch.tensor([5, 2]))


PIPELINE_TEXTS = ["the cat sat on the mat .", "my name is sylvain and i work at hugging face in brooklyn .",
                  "paris is the capital of france .", "where do i work ? hello world !"]


def tokenizer_files(folder, tokenizer_class: str = "XLMTokenizer") -> int:
    """vocab.json + merges.txt of a small lower-cased BPE with `</w>` word ends, trained on PIPELINE_TEXTS, and a
    tokenizer_config.json naming `tokenizer_class`; -> the vocabulary size."""
    import json

    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    specials = ["<s>", "</s>", "<pad>", "<unk>"] + [f"<special{index}>" for index in range(10)]
    engine = Tokenizer(models.BPE(unk_token="<unk>", end_of_word_suffix="</w>"))
    engine.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    engine.train_from_iterator(PIPELINE_TEXTS * 5, trainers.BpeTrainer(
        vocab_size=150, special_tokens=specials, end_of_word_suffix="</w>", show_progress=False))
    model = json.loads(engine.to_str())["model"]
    (folder / "vocab.json").write_text(json.dumps(model["vocab"]), encoding="utf-8")
    (folder / "merges.txt").write_text("".join(f"{a} {b}\n" for a, b in model["merges"]), encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": tokenizer_class}), encoding="utf-8")
    return len(model["vocab"])


@pytest.mark.parametrize("task, name, inputs", [
    ("fill-mask", "XLMWithLMHeadModel", ["the cat <special1> on the mat .", "paris is the <special1> of france ."]),
    ("text-classification", "XLMForSequenceClassification", PIPELINE_TEXTS),
    ("token-classification", "XLMForTokenClassification", PIPELINE_TEXTS[:2])])
def test_pipelines_match_reference(task, name, inputs, tmp_path):
    from tests.pipelines.compare import assert_same

    vocab_size = tokenizer_files(tmp_path)
    build(name, tmp_path, vocab_size=vocab_size)
    transformers.logging.set_verbosity_error()
    expected = transformers.pipeline(task, model=str(tmp_path), device="cpu")(inputs)
    assert_same(leanformers.pipeline(task, model=str(tmp_path), device="cpu")(inputs), expected)


def test_question_answering_pipeline_refuses_a_tokenizer_without_offsets(tmp_path):
    """The answer is cut from the context by character offsets, which the Moses-based tokenizer cannot give
    (transformers 4.55's pipeline fails inside with a KeyError); the error names the tokenizer and the way out."""
    vocab_size = tokenizer_files(tmp_path)
    build("XLMForQuestionAnsweringSimple", tmp_path, vocab_size=vocab_size)
    pipe = leanformers.pipeline("question-answering", model=str(tmp_path), device="cpu")
    with pytest.raises(ValueError, match="character offsets; XLMTokenizer does not"):
        pipe(question="where is the cat ?", context="the cat sat on the mat .")
