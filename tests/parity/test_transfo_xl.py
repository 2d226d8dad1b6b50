"""Transformer-XL against transformers 4.34.1 (the last release where it runs), through its subprocess: two
consecutive segments with memories, adaptive-softmax log-probabilities and losses, the classifier, greedy / beam /
sampled generation, and folders saved by each library loaded by the other."""

from __future__ import annotations

import pytest
import torch

import leanformers
from leanformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForSequenceClassification

from .harness import _close
from .legacy import REF434_PYTHON, run_legacy

# odd sizes: heads not a power of two, clusters of uneven size, div_val 2 and 1 (with and without projection)
CONFIGS = {
    "clusters_div2": dict(vocab_size=53, cutoffs=[11, 29], d_model=30, d_embed=30, n_head=3, d_head=7, d_inner=37,
                          div_val=2, n_layer=2, mem_len=4, clamp_len=3, same_length=True, untie_r=True,
                          pre_lnorm=False),
    "projected_div1": dict(vocab_size=47, cutoffs=[13], d_model=30, d_embed=24, n_head=5, d_head=6, d_inner=31,
                           div_val=1, n_layer=2, mem_len=6, clamp_len=-1, same_length=False, untie_r=False,
                           pre_lnorm=True),
    "plain_div1": dict(vocab_size=41, cutoffs=[7, 20], d_model=24, d_embed=24, n_head=3, d_head=8, d_inner=29,
                       div_val=1, n_layer=2, mem_len=3, clamp_len=2, same_length=True, untie_r=True, pre_lnorm=True),
}
CLASSIFIER = dict(CONFIGS["plain_div1"], num_labels=3, pad_token_id=1)

_REFERENCE = """
import warnings
warnings.filterwarnings("ignore")
transformers.logging.set_verbosity_error()

def plain(out):
    return {k: v for k, v in out.items() if v is not None}

def lm_case(spec):
    torch.manual_seed(0)
    model = transformers.TransfoXLLMHeadModel(transformers.TransfoXLConfig(**spec["config"])).eval()
    model.save_pretrained(spec["folder"])
    seg1, seg2, labels = spec["seg1"], spec["seg2"], spec["labels"]
    flags = dict(output_hidden_states=True, output_attentions=True)
    out = {}
    with torch.no_grad():
        first = model(seg1, **flags)
        out["first"] = plain(first)
        out["second"] = plain(model(seg2, mems=first.mems, **flags))
        out["masked_heads"] = plain(model(seg1, head_mask=spec["head_mask"], **flags))
        out["loss_default_order"] = model(seg1, labels=labels.clone()).loss
        model.crit.keep_order = True  # per-token losses in token order (the default orders them by cluster)
        out["with_labels"] = plain(model(seg1, labels=labels.clone()))
        out["with_labels_second"] = plain(model(seg2, mems=first.mems, labels=seg2.clone()))
        model.trainer_compatible = True  # the tuple output with the loss first
        out["trainer_tuple"] = model(seg1, labels=labels.clone(), output_hidden_states=True, return_dict=False)
        model.trainer_compatible = False
        model.crit.keep_order = False
        prompt = spec["prompt"]
        out["greedy"] = model.generate(prompt, max_new_tokens=7, do_sample=False, pad_token_id=0)
        out["beam"] = model.generate(prompt, max_new_tokens=5, num_beams=3, do_sample=False, pad_token_id=0,
                                     length_penalty=0.0)
        torch.manual_seed(5)
        out["sample"] = model.generate(prompt, max_new_tokens=6, do_sample=True, top_k=0, pad_token_id=0)
        ours, info = transformers.TransfoXLLMHeadModel.from_pretrained(spec["ours"], output_loading_info=True)
        out["ours_missing"] = sorted(info["missing_keys"])
        out["ours_unexpected"] = sorted(info["unexpected_keys"])
        out["ours_first"] = plain(ours.eval()(seg1, output_hidden_states=True))
    out["resized"] = [resized(spec, *resize) for resize in spec["resizes"]]
    return out

def resized(spec, layer, size, ids, head):
    model = getattr(transformers, head).from_pretrained(spec["folder"]).eval()
    torch.manual_seed(7)  # the new rows are drawn from the global generator
    returned = type(model.resize_token_embeddings(size, layer=layer)).__name__
    out = {"returned": returned, "cutoffs": model.config.cutoffs, "vocab_size": model.config.vocab_size,
           "state": dict(model.state_dict())}
    with torch.no_grad():
        if head == "TransfoXLModel":
            return {**out, "hidden": model(ids).last_hidden_state}
        model.crit.keep_order = True
        return {**out, "scores": model(ids).prediction_scores, "losses": model(ids, labels=ids).losses}

def classifier_case(spec):
    torch.manual_seed(0)
    model = transformers.TransfoXLForSequenceClassification(transformers.TransfoXLConfig(**spec["config"])).eval()
    model.save_pretrained(spec["folder"])
    with torch.no_grad():
        first = model(spec["ids"], labels=spec["labels"], output_hidden_states=True, output_attentions=True)
        second = model(spec["ids"], mems=first.mems, labels=spec["labels"])
    return {"first": plain(first), "second": plain(second)}

result = {name: lm_case(spec) for name, spec in payload["lm"].items()}
result["classifier"] = classifier_case(payload["classifier"])
"""


