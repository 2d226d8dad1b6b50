"""leanformers beside the engines CPU users switch to, float32, on the same random weights, in one interleaved run.

- decode (decode.py's cases and checkpoints: GPT-2-small-sized random model and SmolLM2-135M, 32-token prompt, 128
  new tokens, batch 1 and 8, every row the full length): leanformers and transformers `generate()`; CTranslate2's
  `Generator.generate_batch` on a conversion of the same checkpoint (its transformers converter, float32);
  ONNX Runtime through leanformers' own ONNX path (`leanformers export onnx --task text-generation`, decoded by
  `ORTModelForCausalLM.generate`, the cache going in and out of the graph every step).
- forward (bert-base, 1x128 and 8x128): leanformers and transformers eager; CTranslate2's `Encoder` on a conversion;
  ONNX Runtime on transformers' BertModel exported with torch.onnx.export (onnx_forward.py's file).

Every engine gets the measured thread count (CTranslate2 intra_threads, ONNX Runtime intra_op_num_threads).
Agreement: decode rows fingerprint the generated ids (the table's same-output check) and each library reports how
many tokens equal those of the libraries measured before it in this run (`agreement`); forward rows report the
largest difference of last_hidden_state from leanformers' (`max_abs_diff_vs_leanformers`).

`PEERS_INT8=int8` (or `int8-dynamic`) adds int8 decode rows: leanformers' own opt-in mode
(`from_pretrained(..., quantize=MODE)`), torch's dynamic int8 linear layers (per channel) on the transformers model
(GPT-2's Conv1D turned into Linear first), CTranslate2 compute_type int8, ONNX Runtime's dynamic int8 quantisation of
the decoder export; each reports its token agreement with its own float32 output (`agreement_vs_float32`) and with
leanformers' float32 output.

`PEERS_COMPILE=1` makes leanformers decode through its compiled steps (`cache_implementation="static"` and a
`CompileConfig()`); `first_call_s` is the first generate() of the process, compiling included.

`PEERS_MODELS=bert-base` (comma-separated: gpt2-small, smollm2-135m, bert-base) measures those models' rows only.

The converted and exported copies are written once under fixtures/bench/ (delete one to write it again).
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import time

from common import BENCH_DIR, BERT_BASE, ensure_bert_base, library, repeat, summary
from workloads import decode, onnx_forward

NAME = "peers"
METRIC = ("tokens_per_s", "higher")
LIBRARIES = ("leanformers", "transformers", "ctranslate2", "onnxruntime")
OUTPUTS = BENCH_DIR / "peers-outputs"  # each library's output of this run, for the agreement
CHECKPOINTS = {**decode.CHECKPOINTS, "bert-base": BERT_BASE}
INT8_MODES = ("int8", "int8-dynamic")  # leanformers' quantize= modes


def int8_mode() -> str | None:
    """PEERS_INT8=int8 or int8-dynamic: the int8 rows, with that leanformers mode (unset: float32 only)."""
    mode = os.environ.get("PEERS_INT8") or None
    if mode not in (None, *INT8_MODES):
        raise ValueError(f"PEERS_INT8={mode!r}: expected one of {INT8_MODES} (leanformers' quantize= modes)")
    return mode

# CTranslate2's converter wants a tokenizer only for the vocabulary and the special tokens: the bench checkpoints
# have none, so token i is the string "i" (generation is fed and read as ids)
CT2_SCRIPT = """
import sys, transformers
from ctranslate2.converters import TransformersConverter

class IdVocabulary:
    def __init__(self, config):
        self.size = config.vocab_size
        names = ("bos_token", "eos_token", "unk_token", "pad_token")
        ids = {name: getattr(config, name + "_id", None) for name in names}
        ids = {name: value[0] if isinstance(value, list) else value for name, value in ids.items()}
        fallback = ids["eos_token"] if ids["eos_token"] is not None else ids["pad_token"]
        for name, value in ids.items():  # a special token the config does not name: the end (or padding) token
            setattr(self, name, str(fallback if value is None else value))

    def get_vocab(self):
        return {str(i): i for i in range(self.size)}

class IdConverter(TransformersConverter):
    def load_tokenizer(self, tokenizer_class, path, **kwargs):
        return IdVocabulary(transformers.AutoConfig.from_pretrained(path))

    def load_model(self, model_class, path, **kwargs):
        model = super().load_model(model_class, path, **kwargs)
        # transformers 5 dropped BertConfig.position_embedding_type (always absolute), which the converter reads
        if not hasattr(model.config, "position_embedding_type"):
            model.config.position_embedding_type = "absolute"
        return model

