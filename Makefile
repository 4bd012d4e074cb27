# avemo: `make repro` runs the default pipeline, `make test` the test suite.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

# Offline: no usage telemetry from MLflow or DVC.
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1
export DVC_NO_ANALYTICS := 1
# DVC stages call `avemo`: run them with the project venv first on PATH.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export MLFLOW_TRACKING_URI ?= sqlite:///$(CURDIR)/mlruns/mlflow.db

.PHONY: install repro test bench ui dashboard serve screenshots clean

install: $(STAMP)

# torch first, pinned to the CPU wheel: an unpinned torch pulls a CUDA build of several GB.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check torch==2.13.0
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

repro: $(STAMP)
	$(BIN)/dvc repro

test: $(STAMP)
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python -m benchmarks

# Every server binds to 127.0.0.1 only.
ui: $(STAMP)
	mkdir -p mlruns
	$(BIN)/mlflow ui --host 127.0.0.1 --port 5000 --backend-store-uri $(MLFLOW_TRACKING_URI) \
		--default-artifact-root $(CURDIR)/mlruns

# Optuna's dashboard on the searches' storage (tune.storage; STORAGE=postgresql://... for another one).
STORAGE ?= optuna/journal.log
dashboard: $(STAMP)
	$(BIN)/optuna-dashboard --host 127.0.0.1 --port 8080 $(STORAGE)

# The registered model as a REST service: POST /invocations (README, "Predict and serve").
MODEL ?= avemo-fusion@champion
serve: $(STAMP)
	$(BIN)/mlflow models serve -m models:/$(MODEL) --env-manager local -h 127.0.0.1 -p 5001

# Screenshots of the MLflow UI for README (needs Debian's chromium: apt-get install chromium).
screenshots: $(STAMP)
	$(BIN)/python scripts/ui_screenshots.py docs/img

clean:
	rm -rf data/interim data/processed reports models mlruns
