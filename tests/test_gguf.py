"""GGUF checkpoints on tiny files written here with the `gguf` package, checked against the reference
transformers: the header reader, every supported tensor type (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q6_K) against
the `gguf` package's own dequantiser, the tensor names and the undone llama.cpp layouts (Llama's q/k row order, GPT-2's
transposed weights) for Llama, Qwen2 and GPT-2, the config from the metadata (AutoConfig and each config class), the
tokenizer rebuilt from the metadata (byte-level BPE, and SentencePiece vocabularies of real models: Mistral v1 with
byte fallback, botchan BPE and Unigram) through AutoTokenizer and each tokenizer class, and the errors on bad files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import transformers
from conftest import fixture_path
from gguf import GGMLQuantizationType as Q
from gguf import GGUFWriter
from gguf.quants import quantize
from tokenization.corpus import corpus
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

import leanformers
from leanformers.errors import (
    CheckpointError,
    ConfigError,
    ResourceNotFoundError,
    TokenizerError,
)
from leanformers.gguf import read_gguf

CONTROL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
USER_DEFINED = "<think>"
CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
# Llama: hidden 256 so that every projection takes the 256-value blocks of the K-quants
LLAMA = dict(hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=128, rms_norm_eps=1e-5, rope_theta=10000.0)
# tensor type of each projection, per layer: every type meets the q/k row permutation once
LAYER_TYPES = [
    {"attn_q": Q.Q4_0, "attn_k": Q.Q4_1, "attn_v": Q.Q8_0, "attn_output": Q.F16, "ffn_gate": Q.BF16,
     "ffn_up": Q.Q4_K, "ffn_down": Q.Q6_K},
    {"attn_q": Q.Q4_K, "attn_k": Q.Q6_K, "attn_v": Q.F32, "attn_output": Q.Q4_0, "ffn_gate": Q.Q4_1,
     "ffn_up": Q.Q8_0, "ffn_down": Q.F16},
]
LLAMA_PARTS = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
               "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
               "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm",
               "post_attention_layernorm": "ffn_norm"}


# ---------------------------------------------------------------------------------------------- writing GGUF files
def byte_level_vocab():
    """A small byte-level BPE trained here: (tokens in id order, merges, token types)."""
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=420, special_tokens=CONTROL, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    backend.train_from_iterator(corpus()[:200] * 3, trainer)
    data = json.loads(backend.to_str())["model"]
    tokens = [token for token, _ in sorted(data["vocab"].items(), key=lambda item: item[1])]
    merges = [" ".join(m) if isinstance(m, list) else m for m in data["merges"]]
    tokens.append(USER_DEFINED)
    types = [3 if t in CONTROL else 4 if t == USER_DEFINED else 1 for t in tokens]
    return tokens, merges, types


VOCAB = byte_level_vocab()


def k_quant_blocks(rows: int, cols: int, kind, seed: int) -> np.ndarray:
    """Random Q4_K / Q6_K blocks (the `gguf` package only reads these) with small, finite fp16 scales."""
    block_bytes = {Q.Q4_K: 144, Q.Q6_K: 210}[kind]
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (rows, cols // 256, block_bytes), dtype=np.uint8)
    scale = np.frombuffer(np.float16(0.002).tobytes(), np.uint8)
    if kind == Q.Q4_K:  # d and dmin lead the block
        blocks[..., 0:2] = scale
        blocks[..., 2:4] = np.frombuffer(np.float16(0.001).tobytes(), np.uint8)
    else:  # d ends the block
        blocks[..., -2:] = scale
    return blocks.reshape(rows, -1)


def put(writer: GGUFWriter, name: str, array: np.ndarray, kind=Q.F32, seed: int = 0):
    """Add a float32 array to the file, stored as `kind`."""
    if kind == Q.F32:
        writer.add_tensor(name, array.astype(np.float32))
    elif kind == Q.F16:
        writer.add_tensor(name, array.astype(np.float16))
    elif kind in (Q.Q4_K, Q.Q6_K):
        writer.add_tensor(name, k_quant_blocks(array.shape[0], array.shape[1], kind, seed), raw_dtype=kind)
    else:
        writer.add_tensor(name, quantize(array.astype(np.float32), kind), raw_dtype=kind)


def llama_cpp_permute(weight: np.ndarray, heads: int) -> np.ndarray:
    """The row order llama.cpp's converter gives q/k projections (computed here independently of our loader)."""
    half = weight.shape[0] // heads // 2
    return weight.reshape(heads, 2, half, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def add_tokenizer(writer: GGUFWriter, pre: str = "smollm", add_bos: bool = False):
    tokens, merges, types = VOCAB
    writer.add_string("tokenizer.ggml.model", "gpt2")
    writer.add_string("tokenizer.ggml.pre", pre)
    writer.add_array("tokenizer.ggml.tokens", tokens)
    writer.add_array("tokenizer.ggml.token_type", types)
    writer.add_array("tokenizer.ggml.merges", merges)
    for key, index in (("bos", 1), ("eos", 2), ("unknown", 0), ("padding", 2)):
        writer.add_uint32(f"tokenizer.ggml.{key}_token_id", index)
    writer.add_bool("tokenizer.ggml.add_bos_token", add_bos)
    writer.add_string("tokenizer.chat_template", CHAT_TEMPLATE)


def write_llama(path, model, arch: str = "llama", types=None, tied: bool = True, pre: str = "smollm",
                add_bos: bool = False):
    """Write a reference Llama/Qwen2 model as llama.cpp's converter would: GGUF names, permuted q/k (Llama only),
    tensors stored as `types` (per layer: part -> type; None = F32 everywhere)."""
    config = model.config
    writer = GGUFWriter(str(path), arch)
    for key, value in (("block_count", config.num_hidden_layers), ("context_length", config.max_position_embeddings),
                       ("embedding_length", config.hidden_size), ("feed_forward_length", config.intermediate_size),
                       ("attention.head_count", config.num_attention_heads),
                       ("attention.head_count_kv", config.num_key_value_heads)):
        writer.add_uint32(f"{arch}.{key}", value)
    writer.add_float32(f"{arch}.rope.freq_base", config.rope_parameters["rope_theta"])
    writer.add_float32(f"{arch}.attention.layer_norm_rms_epsilon", config.rms_norm_eps)
    if arch == "llama":
        writer.add_uint32("llama.rope.dimension_count", config.hidden_size // config.num_attention_heads)
    add_tokenizer(writer, pre, add_bos)
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    put(writer, "token_embd.weight", state["model.embed_tokens.weight"], Q.Q8_0 if types else Q.F32, 0)
    put(writer, "output_norm.weight", state["model.norm.weight"])
    if not tied:
        put(writer, "output.weight", state["lm_head.weight"], Q.Q6_K if types else Q.F32, 1)
    for i in range(config.num_hidden_layers):
        for ours, part in LLAMA_PARTS.items():
            for kind in ("weight", "bias"):
                value = state.get(f"model.layers.{i}.{ours}.{kind}")
                if value is None:
                    continue
                if arch == "llama" and part in ("attn_q", "attn_k"):
                    heads = config.num_attention_heads if part == "attn_q" else config.num_key_value_heads
                    value = llama_cpp_permute(value, heads)
                stored = types[i][part] if types and value.ndim == 2 else Q.F32
                put(writer, f"blk.{i}.{part}.{kind}", value, stored, 10 * i + len(part))
    finish(writer)
    return path


def finish(writer: GGUFWriter):
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def reference_llama(kind: str = "Llama", **extra):
    torch.manual_seed(0)
    config = getattr(transformers, f"{kind}Config")(vocab_size=len(VOCAB[0]), tie_word_embeddings=False,
                                                    **LLAMA, **extra)
    return getattr(transformers, f"{kind}ForCausalLM")(config).eval()


def both_load(folder, name: str):
    theirs = transformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file=name).eval()
    ours = leanformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
    return ours, theirs


def assert_same_weights(ours, theirs):
    expected = theirs.state_dict()
    got = ours.state_dict()
    assert sorted(got) == sorted(expected)
    for key, tensor in expected.items():
        assert got[key].dtype == tensor.dtype, key
        assert torch.equal(got[key], tensor), key


def assert_same_logits(ours, theirs, vocab: int):
    ids = torch.randint(3, vocab, (2, 9), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = theirs(ids).logits
        # float32 rounding grows with the sums' terms: dequantized random weights give logits of magnitude ~200
        # here, and a product summed in another order (oneDNN's, on AMD) differs from MKL's by ~1e-4 at that scale
        atol = 1e-4 + 1e-6 * expected.abs().max().item()
        torch.testing.assert_close(ours(ids).logits, expected, atol=atol, rtol=1e-4)


# ---------------------------------------------------------------------------------------------- tests
@pytest.fixture(scope="module")
def quantized_llama(tmp_path_factory):
    folder = tmp_path_factory.mktemp("llama-gguf")
    write_llama(folder / "tiny.gguf", reference_llama(), types=LAYER_TYPES, tied=False, pre="llama-bpe")
    return folder


def test_header_reader_matches_gguf_reader(quantized_llama):
    from gguf import GGUFReader

    ours = read_gguf(quantized_llama / "tiny.gguf")
    theirs = GGUFReader(quantized_llama / "tiny.gguf")
    assert ours.metadata["tokenizer.ggml.tokens"] == VOCAB[0]
    assert ours.metadata["tokenizer.ggml.token_type"] == VOCAB[2]
    assert ours.metadata["tokenizer.ggml.merges"] == VOCAB[1]
    for key, field in theirs.fields.items():
        if not key.startswith("GGUF."):
            assert ours.metadata[key] == field.contents(), key
    assert list(ours.tensors) == [t.name for t in theirs.tensors]
    for tensor in theirs.tensors:
        info = ours.tensors[tensor.name]
        assert info.shape == tuple(int(d) for d in reversed(tensor.shape)) and info.ggml_type == tensor.tensor_type
        assert np.array_equal(ours.raw(tensor.name).reshape(-1).view(np.uint8), tensor.data.reshape(-1).view(np.uint8))


def test_every_tensor_type_matches_the_reference(quantized_llama):
    ours, theirs = both_load(quantized_llama, "tiny.gguf")
    assert_same_weights(ours, theirs)
    assert_same_logits(ours, theirs, len(VOCAB[0]))
    assert type(ours).__name__ == "LlamaForCausalLM" and not ours.config.tie_word_embeddings
    for key in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                "num_key_value_heads", "max_position_embeddings", "rms_norm_eps", "vocab_size", "head_dim",
                "bos_token_id", "eos_token_id", "pad_token_id", "tie_word_embeddings"):
        assert getattr(ours.config, key) == getattr(theirs.config, key), key
    assert ours.config.rope_parameters == theirs.config.rope_parameters


def test_float_weights_come_back_exactly(tmp_path):
    """F32 storage: the loaded weights are the original checkpoint's, so the q/k rows are back in their order."""
    reference = reference_llama()
    write_llama(tmp_path / "f32.gguf", reference, tied=False)
    ours = leanformers.AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file="f32.gguf")
    for key, tensor in reference.state_dict().items():
        assert torch.equal(ours.state_dict()[key], tensor), key
    assert_same_logits(ours, reference, len(VOCAB[0]))


