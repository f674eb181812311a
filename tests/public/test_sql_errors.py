"""``kernelflow.sql``: a query DuckDB rejects reaches users as ``QueryError``, not duckdb.Error."""

from __future__ import annotations

import duckdb
import pytest

import kernelflow
from kernelflow.errors import KernelflowError, QueryError


class TestSqlErrors:
    def test_a_syntax_error_is_a_query_error_with_duckdbs_error_as_its_cause(self):
        with pytest.raises(QueryError) as caught:
            kernelflow.sql("SELEC 1")
        error = caught.value
        assert not isinstance(error, duckdb.Error)
        assert isinstance(error, KernelflowError) and isinstance(error, ValueError)
        assert isinstance(error.__cause__, duckdb.ParserException)
        message = str(error)
        assert "\n" not in message
        assert 'syntax error at or near "SELEC"' in message
        assert "fix the query" in message and "docs/schema.md" in message

    def test_an_unknown_table_is_a_query_error(self):
        with pytest.raises(QueryError, match="no_such_table") as caught:
            kernelflow.sql("SELECT * FROM no_such_table")
        assert isinstance(caught.value.__cause__, duckdb.CatalogException)

    def test_parameters_duckdb_cannot_bind_are_a_query_error(self):
        with pytest.raises(QueryError, match="argument/count mismatch") as caught:
            kernelflow.sql("SELECT ?", [1, 2])
        assert isinstance(caught.value.__cause__, duckdb.Error)

    def test_a_valid_query_still_answers(self):
        frame = kernelflow.sql("SELECT 41 + ? AS answer", [1])
        assert frame["answer"].tolist() == [42]
