"""GGUF checkpoints (the llama.cpp format): config, weights and tokenizer from one `.gguf` file.

`from_pretrained(folder_or_repo, gguf_file="model.gguf")` of the models, of the configs (AutoConfig and each config
class) and of the tokenizers (AutoTokenizer and each tokenizer class) comes here.
The header (metadata and tensor table) is parsed directly from a memory map, which takes a fraction of a second even
with a 50k-token vocabulary; the quantised blocks are expanded to float32 by the `gguf` package
(`gguf.quants.dequantize`). Tensor names are mapped to the checkpoint keys of the matching architecture, and the
layouts llama.cpp changes on conversion are undone (the rotary row order of Llama's q/k projections, the transposed
Conv1D weights of GPT-2). The tokenizer is rebuilt from the metadata by `tokenization/gguf.py`.
"""

from __future__ import annotations

import math
import os
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .errors import CheckpointError, ConfigError, engine_errors

# ---------------------------------------------------------------------------------------------- the file format
_MAGIC = b"GGUF"
_VERSIONS = (2, 3)
_DEFAULT_ALIGNMENT = 32
# metadata value types: fixed-size ones as (struct format, numpy dtype); 8 is a string and 9 an array
_SCALARS = {0: ("<B", "u1"), 1: ("<b", "i1"), 2: ("<H", "<u2"), 3: ("<h", "<i2"), 4: ("<I", "<u4"),
            5: ("<i", "<i4"), 6: ("<f", "<f4"), 7: ("<?", "?"), 10: ("<Q", "<u8"), 11: ("<q", "<i8"),
            12: ("<d", "<f8")}
_STRING, _ARRAY = 8, 9
_MAX_DIMS = 4  # ggml tensors have at most four dimensions
_MAX_NESTING = 8  # arrays of arrays: llama.cpp writes none deeper than two


@dataclass(frozen=True)
class GGUFTensorInfo:
    """One tensor of the file: its name, shape in torch order (slowest dimension first), ggml type and bytes."""

    name: str
    shape: tuple
    ggml_type: int
    start: int   # absolute offset in the file
    nbytes: int


