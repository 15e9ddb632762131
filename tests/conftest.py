"""Shared fixtures: real DuckDB files in temporary folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from queries import db

REPO_ROOT = Path(__file__).resolve().parent.parent
REALDATA = REPO_ROOT.parent / "shared" / "realdata"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Path of a new, empty LoanLens database file with the schema created."""
    path = tmp_path / "loanlens.duckdb"
    db.connect(path).close()
    return path


@pytest.fixture
def con(db_path: Path):
    """A read-write connection to an empty database, closed after the test."""
    connection = db.connect(db_path)
    yield connection
    connection.close()


@pytest.fixture(scope="session")
def realdata() -> Path:
    """The shared real data sets folder; tests using it are skipped when it is absent."""
    if not REALDATA.is_dir():
        pytest.skip(f"real data folder {REALDATA} not found")
    return REALDATA


# The demo portfolio used by page and metric tests: fixed seed and as-of month, so every
# run builds the same data. Tests open it read-only and must not change it.
DEMO_AS_OF = "2026-11-30"
DEMO_SEED = 20261204
DEMO_LOANS = 20_000


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory) -> Path:
    """Path of a database holding the default demo portfolio (built once per test run)."""
    from ingest.demo import generate_demo

    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    generate_demo(path, n_loans=DEMO_LOANS, seed=DEMO_SEED, as_of=DEMO_AS_OF)
    return path


@pytest.fixture(scope="session")
def demo_truth(demo_db: Path) -> dict:
    """The demo generator's true parameters, read from the JSON written beside the database."""
    import json

    return json.loads(demo_db.with_name("demo_truth.json").read_text(encoding="utf-8"))
