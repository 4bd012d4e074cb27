"""Shared fixtures: one tiny synthetic corpus per test session (generation takes seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from avemo.corpus.synth import synthesize
from avemo.params import Synth, Video

FIXTURES = Path(__file__).parent / "fixtures"
PROJECT = Path(__file__).resolve().parents[1]
STANDARD4 = {"neu": "neutral", "hap": "happy", "exc": "happy", "ang": "angry", "sad": "sad"}

#: 5 sessions x 1 dialogue x 6 turns: every session, both genders, seconds to make.
TINY = Synth(seed=3, dialogues_per_session=1, turns_per_dialogue=6, max_seconds=4.5, workers=2)


#: The whole-pipeline test (the default, its fresh clone, the study: minutes), which `make test` starts first.
LONGEST = "test_the_default_pipeline_reruns_from_a_fresh_clone_then_make_study_fills_every_cell"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The whole-pipeline test first, then the other slow tests: `--dist worksteal` gives each of two workers a
    contiguous half of this order, and a worker done with its half takes over the other's queue from its tail, so
    the one long test runs beside everything else."""
    items.sort(key=lambda item: (item.name != LONGEST, item.get_closest_marker("slow") is None))


@pytest.fixture(autouse=True)
def own_tracking_store(monkeypatch):
    """Each test starts without MLFLOW_TRACKING_URI and leaves none behind: `avemo` verbs run in-process set
    it to their folder's store (cli.prepare), which must not follow the next test into its own folder."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def project_params():
    """The project's params.yaml, typed."""
    from avemo.params import load_params

    return load_params(PROJECT / "params.yaml")


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> tuple[Path, object]:
    """(release root, ground-truth manifest) of a tiny synthetic corpus."""
    out = tmp_path_factory.mktemp("tiny") / "synthetic"
    manifest = synthesize(TINY, out)
    return out / "IEMOCAP_full_release", manifest


@pytest.fixture(scope="session")
def tiny_utterances(tiny_corpus):
    from avemo.corpus.iemocap import read_corpus

    utterances, _ = read_corpus(tiny_corpus[0], STANDARD4)
    return utterances


@pytest.fixture(scope="session")
def tiny_splits(tiny_utterances):
    from avemo.data.splits import make_splits

    return make_splits(tiny_utterances, "fixed")


@pytest.fixture(scope="session")
def tiny_variant(tiny_utterances, tmp_path_factory):
    """The clip3s-raw variant of the tiny corpus, with params.yaml's spectrogram settings (labelled
    utterances only, as the stage does)."""
    from avemo.audio.variant import build_variant, variant_config

    out = tmp_path_factory.mktemp("variant") / "clip3s-raw"
    cfg = variant_config(project_params().audio.model_copy(update={"workers": 2}), "clip3s", "raw")
    build_variant(tiny_utterances[tiny_utterances["class"].notna()], cfg, out)
    return out


@pytest.fixture(scope="session")
def tiny_video(tiny_variant, tmp_path_factory):
    """The video stage's output for the tiny clip3s-raw variant: (folder, table, skipped)."""
    import pandas as pd

    from avemo.video.extract import build_video

    out = tmp_path_factory.mktemp("video") / "clip3s"
    table, skipped = build_video(pd.read_parquet(tiny_variant / "clips.parquet"), Video(workers=2), out)
    return out, table, skipped


@pytest.fixture(scope="session")
def tiny_egemaps(tiny_variant, tiny_utterances, tmp_path_factory) -> Path:
    """The egemaps stage's folder for the tiny clip3s-raw variant (features.parquet)."""
    import pandas as pd

    from avemo.egemaps import egemaps_table

    out = tmp_path_factory.mktemp("egemaps") / "clip3s-raw"
    out.mkdir()
    table, _ = egemaps_table(pd.read_parquet(tiny_variant / "clips.parquet"), tiny_utterances, workers=2)
    table.to_parquet(out / "features.parquet", index=False)
    return out


