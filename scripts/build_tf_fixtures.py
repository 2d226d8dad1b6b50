"""Build the TensorFlow checkpoint fixtures: tiny random TF models saved by transformers 4.55.4 (tf_model.h5 +
config.json), with the outputs of the reference's own `from_tf=True` PyTorch conversion on fixed inputs.

Run with the test-only TensorFlow venv (scripts/setup.sh makes it): `.venv-tf/bin/python scripts/build_tf_fixtures.py`.
Writes fixtures/tf-models/<name>/{tf_model.h5, config.json, reference.pt}; a folder that has reference.pt is kept.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
from pathlib import Path

OUT = Path(os.environ.get("LEANFORMERS_FIXTURES", Path(__file__).resolve().parent.parent / "fixtures")) / "tf-models"
VOCAB, SEQ = 99, 7
SEPARATORS = [2, 3, 4]  # where the "-sep" input kinds put their three separator tokens

BERTLIKE = dict(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                max_position_embeddings=64, type_vocab_size=2)
SEQ2SEQ = dict(vocab_size=VOCAB, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
               decoder_attention_heads=4, encoder_ffn_dim=37, decoder_ffn_dim=37, max_position_embeddings=64,
               pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2)
GPT = dict(vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=4, n_positions=64, pad_token_id=0)
T5 = dict(vocab_size=VOCAB, d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4, relative_attention_num_buckets=8,
          decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
XLM = dict(vocab_size=VOCAB, emb_dim=32, n_layers=2, n_heads=4, max_position_embeddings=64,
           initializer_range=0.02)  # TF's XLM QA head reads initializer_range, which XLMConfig lacks
DEBERTA = dict(BERTLIKE, relative_attention=True, pos_att_type=["p2c", "c2p"])

BERT_HEADS = ("Model", "ForMaskedLM", "ForSequenceClassification", "ForTokenClassification", "ForQuestionAnswering",
              "ForMultipleChoice")
XLM_HEADS = ("Model", "WithLMHeadModel", "ForSequenceClassification", "ForMultipleChoice", "ForTokenClassification",
             "ForQuestionAnsweringSimple")
# (fixture family, class prefix, config class, config kwargs, heads, input kind)
FAMILIES = [
    ("bert", "Bert", "BertConfig", BERTLIKE,
     BERT_HEADS + ("ForPreTraining", "ForNextSentencePrediction", "LMHeadModel"), "text"),
    ("distilbert", "DistilBert", "DistilBertConfig",
     dict(vocab_size=VOCAB, dim=32, n_layers=2, n_heads=4, hidden_dim=37, max_position_embeddings=64),
     BERT_HEADS, "text-no-types"),
    ("roberta", "Roberta", "RobertaConfig", dict(BERTLIKE, pad_token_id=1), BERT_HEADS + ("ForCausalLM",), "text"),
    ("xlm-roberta", "XLMRoberta", "XLMRobertaConfig", dict(BERTLIKE, pad_token_id=1), BERT_HEADS + ("ForCausalLM",),
     "text"),
    ("camembert", "Camembert", "CamembertConfig", dict(BERTLIKE, pad_token_id=1), BERT_HEADS + ("ForCausalLM",),
     "text"),
    ("albert", "Albert", "AlbertConfig", dict(BERTLIKE, embedding_size=16), BERT_HEADS + ("ForPreTraining",), "text"),
    ("electra", "Electra", "ElectraConfig", dict(BERTLIKE, embedding_size=16), BERT_HEADS + ("ForPreTraining",),
     "text"),
    ("gpt2", "GPT2", "GPT2Config", GPT, ("Model", "LMHeadModel", "DoubleHeadsModel", "ForSequenceClassification"),
     "causal"),
    ("openai-gpt", "OpenAIGPT", "OpenAIGPTConfig", GPT,
     ("Model", "LMHeadModel", "DoubleHeadsModel", "ForSequenceClassification"), "causal"),
    ("ctrl", "CTRL", "CTRLConfig", dict(GPT, dff=37), ("Model", "LMHeadModel", "ForSequenceClassification"), "causal"),
    ("t5", "T5", "T5Config", T5, ("Model", "ForConditionalGeneration", "EncoderModel"), "seq2seq"),
    ("t5-untied", "T5", "T5Config", dict(T5, tie_word_embeddings=False),
     ("ForConditionalGeneration",), "seq2seq"),
    ("bart", "Bart", "BartConfig", SEQ2SEQ, ("Model", "ForConditionalGeneration", "ForSequenceClassification"),
     "seq2seq"),
    ("mbart", "MBart", "MBartConfig", SEQ2SEQ, ("Model", "ForConditionalGeneration"), "seq2seq"),
    ("marian", "Marian", "MarianConfig", dict(SEQ2SEQ, decoder_start_token_id=1), ("Model", "MTModel"), "seq2seq"),
    ("pegasus", "Pegasus", "PegasusConfig", dict(SEQ2SEQ, decoder_start_token_id=1),
     ("Model", "ForConditionalGeneration"), "seq2seq"),
    ("xlnet", "XLNet", "XLNetConfig", dict(vocab_size=VOCAB, d_model=32, n_layer=2, n_head=4, d_inner=37),
     ("Model", "LMHeadModel") + XLM_HEADS[2:], "text"),
    ("xlm", "XLM", "XLMConfig", XLM, XLM_HEADS, "text-no-types"),
    ("flaubert", "Flaubert", "FlaubertConfig", XLM, XLM_HEADS, "text-no-types"),
    ("mobilebert", "MobileBert", "MobileBertConfig",
     dict(BERTLIKE, embedding_size=16, intra_bottleneck_size=16, num_feedforward_networks=2),
     BERT_HEADS + ("ForPreTraining", "ForNextSentencePrediction"), "text"),
    ("deberta", "Deberta", "DebertaConfig", DEBERTA, BERT_HEADS[:-1], "text"),  # no TF multiple-choice head
    ("deberta-v2", "DebertaV2", "DebertaV2Config",
     dict(DEBERTA, position_buckets=8, norm_rel_ebd="layer_norm", share_att_key=True), BERT_HEADS, "text"),
    ("transfo-xl", "TransfoXL", "TransfoXLConfig",
     dict(vocab_size=VOCAB, cutoffs=[40, 80], d_model=32, d_embed=32, n_head=4, d_head=8, d_inner=37, n_layer=2,
          mem_len=8, div_val=2, pad_token_id=0), ("Model", "LMHeadModel", "ForSequenceClassification"), "causal"),
    ("mistral", "Mistral", "MistralConfig", dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=37,
                                                 num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                                 max_position_embeddings=64, pad_token_id=0),
     ("Model", "ForCausalLM", "ForSequenceClassification"), "causal"),
    ("longformer", "Longformer", "LongformerConfig", dict(BERTLIKE, pad_token_id=1, attention_window=4), BERT_HEADS,
     "text-sep"),  # question answering and multiple choice place global attention from the three separators
    ("encoder-decoder", "EncoderDecoder", "EncoderDecoderConfig",
     dict(encoder=dict(BERTLIKE, model_type="bert"), decoder_start_token_id=2, pad_token_id=0,
          decoder=dict(BERTLIKE, model_type="bert", is_decoder=True, add_cross_attention=True)), ("Model",), "seq2seq"),
]


def specs():
    """(fixture name, TF class name, PyTorch class name, config class, config kwargs, input kind) for each model."""
    for family, prefix, config_class, kwargs, heads, kind in FAMILIES:
        for head in heads:
            name = f"{family}-{head.removeprefix('For').lower()}"
            head_kind = kind
            if head == "ForMultipleChoice":
                head_kind = "choice" + kind.removeprefix("text")
            elif head == "DoubleHeadsModel":
                head_kind = "double"
            elif head == "EncoderModel":
                head_kind = "encoder"
            elif kind == "seq2seq" and head == "ForSequenceClassification":
                head_kind = "seq2seq-cls"
            decoder = head == "ForCausalLM" and kind == "text" or head == "LMHeadModel" and prefix == "Bert"
            head_kwargs = dict(kwargs, is_decoder=True) if decoder else kwargs
            yield name, f"TF{prefix}{head}", f"{prefix}{head}", config_class, head_kwargs, head_kind


def make_inputs(kind: str, seed: int) -> dict:
    """Fixed torch inputs for one input kind (ids avoid the special tokens 0-2; seq2seq rows end with eos=2)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, VOCAB, (2, SEQ), generator=g)
    mask = torch.ones(2, SEQ, dtype=torch.long)
    mask[1, -2:] = 0
    if kind.endswith("-sep"):  # three separators (sep_token_id 2) in every row; the question is the first two ids
        ids[:, SEPARATORS] = 2
    if kind in ("text", "text-no-types", "text-sep"):
        inputs = {"input_ids": ids, "attention_mask": mask}
        if kind != "text-no-types":
            inputs["token_type_ids"] = (torch.arange(SEQ) >= 4).long().expand(2, SEQ).contiguous()
        return inputs
    if kind.startswith("choice"):
        choices = torch.randint(3, VOCAB, (2, 2, SEQ), generator=g)
        if kind.endswith("-sep"):
            choices[..., SEPARATORS] = 2
        return {"input_ids": choices}
    if kind == "double":
        return {"input_ids": torch.randint(3, VOCAB, (2, 2, SEQ), generator=g),
                "mc_token_ids": torch.tensor([[SEQ - 1, SEQ - 2], [SEQ - 3, SEQ - 1]])}
    if kind == "causal":
        return {"input_ids": ids}
    if kind == "encoder":
        return {"input_ids": ids, "attention_mask": mask}
    ids[:, -1] = 2  # seq2seq: one eos per row, last (BART's classification head reads it)
    inputs = {"input_ids": ids, "attention_mask": torch.ones(2, SEQ, dtype=torch.long)}
    if kind == "seq2seq":  # the classification head decodes the shifted input itself
        inputs["decoder_input_ids"] = torch.randint(3, VOCAB, (2, 5), generator=g)
    return inputs


