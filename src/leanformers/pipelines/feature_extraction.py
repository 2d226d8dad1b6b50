"""feature-extraction: the hidden states of the model's last layer for every token."""

from __future__ import annotations

from .base import Pipeline, encoding_rows, require_text
from .errors import PipelineInputError


class FeatureExtractionPipeline(Pipeline):
    """Text -> nested list (1, tokens, hidden) of the last hidden states (a tensor with return_tensors=True)."""

    task_name = "feature-extraction"
    sequence_outputs = ("hidden_states",)

    def _sanitize_parameters(self, truncation=None, tokenize_kwargs=None, return_tensors=None, **kwargs):
        tokenize_kwargs = dict(tokenize_kwargs or {})
        if truncation is not None:
            if "truncation" in tokenize_kwargs:
                raise PipelineInputError("truncation was given twice (as an argument and in tokenize_kwargs).")
            tokenize_kwargs["truncation"] = truncation
        postprocess = {} if return_tensors is None else {"return_tensors": return_tensors}
        return tokenize_kwargs, {}, postprocess

    def preprocess(self, inputs, **tokenize_kwargs):
        return self._preprocess_many([inputs], **tokenize_kwargs)[0][0]

    def _preprocess_many(self, items, **tokenize_kwargs):
        texts = [require_text(item, f"input #{index}") for index, item in enumerate(items)]
        encoding = self.tokenizer(texts, **tokenize_kwargs)
        return [[{"model_inputs": row}] for row in encoding_rows(encoding)]

    def _forward(self, model_inputs, **forward_params):
        outputs = self.model(**model_inputs)
        return {"hidden_states": outputs[0]}

    def postprocess(self, model_outputs, return_tensors=False):
        hidden = model_outputs["hidden_states"].unsqueeze(0)
        return hidden if return_tensors else hidden.tolist()
