"""BertGeneration parity with the reference: the encoder, the decoder (causal, cross-attending, with labels),
generate() token for token, the Auto classes, and save/load both ways."""

import pytest
import torch

import leanformers
from leanformers.models import bert_generation

from .decoder_parity import check_head, check_saved_by_us, left_padded, reference_model
from .harness import assert_outputs_close
from .seq2seq_parity import check_generate

# odd widths: 30 wide over 3 heads (head size 10)
TINY = dict(vocab_size=99, hidden_size=30, num_hidden_layers=2, num_attention_heads=3, intermediate_size=37,
            max_position_embeddings=64)
CASES = {  # name -> (class, config overrides)
    "encoder": ("BertGenerationEncoder", {}),
    "decoder": ("BertGenerationDecoder", {"is_decoder": True}),
    "cross": ("BertGenerationDecoder", {"is_decoder": True, "add_cross_attention": True}),
}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    cache = {}

    def get(case):
        if case not in cache:
            name, extra = CASES[case]
            folder = tmp_path_factory.mktemp(case)
            cache[case] = folder, reference_model(name, "BertGenerationConfig", folder, **TINY, **extra)
        return cache[case]
    return get


def padded_inputs(case: str) -> dict:
    g = torch.Generator().manual_seed(3)
    inputs = {"input_ids": torch.randint(3, 99, (2, 7), generator=g), "attention_mask": torch.ones(2, 7, dtype=int)}
    inputs["attention_mask"][1, -2:] = 0
    if case != "encoder":
        inputs["use_cache"] = False  # the reference would return a cache; ours keeps none
    if case == "cross":
        inputs["encoder_hidden_states"] = torch.randn(2, 5, 30, generator=g)
        inputs["encoder_attention_mask"] = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    return inputs


@pytest.mark.parametrize("case", CASES)
def test_forward_matches_reference(saved, case):
    folder, reference = saved(case)
    name = CASES[case][0]
    labels = {} if case == "encoder" else {"labels": torch.randint(0, 99, (2, 7), generator=torch.Generator())}
    ours = check_head(getattr(bert_generation, name), folder, reference, padded_inputs(case), labels)
    assert getattr(leanformers, name) is type(ours)
    auto = leanformers.AutoModelForCausalLM if case != "encoder" else leanformers.AutoModel
    assert type(auto.from_pretrained(folder)) is type(ours)


@torch.no_grad()
def test_inputs_embeds_and_positions(saved):
    folder, reference = saved("decoder")
    ours = bert_generation.BertGenerationDecoder.from_pretrained(folder)
    inputs = padded_inputs("decoder")
    embeds = reference.get_input_embeddings()(inputs["input_ids"])
    positions = torch.tensor([[3, 1, 4, 1, 5, 9, 2]])
    for kwargs in ({"inputs_embeds": embeds, "attention_mask": inputs["attention_mask"]},
                   {**inputs, "position_ids": positions}):
        kwargs["use_cache"] = False
        assert_outputs_close(ours(**kwargs), reference(**kwargs))


@pytest.mark.parametrize("settings", [dict(max_new_tokens=6), dict(max_new_tokens=5, num_beams=3,
                                                                     num_return_sequences=2)])
def test_generate_matches_reference(saved, settings):
    """Tokens and scores of greedy and beam search (with the key/value cache) are the reference's."""
    folder, reference = saved("decoder")
    ours = bert_generation.BertGenerationDecoder.from_pretrained(folder)
    inputs = left_padded(pad=2, pad_token_id=0)
    check_generate(ours, reference, inputs, **settings)


@pytest.mark.parametrize("case", ["encoder", "cross"])
def test_saved_by_us_loads_in_reference(saved, tmp_path, case):
    folder, _ = saved(case)
    name = CASES[case][0]
    check_saved_by_us(getattr(bert_generation, name), folder, tmp_path, name, padded_inputs(case))


@pytest.mark.parametrize("case", ["decoder", "cross"])
def test_cached_decoding_matches_reference(saved, case):
    """Prefill, then one token at a time with the cache (cross-attention keys projected once): the logits of one
    full forward and of the reference with its own cache."""
    folder, reference = saved(case)
    ours = bert_generation.BertGenerationDecoder.from_pretrained(folder)
    inputs = {k: v for k, v in padded_inputs(case).items() if k != "use_cache"}
    inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
    ids, mask = inputs.pop("input_ids"), inputs.pop("attention_mask")
    with torch.no_grad():
        full = ours(input_ids=ids, attention_mask=mask, use_cache=False, **inputs).logits
        cache, theirs_cache = None, None
        for start, end in [(0, 3)] + [(t, t + 1) for t in range(3, ids.shape[1])]:
            step = dict(input_ids=ids[:, start:end], attention_mask=mask[:, :end], use_cache=True, **inputs)
            out = ours(**step, past_key_values=cache)
            cache = out.past_key_values
            assert cache.get_seq_length() == end
            torch.testing.assert_close(out.logits, full[:, start:end], atol=1e-5, rtol=1e-4)
            expected = reference(**step, cache=theirs_cache)
            theirs_cache = expected.cache
            torch.testing.assert_close(out.logits, expected.logits, atol=1e-5, rtol=1e-4)


def test_encoder_refuses_a_cache(saved):
    folder, _ = saved("encoder")
    ours = bert_generation.BertGenerationEncoder.from_pretrained(folder)
    with pytest.raises(NotImplementedError, match="past_key_values"):
        ours(input_ids=torch.tensor([[5, 6]]), past_key_values=((torch.zeros(1), torch.zeros(1)),))
