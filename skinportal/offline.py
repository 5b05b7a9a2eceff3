"""The service worker script, served from the site root so it may control every page.

static/js/sw.js is sent with the URLs of the static files the pages need (with their
production, hashed names) put before it, so it can keep them for offline use.
"""

from __future__ import annotations

import json

from django.contrib.staticfiles import finders
from django.http import Http404, HttpRequest, HttpResponse
from django.templatetags.static import static
from django.views.decorators.http import require_GET

# What the new-case page needs to open and work without a connection.
PRECACHE = ("css/portal.css", "img/favicon.svg", "js/outbox.js", "js/offline.js", "js/case-form.js")


@require_GET
def service_worker(request: HttpRequest) -> HttpResponse:
    path = finders.find("js/sw.js")
    if not path:
        raise Http404("No service worker.")
    with open(path, encoding="utf-8") as handle:
        script = handle.read()
    prelude = "var PRECACHE = {};\nvar OUTBOX_URL = {};\n".format(
        json.dumps([static(name) for name in PRECACHE]), json.dumps(static("js/outbox.js"))
    )
    response = HttpResponse(prelude + script, content_type="application/javascript; charset=utf-8")
    # Checked on every page load, so a new version reaches the phones at once.
    response["Cache-Control"] = "no-cache"
    response["Service-Worker-Allowed"] = "/"
    return response
