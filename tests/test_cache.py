"""DynamicCache / StaticCache: same contents as the reference's caches after the same operations, growth in place,
and the editing used by beam search, contrastive search and assisted decoding."""

import pytest
import torch

from leanformers.cache import CacheFullError, DynamicCache, EncoderDecoderCache, StaticCache, as_cache


def chunks(seed: int = 0, batch: int = 3, sizes=(5, 1, 1, 4, 1)):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(batch, 2, n, 4, generator=g), torch.randn(batch, 2, n, 4, generator=g)) for n in sizes]


def fill(cache, layers: int = 2, seed: int = 0):
    for i, (k, v) in enumerate(chunks(seed)):
        for layer in range(layers):
            cache.update(k + layer, v - layer, layer)
    return cache


def assert_same_content(ours, theirs):
    assert ours.get_seq_length() == theirs.get_seq_length()
    for layer, ref in zip(ours.layers, theirs.layers):
        torch.testing.assert_close(layer.keys, ref.keys, rtol=0, atol=0)
        torch.testing.assert_close(layer.values, ref.values, rtol=0, atol=0)


@pytest.fixture
def reference_cache():
    import transformers

    return transformers.DynamicCache


def test_updates_equal_the_reference(reference_cache):
    ours, theirs = fill(DynamicCache()), fill(reference_cache())
    assert_same_content(ours, theirs)
    keys, values = ours.update(torch.ones(3, 2, 1, 4), torch.zeros(3, 2, 1, 4), 0)
    ref_keys, ref_values = theirs.update(torch.ones(3, 2, 1, 4), torch.zeros(3, 2, 1, 4), 0)
    assert torch.equal(keys, ref_keys) and torch.equal(values, ref_values)
    assert ours.get_seq_length(0) == 13 and ours.get_seq_length(1) == 12 and ours.get_seq_length(5) == 0


def test_growth_is_in_place_and_amortised():
    cache = DynamicCache()
    buffers = set()
    for _ in range(200):
        cache.update(torch.randn(1, 2, 1, 4), torch.randn(1, 2, 1, 4), 0)
        buffers.add(cache.layers[0]._keys.data_ptr())
    assert cache.get_seq_length() == 200
    assert len(buffers) <= 6  # a handful of reallocations, not one per token


def test_reorder_select_repeat_crop_equal_the_reference(reference_cache):
    ours, theirs = fill(DynamicCache()), fill(reference_cache())
    beams = torch.tensor([2, 0, 0])
    ours.reorder_cache(beams)
    theirs.reorder_cache(beams)
    assert_same_content(ours, theirs)
    ours.batch_repeat_interleave(2)
    theirs.batch_repeat_interleave(2)
    assert_same_content(ours, theirs)
    keep = torch.tensor([5, 1, 2])
    ours.batch_select_indices(keep)
    theirs.batch_select_indices(keep)
    assert_same_content(ours, theirs)
    ours.crop(-3)
    theirs.crop(-3)
    assert_same_content(ours, theirs)
    ours.crop(5)  # a positive value keeps that many tokens, as in Transformers 4
    theirs.crop(5 - theirs.get_seq_length())
    assert_same_content(ours, theirs)
    (key_chunk, value_chunk), = chunks(seed=3, sizes=(2,))
    for layer in range(2):  # writing after a crop overwrites the dropped tail
        ours.update(key_chunk, value_chunk, layer)
        theirs.update(key_chunk, value_chunk, layer)
    assert_same_content(ours, theirs)


def test_legacy_tuples_round_trip():
    cache = fill(DynamicCache())
    legacy = cache.to_legacy_cache()
    again = as_cache(legacy)
    assert isinstance(again, DynamicCache) and len(again) == 2
    assert_same_content(again, cache)
    keys, values = again[1]
    assert torch.equal(keys, cache.layers[1].keys)
    assert [k.shape for k, _ in again] == [k.shape for k, _ in cache]
    with pytest.raises(TypeError, match="past_key_values"):
        as_cache("not a cache")


def test_static_cache_holds_a_fixed_length():
    cache = StaticCache(max_cache_len=16)
    fill(cache)
    buffer = cache.layers[0]._keys
    assert buffer.shape[2] == 16 and cache.get_max_length() == 16 and cache.get_seq_length() == 12
    cache.update(torch.randn(3, 2, 4, 4), torch.randn(3, 2, 4, 4), 0)
    assert cache.layers[0]._keys is buffer
    with pytest.raises(CacheFullError, match="max_cache_len"):
        cache.update(torch.randn(3, 2, 1, 4), torch.randn(3, 2, 1, 4), 0)
    cache.reset()
    assert cache.get_seq_length() == 0
    with pytest.raises(ValueError, match="max_cache_len"):
        StaticCache(max_cache_len=0)


def test_batch_change_needs_an_explicit_select():
    cache = fill(DynamicCache())
    with pytest.raises(ValueError, match="batch_select_indices"):
        cache.update(torch.randn(5, 2, 1, 4), torch.randn(5, 2, 1, 4), 0)


def test_encoder_decoder_cache_edits_both_parts():
    cache = EncoderDecoderCache(fill(DynamicCache()), fill(DynamicCache(), seed=1))
    cache.reorder_cache(torch.tensor([1, 1, 0]))
    assert cache.get_seq_length() == 12 and cache.cross_attention_cache.batch_size == 3
    assert all(cache.is_updated.values())
