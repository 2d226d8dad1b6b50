"""Input preparation of `generate()`: prompt ids, special tokens, attention mask, positions, lengths, cache.

These functions are methods of GenerationMixin (bound in its class body) and take the model as `self`.
"""

from __future__ import annotations

import inspect
import logging
import warnings

import torch

from ..errors import ConfigError

logger = logging.getLogger("leanformers")
_warned: set = set()


def _prepare_for_decoding(self, inputs, generation_config, model_kwargs, defaults, streamer):
    """Everything between the settings and the decoding loop -> (input_ids, inputs_tensor, model_kwargs)."""
    accepts = self._forward_parameters()
    has_mask = model_kwargs.get("attention_mask") is not None
    inputs_tensor, input_name, model_kwargs = self._prepare_model_inputs(
        inputs, generation_config.bos_token_id, model_kwargs)
    inputs_tensor, model_kwargs = _on_model_device(self, inputs_tensor, model_kwargs)
    batch_size = inputs_tensor.shape[0]
    self._prepare_special_tokens(generation_config, has_mask, device=inputs_tensor.device, batch_size=batch_size)
    encoder_decoder = self._is_encoder_decoder
    if not encoder_decoder:
        _warn_right_padding(generation_config, inputs_tensor, model_kwargs.get("attention_mask"))
        if input_name == "inputs_embeds":
            generation_config.use_cache = True
        if not has_mask and "attention_mask" in accepts:
            model_kwargs["attention_mask"] = self._prepare_attention_mask_for_generation(
                inputs_tensor, generation_config, model_kwargs)
        if model_kwargs.get("position_ids") is None and "position_ids" in accepts:
            model_kwargs["position_ids"] = self._prepare_position_ids_for_generation(inputs_tensor, model_kwargs)
        mask = model_kwargs.get("attention_mask")
        if mask is not None and mask.dim() == 2 and bool((mask == 1).all()):
            # no padding: the model can skip masking altogether
            generation_config._mask_length = mask.shape[1]
            model_kwargs["attention_mask"] = None
    elif has_mask and model_kwargs["attention_mask"].dim() > 2 and input_name == "input_ids":
        raise ConfigError("The attention_mask passed to generate() must be 2-D (batch, sequence).")
    if encoder_decoder:
        if model_kwargs.get("encoder_outputs") is None:
            model_kwargs = self._prepare_encoder_decoder_kwargs_for_generation(
                inputs_tensor, model_kwargs, input_name, generation_config)
        input_ids, model_kwargs = self._prepare_decoder_input_ids_for_generation(
            batch_size, input_name, model_kwargs, generation_config._decoder_start_token_tensor,
            inputs_tensor.device)
    else:
        input_ids = inputs_tensor if input_name == "input_ids" else model_kwargs.pop("input_ids")
    input_ids, model_kwargs = self._expand_inputs_for_generation(
        expand_size=max(generation_config.num_beams, generation_config.num_return_sequences),
        is_encoder_decoder=encoder_decoder, input_ids=input_ids, **model_kwargs)
    if streamer is not None:
        streamer.put(input_ids.cpu())
    length = input_ids.shape[1]
    self._prepare_generated_length(generation_config, defaults["max_length"], defaults["min_length"], input_name,
                                   inputs_tensor, length)
    if self._supports_logits_to_keep() and "logits_to_keep" not in model_kwargs:
        model_kwargs["logits_to_keep"] = 1  # the prompt's other positions need no logits
    self._validate_generated_length(generation_config, length, defaults["max_length"])
    max_cache_length = generation_config.max_length - 1
    if input_name == "inputs_embeds" and not encoder_decoder and inputs_tensor.shape[1] != length:
        max_cache_length += inputs_tensor.shape[1]
    self._prepare_cache_for_generation(generation_config, model_kwargs, batch_size, max_cache_length)
    return input_ids, inputs_tensor, model_kwargs


def _on_model_device(model, inputs_tensor, model_kwargs):
    """Prompt tensors moved once to the model's device (a prompt may come from the CPU)."""
    device = model.device
    if device.type == "meta" or inputs_tensor.device == device:
        return inputs_tensor, model_kwargs
    moved = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in model_kwargs.items()}
    return inputs_tensor.to(device), moved