def build(name, tf_name, pt_name, config_class, kwargs, kind, seed):
    import numpy as np
    import tensorflow as tf
    import torch
    import transformers
    from transformers.modeling_tf_pytorch_utils import load_tf2_checkpoint_in_pytorch_model

    folder = OUT / name
    shutil.rmtree(folder, ignore_errors=True)
    tf.keras.utils.set_random_seed(seed)
    config = getattr(transformers, config_class)(**kwargs)
    tf_model = getattr(transformers, tf_name)(config)
    tf_model.build_in_name_scope()
    if not tf_model.trainable_weights:  # TF Transformer-XL creates its weights on its first call only
        tf_model(tf_model.dummy_inputs, training=False)
    rng = np.random.default_rng(seed)
    for weight in tf_model.trainable_weights:  # move every trained weight off its init (LayerNorm 1/0, zero biases)
        weight.assign(weight.numpy() + rng.normal(0.0, 0.1, weight.shape).astype(weight.numpy().dtype))
    tf_model.save_pretrained(folder)
    # The reference's own conversion, into a model built on the CPU: 4.55.4's from_pretrained(from_tf=True) builds
    # on the meta device and then copies into it, which leaves every weight unloaded.
    if pt_name == "EncoderDecoderModel":
        pt_model, info = converted_parts(tf_model, config, folder), {"missing_keys": []}
    else:
        pt_model = getattr(transformers, pt_name)(config)
        pt_model, info = load_tf2_checkpoint_in_pytorch_model(pt_model, str(folder / "tf_model.h5"),
                                                              allow_missing_keys=True, output_loading_info=True)
    pt_model.tie_weights()
    params = dict(pt_model.named_parameters(remove_duplicate=False))  # missing buffers are computed at init
    shared = {p.data_ptr() for n, p in params.items() if n not in info["missing_keys"]}
    untied = [k for k in info["missing_keys"] if k in params and params[k].data_ptr() not in shared]
    if untied:
        raise RuntimeError(f"{name}: the reference conversion left {untied} missing")
    pt_model.eval()
    inputs = make_inputs(kind, seed)
    reference = {"class": pt_name, "inputs": inputs, "state_dict": pt_model.state_dict(),
                 "init_buffers": sorted(k for k in info["missing_keys"] if k not in params)}  # not in TF files
    if pt_name.startswith(OLD_REFERENCE):
        reference["outputs"] = old_reference_outputs(folder, reference)
    else:
        with torch.no_grad():
            outputs = pt_model(**inputs, return_dict=True)
        reference["outputs"] = {k: v for k, v in outputs.items() if isinstance(v, torch.Tensor)}
    torch.save(reference, folder / "reference.pt")
    for extra in set(os.listdir(folder)) - {"tf_model.h5", "config.json", "reference.pt"}:
        os.remove(folder / extra)


