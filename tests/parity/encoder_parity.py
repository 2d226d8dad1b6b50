"""Checks shared by the encoder parity tests (BERT, DistilBERT, ALBERT, RoBERTa family, ELECTRA): one head against
the reference."""

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
    """Padded random inputs (padding positions hold the pad token); (batch, 2 choices, seq) for multiple choice;
    token types only for a model that has them."""
    choices = 2 if name.endswith("ForMultipleChoice") else 1
    inputs = random_inputs(batch=batch * choices, seq=seq, vocab=config.vocab_size)
    if not hasattr(config, "type_vocab_size"):
        inputs.pop("token_type_ids")
    if config.pad_token_id is not None:
        inputs["input_ids"] = inputs["input_ids"].masked_fill(inputs["attention_mask"] == 0, config.pad_token_id)
    if choices > 1:
        inputs = {k: v.view(batch, choices, seq) for k, v in inputs.items()}
    if name.endswith(("ForCausalLM", "LMHeadModel")):
        inputs["use_cache"] = False  # the reference would return a cache; ours keeps none
    return inputs


def head_labels(name: str, config, batch: int = 2, seq: int = 7) -> dict:
    """Labels (or spans) that make the head compute its loss."""
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, config.vocab_size, (batch, seq), generator=g)
    tokens[:, 0] = -100  # ignored positions must stay ignored
    pair = torch.randint(0, 2, (batch,), generator=g)
    if name == "ElectraForPreTraining":
        return {"labels": torch.randint(0, 2, (batch, seq), generator=g)}
    if name in ("BertForPreTraining", "MobileBertForPreTraining"):
        return {"labels": tokens, "next_sentence_label": pair}
    if name.endswith("ForPreTraining"):
        return {"labels": tokens, "sentence_order_label": pair}
    if name.endswith(("ForMaskedLM", "ForCausalLM", "LMHeadModel")):
        return {"labels": tokens}
    if name.endswith("ForSequenceClassification"):
        return {"labels": torch.randint(0, config.num_labels, (batch,), generator=g)}
    if name.endswith(("ForMultipleChoice", "ForNextSentencePrediction")):
        return {"labels": pair}
    if name.endswith("ForTokenClassification"):
        return {"labels": torch.randint(0, config.num_labels, (batch, seq), generator=g)}
    if name.endswith("ForQuestionAnswering"):
        return {"start_positions": torch.tensor([1, 9]), "end_positions": torch.tensor([3, 4])}
    return {}


def check_head(cls, auto_cls, folder, reference, name: str):
    """Load `folder` with `cls` and `auto_cls`; every output (loss, hidden states, attentions) of both equals the
    reference, as an output object of the same type and as a tuple, on the eager path (weights wanted) and the
    SDPA path."""
    ours = cls.from_pretrained(folder)
    by_auto = auto_cls.from_pretrained(folder)
    assert type(ours) is type(by_auto) is cls
    inputs = head_inputs(name, reference.config)
    labels = head_labels(name, reference.config)
    with torch.no_grad():
        expected = reference(**inputs, **labels, **FLAGS)
        assert ("loss" in expected) == bool(labels)
        for model in (ours, by_auto):
            got = model(**inputs, **labels, **FLAGS)
            assert type(got).__name__ == type(expected).__name__
            assert_outputs_close(got, expected)
            as_tuple = model(**inputs, **labels, **FLAGS, return_dict=False)
            assert isinstance(as_tuple, tuple)
            assert_outputs_close(_indexed(as_tuple), _indexed(expected.to_tuple()))
            plain = model(**inputs)  # no weights asked for: the fused attention kernel
            assert_outputs_close(plain, reference(**inputs))
    return ours