def test_q8_0_stays_within_its_rounding(tmp_path):
    reference = reference_llama()
    write_llama(tmp_path / "q8.gguf", reference, types=[dict.fromkeys(LAYER_TYPES[0], Q.Q8_0)] * 2)
    ours = leanformers.AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file="q8.gguf")
    original = reference.model.layers[1].self_attn.q_proj.weight
    loaded = ours.model.layers[1].self_attn.q_proj.weight
    step = original.abs().reshape(-1, 32).amax(dim=1, keepdim=True) / 127  # one Q8_0 step per block of 32
    assert ((loaded - original).reshape(-1, 32).abs() <= step * 0.5 + 1e-4).all()
    assert ours.config.tie_word_embeddings and ours.lm_head.weight is ours.model.embed_tokens.weight


def test_qwen2_biases_and_no_permutation(tmp_path):
    reference = reference_llama("Qwen2")
    write_llama(tmp_path / "qwen2.gguf", reference, arch="qwen2", types=LAYER_TYPES, pre="qwen2")
    ours, theirs = both_load(tmp_path, "qwen2.gguf")
    assert type(ours).__name__ == "Qwen2ForCausalLM"
    assert_same_weights(ours, theirs)
    assert_same_logits(ours, theirs, len(VOCAB[0]))
    assert torch.equal(ours.model.layers[0].self_attn.q_proj.bias, reference.model.layers[0].self_attn.q_proj.bias)


