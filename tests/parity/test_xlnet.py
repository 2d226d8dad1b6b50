"""XLNet against the reference: every head, both attention streams, memory over segments, the attention options
(bi_data, uni, same_length, clamp_len, reuse_len), generation and saving both ways."""

import pytest
import torch

import leanformers
from leanformers import (AutoModel, AutoModelForCausalLM, AutoModelForMultipleChoice, AutoModelForQuestionAnswering,
                         AutoModelForSequenceClassification, AutoModelForTokenClassification)
from leanformers.errors import ConfigError

from tests.generation.legacy_ref import legacy_generate

from .decoder_parity import check_saved_by_us, left_padded, reference_model
from .harness import _close

# odd sizes: 3 heads of 10, an odd feed-forward width
CONFIG = dict(vocab_size=99, d_model=30, n_layer=2, n_head=3, d_inner=37, mem_len=6, pad_token_id=0, bos_token_id=1,
              eos_token_id=2, initializer_range=0.3, start_n_top=3, end_n_top=2)
HEADS = ["XLNetModel", "XLNetLMHeadModel", "XLNetForSequenceClassification", "XLNetForTokenClassification",
         "XLNetForMultipleChoice", "XLNetForQuestionAnsweringSimple", "XLNetForQuestionAnswering"]
FLAGS = dict(output_hidden_states=True, output_attentions=True)


def assert_same(ours, theirs, atol=1e-5):
    expected = {k: v for k, v in theirs.items() if v is not None}
    assert sorted(ours.keys()) == sorted(expected), (sorted(ours.keys()), sorted(expected))
    for key, value in expected.items():
        if key.endswith("_index"):
            assert torch.equal(ours[key], value), key
        else:
            _close(ours[key], value, atol, 1e-4, key)


