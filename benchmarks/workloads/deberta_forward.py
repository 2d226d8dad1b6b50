"""DeBERTa-v3-base-sized forward (disentangled attention over 256 log buckets, shared position projections) at 1x128
and 8x128 tokens under torch.inference_mode, float32."""

from __future__ import annotations

from common import library, repeat, summary

NAME = "deberta_forward"
METRIC = ("median_s", "lower")
# microsoft/deberta-v3-base's config (random weights: the time does not depend on their values)
CONFIG = dict(vocab_size=128100, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
              intermediate_size=3072, max_position_embeddings=512, type_vocab_size=0, layer_norm_eps=1e-7,
              relative_attention=True, max_relative_positions=-1, position_buckets=256, norm_rel_ebd="layer_norm",
              share_att_key=True, pos_att_type="p2c|c2p", position_biased_input=False, pad_token_id=0)


def cases(quick: bool) -> list[dict]:
    return [{"batch": batch, "seq": 128} for batch in (1, 8)]


def prepare(quick: bool) -> None:
    """Nothing to fetch: the model is built from its config with a fixed seed."""


def measure(lib: str, case: dict, quick: bool) -> dict:
    import torch

    module = library(lib)
    torch.manual_seed(0)
    model = module.DebertaV2Model(module.DebertaV2Config(**CONFIG)).eval()
    shape = (case["batch"], case["seq"])
    inputs = {"input_ids": torch.randint(3, CONFIG["vocab_size"], shape, generator=torch.Generator().manual_seed(0)),
              "attention_mask": torch.ones(shape, dtype=torch.long)}

    def step():
        with torch.inference_mode():
            return model(**inputs).last_hidden_state

    out = step()
    times = repeat(step, warmup=1 if quick else 3, repeats=3 if quick else 20)
    return {**summary(times), "output_shape": list(out.shape),
            "tokens_per_s": case["batch"] * case["seq"] / summary(times)["median_s"]}