def _ids(shape, vocab, seed):
    return torch.randint(2, vocab, shape, generator=torch.Generator().manual_seed(seed))


# (layer, change of the vocabulary size, head): inner and last clusters, growing and shrinking
RESIZES = {"clusters_div2": [(1, 3, "TransfoXLLMHeadModel"), (-1, -4, "TransfoXLLMHeadModel"),
                             (0, 2, "TransfoXLModel")],
           "projected_div1": [(-1, 3, "TransfoXLLMHeadModel")], "plain_div1": [(0, -2, "TransfoXLLMHeadModel")]}


def _resizes(name, vocab):
    """[(layer, new size, ids that reach the last rows, head class)] of a configuration."""
    out = []
    for layer, change, head in RESIZES[name]:
        size = vocab + change
        ids = torch.stack([torch.arange(size - 6, size), _ids((6,), size, 9)])
        out.append((layer, size, ids, head))
    return out


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    """Reference models (built and saved by 4.34.1) and their outputs, plus our own random models saved by us and
    run by the reference; one interpreter start for everything."""
    root = tmp_path_factory.mktemp("transfo_xl")
    lm = {}
    for name, config in CONFIGS.items():
        vocab = config["vocab_size"]
        labels = _ids((2, 6), vocab, 3)
        labels[1, 2] = -100
        torch.manual_seed(1)
        ours = leanformers.TransfoXLLMHeadModel(leanformers.TransfoXLConfig(**config)).eval()
        ours.save_pretrained(root / f"{name}-ours")
        lm[name] = {"config": config, "folder": str(root / name), "ours": str(root / f"{name}-ours"),
                    "seg1": _ids((2, 6), vocab, 1), "seg2": _ids((2, 5), vocab, 2), "labels": labels,
                    "head_mask": torch.tensor([[1.0, 0.0, 1.0, 1.0, 0.0][:config["n_head"]],
                                               [0.0, 1.0, 1.0, 0.0, 1.0][:config["n_head"]]]),
                    "prompt": _ids((2, 4), vocab, 4), "resizes": _resizes(name, vocab)}
    ids = _ids((2, 6), CLASSIFIER["vocab_size"], 5)
    ids[0, 4:] = CLASSIFIER["pad_token_id"]
    classifier = {"config": CLASSIFIER, "folder": str(root / "classifier"), "ids": ids, "labels": torch.tensor([2, 0])}
    reference = run_legacy(_REFERENCE, {"lm": lm, "classifier": classifier}, python=REF434_PYTHON)
    return {"lm": lm, "classifier": classifier, "reference": reference}