def padded_inputs(batch=2, seq=7):
    """A left-padded batch with two segments."""
    inputs = left_padded(batch=batch, seq=seq, pad=2)
    inputs["token_type_ids"] = (torch.arange(seq) >= seq // 2).long().expand(batch, -1).clone()
    return inputs


def head_case(name):
    """(inputs, labels) of one head."""
    g = torch.Generator().manual_seed(1)
    if name == "XLNetForMultipleChoice":
        flat = padded_inputs(batch=4)
        return {k: v.view(2, 2, -1) for k, v in flat.items()}, {"labels": torch.tensor([1, 0])}
    inputs = padded_inputs()
    labels = {"XLNetModel": {}, "XLNetLMHeadModel": {"labels": torch.randint(0, 99, (2, 7), generator=g)},
              "XLNetForSequenceClassification": {"labels": torch.tensor([1, 0])},
              "XLNetForTokenClassification": {"labels": torch.randint(0, 2, (2, 7), generator=g)},
              "XLNetForQuestionAnsweringSimple": {"start_positions": torch.tensor([2, 9]),
                                                  "end_positions": torch.tensor([4, 5])},
              "XLNetForQuestionAnswering": {"start_positions": torch.tensor([2, 3]),
                                            "end_positions": torch.tensor([4, 5]), "cls_index": torch.tensor([6, 6]),
                                            "is_impossible": torch.tensor([0.0, 1.0])}}[name]
    if name == "XLNetForQuestionAnswering":
        inputs["p_mask"] = torch.zeros(2, 7)
        inputs["p_mask"][:, :2] = 1.0
    return inputs, labels


@pytest.mark.parametrize("name", HEADS)
def test_head_matches_reference(name, tmp_path):
    reference = reference_model(name, "XLNetConfig", tmp_path, **CONFIG)
    ours = getattr(leanformers, name).from_pretrained(tmp_path)
    assert type(ours) is getattr(leanformers, name)
    inputs, labels = head_case(name)
    with torch.no_grad():
        for extra in ({}, labels):  # the beams (QA) or outputs without loss, then with the labels
            assert_same(ours(**inputs, **extra, **FLAGS), reference(**inputs, **extra, **FLAGS))
        expected = reference(**inputs, **labels, **FLAGS, return_dict=False)
        got = ours(**inputs, **labels, **FLAGS, return_dict=False)
        assert isinstance(got, tuple) and len(got) == len(expected)
        _close(got, expected, 1e-5, 1e-4, "tuple")


VARIANTS = {"bi": {}, "uni": dict(attn_type="uni"), "uni_same_length": dict(attn_type="uni", same_length=True),
            "bi_data": dict(bi_data=True), "clamp_len": dict(clamp_len=2), "reuse_len": dict(reuse_len=4, mem_len=0)}


def stream_inputs():
    """Permutation mask and three predictions (target_mapping) over two segments."""
    g = torch.Generator().manual_seed(3)
    target_mapping = torch.zeros(2, 3, 7)
    target_mapping[:, 0, 6] = target_mapping[:, 1, 4] = target_mapping[:, 2, 1] = 1.0
    return {"input_ids": torch.randint(3, 99, (2, 7), generator=g),
            "perm_mask": (torch.rand(2, 7, 7, generator=g) > 0.6).float(), "target_mapping": target_mapping,
            "token_type_ids": padded_inputs()["token_type_ids"], "labels": torch.randint(0, 99, (2, 3), generator=g)}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_streams_memory_and_attention_options(variant, tmp_path):
    """Both streams (hidden states, attentions), then a second segment over the memory of the first."""
    reference = reference_model("XLNetLMHeadModel", "XLNetConfig", tmp_path, **{**CONFIG, **VARIANTS[variant]})
    ours = leanformers.XLNetLMHeadModel.from_pretrained(tmp_path)
    uni = VARIANTS[variant].get("attn_type") == "uni"
    inputs = stream_inputs()
    with torch.no_grad():
        if uni:  # the reference's causal mask cannot take a batched perm_mask: compare row by row
            for row in range(2):
                one = {k: v[row:row + 1] for k, v in inputs.items()}
                assert_same(ours(**one, **FLAGS), reference(**one, **FLAGS))
            inputs.pop("perm_mask")
        first = reference(**inputs, **FLAGS)
        assert_same(ours(**inputs, **FLAGS), first)
        assert len(first.hidden_states) == 2 * (CONFIG["n_layer"] + 1)  # content and query stream of each layer
        second = dict(input_ids=padded_inputs()["input_ids"][:, :5], token_type_ids=torch.ones(2, 5).long(),
                      mems=first.mems)
        assert_same(ours(**second, **FLAGS), reference(**second, **FLAGS))


def test_padding_masks_inputs_embeds_and_training_memory(tmp_path):
    reference = reference_model("XLNetModel", "XLNetConfig", tmp_path, **CONFIG)
    ours = AutoModel.from_pretrained(tmp_path)
    assert type(ours) is leanformers.XLNetModel
    inputs = padded_inputs()
    mask = inputs.pop("attention_mask")
    embeds = reference.word_embedding(inputs["input_ids"]).detach()
    with torch.no_grad():
        expected = reference(**inputs, attention_mask=mask)
        assert_same(ours(**inputs, input_mask=1 - mask), reference(**inputs, input_mask=1 - mask))
        _close(ours(inputs_embeds=embeds, attention_mask=mask, token_type_ids=inputs["token_type_ids"])[0],
               expected[0], 1e-5, 1e-4, "inputs_embeds")
        assert ours(**inputs, use_mems=False).mems is None
    ours.train()
    assert ours(**inputs).mems is None  # use_mems_train is False
    lm = leanformers.XLNetLMHeadModel(leanformers.XLNetConfig(**CONFIG)).train()
    stream = stream_inputs()
    lm(**stream).loss.backward()  # both streams: every weight, the query stream's mask embedding too
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in lm.parameters())
    with pytest.raises(ValueError, match="input_mask"):
        ours(**inputs, attention_mask=mask, input_mask=1 - mask)
    with pytest.raises(ConfigError, match="attn_type"):
        leanformers.XLNetConfig(attn_type="both")