def write_gpt2(path, model):
    """GPT-2 as llama.cpp writes it: fused qkv and projections transposed to (out, in), output = embedding."""
    config = model.config
    writer = GGUFWriter(str(path), "gpt2")
    for key, value in (("block_count", config.n_layer), ("context_length", config.n_positions),
                       ("embedding_length", config.n_embd), ("feed_forward_length", 4 * config.n_embd),
                       ("attention.head_count", config.n_head)):
        writer.add_uint32(f"gpt2.{key}", value)
    writer.add_float32("gpt2.attention.layer_norm_epsilon", config.layer_norm_epsilon)
    add_tokenizer(writer)
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    names = {"ln_1": "attn_norm", "attn.c_attn": "attn_qkv", "attn.c_proj": "attn_output", "ln_2": "ffn_norm",
             "mlp.c_fc": "ffn_up", "mlp.c_proj": "ffn_down"}
    put(writer, "token_embd.weight", state["transformer.wte.weight"], Q.Q8_0, 0)
    put(writer, "position_embd.weight", state["transformer.wpe.weight"])
    put(writer, "output.weight", state["transformer.wte.weight"], Q.Q8_0, 0)
    for kind in ("weight", "bias"):
        put(writer, f"output_norm.{kind}", state[f"transformer.ln_f.{kind}"])
    for i in range(config.n_layer):
        for ours, part in names.items():
            for kind in ("weight", "bias"):
                value = state[f"transformer.h.{i}.{ours}.{kind}"]
                stored = Q.F32
                if value.ndim == 2:
                    value, stored = value.T.copy(), (Q.Q8_0 if i == 0 else Q.Q4_1)
                put(writer, f"blk.{i}.{part}.{kind}", value, stored, i)
    finish(writer)


