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
