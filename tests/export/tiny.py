"""Tiny configurations of every registered architecture, built by leanformers alone (no reference needed): tracing,
torch.export and ONNX compare a model with itself, eager against exported."""

from __future__ import annotations

import torch

import leanformers
from leanformers.auto import REGISTRY

BERT = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=64)
GPT = dict(vocab_size=99, n_embd=32, n_layer=2, n_head=4, n_positions=64)
BART = dict(vocab_size=99, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
            decoder_attention_heads=4, encoder_ffn_dim=37, decoder_ffn_dim=37, max_position_embeddings=64)
XLM = dict(vocab_size=99, emb_dim=32, n_layers=2, n_heads=4, max_position_embeddings=64)
CONFIGS = {
    "bert": BERT, "roberta": BERT, "xlm-roberta": BERT, "camembert": BERT, "retribert": BERT,
    "electra": dict(BERT, embedding_size=16), "albert": dict(BERT, embedding_size=16),
    "bert-generation": BERT, "deberta": dict(BERT, relative_attention=True, pos_att_type="c2p|p2c"),
    "deberta-v2": dict(BERT, relative_attention=True, pos_att_type="p2c|c2p", position_buckets=4),
    "longformer": dict(BERT, attention_window=[4, 4]),
    "mobilebert": dict(BERT, intra_bottleneck_size=24, embedding_size=16, true_hidden_size=24),
    "distilbert": dict(vocab_size=99, dim=32, n_layers=2, n_heads=4, hidden_dim=37),
    "xlm": XLM, "flaubert": XLM,
    "gpt2": GPT, "openai-gpt": GPT, "ctrl": dict(GPT, dff=37),
    "xlnet": dict(vocab_size=99, d_model=32, n_layer=2, n_head=4, d_inner=37),
    "transfo-xl": dict(vocab_size=99, cutoffs=[40], d_model=32, d_embed=32, n_head=4, d_head=8, d_inner=37,
                       div_val=1, n_layer=2, mem_len=4),
    "reformer": dict(vocab_size=99, hidden_size=32, num_attention_heads=4, attention_head_size=8,
                     feed_forward_size=37, attn_layers=["local", "local"], local_attn_chunk_length=4,
                     axial_pos_shape=[4, 4], axial_pos_embds_dim=[16, 16], max_position_embeddings=16,
                     is_decoder=False),
    "llama": dict(BERT, num_key_value_heads=2), "mistral": dict(BERT, num_key_value_heads=2),
    "qwen2": dict(BERT, num_key_value_heads=2),
    "bart": BART, "mbart": BART, "marian": dict(BART, decoder_start_token_id=0, pad_token_id=1),
    "pegasus": BART,
    "t5": dict(vocab_size=99, d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4, decoder_start_token_id=0),
}
SEQ2SEQ = {"bart", "mbart", "marian", "pegasus", "t5"}


def tiny_model(model_type: str, head: str = "", **overrides):
    """A tiny random model of REGISTRY[model_type] with the given head ("" = the base model), in eval mode."""
    torch.manual_seed(0)
    config = leanformers.AutoConfig.for_model(model_type, **{**CONFIGS[model_type], **overrides})
    cls = getattr(leanformers, REGISTRY[model_type].heads[head])
    return cls(config).eval()


def token_ids(batch: int = 2, seq: int = 8, vocab: int = 99, eos: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask): random ids ending in `eos`, the second row padded on the left half."""
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(4, vocab, (batch, seq), generator=generator)
    ids[:, -1] = eos
    mask = torch.ones(batch, seq, dtype=torch.long)
    return ids, mask