def test_gpt2_transposed_weights(tmp_path):
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=len(VOCAB[0]), n_embd=64, n_layer=2, n_head=4)
    write_gpt2(tmp_path / "gpt2.gguf", transformers.GPT2LMHeadModel(config).eval())
    ours, theirs = both_load(tmp_path, "gpt2.gguf")
    assert type(ours).__name__ == "GPT2LMHeadModel"
    assert_same_weights(ours, theirs)
    assert_same_logits(ours, theirs, len(VOCAB[0]))


@pytest.fixture(scope="module")
def tokenizers_pair(quantized_llama):
    theirs = transformers.AutoTokenizer.from_pretrained(quantized_llama, gguf_file="tiny.gguf")
    ours = leanformers.AutoTokenizer.from_pretrained(quantized_llama, gguf_file="tiny.gguf")
    return ours, theirs


@pytest.mark.parametrize("pre", ["smollm", "llama-bpe", "qwen2"])
def test_tokenizer_ids_match_the_reference(tmp_path, pre):
    write_llama(tmp_path / "t.gguf", reference_llama(), pre=pre, add_bos=pre == "qwen2")
    theirs = transformers.AutoTokenizer.from_pretrained(tmp_path, gguf_file="t.gguf")
    ours = leanformers.AutoTokenizer.from_pretrained(tmp_path, gguf_file="t.gguf")
    texts = corpus() + [f"{USER_DEFINED} a<|im_start|>b <|im_end|>"]
    assert ours(texts)["input_ids"] == theirs(texts)["input_ids"]
    ids = ours(texts[:50])["input_ids"]
    assert ours.batch_decode(ids) == theirs.batch_decode(ids)
    assert ours.batch_decode(ids, skip_special_tokens=True) == theirs.batch_decode(ids, skip_special_tokens=True)


def test_tokenizer_settings_match_the_reference(tokenizers_pair):
    ours, theirs = tokenizers_pair
    assert type(ours).__name__ == "PreTrainedTokenizerFast"
    assert ours.special_tokens_map == theirs.special_tokens_map
    assert ours.all_special_tokens == theirs.all_special_tokens
    assert ours.get_vocab() == theirs.get_vocab() and len(ours) == len(theirs)
    assert ours.chat_template == theirs.chat_template == CHAT_TEMPLATE
    assert (ours.bos_token_id, ours.eos_token_id, ours.pad_token_id, ours.unk_token_id) == \
           (theirs.bos_token_id, theirs.eos_token_id, theirs.pad_token_id, theirs.unk_token_id)
    assert ours.add_bos_token == theirs.add_bos_token is False
    encoded = ours("hi <|im_end|>", return_offsets_mapping=True)
    expected = theirs("hi <|im_end|>", return_offsets_mapping=True)
    assert encoded["offset_mapping"] == expected["offset_mapping"]


def test_tokenizer_keywords_override(quantized_llama):
    tok = leanformers.AutoTokenizer.from_pretrained(quantized_llama, gguf_file="tiny.gguf", padding_side="left")
    assert tok.padding_side == "left"
    config = leanformers.AutoConfig.from_pretrained(quantized_llama, gguf_file="tiny.gguf")
    assert config.model_type == "llama" and config.num_hidden_layers == 2


