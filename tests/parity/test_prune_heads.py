"""prune_heads against transformers 4.55.4 (5.x removed it): the same heads pruned in two steps (the second numbered
as in the unpruned layer) give the same outputs and attention shapes; config.pruned_heads is saved, and a pruned
folder saved by either library loads pruned, with the same outputs, in the other. One subprocess runs every case."""

from __future__ import annotations

import pytest
import torch

import leanformers

from .harness import TINY, assert_outputs_close, random_inputs, save_reference_model
from .legacy import run_legacy

STEPS = ({0: [0, 2], 1: [3]}, {0: [3], 1: [3, 1]})  # layer 0 keeps head 1 only; layer 1 keeps heads 0 and 2
FLAGS = dict(output_attentions=True, output_hidden_states=True)
CASES = {  # class -> (config class, config overrides)
    "BertForSequenceClassification": ("BertConfig", {}),
    "BertForMaskedLM": ("BertConfig", {}),
    "RobertaForMaskedLM": ("RobertaConfig", {"pad_token_id": 1}),
    "XLMRobertaModel": ("XLMRobertaConfig", {"pad_token_id": 1}),
    "CamembertForTokenClassification": ("CamembertConfig", {"pad_token_id": 1}),
    "ElectraForPreTraining": ("ElectraConfig", {"embedding_size": 16}),
    # a layer number names a group's layer: two groups of one layer, so that layers 0 and 1 are distinct
    "AlbertForMaskedLM": ("AlbertConfig", {"embedding_size": 16, "num_hidden_groups": 2}),
    "DistilBertForSequenceClassification": ("DistilBertConfig", {"hidden_dim": 37}),
    "GPT2LMHeadModel": ("GPT2Config", {}),
    "OpenAIGPTLMHeadModel": ("OpenAIGPTConfig", {}),
    "CTRLLMHeadModel": ("CTRLConfig", {"dff": 37}),
    "XLMWithLMHeadModel": ("XLMConfig", {}),
    "FlaubertModel": ("FlaubertConfig", {}),
    "MobileBertForMaskedLM": ("MobileBertConfig", {"hidden_size": 36, "intra_bottleneck_size": 24,
                                                   "embedding_size": 16, "num_feedforward_networks": 2}),
    "BertGenerationEncoder": ("BertGenerationConfig", {}),
}

_REFERENCE = """
result = {}
for name, case in payload["cases"].items():
    cls = getattr(transformers, name)
    model = cls.from_pretrained(case["folder"], attn_implementation="eager").eval()
    for step in payload["steps"]:
        model.prune_heads(step)
    model.save_pretrained(case["pruned"])
    ours = cls.from_pretrained(case["ours"], attn_implementation="eager").eval()
    with torch.no_grad():
        result[name] = {"pruned": dict(model(**case["inputs"], **payload["flags"])),
                        "ours_loaded": dict(ours(**case["inputs"], **payload["flags"])),
                        "ours_pruned_heads": {str(k): sorted(v) for k, v in ours.config.pruned_heads.items()}}
"""


def inputs(name: str) -> dict:
    """Padded inputs; DistilBERT and BertGeneration take no token types."""
    no_types = name.startswith(("DistilBert", "BertGeneration"))
    return {k: v for k, v in random_inputs().items() if not (k == "token_type_ids" and no_types)}


@pytest.fixture(scope="module")
def pruned(tmp_path_factory):
    """{class: (reference results, our pruned model, folder pruned by the reference)}, one subprocess for all."""
    root, ours, cases = tmp_path_factory.mktemp("prune"), {}, {}
    for name, (config_class, extra) in CASES.items():
        folder = root / name
        save_reference_model(name, config_class, folder, **{**TINY, **extra, "attn_implementation": "eager"})
        model = getattr(leanformers, name).from_pretrained(folder).eval()
        for step in STEPS:
            model.prune_heads(step)
        model.save_pretrained(root / f"{name}-ours")
        ours[name] = model
        cases[name] = {"folder": str(folder), "pruned": str(root / f"{name}-pruned"), "ours": str(root / f"{name}-ours"),
                       "inputs": inputs(name)}
    results = run_legacy(_REFERENCE, {"cases": cases, "steps": list(STEPS), "flags": FLAGS})
    return {name: (results[name], ours[name], cases[name]["pruned"]) for name in CASES}


@pytest.mark.parametrize("name", CASES)
def test_pruned_outputs_match_reference(pruned, name):
    reference, model, _ = pruned[name]
    with torch.no_grad():
        out = model(**inputs(name), **FLAGS)
    assert [w.shape[1] for w in out.attentions] == [1, 2]
    assert_outputs_close(out, reference["pruned"])
    assert model.config.pruned_heads == {0: [0, 2, 3], 1: [1, 3]}


@pytest.mark.parametrize("name", CASES)
def test_pruned_folders_load_both_ways(pruned, name):
    reference, model, folder = pruned[name]
    loaded = getattr(leanformers, name).from_pretrained(folder).eval()
    assert {k: sorted(v) for k, v in loaded.config.pruned_heads.items()} == {0: [0, 2, 3], 1: [1, 3]}
    with torch.no_grad():
        assert_outputs_close(loaded(**inputs(name), **FLAGS), reference["pruned"])
    assert reference["ours_pruned_heads"] == {"0": [0, 2, 3], "1": [1, 3]}
    assert_outputs_close(reference["ours_loaded"], reference["pruned"])
    pruned_sets = [module.pruned_heads for module in loaded.modules() if hasattr(module, "pruned_heads")]
    assert pruned_sets == [{0, 2, 3}, {1, 3}]


@pytest.mark.parametrize("name, config_class, extra", [
    ("LlamaModel", "LlamaConfig", {"num_key_value_heads": 2}),
    ("DebertaModel", "DebertaConfig", {}),
])
def test_models_without_pruning_refuse(name, config_class, extra):
    """Architectures whose reference cannot prune (none, or NotImplementedError) refuse, naming the way out."""
    model = getattr(leanformers, name)(getattr(leanformers, config_class)(**TINY, **extra))
    with pytest.raises(NotImplementedError, match="cannot prune attention heads .* head_mask"):
        model.prune_heads({0: [1]})
    assert not getattr(model.config, "pruned_heads", None)


def test_heads_out_of_range_are_refused():
    model = leanformers.BertModel(leanformers.BertConfig(**TINY))
    with pytest.raises(ValueError, match=r"numbered 0\.\.3"):
        model.prune_heads({1: [4]})
    with pytest.raises(ValueError, match="numbered"):
        model.prune_heads({0: [-1]})
    assert not getattr(model.config, "pruned_heads", None)
