"""Checks shared by the decoder parity tests (GPT-2, OpenAI GPT, CTRL, Llama family) against the reference."""

from __future__ import annotations

import torch

from .harness import _close

# The reference names the cache output `cache` (Transformers 5); here it is `past_key_values`, with `.cache` as alias.
_RENAMED = {"cache": "past_key_values"}


def reference_model(class_name: str, config_class_name: str, folder, seed: int = 0, **config_kwargs):
    """A tiny random reference model saved to `folder` (eval mode, default SDPA attention)."""
    import transformers

    transformers.logging.set_verbosity_error()
    torch.manual_seed(seed)
    config = getattr(transformers, config_class_name)(**config_kwargs)
    model = getattr(transformers, class_name)(config).eval()
    model.save_pretrained(folder)
    return model


def left_padded(batch: int = 2, seq: int = 7, vocab: int = 99, pad: int = 3, seed: int = 0, pad_token_id: int = 0):
    """input_ids and attention_mask whose first row is left-padded by `pad` pad tokens."""
    g = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(3, vocab, (batch, seq), generator=g)
    attention_mask = torch.ones(batch, seq, dtype=torch.long)
    attention_mask[0, :pad] = 0
    input_ids[0, :pad] = pad_token_id
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def generation_positions(attention_mask):
    """Position ids as generation computes them for a left-padded batch (padding at position 0 onwards)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0) * attention_mask.long()


def assert_same(ours, theirs, atol: float = 1e-5, rtol: float = 1e-4):
    """Every field of the reference output is in ours with the same values; caches must both be present."""
    # an empty tuple (transformers 5's cross_attentions without cross-attention) is a field left out, as in 4.x
    expected = {_RENAMED.get(k, k): v for k, v in theirs.items()
                if v is not None and not (isinstance(v, tuple) and not v)}
    assert sorted(ours.keys()) == sorted(expected), (sorted(ours.keys()), sorted(expected))
    for key, value in expected.items():
        if key == "past_key_values":
            assert ours[key] is not None and ours[key].get_seq_length() == value.get_seq_length()
        else:
            _close(ours[key], value, atol, rtol, key)


def assert_same_tuple(ours: tuple, theirs: tuple, atol: float = 1e-5):
    theirs = tuple(value for value in theirs if not (isinstance(value, tuple) and not value))  # 4.x tuple form
    assert isinstance(ours, tuple) and len(ours) == len(theirs)
    for i, (a, b) in enumerate(zip(ours, theirs)):
        if hasattr(b, "get_seq_length"):
            assert a.get_seq_length() == b.get_seq_length()
        else:
            _close(a, b, atol, 1e-4, f"[{i}]")


def check_head(our_cls, folder, reference, inputs: dict, labels: dict | None = None):
    """Fused-attention path, weights path (reference in eager mode) and tuple output all equal the reference."""
    labels = labels or {}
    ours = our_cls.from_pretrained(folder)
    assert type(ours) is our_cls
    with torch.no_grad():
        assert_same(ours(**inputs, **labels, output_hidden_states=True),
                    reference(**inputs, **labels, output_hidden_states=True))
        reference.set_attn_implementation("eager")
        try:
            flags = dict(output_hidden_states=True, output_attentions=True)
            expected = reference(**inputs, **labels, **flags)
            assert_same(ours(**inputs, **labels, **flags), expected)
            assert_same_tuple(ours(**inputs, **labels, **flags, return_dict=False), expected.to_tuple())
        finally:
            reference.set_attn_implementation("sdpa")
    return ours


def check_cached_decoding(ours, reference, inputs: dict, prefill: int, make_cache=None, same_as_full: bool = True):
    """Prefill then one token at a time with a cache gives the logits of one full forward (unless the positions
    seen so far change the model, as dynamic RoPE does), and those of the reference with its own cache; position
    ids follow the padding as in generation."""
    from leanformers.cache import DynamicCache

    input_ids, mask = inputs["input_ids"], inputs["attention_mask"]
    positions = generation_positions(mask)
    with torch.no_grad():
        full = ours(input_ids=input_ids, attention_mask=mask, position_ids=positions).logits
        torch.testing.assert_close(full, reference(input_ids=input_ids, attention_mask=mask,
                                                   position_ids=positions).logits, atol=1e-5, rtol=1e-4)
        cache = make_cache() if make_cache is not None else DynamicCache()
        theirs_cache = None
        steps = [(0, prefill)] + [(t, t + 1) for t in range(prefill, input_ids.shape[1])]
        for start, end in steps:
            step = dict(input_ids=input_ids[:, start:end], attention_mask=mask[:, :end],
                        position_ids=positions[:, start:end], use_cache=True)
            out = ours(**step, past_key_values=cache)
            assert out.past_key_values is cache and cache.get_seq_length() == end
            if same_as_full:
                torch.testing.assert_close(out.logits, full[:, start:end], atol=1e-5, rtol=1e-4)
            expected = reference(**step, cache=theirs_cache)
            theirs_cache = expected.cache
            torch.testing.assert_close(out.logits, expected.logits, atol=1e-5, rtol=1e-4)
    return cache


def check_saved_by_us(our_cls, folder, save_dir, reference_class_name: str, inputs: dict):
    """A folder we write (after changing every trainable weight) loads in the reference with nothing missing or
    unexpected and gives our outputs; it holds exactly the tensors the reference saves. -> (ours, theirs)"""
    import transformers
    from safetensors import safe_open

    ours = our_cls.from_pretrained(folder)
    with torch.no_grad():
        for param in ours.parameters():
            if param.requires_grad:
                param.add_(0.01 * torch.randn_like(param))
    ours.save_pretrained(save_dir)
    theirs, info = getattr(transformers, reference_class_name).from_pretrained(save_dir, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    with torch.no_grad():
        assert_same(ours(**inputs), theirs.eval()(**inputs))
    with safe_open(f"{save_dir}/model.safetensors", "pt") as mine:
        with safe_open(f"{folder}/model.safetensors", "pt") as ref:
            assert sorted(mine.keys()) == sorted(ref.keys())
    return ours, theirs


def double_heads_inputs() -> dict:
    """(batch 2, 3 choices, 5 tokens) inputs of a double-heads model, with the token each choice is scored at and
    labels for both heads."""
    g = torch.Generator().manual_seed(2)
    return {"input_ids": torch.randint(3, 99, (2, 3, 5), generator=g),
            "mc_token_ids": torch.tensor([[4, 3, 2], [1, 4, 4]]),
            "labels": torch.randint(0, 99, (2, 3, 5), generator=g), "mc_labels": torch.tensor([2, 0])}