def test_bad_files_raise_clear_errors(tmp_path, quantized_llama):
    (tmp_path / "junk.gguf").write_bytes(b"not a gguf file at all")
    with pytest.raises(CheckpointError, match="not a GGUF file"):
        leanformers.AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file="junk.gguf")
    data = (quantized_llama / "tiny.gguf").read_bytes()
    (tmp_path / "cut.gguf").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        leanformers.AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file="cut.gguf")
    with pytest.raises(ResourceNotFoundError):
        leanformers.AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file="absent.gguf")
    writer = GGUFWriter(str(tmp_path / "mamba.gguf"), "mamba")
    writer.add_tensor("token_embd.weight", np.zeros((4, 32), np.float32))
    finish(writer)
    with pytest.raises(ConfigError, match="'mamba' model"):
        leanformers.AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file="mamba.gguf")
    with pytest.raises(ConfigError, match="'mamba' model.*original"):
        leanformers.AutoConfig.from_pretrained(tmp_path, gguf_file="mamba.gguf")
    with pytest.raises(ConfigError, match="'llama' config, not 'qwen2'"):
        leanformers.Qwen2Config.from_pretrained(quantized_llama, gguf_file="tiny.gguf")
    # cut inside the metadata (the vocabulary), not only inside the tensor data
    (tmp_path / "head.gguf").write_bytes(data[:2000])
    with pytest.raises(CheckpointError, match="damaged or truncated.*Download the file again"):
        leanformers.AutoConfig.from_pretrained(tmp_path, gguf_file="head.gguf")
    with pytest.raises(CheckpointError, match="damaged or truncated"):
        leanformers.AutoTokenizer.from_pretrained(tmp_path, gguf_file="head.gguf")


def write_tokenizer_only(path, kind: str, arch: str = "llama", scores: bool = False):
    writer = GGUFWriter(str(path), arch)
    writer.add_string("tokenizer.ggml.model", kind)
    writer.add_array("tokenizer.ggml.tokens", ["<unk>", "<s>", "</s>", "\u2581a"])
    if scores:
        writer.add_array("tokenizer.ggml.scores", [0.0, 0.0, 0.0, -1.0])
    finish(writer)


def test_unsupported_tokenizers_raise_clear_errors(tmp_path):
    for name, kind, arch in (("t5.gguf", "t5", "t5"), ("gemma.gguf", "llama", "gemma2"), ("rwkv.gguf", "rwkv", "rwkv")):
        write_tokenizer_only(tmp_path / name, kind, arch, scores=True)
        with pytest.raises(TokenizerError, match=f"'{kind}' tokenizer of a '{arch}' model.*original checkpoint"):
            leanformers.AutoTokenizer.from_pretrained(tmp_path, gguf_file=name)
    write_tokenizer_only(tmp_path / "noscores.gguf", "llama")
    with pytest.raises(TokenizerError, match="neither merges nor one score per token"):
        leanformers.AutoTokenizer.from_pretrained(tmp_path, gguf_file="noscores.gguf")
    writer = GGUFWriter(str(tmp_path / "none.gguf"), "llama")
    finish(writer)
    with pytest.raises(TokenizerError, match="stores no tokenizer"):
        leanformers.PreTrainedTokenizerFast.from_pretrained(tmp_path, gguf_file="none.gguf")


# ---------------------------------------------------------------------------------------------- tensor types
@pytest.fixture(scope="module")
def typed_tensors(tmp_path_factory):
    """One file with a (4, 512) tensor of each supported type (K-quants as random blocks) and a 1-D F32 one."""
    path = tmp_path_factory.mktemp("types") / "types.gguf"
    writer = GGUFWriter(str(path), "llama")
    values = np.random.default_rng(0).standard_normal((4, 512)).astype(np.float32)
    for seed, kind in enumerate(TENSOR_TYPES):
        put(writer, f"t.{kind.name}", values, kind, seed)
    put(writer, "norm", values[0])
    finish(writer)
    return path


TENSOR_TYPES = (Q.F32, Q.F16, Q.BF16, Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q4_K, Q.Q6_K)


