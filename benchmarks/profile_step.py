"""Where the time of a decoding step or an encoder forward goes, by kind of work.

    python benchmarks/profile_step.py decode gpt2-small|smollm2-135m [--batch N] [--threads N] [--library L]
    python benchmarks/profile_step.py forward bert-base [--batch N] [--threads N] [--library L]

Runs the work under torch.profiler and sums the self time of each aten operator into kinds: matrix products,
attention, normalisation, other element-wise work and copies. What the operators do not account for (wall time
minus their sum) is Python and dispatch: the overhead a compiled or fused path removes. The checkpoints are the
benchmark ones (see workloads/decode.py and common.py); run `benchmarks/run.py --only decode,forward` once first.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BERT_BASE, BENCH_DIR  # noqa: E402

CHECKPOINTS = {"gpt2-small": BENCH_DIR / "gpt2-small-random", "smollm2-135m": BENCH_DIR / "smollm2-135m-fp32",
               "bert-base": BERT_BASE}
KINDS = (("attention", ("scaled_dot_product", "softmax")),
         ("matmul", ("mm", "addmv", "mv", "_mkl_linear", "linear_pointwise", "_weight_int8pack")),
         ("norm", ("layer_norm", "rms_norm", "rsqrt", "pow", "mean")),
         ("copies", ("copy_", "cat", "index", "contiguous", "clone", "_to_copy", "fill_", "masked_fill", "zero_")))


def kind_of(name: str) -> str:
    op = name.removeprefix("aten::")
    for kind, keys in KINDS:
        if any(key in op for key in keys):
            return kind
    return "element-wise & other"


def run(args):
    import torch

    torch.set_num_threads(args.threads)
    lib = importlib.import_module(args.library)
    path = str(CHECKPOINTS[args.model])
    if args.work == "decode":
        model = lib.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        ids = torch.randint(100, model.config.vocab_size - 100, (args.batch, 32),
                            generator=torch.Generator().manual_seed(0))
        options = dict(max_new_tokens=args.steps, min_new_tokens=args.steps, do_sample=False, pad_token_id=0)

        def work():
            return model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **options)
        count = args.steps
    else:
        model = lib.AutoModel.from_pretrained(path, dtype=torch.float32).eval()
        ids = torch.randint(1000, 20000, (args.batch, 128), generator=torch.Generator().manual_seed(0))

        def work():
            return model(input_ids=ids, attention_mask=torch.ones_like(ids))
        count = 1
    return torch, work, count


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("work", choices=("decode", "forward"))
    parser.add_argument("model", choices=tuple(CHECKPOINTS))
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=64, help="new tokens per generate() when decoding")
    parser.add_argument("--library", default="leanformers", choices=("leanformers", "transformers"))
    args = parser.parse_args(argv)
    torch, work, count = run(args)
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode():
        work()  # warm-up
        start = time.perf_counter()
        work()
        plain = time.perf_counter() - start
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            work()
    totals: dict[str, float] = {}
    for event in prof.key_averages():
        if event.key.startswith("aten::"):
            kind = kind_of(event.key)
            totals[kind] = totals.get(kind, 0.0) + event.self_cpu_time_total / 1e6
    # the rest of the unprofiled run is Python and dispatch (a lower bound: the profiler slows operators a little)
    totals["python & dispatch"] = max(plain - sum(totals.values()), 0.0)
    unit = "ms per step" if args.work == "decode" else "ms per forward"
    print(f"{args.library} {args.work} {args.model} batch={args.batch} threads={args.threads}: "
          f"{1000 * plain / count:.1f} {unit}")
    for kind, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"  {kind:<22} {1000 * seconds / count:7.2f} ms  {100 * seconds / plain:5.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
