"""sqlite3 connections: never closed (leaks file descriptors, fails on purpose) vs. closed."""

import pytest
from myapp import storage


@pytest.fixture
def db_path(tmp_path):
    # Function-scoped fixtures are set up ONCE per test and shared by all its iterations.
    path = str(tmp_path / "users.db")
    storage.create_schema(path)
    return path


@pytest.mark.memcheck
def test_find_user_leaks_connection(db_path):
    # EXPECTED TO FAIL: one more open connection (and file descriptor) per call.
    assert storage.find_user_leaky(db_path, 5) == "user-5"


@pytest.mark.memcheck
def test_find_user_closes_connection(db_path):
    assert storage.find_user(db_path, 5) == "user-5"
