"""Checks shared by the encoder-decoder parity tests (BART, mBART, Marian, Pegasus, T5) against the reference."""

from __future__ import annotations

import torch

from .decoder_parity import assert_same, check_head, check_saved_by_us, reference_model  # noqa: F401  (re-exported)
from .harness import _close

BART_TINY = dict(vocab_size=99, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                 decoder_attention_heads=4, encoder_ffn_dim=37, decoder_ffn_dim=37, max_position_embeddings=64)


def seq2seq_inputs(pad: int, eos: int, batch: int = 2, seq: int = 9, target: int = 6, seed: int = 0,
                   vocab: int = 99, target_vocab: int | None = None) -> dict:
    """A right-padded batch: input_ids ending in EOS (the last row padded by 3), decoder inputs whose last row is
    padded by 1, and labels with an ignored (-100) position."""
    g = torch.Generator().manual_seed(seed)
    target_vocab = target_vocab or vocab
    input_ids = torch.randint(3, vocab, (batch, seq), generator=g)
    input_ids[:, -1] = eos
    attention_mask = torch.ones(batch, seq, dtype=torch.long)
    input_ids[-1, -4], input_ids[-1, -3:], attention_mask[-1, -3:] = eos, pad, 0
    decoder_input_ids = torch.randint(3, target_vocab, (batch, target), generator=g)
    decoder_attention_mask = torch.ones(batch, target, dtype=torch.long)
    decoder_attention_mask[-1, -1] = 0
    labels = torch.randint(3, target_vocab, (batch, target), generator=g)
    labels[-1, -1] = -100
    return dict(input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_input_ids,
                decoder_attention_mask=decoder_attention_mask, labels=labels)


def head_inputs(class_name: str, inputs: dict) -> tuple[dict, dict]:
    """(model inputs, label inputs) for a head: LM heads get decoder inputs and labels, classifiers class labels,
    QA heads span positions; the others read the encoder inputs (shifted right) as decoder inputs when they can."""
    base = {k: inputs[k] for k in ("input_ids", "attention_mask")}
    decoder = {k: inputs[k] for k in ("decoder_input_ids", "decoder_attention_mask")}
    if class_name.endswith("ForCausalLM"):
        return {"input_ids": inputs["decoder_input_ids"], "attention_mask": inputs["decoder_attention_mask"]}, {
            "labels": inputs["labels"]}
    if "SequenceClassification" in class_name:
        return base, {"labels": torch.tensor([1, 0])}
    if "TokenClassification" in class_name:
        return base, {"labels": (inputs["input_ids"] % 2)}
    if "QuestionAnswering" in class_name:
        return base, {"start_positions": torch.tensor([1, 3]), "end_positions": torch.tensor([2, 12])}
    if class_name.endswith("EncoderModel"):
        return base, {}
    if "Generation" in class_name or class_name.endswith("MTModel"):
        return {**base, **decoder}, {"labels": inputs["labels"]}
    return {**base, **decoder}, {}


def check_saved_head(name: str, folder, save_dir, inputs: dict):
    """check_saved_by_us for the head `name` (ours and the reference's class of that name) on its head_inputs."""
    import leanformers

    model_inputs, labels = head_inputs(name, inputs)
    return check_saved_by_us(getattr(leanformers, name), folder, save_dir, name, {**model_inputs, **labels})


def check_cached_decoding(ours, reference, inputs: dict, prefill: int = 2, make_cache=None):
    """The encoder runs once; the decoder then reads `prefill` tokens and one token at a time with a cache. Its
    logits equal those of one full forward and those of the reference with its own cache; the cache is the one
    given (or the EncoderDecoderCache made around it), and it grows by the tokens read."""
    from leanformers.cache import DynamicCache, EncoderDecoderCache

    ids, mask, dec = inputs["input_ids"], inputs["attention_mask"], inputs["decoder_input_ids"]
    dec_mask = inputs.get("decoder_attention_mask")
    with torch.no_grad():
        full = ours(input_ids=ids, attention_mask=mask, decoder_input_ids=dec, decoder_attention_mask=dec_mask,
                    use_cache=False).logits
        torch.testing.assert_close(full, reference(input_ids=ids, attention_mask=mask, decoder_input_ids=dec,
                                                   decoder_attention_mask=dec_mask).logits, atol=1e-5, rtol=1e-4)
        encoded = ours.get_encoder()(input_ids=ids, attention_mask=mask)
        theirs_encoded = reference.get_encoder()(input_ids=ids, attention_mask=mask)
        cache = make_cache() if make_cache is not None else EncoderDecoderCache(DynamicCache(), DynamicCache())
        theirs_cache = None
        for start, end in [(0, prefill)] + [(t, t + 1) for t in range(prefill, dec.shape[1])]:
            step = dict(attention_mask=mask, decoder_input_ids=dec[:, start:end], use_cache=True,
                        decoder_attention_mask=None if dec_mask is None else dec_mask[:, :end])
            out = ours(encoder_outputs=encoded, past_key_values=cache, **step)
            cache = out.past_key_values if start == 0 else cache
            assert out.past_key_values is cache and isinstance(cache, EncoderDecoderCache)
            assert cache.get_seq_length() == end
            torch.testing.assert_close(out.logits, full[:, start:end], atol=1e-5, rtol=1e-4)
            expected = reference(encoder_outputs=theirs_encoded, cache=theirs_cache, **step)
            theirs_cache = expected.cache
            torch.testing.assert_close(out.logits, expected.logits, atol=1e-5, rtol=1e-4)
    return cache


def check_generate(ours, reference, inputs: dict, **settings):
    """generate() gives the reference's sequences token for token, and its scores (and sequences_scores for beam
    search; attentions and hidden states when asked)."""
    kwargs = dict(return_dict_in_generate=True, output_scores=True, **settings)
    mine = ours.generate(**inputs, **kwargs)
    if settings.get("output_attentions"):  # the reference's fused attention returns no weights
        reference.set_attn_implementation("eager")
    try:
        theirs = reference.generate(**inputs, **kwargs)
    finally:
        reference.set_attn_implementation("sdpa")
    assert torch.equal(mine.sequences, theirs.sequences), (mine.sequences.tolist(), theirs.sequences.tolist())
    skip = ("cache", "past_key_values")
    assert sorted(k for k in mine.keys() if k not in skip) == sorted(k for k in theirs.keys() if k not in skip)
    for key in theirs.keys():
        if key not in skip:
            _close(mine[key], theirs[key], 1e-5, 1e-4, key)
    return mine

