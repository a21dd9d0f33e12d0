#!/bin/sh
# The README's performance tables: the shapes, every contender (attncc eager /
# torch.compile / onnxruntime; the reference modules and timm's the same three ways; for the
# gates all of them again in another process under a tuned allocator), 2 threads. Run from the
# repository root after `make bench-env`; about 75 minutes on 2 cores (TUNED=1 adds the tuned
# allocator to the self-attention runs too, another 40). Writes
# docs/bench/{gates,attention,vit}.{json,md,png} and a compact *-summary.md of each.
set -e
BIN=${BENCH_BIN:-.venv-bench/bin}
export OMP_NUM_THREADS=2
mkdir -p docs/bench
run() {
    name=$1
    shift
    "$BIN/attncc" bench "$@" --threads 2 --compile \
        --json "docs/bench/$name.json" --markdown "docs/bench/$name.md" \
        --summary "docs/bench/$name-summary.md" --plot "docs/bench/$name.png"
}
tuned=${TUNED:+--tuned-allocator}
if [ -z "$SKIP_GATES" ]; then
    run gates se eca cbam gc sk bam scse simam --tuned-allocator \
        --shape x=8,256,56,56 --shape x=32,512,14,14 --repeats 15
fi
run attention nonlocal danet eanet ccnet a2net dnl $tuned \
    --shape x=8,256,56,56 --shape x=32,512,14,14 --repeats 5
# ViT's multi-head attention over a 56x56 map's tokens
run vit vit --shape x=2,3136,256 --set D=256 --set heads=4 $tuned --repeats 5