def _warn_right_padding(generation_config, inputs_tensor, attention_mask):
    pad = generation_config._pad_token_tensor
    if pad is None or inputs_tensor.shape[0] < 2 or inputs_tensor.dim() != 2:
        return
    if attention_mask is not None and attention_mask.shape == inputs_tensor.shape:
        right = bool((attention_mask[:, -1] == 0).any())
    else:
        right = bool((inputs_tensor[:, -1] == pad).any())
    if right:
        logger.warning("A decoder-only model is generating from right-padded inputs; pad on the left "
                       "(tokenizer.padding_side = 'left') for correct results.")


def _prepare_model_inputs(self, inputs, bos_token_id, model_kwargs):
    """The main input (input_ids, inputs_embeds, ...) -> (tensor, its name, remaining kwargs)."""
    name = self.main_input_name
    encoder = getattr(self, "encoder", None)
    if self._is_encoder_decoder and encoder is not None and getattr(encoder, "main_input_name", name) != name:
        name = encoder.main_input_name
    given = model_kwargs.pop(name, None)
    if given is not None and inputs is not None:
        raise ConfigError(f"Pass the prompt either as `inputs` or as `{name}`, not both.")
    inputs = given if given is not None else inputs
    if name == "input_ids" and "inputs_embeds" in model_kwargs:
        if model_kwargs["inputs_embeds"] is None:
            model_kwargs.pop("inputs_embeds")
        elif not self._is_encoder_decoder:
            if "inputs_embeds" not in self._forward_parameters():
                raise ConfigError(f"{type(self).__name__}.forward() does not accept inputs_embeds.")
            model_kwargs["input_ids"] = self._maybe_initialize_input_ids_for_generation(
                inputs, bos_token_id, model_kwargs)
            inputs, name = model_kwargs["inputs_embeds"], "inputs_embeds"
        else:
            if inputs is not None:
                raise ConfigError("Pass either inputs_embeds or input_ids to generate(), not both.")
            inputs, name = model_kwargs.pop("inputs_embeds"), "inputs_embeds"
    inputs = self._maybe_initialize_input_ids_for_generation(inputs, bos_token_id, model_kwargs)
    return inputs, name, model_kwargs


def _maybe_initialize_input_ids_for_generation(self, inputs, bos_token_id, model_kwargs):
    """The prompt itself, or one BOS token per row when there is none."""
    if inputs is not None:
        return inputs
    encoder_outputs = model_kwargs.get("encoder_outputs")
    hidden = getattr(encoder_outputs, "last_hidden_state", None)
    if self._is_encoder_decoder and hidden is not None:
        return torch.full(hidden.shape[:-1], -100, dtype=torch.long, device=self.device)
    batch = next((v.shape[0] for v in model_kwargs.values() if isinstance(v, torch.Tensor)), 1)
    if "inputs_embeds" in model_kwargs:
        return torch.ones((batch, 0), dtype=torch.long, device=model_kwargs["inputs_embeds"].device)
    if bos_token_id is None:
        raise ConfigError("generate() got no input_ids and no bos_token_id to start from; pass a prompt or set "
                          "generation_config.bos_token_id.")
    return torch.full((batch, 1), int(bos_token_id), dtype=torch.long, device=self.device)


def _prepare_special_tokens(self, generation_config, kwargs_has_attention_mask=None, device=None, batch_size=None):
    """Special token ids as tensors on `device`, stored on the (per-call) config; pad falls back to EOS."""
    def as_tensor(token):
        if token is None:
            return None
        if isinstance(token, torch.Tensor):
            return token.to(device)
        return torch.tensor(token, device=device, dtype=torch.long)

    device = device if device is not None else self.device
    bos, eos = as_tensor(generation_config.bos_token_id), as_tensor(generation_config.eos_token_id)
    pad = as_tensor(generation_config.pad_token_id)
    start = as_tensor(generation_config.decoder_start_token_id)
    batched = batch_size is None or batch_size > 1
    if self._is_encoder_decoder and start is None:
        start = bos
    if eos is not None and eos.dim() == 0:
        eos = eos[None]
    if pad is None and eos is not None:
        if kwargs_has_attention_mask is False and batched:
            _warn_once("no-mask", "The attention mask and the pad token id were not set for a batch; pass the "
                                  "attention_mask of your inputs for reliable results.")
        pad = eos[0]
    if self._is_encoder_decoder and start is None:
        raise ConfigError("Encoder-decoder generation needs decoder_start_token_id or bos_token_id.")
    if eos is not None and (torch.is_floating_point(eos) or bool((eos < 0).any())):
        _warn_once("bad-eos", f"eos_token_id should be non-negative integers, but is {eos.tolist()}; generation "
                              f"will only stop at the maximum length.")
    generation_config._bos_token_tensor = bos
    generation_config._eos_token_tensor = eos
    generation_config._pad_token_tensor = pad
    generation_config._decoder_start_token_tensor = start


