"""MobileBERT parity with the reference: every head, the bottleneck and normalisation options, trigram input,
several feed-forward blocks, save/load both ways, and the pipelines over its heads."""

import pytest
import torch

import leanformers
from leanformers.models import mobilebert_heads as mobilebert

from .encoder_parity import (FLAGS, check_head, check_reload_by_reference, head_inputs, head_labels,
                             reference_cache)
from .harness import TINY, assert_outputs_close
from .legacy import run_legacy

# odd widths: 36 wide, a 24-wide bottleneck over 3 heads (head size 8), 16-wide word vectors
BASE = dict(TINY, hidden_size=36, intra_bottleneck_size=24, num_attention_heads=3, embedding_size=16,
            num_feedforward_networks=3, attn_implementation="eager")
HEADS = {  # class -> Auto class
    "MobileBertModel": "AutoModel", "MobileBertForPreTraining": "AutoModelForPreTraining",
    "MobileBertForMaskedLM": "AutoModelForMaskedLM",
    "MobileBertForNextSentencePrediction": "AutoModelForNextSentencePrediction",
    "MobileBertForSequenceClassification": "AutoModelForSequenceClassification",
    "MobileBertForMultipleChoice": "AutoModelForMultipleChoice",
    "MobileBertForTokenClassification": "AutoModelForTokenClassification",
    "MobileBertForQuestionAnswering": "AutoModelForQuestionAnswering",
}
VARIANTS = {  # name -> config overrides of BASE (whose defaults: no_norm, trigram, shared key/query bottleneck)
    "layer_norm_plain_input": dict(normalization_type="layer_norm", trigram_input=False, num_feedforward_networks=1),
    "bottleneck_attention": dict(use_bottleneck_attention=True, key_query_shared_bottleneck=False),
    "no_bottleneck": dict(use_bottleneck=False, normalization_type="layer_norm", embedding_size=36,
                          trigram_input=False, classifier_activation=False),
    "no_bottleneck_trigram": dict(use_bottleneck=False, key_query_shared_bottleneck=False),
}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    get = reference_cache(tmp_path_factory, BASE)

    def saved(name, **extra):
        extra = {"num_labels": 3, **extra} if "Classification" in name else extra
        return get(name, "MobileBertConfig", **extra)
    return saved


@pytest.mark.parametrize("name", HEADS)
def test_head_parity(saved, name):
    folder, reference = saved(name)
    assert getattr(leanformers, name) is getattr(mobilebert, name)
    check_head(getattr(mobilebert, name), getattr(leanformers, HEADS[name]), folder, reference, name)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", ["MobileBertForPreTraining", "MobileBertForSequenceClassification"])
def test_option_combinations(saved, name, variant):
    folder, reference = saved(name, **VARIANTS[variant])
    check_head(getattr(mobilebert, name), getattr(leanformers, HEADS[name]), folder, reference, name)


@pytest.mark.parametrize("name, variant", [("MobileBertForPreTraining", None),
                                           ("MobileBertForMaskedLM", "layer_norm_plain_input"),
                                           ("MobileBertForQuestionAnswering", "no_bottleneck")])
def test_saved_by_us_loads_in_reference(saved, tmp_path, name, variant):
    folder, reference = saved(name, **VARIANTS.get(variant, {}))
    check_reload_by_reference(getattr(mobilebert, name), folder, tmp_path, name, head_labels(name, reference.config))


@torch.no_grad()
def test_inputs_embeds_positions_and_untied_decoder(saved):
    folder, reference = saved("MobileBertForMaskedLM", tie_word_embeddings=False)
    ours = mobilebert.MobileBertForMaskedLM.from_pretrained(folder)
    assert ours.cls.predictions.decoder.weight is not ours.mobilebert.embeddings.word_embeddings.weight
    inputs = head_inputs("MobileBertForMaskedLM", reference.config)
    embeds = reference.get_input_embeddings()(inputs["input_ids"])
    positions = torch.tensor([[3, 1, 4, 1, 5, 9, 2], [6, 5, 3, 5, 8, 9, 7]])
    for kwargs in ({"inputs_embeds": embeds, "attention_mask": inputs["attention_mask"]},
                   {**inputs, "position_ids": positions}, {"input_ids": inputs["input_ids"]}):
        assert_outputs_close(ours(**kwargs, **FLAGS), reference(**kwargs, **FLAGS))


HEAD_MASK_CASES = ("MobileBertModel", "MobileBertForSequenceClassification")
HEAD_MASK = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.5]])


def test_head_mask_matches_legacy_reference(saved, legacy):
    """head_mask (dropped by transformers 5) multiplies each head's attention probabilities like 4.x did."""
    for name, expected in zip(HEAD_MASK_CASES, legacy["forward"]):
        model = getattr(mobilebert, name).from_pretrained(saved(name)[0])
        inputs = head_mask_inputs(name, model.config)
        with torch.no_grad():
            got = model(**inputs)
            unmasked = model(**{k: v for k, v in inputs.items() if k != "head_mask"})
        assert not torch.allclose(got.hidden_states[-1], unmasked.hidden_states[-1])
        assert_outputs_close(got, expected)


def head_mask_inputs(name, config) -> dict:
    return {**head_inputs(name, config), **head_labels(name, config), "head_mask": HEAD_MASK, **FLAGS}


