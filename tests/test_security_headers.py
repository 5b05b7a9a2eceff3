"""Browser protections: one Content-Security-Policy on every page, no inline script in any
template, and Swagger UI served from the portal itself at a pinned version."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders

TEMPLATES = Path(settings.BASE_DIR) / "templates"


def _policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


@pytest.mark.parametrize("path", ["/accounts/login/", "/api/docs/", "/api/v1/patients/", "/healthz"])
def test_every_answer_carries_the_content_security_policy(db, client, path):
    policy = _policy(client.get(path))

    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]
    # No third-party origin and nothing inline anywhere in the policy.
    assert not [value for values in policy.values() for value in values if value.startswith(("http", "'unsafe"))]


def test_signed_in_pages_carry_it_too(web_client, staff):
    response = web_client(staff).get("/")

    assert response.status_code == 200
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_no_template_has_an_inline_script_or_style_attribute():
    offenders = []
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text):
            if "src=" not in tag:
                offenders.append(f"{template.name}: {tag}")
        if re.search(r"\son[a-z]+\s*=", text) or re.search(r"\sstyle\s*=", text):
            offenders.append(f"{template.name}: inline handler or style attribute")

    assert offenders == []


def test_swagger_ui_is_served_by_the_portal_itself(db, client):
    page = client.get("/api/docs/").content.decode()

    sources = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', page)
    assert sources, page
    assert all(source.startswith("/") and not source.startswith("//") for source in sources), sources
    assert "cdn" not in page.lower() and "unpkg" not in page.lower()
    # The set-up script is a separate same-origin file, not inline.
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page)
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200
    assert "SwaggerUIBundle" in script.content.decode()


def test_swagger_ui_files_exist_in_the_static_files():
    assert finders.find("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    assert finders.find("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css")
