"""EncoderDecoderModel parity with the reference: BERT -> BERT (widths differ: enc_to_dec_proj), BertGeneration ->
BertGeneration and BERT -> ELECTRA (a decoder without a cache): forward with labels, greedy and beam generate token
for token, save/load both ways, from_encoder_decoder_pretrained, the Auto classes, the missing-start-token error and
the seq2seq pipelines."""

import logging

import pytest
import torch

import leanformers
from leanformers.encoder_decoder import EncoderDecoderConfig, EncoderDecoderModel

from .decoder_parity import assert_same
from .harness import save_reference_model
from .legacy import run_legacy
from .seq2seq_parity import check_generate

# odd widths: the encoder is 30 wide over 3 heads, the BERT decoder 24 wide over 3 heads
BERT_ENCODER = dict(vocab_size=99, hidden_size=30, num_hidden_layers=2, num_attention_heads=3, intermediate_size=37,
                    max_position_embeddings=64)
BERT_DECODER = dict(BERT_ENCODER, hidden_size=24, intermediate_size=29)
PAIRS = {  # name -> (encoder config class, its settings, decoder config class, its settings)
    "bert2bert": ("BertConfig", BERT_ENCODER, "BertConfig", BERT_DECODER),
    "bertgen2bertgen": ("BertGenerationConfig", BERT_ENCODER, "BertGenerationConfig", BERT_ENCODER),
    # a decoder without a key/value cache: generation reruns the tokens so far
    "bert2electra": ("BertConfig", BERT_ENCODER, "ElectraConfig", dict(BERT_ENCODER, embedding_size=16)),
}
SPECIAL = dict(decoder_start_token_id=2, pad_token_id=0)
# the reference warns at every loss that it no longer computes it inside the decoder (its 4.12 change)
pytestmark = pytest.mark.filterwarnings("ignore:Version v4.12.0 introduces:FutureWarning")


def reference_pair(name: str, folder, vocab_size: int = 99, **special):
    """A tiny random reference EncoderDecoderModel joined from two configs, saved to `folder`."""
    import transformers

    transformers.logging.set_verbosity_error()
    encoder_cls, encoder, decoder_cls, decoder = PAIRS[name]
    config = transformers.EncoderDecoderConfig.from_encoder_decoder_configs(
        getattr(transformers, encoder_cls)(**{**encoder, "vocab_size": vocab_size}),
        getattr(transformers, decoder_cls)(**{**decoder, "vocab_size": vocab_size}), **special)
    torch.manual_seed(0)
    model = transformers.EncoderDecoderModel(config=config).eval()
    model.save_pretrained(folder)
    return model


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    cache = {}

    def get(name):
        if name not in cache:
            folder = tmp_path_factory.mktemp(name)
            cache[name] = folder, reference_pair(name, folder, **SPECIAL)
        return cache[name]
    return get


def seq2seq_batch() -> dict:
    """Right-padded encoder inputs, labels with an ignored position (the decoder inputs are made from them)."""
    g = torch.Generator().manual_seed(5)
    input_ids = torch.randint(3, 99, (2, 8), generator=g)
    attention_mask = torch.ones(2, 8, dtype=torch.long)
    input_ids[1, -3:], attention_mask[1, -3:] = 0, 0
    labels = torch.randint(3, 99, (2, 5), generator=g)
    labels[1, -1] = -100
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


@pytest.mark.parametrize("name", PAIRS)
def test_forward_with_labels_matches_reference(saved, name):
    """Loss, logits, decoder/encoder hidden states and attentions, cross-attentions; labels -> decoder inputs."""
    folder, reference = saved(name)
    ours = leanformers.AutoModelForSeq2SeqLM.from_pretrained(folder)
    assert type(ours) is EncoderDecoderModel and hasattr(ours, "enc_to_dec_proj") == (name == "bert2bert")
    flags = dict(output_attentions=True, output_hidden_states=True, use_cache=False)
    with torch.no_grad():
        reference.set_attn_implementation("eager")
        try:
            assert_same(ours(**seq2seq_batch(), **flags), reference(**seq2seq_batch(), **flags))
        finally:
            reference.set_attn_implementation("sdpa")
        batch = seq2seq_batch()
        explicit = {**batch, "decoder_input_ids": reference.prepare_decoder_input_ids_from_labels(batch["labels"]),
                    "decoder_attention_mask": torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]]), "use_cache": False}
        assert_same(ours(**explicit), reference(**explicit))


@pytest.mark.parametrize("settings", [dict(max_new_tokens=6), dict(max_new_tokens=5, num_beams=3,
                                                                     num_return_sequences=2)])