@pytest.mark.parametrize("kind", TENSOR_TYPES, ids=lambda kind: kind.name)
def test_dequantize_equals_the_gguf_package(typed_tensors, kind):
    """Our reader + dequantiser against the `gguf` package's own reader and `gguf.quants.dequantize`."""
    from gguf import GGUFReader
    from gguf.quants import dequantize

    stored = {tensor.name: tensor for tensor in GGUFReader(typed_tensors).tensors}
    ours = read_gguf(typed_tensors)
    names = [f"t.{kind.name}"] + (["norm"] if kind == Q.F32 else [])
    for name in names:
        expected = dequantize(stored[name].data, stored[name].tensor_type)
        got = ours.dequantize(name)
        assert stored[name].tensor_type == ours.tensors[name].ggml_type
        assert got.dtype == np.float32 and got.flags.writeable
        assert got.shape == ((4, 512) if name != "norm" else (512,))
        assert np.array_equal(got, expected.reshape(got.shape)), name


# ---------------------------------------------------------------------------------------------- config parity
def spm_file(path, model: str, arch: str = "llama", name: str | None = None, add_bos: bool | None = None,
             add_eos: bool | None = None, rename: dict | None = None, template: str | None = None):
    """A GGUF whose tokenizer metadata comes from a real SentencePiece model, written as llama.cpp's converter
    writes Llama 2 / Mistral files: pieces, scores and token types (normal, unknown, control, unused, byte), the
    special ids, the BOS/EOS flags when given, and a tiny model so that the reference can build its config."""
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor(model_file=str(model))
    size = processor.vocab_size()
    tokens = [(rename or {}).get(processor.id_to_piece(i), processor.id_to_piece(i)) for i in range(size)]
    types = [2 if processor.is_unknown(i) else 3 if processor.is_control(i) else 5 if processor.is_unused(i)
             else 6 if processor.is_byte(i) else 1 for i in range(size)]
    writer = GGUFWriter(str(path), arch)
    if name:
        writer.add_name(name)
    for key, value in (("block_count", 2), ("context_length", 64), ("embedding_length", 32),
                       ("feed_forward_length", 64), ("attention.head_count", 4), ("attention.head_count_kv", 2)):
        writer.add_uint32(f"{arch}.{key}", value)
    writer.add_string("tokenizer.ggml.model", "llama")
    writer.add_string("tokenizer.ggml.pre", "default")
    writer.add_array("tokenizer.ggml.tokens", tokens)
    writer.add_array("tokenizer.ggml.scores", [processor.get_score(i) for i in range(size)])
    writer.add_array("tokenizer.ggml.token_type", types)
    for key, index in (("bos", processor.bos_id()), ("eos", processor.eos_id()), ("unknown", processor.unk_id())):
        writer.add_uint32(f"tokenizer.ggml.{key}_token_id", index)
    for flag, value in (("add_bos_token", add_bos), ("add_eos_token", add_eos)):
        if value is not None:
            writer.add_bool(f"tokenizer.ggml.{flag}", value)
    if template:
        writer.add_string("tokenizer.chat_template", template)
    writer.add_tensor("token_embd.weight", np.zeros((size, 32), np.float16))
    finish(writer)
    return path


SPM_BPE = ("sentencepiece", "test", "botchan_en_bpe_1000.model")
SPM_UNIGRAM = ("sentencepiece", "test", "botchan_en_unigram_1000.model")
MISTRAL_V1 = ("mistral-common", "mistral_common", "data", "tokenizer.model.v1")
IGNORED_CONFIG_KEYS = {"transformers_version", "_name_or_path", "_model_name_or_path"}


def assert_same_config(ours, theirs):
    expected = {k: v for k, v in theirs.to_dict().items() if k not in IGNORED_CONFIG_KEYS}
    got = ours.to_dict()
    assert type(ours).__name__ == type(theirs).__name__
    assert {k: got.get(k, "missing") for k in expected} == expected
    assert getattr(ours, "_model_name_or_path", None) == getattr(theirs, "_model_name_or_path", None)


@pytest.fixture(scope="module")
def config_files(tmp_path_factory, quantized_llama):
    folder = tmp_path_factory.mktemp("configs")
    write_llama(folder / "qwen2.gguf", reference_llama("Qwen2"), arch="qwen2")
    torch.manual_seed(0)
    write_gpt2(folder / "gpt2.gguf", transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=len(VOCAB[0]), n_embd=64, n_layer=2, n_head=4)))
    spm_file(folder / "mistral.gguf", fixture_path(*SPM_BPE), name="mistral")
    spm_file(folder / "named.gguf", fixture_path(*SPM_BPE), name="Botchan 1k")
    (folder / "llama.gguf").symlink_to(quantized_llama / "tiny.gguf")
    return folder


@pytest.mark.parametrize("name, config_class", [("llama", "LlamaConfig"), ("qwen2", "Qwen2Config"),
                                                ("gpt2", "GPT2Config"), ("mistral", "MistralConfig"),
                                                ("named", "LlamaConfig")])
