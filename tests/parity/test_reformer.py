"""Reformer against the reference: every head on LSH and local attention (factorised and automatic bucket counts,
one and two hashing rounds, causal or not, padded batches, lengths that do and do not fill the chunks), gradients
through the reversible layers in training, what training keeps for backward, cached greedy generation, saving both
ways, the Auto classes and the pipelines."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
import transformers

import leanformers
from conftest import fixture_path
from leanformers.models.reformer_layers import ReformerDynamicCache, run_reversible

from .harness import _close
from .legacy import run_legacy

BASE = dict(vocab_size=37, hidden_size=30, num_attention_heads=3, attention_head_size=7, feed_forward_size=19,
            axial_pos_shape=[4, 6], axial_pos_embds_dim=[12, 18], max_position_embeddings=24, hash_seed=3,
            hidden_dropout_prob=0.0, local_attention_probs_dropout_prob=0.0, lsh_attention_probs_dropout_prob=0.0,
            pad_token_id=0, eos_token_id=None)
CONFIGS = {
    # chunks of 4 (local) and 6 (LSH): inputs are padded to multiples of 12; axial position embeddings
    "local-lsh": dict(attn_layers=["local", "lsh"], local_attn_chunk_length=4, lsh_attn_chunk_length=6,
                      num_hashes=2, num_buckets=[2, 2], is_decoder=False),
    # a feed-forward over 3 positions at a time; learned position embeddings
    "lsh-lsh-causal": dict(attn_layers=["lsh", "lsh"], lsh_attn_chunk_length=6, num_hashes=1, num_buckets=4,
                           is_decoder=True, chunk_size_feed_forward=3, axial_pos_embds=False),
    # num_buckets=None: the count is chosen on the first long input ([2, 4] here), factorised past its limit;
    # logits computed 3 positions at a time
    "auto-buckets": dict(attn_layers=["lsh", "local"], lsh_attn_chunk_length=2, local_attn_chunk_length=4,
                         num_hashes=2, num_buckets=None, is_decoder=False, lsh_num_chunks_after=1,
                         chunk_size_lm_head=3),
}
SEQ_LENGTHS = {"local-lsh": (4, 13, 24), "lsh-lsh-causal": (6, 13, 18), "auto-buckets": (12, 24, 9)}
HEADS = {
    "local-lsh": ["ReformerModel", "ReformerForMaskedLM", "ReformerForSequenceClassification",
                  "ReformerForQuestionAnswering"],
    "lsh-lsh-causal": ["ReformerModel", "ReformerModelWithLMHead", "ReformerForSequenceClassification",
                       "ReformerForQuestionAnswering"],
    "auto-buckets": ["ReformerForMaskedLM"],
}
AUTO = {"ReformerModel": "AutoModel", "ReformerForMaskedLM": "AutoModelForMaskedLM",
        "ReformerModelWithLMHead": "AutoModelForCausalLM",
        "ReformerForSequenceClassification": "AutoModelForSequenceClassification",
        "ReformerForQuestionAnswering": "AutoModelForQuestionAnswering"}
FLAGS = dict(output_hidden_states=True, output_attentions=True)


def build(name: str, config: str, folder, **extra):
    """A tiny random reference model (eval mode) saved to `folder`."""
    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)
    model = getattr(transformers, name)(transformers.ReformerConfig(**{**BASE, **CONFIGS[config], **extra}))
    model.eval().save_pretrained(folder)
    return model


def batch(seq: int, rows: int = 2, pad: int = 2, seed: int = 0) -> dict:
    """Random ids; the last row right-padded by `pad` pad tokens."""
    g = torch.Generator().manual_seed(seed + seq)
    input_ids = torch.randint(1, BASE["vocab_size"], (rows, seq), generator=g)
    mask = torch.ones(rows, seq, dtype=torch.long)
    if pad:
        mask[-1, -pad:] = 0
        input_ids[-1, -pad:] = 0
    return {"input_ids": input_ids, "attention_mask": mask}


def labels(name: str, seq: int, rows: int = 2) -> dict:
    g = torch.Generator().manual_seed(1)
    if name in ("ReformerForMaskedLM", "ReformerModelWithLMHead"):
        tokens = torch.randint(0, BASE["vocab_size"], (rows, seq), generator=g)
        tokens[:, 0] = -100
        return {"labels": tokens}
    if name == "ReformerForSequenceClassification":
        return {"labels": torch.tensor([1, 0])}
    if name == "ReformerForQuestionAnswering":
        return {"start_positions": torch.tensor([1, 3]), "end_positions": torch.tensor([2, seq + 5])}
    return {}


def assert_same(ours, theirs, atol=1e-5):
    """Equal fields (both with or without the cache); tensors and tuples of them to `atol`."""
    keys = [k for k in theirs.keys() if theirs[k] is not None]
    assert list(ours.keys()) == keys, (list(ours.keys()), keys)
    for key in keys:
        if key == "past_buckets_states":
            assert_same_cache(ours[key], theirs[key])
        else:
            _close(ours[key], theirs[key], atol, 1e-4, key)


def assert_same_cache(ours, theirs):
    assert isinstance(ours, ReformerDynamicCache) and len(ours) == len(theirs)
    for i in range(len(theirs)):
        torch.testing.assert_close(ours.states_cache[i], theirs.states_cache[i], atol=1e-5, rtol=1e-4)
        assert torch.equal(ours.buckets_cache[i].long(), theirs.buckets_cache[i].long()), i


@pytest.mark.parametrize("config, name", [(c, n) for c, names in HEADS.items() for n in names])
def test_head_matches_reference(config, name, tmp_path):
    reference = build(name, config, tmp_path)
    ours = getattr(leanformers, AUTO[name]).from_pretrained(tmp_path)
    assert type(ours) is getattr(leanformers, name)
    with torch.no_grad():
        for seq in SEQ_LENGTHS[config]:
            inputs = {**batch(seq), **labels(name, seq)}
            expected = reference(**inputs, **FLAGS)
            assert_same(ours(**inputs, **FLAGS), expected)
            tuple_out = ours(**inputs, **FLAGS, return_dict=False)
            assert len(tuple_out) == len(expected.to_tuple())
    assert ours.config.num_buckets == reference.config.num_buckets  # chosen alike when it was None


def test_inputs_embeds_positions_and_hashes_match_reference(tmp_path):
    reference = build("ReformerModel", "local-lsh", tmp_path)
    ours = leanformers.ReformerModel.from_pretrained(tmp_path)
    inputs = batch(24, pad=0)
    with torch.no_grad():
        embeds = reference.embeddings.word_embeddings(inputs["input_ids"])
        positions = torch.arange(24).flip(0).expand(2, 24)
        for case in ({"inputs_embeds": embeds}, {"input_ids": inputs["input_ids"], "position_ids": positions},
                     {"input_ids": inputs["input_ids"], "num_hashes": 3}):
            assert_same(ours(**case), reference(**case))


@pytest.mark.parametrize("config, name", [("local-lsh", "ReformerForMaskedLM"),
                                          ("lsh-lsh-causal", "ReformerModelWithLMHead")])
def test_training_gradients_through_reversible_layers_match_reference(config, name, tmp_path):
    """No dropout: the loss and the gradient of every weight, computed by recomputing each layer's input from its
    output, equal the reference's."""
    reference = build(name, config, tmp_path)
    ours = getattr(leanformers, name).from_pretrained(tmp_path)
    reference.train(), ours.train()
    inputs = {**batch(24, pad=5), **labels(name, 24)}
    expected, got = reference(**inputs), ours(**inputs)
    expected.loss.backward()
    got.loss.backward()
    torch.testing.assert_close(got.loss, expected.loss)
    theirs = dict(reference.named_parameters())
    compared = 0
    for key, param in ours.named_parameters():
        if theirs[key].grad is None:
            assert param.grad is None, key
            continue
        torch.testing.assert_close(param.grad, theirs[key].grad, atol=1e-5, rtol=1e-4, msg=lambda m: f"{key}: {m}")
        compared += 1
    assert compared == len(theirs) - 1  # all but lm_head.bias, which the logits do not use


