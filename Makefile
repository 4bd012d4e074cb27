# avemo: `make repro` runs the quick default pipeline, `make study` every other cell of the report,
# `make test` the test suite.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# `dvc plots show`'s page template with Vega inside (.dvc/config: plots.html_template): opens offline.
PLOTS_PAGE := .dvc/plots_page.html

# Offline: no usage telemetry from MLflow or DVC.
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1
export DVC_NO_ANALYTICS := 1
# DVC stages call `avemo`: run them with the project venv first on PATH.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export MLFLOW_TRACKING_URI ?= sqlite:///$(CURDIR)/mlruns/mlflow.db

.PHONY: install repro study test bench deps ui tracking-server dashboard serve screenshots plots exps exp-dry clean

install: $(STAMP) $(PLOTS_PAGE)

# torch first, pinned to the CPU wheel: an unpinned torch pulls a CUDA build of several GB.
# Every other package at the version the committed dvc.lock was made with (constraints.txt): a table's bytes carry
# its writer's version, so an unpinned install reproduces the numbers but not the lock.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check torch==2.13.0
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev,egemaps]'
	touch $(STAMP)

$(PLOTS_PAGE): $(STAMP)
	$(BIN)/python -m avemo.plots_page $(PLOTS_PAGE)

repro: $(STAMP) $(PLOTS_PAGE)
	$(BIN)/dvc repro

# Every experiment the report has a cell for (study/dvc.yaml, after the default), with progress; then the
# report again. Stopped, it resumes where it stopped.
study: $(STAMP) $(PLOTS_PAGE)
	$(BIN)/avemo study

# Two workers, each starting with one whole-pipeline test (tests/conftest.py orders them for worksteal).
test: $(STAMP)
	$(BIN)/pytest -n 2 --dist worksteal

bench: $(STAMP)
	$(BIN)/python -m benchmarks

# Each stage's code deps in dvc.yaml and study/dvc.yaml: the modules its command imports (tests check them).
deps: $(STAMP)
	$(BIN)/python scripts/stage_deps.py

# Every server binds to 127.0.0.1 only.
# MLflow's server with the project's UI defaults (src/avemo/ui.py: opens on training runs with their
# metric columns), one worker and no GenAI job runner: answers in seconds on 2 cores.
ui: $(STAMP)
	mkdir -p mlruns
	$(BIN)/python -m avemo.ui --store $(MLFLOW_TRACKING_URI) --artifacts $(CURDIR)/mlruns --port 5000

# A team's MLflow tracking server (README, "Storage and workers"): runs and registry in BACKEND (required:
# a database URL, postgresql+psycopg2://user:password@host/mlflow for a team), artifacts in ARTIFACTS, which
# the server alone reads and writes (clients go through HTTP). Binds 127.0.0.1 unless HOST names a LAN
# address; ALLOWED_HOSTS lists the host:port names clients use (--allowed-hosts). No GenAI job runner.
HOST      ?= 127.0.0.1
PORT      ?= 5000
ARTIFACTS ?= $(CURDIR)/mlartifacts
tracking-server: $(STAMP)
	$(if $(BACKEND),,$(error BACKEND=postgresql+psycopg2://user:password@host:5432/mlflow is required))
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(BIN)/mlflow server --backend-store-uri '$(BACKEND)' \
		--artifacts-destination $(ARTIFACTS) --serve-artifacts --host $(HOST) --port $(PORT) --workers 2 \
		$(if $(ALLOWED_HOSTS),--allowed-hosts $(ALLOWED_HOSTS))

# Optuna's dashboard on the searches' storage (tune.storage; STORAGE=postgresql+psycopg2://... for another one).
STORAGE ?= optuna/journal.log
dashboard: $(STAMP)
	$(BIN)/optuna-dashboard --host 127.0.0.1 --port 8080 $(STORAGE)

# The registered model as a REST service: POST /invocations (README, "Predict and serve").
MODEL ?= avemo-fusion@champion
serve: $(STAMP)
	$(BIN)/mlflow models serve -m models:/$(MODEL) --env-manager local -h 127.0.0.1 -p 5001

# Every plot of both pipelines whose data exists on one page, dvc_plots/index.html (Vega from the venv: no
# network needed); the others (the study's, before `make study`) named.
plots: $(PLOTS_PAGE)
	$(BIN)/python -m avemo.plots_page --show

# The experiments in 160 columns: each model's test UA with its interval and the knobs that differ
# (`dvc exp show` itself prints 360-odd columns). ARGS go to dvc exp show, e.g. make exps ARGS="-A".
exps:
	$(BIN)/python -m avemo.exps $(ARGS)

# What `dvc exp run -S ...` would run (DVC 3.67's own `dvc exp run --dry` fails: its temporary copy has no
# data), e.g. make exp-dry SET="train.loop.epochs=3 tune.audio.trials=8"; params.yaml is left as it was.
exp-dry:
	$(BIN)/python -m avemo.exps --dry $(foreach s,$(SET),-S $(s))

# Screenshots of the MLflow UI for README (needs Debian's chromium: apt-get install chromium).
screenshots: $(STAMP)
	$(BIN)/python scripts/ui_screenshots.py docs/img

# What the pipelines made that git does not hold (reports/ is committed: `git checkout reports` restores it).
clean:
	rm -rf data/interim data/processed models mlruns mlartifacts optuna .avemo dvc_plots
