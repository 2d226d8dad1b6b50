"""fill-mask: the most likely tokens for each mask token of a text."""

from __future__ import annotations

import logging

import numpy as np
import torch

from .base import Pipeline, encoding_rows, require_text
from .errors import PipelineException, PipelineInputError

logger = logging.getLogger("leanformers")


class FillMaskPipeline(Pipeline):
    """Text with one or more mask tokens -> for each mask, the top_k candidates with score, token, token_str and
    the completed sequence."""

    task_name = "fill-mask"

    def _sanitize_parameters(self, top_k=None, targets=None, tokenizer_kwargs=None):
        if self.tokenizer.mask_token_id is None:
            raise PipelineException("fill-mask", self.model.base_model_prefix,
                                    "The tokenizer does not define a `mask_token`: fill-mask needs a tokenizer with "
                                    "one (e.g. [MASK] or <mask>).")
        preprocess = {} if tokenizer_kwargs is None else {"tokenizer_kwargs": tokenizer_kwargs}
        postprocess = {}
        if targets is not None:
            postprocess["target_ids"] = self.get_target_ids(targets)
        if top_k is not None:
            postprocess["top_k"] = top_k
        return preprocess, {}, postprocess

    def get_target_ids(self, targets) -> np.ndarray:
        """Vocabulary ids of the candidate tokens; a word outside the vocabulary stands for its first token."""
        targets = [targets] if isinstance(targets, str) else list(targets)
        vocab = self.tokenizer.get_vocab()
        ids = []
        for target in targets:
            token_id = vocab.get(target)
            if token_id is None:
                pieces = self.tokenizer(target, add_special_tokens=False, return_attention_mask=False,
                                        return_token_type_ids=False, max_length=1, truncation=True)["input_ids"]
                if not pieces:
                    logger.warning(f"The target {target!r} is not in the vocabulary and gives no token: ignored.")
                    continue
                token_id = pieces[0]
                logger.warning(f"The target {target!r} is not in the vocabulary; using its first token "
                               f"{self.tokenizer.convert_ids_to_tokens(token_id)!r} instead.")
            ids.append(token_id)
        ids = list(set(ids))  # the same order as transformers, which deduplicates through a set
        if not ids:
            raise PipelineInputError("targets must name at least one token of the vocabulary.")
        return np.array(ids)

    def preprocess(self, inputs, tokenizer_kwargs=None):
        return self._preprocess_many([inputs], tokenizer_kwargs=tokenizer_kwargs)[0][0]

    def _preprocess_many(self, items, tokenizer_kwargs=None):
        texts = [require_text(item, f"input #{index}") for index, item in enumerate(items)]
        rows = encoding_rows(self.tokenizer(texts, **(tokenizer_kwargs or {})))
        mask_id = self.tokenizer.mask_token_id
        for text, row in zip(texts, rows):
            if mask_id not in row["input_ids"]:
                raise PipelineException("fill-mask", self.model.base_model_prefix,
                                        f"No mask_token ({self.tokenizer.mask_token}) found on the input {text!r:.80}"
                                        f": write {self.tokenizer.mask_token} where a token should be predicted.")
        return [[{"model_inputs": row}] for row in rows]

    def _forward(self, model_inputs, **forward_params):
        logits = self.model(**model_inputs).logits
        masked = model_inputs["input_ids"] == self.tokenizer.mask_token_id
        # only the rows at mask positions leave the model: a (batch, seq, vocab) copy would be large
        return {"mask_logits": [logits[row][masked[row]] for row in range(logits.shape[0])]}

    def postprocess(self, model_outputs, top_k=5, target_ids=None):
        if target_ids is not None and target_ids.shape[0] < top_k:
            top_k = target_ids.shape[0]
        input_ids = np.array(model_outputs["model_inputs"]["input_ids"])
        masked_index = np.nonzero(input_ids == self.tokenizer.mask_token_id)[0]
        probs = model_outputs["mask_logits"].softmax(dim=-1)
        if target_ids is not None:
            probs = probs[..., torch.as_tensor(target_ids)]
        values, predictions = probs.topk(top_k)
        single_mask = values.shape[0] == 1
        pad_id = self.tokenizer.pad_token_id
        result = []
        for position, scores, candidates in zip(masked_index, values.tolist(), predictions.tolist()):
            row = []
            for score, candidate in zip(scores, candidates):
                token = int(target_ids[candidate]) if target_ids is not None else candidate
                tokens = input_ids.copy()
                tokens[position] = token
                if pad_id is not None:
                    tokens = tokens[tokens != pad_id]
                row.append({"score": score, "token": token, "token_str": self.tokenizer.decode([token]),
                            "sequence": self.tokenizer.decode(tokens.tolist(), skip_special_tokens=single_mask)})
            result.append(row)
        return result[0] if single_mask else result

    def __call__(self, inputs, **kwargs):
        outputs = super().__call__(inputs, **kwargs)
        if isinstance(inputs, list) and len(inputs) == 1:
            return outputs[0]
        return outputs
