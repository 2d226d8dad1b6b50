#!/usr/bin/env bash
# Install leanformers with its test dependencies into .venv, fetch the real-weight fixtures, set up the reference
# environments the tests compare with, then run the example on its embedded default (all-MiniLM-L6-v2 from
# fixtures/). The reference environments are independent, so they are built side by side.
set -euo pipefail
cd "$(dirname "$0")/.."

# Pinned everywhere: torch 2.13.0's CPU build; an unpinned torch pulls a multi-GB CUDA build.
main_venv() {
    python3 -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q torch==2.13.0
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 .venv/bin/python -m pip install -q -e ".[test,sentencepiece]"
}

# venv NAME CHECK PACKAGES...: create .venv-NAME with torch and PACKAGES unless CHECK already imports there.
reference_venv() {
    local name=".venv-$1" check="$2"
    shift 2
    if [ -x "$name/bin/python" ] && "$name/bin/python" -c "import $check" 2>/dev/null; then
        return 0
    fi
    python3 -m venv "$name"
    "$name/bin/python" -m pip install -q torch==2.13.0 "$@"
}

# Debian's chromium for the web page tests of `leanformers serve` (Playwright's Python package drives it; no browser
# is ever downloaded by Playwright). Skipped when already there.
chromium_browser() {
    command -v chromium >/dev/null 2>&1 && return 0
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "setup.sh: chromium is missing; install it as root: apt-get install -y chromium" >&2
    fi
}

jobs_started=()
start() { "$@" & jobs_started+=("$!"); }

main_venv
start bash scripts/fetch_fixtures.sh
start chromium_browser
# transformers 4.55.4: the reference for features 5.x dropped (with scikit-learn/scipy for the GLUE metrics and
# sacremoses, pinned as in the test extras, for the FlauBERT tokenizer); tests reach it only through a subprocess.
start reference_venv legacy "transformers, sklearn, scipy, sacremoses" transformers==4.55.4 sentencepiece protobuf \
    numpy scikit-learn==1.7.2 scipy==1.17.1 sacremoses==0.1.1
# transformers 4.34.1: the old reference for Transformer-XL and RetriBERT (later releases broke them); it pins
# tokenizers 0.14.x and predates numpy 2.
start reference_venv ref434 "transformers, sacremoses" transformers==4.34.1 sentencepiece protobuf "numpy<2" \
    sacremoses==0.1.1
# TensorFlow 2.21 + tf-keras beside transformers 4.55.4 (the last with TF classes): only to build the tf_model.h5
# fixtures and the reference's from_tf=True conversion of them. leanformers never imports TensorFlow.
start reference_venv tf "tf_keras, transformers" transformers==4.55.4 tensorflow==2.21.0 tf-keras==2.21.0 \
    h5py==3.14.0 sentencepiece protobuf
for job in "${jobs_started[@]}"; do
    wait "$job"
done

# fixtures/tf-models (Transformer-XL's outputs come from .venv-ref434); fixtures already built are skipped
.venv-tf/bin/python scripts/build_tf_fixtures.py
if [ "${1:-}" != "--no-example" ]; then
    .venv/bin/python examples/sentence_similarity.py
fi