def test_config_from_gguf_matches_the_reference(config_files, name, config_class):
    """AutoConfig and the config class itself read the metadata as the reference does (a llama file named exactly
    "mistral" is a Mistral model; GPT-2 keeps n_ctx and feed_forward_length; general.name is kept)."""
    theirs = transformers.AutoConfig.from_pretrained(config_files, gguf_file=f"{name}.gguf")
    ours = leanformers.AutoConfig.from_pretrained(config_files, gguf_file=f"{name}.gguf")
    assert_same_config(ours, theirs)
    direct = getattr(leanformers, config_class).from_pretrained(config_files, gguf_file=f"{name}.gguf")
    assert_same_config(direct, getattr(transformers, config_class).from_pretrained(config_files,
                                                                                   gguf_file=f"{name}.gguf"))
    assert direct.name_or_path == ours.name_or_path == str(config_files)
    overridden = getattr(leanformers, config_class).from_pretrained(config_files, gguf_file=f"{name}.gguf",
                                                                   output_hidden_states=True)
    assert overridden.output_hidden_states and overridden.vocab_size == ours.vocab_size


# ---------------------------------------------------------------------------------------------- SentencePiece
MISTRAL_TEMPLATE = ("{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}{{ '[INST] ' + m['content'] + "
                    "' [/INST]' }}{% else %}{{ m['content'] + eos_token }}{% endif %}{% endfor %}")
CHATS = [[{"role": "user", "content": "Hi!"}],
         [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"},
          {"role": "user", "content": "Café, 北京, 😀\n\tand <s> inline"}]]


def assert_same_tokenizer(ours, theirs, texts):
    assert json.loads(ours.backend_tokenizer.to_str()) == json.loads(theirs.backend_tokenizer.to_str())
    ids = theirs(texts)["input_ids"]
    assert ours(texts)["input_ids"] == ids
    assert ours.batch_decode(ids) == theirs.batch_decode(ids)
    assert ours.batch_decode(ids, skip_special_tokens=True) == theirs.batch_decode(ids, skip_special_tokens=True)
    pairs = (texts[:20], texts[20:40])
    assert ours(*pairs)["input_ids"] == theirs(*pairs)["input_ids"]
    assert ours.special_tokens_map == theirs.special_tokens_map
    assert ours.all_special_tokens == theirs.all_special_tokens
    assert ours.get_vocab() == theirs.get_vocab() and len(ours) == len(theirs)
    assert (ours.add_bos_token, ours.add_eos_token) == (theirs.add_bos_token, theirs.add_eos_token)
    assert ours.padding_side == theirs.padding_side


@pytest.fixture(scope="module")
def mistral_pair(tmp_path_factory):
    """Mistral v1's SentencePiece model (32000 pieces, 256 byte-fallback pieces) as a GGUF tokenizer, loaded by
    both AutoTokenizers."""
    folder = tmp_path_factory.mktemp("mistral-spm")
    spm_file(folder / "m.gguf", fixture_path(*MISTRAL_V1), add_bos=True, add_eos=False, template=MISTRAL_TEMPLATE)
    theirs = transformers.AutoTokenizer.from_pretrained(folder, gguf_file="m.gguf")
    ours = leanformers.AutoTokenizer.from_pretrained(folder, gguf_file="m.gguf")
    return ours, theirs


def test_sentencepiece_tokenizer_matches_the_reference(mistral_pair):
    ours, theirs = mistral_pair
    texts = corpus() + ["<s>[INST] hi [/INST]</s> <unk>", "\x00\x07 \u0301 \U0001F9EC", "  two spaces"]
    assert_same_tokenizer(ours, theirs, texts)
    model = json.loads(ours.backend_tokenizer.to_str())["model"]
    assert model["type"] == "BPE" and model["byte_fallback"] and len(model["merges"]) > 30000
    assert type(ours).__name__ == "PreTrainedTokenizerFast" and ours.add_bos_token
    encoded = ours(texts[:40], return_offsets_mapping=True)["offset_mapping"]
    assert encoded == theirs(texts[:40], return_offsets_mapping=True)["offset_mapping"]
    byte_pieces = [token for token in ours.convert_ids_to_tokens(ours("\U0001F9EC\x07")["input_ids"])
                   if token.startswith("<0x")]
    assert byte_pieces  # the text really goes through byte fallback


