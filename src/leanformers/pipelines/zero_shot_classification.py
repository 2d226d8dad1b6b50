"""zero-shot-classification: any labels, scored by an NLI model (does the text entail "This example is {label}."?)."""

from __future__ import annotations

import logging

import numpy as np

from ..errors import TokenizerError
from .base import ChunkPipeline, require_text
from .errors import PipelineInputError
from .text_classification import accepts_use_cache

logger = logging.getLogger("leanformers")


def parse_labels(labels) -> list[str]:
    """A list of labels, or one string of comma-separated labels."""
    if isinstance(labels, str):
        return [label.strip() for label in labels.split(",") if label.strip()]
    return list(labels or [])


class ZeroShotClassificationPipeline(ChunkPipeline):
    """Text + candidate_labels -> {"sequence", "labels", "scores"}, labels sorted by score.

    Each (text, hypothesis) pair runs through the NLI model; without multi_label the entailment logits are
    normalised over the labels, with it each label's entailment is scored against its contradiction.
    """

    task_name = "zero-shot-classification"

    def _setup(self, kwargs):
        if self.entailment_id == -1:
            logger.warning("The model config's label2id has no label starting with 'entail', so the entailment "
                           "score is read from the last label. Name the labels (e.g. entailment, neutral, "
                           "contradiction) in config.label2id for correct scores.")
        return kwargs

    @property
    def entailment_id(self) -> int:
        config = self.model.config
        label2id = config.label2id or {label: index for index, label in config.id2label.items()}
        for label, index in label2id.items():
            if label.lower().startswith("entail"):
                return int(index)
        return -1

    def _sanitize_parameters(self, candidate_labels=None, hypothesis_template=None, multi_label=None, **kwargs):
        if kwargs:
            raise PipelineInputError(f"Unknown arguments {sorted(kwargs)} for zero-shot-classification; it takes "
                                     f"candidate_labels, hypothesis_template and multi_label.")
        preprocess = {}
        if candidate_labels is not None:
            preprocess["candidate_labels"] = parse_labels(candidate_labels)
        if hypothesis_template is not None:
            preprocess["hypothesis_template"] = hypothesis_template
        postprocess = {} if multi_label is None else {"multi_label": multi_label}
        return preprocess, {}, postprocess

    def __call__(self, sequences, *args, **kwargs):
        if len(args) == 1 and "candidate_labels" not in kwargs:
            kwargs["candidate_labels"] = args[0]
        elif args:
            raise PipelineInputError(f"Unable to understand extra arguments {args}: pass candidate_labels=[...].")
        return super().__call__(sequences, **kwargs)

    def preprocess(self, inputs, candidate_labels=None, hypothesis_template="This example is {}."):
        labels = list(candidate_labels or [])
        if not labels:
            raise PipelineInputError("zero-shot-classification needs candidate_labels: pass at least one label, "
                                     "e.g. candidate_labels=['sports', 'politics'].")
        sequence = require_text(inputs)
        if hypothesis_template.format(labels[0]) == hypothesis_template:
            raise PipelineInputError(f'The hypothesis_template "{hypothesis_template}" has no {{}} where the label '
                                     f'goes; write it like "This example is {{}}."')
        for index, label in enumerate(labels):
            row = self._encode_pair(sequence, hypothesis_template.format(label))
            yield {"candidate_label": label, "sequence": sequence, "is_last": index == len(labels) - 1,
                   "model_inputs": row}

    def _encode_pair(self, premise: str, hypothesis: str) -> dict:
        names = list(self.tokenizer.model_input_names)
        try:
            encoding = self.tokenizer(premise, hypothesis, truncation="only_first")
        except TokenizerError as err:
            if "too short" not in str(err):
                raise
            encoding = self.tokenizer(premise, hypothesis, truncation=False)  # the hypothesis alone is too long
        return {name: encoding[name] for name in names if name in encoding}

    def _pad_values(self):
        if self.tokenizer.pad_token_id is None and self.tokenizer.eos_token is not None:
            self.tokenizer.pad_token = self.tokenizer.eos_token  # batches of pairs need some padding token
        return super()._pad_values()

    def _forward(self, model_inputs, **forward_params):
        if accepts_use_cache(self.model):
            model_inputs = {**model_inputs, "use_cache": False}
        return {"logits": self.model(**model_inputs).logits}

    def postprocess(self, model_outputs, multi_label=False):
        labels = [output["candidate_label"] for output in model_outputs]
        logits = np.stack([output["logits"].float().numpy() for output in model_outputs])[None]  # (1, labels, C)
        if multi_label or len(labels) == 1:
            entailment = self.entailment_id
            contradiction = -1 if entailment == 0 else 0
            pair = logits[..., [contradiction, entailment]]
            scores = (np.exp(pair) / np.exp(pair).sum(-1, keepdims=True))[..., 1]
        else:
            entail = logits[..., self.entailment_id]
            scores = np.exp(entail) / np.exp(entail).sum(-1, keepdims=True)
        best_first = list(reversed(scores[0].argsort()))
        return {"sequence": model_outputs[0]["sequence"], "labels": [labels[i] for i in best_first],
                "scores": scores[0, best_first].tolist()}
