"""Benchmark workloads. Each module defines NAME, METRIC, cases(quick), prepare(quick) and measure(lib, case).

`measure` runs inside a fresh worker process for one library and returns raw numbers; METRIC names the number
compared between libraries and whether lower or higher is better.
"""

WORKLOADS = ("import_time", "load", "forward", "tokenizer", "seq2seq_generate", "decode",
             "pipeline_text_classification", "pipeline_token_classification", "trainer_startup",
             "longformer_forward", "deberta_forward", "transfo_xl", "xlnet", "peers", "onnx_forward")
