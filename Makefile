# snnedu — two entry points on a fresh machine:
#   make book   create/reuse the virtual environment, install, build the Jupyter Book into _build/html
#   make test   same environment; unit tests + every chapter under strict nbval + the book in headless
#               Chromium (tests/test_book_browser.py; skipped with a reason where Chromium is absent)
#   make bench  speed/memory against SpikingJelly, snnTorch, Norse (benchmarks/README.md; BENCH_ARGS=--quick)
#   make gpu-check  the GPU check on a CUDA machine (GPU_CHECK_ARGS=--dry-run: its rehearsal on CPU)
#
# The venv lives outside the clone, keyed by a hash of requirements.txt, so every clone (and CI)
# on this machine reuses it. Override with `make test VENV=/path/to/venv`.
SHELL      := /bin/bash
PYTHON     ?= python3
REQ_HASH   := $(shell sha256sum requirements.txt | cut -c1-12)
VENV       ?= $(HOME)/.cache/snnedu/venv-$(REQ_HASH)
PY         := $(VENV)/bin/python
STAMP      := $(VENV)/.snnedu-requirements-installed
MATHJAX_VERSION := 3.2.2
MATHJAX    := book/_static/mathjax/tex-chtml.js
PYTEST_ARGS ?=
# The peers of requirements-bench.txt (benchmarks and tests/test_nir.py), beside the venv; see bench-extra below.
BENCH_EXTRA ?= $(HOME)/.cache/snnedu/bench-extra
BENCH_HASH  := $(shell sha256sum requirements-bench.txt | cut -c1-12)
export SNNEDU_BENCH_EXTRA := $(BENCH_EXTRA)
BENCH_STAMP := $(BENCH_EXTRA)/.snnedu-bench-installed-$(BENCH_HASH)

.PHONY: all venv install test unit nbval book clean-book mathjax bench bench-extra gpu-check gpu-wheels

all: test

# The stamp is written only after pip succeeded, so an interrupted install is redone, never trusted.
# No file prerequisite: the venv's path already carries the hash of requirements.txt, so a changed
# requirements file means a new venv, and a fresh clone (new mtimes) reuses the installed one as is.
$(STAMP):
	@echo "snnedu: creating virtual environment $(VENV)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "snnedu: installing requirements.txt into it (a few minutes the first time)"
	$(PY) -m pip install -qq -r requirements.txt
	@touch $@

venv: $(STAMP)

# Editable install of the package itself (cheap; redone every time so a moved clone is picked up).
install: venv
	@$(PY) -m pip install -qq --no-deps --no-build-isolation -e .

# Tests: one pytest run (unit tests + notebooks under strict nbval) so its summary is the last line.
# MathJax is fetched first: tests/test_book_browser.py builds the book and checks its math renders.
# Two workers (PYTEST_WORKERS; 0 runs everything in this process), each taking whole test files and
# notebooks (--dist loadfile: a notebook's cells share one kernel, so they stay on one worker). Each
# worker, and each notebook kernel it starts, computes on one thread (OMP_NUM_THREADS; tests that need
# more set it themselves): two workers of two threads on two cores spin-wait on each other.
# The NIR round-trip tests (tests/test_nir.py) run the peers' importers, so the peers are installed first
# (BENCH_STAMP below, --no-deps into their own directory; the test appends it to sys.path).
PYTEST_WORKERS ?= 2
TEST_THREADS ?= 1
test: install $(BENCH_STAMP) $(MATHJAX)
	cd $(CURDIR) && TQDM_DISABLE=1 OMP_NUM_THREADS=$(TEST_THREADS) $(PY) -m pytest tests notebooks --nbval --nbval-current-env \
		--nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider \
		-n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

unit: install $(BENCH_STAMP)
	TQDM_DISABLE=1 OMP_NUM_THREADS=$(TEST_THREADS) $(PY) -m pytest tests -p no:cacheprovider -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

nbval: install
	TQDM_DISABLE=1 $(PY) -m pytest notebooks --nbval --nbval-current-env \
		--nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider $(PYTEST_ARGS)

# MathJax 3 from the npm registry, served from the built book so math renders offline.
$(MATHJAX):
	@bash tools/fetch_mathjax.sh $(MATHJAX_VERSION) book/_static/mathjax

mathjax: $(MATHJAX)

book: install $(MATHJAX)
	$(VENV)/bin/jupyter-book build . -W -n --keep-going
	@test -f _build/html/index.html && echo "snnedu: book built at _build/html/index.html"

clean-book:
	rm -rf _build

# Benchmark peers (requirements-bench.txt): --no-deps into BENCH_EXTRA (defined at the top: `test` needs it)
# that only the benchmark runner and tests/test_nir.py put on sys.path, so the main venv stays exactly as
# requirements.txt says.
BENCH_ARGS  ?=

$(BENCH_STAMP): | venv
	@echo "snnedu: installing the benchmark peers into $(BENCH_EXTRA)"
	$(PY) -m pip install -qq --no-deps --upgrade --target $(BENCH_EXTRA) -r requirements-bench.txt
	@touch $@

bench-extra: $(BENCH_STAMP)

bench: install $(BENCH_STAMP)
	cd $(CURDIR) && SNNEDU_BENCH_EXTRA=$(BENCH_EXTRA) TQDM_DISABLE=1 $(PY) -m benchmarks.run $(BENCH_ARGS)

# The GPU check (benchmarks/README.md): kernels on CUDA, speed/bandwidth/memory against SpikingJelly,
# an AMP training epoch, DDP. GPU_CHECK_ARGS=--dry-run rehearses it on CPU (tiny sizes, Triton interpreter).
GPU_CHECK_ARGS ?=

gpu-check: install $(BENCH_STAMP)
	cd $(CURDIR) && SNNEDU_BENCH_EXTRA=$(BENCH_EXTRA) TQDM_DISABLE=1 $(PY) -m benchmarks.gpu_check $(GPU_CHECK_ARGS)

# The pure-Python wheels the GPU check needs on a machine that has torch and triton but no registry:
# SpikingJelly and its logger, at the versions of requirements-bench.txt, into .whl/ (git-ignored).
GPU_WHEELS ?= .whl

gpu-wheels: venv
	$(PY) -m pip download -q --no-deps --only-binary=:all: -d $(GPU_WHEELS) \
		$$(grep -E '^(spikingjelly|loguru)==' requirements-bench.txt | awk '{print $$1}')
	@ls $(GPU_WHEELS)