def assert_same(ours, theirs: dict, atol=1e-5):
    assert sorted(ours.keys()) == sorted(theirs), (sorted(ours.keys()), sorted(theirs))
    for key, value in theirs.items():
        if isinstance(value, tuple) and not value:
            assert ours[key] == (), key
        else:
            _close(ours[key], value, atol, 1e-4, key)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_segments_with_memory_match_reference(cases, name):
    spec, expected = cases["lm"][name], cases["reference"][name]
    model = AutoModelForCausalLM.from_pretrained(spec["folder"])
    assert type(model) is leanformers.TransfoXLLMHeadModel
    flags = dict(output_hidden_states=True, output_attentions=True)
    with torch.no_grad():
        first = model(spec["seg1"], **flags)
        assert_same(first, expected["first"])
        assert_same(model(spec["seg2"], mems=first.mems, **flags), expected["second"])
        assert_same(model(spec["seg1"], head_mask=spec["head_mask"], **flags), expected["masked_heads"])
        as_tuple = model(spec["seg2"], mems=first.mems, return_dict=False)
        _close(list(as_tuple), [expected["second"]["prediction_scores"], expected["second"]["mems"]], 1e-5, 1e-4,
               "tuple")
        base = AutoModel.from_pretrained(spec["folder"])
        _close(base(spec["seg1"]).last_hidden_state, expected["first"]["hidden_states"][-1], 1e-5, 1e-4, "base")


@pytest.mark.parametrize("name", list(CONFIGS))
def test_losses_match_reference(cases, name):
    spec, expected = cases["lm"][name], cases["reference"][name]
    model = leanformers.TransfoXLLMHeadModel.from_pretrained(spec["folder"])
    with torch.no_grad():
        out = model(spec["seg1"], labels=spec["labels"])
        assert_same(out, expected["with_labels"])
        torch.testing.assert_close(out.loss, expected["loss_default_order"])
        first = model(spec["seg1"])
        assert_same(model(spec["seg2"], mems=first.mems, labels=spec["seg2"]), expected["with_labels_second"])
    assert out.losses[1, 1] == 0  # the ignored label (-100) counts nothing
    model.config.trainer_compatible = True
    with torch.no_grad():
        _close(model(spec["seg1"], labels=spec["labels"], output_hidden_states=True, return_dict=False),
               expected["trainer_tuple"], 1e-5, 1e-4, "trainer_tuple")


@pytest.mark.parametrize("name", list(CONFIGS))
def test_generate_matches_reference(cases, name):
    spec, expected = cases["lm"][name], cases["reference"][name]
    model = leanformers.TransfoXLLMHeadModel.from_pretrained(spec["folder"])
    prompt = spec["prompt"]
    assert torch.equal(model.generate(prompt, max_new_tokens=7, do_sample=False, pad_token_id=0), expected["greedy"])
    # 4.34.1 divides a finished beam's score by its whole length, later releases by the generated length only:
    # without length normalisation both rank the beams alike
    assert torch.equal(model.generate(prompt, max_new_tokens=5, num_beams=3, do_sample=False, pad_token_id=0,
                                      length_penalty=0.0), expected["beam"])
    torch.manual_seed(5)
    assert torch.equal(model.generate(prompt, max_new_tokens=6, do_sample=True, top_k=0, pad_token_id=0),
                       expected["sample"])


def test_generate_continues_from_a_given_memory(cases):
    """A memory passed to generate() is what the prompt attends to (4.34.1 drops it), and beams repeat it."""
    spec = cases["lm"]["projected_div1"]
    model = leanformers.TransfoXLLMHeadModel.from_pretrained(spec["folder"])
    memory = model(spec["seg1"]).mems
    with torch.no_grad():
        ids, step = spec["prompt"], model(spec["prompt"], mems=memory)
        for _ in range(3):  # greedy by hand: the newest token and the carried memory each step
            token = step.prediction_scores[:, -1].argmax(-1, keepdim=True)
            ids, step = torch.cat([ids, token], dim=1), model(token, mems=step.mems)
    assert torch.equal(model.generate(spec["prompt"], mems=memory, max_new_tokens=3, do_sample=False,
                                      pad_token_id=0), ids)
    beams = model.generate(spec["prompt"], mems=memory, max_new_tokens=3, num_beams=2, num_return_sequences=2,
                           pad_token_id=0)
    assert beams.shape == (4, 7)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_saved_by_us_loads_in_reference(cases, name):
    spec, expected = cases["lm"][name], cases["reference"][name]
    ours = leanformers.TransfoXLLMHeadModel.from_pretrained(spec["ours"])
    tied = set(ours.tied_weight_pairs())
    assert set(expected["ours_missing"]) <= tied and not expected["ours_unexpected"], expected["ours_missing"]
    with torch.no_grad():
        assert_same(ours(spec["seg1"], output_hidden_states=True), expected["ours_first"])


