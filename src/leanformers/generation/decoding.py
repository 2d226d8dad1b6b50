"""One-sequence-per-row decoding loops: greedy / multinomial sampling, and contrastive search.

The growing inputs (token ids, attention mask, positions) live in buffers allocated once for the maximum length;
each step writes one column and hands the model views, so no step copies the whole history.
"""

from __future__ import annotations

import torch

from .compiled import compiled_decoding
from .inputs import cache_of
from .outputs import output_for


class GrowingInputs:
    """Token ids plus the model kwargs that grow by one column per forward pass (attention mask, positions).

    The mask and positions may be longer than the ids (a prompt given as inputs_embeds has no ids); `seen` counts
    their columns the next forward pass must see.
    """

    def __init__(self, model, input_ids, model_kwargs, max_length):
        self.kwargs = model_kwargs
        encoder_decoder = model._is_encoder_decoder
        self.cache_name = model._cache_argument()
        self.mask_key = "decoder_attention_mask" if encoder_decoder else "attention_mask"
        self.pos_key = "decoder_position_ids" if encoder_decoder else "position_ids"
        self.length = input_ids.shape[1]
        new_tokens = max((max_length or 0) - self.length, 1)
        self.ids = _buffer(input_ids, self.length + new_tokens, fill=0)
        mask, positions = model_kwargs.get(self.mask_key), model_kwargs.get(self.pos_key)
        self.mask = _buffer(mask, mask.shape[1] + new_tokens + 1, fill=1) if _is_2d(mask) else None
        self.positions = _position_buffer(positions, new_tokens + 1) if _is_2d(positions) else None
        prompt = mask if self.mask is not None else positions
        self.seen = prompt.shape[1] if prompt is not None and prompt.dim() == 2 else self.length

    @property
    def input_ids(self):
        return self.ids[:, :self.length]

    def append(self, tokens):
        """Add one token per row; returns the ids so far (a view)."""
        if self.length == self.ids.shape[1]:
            self.ids = torch.cat([self.ids, torch.zeros_like(self.ids)], dim=1)
        self.ids[:, self.length] = tokens
        self.length += 1
        return self.ids[:, :self.length]

    def after_forward(self, outputs):
        """Keep the returned cache; the next forward pass sees one more column of mask and positions."""
        cache = cache_of(outputs)
        if self.cache_name is not None and cache is not None:
            self.kwargs[self.cache_name] = cache
        self.seen += 1
        if self.mask is not None:
            if self.seen > self.mask.shape[1]:
                self.mask = torch.cat([self.mask, torch.ones_like(self.mask)], dim=1)
            self.kwargs[self.mask_key] = self.mask[:, :self.seen]
        if self.positions is not None:
            if self.seen > self.positions.shape[1]:
                self.positions = _position_buffer(self.positions, self.positions.shape[1])
            self.kwargs[self.pos_key] = self.positions[:, :self.seen]
        token_types = self.kwargs.get("token_type_ids")
        if token_types is not None:
            self.kwargs["token_type_ids"] = torch.cat([token_types, token_types[:, -1:]], dim=-1)

    def repeat_interleave(self, times: int):
        """Repeat each row of the model kwargs, not of the ids (contrastive search runs `top_k` candidates per
        row)."""
        for key, value in list(self.kwargs.items()):
            if isinstance(value, torch.Tensor) and key not in (self.mask_key, self.pos_key):
                self.kwargs[key] = value.repeat_interleave(times, dim=0)
        encoder_outputs = self.kwargs.get("encoder_outputs")
        for key, value in list(encoder_outputs.items()) if encoder_outputs is not None else ():
            if isinstance(value, torch.Tensor):
                encoder_outputs[key] = value.repeat_interleave(times, dim=0)
        if self.mask is not None:
            self.mask = self.mask.repeat_interleave(times, dim=0)
            self.kwargs[self.mask_key] = self.mask[:, :self.seen]
        if self.positions is not None:
            self.positions = self.positions.repeat_interleave(times, dim=0)
            self.kwargs[self.pos_key] = self.positions[:, :self.seen]


def _buffer(tensor, capacity, fill):
    buffer = tensor.new_full((tensor.shape[0], capacity), fill)
    buffer[:, :tensor.shape[1]] = tensor
    return buffer


def _position_buffer(positions, extra):
    """The positions followed by `extra` more, each one after the previous."""
    ahead = torch.arange(1, extra + 1, dtype=positions.dtype, device=positions.device)
    return torch.cat([positions, positions[:, -1:] + ahead], dim=1)


def _is_2d(tensor) -> bool:
    return isinstance(tensor, torch.Tensor) and tensor.dim() == 2


