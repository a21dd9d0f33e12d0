# attncc developer tasks. `make test` and `make demo` build their own virtual environment.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: test demo lint readme clean

# the venv is (re)installed whenever the dependency pins change
$(STAMP): pyproject.toml constraints.txt
	@# Graphviz draws `attncc show --format svg/png`; without it attncc writes the DOT file
	@command -v dot >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq graphviz) \
		>/dev/null 2>&1 || echo "note: Graphviz not installed; attncc show writes DOT only"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[all,dev]"
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/ruff check attncc tests examples benchmarks
	$(BIN)/python -m pytest -q

demo: $(STAMP)
	$(BIN)/python examples/export_library.py

# rewrite the README's mechanism table from the specs (tests/test_readme.py checks it)
readme: $(STAMP)
	$(BIN)/python -c "import re, subprocess, pathlib; \
	t = subprocess.run(['$(BIN)/attncc', 'list', '--markdown'], capture_output=True, text=True, check=True).stdout.strip(); \
	p = pathlib.Path('README.md'); \
	p.write_text(re.sub(r'(?s)(<!-- specs:begin -->).*(<!-- specs:end -->)', lambda m: m[1] + chr(10) + t + chr(10) + m[2], p.read_text()))"

# rewrite docs/language.md from the grammar and the op registry (tests/test_docs.py checks it)
.PHONY: docs
docs: $(STAMP)
	$(BIN)/python -m attncc.docs -o docs/language.md

# long campaigns: front-end fuzzing (FUZZ_SECONDS, default 600), then random-graph differential
# testing (RANDGRAPH_COUNT graphs, default 2000); failures are shrunk and saved under
# tests/fuzz/regressions/ and tests/randgraph/regressions/, which the tests replay
.PHONY: fuzz
fuzz: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python tests/fuzz/campaign.py --seconds $${FUZZ_SECONDS:-600}
	OMP_NUM_THREADS=1 $(BIN)/python tests/test_randgraph.py --start 1000 \
		--count $${RANDGRAPH_COUNT:-2000}

lint: $(STAMP)
	$(BIN)/ruff check attncc tests examples benchmarks
	$(BIN)/ruff format --check attncc

# the benchmark environment: its own venv with the peers' packages (timm is never a dependency
# of attncc or its tests); `make bench` runs the library benchmark in it (BENCH_ARGS adds
# options: BENCH_ARGS="--threads 1 --compile"; torch.compile adds ~1 min per spec on 2 cores)
BENCH_VENV  := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed-stamp
.PHONY: bench-env bench

$(BENCH_STAMP): pyproject.toml
	@# jemalloc is the tuned allocator the peers are timed under as well (--tuned-allocator)
	@test -e /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 || test -e /usr/lib/aarch64-linux-gnu/libjemalloc.so.2 || \
		(apt-get update -qq && apt-get install -y -qq libjemalloc2) >/dev/null 2>&1 || \
		echo "note: libjemalloc2 not installed; the tuned run uses glibc's tunables"
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
		"torch==2.14.1" "torchvision==0.29.1" timm matplotlib
	$(BENCH_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -e ".[all]"
	touch $(BENCH_STAMP)

bench-env: $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	mkdir -p build
	$(BENCH_VENV)/bin/attncc bench --library --tuned-allocator $(BENCH_ARGS) \
		--json build/bench.json --markdown build/bench.md --plot build/bench.png

clean:
	rm -rf $(VENV) $(BENCH_VENV) build dist .pytest_cache .ruff_cache