@pytest.mark.parametrize("name", PAIRS)
def test_generate_matches_reference(saved, name, settings):
    """The encoder runs once; the decoder reads one new token per step with its cache (or, without one, reruns the
    tokens so far); tokens and scores are the reference's."""
    folder, reference = saved(name)
    ours = EncoderDecoderModel.from_pretrained(folder)
    batch = seq2seq_batch()
    encoder_calls, decoder_lengths = [], []
    ours.encoder.register_forward_hook(lambda *args: encoder_calls.append(1))
    ours.decoder.register_forward_pre_hook(lambda module, args, kwargs: decoder_lengths.append(
        kwargs["input_ids"].shape[1]), with_kwargs=True)
    check_generate(ours, reference, {k: batch[k] for k in ("input_ids", "attention_mask")}, **settings)
    assert len(encoder_calls) == 1
    caches = name != "bert2electra"
    assert ours._decoder_caches() == caches
    assert decoder_lengths == ([1] * len(decoder_lengths) if caches else list(range(1, len(decoder_lengths) + 1)))


@pytest.mark.parametrize("name", PAIRS)
def test_saved_by_us_loads_in_reference(saved, tmp_path, name):
    import transformers

    folder, _ = saved(name)
    ours = EncoderDecoderModel.from_pretrained(folder)
    with torch.no_grad():
        for param in ours.parameters():
            param.add_(0.01 * torch.randn_like(param))
    ours.save_pretrained(tmp_path)
    theirs, info = transformers.EncoderDecoderModel.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    assert type(theirs.config.decoder).__name__ == type(ours.config.decoder).__name__
    with torch.no_grad():
        assert_same(ours(**seq2seq_batch(), use_cache=False), theirs.eval()(**seq2seq_batch(), use_cache=False))
    again = EncoderDecoderModel.from_pretrained(tmp_path)
    assert again.config.decoder_start_token_id == 2 and again.config.decoder.add_cross_attention
    with torch.no_grad():
        torch.testing.assert_close(again(**seq2seq_batch()).logits, ours(**seq2seq_batch()).logits, atol=0, rtol=0)


def test_from_encoder_decoder_pretrained(tmp_path, caplog):
    """Two plain BERT checkpoints: the decoder becomes a cross-attending BertLMHeadModel whose new cross-attention
    weights are reported as newly initialised; the joined model round-trips through the reference."""
    import transformers

    save_reference_model("BertModel", "BertConfig", tmp_path / "enc", **BERT_ENCODER)
    decoder_ref = save_reference_model("BertForMaskedLM", "BertConfig", tmp_path / "dec", seed=1, **BERT_DECODER)
    with caplog.at_level(logging.WARNING, logger="leanformers"):
        ours = EncoderDecoderModel.from_encoder_decoder_pretrained(tmp_path / "enc", tmp_path / "dec")
    ours.config.update(SPECIAL)  # keywords prefixed decoder_ go to the decoder, as in the reference
    assert type(ours.decoder) is leanformers.BertLMHeadModel and type(ours.encoder) is leanformers.BertModel
    assert ours.config.decoder.is_decoder and ours.config.decoder.add_cross_attention
    assert "newly initialized" in caplog.text and "crossattention" in caplog.text
    torch.testing.assert_close(ours.decoder.bert.embeddings.word_embeddings.weight,
                               decoder_ref.bert.embeddings.word_embeddings.weight)
    ours.save_pretrained(tmp_path / "joined")
    theirs = transformers.EncoderDecoderModel.from_pretrained(tmp_path / "joined").eval()
    with torch.no_grad():
        assert_same(ours(**seq2seq_batch(), use_cache=False), theirs(**seq2seq_batch(), use_cache=False))


def test_missing_decoder_start_token_is_a_clear_error(tmp_path):
    import transformers

    reference = reference_pair("bert2bert", tmp_path, pad_token_id=0)
    ours = EncoderDecoderModel.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="decoder_start_token_id"):
        reference(**seq2seq_batch())
    with pytest.raises(ValueError, match="decoder_start_token_id is not set"):
        ours(**seq2seq_batch())
    assert isinstance(reference, transformers.EncoderDecoderModel)


