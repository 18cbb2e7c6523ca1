"""MaxMind's own test databases and their source JSON, from the `maxminddb` source distribution.

`make test` runs `python -m tests.maxmind_data` once after installing: pip downloads the sdist of
the installed maxminddb version from PyPI (install time, through the package registry), and its
`tests/data/` test-data, source-data and licence files (MIT or Apache-2.0, MaxMind) are kept in
the virtual environment. Nothing is fetched while tests run."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
from importlib.metadata import version
from pathlib import Path

DATA = Path(sys.prefix) / "maxmind-test-data"
KEPT = ("test-data/", "source-data/", "LICENSE-MIT", "LICENSE-APACHE", "README.md")


def data_dir() -> Path:
    """Where the data is; a clear failure when `make test` has not fetched it."""
    if not (DATA / "test-data").is_dir():
        raise FileNotFoundError(f"{DATA} is missing: run `make test` (or `python -m tests.maxmind_data`)")
    return DATA


def fetch() -> None:
    wanted = version("maxminddb")
    with tempfile.TemporaryDirectory() as temporary:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--no-binary",
                ":all:",
                "--dest",
                temporary,
                f"maxminddb=={wanted}",
            ],
            check=True,
        )
        (archive,) = Path(temporary).glob("maxminddb-*.tar.gz")
        prefix = f"maxminddb-{wanted}/tests/data/"
        DATA.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                name = member.name.removeprefix(prefix)
                if member.name.startswith(prefix) and member.isfile() and name.startswith(KEPT):
                    member.name = name
                    tar.extract(member, DATA, filter="data")
    print(f"MaxMind test data {wanted} in {DATA}")


if __name__ == "__main__":
    fetch()
