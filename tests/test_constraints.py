"""The environment is the one the committed dvc.lock was made with: `make install` installs every package at the
version constraints.txt pins. A parquet table carries its writer's version in its bytes, so a newer pyarrow
alone gives every data stage other md5s than the lock's (the figures stay the same); this says which package
moved, instead of a lock that silently disagrees."""

import re
from importlib.metadata import PackageNotFoundError, version

from packaging.utils import canonicalize_name

from tests.conftest import PROJECT


def pins() -> dict[str, str]:
    found = {}
    for line in (PROJECT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, pinned = re.fullmatch(r"([A-Za-z0-9_.\-]+)==(\S+)", line).groups()
            found[canonicalize_name(name)] = pinned
    return found


def test_every_installed_package_is_at_its_pinned_version():
    def installed(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    found = {name: (pinned, installed(name)) for name, pinned in pins().items()}
    moved = {name: versions for name, versions in found.items() if versions[0] != versions[1]}
    assert not moved, f"(pinned, installed) differ: {moved}; run `make install` (pip install -c constraints.txt)"


def test_the_packages_that_write_the_data_stages_bytes_are_pinned():
    assert {"pyarrow", "pandas", "numpy", "scipy", "librosa", "soundfile", "av", "opencv-python-headless",
            "opensmile", "scikit-learn", "dvc", "mlflow", "optuna"} <= set(pins())
    assert "torch" not in pins()  # the Makefile installs the CPU wheel first, by its own pin
