"""GenerationMixin: `generate()` for any model whose forward() returns logits and a key/value cache.

A causal LM gets `generate()` by inheriting the mixin (`class GPT2LMHeadModel(GPT2PreTrainedModel,
GenerationMixin)`). Per-model variation is kept to a few overridable methods:

- `prepare_inputs_for_generation(input_ids, next_sequence_length=None, **model_kwargs)` -> forward() kwargs
- `_reorder_cache(cache, beam_idx)` (optional; by default the cache's own `reorder_cache` is used)
- `_prepare_cache_for_generation(...)` (which cache object generation starts from)
"""

from __future__ import annotations

import copy
import inspect

import torch

from ..errors import ConfigError
from .config import GenerationConfig, GenerationMode
from .outputs import (GenerateBeamDecoderOnlyOutput, GenerateBeamEncoderDecoderOutput, GenerateDecoderOnlyOutput,
                      GenerateEncoderDecoderOutput)
from .logits_process import LogitsProcessorList
from .processors_setup import build_logits_processor, build_stopping_criteria
from .stopping_criteria import StoppingCriteriaList

# keyword arguments every forward() understands without declaring them
_COMMON_MODEL_KWARGS = {"output_attentions", "output_hidden_states", "return_dict", "use_cache"}
_CACHE_NAMES = ("past_key_values", "cache")

__all__ = ["GenerationMixin", "GenerateDecoderOnlyOutput", "GenerateEncoderDecoderOutput",
           "GenerateBeamDecoderOnlyOutput", "GenerateBeamEncoderDecoderOutput"]


