"""POST /v1/embeddings (mean pooling over the attention mask, as sentence-transformers pools MiniLM-style
checkpoints) and POST /v1/pipeline/{task} (the pipeline of that task around the served model)."""

from __future__ import annotations

import base64
import threading

from .protocol import APIError, field, prompts

_MAX_INPUTS = 256


class TaskRunner:
    """Runs embeddings and pipelines of one served model, one call at a time (the model is not thread-safe)."""

    def __init__(self, served):
        self.served = served
        self._lock = threading.Lock()
        self._pipelines: dict = {}

    # ------------------------------------------------------------------ embeddings
    def embed(self, body: dict) -> dict:
        if self.served.generative or self.served.model is None:
            raise APIError(400, f"The model {self.served.name} is a generative model; /v1/embeddings needs an encoder "
                                f"(e.g. leanformers serve sentence-transformers/all-MiniLM-L6-v2).", param="model")
        items = prompts(body, "input")
        if len(items) > _MAX_INPUTS:
            raise APIError(400, f"At most {_MAX_INPUTS} inputs per request.", param="input")
        encoding = field(body, "encoding_format", str, "float")
        if encoding not in ("float", "base64"):
            raise APIError(400, f"Invalid value for 'encoding_format': {encoding!r}; expected 'float' or 'base64'.",
                           param="encoding_format")
        vectors, tokens = self._vectors(items)
        dimensions = field(body, "dimensions", int, None, 1)
        if dimensions is not None and dimensions != vectors.shape[1]:
            raise APIError(400, f"This model's embeddings have {vectors.shape[1]} dimensions; 'dimensions' cannot "
                                f"change that.", param="dimensions")
        data = [{"object": "embedding", "index": i, "embedding": _encode(v, encoding)} for i, v in enumerate(vectors)]
        return {"object": "list", "data": data, "model": self.served.name,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

    def _vectors(self, items):
        import torch

        tokenizer, model = self.served.tokenizer, self.served.model
        limit = min(getattr(tokenizer, "model_max_length", 512) or 512, self.served.max_context)
        texts = [tokenizer.decode(i) if isinstance(i, list) else i for i in items]
        batch = tokenizer(texts, padding=True, truncation=True, max_length=limit, return_tensors="pt")
        batch = {k: v.to(model.device) for k, v in batch.items()}
        with self._lock, torch.inference_mode():
            hidden = model(**batch).last_hidden_state                  # (batch, seq, hidden)
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        if self.served.normalize_embeddings:
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return pooled.float().cpu(), int(batch["attention_mask"].sum())

    # ------------------------------------------------------------------ pipelines
    def pipeline(self, task: str, body: dict):
        if task not in self.served.tasks or task == "text-generation":
            raise APIError(404, f"The model {self.served.name} does not serve the task {task!r}; it serves "
                                f"{', '.join(t for t in self.served.tasks if t != 'text-generation') or 'no pipeline'}.",
                           code="unknown_task")
        inputs = body.get("inputs")
        if inputs is None:
            raise APIError(400, "Missing required parameter: 'inputs'.", param="inputs",
                           code="missing_required_parameter")
        if not isinstance(inputs, (str, dict, list)):
            raise APIError(400, "Invalid type for 'inputs': expected a string, an object or an array.",
                           param="inputs", code="invalid_type")
        parameters = field(body, "parameters", dict, {})
        with self._lock:
            pipe = self._pipeline(task)
            try:
                result = _call(pipe, task, inputs, parameters)
            except (TypeError, ValueError, KeyError) as err:
                raise APIError(400, f"The {task} pipeline rejected the input: {err}", param="inputs") from None
        from ..pipelines.base import jsonable

        return {"task": task, "model": self.served.name, "result": jsonable(result)}

    def _pipeline(self, task: str):
        if task not in self._pipelines:
            from ..pipelines import pipeline

            extra = {"gguf_file": self.served.gguf_file} if self.served.gguf_file else {}
            device = self.served.device if self.served.device != "cpu" else None
            self._pipelines[task] = pipeline(task, model=self.served.source, device=device, **extra)
        return self._pipelines[task]


def _call(pipe, task, inputs, parameters):
    if task == "question-answering" and isinstance(inputs, dict):
        return pipe(question=inputs.get("question"), context=inputs.get("context"), **parameters)
    if task == "zero-shot-classification":
        labels = parameters.pop("candidate_labels", None)
        if isinstance(labels, str):
            labels = [s.strip() for s in labels.split(",") if s.strip()]
        if not labels:
            raise APIError(400, "zero-shot-classification needs parameters.candidate_labels.", param="parameters")
        return pipe(inputs, candidate_labels=labels, **parameters)
    return pipe(inputs, **parameters)


def _encode(vector, encoding: str):
    if encoding == "base64":
        return base64.b64encode(vector.numpy().astype("<f4").tobytes()).decode("ascii")
    return vector.tolist()