@pytest.fixture(scope="session")
def empty_mlflow_store(tmp_path_factory) -> Path:
    """An MLflow SQLite store with its schema migrated: creating one costs seconds, copying it nothing."""
    import mlflow

    folder = tmp_path_factory.mktemp("mlflow-store")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    mlflow.MlflowClient(tracking_uri=uri).search_experiments()  # runs the migrations
    return folder / "mlflow.db"


@pytest.fixture
def project_dir(tmp_path, monkeypatch, empty_mlflow_store, tiny_splits):
    """A working directory with its own MLflow store (mlruns/mlflow.db), the project's params and the tiny splits."""
    import shutil

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "mlruns").mkdir()
    shutil.copy(empty_mlflow_store, tmp_path / "mlruns" / "mlflow.db")
    params = project_params().override({"train.loop.batch_size": 8, "train.loop.epochs": 2, "train.seeds": [0]})
    splits = tmp_path / "splits.parquet"
    tiny_splits.to_parquet(splits)
    return params, splits


def _postgres_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        pytest.fail("PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin): .ci/run installs them "
                    "with apt-get install postgresql")
    return found[-1].parent


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL server from the machine's packages: initdb in a temp dir, loopback, a free port,
    run as an unprivileged user (the server refuses root), stopped at the end."""
    import os
    import shutil
    import socket
    import subprocess
    import tempfile

    bindir = _postgres_bin()
    root = Path(tempfile.mkdtemp(prefix="avemo-pg-"))  # not under pytest's 0700 tmp: the server user must reach it
    root.chmod(0o755)
    data = root / "data"
    data.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:
        user = next(u for u in ("postgres", "nobody") if _user_exists(u))
        shutil.chown(data, user)
        data.chmod(0o700)
        as_user = ["runuser", "-u", user, "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"],
                   check=True, capture_output=True)
    subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(data / "server.log"), "-w",
                    "-o", f"-k {data} -p {port} -h 127.0.0.1", "start"], check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def create_database(server_url: str, name: str) -> str:
    """A new, empty database `name` on the `postgres_url` server (each service its own, as a team would
    set it up: MLflow's schema beside Optuna's would mix two migration histories); its URL."""
    import psycopg2
    from sqlalchemy.engine import make_url

    url = make_url(server_url)
    connection = psycopg2.connect(host=url.host, port=url.port, user=url.username, dbname=url.database)
    try:
        connection.autocommit = True  # CREATE DATABASE cannot run inside a transaction
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
    finally:
        connection.close()
    return url.set(database=name).render_as_string(hide_password=False)


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


@pytest.fixture(scope="session")
def small_project(tmp_path_factory):
    """A small corpus (5 sessions x 2 dialogues x 24 turns of 0.9-2.2 s) with its full-raw audio and full
    video stages: enough clips for pre-training and label fractions to mean something, seconds to make.
    Short utterances: 20 frames per clip then sample the mouth fast enough to follow the syllables."""
    import pandas as pd

    from avemo.audio.variant import build_variant, variant_config
    from avemo.corpus.iemocap import read_corpus
    from avemo.data.splits import make_splits
    from avemo.video.extract import build_video

    root = tmp_path_factory.mktemp("small")
    synthesize(Synth(seed=5, dialogues_per_session=2, turns_per_dialogue=24, median_seconds=1.5,
                           max_seconds=2.2, workers=2), root / "synthetic")
    utterances, _ = read_corpus(root / "synthetic" / "IEMOCAP_full_release", STANDARD4)
    make_splits(utterances, "fixed").to_parquet(root / "splits.parquet")
    build_variant(utterances[utterances["class"].notna()],
                  variant_config(project_params().audio.model_copy(update={"workers": 2}), "full", "raw"), root / "full-raw")
    build_video(pd.read_parquet(root / "full-raw" / "clips.parquet"), Video(workers=2), root / "video")
    return root


def run_stage(params, *argv) -> None:
    """Run one `avemo` verb in this process, as the CLI would, with these (typed) params."""
    from avemo.cli import BY_NAME, build_parser, stage_module

    verb = BY_NAME[str(argv[0])]
    args = build_parser(verb).parse_args([str(a) for a in argv])
    stage_module(verb).run(args, params)


def details(folder: Path) -> dict:
    """A stage's details.json."""
    import json

    return json.loads((folder / "details.json").read_text())
