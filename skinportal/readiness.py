"""Readiness probe: ``GET /readyz`` answers 200 only when the portal can take and score a case.

Three parts, checked in order: the database answers a query; the broker accepts a
connection; and a worker on the ``inference`` queue with a loaded model answers an
``inference.ping`` task within ``SKINPORTAL_READYZ_TIMEOUT`` seconds (default 3). The
ping travels the same queue as the photos, so a deep backlog also shows here: the
worker part then fails because scoring would not happen within seconds.

Any failure gives 503 with JSON naming the failed parts. Details of what went wrong go
to the log, not to the (unauthenticated) response.

Anyone may call it, and the worker part sends a message and can wait seconds, so the
combined answer is kept for ``RESULT_SECONDS`` in Django's cache: a burst of requests costs
one round of checks, one ping per cache (per web process with the default local cache).
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)

RESULT_CACHE_KEY = "skinportal:readyz"
RESULT_SECONDS = 5


class NotReady(Exception):
    """One part is not ready; the message is safe to show."""


def database_check() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        logger.warning("readyz: database: %s", exc)
        raise NotReady("the database does not answer") from exc
    return {}


def broker_check(timeout: float) -> dict:
    from skinportal.celery import app

    try:
        with app.connection_for_write(connect_timeout=timeout) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
    except Exception as exc:  # kombu and the transports raise many kinds; all mean "not reachable"
        logger.warning("readyz: broker: %s", exc)
        raise NotReady("the message broker is not reachable") from exc
    return {}


def worker_check(timeout: float) -> dict:
    """Send ``inference.ping`` and wait for a worker process to say which model it has loaded."""
    from diagnosis.tasks import ping

    try:
        result = ping.apply_async(expires=timeout, retry=False)
    except Exception as exc:  # publishing failed: the broker went away after its check
        logger.warning("readyz: worker: %s", exc)
        raise NotReady("the ping could not be sent") from exc
    backend = ping.backend
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            meta = backend.get_task_meta(result.id)
            if meta.get("status") == "SUCCESS":
                answer = meta["result"]
                break
            time.sleep(0.05)
        else:
            raise NotReady(f"no inference worker answered within {timeout:g} s")
    finally:
        try:
            backend.forget(result.id)
        except Exception:  # the answer expires by itself
            logger.debug("readyz: could not forget ping %s", result.id, exc_info=True)
    if not answer.get("model_version"):
        logger.warning("readyz: worker %s has no model: %s", answer.get("hostname"), answer.get("error"))
        raise NotReady("the inference worker could not load the model")
    return {"model_version": answer["model_version"]}


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    try:
        result = cache.get(RESULT_CACHE_KEY)
    except Exception:  # a cache outage must not hide the portal's state: check without it
        logger.warning("readyz: the cache does not answer", exc_info=True)
        result = None
    if result is None:
        result = readiness_checks()
        try:
            cache.set(RESULT_CACHE_KEY, result, RESULT_SECONDS)
        except Exception:  # as above
            logger.warning("readyz: the cache does not answer", exc_info=True)
    body, status = result
    return JsonResponse(body, status=status)


def readiness_checks() -> tuple[dict, int]:
    """Run the three checks; the response body and its status code."""
    timeout = settings.SKINPORTAL_READYZ_TIMEOUT
    checks: dict[str, dict] = {}
    failed: list[str] = []
    parts = [
        ("database", database_check),
        ("broker", lambda: broker_check(timeout)),
        ("worker", lambda: worker_check(timeout)),
    ]
    for name, check in parts:
        if name == "worker" and "broker" in failed:
            checks[name] = {"ok": False, "error": "not checked: the broker is not reachable"}
            failed.append(name)
            continue
        try:
            checks[name] = {"ok": True, **check()}
        except NotReady as exc:
            checks[name] = {"ok": False, "error": str(exc)}
            failed.append(name)
    body = {"status": "unavailable" if failed else "ok", "failed": failed, "checks": checks}
    return body, 503 if failed else 200
