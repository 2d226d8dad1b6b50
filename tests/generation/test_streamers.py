"""Streamers against the reference ones: the same pieces of text, at the same moments."""

from __future__ import annotations

import threading

import pytest
import torch

from leanformers.generation import streamers as ours

TEXT = "Hello world, this is a test.\nNew line: 東京タワー and emoji 🙂🙃 ok! Numbers 12345 end"


def _recording(cls):
    class Recording(cls):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.pieces = []

        def on_finalized_text(self, text, stream_end=False):
            self.pieces.append((text, stream_end))

    return Recording


@pytest.mark.parametrize("skip_prompt", [False, True])
def test_text_streamer_matches_reference(skip_prompt, reference_tokenizer, our_tokenizer):
    import transformers

    ids = reference_tokenizer(TEXT)["input_ids"]
    theirs = _recording(transformers.TextStreamer)(reference_tokenizer, skip_prompt=skip_prompt)
    mine = _recording(ours.TextStreamer)(our_tokenizer, skip_prompt=skip_prompt)
    for streamer in (theirs, mine):
        streamer.put(torch.tensor([ids[:3]]))  # the prompt
        for token in ids[3:]:
            streamer.put(torch.tensor([token]))
        streamer.end()
    assert mine.pieces == theirs.pieces
    assert "".join(p for p, _ in mine.pieces) == (TEXT[len(our_tokenizer.decode(ids[:3])):] if skip_prompt else TEXT)


def test_text_streamer_prints_and_refuses_batches(our_tokenizer, capsys):
    streamer = ours.TextStreamer(our_tokenizer)
    for token in our_tokenizer("one two three")["input_ids"]:
        streamer.put(torch.tensor([token]))
    streamer.end()
    assert capsys.readouterr().out == "one two three\n"
    with pytest.raises(ValueError, match="batch size 1"):
        streamer.put(torch.ones(2, 3, dtype=torch.long))


def test_iterator_streamer_during_generate(gpt2_pair, reference_tokenizer, our_tokenizer):
    import transformers

    reference, model, _ = gpt2_pair
    prompt = torch.tensor([[40, 41, 42, 43]])

    def run(generate, streamer):
        worker = threading.Thread(target=generate, kwargs=dict(inputs=prompt, max_new_tokens=12, streamer=streamer))
        worker.start()
        pieces = list(streamer)
        worker.join()
        return pieces

    theirs = run(reference.generate, transformers.TextIteratorStreamer(reference_tokenizer, skip_prompt=True))
    mine = run(model.generate, ours.TextIteratorStreamer(our_tokenizer, skip_prompt=True, timeout=60))
    assert mine == theirs and len("".join(mine)) > 0