class GenerationMixin:
    """Adds `generate()` (greedy, sampling, beam search, beam sampling, diverse beam search, contrastive search,
    constrained beam search) to a model class."""

    from .decoding import contrastive_search as _contrastive_search
    from .decoding import sample as _sample
    from .beam_search import beam_search as _beam_search
    from .beam_search import constrained_beam_search as _constrained_beam_search
    from .beam_search import group_beam_search as _group_beam_search

    _DECODING = {
        GenerationMode.GREEDY_SEARCH: "_sample", GenerationMode.SAMPLE: "_sample",
        GenerationMode.BEAM_SEARCH: "_beam_search", GenerationMode.BEAM_SAMPLE: "_beam_search",
        GenerationMode.GROUP_BEAM_SEARCH: "_group_beam_search",
        GenerationMode.CONSTRAINED_BEAM_SEARCH: "_constrained_beam_search",
        GenerationMode.CONTRASTIVE_SEARCH: "_contrastive_search",
    }

    @classmethod
    def can_generate(cls) -> bool:
        return True

    @property
    def generation_config(self) -> GenerationConfig:
        """The model's default generation settings (from generation_config.json, else from its config)."""
        config = self.__dict__.get("_generation_config")
        if config is None:
            config = GenerationConfig.from_model_config(self.config)
            self.__dict__["_generation_config"] = config
        return config

    @generation_config.setter
    def generation_config(self, value: GenerationConfig):
        self.__dict__["_generation_config"] = value

    # ------------------------------------------------------------------ facts about forward(), cached per class
    @classmethod
    def _forward_parameters(cls) -> frozenset:
        cached = cls.__dict__.get("_generation_forward_parameters")
        if cached is None:
            cached = frozenset(inspect.signature(cls.forward).parameters)
            cls._generation_forward_parameters = cached
        return cached

    def _cache_argument(self) -> str | None:
        """The name forward() gives its key/value cache argument ("past_key_values" or "cache")."""
        params = self._forward_parameters()
        return next((name for name in _CACHE_NAMES if name in params), None)

    def _supports_logits_to_keep(self) -> bool:
        return "logits_to_keep" in self._forward_parameters()

    @property
    def _is_encoder_decoder(self) -> bool:
        return bool(getattr(self.config, "is_encoder_decoder", False))

    # ------------------------------------------------------------------ per-model hooks
    def prepare_inputs_for_generation(self, input_ids, next_sequence_length=None, attention_mask=None,
                                      inputs_embeds=None, is_first_iteration=False, **kwargs):
        """forward() kwargs for one step: the last `next_sequence_length` tokens (all when None), their positions,
        the attention mask over everything seen so far, the cache and every other model kwarg."""
        encoder_decoder = self._is_encoder_decoder
        ids_key = "decoder_input_ids" if encoder_decoder else "input_ids"
        inputs = {}
        if inputs_embeds is not None and is_first_iteration and not encoder_decoder:
            embeds = inputs_embeds if next_sequence_length is None else inputs_embeds[:, -next_sequence_length:]
            inputs[ids_key], inputs["inputs_embeds"] = None, embeds
            seq_len = embeds.shape[1]
        else:
            ids = input_ids if next_sequence_length is None else input_ids[:, -next_sequence_length:]
            inputs[ids_key], seq_len = ids, ids.shape[1]
        for name in ("decoder_position_ids" if encoder_decoder else "position_ids", "token_type_ids"):
            value = kwargs.pop(name, None)
            if value is not None:
                inputs[name] = value if value.shape[-1] == seq_len else value[..., -seq_len:]
        if encoder_decoder:
            decoder_mask = kwargs.pop("decoder_attention_mask", None)
            if decoder_mask is not None:
                inputs["decoder_attention_mask"] = decoder_mask
        if attention_mask is not None:
            inputs["attention_mask"] = attention_mask
        for key, value in kwargs.items():
            if key not in inputs and key not in ("labels", "next_sequence_length"):
                inputs[key] = value
        return inputs

    def _hard_position_limit(self) -> int | None:
        """How many positions the model can encode at all: the rows of a learned position table whose size is
        max_position_embeddings (GPT-2 style), else None (rotary models extrapolate)."""
        limit = getattr(self.config, "max_position_embeddings", None)
        if limit is None or self._is_encoder_decoder:
            return None
        for name, module in self.named_modules():
            if isinstance(module, torch.nn.Embedding) and module.num_embeddings == limit and (
                    "pos" in name or name.endswith("wpe")):
                return limit
        return None

    def _prepare_cache_for_generation(self, generation_config, model_kwargs, batch_size, max_cache_length):
        """Put the cache generation starts from into `model_kwargs` (a user's, a static one, or a dynamic one)."""
        name = self._cache_argument()
        if name is None or generation_config.use_cache is False:
            return
        if model_kwargs.get(name) is not None:
            if generation_config.cache_implementation is not None:
                raise ConfigError("Pass either a cache object or cache_implementation to generate(), not both.")
            if isinstance(model_kwargs[name], tuple):
                raise ConfigError("A tuple of key/value tensors is not a cache; pass a Cache object (e.g. "
                                  "leanformers.cache.DynamicCache) or nothing.")
            return
        from .inputs import new_cache

        cache = new_cache(self, generation_config, batch_size, max_cache_length)
        if cache is not None:
            model_kwargs[name] = cache

    # ------------------------------------------------------------------ generate
    @torch.no_grad()
    def generate(self, inputs=None, generation_config=None, logits_processor=None, stopping_criteria=None,
                 prefix_allowed_tokens_fn=None, synced_gpus=None, assistant_model=None, streamer=None,
                 negative_prompt_ids=None, negative_prompt_attention_mask=None, custom_generate=None, **kwargs):
        """Generate token ids; see GenerationConfig for the settings that can also be passed as keywords.

        Returns a LongTensor (batch * num_return_sequences, length), or a Generate*Output when
        `return_dict_in_generate=True`. With `batch_invariant=True` each row's result is bitwise the one it has
        alone (see generation/batch_invariant.py).
        """
        if kwargs.pop("batch_invariant", False):
            from .batch_invariant import batch_invariant

            with batch_invariant():
                return self.generate(inputs, generation_config, logits_processor, stopping_criteria,
                                     prefix_allowed_tokens_fn, synced_gpus, assistant_model, streamer,
                                     negative_prompt_ids, negative_prompt_attention_mask, custom_generate, **kwargs)
        tokenizer = kwargs.pop("tokenizer", None)
        kwargs.pop("assistant_tokenizer", None)
        self._refuse_unsupported(kwargs, custom_generate, assistant_model, negative_prompt_ids)
        self._rename_cache_kwarg(kwargs)
        own = self._own_generation_config()
        # lengths nobody set get the library default (20 new tokens) rather than an absolute limit
        defaults = {name: kwargs.get(name) is None and getattr(generation_config, name, None) is None
                    and getattr(own, name) is None for name in ("max_length", "min_length")}
        generation_config, model_kwargs = self._prepare_generation_config(generation_config, **kwargs)
        mode = generation_config.get_generation_mode()
        self._validate_model_kwargs(model_kwargs.copy())
        self._validate_generation_mode(mode, generation_config, streamer)
        setup = self._prepare_for_decoding(inputs, generation_config, model_kwargs, defaults, streamer)
        input_ids, inputs_tensor, model_kwargs = setup
        processors = build_logits_processor(
            self, generation_config, input_ids_seq_length=input_ids.shape[1], encoder_input_ids=inputs_tensor,
            prefix_allowed_tokens_fn=prefix_allowed_tokens_fn,
            logits_processor=logits_processor or LogitsProcessorList(), device=inputs_tensor.device,
            model_kwargs=model_kwargs)
        criteria = build_stopping_criteria(self, generation_config, stopping_criteria or StoppingCriteriaList(),
                                           tokenizer=tokenizer)
        model_kwargs["use_cache"] = generation_config.use_cache
        if callable(custom_generate):
            return custom_generate(self, input_ids, logits_processor=processors, stopping_criteria=criteria,
                                   generation_config=generation_config, synced_gpus=bool(synced_gpus),
                                   streamer=streamer, **model_kwargs)
        decode = getattr(self, self._DECODING[mode])
        return decode(input_ids, logits_processor=processors, stopping_criteria=criteria,
                      generation_config=generation_config, synced_gpus=bool(synced_gpus), streamer=streamer,
                      **model_kwargs)

    def _refuse_unsupported(self, kwargs, custom_generate, assistant_model, negative_prompt_ids):
        if kwargs.pop("trust_remote_code", False) or isinstance(custom_generate, str):
            raise ConfigError("custom_generate repositories and trust_remote_code are not supported: leanformers "
                              "never runs code from the hub. Pass a callable as custom_generate instead.")
        if assistant_model is not None or kwargs.get("prompt_lookup_num_tokens") is not None:
            raise ConfigError("Assisted generation (assistant_model / prompt_lookup_num_tokens) is not supported.")
        if negative_prompt_ids is not None or kwargs.get("guidance_scale") not in (None, 1, 1.0):
            raise ConfigError("Classifier-free guidance (guidance_scale / negative_prompt_ids) is not supported.")
        if kwargs.get("cache_implementation") == "paged":
            raise ConfigError("cache_implementation='paged' (continuous batching) is not supported.")

    def _rename_cache_kwarg(self, kwargs):
        """Accept the cache as `past_key_values` (Transformers 4) or `cache` (Transformers 5)."""
        target = self._cache_argument()
        for name in _CACHE_NAMES:
            if name != target and name in kwargs and target is not None:
                value = kwargs.pop(name)
                if value is not None:
                    kwargs[target] = value

    def _own_generation_config(self) -> GenerationConfig:
        own = self.generation_config
        if own is None:  # explicitly set to None: fall back to the model config again
            own = self.generation_config = GenerationConfig.from_model_config(self.config)
        return own

    def _prepare_generation_config(self, generation_config, **kwargs):
        """A copy of the given (or the model's) generation config with kwargs applied -> (config, model kwargs)."""
        own = self._own_generation_config()
        provided = generation_config is not None
        generation_config = copy.deepcopy(generation_config if provided else GenerationConfig())
        generation_config.update(**own.to_dict(), defaults_only=True, allow_custom_entries=True)
        generation_config.update(**GenerationConfig.default_params(), defaults_only=True)
        model_kwargs = generation_config.update(**kwargs)
        if generation_config.cache_implementation == "hybrid":
            generation_config.cache_implementation = None
        for flag in ("output_attentions", "output_hidden_states"):
            if getattr(generation_config, flag):
                model_kwargs[flag] = True
        return generation_config, model_kwargs

    def _validate_model_kwargs(self, model_kwargs):
        """Refuse keyword arguments that are neither generation settings nor forward() arguments (e.g. typos)."""
        if self._is_encoder_decoder:
            model_kwargs.pop("decoder_input_ids", None)
        allowed = set(inspect.signature(self.prepare_inputs_for_generation).parameters)
        if "kwargs" in allowed or "model_kwargs" in allowed:
            allowed |= self._forward_parameters()
        if self._is_encoder_decoder:
            allowed |= self._encoder_decoder_parameters()
        allowed |= _COMMON_MODEL_KWARGS | {"encoder_outputs"}
        unused = [key for key, value in model_kwargs.items() if value is not None and key not in allowed]
        if unused:
            raise ConfigError(f"The following `model_kwargs` are not used by the model: {unused} (note: typos in the "
                              f"generate arguments will also show up in this list). They are neither settings of "
                              f"GenerationConfig nor arguments of {type(self).__name__}.forward().")

    def _encoder_decoder_parameters(self) -> set:
        names = set()
        base = getattr(self, self.base_model_prefix, None) if getattr(self, "base_model_prefix", "") else None
        for part in ("encoder", "decoder"):
            module = getattr(self, part, None) or getattr(base, part, None)
            if module is not None:
                params = set(inspect.signature(module.forward).parameters)
                names |= params if part == "encoder" else {f"decoder_{p}" for p in params}
        return names

    def _validate_generation_mode(self, mode, generation_config, streamer):
        if streamer is not None and mode not in (GenerationMode.GREEDY_SEARCH, GenerationMode.SAMPLE,
                                                 GenerationMode.CONTRASTIVE_SEARCH):
            raise ConfigError("A streamer works with greedy decoding, sampling and contrastive search only; set "
                              "num_beams=1 to stream.")
        if mode == GenerationMode.CONTRASTIVE_SEARCH and generation_config.use_cache is False:
            raise ConfigError("Contrastive search requires use_cache=True.")
        if mode == GenerationMode.GROUP_BEAM_SEARCH and not generation_config.diversity_penalty:
            raise ConfigError("Diverse beam search (num_beam_groups > 1) needs diversity_penalty > 0.0, otherwise "
                              "every group finds the same beams.")

    from .inputs import (_expand_inputs_for_generation, _maybe_initialize_input_ids_for_generation,
                         _prepare_attention_mask_for_generation, _prepare_decoder_input_ids_for_generation,
                         _prepare_encoder_decoder_kwargs_for_generation, _prepare_for_decoding,
                         _prepare_generated_length, _prepare_model_inputs, _prepare_position_ids_for_generation,
                         _prepare_special_tokens, _prefill, _update_model_kwargs_for_generation,
                         _validate_generated_length)

    def _has_unfinished_sequences(self, this_peer_finished: bool, synced_gpus: bool, device) -> bool:
        """False once this process is done (and, with synced_gpus, every other process too)."""
        if synced_gpus:
            flag = torch.tensor(0.0 if this_peer_finished else 1.0, device=device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.SUM)
            return flag.item() != 0.0
        return not this_peer_finished

    def compute_transition_scores(self, sequences, scores, beam_indices=None, normalize_logits: bool = False):
        """Score of each generated token (its log-probability for beam search) -> (batch, generated length)."""
        rows, vocab = scores[0].shape
        if beam_indices is None:
            beam_indices = torch.arange(rows, device=sequences.device).view(-1, 1).expand(-1, len(scores))
        stacked = torch.stack(scores).reshape(len(scores), -1).transpose(0, 1)  # (rows * vocab, steps)
        if normalize_logits:
            stacked = torch.log_softmax(stacked.reshape(-1, vocab, stacked.shape[-1]), dim=1)
            stacked = stacked.reshape(-1, stacked.shape[-1])
        missing = beam_indices < 0
        length = int((~missing).long().sum(-1).max())
        beam_indices = beam_indices[:, :length].clone()
        missing = missing[:, :length]
        beam_indices[missing] = 0
        index = sequences[:, sequences.shape[-1] - length:] + beam_indices * vocab
        out = stacked.gather(0, index)
        out[missing] = 0
        return out
