"""Llama, Mistral and Qwen2 against the reference: heads, grouped-query attention, RoPE scaling kinds, sliding
windows, biases, tied or untied output embeddings, cached (dynamic and static) decoding and saving."""

import pytest
import torch

import leanformers
from leanformers import AutoConfig, AutoModelForCausalLM
from leanformers.cache import StaticCache

from .decoder_parity import check_cached_decoding, check_head, check_saved_by_us, left_padded, reference_model

TINY = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            intermediate_size=37, max_position_embeddings=64, pad_token_id=0)
FAMILY = {"Llama": TINY, "Mistral": dict(TINY, sliding_window=4),
          "Qwen2": dict(TINY, use_sliding_window=True, sliding_window=4, max_window_layers=1)}
ROPE = {
    "linear": {"rope_type": "linear", "factor": 2.0},
    "dynamic": {"rope_type": "dynamic", "factor": 2.0},
    "llama3": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 8},
    "yarn": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16},
    "longrope": {"rope_type": "longrope", "long_factor": [1.0, 1.5, 2.0, 3.0], "short_factor": [1.0, 1.1, 1.2, 1.3],
                 "original_max_position_embeddings": 6},
}


def labels_for(head: str, seq: int = 7) -> dict:
    g = torch.Generator().manual_seed(1)
    if head == "ForCausalLM":
        return {"labels": torch.randint(0, 99, (2, seq), generator=g)}
    if head == "ForSequenceClassification":
        return {"labels": torch.tensor([1, 0])}
    if head == "ForTokenClassification":
        return {"labels": torch.randint(0, 2, (2, seq), generator=g)}
    if head == "ForQuestionAnswering":
        return {"start_positions": torch.tensor([1, 9]), "end_positions": torch.tensor([3, 4])}
    return {}


HEADS = [("Llama", h) for h in ("Model", "ForCausalLM", "ForSequenceClassification", "ForTokenClassification",
                                "ForQuestionAnswering")]
HEADS += [("Mistral", h) for h in ("Model", "ForCausalLM", "ForQuestionAnswering")]
HEADS += [("Qwen2", h) for h in ("ForCausalLM", "ForSequenceClassification", "ForTokenClassification",
                                 "ForQuestionAnswering")]


@pytest.mark.parametrize("family,head", HEADS)
def test_head_matches_reference(family, head, tmp_path):
    name = family + head
    reference = reference_model(name, f"{family}Config", tmp_path, **FAMILY[family])
    check_head(getattr(leanformers, name), tmp_path, reference, left_padded(seq=10), labels_for(head, 10))


@pytest.mark.parametrize("kind", sorted(ROPE))
def test_rope_scaling(kind, tmp_path):
    """Sequences longer than the trained length (8 here) exercise the scaled frequencies, the dynamic growth and
    the long factors; cached decoding crosses that length token by token."""
    config = dict(TINY, max_position_embeddings=8, rope_scaling=dict(ROPE[kind]))
    reference = reference_model("LlamaForCausalLM", "LlamaConfig", tmp_path, **config)
    ours = check_head(leanformers.LlamaForCausalLM, tmp_path, reference, left_padded(seq=10, pad=2))
    assert ours.config.rope_parameters["rope_type"] == kind and "rope_scaling" not in ours.config.to_dict()
    # dynamic and longrope frequencies depend on the longest position of each call, so only the reference's own
    # cached decoding is comparable there
    check_cached_decoding(ours, reference, left_padded(seq=12, pad=2), prefill=5,
                          same_as_full=kind not in ("dynamic", "longrope"))


def test_legacy_rope_fields_are_standardised():
    """rope_theta and rope_scaling of older config.json files become one rope_parameters dict, as in the reference."""
    import transformers

    legacy = dict(rope_theta=500000.0, rope_scaling={"type": "linear", "factor": 2.0})
    ours = leanformers.LlamaConfig(**legacy).to_dict()
    theirs = transformers.LlamaConfig(**legacy).to_dict()
    assert ours["rope_parameters"] == theirs["rope_parameters"]
    assert "rope_theta" not in ours and "rope_scaling" not in ours and "rope_scaling" not in theirs


@pytest.mark.parametrize("family", ["Mistral", "Qwen2"])
def test_sliding_window_with_cache(family, tmp_path):
    """A window of 4 over sequences of 12: the reference keeps a windowed cache, ours masks a full one."""
    reference = reference_model(f"{family}ForCausalLM", f"{family}Config", tmp_path, **FAMILY[family])
    ours = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert type(ours) is getattr(leanformers, f"{family}ForCausalLM")
    check_cached_decoding(ours, reference, left_padded(seq=12, pad=2), prefill=6)


def test_qwen2_biases(tmp_path):
    reference_model("Qwen2ForCausalLM", "Qwen2Config", tmp_path / "ref", **FAMILY["Qwen2"])
    attn = leanformers.Qwen2ForCausalLM.from_pretrained(tmp_path / "ref").model.layers[0].self_attn
    assert attn.q_proj.bias is not None and attn.v_proj.bias is not None and attn.o_proj.bias is None
    check_saved_by_us(leanformers.Qwen2ForCausalLM, tmp_path / "ref", tmp_path / "ours", "Qwen2ForCausalLM",
                      left_padded())


@pytest.mark.parametrize("tied", [True, False])
def test_tied_or_untied_embeddings_and_options(tied, tmp_path):
    """Biases on every projection, head_dim other than hidden // heads, and the output embeddings tied or not."""
    config = dict(TINY, tie_word_embeddings=tied, attention_bias=True, mlp_bias=True, head_dim=16)
    reference = reference_model("LlamaForCausalLM", "LlamaConfig", tmp_path / "ref", **config)
    ours = check_head(leanformers.LlamaForCausalLM, tmp_path / "ref", reference, left_padded())
    assert (ours.lm_head.weight is ours.model.embed_tokens.weight) == tied
    check_saved_by_us(leanformers.LlamaForCausalLM, tmp_path / "ref", tmp_path / "ours", "LlamaForCausalLM",
                      left_padded())
    assert AutoConfig.from_pretrained(tmp_path / "ours").tie_word_embeddings == tied


def test_static_cache_decoding(tmp_path):
    reference = reference_model("LlamaForCausalLM", "LlamaConfig", tmp_path, **TINY)
    ours = leanformers.LlamaForCausalLM.from_pretrained(tmp_path)
    cache = check_cached_decoding(ours, reference, left_padded(seq=9), prefill=4,
                                  make_cache=lambda: StaticCache(ours.config, max_cache_len=12))
    assert cache.get_max_length() == 12 and len(cache) == 2