IdConverter(sys.argv[1]).convert(sys.argv[2], quantization="float32", force=True)
print("converted")
"""


def cases(quick: bool) -> list[dict]:
    new = 16 if quick else decode.NEW_TOKENS

    def generation(dtype: str) -> list[dict]:  # the model and dtype first: the table shows a case's first 44 chars
        return [{"model": model, "dtype": dtype, "batch": batch, "prompt": decode.PROMPT, "new_tokens": new}
                for model in decode.CHECKPOINTS for batch in (1, 8)]

    forward = [{"model": "bert-base", "dtype": "float32", "batch": batch, "seq": 128} for batch in (1, 8)]
    mode = int8_mode()
    chosen = generation("float32") + forward + (generation(mode) if mode else [])
    models = os.environ.get("PEERS_MODELS")
    return [case for case in chosen if not models or case["model"] in models.split(",")]


# ---------------------------------------------------------------------- converted and exported copies
def ct2_dir(model: str):
    return BENCH_DIR / f"{CHECKPOINTS[model].name}-ct2"


def onnx_dir(model: str, dtype: str = "float32"):
    return BENCH_DIR / f"{CHECKPOINTS[model].name}-onnx{'' if dtype == 'float32' else '-int8'}"


def _once(folder, command: list[str], what: str) -> None:
    """Run `command` to write `folder` unless a finished one is there (its bench.json written last)."""
    if (folder / "bench.json").exists():
        return
    shutil.rmtree(folder, ignore_errors=True)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600, check=False,
                          env={**os.environ, "TRANSFORMERS_VERBOSITY": "error"})
    if done.returncode != 0:
        raise RuntimeError(f"could not write {what} in {folder}:\n{done.stdout[-1000:]}\n{done.stderr[-3000:]}")
    (folder / "bench.json").write_text(json.dumps({"seconds": round(time.perf_counter() - start, 1)}))


def _quantized_export(model: str) -> None:
    """ONNX Runtime's dynamic int8 quantisation (per channel) of the decoder export, in a folder that
    ORTModelForCausalLM reads. Its pre-processing folds the weights' transposes first: without it the projections
    stay float32."""
    source, target = onnx_dir(model), onnx_dir(model, "int8")
    if (target / "bench.json").exists():
        return
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for path in source.iterdir():
        if path.suffix == ".json" and path.name != "bench.json":
            shutil.copyfile(path, target / path.name)
    folded = target / "folded.onnx"
    quant_pre_process(str(source / "model.onnx"), str(folded), skip_symbolic_shape=True)
    quantize_dynamic(str(folded), str(target / "model.onnx"), weight_type=QuantType.QInt8, per_channel=True)
    folded.unlink()
    (target / "bench.json").write_text(json.dumps({"quantized": "dynamic int8, per channel",
                                                   **matmul_counts(target / "model.onnx")}))


def matmul_counts(path) -> dict:
    """How many of the graph's products ONNX Runtime's quantiser made int8: it takes only a MatMul whose second
    input is a weight, so a graph that multiplies weight @ activation stays float32 there."""
    import onnx

    kinds = [node.op_type for node in onnx.load(str(path), load_external_data=False).graph.node]
    return {"matmuls_int8": kinds.count("MatMulInteger"), "matmuls_float": kinds.count("MatMul") + kinds.count("Gemm")}


def prepare(quick: bool) -> None:
    decode.prepare(quick)
    ensure_bert_base()
    onnx_forward.ensure_reference_export()
    for model, checkpoint in CHECKPOINTS.items():
        _once(ct2_dir(model), [sys.executable, "-c", CT2_SCRIPT, str(checkpoint), str(ct2_dir(model))],
              "the CTranslate2 conversion")
    for model in decode.CHECKPOINTS:
        # --atol 1e-3: SmolLM2's 30 layers end 4e-4 away from PyTorch in the exporter's check (GPT-2: 4e-6); the
        # tokens' agreement is what this workload reports
        _once(onnx_dir(model), [sys.executable, "-m", "leanformers.cli", "export", "onnx", str(CHECKPOINTS[model]),
                                str(onnx_dir(model)), "--task", "text-generation", "--atol", "1e-3"],
              "the ONNX decoder export")
        if int8_mode():
            _quantized_export(model)
    shutil.rmtree(OUTPUTS, ignore_errors=True)
    OUTPUTS.mkdir(parents=True)


def measure(lib: str, case: dict, quick: bool) -> dict:
    import torch

    if lib not in LIBRARIES:
        raise ValueError(f"unknown library {lib!r}; expected one of {LIBRARIES}")
    run = measure_forward if case["model"] == "bert-base" else measure_decode
    result = run(lib, case, quick)
    version = importlib.import_module(lib).__version__  # the runner's metadata lists leanformers' and transformers'
    return {**result, "threads": torch.get_num_threads(), "version": version}


# ---------------------------------------------------------------------- decoding
def dynamic_int8(model):
    """torch's dynamic int8 linear layers (per channel); a Conv1D (weight stored (in, out), GPT-2) becomes an
    nn.Linear first."""
    import torch
    from torch import nn

    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child).__name__ == "Conv1D":
                linear = nn.Linear(*child.weight.shape)
                linear.weight = nn.Parameter(child.weight.detach().t().contiguous())
                linear.bias = child.bias
                setattr(parent, name, linear)
    # per-channel scales, as CTranslate2's int8 keeps one scale per output row
    qconfig = torch.ao.quantization.per_channel_dynamic_qconfig
    return torch.ao.quantization.quantize_dynamic(model, {nn.Linear: qconfig}, dtype=torch.qint8)


def decode_inputs(case: dict):
    """decode.py's prompt (seeded random ids) and generation options, read from the checkpoint's files."""
    import torch

    folder = CHECKPOINTS[case["model"]]
    vocab = json.loads((folder / "config.json").read_text())["vocab_size"]
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(100, vocab - 100, (case["batch"], case["prompt"]), generator=generator)
    eos = json.loads((folder / "generation_config.json").read_text())["eos_token_id"]
    new = case["new_tokens"]
    options = dict(max_new_tokens=new, min_new_tokens=new, do_sample=False,
                   pad_token_id=eos[0] if isinstance(eos, list) else eos)
    return ids, options


def decoder(lib: str, case: dict):
    """generate(ids, options) -> the full sequences (batch, prompt + new) as int64 numpy, for `lib`."""
    import numpy as np
    import torch

    int8 = case["dtype"] != "float32"
    if lib in ("leanformers", "transformers"):
        own = {"quantize": case["dtype"]} if int8 and lib == "leanformers" else {}  # its own opt-in int8 mode
        model_library = library(lib)
        model = model_library.AutoModelForCausalLM.from_pretrained(str(CHECKPOINTS[case["model"]]),
                                                                   dtype=torch.float32, **own).eval()
        model = dynamic_int8(model) if int8 and lib == "transformers" else model
    elif lib == "onnxruntime":
        from leanformers.export import ORTModelForCausalLM

        if int8 and not json.loads((onnx_dir(case["model"], "int8") / "bench.json").read_text())["matmuls_int8"]:
            raise RuntimeError("ONNX Runtime's quantiser made none of this export's products int8 (they multiply "
                               "weight @ activation): no int8 measurement to make")
        model = ORTModelForCausalLM.from_pretrained(str(onnx_dir(case["model"], case["dtype"])),
                                                    session_options=onnx_forward.session_options())
    else:
        import ctranslate2

        generator = ctranslate2.Generator(str(ct2_dir(case["model"])), device="cpu", inter_threads=1,
                                          compute_type="int8" if int8 else "float32",
                                          intra_threads=torch.get_num_threads())

        def generate(ids, options):
            new = options["max_new_tokens"]
            results = generator.generate_batch([[str(i) for i in row] for row in ids.tolist()], max_length=new,
                                               min_length=new, beam_size=1, sampling_topk=1,
                                               include_prompt_in_result=False)
            return np.concatenate([ids.numpy(), np.array([r.sequences_ids[0] for r in results])], axis=1)
        return generate

    if lib == "leanformers" and compiled_mode():
        options_of_ours = dict(cache_implementation="static", compile_config=model_library.CompileConfig())
    else:
        options_of_ours = {}

    def generate(ids, options):
        with torch.inference_mode():
            return model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **options,
                                  **options_of_ours).numpy()
    return generate


def compiled_mode() -> bool:
    """PEERS_COMPILE=1: leanformers decodes through its compiled steps (a static cache and a CompileConfig)."""
    return os.environ.get("PEERS_COMPILE") == "1"


def agreement(ids, other, prompt: int) -> dict:
    """How far two libraries' generated tokens agree: the share equal, and each row's first differing position."""
    import numpy as np

    if ids.shape != other.shape:
        return {"equal": 0.0, "shapes": [list(ids.shape), list(other.shape)]}
    new, theirs = ids[:, prompt:], other[:, prompt:]
    same = new == theirs
    first = [int(np.argmin(row)) if not row.all() else int(row.size) for row in same]
    return {"equal": float(same.mean()), "first_difference": first}


def compare_decoded(lib: str, case: dict, ids) -> dict:
    """Save this library's tokens; their agreement with what the other libraries generated earlier in this run."""
    import numpy as np

    key = f"{case['model']}-b{case['batch']}-n{case['new_tokens']}"
    np.save(OUTPUTS / f"{key}-{case['dtype']}-{lib}.npy", ids)
    found = {other: np.load(path) for other in LIBRARIES if other != lib
             for path in [OUTPUTS / f"{key}-{case['dtype']}-{other}.npy"] if path.exists()}
    result = {"agreement": {other: agreement(ids, theirs, case["prompt"]) for other, theirs in found.items()}}
    if case["dtype"] != "float32":
        for name, source in (("agreement_vs_float32", lib), ("agreement_vs_leanformers_float32", "leanformers")):
            path = OUTPUTS / f"{key}-float32-{source}.npy"
            result[name] = agreement(ids, np.load(path), case["prompt"]) if path.exists() else None
    return result


