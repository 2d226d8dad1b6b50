"""Special-token templates: building the Rust post-processor of a family, and reading back where any post-processor
puts its special tokens (for build_inputs_with_special_tokens and friends, which work on plain id lists)."""

from __future__ import annotations

from tokenizers import Tokenizer, processors
from tokenizers.models import WordLevel


def template(single: str | list, pair: str | list, special_tokens: list[tuple[str, int]]):
    """A TemplateProcessing post-processor (`$A`, `$B`, token pieces with `:type_id` suffixes)."""
    return processors.TemplateProcessing(single=single, pair=pair, special_tokens=special_tokens)


def _placeholder():
    """A one-token encoding that stands for a whole sequence."""
    return Tokenizer(WordLevel({"a": 0}, unk_token="a")).encode("a", add_special_tokens=False)


def layout(post_processor, pair: bool) -> list[tuple]:
    """Where the post-processor puts things: a list of ("A"|"B", type_id) for the sequences and
    (token_id, type_id) for special tokens, in order."""
    if post_processor is None:
        return [("A", 0), ("B", 1)] if pair else [("A", 0)]
    encoding = post_processor.process(_placeholder(), _placeholder() if pair else None, add_special_tokens=True)
    out = []
    for token_id, type_id, sequence in zip(encoding.ids, encoding.type_ids, encoding.sequence_ids):
        out.append((token_id, type_id) if sequence is None else ("AB"[sequence], type_id))
    return out


def expand(items: list[tuple], ids_0: list[int], ids_1: list[int] | None, what: str) -> list[int]:
    """Fill a layout with the ids of the sequences: `what` is "ids", "types" or "special"."""
    out = []
    for piece, type_id in items:
        if piece in ("A", "B"):
            seq = ids_0 if piece == "A" else (ids_1 or [])
            out.extend(seq if what == "ids" else [type_id if what == "types" else 0] * len(seq))
        else:
            out.append(piece if what == "ids" else type_id if what == "types" else 1)
    return out
