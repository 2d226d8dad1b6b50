"""Longformer parity with the reference: every head on sliding windows of several sizes (per-layer lists),
sequences that are and are not window multiples, global tokens (also on padding), padded batches; local and global
attention weights; save/load both ways; refused windows; memory that grows linearly with the length."""

import pytest
import torch
from torch.utils._pytree import tree_leaves
from torch.utils._python_dispatch import TorchDispatchMode

import leanformers
from leanformers.errors import ConfigError
from leanformers.models import longformer_heads as heads

from .harness import assert_outputs_close

CONFIG = dict(vocab_size=99, hidden_size=30, num_hidden_layers=2, num_attention_heads=3, intermediate_size=37,
              max_position_embeddings=64, type_vocab_size=2, attention_window=[4, 6])
FLAGS = dict(output_attentions=True, output_hidden_states=True)
HEADS = {"Model": "AutoModel", "ForMaskedLM": "AutoModelForMaskedLM",
         "ForSequenceClassification": "AutoModelForSequenceClassification",
         "ForTokenClassification": "AutoModelForTokenClassification",
         "ForMultipleChoice": "AutoModelForMultipleChoice", "ForQuestionAnswering": "AutoModelForQuestionAnswering"}


def reference_model(name: str, folder, seed: int = 0, **extra):
    import transformers

    torch.manual_seed(seed)
    labels = 3 if name in ("ForSequenceClassification", "ForTokenClassification") else 2
    config = transformers.LongformerConfig(**{**CONFIG, "num_labels": labels, **extra})
    model = getattr(transformers, "Longformer" + name)(config).eval()
    model.save_pretrained(folder)
    return model


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    cache = {}

    def get(head, **extra):
        key = (head, tuple(sorted(extra.items())))
        if key not in cache:
            folder = tmp_path_factory.mktemp("longformer" + head)
            cache[key] = folder, reference_model(head, folder, **extra)
        return cache[key]
    return get