def measure_decode(lib: str, case: dict, quick: bool) -> dict:
    import hashlib
    import statistics

    generate = decoder(lib, case)
    ids, options = decode_inputs(case)
    cpu_times = []

    def timed():  # CPU seconds too: on a shared machine they move less than wall time
        start = time.process_time()
        generate(ids, options)
        cpu_times.append(time.process_time() - start)

    first = time.perf_counter()
    out = generate(ids, options)  # warm-up, and the output every library must agree on
    first_call_s = time.perf_counter() - first  # compiling included, in the compiled mode
    # ONNX Runtime's decoding is several times slower: one timed run per process keeps a run's length sane
    times = repeat(timed, warmup=0, repeats=1 if quick or lib == "onnxruntime" else 3)
    stats, tokens = summary(times), case["batch"] * case["new_tokens"]
    result = {**stats, "tokens_per_s": tokens / stats["median_s"],
              "ms_per_step": 1000 * stats["median_s"] / case["new_tokens"], "cpu_times_s": cpu_times,
              "cpu_tokens_per_s": tokens / statistics.median(cpu_times), "output_shape": list(out.shape),
              "first_call_s": first_call_s, "compiled": lib == "leanformers" and compiled_mode(),
              **compare_decoded(lib, case, out)}
    if lib == "onnxruntime" and case["dtype"] != "float32":  # how much of the graph the quantiser reached
        result["quantization"] = json.loads((onnx_dir(case["model"], "int8") / "bench.json").read_text())
    if case["dtype"] == "float32":  # int8 tokens are expected to drift: their agreement says by how much
        result["fingerprint"] = hashlib.sha256(out.astype("int64").tobytes()).hexdigest()[:16]
    return result