def _warn_once(key, message):
    if key not in _warned:
        _warned.add(key)
        logger.warning(message)


def _prepare_attention_mask_for_generation(self, inputs_tensor, generation_config, model_kwargs):
    """Ones, or `input_ids != pad` when the prompt holds pad tokens that cannot be EOS tokens."""
    pad, eos = generation_config._pad_token_tensor, generation_config._eos_token_tensor
    ids = model_kwargs.get("input_ids")
    if ids is not None and ids.shape[1] > 0:
        inputs_tensor = ids
    ones = torch.ones(inputs_tensor.shape[:2], dtype=torch.long, device=inputs_tensor.device)
    if pad is None or inputs_tensor.dim() != 2 or inputs_tensor.dtype not in (torch.int, torch.long):
        return ones
    has_pad = bool(torch.isin(inputs_tensor, pad).any())
    pad_is_eos = eos is not None and bool(torch.isin(eos, pad).any())
    return inputs_tensor.ne(pad).long() if has_pad and not pad_is_eos else ones


def _prepare_position_ids_for_generation(self, inputs_tensor, model_kwargs):
    """Positions counted over real tokens only (left padding starts at 0), after any cached tokens."""
    ids = model_kwargs.get("input_ids")
    if ids is not None and ids.shape[1] > 0:
        inputs_tensor = ids
    mask = model_kwargs.get("attention_mask")
    if mask is not None:
        return (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)
    past = 0
    cache = model_kwargs.get(self._cache_argument()) if self._cache_argument() else None
    if cache is not None:
        past = cache.get_seq_length()
    return torch.arange(inputs_tensor.shape[1] + past, dtype=torch.long, device=inputs_tensor.device)[None]


def _prepare_encoder_decoder_kwargs_for_generation(self, inputs_tensor, model_kwargs, model_input_name,
                                                   generation_config):
    """Run the encoder once and keep its output as `encoder_outputs`."""
    encoder = self.get_encoder()
    skip = ("decoder_", "cross_attn", "use_cache")
    kwargs = {k: v for k, v in model_kwargs.items() if not k.startswith(skip) and k not in (
        "logits_to_keep", "past_key_values", "cache")}
    params = set(inspect.signature(encoder.forward).parameters)
    if "kwargs" not in params and "model_kwargs" not in params:
        kwargs = {k: v for k, v in kwargs.items() if k in params}
    kwargs["output_attentions"] = generation_config.output_attentions
    kwargs["output_hidden_states"] = generation_config.output_hidden_states
    kwargs["return_dict"] = True
    kwargs[model_input_name or self.main_input_name] = inputs_tensor
    model_kwargs["encoder_outputs"] = encoder(**kwargs)
    return model_kwargs


def _prepare_decoder_input_ids_for_generation(self, batch_size, model_input_name, model_kwargs,
                                              decoder_start_token_id, device=None):
    """The decoder prompt: `decoder_input_ids` if given (with the start token put in front), else the start token."""
    given = model_kwargs.pop("decoder_input_ids", None)
    if given is None and model_input_name != "input_ids":
        given = model_kwargs.pop("input_ids", None)
    start = decoder_start_token_id
    if start.dim() == 1:
        if start.shape[0] != batch_size:
            raise ConfigError(f"decoder_start_token_id has {start.shape[0]} entries for a batch of {batch_size}.")
        start = start.view(-1, 1)
    else:
        start = torch.full((batch_size, 1), int(start), dtype=torch.long, device=device)
    if given is None:
        return start, model_kwargs
    if bool((given[:, 0] != start[:, 0]).all()):
        given = torch.cat([start, given], dim=-1)
        mask = model_kwargs.get("decoder_attention_mask")
        if mask is not None:
            model_kwargs["decoder_attention_mask"] = torch.cat([torch.ones_like(mask[:, :1]), mask], dim=-1)
    return given, model_kwargs


