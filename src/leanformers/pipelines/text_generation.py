"""text-generation: continue a prompt (or answer a chat) with a causal language model.

Generation settings follow transformers 5: the call's keywords (and those given at construction) win, then the
model's generation config; the pipeline's defaults (max_new_tokens=256, do_sample=True, temperature=0.7) fill only
what neither set, and sampling defaults are dropped when sampling is off.
"""

from __future__ import annotations

import copy
import enum

import torch

from ..generation.config import FIELDS
from .base import Chat, Pipeline, require_text
from .errors import PipelineInputError
from .text2text_generation import eos_list, generate_quietly, trim_finished

_SAMPLING_PARAMS = {"temperature", "top_k", "top_p", "min_p", "top_h", "typical_p", "epsilon_cutoff", "eta_cutoff"}
# An article put before every prompt of XLNet and Transformer-XL, which continue short prompts poorly without more
# text to attend to (as transformers 4.x does: https://github.com/rusiaaman/XLNet-gen#methodology).
XL_PREFIX_MODEL_TYPES = ("xlnet", "transfo-xl")
XL_PREFIX = (
    "\n    In 1991, the remains of Russian Tsar Nicholas II and his family (except for Alexei and Maria) are"
    " discovered. The\n    voice of Nicholas's young son, Tsarevich Alexei Nikolaevich, narrates the remainder of"
    " the story. 1883 Western\n    Siberia, a young Grigori Rasputin is asked by his father and a group of men to"
    " perform magic. Rasputin has a vision\n    and denounces one of the men as a horse thief. Although his"
    " father initially slaps him for making such an\n    accusation, Rasputin watches as the man is chased"
    " outside and beaten. Twenty years later, Rasputin sees a vision of\n    the Virgin Mary, prompting him to"
    " become a priest. Rasputin quickly becomes famous, with people, even a bishop,\n    begging for his"
    " blessing. <eod> </s> <eos>\n    ")


class ReturnType(enum.Enum):
    TENSORS = 0
    NEW_TEXT = 1
    FULL_TEXT = 2