@dataclass
class GGUFFile:
    """A parsed GGUF header over a read-only memory map of the file; tensor data is read on demand."""

    path: str
    version: int
    metadata: dict
    blob: np.ndarray = field(repr=False)  # the whole file, memory-mapped read-only
    tensors: dict = field(default_factory=dict)  # name -> GGUFTensorInfo, in file order

    @property
    def architecture(self) -> str:
        arch = self.metadata.get("general.architecture", "")
        if not isinstance(arch, str):
            raise ConfigError(f"{self.path} states general.architecture={arch!r}, not a name: the file is damaged. "
                              f"Download it again.")
        return arch

    def raw(self, name: str) -> np.ndarray:
        """The stored bytes of a tensor, shaped (*rows, bytes per row), as `gguf.quants.dequantize` expects."""
        info = self.tensors[name]
        data = self.blob[info.start:info.start + info.nbytes].view(np.ndarray)
        rows = math.prod(info.shape[:-1]) or 1  # a tensor with an empty dimension has no bytes at all
        return data.reshape(*info.shape[:-1], info.nbytes // rows)

    def dequantize(self, name: str) -> np.ndarray:
        """A tensor as a writable float32 array of its torch shape (quantised blocks expanded)."""
        from gguf.constants import GGMLQuantizationType
        from gguf.quants import dequantize

        info = self.tensors[name]
        values = dequantize(self.raw(name), GGMLQuantizationType(info.ggml_type)).reshape(info.shape)
        # F32 tensors come back as views of the read-only map; the model needs memory of its own
        return values if values.flags.writeable else values.copy()


def read_gguf(path) -> GGUFFile:
    """Parse the header of a GGUF file (version 2 or 3): metadata as Python values and the tensor table."""
    path = os.fspath(path)
    try:
        blob = np.memmap(path, dtype=np.uint8, mode="r")
    except (OSError, ValueError) as err:
        raise CheckpointError(f"Cannot read the GGUF file {path}: {err}.") from err
    view = memoryview(blob)
    if bytes(view[:4]) != _MAGIC:
        raise CheckpointError(f"{path} is not a GGUF file (it does not start with b'GGUF'). Pass the .gguf file "
                              f"written by llama.cpp's converter as gguf_file=.")
    reader = _Reader(view, 24)
    try:
        version, tensor_count, kv_count = struct.unpack_from("<IQQ", view, 4)
        if version not in _VERSIONS:
            raise CheckpointError(f"{path} is GGUF version {version}; versions {_VERSIONS} are supported. "
                                  f"Convert it again with a recent llama.cpp.")
        # each entry takes at least 12 (metadata) or 24 (tensor) bytes: counts the file cannot hold are lies
        reader.claim(kv_count, 12, "metadata entries")
        metadata = {reader.string(): reader.value() for _ in range(kv_count)}
        reader.claim(tensor_count, 24, "tensors")
        entries = [reader.tensor_entry() for _ in range(tensor_count)]
    except (struct.error, IndexError, ValueError, RecursionError) as err:
        raise CheckpointError(f"The header of {path} is damaged or truncated (at byte {reader.pos}: {err}). "
                              f"Download the file again.") from None
    alignment = metadata.get("general.alignment", _DEFAULT_ALIGNMENT)
    if type(alignment) is not int or alignment <= 0:
        raise CheckpointError(f"{path} states general.alignment={alignment!r}, not a positive number of bytes: the "
                              f"file is damaged. Download it again.")
    data_start = -(-reader.pos // alignment) * alignment
    file = GGUFFile(path, version, metadata, blob)
    for name, shape, ggml_type, offset in entries:
        nbytes = _byte_count(path, name, shape, ggml_type)
        start = data_start + offset
        if start + nbytes > len(blob):
            raise CheckpointError(f"{path} is truncated: tensor '{name}' ends at byte {start + nbytes} but the file "
                                  f"has {len(blob)} bytes. Download the file again.")
        file.tensors[name] = GGUFTensorInfo(name, shape, ggml_type, start, nbytes)
    return file


class _Reader:
    """Sequential little-endian reads from a memoryview (cheap slices, unlike numpy memmap slicing)."""

    def __init__(self, view: memoryview, pos: int):
        self.view, self.pos = view, pos
        self.depth = 0

    def claim(self, count: int, least: int, what: str):
        """Refuse a count of items that would need more bytes than the file has left (nothing is allocated)."""
        left = len(self.view) - self.pos
        if count * least > left:
            raise ValueError(f"the file claims {count} {what} but has {left} bytes left")

    def unpack(self, fmt: str):
        values = struct.unpack_from(fmt, self.view, self.pos)
        self.pos += struct.calcsize(fmt)
        return values[0] if len(values) == 1 else values

    def string(self) -> str:
        length = self.unpack("<Q")
        self.claim(length, 1, "string bytes")
        try:
            text = bytes(self.view[self.pos:self.pos + length]).decode("utf-8")
        except UnicodeDecodeError as err:
            raise ValueError(f"a string of {length} bytes is not UTF-8 text ({err.reason} at its byte "
                             f"{err.start})") from None
        self.pos += length
        return text

    def value(self, kind: int | None = None):
        kind = self.unpack("<I") if kind is None else kind
        if kind in _SCALARS:
            return self.unpack(_SCALARS[kind][0])
        if kind == _STRING:
            return self.string()
        if kind != _ARRAY:
            raise ValueError(f"unknown metadata value type {kind}")
        element, count = self.unpack("<IQ")
        if element in _SCALARS:  # one numpy read for a whole numeric array (token types, scores)
            dtype = np.dtype(_SCALARS[element][1])
            self.claim(count, dtype.itemsize, "array values")
            values = np.frombuffer(self.view, dtype=dtype, count=count, offset=self.pos)
            self.pos += count * dtype.itemsize
            return values.tolist()
        if element not in (_STRING, _ARRAY):
            raise ValueError(f"unknown metadata array element type {element}")
        self.claim(count, 8, "array values")
        self.depth += 1
        if self.depth > _MAX_NESTING:
            raise ValueError(f"arrays nested more than {_MAX_NESTING} deep")
        values = [self.value(element) for _ in range(count)]
        self.depth -= 1
        return values

    def tensor_entry(self) -> tuple:
        name = self.string()
        dims = self.unpack("<I")
        if dims > _MAX_DIMS:
            raise ValueError(f"tensor '{name}' claims {dims} dimensions; ggml tensors have at most {_MAX_DIMS}")
        shape = struct.unpack_from(f"<{dims}Q", self.view, self.pos)
        self.pos += 8 * dims
        ggml_type, offset = self.unpack("<IQ")
        return name, tuple(int(d) for d in reversed(shape)), ggml_type, offset  # ggml lists the fastest dim first


def _byte_count(path: str, name: str, shape: tuple, ggml_type: int) -> int:
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    try:
        block, size = GGML_QUANT_SIZES[GGMLQuantizationType(ggml_type)]
    except (KeyError, ValueError):
        raise CheckpointError(f"Tensor '{name}' of {path} has ggml type {ggml_type}, which the installed `gguf` "
                              f"package does not know. Upgrade it: pip install -U gguf.") from None
    elements = math.prod(shape)  # Python integers: sizes a header claims cannot overflow
    if shape and shape[-1] % block:
        raise CheckpointError(f"Tensor '{name}' of {path} has rows of {shape[-1]} values, not a multiple of the "
                              f"{block}-value blocks of its type: the file is damaged.")
    return elements // block * size


# ---------------------------------------------------------------------------------------------- architectures
_LLAMA_BLOCK = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm", "attn_q": "self_attn.q_proj",
                "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
                "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}
_LLAMA_TOP = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}
_LLAMA_KEYS = {"context_length": "max_position_embeddings", "embedding_length": "hidden_size",
               "block_count": "num_hidden_layers", "feed_forward_length": "intermediate_size",
               "attention.head_count": "num_attention_heads", "attention.head_count_kv": "num_key_value_heads",
               "rope.freq_base": "rope_theta", "attention.layer_norm_rms_epsilon": "rms_norm_eps",
               "vocab_size": "vocab_size"}


@dataclass(frozen=True)
class _Architecture:
    """How one llama.cpp architecture maps to ours: config keys, tensor names and undone layout changes."""

    model_type: str
    keys: dict         # metadata key after "<arch>." -> config field, or a tuple of fields that all take it
    top: dict          # GGUF tensor prefix -> checkpoint prefix, outside the blocks
    layers: str        # checkpoint prefix of block i, with {i}
    block: dict        # GGUF part name inside a block -> checkpoint module path
    unpermute_qk: bool = False       # llama.cpp reorders the rotary rows of Llama's q/k projections
    transposed: tuple = ()           # GGUF parts stored as the transpose of the checkpoint's (Conv1D) weight
    finish: Callable | None = None   # last touches on the config dict, in place


def _gpt2_inner(config: dict):
    """GPT-2's MLP width is n_inner, left None (four times the embedding) unless the file states another."""
    width = config.get("feed_forward_length")
    if width is not None and width != 4 * config.get("n_embd", 768):
        config["n_inner"] = width


ARCHITECTURES = {
    # the head size is the rotary width for Llama and Mistral (Qwen2 derives it from the hidden size)
    "llama": _Architecture("llama", {**_LLAMA_KEYS, "rope.dimension_count": "head_dim"}, _LLAMA_TOP,
                           "model.layers.{i}", _LLAMA_BLOCK, unpermute_qk=True),
    "mistral": _Architecture("mistral", {**_LLAMA_KEYS, "rope.dimension_count": "head_dim"}, _LLAMA_TOP,
                             "model.layers.{i}", _LLAMA_BLOCK, unpermute_qk=True),
    "qwen2": _Architecture("qwen2", _LLAMA_KEYS, _LLAMA_TOP, "model.layers.{i}", _LLAMA_BLOCK),
    "gpt2": _Architecture(
        # transformers keeps the context length and MLP width under the llama.cpp-like names n_ctx and
        # feed_forward_length; n_positions and n_inner are what the model is built from
        "gpt2", {"block_count": "n_layer", "context_length": ("n_positions", "n_ctx"), "embedding_length": "n_embd",
                 "feed_forward_length": "feed_forward_length", "attention.head_count": "n_head",
                 "attention.layer_norm_epsilon": "layer_norm_epsilon", "vocab_size": "vocab_size"},
        {"token_embd": "transformer.wte", "position_embd": "transformer.wpe", "output_norm": "transformer.ln_f",
         "output": "lm_head"},
        "transformer.h.{i}",
        {"attn_norm": "ln_1", "attn_qkv": "attn.c_attn", "attn_output": "attn.c_proj", "ffn_norm": "ln_2",
         "ffn_up": "mlp.c_fc", "ffn_down": "mlp.c_proj"},
        transposed=("attn_qkv", "attn_output", "ffn_up", "ffn_down"), finish=_gpt2_inner),
}
_TOKEN_IDS = {"bos_token_id": "bos_token_id", "eos_token_id": "eos_token_id", "unk_token_id": "unknown_token_id",
              "pad_token_id": "padding_token_id"}


def gguf_model_type(file: GGUFFile) -> str:
    """The model type a file holds: its architecture, except that llama.cpp files Mistral models as "llama" and
    transformers reads them as Mistral when the file is named exactly "mistral"."""
    arch = file.architecture
    if arch == "llama" and file.metadata.get("general.name") == "mistral":
        return "mistral"
    return arch


def _architecture(file: GGUFFile) -> _Architecture:
    arch = gguf_model_type(file)
    if arch not in ARCHITECTURES:
        raise ConfigError(f"{file.path} holds a '{arch}' model; GGUF files of these architectures load: "
                          f"{', '.join(sorted(ARCHITECTURES))}. Load the original (safetensors) checkpoint of the "
                          f"model, or a GGUF file of a supported architecture, instead.")
    return ARCHITECTURES[arch]


def gguf_config_dict(file: GGUFFile) -> dict:
    """The config fields (transformers names, with `model_type`) that the GGUF metadata states."""
    spec = _architecture(file)
    prefix = file.architecture + "."
    config = {"model_type": spec.model_type}
    for key, names in spec.keys.items():
        if prefix + key in file.metadata:
            config.update(dict.fromkeys((names,) if isinstance(names, str) else names, file.metadata[prefix + key]))
    for name, key in _TOKEN_IDS.items():
        if f"tokenizer.ggml.{key}" in file.metadata:
            config[name] = file.metadata[f"tokenizer.ggml.{key}"]
    if "vocab_size" not in config:
        tokens = file.metadata.get("tokenizer.ggml.tokens")
        embedding = file.tensors.get("token_embd.weight")
        if tokens is not None:
            config["vocab_size"] = len(tokens)
        elif embedding is not None:
            config["vocab_size"] = embedding.shape[0]
    config["tie_word_embeddings"] = "output.weight" not in file.tensors  # no output matrix: the embedding serves
    if "general.name" in file.metadata:  # the name the converter gave the model, kept as transformers keeps it
        config["_model_name_or_path"] = file.metadata["general.name"]
    if spec.finish is not None:
        spec.finish(config)
    return config


def gguf_state_dict(file: GGUFFile) -> dict:
    """Every tensor of the file, dequantised to float32 torch tensors under our checkpoint names. Tensors the
    architecture does not name keep their GGUF name (the loader reports them as unexpected)."""
    import torch

    spec = _architecture(file)
    prefix = file.architecture + "."
    heads = file.metadata.get(prefix + "attention.head_count")
    kv_heads = file.metadata.get(prefix + "attention.head_count_kv", heads)
    state = {}
    for name in file.tensors:
        key, part = _checkpoint_name(spec, name)
        tensor = torch.from_numpy(file.dequantize(name))
        if spec.unpermute_qk and part in ("attn_q", "attn_k"):
            tensor = _unpermute_rotary(tensor, heads if part == "attn_q" else kv_heads, name)
        if part in spec.transposed and tensor.dim() == 2:
            tensor = tensor.t().contiguous()
        state[key] = tensor
    return state


def _checkpoint_name(spec: _Architecture, name: str) -> tuple[str, str | None]:
    """(checkpoint key, GGUF part name) of a GGUF tensor name such as `blk.3.attn_q.weight`."""
    match = re.fullmatch(r"blk\.(\d+)\.(\w+)\.(weight|bias)", name)
    if match and match.group(2) in spec.block:
        layer, part, kind = match.groups()
        return f"{spec.layers.format(i=layer)}.{spec.block[part]}.{kind}", part
    match = re.fullmatch(r"(\w+)\.(weight|bias)", name)
    if match and match.group(1) in spec.top:
        return f"{spec.top[match.group(1)]}.{match.group(2)}", match.group(1)
    return name, None


def _unpermute_rotary(tensor, heads: int | None, name: str):
    """Undo llama.cpp's q/k row order: per head it stores the even rotary rows, then the odd ones; the checkpoint
    keeps the two halves of each head (the layout `rotate_half` expects)."""
    if not heads or tensor.shape[0] % (2 * heads):
        raise CheckpointError(f"Cannot restore the row order of '{name}': {tensor.shape[0]} rows do not split into "
                              f"{heads} heads of rotary pairs. The GGUF metadata (attention.head_count) is wrong.")
    half = tensor.shape[0] // heads // 2
    # (heads, half, 2, ...) -> (heads, 2, half, ...): pairs back into halves
    return tensor.reshape(heads, half, 2, *tensor.shape[1:]).transpose(1, 2).reshape(tensor.shape).contiguous()


# ---------------------------------------------------------------------------------------------- loading hooks
def resolve_gguf(path_or_repo, gguf_file, hub_kwargs: dict | None = None) -> str:
    """Local path of `gguf_file`: an existing file path as it is, else a file of the folder or hub repo."""
    from .hub import HUB_KWARGS, resolve_file

    if os.path.isfile(os.fspath(gguf_file)):
        return os.fspath(gguf_file)
    hub_kwargs = {k: v for k, v in (hub_kwargs or {}).items() if k in HUB_KWARGS}
    hub_kwargs.pop("_commit_hash", None)
    return resolve_file(path_or_repo, os.fspath(gguf_file), **hub_kwargs)


def load_gguf_config_dict(path_or_repo, gguf_file, hub_kwargs: dict | None = None) -> dict:
    """The config dict (transformers names, with `model_type`) stated by a GGUF file of a folder or hub repo."""
    file = read_gguf(resolve_gguf(path_or_repo, gguf_file, hub_kwargs))
    with damaged_gguf(file.path, "metadata"):
        return gguf_config_dict(file)


def damaged_gguf(path: str, part: str, error=CheckpointError):
    """Turns what a file of unexpected values makes numpy, torch, gguf or tokenizers raise into an error naming
    the file (leanformers' own errors pass through)."""
    return engine_errors(lambda err: error(
        f"Cannot use the {part} of {path} ({type(err).__name__}: {err}): the file is damaged or holds values of the "
        f"wrong type. Download it again, or load the original checkpoint of the model."))


def load_gguf_checkpoint(cls, path_or_repo, gguf_file, config, hub_kwargs: dict) -> tuple:
    """(config, state dict) for `cls.from_pretrained(path_or_repo, gguf_file=...)`; a given config is kept."""
    file = read_gguf(resolve_gguf(path_or_repo, gguf_file, hub_kwargs))
    if config is None:
        with damaged_gguf(file.path, "metadata", ConfigError):
            fields = gguf_config_dict(file)
            fields.pop("model_type")
            config = cls.config_class(**fields)
        config.name_or_path = str(path_or_repo)
    with damaged_gguf(file.path, "tensors"):
        return config, gguf_state_dict(file)