def _expand_inputs_for_generation(self, expand_size=1, is_encoder_decoder=False, input_ids=None, **model_kwargs):
    """Repeat every row `expand_size` times (beams, returned sequences), tensors in kwargs included."""
    if expand_size == 1:
        return input_ids, model_kwargs

    def expand(d):
        for key, value in d.items():
            if isinstance(value, torch.Tensor) and key != "cache_position":
                d[key] = value.repeat_interleave(expand_size, dim=1 if key == "position_ids" and value.dim() == 3
                                                 else 0)
        return d

    if input_ids is not None:
        input_ids = input_ids.repeat_interleave(expand_size, dim=0)
    model_kwargs = expand(model_kwargs)
    if is_encoder_decoder:
        if model_kwargs.get("encoder_outputs") is None:
            raise ConfigError("Encoder-decoder generation needs encoder_outputs.")
        expand(model_kwargs["encoder_outputs"])
    return input_ids, model_kwargs


def _prepare_generated_length(self, generation_config, has_default_max_length, has_default_min_length,
                              model_input_name, inputs_tensor, input_ids_length):
    """Turn max_new_tokens / min_new_tokens into absolute lengths (and the default 20 new tokens)."""
    config = generation_config
    from_embeds = (model_input_name == "inputs_embeds" and input_ids_length != inputs_tensor.shape[1]
                   and not self._is_encoder_decoder)
    if config.max_new_tokens is not None:
        if not has_default_max_length and config.max_length is not None:
            logger.warning(f"Both max_new_tokens (={config.max_new_tokens}) and max_length (={config.max_length}) "
                           f"are set; max_new_tokens takes precedence.")
        config.max_length = config.max_new_tokens + input_ids_length
    elif from_embeds and not has_default_max_length:
        config.max_length -= inputs_tensor.shape[1]
    elif has_default_max_length:
        config.max_length = config.max_length + input_ids_length
        limit = getattr(self.config, "max_position_embeddings", None)
        if limit is not None and limit > 0:  # XLNet's -1: no limit
            config.max_length = min(config.max_length, limit)
    if config.min_new_tokens is not None:
        if not has_default_min_length:
            logger.warning(f"Both min_new_tokens (={config.min_new_tokens}) and min_length (={config.min_length}) "
                           f"are set; min_new_tokens takes precedence.")
        config.min_length = config.min_new_tokens + input_ids_length
    elif from_embeds:
        config.min_length = max(config.min_length - inputs_tensor.shape[1], 0)
    return config


def _validate_generated_length(self, generation_config, input_ids_length, has_default_max_length):
    config = generation_config
    limit = self._hard_position_limit()
    if limit is not None and input_ids_length > limit:
        raise ConfigError(f"The prompt has {input_ids_length} tokens but {type(self).__name__} encodes at most "
                          f"{limit} positions (max_position_embeddings); truncate the prompt.")
    if limit is not None and config.max_length > limit:
        raise ConfigError(f"The prompt ({input_ids_length} tokens) plus the tokens to generate reach "
                          f"{config.max_length} positions, but {type(self).__name__} encodes at most {limit}; "
                          f"lower max_new_tokens to {limit - input_ids_length} or less.")
    if has_default_max_length and config.max_new_tokens is None:
        warnings.warn(f"Using the default max_length (={config.max_length}) to bound generation; set max_new_tokens "
                      f"to control how many tokens are generated.", UserWarning, stacklevel=3)
    if input_ids_length >= config.max_length:
        name = "decoder_input_ids" if self._is_encoder_decoder else "input_ids"
        raise ConfigError(f"Input length of {name} is {input_ids_length}, but max_length is set to "
                          f"{config.max_length}, so nothing can be generated. Set max_new_tokens instead, or raise "
                          f"max_length.")
    if config.min_length is not None and config.min_length > config.max_length:
        warnings.warn(f"min_length ({config.min_length}) is larger than the maximum length ({config.max_length}); "
                      f"generation will stop at the maximum length.", UserWarning, stacklevel=3)
    if config.min_new_tokens is not None and config.min_new_tokens + input_ids_length > config.max_length:
        warnings.warn(f"min_new_tokens ({config.min_new_tokens}) plus the prompt length ({input_ids_length}) is "
                      f"larger than the maximum length ({config.max_length}).", UserWarning, stacklevel=3)


