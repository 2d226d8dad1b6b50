"""What `generate(..., return_dict_in_generate=True)` returns, with Transformers' class and field names."""

from __future__ import annotations

from typing import Any

from ..outputs import ModelOutput

Tensor = Any


class _CacheAlias:
    @property
    def past_key_values(self):
        """The key/value cache (named `past_key_values` before Transformers 5)."""
        return self.cache


class GenerateDecoderOnlyOutput(_CacheAlias, ModelOutput):
    sequences: Tensor = None
    scores: tuple | None = None
    logits: tuple | None = None
    attentions: tuple | None = None
    hidden_states: tuple | None = None
    cache: Any = None


class GenerateEncoderDecoderOutput(_CacheAlias, ModelOutput):
    sequences: Tensor = None
    scores: tuple | None = None
    logits: tuple | None = None
    encoder_attentions: tuple | None = None
    encoder_hidden_states: tuple | None = None
    decoder_attentions: tuple | None = None
    cross_attentions: tuple | None = None
    decoder_hidden_states: tuple | None = None
    cache: Any = None


class GenerateBeamDecoderOnlyOutput(_CacheAlias, ModelOutput):
    sequences: Tensor = None
    sequences_scores: Tensor | None = None
    scores: tuple | None = None
    logits: tuple | None = None
    beam_indices: Tensor | None = None
    attentions: tuple | None = None
    hidden_states: tuple | None = None
    cache: Any = None


class GenerateBeamEncoderDecoderOutput(_CacheAlias, ModelOutput):
    sequences: Tensor = None
    sequences_scores: Tensor | None = None
    scores: tuple | None = None
    logits: tuple | None = None
    beam_indices: Tensor | None = None
    encoder_attentions: tuple | None = None
    encoder_hidden_states: tuple | None = None
    decoder_attentions: tuple | None = None
    cross_attentions: tuple | None = None
    decoder_hidden_states: tuple | None = None
    cache: Any = None


def output_for(beam: bool, encoder_decoder: bool, sequences, cache=None, encoder_outputs=None, **fields):
    """The output object of a search; `attentions`/`hidden_states` become decoder_* for encoder-decoders."""
    if encoder_decoder:
        fields["decoder_attentions"] = fields.pop("attentions", None)
        fields["decoder_hidden_states"] = fields.pop("hidden_states", None)
        if encoder_outputs is not None:
            fields["encoder_attentions"] = encoder_outputs.get("attentions") if fields["decoder_attentions"] is not \
                None else None
            fields["encoder_hidden_states"] = encoder_outputs.get("hidden_states") if \
                fields["decoder_hidden_states"] is not None else None
        cls = GenerateBeamEncoderDecoderOutput if beam else GenerateEncoderDecoderOutput
    else:
        fields.pop("cross_attentions", None)
        cls = GenerateBeamDecoderOnlyOutput if beam else GenerateDecoderOnlyOutput
    return cls(sequences=sequences, cache=cache, **fields)


# names used by Transformers 4.x
GreedySearchDecoderOnlyOutput = SampleDecoderOnlyOutput = ContrastiveSearchDecoderOnlyOutput = \
    GenerateDecoderOnlyOutput
BeamSearchDecoderOnlyOutput = BeamSampleDecoderOnlyOutput = GenerateBeamDecoderOnlyOutput
