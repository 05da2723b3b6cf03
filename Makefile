# Two entry points for a fresh clone; each creates .venv and installs what is missing.
#   make demo   Deep kNN on real BreastMNIST data, a metrics table in a few minutes on CPU
#   make test   lint + the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.medknn-installed

.PHONY: demo test lint install chromium

install: $(STAMP)

# pip takes torch==2.14.1 / torchvision==0.29.1 from the machine's local wheels where present.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/medknn demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

# The HTML-report test loads the pages in headless Chromium, and the `medknn serve` test drives
# it with Selenium through chromedriver: Debian's packages, installed once (CI runs as root on
# Debian).
chromium:
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		chromium chromium-driver >/dev/null; }

# Passive OpenMP threads: spinning ones slow torch and faiss many-fold when another process
# shares the cores (measured in docs/benchmarks/bench_knn_search.md).
test: lint chromium
	OMP_WAIT_POLICY=$${OMP_WAIT_POLICY:-PASSIVE} $(BIN)/python -m pytest
