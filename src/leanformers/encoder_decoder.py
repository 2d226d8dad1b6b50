"""EncoderDecoderModel: any encoder of the library and any decoder that cross-attends (e.g. BERT -> BERT), joined
into one sequence-to-sequence model; weights under `encoder.*` and `decoder.*`, both configs nested in config.json.

It sits beside auto.py because its parts are chosen by model_type from the registry. A decoder that keeps a
key/value cache (BERT, RoBERTa, BertGeneration) reads one new token per generation step; one that keeps none
(ELECTRA) reruns the tokens generated so far, which gives the same tokens."""

from __future__ import annotations

import inspect

import torch
from torch import nn
from torch.nn import functional as F

from .auto import AutoConfig, AutoModel, AutoModelForCausalLM
from .configuration import PretrainedConfig
from .errors import ConfigError
from .generation.utils import GenerationMixin
from .layers import nested_tied_pairs, shift_tokens_right
from .modeling import PreTrainedModel
from .outputs import Seq2SeqLMOutput, as_encoder_output, pack

_DECODER_ROLE = {"is_decoder": True, "add_cross_attention": True}


def _sub_config(value, role: dict) -> PretrainedConfig:
    """A nested config: kept when given as a config, built by its model_type from a dict, BERT when absent."""
    if isinstance(value, PretrainedConfig):
        return value
    values = dict(value) if value is not None else {"model_type": "bert", **role}
    return AutoConfig.for_model(values.pop("model_type", "bert"), **values)


class EncoderDecoderConfig(PretrainedConfig):
    """The top-level config: `encoder` and `decoder` configs plus the token ids the decoder starts and pads with."""

    model_type = "encoder-decoder"
    defaults = dict(decoder_start_token_id=None, is_encoder_decoder=True)

    def __init__(self, encoder=None, decoder=None, **kwargs):
        super().__init__(**kwargs)
        self.encoder = _sub_config(encoder, {})
        self.decoder = _sub_config(decoder, _DECODER_ROLE)
        self.is_encoder_decoder = True

    @classmethod
    def from_encoder_decoder_configs(cls, encoder_config, decoder_config, **kwargs):
        """Join two configs; the decoder's is switched to a cross-attending decoder."""
        for key, value in _DECODER_ROLE.items():
            setattr(decoder_config, key, value)
        return cls(encoder=encoder_config.to_dict(), decoder=decoder_config.to_dict(), **kwargs)

    def to_dict(self):
        out = super().to_dict()
        for part in ("encoder", "decoder"):
            out[part] = getattr(self, part).to_dict()
            out[part].pop("leanformers_version", None)  # one version key per file, at the top
        return out


