"""Ingest settings: variables that moved are refused with where they went."""

import pytest
from pydantic import ValidationError

from services.ingest.config import IngestSettings


def test_the_old_retention_variable_is_refused_with_where_it_went(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INGEST_ADMIN_TOKEN", "a-real-admin-token-0123456789")
    monkeypatch.setenv("INGEST_RETENTION_DAYS", "7")
    with pytest.raises(ValidationError, match="REPORTING_FRAMES_RETENTION_DAYS"):
        IngestSettings()
