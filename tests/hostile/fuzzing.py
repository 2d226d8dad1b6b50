"""Mutations of valid files (bytes and JSON), small valid files of every kind, and the check every hostile load
must pass: only leanformers' errors escape, each step is quick, nothing is written outside the target folder."""

from __future__ import annotations

import copy
import json
import os
import shutil
import time
from pathlib import Path

from hypothesis import strategies as st

from leanformers.errors import LeanformersError

STEP_SECONDS = 10.0  # one load or call on a hostile input; the slowest real ones take well under a second
_LONG = os.environ.get("LEANFORMERS_FUZZ_EXAMPLES")
COUNTS: dict[str, int] = {}  # inputs tried per target, for the report of a long run


def budget(examples: int) -> int:
    """Examples of one fuzz test: `examples` in CI, LEANFORMERS_FUZZ_EXAMPLES in a long run."""
    return int(_LONG) if _LONG else examples


# ---------------------------------------------------------------------------------------------- byte mutations
_INTERESTING = [b"\x00", b"\xff", b"\x7f", b"\x80", b"\x00" * 8, b"\xff" * 8, b"\xff\xff\xff\x7f", b"\x00\x00\x00\x80",
                b"\x01\x00\x00\x00\x00\x00\x00\x00", b"\xff\xff\xff\xff\xff\xff\xff\x7f", b"\xed\xa0\x80", b"\xc3",
                b'"', b"{", b"}", b"[", b"]", b":", b",", b"\\", b"-", b"9" * 30, b"1e999", b"null", b"\n"]


@st.composite
def mutated_bytes(draw, data: bytes, focus: int | None = None) -> bytes:
    """`data` after 1-4 random edits: bit flips, truncation, splices, inserted or overwritten bytes, deletions.
    Positions fall in the first `focus` bytes (a header) four times out of five."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        size = len(out)
        if size == 0:
            out += draw(st.binary(min_size=1, max_size=16))
            continue
        head = min(size, focus or size)
        pos = draw(st.integers(0, head - 1) if draw(st.integers(0, 4)) else st.integers(0, size - 1))
        op = draw(st.sampled_from(["flip", "flip", "cut", "splice", "insert", "overwrite", "delete"]))
        if op == "flip":
            out[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            del out[pos:]
        elif op == "splice":
            start = draw(st.integers(0, size - 1))
            length = draw(st.integers(1, 64))
            out[pos:pos] = out[start:start + length]
        elif op == "insert":
            out[pos:pos] = draw(st.sampled_from(_INTERESTING) | st.binary(min_size=1, max_size=8))
        elif op == "overwrite":
            value = draw(st.sampled_from(_INTERESTING))
            out[pos:pos + len(value)] = value
        else:
            del out[pos:pos + draw(st.integers(1, 32))]
    return bytes(out)


# ---------------------------------------------------------------------------------------------- JSON mutations
_DEEP = "__deep_nesting__"
_HOSTILE_VALUES = [None, True, False, 0, -1, 1, 2**31, 2**63, -(2**63), 10**40, 1e308, -1e308, 0.5, "", "x",
                   "\u0000", "\ud800x", "__class__", "os.system", "../../etc/passwd", [], {}, [None], {"": None},
                   {"__type": "AddedToken"}, {"content": 5}, [[1, 2], "a"], _DEEP]


def _paths(value, path=()):
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value[:50]):
            yield from _paths(item, (*path, index))


def _swap(value):
    """The same information in another JSON type (what a careless or hostile writer produces)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return {str(i): v for i, v in enumerate(value)}
    if isinstance(value, dict):
        return list(value.values())
    return "null"


@st.composite
def mutated_json(draw, data) -> bytes:
    """`data` (a parsed JSON value) after 1-3 structural edits - type swaps, hostile values, huge numbers, deep
    nesting, deleted and added keys - serialised."""
    data = json.loads(json.dumps(data))
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(data))
        path = draw(st.sampled_from(paths))
        parent = data
        for step in path[:-1]:
            parent = parent[step]
        current = parent[path[-1]] if path else data
        op = draw(st.sampled_from(["swap", "value", "value", "delete", "add"]))
        if op == "swap":
            new = _swap(current)
        elif op == "value":
            new = copy.deepcopy(draw(st.sampled_from(_HOSTILE_VALUES)))
        elif op == "delete" and path:
            del parent[path[-1]]
            continue
        else:
            if isinstance(current, dict):
                current[draw(st.sampled_from(["__class__", "auto_map", "tokenizer_class", "model_type", "weight_map",
                                             "added_tokens_decoder", "chat_template", "id2label", "to_dict"]))] = \
                    copy.deepcopy(draw(st.sampled_from(_HOSTILE_VALUES)))
            continue
        if path:
            parent[path[-1]] = new
        else:
            data = new
    text = json.dumps(data, ensure_ascii=draw(st.booleans()))
    return text.replace(json.dumps(_DEEP), "[" * 100_000 + "]" * 100_000).encode("utf-8", "surrogatepass")


# ---------------------------------------------------------------------------------------------- the check
def _snapshot(*folders) -> dict:
    files = {}
    for folder in folders:
        for root, _, names in os.walk(folder):
            for name in names:
                path = os.path.join(root, name)
                stat = os.stat(path)
                files[path] = (stat.st_size, stat.st_mtime_ns)
    return files


def check_hostile(name: str, step, *watched, allowed=(LeanformersError,)):
    """Run `step()`: it returns or raises one of `allowed` with a non-empty message, within STEP_SECONDS, and the
    files under `watched` folders (the target's parent, the cache) are left as they were."""
    COUNTS[name] = COUNTS.get(name, 0) + 1
    before = _snapshot(*watched)
    start = time.monotonic()
    error = None
    try:
        step()
    except allowed as err:
        error = err
    elapsed = time.monotonic() - start
    assert elapsed < STEP_SECONDS, f"{name}: one step took {elapsed:.1f} s"
    assert _snapshot(*watched) == before, f"{name}: files were written or changed"
    if error is not None:
        assert str(error).strip(), f"{name}: {type(error).__name__} without a message"
    return error


def write_variant(folder: Path, source: Path, files: dict[str, bytes]):
    """`folder` := a copy of `source` with `files` (name -> content) replaced."""
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(source, folder)
    for name, data in files.items():
        (folder / name).write_bytes(data)