def _plain_stack(layers, hidden):
    """The same layers as an ordinary residual stack: autograd keeps every layer's activations."""
    attn = hidden
    for layer in layers:
        attn, hidden, _, _ = layer(attn, hidden)
    return attn, hidden


def test_reversible_backward_with_dropout_matches_plain_residual_stack(tmp_path):
    """With dropout (and random rotations), the recomputation replays each branch's random state and reuses the
    buckets: same gradients as plain autograd."""
    build("ReformerModel", "local-lsh", tmp_path)
    dropout = dict(hidden_dropout_prob=0.2, local_attention_probs_dropout_prob=0.3,
                   lsh_attention_probs_dropout_prob=0.3, hash_seed=None)  # rotations from the global generator too
    model = leanformers.ReformerModel.from_pretrained(tmp_path, **dropout).train()
    layers = model.encoder.layers
    embeds = torch.randn(2, 24, 30, requires_grad=True)
    grads = []
    for reversible in (True, False):
        torch.manual_seed(5)
        if reversible:
            attn, hidden, _ = run_reversible(layers, embeds, False, False, attention_mask=None, num_hashes=None,
                                             past_buckets_states=None, use_cache=False, orig_sequence_length=24)
        else:
            attn, hidden = _plain_stack(layers, embeds)
        (attn.square().sum() + hidden.sin().sum()).backward()
        grads.append([embeds.grad.clone()] + [p.grad.clone() for p in layers.parameters()])
        embeds.grad = None
        model.zero_grad()
    for ours, plain in zip(*grads):
        torch.testing.assert_close(ours, plain, atol=1e-5, rtol=1e-4)


