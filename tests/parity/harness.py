"""Helpers for parity tests: tiny random reference models saved to disk, and output comparison."""

from __future__ import annotations

import torch

TINY = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=64, type_vocab_size=2)


def save_reference_model(class_name: str, config_class_name: str, folder, seed: int = 0, **config_kwargs):
    """Build a tiny random model with the reference transformers, save it to `folder`, return it (eval mode)."""
    import transformers

    torch.manual_seed(seed)
    config = getattr(transformers, config_class_name)(**config_kwargs)
    model = getattr(transformers, class_name)(config).eval()
    model.save_pretrained(folder)
    return model


def random_inputs(batch: int = 2, seq: int = 7, vocab: int = 99, seed: int = 0, pad_last: int = 2):
    """input_ids, token_type_ids and an attention mask whose last row is right-padded by `pad_last`."""
    g = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(3, vocab, (batch, seq), generator=g)
    attention_mask = torch.ones(batch, seq, dtype=torch.long)
    if pad_last:
        attention_mask[-1, -pad_last:] = 0
    token_type_ids = torch.zeros(batch, seq, dtype=torch.long)
    token_type_ids[:, seq // 2:] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}


def assert_outputs_close(ours, theirs, atol: float = 1e-5, rtol: float = 1e-4):
    """Compare every field present in the reference output (tensors, tuples of tensors)."""
    # an empty tuple (transformers 5's cross_attentions without cross-attention) is a field left out, as in 4.x
    theirs_keys = [k for k in theirs.keys() if theirs[k] is not None and not _empty_tuple(theirs[k])]
    assert sorted(ours.keys()) == sorted(theirs_keys), (sorted(ours.keys()), sorted(theirs_keys))
    for key in theirs_keys:
        _close(ours[key], theirs[key], atol, rtol, key)


def _empty_tuple(value) -> bool:
    return isinstance(value, tuple) and len(value) == 0


def _close(a, b, atol, rtol, name):
    if isinstance(b, (tuple, list)):
        assert len(a) == len(b), f"{name}: {len(a)} vs {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            _close(x, y, atol, rtol, f"{name}[{i}]")
    elif isinstance(b, torch.Tensor):
        torch.testing.assert_close(a, b, atol=atol, rtol=rtol, msg=lambda m: f"{name}: {m}")
