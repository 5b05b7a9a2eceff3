"""Hooks through which apps built on ``diagnosis`` add to its case responses and case page.

``diagnosis`` never imports those apps; they register here from their ``AppConfig.ready()``
(the referral workflow in ``triage/hooks.py`` adds a case's ``referral`` and ``review`` to the
API and its referral panel to the case page).
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest

# name -> a function returning a fresh read-only serializer field for CaseOutputSerializer
CASE_OUTPUT_FIELDS: dict[str, Callable[[], object]] = {}
# prefetch_related lookups that case_list_for applies, so the registered fields cost no query per case
CASE_PREFETCHES: list[str] = []
# functions (case) -> None, told of a case the request has just created: they mark in memory
# what the case cannot have yet (no referral unless its checklist referred it), so the
# fields above answer without a query and the upload's response is built from what it wrote
CASE_CREATED: list[Callable[[object], None]] = []
# functions (request, case) -> HTML, shown on the case page below the model's result
CASE_PAGE_PANELS: list[Callable[[HttpRequest, object], str]] = []


def case_output_field_register(name: str, factory: Callable[[], object]) -> None:
    CASE_OUTPUT_FIELDS[name] = factory


def case_prefetch_register(*lookups: str) -> None:
    CASE_PREFETCHES.extend(lookup for lookup in lookups if lookup not in CASE_PREFETCHES)


def case_created_register(mark: Callable[[object], None]) -> None:
    if mark not in CASE_CREATED:
        CASE_CREATED.append(mark)


def case_created(case) -> None:
    for mark in CASE_CREATED:
        mark(case)


def case_page_panel_register(render: Callable[[HttpRequest, object], str]) -> None:
    if render not in CASE_PAGE_PANELS:
        CASE_PAGE_PANELS.append(render)


# functions (request) -> HTML, shown on the dashboard below the case counts (follow-ups due)
DASHBOARD_PANELS: list[Callable[[HttpRequest], str]] = []


def dashboard_panel_register(render: Callable[[HttpRequest], str]) -> None:
    if render not in DASHBOARD_PANELS:
        DASHBOARD_PANELS.append(render)


# functions (request, patient) -> HTML, shown on the patient page above the cases (their lesions)
PATIENT_PAGE_PANELS: list[Callable[[HttpRequest, object], str]] = []


def patient_page_panel_register(render: Callable[[HttpRequest, object], str]) -> None:
    if render not in PATIENT_PAGE_PANELS:
        PATIENT_PAGE_PANELS.append(render)


# name -> (a function returning a fresh form field, a function (cases, value) -> cases): extra
# filters of the case list (the referral's urgency), added to its form after the built-in ones
CASE_LIST_FILTERS: dict[str, tuple[Callable[[], object], Callable[[object, object], object]]] = {}


def case_list_filter_register(
    name: str, field: Callable[[], object], apply: Callable[[object, object], object]
) -> None:
    CASE_LIST_FILTERS[name] = (field, apply)


# functions (case) -> a status or None: what a case reads as where an app built on diagnosis
# owns its progress (triage: a referred case's status derives from its referral, so a claim
# whose lease ran out reads "referred" on the case as the referral reads "open")
CASE_STATUS_READERS: list[Callable[[object], str | None]] = []


def case_status_reader_register(read: Callable[[object], str | None]) -> None:
    if read not in CASE_STATUS_READERS:
        CASE_STATUS_READERS.append(read)


def case_status_shown(case) -> str:
    for read in CASE_STATUS_READERS:
        if status := read(case):
            return status
    return case.status