def test_training_keeps_no_per_layer_activations():
    """Tensors saved for backward: the reversible stack keeps only its two output streams, whatever its depth; the
    plain residual stack keeps every layer's activations."""
    saved = {}

    def measure(name, run, depth):
        config = leanformers.ReformerConfig(**{**BASE, **CONFIGS["local-lsh"], "attn_layers": ["local", "lsh"] * depth})
        layers = leanformers.ReformerModel(config).train().encoder.layers
        embeds = torch.randn(2, 24, 30, requires_grad=True)
        sizes = []

        def pack(tensor):
            sizes.append(tensor.numel() * tensor.element_size())
            return tensor
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            out = run(layers, embeds)
        sum(o.sum() for o in out).backward()  # the recomputing backward runs
        saved[name, depth] = sum(sizes)

    reversible = lambda layers, x: run_reversible(layers, x, False, False, attention_mask=None,  # noqa: E731
                                                  num_hashes=None, past_buckets_states=None, use_cache=False,
                                                  orig_sequence_length=24)[:2]
    for depth in (1, 3):
        measure("reversible", reversible, depth)
        measure("plain", _plain_stack, depth)
    stream_bytes = 2 * 24 * 30 * 4
    assert saved["reversible", 1] == saved["reversible", 3] == 2 * stream_bytes
    assert saved["plain", 3] > 2.5 * saved["plain", 1] > 20 * stream_bytes


def test_padding_to_chunks_in_eval_and_clear_error_in_training(tmp_path):
    reference = build("ReformerModel", "local-lsh", tmp_path)
    ours = leanformers.ReformerModel.from_pretrained(tmp_path)
    with torch.no_grad():  # 13 positions: padded to 24 inside, cut back to 13
        out = ours(**batch(13))
        assert out.last_hidden_state.shape == (2, 13, 60)
        torch.testing.assert_close(out.last_hidden_state, reference(**batch(13)).last_hidden_state)
    with pytest.raises(ValueError, match=r"sequence length \(13\) must be a multiple of the chunk length 12.*24"):
        ours.train()(**batch(13))


# the reference cannot chunk the feed-forward of a one-token step: no chunking in these
GENERATION = {"local-lsh": ("local-lsh", {"is_decoder": True}),
              "lsh-lsh-causal": ("lsh-lsh-causal", {"chunk_size_feed_forward": 0}),
              "local-local": ("local-lsh", {"is_decoder": True, "attn_layers": ["local", "local"]})}


