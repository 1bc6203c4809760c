"""One error rule: what is transient, what is terminal, and the exit code of each class."""

import inspect

import psycopg2
import pytest

from wind_pipeline import cli
from wind_pipeline.etl import db, errors

ERROR_CLASSES = [
    cls
    for _, cls in inspect.getmembers(errors, inspect.isclass)
    if issubclass(cls, errors.PipelineError) and cls is not errors.PipelineError
]


def test_every_error_class_is_transient_or_terminal():
    for cls in ERROR_CLASSES:
        assert issubclass(cls, errors.TransientError) != issubclass(cls, errors.TerminalError), cls
    assert issubclass(errors.TargetUnavailableError, errors.TransientError)
    assert issubclass(errors.ApiUnavailableError, errors.TransientError)
    assert issubclass(errors.DatabaseError, errors.TerminalError)


def test_every_error_class_has_its_own_documented_exit_code():
    codes = {}
    for cls in ERROR_CLASSES:
        exc = cls(400, "x") if cls is errors.ApiRejectedError else cls("x")
        codes[cls] = cli.exit_code(exc)
    assert len(set(codes.values())) == len(codes), codes  # one code per class
    assert set(codes.values()) == {code for _, code, _ in cli.EXIT_CODES}
    assert codes[errors.TerminalError] not in (0, 1, 2)  # a bare terminal error is not "bad input"
    help_text = cli.run_parser().format_help()
    for code in (*codes.values(), 0, cli.EXIT_INTERNAL, cli.EXIT_INTERRUPTED):
        assert f"\n  {code:>3}  " in help_text, code


@pytest.mark.parametrize(
    ("pgcode", "transient"),
    [("57P01", True), ("08006", True), ("57P03", True), ("42P01", False), ("23505", False)],
)
def test_a_lost_connection_is_transient_and_a_refused_statement_terminal(pgcode, transient):
    exc = psycopg2.OperationalError("boom")
    exc_with_code = type("E", (psycopg2.Error,), {"pgcode": pgcode})("server says no")
    assert db.is_connection_lost(exc)  # no SQLSTATE: libpq lost the server
    mapped = db.database_error(exc_with_code, "loading")
    kind = errors.TargetUnavailableError if transient else errors.DatabaseError
    assert type(mapped) is kind
    assert str(mapped).startswith("target database error while loading: server says no")


def test_a_refused_connection_is_transient():
    refused = "postgresql://postgres@127.0.0.1:9/target"
    with pytest.raises(errors.TargetUnavailableError, match="while connecting"):
        db.connect(db.DirectDatabase(refused))


def test_direct_database_reuses_a_clean_connection_and_drops_a_broken_one(target_url):
    database = db.DirectDatabase(target_url)
    first = database.raw_connection()
    pid = first.get_backend_pid()
    first.close()
    second = database.raw_connection()
    assert second.get_backend_pid() == pid  # the same backend: no new connection per day
    with second.cursor() as cur:
        cur.execute("SELECT 1")  # a transaction left open: not reusable
    second.close()
    third = database.raw_connection()
    assert third.get_backend_pid() != pid
    third.close()
    database.dispose()