@pytest.mark.parametrize("name", list(CONFIGS))
def test_resize_token_embeddings_matches_reference(cases, name):
    """One cluster resized (4.34.1's `layer=`): same cutoffs, weights (new rows from the same generator), outputs."""
    spec = cases["lm"][name]
    for (layer, size, ids, head), expected in zip(spec["resizes"], cases["reference"][name]["resized"]):
        model = getattr(leanformers, head).from_pretrained(spec["folder"]).eval()
        torch.manual_seed(7)
        returned = model.resize_token_embeddings(size, layer=layer)
        assert type(returned).__name__ == expected["returned"]
        assert (model.config.cutoffs, model.config.vocab_size) == (expected["cutoffs"], expected["vocab_size"])
        state = model.state_dict()
        assert set(state) == set(expected["state"])
        for key, value in expected["state"].items():
            torch.testing.assert_close(state[key], value, rtol=0, atol=0, msg=key)
        with torch.no_grad():
            if head == "TransfoXLModel":
                _close(model(ids).last_hidden_state, expected["hidden"], 1e-5, 1e-4, "hidden")
            else:
                _close(model(ids).prediction_scores, expected["scores"], 1e-5, 1e-4, "scores")
                _close(model(ids, labels=ids).losses, expected["losses"], 1e-5, 1e-4, "losses")
    model = leanformers.TransfoXLLMHeadModel.from_pretrained(spec["folder"])
    with pytest.raises(leanformers.errors.ConfigError, match="layer=7"):
        model.resize_token_embeddings(60, layer=7)
    with pytest.raises(leanformers.errors.ConfigError, match="no rows"):
        model.resize_token_embeddings(0)


def test_classifier_matches_reference(cases):
    spec, expected = cases["classifier"], cases["reference"]["classifier"]
    model = AutoModelForSequenceClassification.from_pretrained(spec["folder"])
    assert type(model) is leanformers.TransfoXLForSequenceClassification
    with torch.no_grad():
        first = model(spec["ids"], labels=spec["labels"], output_hidden_states=True, output_attentions=True)
        assert_same(first, expected["first"])
        assert_same(model(spec["ids"], mems=first.mems, labels=spec["labels"]), expected["second"])


def test_unsupported_options_are_refused():
    config = AutoConfig.for_model("transfo-xl", **CONFIGS["plain_div1"], attn_type=2)
    with pytest.raises(leanformers.errors.ConfigError, match="attn_type=2"):
        leanformers.TransfoXLModel(config)
    config = AutoConfig.for_model("transfo-xl", **CONFIGS["plain_div1"], sample_softmax=8)
    with pytest.raises(leanformers.errors.ConfigError, match="sample_softmax=8"):
        leanformers.TransfoXLLMHeadModel(config)


def test_adaptive_softmax_functions_match_torch_module():
    """The shared functions over an nn.AdaptiveLogSoftmaxWithLoss's own head and tails (XLM's `asm` layout)."""
    from leanformers.adaptive_softmax import adaptive_log_probs, adaptive_nll

    torch.manual_seed(0)
    module = torch.nn.AdaptiveLogSoftmaxWithLoss(12, 37, cutoffs=[5, 17], div_value=2.0, head_bias=True).eval()
    hidden, labels = torch.randn(9, 12), torch.randint(0, 37, (9,))
    with torch.no_grad():
        log_probs = adaptive_log_probs(hidden, module.head, list(module.tail))
        torch.testing.assert_close(log_probs, module.log_prob(hidden))
        nll = adaptive_nll(hidden, labels, module.head, list(module.tail), [5, 17], 37)
        torch.testing.assert_close(nll.mean(), module(hidden, labels).loss)