class Recorder:
    """The per-step tuples `return_dict_in_generate` asks for (scores, logits, attentions, hidden states)."""

    def __init__(self, generation_config, encoder_decoder: bool):
        on = bool(generation_config.return_dict_in_generate)
        self.encoder_decoder = encoder_decoder
        self.scores = () if on and generation_config.output_scores else None
        self.logits = () if on and generation_config.output_logits else None
        self.attentions = () if on and generation_config.output_attentions else None
        self.cross_attentions = () if on and generation_config.output_attentions and encoder_decoder else None
        self.hidden_states = () if on and generation_config.output_hidden_states else None

    def add(self, scores, logits, outputs):
        if self.scores is not None:
            self.scores += (scores,)
        if self.logits is not None:
            self.logits += (logits,)
        if self.attentions is not None:
            self.attentions += (outputs.get("decoder_attentions" if self.encoder_decoder else "attentions"),)
            if self.cross_attentions is not None:
                self.cross_attentions += (outputs.get("cross_attentions"),)
        if self.hidden_states is not None:
            key = "decoder_hidden_states" if self.encoder_decoder else "hidden_states"
            self.hidden_states += (outputs.get(key),)

    def fields(self) -> dict:
        return {"scores": self.scores, "logits": self.logits, "attentions": self.attentions,
                "cross_attentions": self.cross_attentions, "hidden_states": self.hidden_states}


def _final_output(model, sequences, recorder, generation_config, model_kwargs):
    if not generation_config.return_dict_in_generate:
        return sequences
    cache = model_kwargs.get(model._cache_argument()) if model._cache_argument() else None
    return output_for(False, model._is_encoder_decoder, sequences, cache=cache,
                      encoder_outputs=model_kwargs.get("encoder_outputs"), **recorder.fields())


def sample(self, input_ids, logits_processor, stopping_criteria, generation_config, synced_gpus=False,
           streamer=None, **model_kwargs):
    """Greedy decoding, or multinomial sampling when `do_sample`; one new token per row and step."""
    config = generation_config
    pad = config._pad_token_tensor
    has_eos = any(hasattr(c, "eos_token_id") for c in stopping_criteria)
    recorder = Recorder(config, self._is_encoder_decoder)
    state = GrowingInputs(self, input_ids, model_kwargs, config.max_length)
    unfinished = torch.ones(input_ids.shape[0], dtype=torch.long, device=input_ids.device)
    step_length = 1 if model_kwargs.get("use_cache", True) else None
    outputs = self._prefill(input_ids, config, model_kwargs)
    compiled = compiled_decoding(self, config, model_kwargs) if step_length else None
    finished = False
    while True:
        state.after_forward(outputs)
        if not (synced_gpus and finished):
            logits = outputs.logits[:, -1]
            logits = logits.to(copy=True, dtype=torch.float32, device=input_ids.device) \
                if recorder.logits is not None or logits.dtype != torch.float32 else logits
            scores = logits_processor(input_ids, logits) if logits_processor else logits
            recorder.add(scores, logits, outputs)
            if config.do_sample:
                next_tokens = torch.multinomial(scores.softmax(dim=-1), num_samples=1).squeeze(1)
            else:
                next_tokens = scores.argmax(dim=-1)
            if has_eos:  # finished rows keep receiving the pad token
                next_tokens = next_tokens * unfinished + pad * (1 - unfinished)
            input_ids = state.append(next_tokens)
            unfinished = unfinished & ~stopping_criteria(input_ids, recorder.scores)
            if streamer is not None:
                streamer.put(next_tokens.cpu())
            finished = bool(unfinished.max() == 0)
        del outputs
        if not self._has_unfinished_sequences(finished, synced_gpus, input_ids.device):
            break
        inputs = self.prepare_inputs_for_generation(input_ids, next_sequence_length=step_length, **model_kwargs)
        outputs = compiled(inputs) if compiled else self(**inputs, return_dict=True)
    if streamer is not None:
        streamer.end()
    return _final_output(self, input_ids.contiguous(), recorder, config, model_kwargs)