def test_sentencepiece_chat_template_matches_the_reference(mistral_pair):
    ours, theirs = mistral_pair
    assert ours.chat_template == theirs.chat_template == MISTRAL_TEMPLATE
    for chat in CHATS:
        assert ours.apply_chat_template(chat, tokenize=False) == theirs.apply_chat_template(chat, tokenize=False)
        assert ours.apply_chat_template(chat)["input_ids"] == theirs.apply_chat_template(chat)["input_ids"]


SPM_VARIANTS = {
    # flags the file states; scores of a BPE model
    "bpe-flags": {"model": SPM_BPE, "add_bos": False, "add_eos": True},
    # scores of a Unigram model: transformers still builds a BPE from them
    "unigram": {"model": SPM_UNIGRAM},
    # Phi-3 prepends "▁" in a normalizer, not in the pre-tokenizer
    "phi3": {"model": SPM_BPE, "arch": "phi3"},
    # special pieces named otherwise: the defaults <s> </s> <unk> are appended after the vocabulary
    "renamed": {"model": SPM_BPE, "rename": {"<unk>": "<UNK>", "<s>": "<bos>", "</s>": "<eos>"}},
}


@pytest.mark.parametrize("variant", SPM_VARIANTS)
def test_sentencepiece_variants_match_the_reference(tmp_path, variant):
    options = dict(SPM_VARIANTS[variant])
    spm_file(tmp_path / "v.gguf", fixture_path(*options.pop("model")), **options)
    theirs = transformers.AutoTokenizer.from_pretrained(tmp_path, gguf_file="v.gguf")
    ours = leanformers.AutoTokenizer.from_pretrained(tmp_path, gguf_file="v.gguf")
    assert_same_tokenizer(ours, theirs, corpus()[:300] + ["<s> <bos> </s><eos> <unk>", "  hi", " "])


def test_byte_level_file_without_endoftext_gets_it_appended(tmp_path):
    tokens, merges, types = VOCAB
    writer = GGUFWriter(str(tmp_path / "l3.gguf"), "llama")
    writer.add_uint32("llama.block_count", 2)
    writer.add_string("tokenizer.ggml.model", "gpt2")
    writer.add_string("tokenizer.ggml.pre", "llama-bpe")
    writer.add_array("tokenizer.ggml.tokens", ["<|begin_of_text|>" if t == CONTROL[0] else t for t in tokens])
    writer.add_array("tokenizer.ggml.token_type", types)
    writer.add_array("tokenizer.ggml.merges", merges)
    finish(writer)
    theirs = transformers.AutoTokenizer.from_pretrained(tmp_path, gguf_file="l3.gguf")
    ours = leanformers.AutoTokenizer.from_pretrained(tmp_path, gguf_file="l3.gguf")
    assert_same_tokenizer(ours, theirs, corpus()[:200] + ["<|endoftext|><|begin_of_text|> x"])
    assert ours.convert_tokens_to_ids("<|endoftext|>") == len(tokens)


@pytest.fixture(scope="module")
def family_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("families")
    spm_file(folder / "spm.gguf", fixture_path(*SPM_BPE), template=MISTRAL_TEMPLATE)
    write_llama(folder / "qwen2.gguf", reference_llama("Qwen2"), arch="qwen2", pre="qwen2")
    return folder


@pytest.mark.parametrize("file", ["spm.gguf", "qwen2.gguf"])
@pytest.mark.parametrize("cls", ["AutoTokenizer", "PreTrainedTokenizerFast", "LlamaTokenizer", "LlamaTokenizerFast",
                                 "GPT2Tokenizer", "Qwen2Tokenizer"])
def test_every_tokenizer_class_loads_gguf_like_the_reference(family_files, file, cls):
    """gguf_file= works on each class: the engine comes from the file, the class keeps its own settings (padding
    side); AutoTokenizer picks the class of the model type (Qwen2Tokenizer for a qwen2 file)."""
    theirs = getattr(transformers, cls).from_pretrained(family_files, gguf_file=file)
    ours = getattr(leanformers, cls).from_pretrained(family_files, gguf_file=file, local_files_only=True)
    name = type(theirs).__name__
    assert type(ours).__name__ == ("PreTrainedTokenizerFast" if name == "TokenizersBackend" else name.removesuffix("Fast"))
    assert_same_tokenizer(ours, theirs, corpus()[:120] + [f"{USER_DEFINED} a<|im_start|>b <|im_end|> <s>"])
    assert ours.chat_template == theirs.chat_template