def qa_rows(rows: int, seq: int, seed: int, pad_last: int = 3):
    """`<s> q q </s></s> context </s>` rows (three separators each) whose last row is right-padded by pad_last."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, CONFIG["vocab_size"], (rows, seq), generator=g)
    mask = torch.ones(rows, seq, dtype=torch.long)
    ids[:, 0], ids[:, 3], ids[:, 4], ids[:, -1] = 0, 2, 2, 2
    if pad_last:
        ids[-1, -pad_last - 1] = 2
        ids[-1, -pad_last:], mask[-1, -pad_last:] = 1, 0
    return ids, mask


def cases(head: str):
    """Inputs for one head: a window multiple with the head's default global attention, then a length that is not
    one with global tokens in uneven numbers per row (one on a padding position) and token types."""
    choices = 2 if head == "ForMultipleChoice" else 1
    out = []
    for seq, explicit_global in ((12, False), (7, True)):
        ids, mask = qa_rows(3 * choices, seq, seed=seq)
        inputs = {"input_ids": ids, "attention_mask": mask}
        if explicit_global:
            glob = torch.zeros_like(ids)
            glob[0, [1, 4]] = 1
            glob[-1, [2, seq - 1]] = 1  # the last position of the last row is padding
            inputs["global_attention_mask"] = glob
            inputs["token_type_ids"] = (torch.arange(seq) >= seq // 2).long().expand_as(ids)
        if choices > 1:
            inputs = {k: v.view(3, choices, seq) for k, v in inputs.items()}
        out.append(inputs)
    return out


def labels_for(head: str, seq: int) -> dict:
    g = torch.Generator().manual_seed(1)
    if head == "ForMaskedLM":
        return {"labels": torch.randint(0, CONFIG["vocab_size"], (3, seq), generator=g)}
    if head == "ForSequenceClassification":
        return {"labels": torch.tensor([0, 2, 1])}
    if head == "ForTokenClassification":
        return {"labels": torch.randint(0, 3, (3, seq), generator=g)}
    if head == "ForMultipleChoice":
        return {"labels": torch.tensor([1, 0, 1])}
    if head == "ForQuestionAnswering":
        return {"start_positions": torch.tensor([1, 5, 30]), "end_positions": torch.tensor([3, 6, 2])}
    return {}


@pytest.mark.parametrize("head", HEADS)
def test_head_parity(saved, head):
    folder, reference = saved(head)
    ours = getattr(heads, "Longformer" + head).from_pretrained(folder)
    assert type(getattr(leanformers, HEADS[head]).from_pretrained(folder)) is type(ours)
    with torch.no_grad():
        for inputs in cases(head):
            kwargs = {**inputs, **labels_for(head, inputs["input_ids"].shape[-1]), **FLAGS}
            expected = reference(**kwargs)
            got = ours(**kwargs)
            assert type(got).__name__ == type(expected).__name__
            # classification, QA and multiple choice put global attention on <s> / the question by default
            assert expected.global_attentions is not None or head in ("Model", "ForMaskedLM", "ForTokenClassification")
            assert_outputs_close(got, expected)
            as_tuple = ours(**kwargs, return_dict=False)
            assert_outputs_close(dict(enumerate(as_tuple)), dict(enumerate(expected.to_tuple())))
            assert_outputs_close(ours(**inputs), reference(**inputs))


def test_embeddings_positions_and_an_int_window(saved):
    """inputs_embeds, explicit position_ids, no attention mask at all, and one window for every layer."""
    folder, reference = saved("Model", attention_window=4)
    ours = heads.LongformerModel.from_pretrained(folder)
    assert ours.config.attention_window == reference.config.attention_window == [4, 4]
    ids, mask = qa_rows(2, 10, seed=3)
    glob = torch.zeros_like(ids)
    glob[:, 0] = 1
    with torch.no_grad():
        embeds = reference.get_input_embeddings()(ids)
        for kwargs in ({"inputs_embeds": embeds, "attention_mask": mask, "global_attention_mask": glob},
                       {"input_ids": ids, "position_ids": torch.arange(2, 12).expand(2, 10)},
                       {"input_ids": ids, "global_attention_mask": glob}):
            assert_outputs_close(ours(**kwargs, **FLAGS), reference(**kwargs, **FLAGS))


def test_window_that_does_not_divide_the_padded_length(saved):
    """Windows [4, 6] pad 5 tokens to 6, which the reference's 4-token layer cannot cut into its chunks; we give
    what the reference gives on the same tokens padded (masked) to 12."""
    folder, reference = saved("Model")
    ours = heads.LongformerModel.from_pretrained(folder)
    ids, mask = qa_rows(2, 5, seed=5, pad_last=1)
    glob = torch.zeros_like(ids)
    glob[0, 1] = 1
    with torch.no_grad():
        with pytest.raises(AssertionError):
            reference(input_ids=ids, attention_mask=mask)
        got = ours(input_ids=ids, attention_mask=mask, global_attention_mask=glob, **FLAGS)
        pad = (0, 7)
        expected = reference(input_ids=torch.nn.functional.pad(ids, pad, value=1),
                             attention_mask=torch.nn.functional.pad(mask, pad),
                             global_attention_mask=torch.nn.functional.pad(glob, pad), **FLAGS)
    cut = {"last_hidden_state": expected.last_hidden_state[:, :5],
           **{name: [t[..., :5, :] for t in getattr(expected, name)] for name in ("hidden_states", "attentions")},
           "global_attentions": [t[:1, :, :6] for t in expected.global_attentions]}  # row 1 has no global token
    assert_outputs_close({**{name: got[name] for name in cut}, "global_attentions": [t[:1] for t in
                                                                                    got.global_attentions]}, cut)
    assert all(t[:1, :, 5:].abs().sum() == 0 for t in expected.global_attentions)  # padding holds no weight


@pytest.mark.parametrize("window, message", [(5, "layer 0 is 5"), ([4], "has 1 values"), ([4, 7], "layer 1 is 7"),
                                             (0, "layer 0 is 0")])
def test_bad_windows_are_refused_like_the_reference(window, message):
    import transformers

    with pytest.raises((AssertionError, ValueError)):
        transformers.LongformerModel(transformers.LongformerConfig(**{**CONFIG, "attention_window": window}))
    with pytest.raises(ConfigError, match=message):
        heads.LongformerModel(heads.LongformerConfig(**{**CONFIG, "attention_window": window}))


@pytest.mark.parametrize("head", HEADS)
def test_saved_by_us_loads_in_reference(saved, tmp_path, head):
    import transformers

    folder, _ = saved(head)
    cls = getattr(heads, "Longformer" + head)
    ours = cls.from_pretrained(folder)
    with torch.no_grad():
        for param in ours.parameters():  # make sure what is compared was written by us
            param.add_(0.01 * torch.randn_like(param))
    ours.save_pretrained(tmp_path)
    theirs, info = getattr(transformers, "Longformer" + head).from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    inputs = {**cases(head)[1], **labels_for(head, 7), **FLAGS}
    with torch.no_grad():
        assert_outputs_close(ours(**inputs), theirs.eval()(**inputs))
        assert_outputs_close(cls.from_pretrained(tmp_path)(**inputs), ours(**inputs), atol=0, rtol=0)


def test_question_answering_needs_three_separators(saved):
    folder, _ = saved("ForQuestionAnswering")
    ids, _ = qa_rows(2, 8, seed=2, pad_last=0)
    ids[1, 3] = 7
    with pytest.raises(ValueError, match=r"three separator tokens.*\[3, 2\]"):
        heads.LongformerForQuestionAnswering.from_pretrained(folder)(input_ids=ids)


class _LargestTensor(TorchDispatchMode):
    """Records the element count of the largest tensor any operation produces."""

    largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        sizes = [t.numel() for t in tree_leaves(out) if isinstance(t, torch.Tensor)]
        self.largest = max([self.largest, *sizes])
        return out


def test_memory_grows_linearly_with_the_length():
    """From 1,024 to 4,096 tokens (one global token; with and without the weights) the largest intermediate grows
    4 times, and stays far below one (seq, seq) matrix."""
    config = heads.LongformerConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                    intermediate_size=16, max_position_embeddings=4100, attention_window=64)
    torch.manual_seed(0)
    model = heads.LongformerModel(config).eval()
    for want_weights in (True, False):
        largest = {}
        for length in (1024, 4096):
            ids = torch.randint(3, 50, (1, length))
            glob = torch.zeros_like(ids)
            glob[0, 0] = 1
            with torch.no_grad(), _LargestTensor() as probe:
                model(input_ids=ids, global_attention_mask=glob, output_attentions=want_weights)
            largest[length] = probe.largest
        assert largest[4096] <= 4.2 * largest[1024], (want_weights, largest)
        assert largest[4096] < 4096 * 4096 / 20, (want_weights, largest)
