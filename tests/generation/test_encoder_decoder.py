"""The encoder-decoder path of generate() (encoder run once, decoder start token, cross-attention outputs),
checked on the reference's tiny BART driven through our GenerationMixin."""

from __future__ import annotations

import pytest
import torch

from leanformers.generation import GenerationMixin

from .common import MASK, PROMPTS, outputs_equal


class DrivenSeq2Seq(torch.nn.Module, GenerationMixin):
    """Our generate() over a reference encoder-decoder's forward(); the cache hook builds the reference's cache."""

    main_input_name = "input_ids"
    base_model_prefix = ""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.config = inner.config

    @property
    def device(self):
        return next(self.parameters()).device

    def get_encoder(self):
        return self.inner.get_encoder()

    def forward(self, input_ids=None, attention_mask=None, decoder_input_ids=None, decoder_attention_mask=None,
                encoder_outputs=None, cache=None, use_cache=None, output_attentions=None, output_hidden_states=None,
                return_dict=True, logits_to_keep=0):
        return self.inner(input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_input_ids,
                          decoder_attention_mask=decoder_attention_mask, encoder_outputs=encoder_outputs, cache=cache,
                          use_cache=use_cache, output_attentions=output_attentions,
                          output_hidden_states=output_hidden_states, return_dict=True, logits_to_keep=logits_to_keep)

    def _prepare_cache_for_generation(self, generation_config, model_kwargs, batch_size, max_cache_length):
        import transformers

        if generation_config.use_cache is not False and model_kwargs.get("cache") is None:
            model_kwargs["cache"] = transformers.EncoderDecoderCache(transformers.DynamicCache(),
                                                                     transformers.DynamicCache())


@pytest.fixture(scope="module")
def bart():
    import transformers

    torch.manual_seed(1)
    config = transformers.BartConfig(vocab_size=99, d_model=32, encoder_layers=2, decoder_layers=2,
                                     encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=37,
                                     decoder_ffn_dim=37, max_position_embeddings=64, init_std=0.3,
                                     attn_implementation="eager")
    reference = transformers.BartForConditionalGeneration(config).eval()
    return reference, DrivenSeq2Seq(reference)


@pytest.mark.parametrize("settings", [
    dict(), dict(num_beams=3, num_return_sequences=2), dict(do_sample=True, top_k=5),
    dict(output_scores=True, output_attentions=True, output_hidden_states=True),
])
def test_encoder_decoder_matches_reference(bart, settings):
    reference, ours = bart
    outputs = []
    for model in (reference, ours):
        torch.manual_seed(0)
        outputs.append(model.generate(PROMPTS, attention_mask=MASK, max_new_tokens=8, return_dict_in_generate=True,
                                      **settings))
    outputs_equal(outputs[1], outputs[0])
    assert outputs[1].sequences[0, 0] == reference.config.decoder_start_token_id