@pytest.mark.parametrize("case", list(GENERATION))
def test_generation_matches_reference_with_and_without_cache(case, tmp_path):
    """Token for token with the reference, cached and not. The cached LSH step attends to the chunks around the new
    token's bucket, which is not always what the full pass sees; with local attention alone both agree."""
    config, extra = GENERATION[case]
    reference = build("ReformerModelWithLMHead", config, tmp_path, **extra)
    ours = leanformers.AutoModelForCausalLM.from_pretrained(tmp_path)
    for prompt in (3, 7):  # one chunk; more than one (the prompt pass is padded)
        ids = batch(prompt, rows=1, pad=0)["input_ids"]
        settings = dict(max_new_tokens=24 - prompt, do_sample=False)
        for use_cache in (True, False):
            expected = reference.generate(ids, **settings, use_cache=use_cache)
            assert torch.equal(ours.generate(ids, **settings, use_cache=use_cache), expected), use_cache
        if case == "local-local":
            assert torch.equal(ours.generate(ids, **settings), ours.generate(ids, **settings, use_cache=False))
    settings["num_beams"] = 2  # beam search reorders the cached buckets and states
    assert torch.equal(ours.generate(ids, **settings), reference.generate(ids, **settings))
    rows = batch(5, pad=0)["input_ids"]  # each row attends to its own cached states
    together = ours.generate(rows, max_new_tokens=19, do_sample=False)
    for row in range(2):
        assert torch.equal(together[row:row + 1], ours.generate(rows[row:row + 1], max_new_tokens=19,
                                                                do_sample=False))
    chunked = leanformers.ReformerModelWithLMHead.from_pretrained(tmp_path, chunk_size_feed_forward=3)
    assert torch.equal(chunked.generate(rows, max_new_tokens=19, do_sample=False), together)


def test_cached_forward_matches_reference(tmp_path):
    reference = build("ReformerModelWithLMHead", "lsh-lsh-causal", tmp_path, chunk_size_feed_forward=0)
    ours = leanformers.ReformerModelWithLMHead.from_pretrained(tmp_path)
    ids = batch(16, rows=1, pad=0)["input_ids"]
    with torch.no_grad():
        expected, got = reference(input_ids=ids[:, :13]), ours(input_ids=ids[:, :13])
        assert_same(got, expected)
        cache, theirs = got.past_buckets_states, expected.past_buckets_states
        for t in range(13, 16):
            step = dict(input_ids=ids[:, t:t + 1], use_cache=True, **FLAGS)
            expected, got = reference(**step, past_buckets_states=theirs), ours(**step, past_buckets_states=cache)
            assert_same(got, expected)
            assert got.past_buckets_states is cache and cache.get_start_idx() == t + 1


