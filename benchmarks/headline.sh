#!/bin/sh
# The README's performance tables: the shapes, every contender (attncc eager /
# torch.compile / onnxruntime; the reference modules and timm's the same three ways, and again
# under a tuned allocator), 2 threads. Run from the repository root after `make bench-env`;
# about an hour on 2 cores. Writes docs/bench/{gates,attention}.{json,md,png}.
set -e
BIN=${BENCH_BIN:-.venv-bench/bin}
export OMP_NUM_THREADS=2
mkdir -p docs/bench
"$BIN/attncc" bench se eca cbam gc sk bam scse simam \
    --shape x=8,256,56,56 --shape x=32,512,14,14 --threads 2 --repeats 7 \
    --compile --tuned-allocator \
    --json docs/bench/gates.json --markdown docs/bench/gates.md --plot docs/bench/gates.png
"$BIN/attncc" bench nonlocal danet eanet ccnet a2net dnl \
    --shape x=8,256,56,56 --shape x=32,512,14,14 --threads 2 --repeats 5 \
    --compile --tuned-allocator \
    --json docs/bench/attention.json --markdown docs/bench/attention.md \
    --plot docs/bench/attention.png
