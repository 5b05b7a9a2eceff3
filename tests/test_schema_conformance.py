"""Schemathesis against /api/schema/ with a clinic-staff token and every check: no server
errors, no answer the schema does not describe, no invalid input accepted. Bounded examples
per operation, so it runs in CI."""

from __future__ import annotations

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.factories import PatientFactory

EXAMPLES = 25
# Requests whose validity depends on other data, which generated input cannot know: made-up
# credentials, a clinic or patient id that does not exist, photos that must decode. These are
# rightly refused with a documented 400, so "schema-valid input is accepted" cannot hold for
# them; every other check still does.
REFERENCES_OTHER_DATA = {
    ("POST", "/api/v1/auth/token/"),
    ("POST", "/api/v1/patients/"),
    ("POST", "/api/v1/cases/"),
}


@pytest.fixture
def wsgi_keeps_the_test_connection():
    """Django's WSGI handler closes the database connection after each request; inside a
    test transaction that connection must stay open (Django's test client does the same)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture(autouse=True)
def api_world(db, staff, clinic_a, settings, wsgi_keeps_the_test_connection):
    # Every generated request is a sign-in attempt or an upload somewhere: no limit may turn
    # the run into 429s the test did not ask about.
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "login_ip": "100000/min"},
    }
    settings.AXES_ENABLED = False
    settings.UPLOAD_MAX_PHOTOS_PER_HOUR = 0
    PatientFactory(clinic=clinic_a, created_by=staff, consent_given=True)


# The schema as the portal serves it (no database needed to generate it).
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())


@pytest.fixture
def staff_token(staff, client_for):
    client = client_for(staff)
    return client._credentials["HTTP_AUTHORIZATION"]


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_conforms_to_its_schema(case, staff_token):
    excluded = []
    if (case.method, case.operation.path) in REFERENCES_OTHER_DATA:
        excluded.append(positive_data_acceptance)
    case.call_and_validate(headers={"Authorization": staff_token}, excluded_checks=excluded)
