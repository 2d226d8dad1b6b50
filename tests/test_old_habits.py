"""Habits from code written for Transformers 4.x get clear errors, or the behaviour the models were trained with."""

from __future__ import annotations

import pytest
import torch

import leanformers

TINY_BERT = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)


def _models():
    torch.manual_seed(0)
    return {
        "bert": leanformers.BertForSequenceClassification(leanformers.BertConfig(**TINY_BERT)).eval(),
        "gpt2": leanformers.GPT2LMHeadModel(leanformers.GPT2Config(vocab_size=99, n_embd=32, n_layer=2, n_head=4,
                                                                   n_positions=64)).eval(),
        "t5": leanformers.T5ForConditionalGeneration(leanformers.T5Config(
            vocab_size=99, d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4)).eval(),
    }


@pytest.mark.parametrize("call", ["positional", "input_ids", "attention_mask", "decoder_input_ids"])
def test_python_lists_get_an_error_that_names_return_tensors(call):
    ids = torch.tensor([[5, 6, 7]])
    for name, model in _models().items():
        kwargs = {"input_ids": ids}
        if name == "t5":
            kwargs["decoder_input_ids"] = ids
        if call == "positional":
            args, kwargs = ([[5, 6, 7]],), {k: v for k, v in kwargs.items() if k != "input_ids"}
        else:
            if call == "decoder_input_ids" and name != "t5":
                continue
            args, kwargs[call] = (), [[1, 1, 1]] if call == "attention_mask" else [[5, 6, 7]]
        with pytest.raises(TypeError, match='return_tensors="pt"') as caught:
            model(*args, **kwargs)
        assert type(model).__name__ in str(caught.value)


def test_tensorflow_and_flax_class_names_point_to_the_pytorch_class():
    with pytest.raises(AttributeError, match="PyTorch models only. Use BertModel.*from_tf=True"):
        _ = leanformers.TFBertModel
    with pytest.raises(AttributeError, match="Use GPT2LMHeadModel"):
        _ = leanformers.FlaxGPT2LMHeadModel
    with pytest.raises(AttributeError, match="has no attribute 'TFNotAModel'"):
        _ = leanformers.TFNotAModel


@pytest.mark.parametrize("head", ["DistilBertModel", "DistilBertForMaskedLM", "DistilBertForSequenceClassification",
                                  "DistilBertForTokenClassification", "DistilBertForQuestionAnswering"])
def test_distilbert_accepts_and_ignores_token_type_ids(head):
    import transformers

    config_kwargs = dict(vocab_size=99, dim=32, n_layers=2, n_heads=4, hidden_dim=37)
    torch.manual_seed(0)
    ours = getattr(leanformers, head)(leanformers.DistilBertConfig(**config_kwargs)).eval()
    reference = getattr(transformers, head)(transformers.DistilBertConfig(**config_kwargs)).eval()
    reference.load_state_dict(ours.state_dict())
    ids = torch.tensor([[5, 6, 7, 8]])
    types = torch.tensor([[0, 0, 1, 1]])
    with torch.no_grad():
        plain, typed, theirs = ours(ids)[0], ours(ids, token_type_ids=types)[0], reference(ids, token_type_ids=types)[0]
    torch.testing.assert_close(typed, plain, rtol=0, atol=0)
    torch.testing.assert_close(typed, theirs)
