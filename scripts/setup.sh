#!/usr/bin/env bash
# Install leanformers with its test dependencies into .venv, fetch the real-weight fixtures, set up the legacy
# reference, then run the example on its embedded default (all-MiniLM-L6-v2 from fixtures/).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# Pinned: this exact CPU build; an unpinned torch pulls a multi-GB CUDA build.
.venv/bin/python -m pip install -q torch==2.13.0
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 .venv/bin/python -m pip install -q -e ".[test,sentencepiece]"
bash scripts/fetch_fixtures.sh
# Debian's chromium for the web page tests of `leanformers serve` (Playwright's Python package drives it; no browser
# is ever downloaded by Playwright). Skipped when already there.
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
    else
        echo "setup.sh: chromium is missing; install it as root: apt-get install -y chromium" >&2
    fi
fi
# transformers 4.55.4: the reference for features 5.x dropped; tests reach it only through a subprocess.
if [ ! -x .venv-legacy/bin/python ] || ! .venv-legacy/bin/python -c "import transformers" 2>/dev/null; then
    python3 -m venv .venv-legacy
    .venv-legacy/bin/python -m pip install -q torch==2.13.0 transformers==4.55.4 sentencepiece protobuf numpy
fi
# the legacy GLUE metrics need scikit-learn and scipy (the tests compare glue_compute_metrics with them)
.venv-legacy/bin/python -c "import sklearn, scipy" 2>/dev/null ||
    .venv-legacy/bin/python -m pip install -q scikit-learn==1.7.2 scipy==1.17.1
# the legacy FlauBERT tokenizer runs sacremoses (the version the test extras pin)
.venv-legacy/bin/python -c "import sacremoses" 2>/dev/null ||
    .venv-legacy/bin/python -m pip install -q sacremoses==0.1.1
# transformers 4.34.1: the old reference for Transformer-XL and RetriBERT (later releases broke them); it pins
# tokenizers 0.14.x, so it has its own venv; numpy 1.x because 4.34.1 predates numpy 2; its Transformer-XL tokenizer
# runs sacremoses (the version the test extras pin).
if [ ! -x .venv-ref434/bin/python ] || ! .venv-ref434/bin/python -c "import transformers, sacremoses" 2>/dev/null; then
    python3 -m venv .venv-ref434
    .venv-ref434/bin/python -m pip install -q torch==2.13.0 transformers==4.34.1 sentencepiece protobuf "numpy<2" \
        sacremoses==0.1.1
fi
# TensorFlow 2.21 + tf-keras beside transformers 4.55.4 (the last with TF classes): only to build the tf_model.h5
# fixtures and the reference's from_tf=True conversion of them (fixtures/tf-models; Transformer-XL's outputs come from
# .venv-ref434 above). leanformers never imports TensorFlow. The builder skips fixtures already built.
if [ ! -x .venv-tf/bin/python ] || ! .venv-tf/bin/python -c "import tf_keras, transformers" 2>/dev/null; then
    python3 -m venv .venv-tf
    .venv-tf/bin/python -m pip install -q torch==2.13.0 transformers==4.55.4 tensorflow==2.21.0 tf-keras==2.21.0 \
        h5py==3.14.0 sentencepiece protobuf
fi
.venv-tf/bin/python scripts/build_tf_fixtures.py
if [ "${1:-}" != "--no-example" ]; then
    .venv/bin/python examples/sentence_similarity.py
fi