def check_embeds_and_positions(ours, reference, positions, *cases: dict):
    """inputs_embeds with a mask, explicit position_ids, bare input_ids (default token types, no mask) and any
    further `cases` give the reference's outputs."""
    inputs = head_inputs(type(reference).__name__, reference.config)
    embeds = reference.get_input_embeddings()(inputs["input_ids"])
    with torch.no_grad():
        for kwargs in ({"inputs_embeds": embeds, "attention_mask": inputs["attention_mask"]},
                       {**inputs, "position_ids": positions}, {"input_ids": inputs["input_ids"]}, *cases):
            assert_outputs_close(ours(**kwargs, **FLAGS), reference(**kwargs, **FLAGS))


def check_cross_attention(cls, folder, reference, name: str, width: int):
    """A decoder (is_decoder, add_cross_attention) attending to padded encoder states, labels given."""
    ours = cls.from_pretrained(folder)
    encoder_mask = torch.ones(2, 5, dtype=torch.long)
    encoder_mask[0, -2:] = 0
    kwargs = {**head_inputs(name, reference.config), **head_labels(name, reference.config), **FLAGS,
              "encoder_hidden_states": torch.randn(2, 5, width, generator=torch.Generator().manual_seed(2)),
              "encoder_attention_mask": encoder_mask}
    with torch.no_grad():
        got = ours(**kwargs)
        assert len(got.cross_attentions) == reference.config.num_hidden_layers
        assert_outputs_close(got, reference(**kwargs))


def check_reload_by_reference(cls, folder, save_dir, name: str, labels: dict):
    """Our save_pretrained writes a folder the reference loads with no missing, unexpected or mismatched weights
    and the same outputs, and that we load back exactly."""
    import transformers

    ours = cls.from_pretrained(folder)
    with torch.no_grad():
        for param in ours.parameters():  # make sure what is compared was written by us
            param.add_(0.01 * torch.randn_like(param))
    ours.save_pretrained(save_dir)
    theirs, info = getattr(transformers, name).from_pretrained(save_dir, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    inputs = {**head_inputs(name, ours.config), **labels}
    with torch.no_grad():
        assert_outputs_close(ours(**inputs), theirs.eval()(**inputs))
        assert_outputs_close(cls.from_pretrained(save_dir)(**inputs), ours(**inputs), atol=0, rtol=0)


def check_problem_type(cls, name: str, config_name: str, folder, base: dict, num_labels: int, problem_type,
                       integer_labels: bool = False):
    """Regression, single- and multi-label losses equal the reference's; an unset problem_type is inferred from the
    labels and stored on the config as the reference does."""
    reference = save_reference_model(name, config_name, folder, **base, num_labels=num_labels,
                                     problem_type=problem_type)
    ours = cls.from_pretrained(folder)
    g = torch.Generator().manual_seed(4)
    shape = (2,) if integer_labels else (2, num_labels)
    labels = (torch.randint(0, num_labels, shape, generator=g) if integer_labels
              else torch.rand(shape, generator=g).round() if problem_type else torch.randn(shape, generator=g))
    if num_labels == 1:
        labels = labels.view(-1)
    inputs = head_inputs(name, reference.config)
    with torch.no_grad():
        assert_outputs_close(ours(**inputs, labels=labels), reference(**inputs, labels=labels))
    assert ours.config.problem_type == reference.config.problem_type is not None


def check_head_mask_against_legacy(cases):
    """head_mask, which transformers 5 dropped, against transformers 4.55.4, all cases in one legacy interpreter;
    the mask changes our outputs (it is not silently ignored).

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
            unmasked = model(**{k: v for k, v in inputs.items() if k != "head_mask"})
        assert not torch.allclose(ours[-1].hidden_states[-1], unmasked.hidden_states[-1])
    for got, expected, skip in zip(ours, legacy_forward(jobs), skips):
        assert_outputs_close({k: v for k, v in got.items() if k not in skip},
                             {k: v for k, v in expected.items() if k not in skip})


def _indexed(values: tuple) -> dict:
    return {str(i): v for i, v in enumerate(values)}
