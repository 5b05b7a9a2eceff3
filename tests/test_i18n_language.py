"""Which language a page is shown in: the browser's before sign-in, the user's own after."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import translation

from accounts.language import for_user

pytestmark = pytest.mark.django_db


def test_signed_out_pages_follow_the_browser(client):
    response = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9,en;q=0.5")
    assert response.status_code == 200
    assert '<html lang="fr">' in response.content.decode()
    assert response["Content-Language"] == "fr"


def test_a_language_the_portal_lacks_falls_back_to_english(client):
    response = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="de")
    assert '<html lang="en-gb">' in response.content.decode()


def test_the_language_menu_before_sign_in_sets_the_cookie(client):
    response = client.post(reverse("set-language"), {"language": "pt", "next": "/accounts/login/"})
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    page = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="fr")
    assert '<html lang="pt">' in page.content.decode()


def test_a_users_own_choice_wins_over_browser_and_cookie(web_client, staff):
    staff.language = "pt"
    staff.save()
    client = web_client(staff)
    client.cookies["django_language"] = "fr"
    page = client.get(reverse("web:dashboard"), HTTP_ACCEPT_LANGUAGE="fr")
    assert '<html lang="pt">' in page.content.decode()


def test_the_language_menu_saves_the_choice_on_the_account(web_client, staff):
    client = web_client(staff)
    response = client.post(reverse("set-language"), {"language": "fr", "next": reverse("web:dashboard")})
    assert response.status_code == 302
    staff.refresh_from_db()
    assert staff.language == "fr"
    assert '<html lang="fr">' in client.get(reverse("web:dashboard")).content.decode()


@pytest.mark.parametrize("language", ["xx", "", "de"])
def test_an_unknown_language_changes_nothing(web_client, staff, language):
    client = web_client(staff)
    client.post(reverse("set-language"), {"language": language, "next": "/"})
    staff.refresh_from_db()
    assert staff.language == ""


def test_the_menu_never_redirects_off_site(client):
    response = client.post(reverse("set-language"), {"language": "fr", "next": "https://evil.example/"})
    assert response["Location"] == "/"


def test_for_user_renders_in_the_recipients_language(staff):
    staff.language = "fr"
    with for_user(staff) as code:
        assert code == "fr" and translation.get_language() == "fr"
    staff.language = ""
    with for_user(staff) as code:
        assert code == "en-gb"


def test_the_menu_names_each_language_in_that_language(client):
    page = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert '<option value="fr" lang="fr" selected>français</option>' in page
    assert '<option value="pt" lang="pt">Português</option>' in page
    assert "Anglais" not in page