def _prefill(self, input_ids, generation_config, model_kwargs, is_first_iteration=True):
    """The first forward pass over the prompt (only the tokens a given cache has not seen yet)."""
    next_len = None
    name = self._cache_argument()
    cache = model_kwargs.get(name) if name else None
    embeds = model_kwargs.get("inputs_embeds")
    use_embeds = not self._is_encoder_decoder and embeds is not None and is_first_iteration
    if cache is not None and cache.get_seq_length() > 0:
        past = cache.get_seq_length()
        if use_embeds:
            next_len = embeds.shape[1] - past
        else:
            mask = model_kwargs.get("decoder_attention_mask" if self._is_encoder_decoder else "attention_mask")
            mask_len = mask.shape[1] if mask is not None else getattr(generation_config, "_mask_length", -1)
            if mask_len == input_ids.shape[1]:
                next_len = input_ids.shape[1] - past
    inputs = self.prepare_inputs_for_generation(input_ids, next_sequence_length=next_len,
                                                is_first_iteration=is_first_iteration, **model_kwargs)
    return self(**inputs, return_dict=True)


def _update_model_kwargs_for_generation(self, outputs, model_kwargs, is_encoder_decoder=False, num_new_tokens=1):
    """After a step: keep the returned cache, and extend attention mask, positions and token types."""
    name = self._cache_argument()
    cache = cache_of(outputs)
    if name is not None and cache is not None:
        model_kwargs[name] = cache
    token_types = model_kwargs.get("token_type_ids")
    if token_types is not None:
        model_kwargs["token_type_ids"] = torch.cat([token_types, token_types[:, -num_new_tokens:]], dim=-1)
    pos_key = "decoder_position_ids" if is_encoder_decoder else "position_ids"
    positions = model_kwargs.get(pos_key)
    if positions is not None:
        step = torch.arange(1, num_new_tokens + 1, dtype=positions.dtype, device=positions.device)
        model_kwargs[pos_key] = torch.cat([positions, positions[..., -1:] + step], dim=-1)
    mask_key = "decoder_attention_mask" if is_encoder_decoder else "attention_mask"
    mask = model_kwargs.get(mask_key)
    if mask is not None:
        model_kwargs[mask_key] = torch.cat([mask, mask.new_ones((mask.shape[0], num_new_tokens))], dim=-1)
    return model_kwargs


def cache_of(outputs):
    """The key/value cache a forward() returned, whatever its field name (XLNet's memory: `mems`)."""
    cache = outputs.get("past_key_values") if hasattr(outputs, "get") else None
    if cache is None and hasattr(outputs, "get"):
        cache = outputs.get("cache")
        if cache is None:
            cache = outputs.get("mems")
    return cache


def new_cache(model, generation_config, batch_size, max_cache_length):
    """The cache a generation starts from: a StaticCache when asked for, else a DynamicCache."""
    from .. import cache as caches

    implementation = generation_config.cache_implementation
    if implementation == "quantized":
        raise ConfigError("cache_implementation='quantized' is not supported; use 'dynamic' or 'static'.")
    if implementation in ("static", "offloaded_static", "sliding_window", "hybrid_chunked"):
        length = max(max_cache_length, generation_config.max_cache_len or 0)
        rows = max(generation_config.num_beams, generation_config.num_return_sequences) * batch_size
        return caches.StaticCache(config=model.config, max_cache_len=length, max_batch_size=rows)
    return caches.DynamicCache(config=model.config)