class TextGenerationPipeline(Pipeline):
    """Prompt -> [{"generated_text": prompt + continuation}]; a chat (list of {"role", "content"} messages) ->
    [{"generated_text": messages + the assistant's answer}]."""

    task_name = "text-generation"
    default_generation = {"max_new_tokens": 256, "do_sample": True, "temperature": 0.7}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "prefix" not in self._preprocess_params and self.prefix is not None:
            preprocess, forward, _ = self._sanitize_parameters(prefix=self.prefix, **self._forward_params)
            self._preprocess_params = {**self._preprocess_params, **preprocess}
            self._forward_params = {**self._forward_params, **forward}

    def _setup(self, kwargs):
        self.prefix = getattr(self.model.config, "prefix", None)
        if self.prefix is None and getattr(self.model.config, "model_type", None) in XL_PREFIX_MODEL_TYPES:
            self.prefix = XL_PREFIX
        keys = (set(FIELDS) | {"generation_config"}) & set(kwargs)
        self._generate_kwargs = {key: kwargs.pop(key) for key in keys}
        self._generation_defaults = dict(self.default_generation)
        if self.tokenizer is not None and self.tokenizer.pad_token_id is not None:
            self._generation_defaults["pad_token_id"] = self.tokenizer.pad_token_id
        if self.tokenizer is not None and self.tokenizer.padding_side == "right":
            self.tokenizer.padding_side = "left"  # prompts of a batch must end together
        return kwargs

    # ------------------------------------------------------------------ parameters
    def _sanitize_parameters(self, return_full_text=None, return_tensors=None, return_text=None, return_type=None,
                             clean_up_tokenization_spaces=None, prefix=None, handle_long_generation=None,
                             stop_sequence=None, truncation=None, max_length=None, continue_final_message=None,
                             skip_special_tokens=None, tokenizer_encode_kwargs=None, tools=None, documents=None,
                             **generate_kwargs):
        preprocess = {}
        add_special_tokens = False
        if "add_special_tokens" in generate_kwargs:
            add_special_tokens = preprocess["add_special_tokens"] = generate_kwargs.pop("add_special_tokens")
        if "padding" in generate_kwargs:
            preprocess["padding"] = generate_kwargs.pop("padding")
        for key, value in (("truncation", truncation), ("max_length", max_length), ("tools", tools),
                           ("documents", documents), ("prefix", prefix),
                           ("continue_final_message", continue_final_message),
                           ("tokenizer_encode_kwargs", tokenizer_encode_kwargs)):
            if value is not None:
                preprocess[key] = value
        if max_length is not None:
            generate_kwargs["max_length"] = max_length
        if prefix:
            generate_kwargs["prefix_length"] = len(self.tokenizer(prefix, padding=False,
                                                                  add_special_tokens=add_special_tokens)["input_ids"])
        if handle_long_generation is not None:
            if handle_long_generation != "hole":
                raise PipelineInputError(f"handle_long_generation={handle_long_generation!r} is not valid: use None "
                                         f"or 'hole'.")
            preprocess["handle_long_generation"] = handle_long_generation
        preprocess.update(generate_kwargs)
        if stop_sequence is not None:
            generate_kwargs["stop_strings"] = [stop_sequence] if isinstance(stop_sequence, str) else stop_sequence
            generate_kwargs["tokenizer"] = self.tokenizer
        return preprocess, generate_kwargs, self._output_params(
            return_full_text, return_tensors, return_text, return_type, clean_up_tokenization_spaces,
            continue_final_message, skip_special_tokens, tools)

    @staticmethod
    def _output_params(return_full_text, return_tensors, return_text, return_type, clean_up, continue_final,
                       skip_special_tokens, tools) -> dict:
        params = {} if tools is None else {"tools": tools}
        if return_full_text is not None and return_type is None:
            if return_text is not None:
                raise PipelineInputError("return_text and return_full_text cannot be used together.")
            if return_tensors is not None:
                raise PipelineInputError("return_full_text and return_tensors cannot be used together.")
            return_type = ReturnType.FULL_TEXT if return_full_text else ReturnType.NEW_TEXT
        if return_tensors is not None and return_type is None:
            if return_text is not None:
                raise PipelineInputError("return_text and return_tensors cannot be used together.")
            return_type = ReturnType.TENSORS
        for key, value in (("return_type", return_type), ("clean_up_tokenization_spaces", clean_up),
                           ("continue_final_message", continue_final), ("skip_special_tokens", skip_special_tokens)):
            if value is not None:
                params[key] = value
        return params

    def _set_generation_params(self, generate_kwargs: dict) -> dict:
        params = self.model.generation_config.to_diff_dict()
        if generate_kwargs.get("generation_config") is not None:
            params.update(generate_kwargs["generation_config"].to_diff_dict())
        return {**params, **generate_kwargs}

    def _prepare_generate_kwargs(self, generate_kwargs: dict) -> dict:
        """The call's generate keywords plus the pipeline defaults that neither they nor the model set."""
        if "generation_config" not in generate_kwargs:
            generate_kwargs = {**self._generate_kwargs, **generate_kwargs}
        chosen = self._set_generation_params(generate_kwargs)
        added = {key: value for key, value in self._generation_defaults.items()
                 if key not in chosen and not (key == "max_new_tokens" and "max_length" in chosen)}
        if not {**chosen, **added}.get("do_sample"):
            added = {key: value for key, value in added.items() if key not in _SAMPLING_PARAMS}
        user_config = generate_kwargs.get("generation_config")
        if user_config is None:
            return {**generate_kwargs, **added}
        user_config = copy.deepcopy(user_config)
        user_config.update(**added)
        return {**generate_kwargs, "generation_config": user_config}

    # ------------------------------------------------------------------ steps
    def preprocess(self, prompt_text, prefix="", handle_long_generation=None, add_special_tokens=None,
                   truncation=None, padding=None, max_length=None, continue_final_message=None,
                   tokenizer_encode_kwargs=None, tools=None, documents=None, **generate_kwargs):
        options = {key: value for key, value in (("add_special_tokens", add_special_tokens),
                                                 ("truncation", truncation), ("padding", padding),
                                                 ("max_length", max_length)) if value is not None}
        options.update(tokenizer_encode_kwargs or {})
        if isinstance(prompt_text, Chat):
            inputs = self._chat_inputs(prompt_text, options, continue_final_message, tools, documents)
        else:
            inputs = self.tokenizer(prefix + require_text(prompt_text, "prompt", allow_empty=True), **options)
        model_inputs = {key: list(inputs[key]) for key in ("input_ids", "attention_mask") if key in inputs}
        if handle_long_generation == "hole":
            self._cut_hole(model_inputs, generate_kwargs)
        return {"model_inputs": model_inputs, "prompt_text": prompt_text}

    def _chat_inputs(self, chat: Chat, options, continue_final_message, tools, documents):
        if not hasattr(self.tokenizer, "apply_chat_template") or getattr(self.tokenizer, "chat_template", None) is None:
            raise PipelineInputError("This tokenizer has no chat template, so a list of messages cannot be turned "
                                     "into a prompt: pass the prompt as a string, or use a chat model's tokenizer.")
        options.pop("add_special_tokens", None)
        if continue_final_message is None:
            continue_final_message = chat.messages[-1]["role"] == "assistant"
        return self.tokenizer.apply_chat_template(
            chat.messages, add_generation_prompt=not continue_final_message,
            continue_final_message=continue_final_message, return_dict=True, tools=tools, documents=documents,
            **options)

    def _cut_hole(self, model_inputs, generate_kwargs):
        """Drop the start of a prompt so that it and the new tokens fit the model's length."""
        length = len(model_inputs["input_ids"])
        params = self._set_generation_params(self._prepare_generate_kwargs(generate_kwargs))
        new_tokens = params.get("max_new_tokens")
        if new_tokens is None:
            new_tokens = params["max_length"] - length
            if new_tokens < 0:
                raise PipelineInputError("Cannot tell how many new tokens are wanted: set max_new_tokens.")
        if length + new_tokens > self.tokenizer.model_max_length:
            keep = self.tokenizer.model_max_length - new_tokens
            if keep <= 0:
                raise PipelineInputError("handle_long_generation='hole' cannot help: max_new_tokens alone exceeds "
                                         "the model's maximum length.")
            for key in model_inputs:
                model_inputs[key] = model_inputs[key][-keep:]

    def _forward(self, model_inputs, **generate_kwargs):
        input_ids, attention_mask = model_inputs["input_ids"], model_inputs.get("attention_mask")
        in_b = input_ids.shape[0]
        width = input_ids.shape[1]
        if width == 0:
            input_ids = attention_mask = None
        prefix_length = generate_kwargs.pop("prefix_length", 0)
        generate_kwargs = self._prepare_generate_kwargs(generate_kwargs)
        if prefix_length:  # a total length must count the prefix too
            params = self._set_generation_params(generate_kwargs)
            for length, new in (("max_length", "max_new_tokens"), ("min_length", "min_new_tokens")):
                if length in params and new not in params:
                    generate_kwargs[length] = params[length] + prefix_length
        output = generate_quietly(self.model, input_ids=input_ids, attention_mask=attention_mask, **generate_kwargs)
        sequences, extra = (output.sequences, output) if hasattr(output, "sequences") else (output, {})
        out_b = sequences.shape[0]
        result = {"generated_sequence": sequences.reshape(in_b, out_b // in_b, *sequences.shape[1:]),
                  "prompt_width": [width] * in_b}
        for key, value in extra.items():
            if key in ("sequences", "cache", "past_key_values"):
                continue
            if isinstance(value, tuple) and value and isinstance(value[0], torch.Tensor) and len(value[0]) == out_b:
                value = torch.stack(value).swapaxes(0, 1)
            if isinstance(value, torch.Tensor) and value.shape[0] == out_b:
                result[key] = value.reshape(in_b, out_b // in_b, *value.shape[1:])
        return result

    def postprocess(self, model_outputs, return_type=ReturnType.FULL_TEXT, clean_up_tokenization_spaces=None,
                    continue_final_message=None, skip_special_tokens=None, tools=None):
        prompt_length = len(model_outputs["model_inputs"]["input_ids"])
        cut = model_outputs["prompt_width"] - prompt_length  # the left padding this input got in its batch
        sequences = model_outputs["generated_sequence"][:, cut:]
        if return_type == ReturnType.TENSORS:
            sequences = trim_finished(sequences, eos_list(self.model.generation_config.eos_token_id), prompt_length)
        prompt_text = model_outputs["prompt_text"]
        extra = {key: value.tolist() for key, value in model_outputs.items()
                 if key not in ("generated_sequence", "prompt_width", "model_inputs", "prompt_text")
                 and isinstance(value, torch.Tensor)}
        skip = True if skip_special_tokens is None else skip_special_tokens
        records = []
        for index, sequence in enumerate(sequences.tolist()):
            if return_type == ReturnType.TENSORS:
                records.append({"generated_token_ids": sequence})
                continue
            text = self._new_text(sequence, prompt_length, skip, clean_up_tokenization_spaces)
            if return_type == ReturnType.FULL_TEXT:
                text = self._full_text(prompt_text, text, continue_final_message)
            record = {"generated_text": text}
            for key, values in extra.items():
                record[key] = values[index]
            records.append(record)
        return records

    def _new_text(self, sequence, prompt_length, skip, clean_up):
        """The text of the new tokens. After the XL prefix it is the decoded sequence less the decoded prompt, as in
        transformers 4.x, which keeps the space a SentencePiece piece puts before the first new word."""
        decode = self.tokenizer.decode
        if getattr(self.model.config, "model_type", None) not in XL_PREFIX_MODEL_TYPES:
            return decode(sequence[prompt_length:], skip_special_tokens=skip, clean_up_tokenization_spaces=clean_up)
        prompt = decode(sequence[:prompt_length], skip_special_tokens=skip, clean_up_tokenization_spaces=clean_up)
        return decode(sequence, skip_special_tokens=skip, clean_up_tokenization_spaces=clean_up)[len(prompt):]

    @staticmethod
    def _full_text(prompt_text, new_text, continue_final_message):
        if isinstance(prompt_text, str):
            return prompt_text + new_text
        messages = list(prompt_text.messages)
        if continue_final_message is None:
            continue_final_message = messages[-1]["role"] == "assistant"
        if continue_final_message:
            last = messages[-1]
            return messages[:-1] + [{"role": last["role"], "content": last["content"] + new_text}]
        return messages + [{"role": "assistant", "content": new_text}]