def converted_parts(tf_model, config, folder: Path):
    """The PyTorch EncoderDecoderModel of a TFEncoderDecoderModel, converted part by part as 4.55.4's own from_tf=True
    does it: each part rebuilt alone in TF, given the part's weights, saved and converted (a part's names in the
    whole model carry an extra level, which the reference's converter cannot read)."""
    import transformers
    from transformers.modeling_tf_pytorch_utils import load_tf2_checkpoint_in_pytorch_model

    parts = {}
    for side in ("encoder", "decoder"):
        part = getattr(tf_model, side)
        alone = type(part)(getattr(config, side))
        alone(alone.dummy_inputs)
        weights = {"/".join(w.name.split("/")[2:]): w for w in part.weights}  # without model and part names
        for weight in alone.weights:
            weight.assign(weights["/".join(weight.name.split("/")[1:])])
        alone.save_pretrained(folder / side)
        pt_part = getattr(transformers, type(part).__name__.removeprefix("TF"))(getattr(config, side))
        parts[side] = load_tf2_checkpoint_in_pytorch_model(pt_part, str(folder / side / "tf_model.h5"))
        shutil.rmtree(folder / side)
    return transformers.EncoderDecoderModel(config=config, encoder=parts["encoder"], decoder=parts["decoder"])