def contrastive_search(self, input_ids, logits_processor, stopping_criteria, generation_config, synced_gpus=False,
                       streamer=None, **model_kwargs):
    """Contrastive search: among the `top_k` likeliest tokens, pick the one that maximises
    (1 - penalty_alpha) * probability - penalty_alpha * (max cosine similarity to the context's hidden states)."""
    config = generation_config
    top_k, alpha, pad = config.top_k, config.penalty_alpha, config._pad_token_tensor
    has_eos = any(hasattr(c, "eos_token_id") for c in stopping_criteria)
    recorder = Recorder(config, self._is_encoder_decoder)
    batch = input_ids.shape[0]
    state = GrowingInputs(self, input_ids, model_kwargs, config.max_length)
    mask = model_kwargs.get(state.mask_key)
    similarity_mask = (mask if mask is not None else torch.ones_like(input_ids)).repeat_interleave(top_k, dim=0)
    model_kwargs.update(use_cache=True, output_hidden_states=True)
    if config.output_attentions:
        model_kwargs["output_attentions"] = True
    outputs = self._prefill(input_ids, config, model_kwargs)
    context = _last_hidden(self, outputs)                                   # (batch, seq, hidden)
    next_logits = outputs.logits[:, -1, :].to(copy=True, dtype=torch.float32, device=input_ids.device)
    state.after_forward(outputs)
    state.repeat_interleave(top_k)
    unfinished = torch.ones(batch, dtype=torch.long, device=input_ids.device)
    finished = False
    while True:
        scores = logits_processor(input_ids, next_logits) if logits_processor else next_logits
        top_probs, top_ids = torch.topk(scores.softmax(dim=-1), dim=-1, k=top_k)
        recorder.add(scores, next_logits, outputs)
        del outputs
        cache = model_kwargs[state.cache_name]
        _repeat_cache_rows(cache, top_k)
        candidates = self(**self.prepare_inputs_for_generation(top_ids.view(-1, 1), **model_kwargs), return_dict=True)
        hidden_states = candidates.get("decoder_hidden_states" if self._is_encoder_decoder else "hidden_states")
        chosen = _rank_candidates(context.repeat_interleave(top_k, dim=0), hidden_states[-1], top_probs,
                                  similarity_mask, alpha, top_k)
        similarity_mask = torch.cat([similarity_mask, similarity_mask.new_ones((similarity_mask.shape[0], 1))], -1)
        rows = torch.arange(batch, device=chosen.device)
        flat = chosen + rows * top_k
        next_tokens = top_ids[rows, chosen]
        context = torch.cat([context, hidden_states[-1].squeeze(1).view(batch, top_k, -1)[rows, chosen][:, None]], 1)
        selected_cache = cache_of(candidates)
        _select_cache_rows(selected_cache, flat)
        next_logits = candidates.logits[:, -1, :].float().view(batch, top_k, -1)[rows, chosen].to(input_ids.device)
        outputs = _chosen_outputs(self, candidates, selected_cache, flat)
        del candidates
        if not (synced_gpus and finished):
            if has_eos:
                next_tokens = next_tokens * unfinished + pad * (1 - unfinished)
            input_ids = state.append(next_tokens)
            if streamer is not None:
                streamer.put(next_tokens.cpu())
            unfinished = unfinished & ~stopping_criteria(input_ids, recorder.scores)
            finished = bool(unfinished.max() == 0)
        state.after_forward(outputs)  # the next candidates follow the token just appended
        if not self._has_unfinished_sequences(finished, synced_gpus, input_ids.device):
            break
    if streamer is not None:
        streamer.end()
    if config.return_dict_in_generate and model_kwargs.get(state.cache_name) is not None:
        model_kwargs[state.cache_name].crop(-1)  # drop the last candidate step, which no token followed
    return _final_output(self, input_ids.contiguous(), recorder, config, model_kwargs)


def _last_hidden(model, outputs):
    return outputs.get("decoder_hidden_states" if model._is_encoder_decoder else "hidden_states")[-1]


def _repeat_cache_rows(cache, times):
    if hasattr(cache, "batch_repeat_interleave"):
        cache.batch_repeat_interleave(times)
    else:
        cache.reorder_cache(torch.arange(cache_batch(cache)).repeat_interleave(times))


def _select_cache_rows(cache, index):
    if hasattr(cache, "batch_select_indices"):
        cache.batch_select_indices(index)
    else:
        cache.reorder_cache(index)


def cache_batch(cache) -> int:
    return cache.batch_size if hasattr(cache, "batch_size") else next(iter(cache))[0].shape[0]


def _rank_candidates(context, candidate, top_probs, mask, alpha, top_k):
    """Index (per row) of the candidate with the best contrastive score."""
    context = context / context.norm(dim=2, keepdim=True)
    candidate = candidate / candidate.norm(dim=2, keepdim=True)
    cosine = torch.matmul(context, candidate.transpose(1, 2)).squeeze(-1)   # (batch * top_k, seq)
    cosine = cosine + (1 - mask.to(cosine.dtype)) * torch.finfo(cosine.dtype).min
    penalty = cosine.max(dim=-1).values
    score = (1.0 - alpha) * top_probs.view(-1) - alpha * penalty
    return score.view(-1, top_k).max(dim=-1).indices


def _chosen_outputs(model, candidates, cache, flat):
    """The candidate outputs of the chosen tokens, as if only they had been run."""
    def pick(layers):
        return None if layers is None else tuple(layer[flat] for layer in layers)

    prefix = "decoder_" if model._is_encoder_decoder else ""
    fields = {"past_key_values": cache, f"{prefix}hidden_states": pick(candidates.get(f"{prefix}hidden_states")),
              f"{prefix}attentions": pick(candidates.get(f"{prefix}attentions"))}
    if model._is_encoder_decoder:
        fields["cross_attentions"] = pick(candidates.get("cross_attentions"))
    return {k: v for k, v in fields.items() if v is not None}


def reorder_cache(model, model_kwargs, beam_idx):
    """Reorder the key/value cache in `model_kwargs` along the beams chosen by `beam_idx` (in place)."""
    name = model._cache_argument()
    cache = model_kwargs.get(name) if name else None
    if cache is None:
        return
    if hasattr(model, "_reorder_cache"):
        model_kwargs[name] = model._reorder_cache(cache, beam_idx)
    elif hasattr(cache, "reorder_cache"):
        cache.reorder_cache(beam_idx)
    else:
        raise TypeError(f"{type(model).__name__}'s cache cannot be reordered, so beam search cannot use it.")