def test_cached_steps_of_a_batch_equal_each_row_alone(tmp_path):
    """Each row's cached LSH step gathers its own rows' states (the reference gathers the first row's for all)."""
    build("ReformerModelWithLMHead", "lsh-lsh-causal", tmp_path, chunk_size_feed_forward=0)
    ours = leanformers.ReformerModelWithLMHead.from_pretrained(tmp_path)

    def step_logits(ids):
        cache = ours(input_ids=ids[:, :12]).past_buckets_states
        return torch.cat([ours(input_ids=ids[:, t:t + 1], past_buckets_states=cache).logits for t in range(12, 16)],
                         dim=1)
    ids = batch(16, pad=0)["input_ids"]
    with torch.no_grad():
        together = step_logits(ids)
        for row in range(2):
            torch.testing.assert_close(together[row:row + 1], step_logits(ids[row:row + 1]), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", ["ReformerForMaskedLM", "ReformerModelWithLMHead"])
def test_saved_by_us_loads_in_reference_and_back(name, tmp_path):
    config = "lsh-lsh-causal" if name == "ReformerModelWithLMHead" else "local-lsh"
    build(name, config, tmp_path / "ref")
    ours = getattr(leanformers, name).from_pretrained(tmp_path / "ref")
    with torch.no_grad():
        for param in ours.parameters():
            param.add_(0.01 * torch.randn_like(param))
    ours.save_pretrained(tmp_path / "ours")
    theirs, info = getattr(transformers, name).from_pretrained(tmp_path / "ours", output_loading_info=True)
    assert not any(info.values()), info
    again = getattr(leanformers, name).from_pretrained(tmp_path / "ours")
    inputs = {**batch(13), **labels(name, 13)}
    with torch.no_grad():
        assert_same(ours(**inputs, **FLAGS), theirs.eval()(**inputs, **FLAGS))
        assert_same(again(**inputs, **FLAGS), theirs(**inputs, **FLAGS))


def test_refused_configurations():
    with pytest.raises(leanformers.errors.ConfigError, match="is_decoder=True"):
        leanformers.ReformerModelWithLMHead(leanformers.ReformerConfig(**{**BASE, **CONFIGS["local-lsh"]}))
    with pytest.raises(leanformers.errors.ConfigError, match="'lsh' or 'local'"):
        leanformers.ReformerModel(leanformers.ReformerConfig(**{**BASE, "attn_layers": ["lsh", "global"]}))
    with pytest.raises(leanformers.errors.ConfigError, match="must sum to hidden_size"):
        leanformers.ReformerModel(leanformers.ReformerConfig(**{**BASE, "axial_pos_embds_dim": [12, 12]}))


# ---------------------------------------------------------------------------------------------------- pipelines
PIPELINE_CONFIG = dict(BASE, hidden_dropout_prob=0.05, axial_pos_shape=[8, 8], max_position_embeddings=64,
                       attn_layers=["local", "lsh"], local_attn_chunk_length=8, lsh_attn_chunk_length=8,
                       num_buckets=4, eos_token_id=2)
PIPELINE_HEADS = {"fill-mask": "ReformerForMaskedLM", "text-classification": "ReformerForSequenceClassification",
                  "question-answering": "ReformerForQuestionAnswering", "text-generation": "ReformerModelWithLMHead"}


@pytest.fixture(scope="module")
def pipeline_folders(tmp_path_factory):
    """task -> folder of a tiny reference model and Reformer's tokenizer (the real BPE SentencePiece model with a
    mask and a pad token added), readable by transformers 4.55 too."""
    root = tmp_path_factory.mktemp("reformer-pipelines")
    shutil.copy(fixture_path("sentencepiece", "test", "botchan_en_bpe_1000.model"), root / "spiece.model")
    tokenizer = transformers.ReformerTokenizer.from_pretrained(str(root))
    tokenizer.add_special_tokens({"mask_token": "<mask>", "pad_token": "<pad>"})
    folders = {}
    for task, name in PIPELINE_HEADS.items():
        folder = folders[task] = root / task
        torch.manual_seed(0)
        config = transformers.ReformerConfig(**{**PIPELINE_CONFIG, "vocab_size": len(tokenizer),
                                                "pad_token_id": tokenizer.pad_token_id,
                                                "is_decoder": task == "text-generation"})
        getattr(transformers, name)(config).eval().save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        settings = json.loads((folder / "tokenizer_config.json").read_text())
        settings["additional_special_tokens"] = settings.pop("extra_special_tokens", [])
        (folder / "tokenizer_config.json").write_text(json.dumps(settings))
    return folders


PIPELINE_CALLS = {
    "fill-mask": (["The cat sat on the <mask> of the house."], {"top_k": 3}),
    "text-classification": ([["I liked it a lot.", "Terrible, would not go again, no."]], {}),
    "text-generation": (["Once upon a time"], {"max_new_tokens": 12, "do_sample": False}),
}


@pytest.mark.parametrize("task", list(PIPELINE_CALLS))
def test_pipeline_matches_reference(task, pipeline_folders):
    from pipelines.compare import assert_same as same_result

    args, kwargs = PIPELINE_CALLS[task]
    expected = transformers.pipeline(task, model=str(pipeline_folders[task]))(*args, **kwargs)
    same_result(leanformers.pipeline(task, model=str(pipeline_folders[task]))(*args, **kwargs), expected)


def test_question_answering_pipeline_matches_legacy_reference(pipeline_folders):
    from pipelines.compare import assert_same as same_result

    kwargs = dict(question="Where is the cat?", context="The cat sits on the mat in the house.")
    code = """
result = transformers.pipeline("question-answering", model=payload["folder"])(**payload["kwargs"])
result = {k: float(v) if k == "score" else v for k, v in result.items()}
"""
    expected = run_legacy(code, {"folder": str(pipeline_folders["question-answering"]), "kwargs": kwargs})
    same_result(leanformers.pipeline("question-answering", model=str(pipeline_folders["question-answering"]))(
        **kwargs), expected)
