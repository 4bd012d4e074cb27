#!/usr/bin/env bash
# Issue 33's check on corpora that chose nothing: a fresh clone of this project per corpus, params.yaml changed in
# `synth` only, its data stages, the LOSO split, then `loso_joins.py --refit` (every arm fit on train + val): the
# network, eGeMAPS + LR and + SVM, their product. Figures in docs/recipe.md ("On corpora that chose nothing").
#   bash scripts/fresh_corpus_loso.sh seed23 second     # after `make install`; ~7 min a corpus on 2 quiet cores
# seed23: synth.seed 23, every other knob at its default; second: docs/corpus.md's second corpus.
set -euo pipefail
project="$(cd "$(dirname "$0")/.." && pwd)"
export PATH="$project/.venv/bin:$PATH" MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=1 DVC_NO_ANALYTICS=1
for name in "$@"; do
  work="$(mktemp -d "/tmp/corpus-$name-XXXX")"
  git clone -q "$project" "$work"
  cd "$work"
  export MLFLOW_TRACKING_URI="sqlite:///$work/mlruns/mlflow.db"
  python - "$name" <<'PY'
import sys

import yaml

name, p = sys.argv[1], yaml.safe_load(open("params.yaml"))
corpora = {"seed23": {"seed": 23},
           "second": {"seed": 11, "noise_dbfs": [-50.0, -34.0], "median_seconds": 3.3, "pitch_scale": 0.9,
                      "emotion_strength": 0.8, "expression_strength": 0.8, "face_scale": [0.85, 1.0],
                      "turned_away": 0.15}}
if name not in corpora:
    sys.exit(f"unknown corpus {name!r}: one of {list(corpora)}")
p["synth"].update(corpora[name])
yaml.safe_dump(p, open("params.yaml", "w"), sort_keys=False)
PY
  git -c user.email=probe@avemo.local -c user.name=probe commit -qam "corpus $name"
  dvc repro -q egemaps split >/dev/null
  avemo --set split.scheme=loso split data/interim/utterances.parquet --out data/interim/splits_loso.parquet >/dev/null
  echo "== $name ($work)"
  python scripts/loso_joins.py . 0,1,2,3,4 0,1,2 2 --refit
  cd "$project"
done
