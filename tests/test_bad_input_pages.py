"""Bad input on the web pages and the API answered with a message, never a 500: a closing reason
with a NUL, an empty form for a patient without consent, a stored photo too large to decode."""

from __future__ import annotations

import pytest
from django.utils import timezone
from PIL import Image

from diagnosis.models import Case
from tests.factories import CaseFactory, LesionImageFactory, PatientFactory


@pytest.fixture
def waiting_case(clinic_a, staff):
    patient = PatientFactory(clinic=clinic_a, created_by=staff)
    return CaseFactory(patient=patient, status=Case.Status.FAILED, awaiting_photo_since=timezone.now())


@pytest.mark.parametrize("reason", ["moved\x00away", "\x00", "moved\u202eaway"])
def test_a_closing_reason_with_control_characters_is_refused_not_stored(
    waiting_case, staff, client_for, web_client, reason
):
    api = client_for(staff).post(f"/api/v1/cases/{waiting_case.pk}/close/", {"reason": reason}, format="json")
    page = web_client(staff).post(f"/cases/{waiting_case.pk}/close/", {"reason": reason}, follow=True)

    assert api.status_code == 400, api.content
    assert page.status_code == 200 and b"not allowed" in page.content
    waiting_case.refresh_from_db()
    assert waiting_case.status == Case.Status.FAILED and waiting_case.closed_reason == ""


@pytest.mark.parametrize("consent", [True, False])
def test_an_empty_post_to_the_new_case_form_is_a_form_with_errors(clinic_a, staff, web_client, consent):
    patient = PatientFactory(clinic=clinic_a, created_by=staff, consent_given=consent)

    response = web_client(staff).post(f"/patients/{patient.pk}/cases/new/")

    assert response.status_code == 200  # the form again, with what is missing marked
    assert response.context["form"].errors
    assert not Case.objects.exists()


def test_a_stored_photo_too_large_to_decode_gives_no_preview_and_a_letter_without_it(
    clinic_a, staff, client_for, web_client, monkeypatch
):
    case = CaseFactory(patient=PatientFactory(clinic=clinic_a, created_by=staff), status=Case.Status.ANALYSED)
    image = LesionImageFactory(case=case)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # every photo is now a decompression bomb

    preview = web_client(staff).get(f"/images/{image.pk}/preview/160/")
    letter = client_for(staff).get(f"/api/v1/cases/{case.pk}/letter.pdf")

    assert preview.status_code == 404
    assert letter.status_code == 200 and letter["Content-Type"] == "application/pdf"


def new_case_post(client, patient, photos: int, size: tuple[int, int] = (40, 30)):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.factories import image_bytes

    files = [SimpleUploadedFile(f"p{n}.png", image_bytes(*size, fmt="PNG")) for n in range(photos)]
    return client.post(
        f"/patients/{patient.pk}/cases/new/",
        {"body_site": "back", "duration": "unknown", "images": files},
        HTTP_X_REQUESTED_WITH="XMLHttpRequest",
    )


def test_the_new_case_page_is_told_in_json_when_its_upload_is_over_the_request_limit(
    clinic_a, staff, web_client, settings
):
    settings.UPLOAD_MAX_REQUEST_BYTES = 300  # under what three small photos and the fields take
    patient = PatientFactory(clinic=clinic_a, created_by=staff)

    response = new_case_post(web_client(staff), patient, photos=3, size=(200, 150))

    assert response.status_code == 413 and response.json()["errors"]["__all__"]
    assert not Case.objects.exists()


def test_the_new_case_page_is_told_in_json_when_it_sends_too_many_photos(clinic_a, staff, web_client, settings):
    patient = PatientFactory(clinic=clinic_a, created_by=staff)

    response = new_case_post(web_client(staff), patient, photos=settings.DATA_UPLOAD_MAX_NUMBER_FILES + 1)

    assert response.status_code == 400
    assert f"at most {settings.UPLOAD_MAX_FILES} photos" in response.json()["errors"]["images"][0]
    assert not Case.objects.exists()


@pytest.mark.parametrize(
    "path",
    [
        "/admin/accounts/auditevent/?action__exact=%00",
        "/admin/diagnosis/prediction/?top_class__exact=a%00b",
        "/admin/diagnosis/lesionimage/?analysis_status__exact=%00",
    ],
)
def test_a_nul_in_an_admin_query_string_is_a_400(admin_user, client, path):
    client.force_login(admin_user)

    assert client.get(path).status_code == 400
