"""The README answers what a newcomer asks first: where the portal listens, how to stop it in the
background, where the admin is, where the UV index is shown and where the demo's emails go."""

from __future__ import annotations

from pathlib import Path

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_the_readme_says_where_the_portal_listens_and_how_to_stop_it_in_the_background():
    assert "`PORT`" in README and "PORT=8001 bin/portal" in README
    assert "bin/portal > var/portal.log 2>&1 & echo $! > var/portal.pid" in README
    assert 'kill "$(cat var/portal.pid)"' in README


def test_the_readme_says_where_the_admin_the_uv_index_and_the_demo_emails_are():
    assert "`/admin/`" in README
    assert "UV index" in README and "dashboard" in README.split("UV index", 1)[1][:200]
    assert "@example.org" in README and "console" in README


def test_the_admin_link_is_in_the_menu_for_administrators_only(web_client, admin_user, staff, client):
    assert 'href="/admin/"' in web_client(admin_user).get("/").content.decode()
    client.logout()
    assert 'href="/admin/"' not in web_client(staff).get("/").content.decode()