# ---------------------------------------------------------------------- encoder forward
def encoder(lib: str, inputs: dict):
    """step() -> last_hidden_state as numpy, for `lib`, on bert-base."""
    import numpy as np
    import torch

    if lib in ("leanformers", "transformers"):
        model = library(lib).AutoModel.from_pretrained(str(BERT_BASE), dtype=torch.float32).eval()

        def step():
            with torch.inference_mode():
                return model(**inputs).last_hidden_state.numpy()
        return step
    if lib == "onnxruntime":
        return onnx_forward.ort_session_step(onnx_forward.REFERENCE_EXPORT / "model.onnx", inputs)
    import ctranslate2

    model = ctranslate2.Encoder(str(ct2_dir("bert-base")), device="cpu", compute_type="float32", inter_threads=1,
                                intra_threads=torch.get_num_threads())
    ids, types = inputs["input_ids"].tolist(), inputs["token_type_ids"].tolist()
    return lambda: np.array(model.forward_batch(ids, token_type_ids=types).last_hidden_state)


def measure_forward(lib: str, case: dict, quick: bool) -> dict:
    inputs = onnx_forward.bert_inputs(case)
    step = encoder(lib, inputs)
    hidden = step()
    times = repeat(step, warmup=1 if quick else 3, repeats=3 if quick else 20)
    stats = summary(times)
    key = f"{case['model']}-b{case['batch']}x{case['seq']}"
    return {**stats, "tokens_per_s": case["batch"] * case["seq"] / stats["median_s"],
            "output_shape": list(hidden.shape), **onnx_forward.compared(OUTPUTS, key, lib, hidden)}
