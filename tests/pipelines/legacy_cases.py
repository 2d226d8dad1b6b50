"""Pipeline calls whose reference is transformers 4.55 (question-answering, summarization, translation,
text2text-generation): every case runs in one subprocess of the legacy virtual environment, and each test compares
our result for the same case with it."""

from __future__ import annotations

from tests.generation.legacy_ref import run_legacy_script

CONTEXT = "My name is Sylvain and I work at Hugging Face in Brooklyn."
LONG_CONTEXT = " ".join([CONTEXT, "Paris is the capital of France.", "The cat sat on the mat."] * 4)
QUESTIONS = ["Where do I work?", "What is my name?", "What is the capital of France?"]
TEXTS = ["The cat sat on the mat.", "My name is Sylvain and I work at Hugging Face in Brooklyn.",
         "Paris is the capital of France. Where do I work? Hello world!"]

# id -> (task, model name, pipeline() keywords, call positional args, call keywords)
CASES = {
    "qa-kwargs": ("question-answering", "bert-qa", {}, [], {"question": QUESTIONS[0], "context": CONTEXT}),
    "qa-positional": ("question-answering", "bert-qa", {}, [QUESTIONS[1], CONTEXT], {}),
    "qa-top-k": ("question-answering", "bert-qa", {}, [], {"question": QUESTIONS[0], "context": CONTEXT,
                                                           "top_k": 3}),
    "qa-long-context": ("question-answering", "bert-qa", {}, [],
                        {"question": QUESTIONS[2], "context": LONG_CONTEXT, "max_seq_len": 32, "doc_stride": 10,
                         "top_k": 4, "handle_impossible_answer": True}),
    "qa-max-answer-len": ("question-answering", "bert-qa", {}, [],
                          {"question": QUESTIONS[0], "context": LONG_CONTEXT, "max_seq_len": 40, "doc_stride": 16,
                           "max_answer_len": 3, "top_k": 2}),
    "qa-no-align": ("question-answering", "bert-qa", {}, [], {"question": QUESTIONS[0], "context": CONTEXT,
                                                              "align_to_words": False, "top_k": 2}),
    "qa-batched-questions": ("question-answering", "bert-qa", {}, [], {"question": QUESTIONS, "context": CONTEXT}),
    "qa-dicts": ("question-answering", "bert-qa", {}, [[{"question": q, "context": c} for q, c in
                                                        zip(QUESTIONS, [CONTEXT, LONG_CONTEXT, TEXTS[2]])]], {}),
    "qa-short-context": ("question-answering", "bert-qa", {}, [],
                         {"question": "Where do I work and what is the capital of France?", "context": "Brooklyn.",
                          "top_k": 2}),
    "qa-options": ("question-answering", "bert-qa", {}, [],
                   {"question": QUESTIONS[0], "context": LONG_CONTEXT, "max_seq_len": 48, "doc_stride": 16,
                    "max_question_len": 4, "padding": "max_length", "topk": 2}),
    "qa-context-first": ("question-answering", "bert-qa-left", {}, [], {"question": QUESTIONS[0],
                                                                         "context": CONTEXT, "top_k": 2}),
    "summarize": ("summarization", "bart", {}, [TEXTS], {"max_new_tokens": 12}),
    "summarize-beams": ("summarization", "bart", {}, [TEXTS[1]], {"num_beams": 3, "num_return_sequences": 2,
                                                                  "max_new_tokens": 6}),
    "summarize-tensors": ("summarization", "bart", {}, [TEXTS[:2]], {"return_tensors": True, "max_new_tokens": 6}),
    "summarize-init-kwargs": ("summarization", "bart", {"max_new_tokens": 5, "num_beams": 1}, [TEXTS], {}),
    "summarize-stop": ("summarization", "bart", {}, [TEXTS[0]], {"stop_sequence": "mat", "max_new_tokens": 10}),
    "summarize-model-settings": ("summarization", "bart-summarizer", {}, [TEXTS], {}),
    "summarize-max-length": ("summarization", "bart-summarizer", {}, [TEXTS[1]], {"max_length": 12}),
    "summarize-min-max-length": ("summarization", "bart-summarizer", {}, [TEXTS], {"min_length": 3,
                                                                                   "max_length": 10}),
    "summarize-t5-task-params": ("summarization", "t5", {}, [TEXTS[0]], {}),
    "text2text": ("text2text-generation", "t5", {}, [TEXTS[1]], {"num_return_sequences": 2, "max_new_tokens": 8}),
    "text2text-list": ("text2text-generation", "bart", {}, [TEXTS], {"max_new_tokens": 7, "do_sample": False}),
    "translate": ("translation_en_to_de", "t5", {}, [TEXTS], {"max_new_tokens": 10}),
    "translate-truncation": ("translation_en_to_de", "t5", {}, [TEXTS[1]], {"max_new_tokens": 6,
                                                                            "truncation": True}),
    "translate-src-tgt": ("translation", "mbart", {}, [TEXTS], {"src_lang": "en_XX", "tgt_lang": "ro_RO",
                                                                "max_new_tokens": 6}),
    "translate-src-tgt-tensors": ("translation", "mbart", {}, [TEXTS[0]], {"src_lang": "en_XX", "tgt_lang": "de_DE",
                                                                           "max_new_tokens": 5,
                                                                           "return_tensors": True}),
}
LEGACY_TASKS = ("question-answering", "summarization", "translation", "text2text-generation")
DEFAULTS = "defaults"  # the key of transformers 4.55's default checkpoints in the results

_SCRIPT = """
import json, sys, torch, transformers
transformers.logging.set_verbosity_error()

def plain(value):
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value

payload = json.load(open(sys.argv[1]))
results = {}
from transformers.pipelines import SUPPORTED_TASKS
defaults = {}
for task in payload.pop("tasks"):
    default = SUPPORTED_TASKS[task]["default"]
    if "model" in default:
        defaults[task] = default["model"]["pt"]
    else:
        defaults.update({f"translation_{src}_to_{tgt}": entry["model"]["pt"] for (src, tgt), entry in default.items()})
for case, job in payload.items():
    pipe = transformers.pipeline(job["task"], model=job["model"], device="cpu", **job["init"])
    results[case] = plain(pipe(*job["args"], **job["kwargs"]))
results["defaults"] = defaults
json.dump(results, open(sys.argv[2], "w"))
"""


def run_cases(tiny) -> dict:
    """Every case of CASES run by transformers 4.55 -> {case id: JSON result}, and under DEFAULTS the default
    checkpoint (repo id, revision) of each task of LEGACY_TASKS (translation as translation_XX_to_YY)."""
    payload = {case: {"task": task, "model": tiny(model), "init": init, "args": args, "kwargs": kwargs}
               for case, (task, model, init, args, kwargs) in CASES.items()}
    payload["tasks"] = list(LEGACY_TASKS)
    return run_legacy_script(_SCRIPT, payload, timeout=900)


def plain(value):
    """Tensors -> lists, tuples -> lists: the shape results take after a JSON round trip."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value
