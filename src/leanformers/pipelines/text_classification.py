"""text-classification (alias sentiment-analysis): labels and scores of a text or a text pair."""

from __future__ import annotations

import enum
import inspect

import numpy as np

from .base import Pipeline, encoding_rows, require_text
from .errors import PipelineInputError


def sigmoid(values):
    return 1.0 / (1.0 + np.exp(-values))


def softmax(values):
    shifted = np.exp(values - np.max(values, axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


class ClassificationFunction(str, enum.Enum):
    SIGMOID = "sigmoid"
    SOFTMAX = "softmax"
    NONE = "none"


def _function(value) -> ClassificationFunction:
    if isinstance(value, ClassificationFunction):
        return value
    try:
        return ClassificationFunction[str(value).upper()]
    except KeyError:
        raise PipelineInputError(f"function_to_apply={value!r} is not one of 'sigmoid', 'softmax', 'none'.") from None


def accepts_use_cache(model) -> bool:
    try:
        return "use_cache" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


class TextClassificationPipeline(Pipeline):
    """Text (or {"text", "text_pair"}) -> {"label", "score"}; with top_k, the top_k labels (None: all), best first."""

    task_name = "text-classification"
    function_to_apply = ClassificationFunction.NONE

    def _sanitize_parameters(self, function_to_apply=None, top_k="", **tokenizer_kwargs):
        postprocess = {}
        if isinstance(top_k, int) or top_k is None:
            postprocess["top_k"] = top_k
            postprocess["_legacy"] = False
        if function_to_apply is not None:
            postprocess["function_to_apply"] = _function(function_to_apply)
        return tokenizer_kwargs, {}, postprocess

    def __call__(self, inputs, **kwargs):
        result = super().__call__(inputs, **kwargs)
        # a single text without top_k gives a one-element list, as transformers does
        if isinstance(inputs, str) and "top_k" not in kwargs:
            return [result]
        return result

    def preprocess(self, inputs, **tokenizer_kwargs):
        return self._preprocess_many([inputs], **tokenizer_kwargs)[0][0]

    def _preprocess_many(self, items, **tokenizer_kwargs):
        if all(isinstance(item, str) and item.strip() for item in items):
            rows = encoding_rows(self.tokenizer(list(items), **tokenizer_kwargs))
        else:
            rows = [self._encode_one(item, index, tokenizer_kwargs) for index, item in enumerate(items)]
        return [[{"model_inputs": row}] for row in rows]

    def _encode_one(self, item, index, tokenizer_kwargs) -> dict:
        if isinstance(item, dict):
            if "text" not in item:
                raise PipelineInputError(f"Input #{index} is a dict without 'text': pass {{'text': ..., "
                                         f"'text_pair': ...}} for a text pair.")
            require_text(item["text"], f"'text' of input #{index}")
            if item.get("text_pair") is not None:
                require_text(item["text_pair"], f"'text_pair' of input #{index}")
            encoding = self.tokenizer(**item, **tokenizer_kwargs)
        elif isinstance(item, list) and len(item) == 1 and isinstance(item[0], list) and len(item[0]) == 2:
            encoding = self.tokenizer(text=require_text(item[0][0], f"text of input #{index}"),
                                      text_pair=require_text(item[0][1], f"text pair of input #{index}"),
                                      **tokenizer_kwargs)
        elif isinstance(item, (list, tuple)):
            raise PipelineInputError('The pipeline received invalid inputs: to send a text pair, pass a dict '
                                     '{"text": "My text", "text_pair": "My pair"}.')
        else:
            encoding = self.tokenizer(require_text(item, f"input #{index}"), **tokenizer_kwargs)
        return dict(encoding)

    def _forward(self, model_inputs, **forward_params):
        if accepts_use_cache(self.model):
            model_inputs = {**model_inputs, "use_cache": False}
        return {"logits": self.model(**model_inputs).logits}

    def _default_function(self) -> ClassificationFunction:
        config = self.model.config
        if config.problem_type == "regression":
            return ClassificationFunction.NONE
        if config.problem_type == "multi_label_classification" or config.num_labels == 1:
            return ClassificationFunction.SIGMOID
        if config.problem_type == "single_label_classification" or config.num_labels > 1:
            return ClassificationFunction.SOFTMAX
        if getattr(config, "function_to_apply", None) is not None:
            return _function(config.function_to_apply)
        return ClassificationFunction.NONE

    def postprocess(self, model_outputs, function_to_apply=None, top_k=1, _legacy=True):
        function = self._default_function() if function_to_apply is None else function_to_apply
        logits = model_outputs["logits"].float().numpy()
        if function == ClassificationFunction.SIGMOID:
            scores = sigmoid(logits)
        elif function == ClassificationFunction.SOFTMAX:
            scores = softmax(logits)
        else:
            scores = logits
        id2label = self.model.config.id2label
        if top_k == 1 and _legacy:
            return {"label": id2label[scores.argmax().item()], "score": scores.max().item()}
        labelled = [{"label": id2label[i], "score": score.item()} for i, score in enumerate(scores)]
        if not _legacy:
            labelled.sort(key=lambda entry: entry["score"], reverse=True)
            if top_k is not None:
                labelled = labelled[:top_k]
        return labelled
