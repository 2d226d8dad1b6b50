#!/usr/bin/env bash
# Install leanformers with its test dependencies into .venv, fetch the real-weight fixtures, set up the legacy
# reference, then run the example on its embedded default (all-MiniLM-L6-v2 from fixtures/).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# Pinned: this exact CPU build; an unpinned torch pulls a multi-GB CUDA build.
.venv/bin/python -m pip install -q torch==2.13.0
.venv/bin/python -m pip install -q -e ".[test,sentencepiece]"
bash scripts/fetch_fixtures.sh
# transformers 4.55.4: the reference for features 5.x dropped; tests reach it only through a subprocess.
if [ ! -x .venv-legacy/bin/python ] || ! .venv-legacy/bin/python -c "import transformers" 2>/dev/null; then
    python3 -m venv .venv-legacy
    .venv-legacy/bin/python -m pip install -q torch==2.13.0 transformers==4.55.4 sentencepiece protobuf numpy
fi
if [ "${1:-}" != "--no-example" ]; then
    .venv/bin/python examples/sentence_similarity.py
fi