@pytest.mark.parametrize("mem_len", [None, 4])
def test_generate_greedy_and_beam(mem_len, tmp_path):
    reference = reference_model("XLNetLMHeadModel", "XLNetConfig", tmp_path, **{**CONFIG, "mem_len": mem_len,
                                                                                 "initializer_range": 0.5})
    ours = AutoModelForCausalLM.from_pretrained(tmp_path)
    prompt = torch.randint(3, 99, (2, 6), generator=torch.Generator().manual_seed(1))
    padded = left_padded(seq=6, pad=2)  # the padding mask is not used in decoding, by either library
    for inputs, settings in ((prompt, dict(max_new_tokens=6)), (padded, dict(max_new_tokens=4)),
                             (prompt, dict(max_new_tokens=5, num_beams=3, num_return_sequences=2))):
        inputs = inputs if isinstance(inputs, dict) else {"input_ids": inputs}
        expected = reference.generate(**inputs, do_sample=False, **settings)
        got = ours.generate(**inputs, do_sample=False, **settings)
        assert got.tolist() == expected.tolist(), settings
    assert len(set(map(tuple, expected[:, 6:].tolist()))) > 1  # the sequences differ, so the test can fail
    # no max_position_embeddings (-1): 20 new tokens by default (the reference stops at max_length=-1)
    assert ours.config.max_position_embeddings == reference.config.max_position_embeddings == -1
    with pytest.warns(UserWarning, match="max_length"):
        assert ours.generate(prompt).tolist() == reference.generate(prompt, max_new_tokens=20).tolist()


def test_diverse_and_constrained_beams_match_transformers_4(tmp_path):
    """Beam strategies transformers 5 dropped, against 4.55.4; contrastive search (which fails there) is refused."""
    reference_model("XLNetLMHeadModel", "XLNetConfig", tmp_path, **{**CONFIG, "initializer_range": 0.5})
    ours = leanformers.XLNetLMHeadModel.from_pretrained(tmp_path)
    prompt = torch.randint(3, 99, (2, 6), generator=torch.Generator().manual_seed(1))
    jobs = [dict(max_new_tokens=5, num_beams=4, num_beam_groups=2, diversity_penalty=1.0, num_return_sequences=2),
            dict(max_new_tokens=5, num_beams=3, force_words_ids=[[17]])]
    expected = legacy_generate([{"class_name": "XLNetLMHeadModel", "folder": tmp_path, "kwargs": kwargs,
                                 "inputs": {"input_ids": prompt.tolist()}} for kwargs in jobs])
    for kwargs, theirs in zip(jobs, expected):
        assert ours.generate(prompt, **kwargs).tolist() == theirs["sequences"], kwargs
    with pytest.raises(ConfigError, match="Contrastive search"):
        ours.generate(prompt, max_new_tokens=3, penalty_alpha=0.6, top_k=4)


def test_saved_by_us_and_auto_classes(tmp_path):
    inputs, _ = head_case("XLNetForQuestionAnswering")
    ours, _ = check_saved_by_us(leanformers.XLNetForQuestionAnswering,
                                _saved(tmp_path / "qa", "XLNetForQuestionAnswering"), tmp_path / "qa-ours",
                                "XLNetForQuestionAnswering", inputs)
    lm, _ = check_saved_by_us(leanformers.XLNetLMHeadModel, _saved(tmp_path / "lm", "XLNetLMHeadModel"),
                              tmp_path / "lm-ours", "XLNetLMHeadModel", padded_inputs())
    assert lm.lm_loss.weight is lm.transformer.word_embedding.weight
    config = leanformers.XLNetConfig(**CONFIG)
    for auto, name in ((AutoModelForCausalLM, "XLNetLMHeadModel"),
                       (AutoModelForSequenceClassification, "XLNetForSequenceClassification"),
                       (AutoModelForTokenClassification, "XLNetForTokenClassification"),
                       (AutoModelForMultipleChoice, "XLNetForMultipleChoice"),
                       (AutoModelForQuestionAnswering, "XLNetForQuestionAnsweringSimple")):
        assert type(auto.from_config(config)).__name__ == name


def _saved(folder, name):
    reference_model(name, "XLNetConfig", folder, **CONFIG)
    return folder