def test_configs_nest_and_auto_classes_resolve(saved):
    folder, reference = saved("bertgen2bertgen")
    config = leanformers.AutoConfig.from_pretrained(folder)
    assert type(config) is EncoderDecoderConfig is leanformers.EncoderDecoderConfig
    assert type(config.encoder) is leanformers.BertGenerationConfig and config.decoder.is_decoder
    assert config.to_dict()["decoder"]["model_type"] == "bert-generation"
    joined = EncoderDecoderConfig.from_encoder_decoder_configs(leanformers.BertConfig(), leanformers.BertConfig())
    assert joined.decoder.add_cross_attention and not joined.encoder.is_decoder
    model = leanformers.AutoModelForSeq2SeqLM.from_config(config)
    assert type(model) is EncoderDecoderModel
    with pytest.raises(NotImplementedError, match=r"model.encoder.resize_token_embeddings"):
        model.resize_token_embeddings(120)
    with pytest.raises(leanformers.errors.ConfigError, match="add_cross_attention"):
        EncoderDecoderModel(EncoderDecoderConfig.from_encoder_decoder_configs(
            leanformers.BertConfig(**BERT_ENCODER), leanformers.GPT2Config(n_embd=24, n_layer=1, n_head=3)))


# ---------------------------------------------------------------------- seq2seq pipelines (reference: 4.55.4)
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "a", "dog", "is", "happy",
         "paris", "in", "lives", "sam", ".", "hello", "world"]
_LEGACY_PIPELINE = """
result = [transformers.pipeline(task, model=payload["folder"])(*args, **kwargs)
          for task, args, kwargs in payload["calls"]]
"""


def test_summarization_and_text2text_pipelines(tmp_path):
    import transformers

    reference_pair("bert2bert", tmp_path, vocab_size=len(VOCAB), decoder_start_token_id=2, pad_token_id=0,
                   eos_token_id=3)
    transformers.BertTokenizer(vocab={token: i for i, token in enumerate(VOCAB)}).save_pretrained(tmp_path)
    calls = [("summarization", [["the cat sat on the mat .", "sam lives in paris ."]], {"max_new_tokens": 5}),
             ("text2text-generation", ["hello world"], {"max_new_tokens": 4, "num_beams": 2})]
    expected = run_legacy(_LEGACY_PIPELINE, {"folder": str(tmp_path), "calls": calls})
    for (task, args, kwargs), theirs in zip(calls, expected):
        pipe = leanformers.pipeline(task, model=str(tmp_path))
        assert type(pipe.model) is EncoderDecoderModel
        got = pipe(*args, **kwargs)
        assert got == theirs and all(row[key] for row in got for key in row)  # the same, non-empty texts


# ---------------------------------------------------------------------- the BERT-family decoders' key/value cache
DECODERS = {"BertLMHeadModel": "BertConfig", "RobertaForCausalLM": "RobertaConfig"}


@pytest.fixture(scope="module")
def decoder(tmp_path_factory):
    cache = {}

    def get(name, **extra):
        key = (name, tuple(sorted(extra.items())))
        if key not in cache:
            folder = tmp_path_factory.mktemp(name)
            settings = dict(BERT_DECODER, is_decoder=True, **extra)
            cache[key] = folder, save_reference_model(name, DECODERS[name], folder, **settings)
        return cache[key]
    return get


@pytest.mark.parametrize("name", DECODERS)
def test_decoder_cache_matches_reference(decoder, name):
    """Prefill, then one token at a time with the cache, cross-attending to padded encoder states: the logits of
    one full forward and of the reference with its own cache."""
    folder, reference = decoder(name, add_cross_attention=True)
    ours = getattr(leanformers, name).from_pretrained(folder)
    g = torch.Generator().manual_seed(7)
    ids = torch.randint(3, 99, (2, 6), generator=g)
    context = {"encoder_hidden_states": torch.randn(2, 5, 24, generator=g),
               "encoder_attention_mask": torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])}
    with torch.no_grad():
        full = ours(input_ids=ids, use_cache=False, **context).logits
        cache, theirs_cache = None, None
        for start, end in [(0, 2)] + [(t, t + 1) for t in range(2, ids.shape[1])]:
            step = dict(input_ids=ids[:, start:end], use_cache=True, **context)
            out = ours(**step, past_key_values=cache)
            cache = out.past_key_values
            assert cache.get_seq_length() == end
            torch.testing.assert_close(out.logits, full[:, start:end], atol=1e-5, rtol=1e-4)
            expected = reference(**step, cache=theirs_cache)
            theirs_cache = expected.cache
            torch.testing.assert_close(out.logits, expected.logits, atol=1e-5, rtol=1e-4)
        assert "past_key_values" not in ours(input_ids=ids, labels=ids, **context)  # no cache made for a loss


@pytest.mark.parametrize("settings", [dict(max_new_tokens=5), dict(max_new_tokens=4, num_beams=3)])
@pytest.mark.parametrize("name", DECODERS)
def test_decoder_generate_matches_reference(decoder, name, settings):
    folder, reference = decoder(name)
    ours = getattr(leanformers, name).from_pretrained(folder)
    check_generate(ours, reference, {"input_ids": torch.tensor([[5, 9, 14, 3], [7, 21, 8, 30]])}, **settings)