@pytest.mark.parametrize("size", [104, 95])
def test_resize_token_embeddings_matches_reference(saved, tmp_path, size):
    """Growing or shrinking the vocabulary resizes the embeddings, the tied decoder, its bias and the `dense`
    columns; the scores of the kept tokens stay the reference's, and the reference loads what we save."""
    import transformers

    folder, _ = saved("MobileBertForMaskedLM")
    ours = mobilebert.MobileBertForMaskedLM.from_pretrained(folder)
    theirs = transformers.MobileBertForMaskedLM.from_pretrained(folder).eval()
    for model in (ours, theirs):
        model.resize_token_embeddings(size)
    assert ours.cls.predictions.dense.weight.shape == theirs.cls.predictions.dense.weight.shape
    inputs = head_inputs("MobileBertForMaskedLM", ours.config)
    kept = min(size, 99)
    with torch.no_grad():
        got, expected = ours(**inputs).logits, theirs(**inputs).logits
        assert got.shape == expected.shape == (2, 7, size)
        torch.testing.assert_close(got[..., :kept], expected[..., :kept], atol=1e-5, rtol=1e-4)
        ours.save_pretrained(tmp_path)
        reloaded = transformers.MobileBertForMaskedLM.from_pretrained(tmp_path).eval()
        torch.testing.assert_close(reloaded(**inputs).logits, got, atol=1e-5, rtol=1e-4)


def test_unknown_normalization_is_refused():
    with pytest.raises(leanformers.errors.ConfigError, match="normalization_type"):
        mobilebert.MobileBertConfig(normalization_type="rms_norm")


# ---------------------------------------------------------------------- pipelines over the heads
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "a", "dog", "is", "happy",
         "who", "where", "paris", "in", "lives", "sam", ".", "?", "this", "sentence", "about", "animals", "sports",
         "hello", "world", "example"]


@pytest.fixture(scope="module")
def pipeline_folders(tmp_path_factory):
    """Tiny reference MobileBERT heads (with labels) saved next to a small WordPiece vocabulary."""
    import transformers

    root = tmp_path_factory.mktemp("mobilebert_pipelines")
    tokenizer = transformers.BertTokenizer(vocab={token: i for i, token in enumerate(VOCAB)})
    names = ["entailment", "neutral", "contradiction"]
    labels = {"id2label": dict(enumerate(names)), "label2id": {n: i for i, n in enumerate(names)}}
    folders = {}
    for name, extra in (("MobileBertForMaskedLM", {}), ("MobileBertForSequenceClassification", labels),
                        ("MobileBertForTokenClassification", {"num_labels": 3}),
                        ("MobileBertForQuestionAnswering", {}), ("MobileBertModel", {})):
        folder = root / name
        reference = saved_reference(name, folder, **extra)
        tokenizer.save_pretrained(folder)
        folders[name] = folder, reference
    return folders, tokenizer


def saved_reference(name, folder, **extra):
    from .harness import save_reference_model

    return save_reference_model(name, "MobileBertConfig", folder, **{**BASE, "vocab_size": len(VOCAB), **extra})


PIPELINE_CASES = {  # task -> (head, call arguments)
    "fill-mask": ("MobileBertForMaskedLM", (["the cat [MASK] on the mat ."],), {"top_k": 3}),
    "text-classification": ("MobileBertForSequenceClassification", (["the cat sat .", "a dog is happy"],),
                            {"top_k": None}),
    "token-classification": ("MobileBertForTokenClassification", ("sam lives in paris .",), {}),
    "question-answering": ("MobileBertForQuestionAnswering", (),
                           {"question": "where lives sam ?", "context": "sam lives in paris ."}),
    "feature-extraction": ("MobileBertModel", ("hello world",), {}),
    "zero-shot-classification": ("MobileBertForSequenceClassification", ("this sentence is about animals .",),
                                 {"candidate_labels": ["animals", "sports"]}),
}


@pytest.mark.parametrize("task", PIPELINE_CASES)
def test_pipelines_match_reference(pipeline_folders, task, request):
    import transformers

    folders, _ = pipeline_folders
    head, args, kwargs = PIPELINE_CASES[task]
    folder, reference = folders[head]
    ours = leanformers.pipeline(task, model=str(folder))
    assert type(ours.model).__name__ == head
    if task == "question-answering":  # transformers 5 dropped the pipeline: 4.55.4 is the reference
        expected = request.getfixturevalue("legacy")["qa"]
    else:
        expected = transformers.pipeline(task, model=str(folder))(*args, **kwargs)
    _assert_same_result(ours(*args, **kwargs), expected)


_LEGACY = """
forward = []
for job in payload["jobs"]:
    model = getattr(transformers, job["name"]).from_pretrained(job["folder"], attn_implementation="eager").eval()
    with torch.no_grad():
        forward.append({k: v for k, v in model(**job["inputs"], return_dict=True).items() if v is not None})
qa = transformers.pipeline("question-answering", model=payload["qa_folder"])(**payload["qa_kwargs"])
result = {"forward": forward, "qa": qa}
"""


@pytest.fixture(scope="module")
def legacy(saved, pipeline_folders):
    """What transformers 4.55.4 gives for the head_mask cases and the question-answering pipeline, in one
    interpreter start."""
    jobs = []
    for name in HEAD_MASK_CASES:
        folder, reference = saved(name)
        jobs.append({"name": name, "folder": str(folder), "inputs": head_mask_inputs(name, reference.config)})
    qa_folder = pipeline_folders[0]["MobileBertForQuestionAnswering"][0]
    return run_legacy(_LEGACY, {"jobs": jobs, "qa_folder": str(qa_folder),
                                "qa_kwargs": PIPELINE_CASES["question-answering"][2]})


def _assert_same_result(got, expected):
    if isinstance(expected, dict):
        assert sorted(got) == sorted(expected)
        for key in expected:
            _assert_same_result(got[key], expected[key])
    elif isinstance(expected, (list, tuple)):
        assert len(got) == len(expected)
        for a, b in zip(got, expected):
            _assert_same_result(a, b)
    elif isinstance(expected, float):
        assert got == pytest.approx(expected, rel=1e-4, abs=1e-5)
    else:
        assert got == expected