class EncoderDecoderModel(PreTrainedModel, GenerationMixin):
    """`encoder` (a base model) and `decoder` (a causal LM that cross-attends), with `enc_to_dec_proj` between them
    when their widths differ."""

    config_class = EncoderDecoderConfig
    base_model_prefix = "encoder_decoder"
    main_input_name = "input_ids"

    def __init__(self, config=None, encoder=None, decoder=None):
        if config is None:
            if encoder is None or decoder is None:
                raise ConfigError("EncoderDecoderModel needs a config, or both an encoder and a decoder.")
            config = EncoderDecoderConfig.from_encoder_decoder_configs(encoder.config, decoder.config)
        elif not isinstance(config, EncoderDecoderConfig):
            raise ConfigError(f"EncoderDecoderModel needs an EncoderDecoderConfig, got {type(config).__name__}.")
        super().__init__(config)
        self.encoder = encoder if encoder is not None else AutoModel.from_config(config.encoder)
        self.decoder = decoder if decoder is not None else AutoModelForCausalLM.from_config(config.decoder)
        self.encoder.config, self.decoder.config = config.encoder, config.decoder  # one config object per part
        self._check_parts()
        if self._needs_projection():
            self.enc_to_dec_proj = nn.Linear(config.encoder.hidden_size, config.decoder.hidden_size)
            if not self.enc_to_dec_proj.weight.is_meta:
                self._init_weights(self.enc_to_dec_proj)
        self._keys_to_ignore_on_load_unexpected = (*self.encoder._keys_to_ignore_on_load_unexpected,
                                                   *self.decoder._keys_to_ignore_on_load_unexpected)
        self.tie_weights()

    def _check_parts(self):
        if self.encoder.get_output_embeddings() is not None:
            raise ConfigError(f"The encoder {type(self.encoder).__name__} has a language-model head; use its base "
                              f"model (AutoModel) as the encoder.")
        if "encoder_hidden_states" not in inspect.signature(self.decoder.forward).parameters:
            raise ConfigError(f"The decoder {type(self.decoder).__name__} cannot attend to an encoder "
                              f"(its forward() takes no encoder_hidden_states); pick a decoder that cross-attends.")
        cross = getattr(self.config.decoder, "cross_attention_hidden_size", None)
        if cross is not None and cross != self.config.encoder.hidden_size:
            raise ConfigError(f"The decoder's cross_attention_hidden_size ({cross}) must equal the encoder's "
                              f"hidden_size ({self.config.encoder.hidden_size}).")

    def _needs_projection(self) -> bool:
        config = self.config
        return (config.encoder.hidden_size != config.decoder.hidden_size
                and getattr(config.decoder, "cross_attention_hidden_size", None) is None)

    @torch.no_grad()
    def _init_weights(self, module):
        for part in (self.encoder, self.decoder):
            if any(m is module for m in part.modules()):
                return part._init_weights(module)
        return super()._init_weights(module)

    # ------------------------------------------------------------------ parts and embeddings
    def get_encoder(self):
        return self.encoder

    def get_decoder(self):
        return self.decoder

    def get_input_embeddings(self):
        return self.encoder.get_input_embeddings()

    def get_output_embeddings(self):
        return self.decoder.get_output_embeddings()

    def set_output_embeddings(self, new_embeddings):
        return self.decoder.set_output_embeddings(new_embeddings)

    def tied_weight_pairs(self) -> dict[str, str]:
        return nested_tied_pairs(self, {})  # the parts' own ties, e.g. the decoder's LM head and embeddings

    def resize_token_embeddings(self, *args, **kwargs):
        raise NotImplementedError("Resize the embeddings of each part instead: model.encoder.resize_token_embeddings"
                                  "(...) and model.decoder.resize_token_embeddings(...).")

    # ------------------------------------------------------------------ loading two pretrained parts
    @classmethod
    def from_encoder_decoder_pretrained(cls, encoder_pretrained_model_name_or_path=None,
                                        decoder_pretrained_model_name_or_path=None, *model_args, **kwargs):
        """An encoder (AutoModel) and a decoder (AutoModelForCausalLM, switched to a cross-attending decoder whose
        new cross-attention weights are initialised and reported) from two checkpoints. Keywords prefixed
        `encoder_` / `decoder_` go to that part (`encoder_model=` / `decoder_model=` pass a model), the others
        to the joint config."""
        parts = {"encoder": {}, "decoder": {}}
        for key in list(kwargs):
            part, _, name = key.partition("_")
            if part in parts and name:
                parts[part][name] = kwargs.pop(key)
        encoder = parts["encoder"].pop("model", None)
        if encoder is None:
            encoder = _load_part(AutoModel, encoder_pretrained_model_name_or_path, "encoder", parts["encoder"],
                                 {"is_decoder": False, "add_cross_attention": False}, model_args)
        decoder = parts["decoder"].pop("model", None)
        if decoder is None:
            decoder = _load_part(AutoModelForCausalLM, decoder_pretrained_model_name_or_path, "decoder",
                                 parts["decoder"], _DECODER_ROLE, ())
        config = EncoderDecoderConfig.from_encoder_decoder_configs(encoder.config, decoder.config, **kwargs)
        return cls(config=config, encoder=encoder, decoder=decoder)

    # ------------------------------------------------------------------ forward
    def forward(self, input_ids=None, attention_mask=None, decoder_input_ids=None, decoder_attention_mask=None,
                encoder_outputs=None, past_key_values=None, inputs_embeds=None, decoder_inputs_embeds=None,
                labels=None, use_cache=None, output_attentions=None, output_hidden_states=None, return_dict=None,
                cache=None, **kwargs):
        """Keywords prefixed `decoder_` go to the decoder (unprefixed), the others to the encoder. With labels and
        no decoder inputs, the decoder reads the labels shifted right; the loss compares the logits with the labels
        position by position."""
        flags = dict(output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                     return_dict=True)
        decoder_kwargs = {k[len("decoder_"):]: v for k, v in kwargs.items() if k.startswith("decoder_")}
        encoder_kwargs = {k: v for k, v in kwargs.items() if not k.startswith("decoder_")}
        if "num_items_in_batch" in encoder_kwargs:
            encoder_kwargs.pop("num_items_in_batch")
        if encoder_outputs is None:
            encoder_outputs = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                                           inputs_embeds=inputs_embeds, **encoder_kwargs, **flags)
        encoder_outputs = as_encoder_output(encoder_outputs)
        hidden = encoder_outputs.last_hidden_state
        if hasattr(self, "enc_to_dec_proj"):
            hidden = self.enc_to_dec_proj(hidden)
        if labels is not None and decoder_input_ids is None and decoder_inputs_embeds is None:
            decoder_input_ids = self.prepare_decoder_input_ids_from_labels(labels)
            if decoder_attention_mask is None:
                decoder_attention_mask = decoder_input_ids.ne(self.config.pad_token_id).to(decoder_input_ids.dtype)
        past = cache if cache is not None else past_key_values
        if past is not None:  # only a decoder that keeps a cache is handed one
            decoder_kwargs["past_key_values"] = past
        out = self.decoder(input_ids=decoder_input_ids, attention_mask=decoder_attention_mask,
                           encoder_hidden_states=hidden, encoder_attention_mask=attention_mask,
                           inputs_embeds=decoder_inputs_embeds, use_cache=use_cache, **decoder_kwargs, **flags)
        loss = None
        if labels is not None:
            logits = out.logits
            loss = F.cross_entropy(logits.reshape(-1, self.decoder.config.vocab_size), labels.view(-1))
        return pack(Seq2SeqLMOutput, return_dict, self.config, loss=loss, logits=out.logits,
                    past_key_values=out.get("past_key_values"), decoder_hidden_states=out.hidden_states,
                    decoder_attentions=out.attentions, cross_attentions=out.get("cross_attentions"),
                    encoder_last_hidden_state=encoder_outputs.last_hidden_state,
                    encoder_hidden_states=encoder_outputs.hidden_states,
                    encoder_attentions=encoder_outputs.attentions)

    def prepare_decoder_input_ids_from_labels(self, labels):
        """The decoder inputs for `labels`: decoder_start_token_id, then the labels moved right (-100 -> pad)."""
        return shift_tokens_right(labels, self.config.pad_token_id, self.config.decoder_start_token_id)

    # ------------------------------------------------------------------ generation
    def _decoder_caches(self) -> bool:
        """Whether the decoder keeps a key/value cache between generation steps."""
        argument = getattr(self.decoder, "_cache_argument", None)
        return argument is not None and argument() is not None

    def _cache_argument(self):
        return "past_key_values" if self._decoder_caches() else None

    def prepare_inputs_for_generation(self, input_ids, next_sequence_length=None, **kwargs):
        if not self._decoder_caches():  # no cache: the decoder reads every token generated so far
            next_sequence_length = None
        return super().prepare_inputs_for_generation(input_ids, next_sequence_length, **kwargs)


def _load_part(auto_class, path, part: str, kwargs: dict, role: dict, model_args):
    """One part from its checkpoint, its config switched to the `role` (encoder or cross-attending decoder)."""
    if path is None:
        raise ConfigError(f"Pass the {part} checkpoint ({part}_pretrained_model_name_or_path) or a {part} model "
                          f"({part}_model=...).")
    config = kwargs.pop("config", None)
    if config is None:
        config, kwargs = AutoConfig.from_pretrained(path, return_unused_kwargs=True, **kwargs)
    for key, value in role.items():
        setattr(config, key, value)
    return auto_class.from_pretrained(path, *model_args, config=config, **kwargs)