# 4.55.4's PyTorch Transformer-XL fails on its first call: its outputs come from 4.34.1 (.venv-ref434), run on the
# weights 4.55.4 converted from the TF file.
OLD_REFERENCE = ("TransfoXL",)
OLD_PYTHON = Path(__file__).resolve().parent.parent / ".venv-ref434" / "bin" / "python"
OLD_FORWARD = """
import sys, torch, transformers
folder = sys.argv[1]
reference = torch.load(folder + "/reference-in.pt", weights_only=True)
config = transformers.AutoConfig.from_pretrained(folder)
model = getattr(transformers, reference["class"])(config).eval()
model.load_state_dict(reference["state_dict"])
with torch.no_grad():
    outputs = model(**reference["inputs"], return_dict=True)
torch.save({k: v for k, v in outputs.items() if isinstance(v, torch.Tensor)}, folder + "/reference-out.pt")
"""


def old_reference_outputs(folder: Path, reference: dict) -> dict:
    import subprocess

    import torch

    torch.save(reference, folder / "reference-in.pt")
    subprocess.run([str(OLD_PYTHON), "-c", OLD_FORWARD, str(folder)], check=True, capture_output=True)
    return torch.load(folder / "reference-out.pt", weights_only=True)


def main(argv):
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # transformers' TF classes run on Keras 2 (tf-keras)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # tiny CPU models; keep TensorFlow off any GPU
    only = set(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    lock = open(OUT / ".lock", "w")  # one builder at a time (setup.sh and a test run may both start one)
    fcntl.flock(lock, fcntl.LOCK_EX)
    todo = [(seed, spec) for seed, spec in enumerate(specs())
            if (not only or spec[0] in only) and not (OUT / spec[0] / "reference.pt").is_file()]
    failed = []
    for seed, spec in todo:  # TensorFlow is imported only when something is left to build
        try:
            build(*spec, seed=seed)
        except Exception as err:  # build the others, then fail naming each one that did not build
            failed.append(f"{spec[0]}: {type(err).__name__}: {err}")
    print(f"build_tf_fixtures: {len(todo) - len(failed)} built, fixtures in {OUT}")
    if failed:
        raise SystemExit("build_tf_fixtures: not built:\n" + "\n".join(failed))


if __name__ == "__main__":
    main(sys.argv[1:])
