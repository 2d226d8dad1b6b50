"""Checks shared by the encoder parity tests (ALBERT, RoBERTa family, ELECTRA): one head against the reference."""

from __future__ import annotations

import torch

from .harness import assert_outputs_close, random_inputs, save_reference_model
from .legacy import legacy_forward

FLAGS = dict(output_attentions=True, output_hidden_states=True)


def reference_cache(tmp_path_factory, base: dict):
    """get(class name, config class name, **config) -> (folder, reference model), each built and saved once."""
    cache = {}

    def get(name, config_name, **extra):
        key = (name, config_name, tuple(sorted(extra.items())))
        if key not in cache:
            folder = tmp_path_factory.mktemp(name)
            cache[key] = folder, save_reference_model(name, config_name, folder, **{**base, **extra})
        return cache[key]
    return get


def head_inputs(name: str, config, batch: int = 2, seq: int = 7) -> dict:
    """Padded random inputs (padding positions hold the pad token); (batch, 2 choices, seq) for multiple choice."""
    choices = 2 if name.endswith("ForMultipleChoice") else 1
    inputs = random_inputs(batch=batch * choices, seq=seq, vocab=config.vocab_size)
    if config.pad_token_id is not None:
        inputs["input_ids"] = inputs["input_ids"].masked_fill(inputs["attention_mask"] == 0, config.pad_token_id)
    if choices > 1:
        inputs = {k: v.view(batch, choices, seq) for k, v in inputs.items()}
    if name.endswith("ForCausalLM"):
        inputs["use_cache"] = False  # the reference would return a cache; ours keeps none
    return inputs


def head_labels(name: str, config, batch: int = 2, seq: int = 7) -> dict:
    """Labels (or spans) that make the head compute its loss."""
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, config.vocab_size, (batch, seq), generator=g)
    tokens[:, 0] = -100  # ignored positions must stay ignored
    if name == "ElectraForPreTraining":
        return {"labels": torch.randint(0, 2, (batch, seq), generator=g)}
    if name.endswith("ForPreTraining"):
        return {"labels": tokens, "sentence_order_label": torch.randint(0, 2, (batch,), generator=g)}
    if name.endswith(("ForMaskedLM", "ForCausalLM")):
        return {"labels": tokens}
    if name.endswith("ForSequenceClassification"):
        return {"labels": torch.randint(0, config.num_labels, (batch,), generator=g)}
    if name.endswith("ForMultipleChoice"):
        return {"labels": torch.randint(0, 2, (batch,), generator=g)}
    if name.endswith("ForTokenClassification"):
        return {"labels": torch.randint(0, config.num_labels, (batch, seq), generator=g)}
    if name.endswith("ForQuestionAnswering"):
        return {"start_positions": torch.tensor([1, 9]), "end_positions": torch.tensor([3, 4])}
    return {}


def check_head(cls, auto_cls, folder, reference, name: str):
    """Load `folder` with `cls` and `auto_cls`; every output (loss, hidden states, attentions) equals the reference,
    as an output object and as a tuple, on the eager path (weights wanted) and the SDPA path."""
    ours = cls.from_pretrained(folder)
    by_auto = auto_cls.from_pretrained(folder)
    assert type(by_auto) is cls
    inputs = head_inputs(name, reference.config)
    labels = head_labels(name, reference.config)
    flags = FLAGS
    with torch.no_grad():
        expected = reference(**inputs, **labels, **flags)
        assert_outputs_close(ours(**inputs, **labels, **flags), expected)
        assert_outputs_close(by_auto(**inputs, **labels, **flags), expected)
        as_tuple = ours(**inputs, **labels, **flags, return_dict=False)
        assert isinstance(as_tuple, tuple)
        assert_outputs_close(_indexed(as_tuple), _indexed(expected.to_tuple()))
        plain = ours(**inputs)  # no weights asked for: the fused attention kernel
        assert_outputs_close(plain, reference(**inputs))
    return ours


def check_reload_by_reference(cls, folder, save_dir, name: str, labels: dict):
    """Our save_pretrained writes a folder the reference loads with no missing or unexpected weights."""
    import transformers

    ours = cls.from_pretrained(folder)
    with torch.no_grad():
        for param in ours.parameters():  # make sure what is compared was written by us
            param.add_(0.01 * torch.randn_like(param))
    ours.save_pretrained(save_dir)
    theirs, info = getattr(transformers, name).from_pretrained(save_dir, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    inputs = head_inputs(name, ours.config)
    with torch.no_grad():
        assert_outputs_close(ours(**inputs, **labels), theirs.eval()(**inputs, **labels))


def check_head_mask_against_legacy(cases):
    """head_mask, which transformers 5 dropped, against transformers 4.55.4, all cases in one legacy interpreter.

    A case is (our class, folder, class name, head_mask[, output fields not to compare]).
    """
    jobs, ours, skips = [], [], []
    for cls, folder, name, head_mask, *skip in cases:
        model = cls.from_pretrained(folder)
        inputs = {**head_inputs(name, model.config), **head_labels(name, model.config), "head_mask": head_mask,
                  **FLAGS}
        jobs.append({"class_name": name, "folder": folder, "inputs": inputs})
        skips.append({"cross_attentions", *(skip[0] if skip else ())})  # 4.x: None without cross-attention
        with torch.no_grad():
            ours.append(model(**inputs))
    for got, expected, skip in zip(ours, legacy_forward(jobs), skips):
        assert_outputs_close({k: v for k, v in got.items() if k not in skip},
                             {k: v for k, v in expected.items() if k not in skip})


def _indexed(values: tuple) -> dict:
    return {str(i): v for i, v in enumerate(values)}
