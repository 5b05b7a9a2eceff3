"""The zero-setup SQLite database takes a small clinic's concurrent writes without "database is locked"."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from patients.models import Patient

WRITERS = 8


@pytest.fixture
def sqlite_only():
    if connection.vendor != "sqlite":
        pytest.skip(f"the test database is {connection.vendor}")


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(sqlite_only, db):
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
        cursor.execute("PRAGMA busy_timeout")
        assert cursor.fetchone()[0] >= 5000


def test_eight_concurrent_writers_all_succeed(sqlite_only, transactional_db, staff, clinic_a, client_for):
    clients = [client_for(staff) for _ in range(WRITERS)]
    start = threading.Barrier(WRITERS)
    statuses: list[int] = []
    errors: list[BaseException] = []

    def register(number: int) -> None:
        try:
            start.wait()
            for round_ in range(3):
                payload = {
                    "identifier": f"C-{number}-{round_}",
                    "full_name": f"Concurrent Writer {number}",
                    "date_of_birth": "1980-01-01",
                    "sex": "female",
                    "consent_given": True,
                }
                statuses.append(clients[number].post("/api/v1/patients/", payload, format="json").status_code)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=register, args=(number,)) for number in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert statuses == [201] * (WRITERS * 3)
    assert Patient.objects.filter(identifier__startswith="C-").count() == WRITERS * 3
