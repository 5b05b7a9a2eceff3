"""Screenshots of the web UI for the docs, at a phone's 360 px and a desktop's 1280 px.

    .venv/bin/python docs/screenshots/take.py

Builds a throwaway database and media folder, registers example patients and submits
cases through the real services with HAM10000 photos, starts the site on a local port and
drives Debian's Chromium (/usr/bin/chromium) through it. Writes dashboard-*.png,
case-new-*.png, case-result-*.png, case-answer-*.png, lesion-*.png and lesion-compare-*.png
(the clinic's pages), queue-*.png and review-*.png (the specialist's) beside this file, and
model-*.png when a model is installed.

The case results come from the installed model when there is one (SKINPORTAL_MODEL_DIR or
the default artifact). Without one, the probabilities and heatmap are a made-up example
and the model version on the page says so.
"""

from __future__ import annotations

import csv
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
HAM10000 = ROOT.parent / "shared" / "data" / "ham10000"
sys.path.insert(0, str(ROOT))
PASSWORD = "screenshots-only-password"
EXAMPLE_VERSION = "example-only-not-a-model-result"
EXAMPLE_THRESHOLDS = {"mel": 0.2, "bcc": 0.25, "akiec": 0.3}


def configure_django(workdir: Path) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "skinportal.settings.test"
    os.environ["DATABASE_URL"] = f"sqlite:///{workdir / 'db.sqlite3'}"
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's loop runs in this thread
    import django
    from django.conf import settings

    django.setup()
    settings.MEDIA_ROOT = workdir / "media"
    settings.ALLOWED_HOSTS = ["localhost", "127.0.0.1"]

    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def photos_by_class() -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    with (HAM10000 / "HAM10000_metadata.csv").open() as handle:
        for row in csv.DictReader(handle):
            path = HAM10000 / "images" / f"{row['image_id']}.jpg"
            if path.exists():
                found.setdefault(row["dx"], []).append(path)
    for paths in found.values():
        paths.sort()
    return found


def another_photo_of_the_same_lesion(path: Path, fallback: Path) -> Path:
    """A second HAM10000 photo of the lesion in ``path`` (the dataset has several of some lesions)."""
    with (HAM10000 / "HAM10000_metadata.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    lesion = next((row["lesion_id"] for row in rows if row["image_id"] == path.stem), None)
    others = sorted(
        HAM10000 / "images" / f"{row['image_id']}.jpg"
        for row in rows
        if row["lesion_id"] == lesion and row["image_id"] != path.stem
    )
    return next((other for other in others if other.exists()), fallback)


def installed_predictor():
    """The worker's predictor (SKINPORTAL_MODEL_DIR or the default artifact), or None when no model is installed."""
    from inference.artifact import ArtifactError

    try:
        from inference.predictor import get_predictor

        return get_predictor()
    except (ArtifactError, ImportError, OSError, RuntimeError, ValueError) as exc:
        print(f"No model installed ({exc}); the results are a made-up example.")
        return None


def example_activation_map(centre: tuple[float, float]):
    import numpy as np

    ys, xs = np.mgrid[0:7, 0:7] / 6.0
    cam = np.exp(-(((xs - centre[0]) ** 2) + ((ys - centre[1]) ** 2)) / 0.05)
    return (cam / cam.max()).astype(np.float32)


def analyse(case, predictor, examples: list[dict]) -> None:
    """Score the case's photos as the worker does; without a model, record the made-up examples."""
    from django.utils import timezone

    from diagnosis import analysis
    from diagnosis.models import Case
    from inference.heatmap import overlay_png
    from inference.preprocessing import load_image
    from inference.risk import ImageResult, case_risk

    images = list(case.images.order_by("pk"))
    if predictor is not None:
        for image in images:
            analysis.image_analyse(image_id=image.pk)  # the worker's own code path
        return

    results = []
    for number, (image, example) in enumerate(zip(images, examples, strict=True), start=1):
        with image.file.open("rb") as handle:
            picture = load_image(handle)
        probabilities = example["probabilities"]
        analysis.prediction_record(
            image=analysis.image_analysis_claim(image_id=image.pk),
            model_version=EXAMPLE_VERSION,
            probabilities=probabilities,
            top_class=max(probabilities, key=probabilities.get),
            inference_ms=40.0,
            heatmap_png=overlay_png(picture, example_activation_map(example["centre"])),
        )
        results.append(ImageResult(number=number, probabilities=probabilities))
    # case_result_update takes its thresholds from the served model, which is missing here.
    assessment = case_risk(results, thresholds=EXAMPLE_THRESHOLDS, model_versions=[EXAMPLE_VERSION])
    status = Case.Status.REFERRED if assessment.level == "high" else Case.Status.ANALYSED
    now = timezone.now()
    Case.objects.filter(pk=case.pk).update(
        status=status,
        risk=assessment.level,
        summary=assessment.summary,
        summary_facts=list(assessment.facts),
        analysed_at=now,
        referred_at=now if status == Case.Status.REFERRED else None,
    )


def populate() -> dict:
    """Example clinic, nurse, patients and cases; returns what the screenshots need."""
    import datetime

    from django.core.files.uploadedfile import SimpleUploadedFile

    import diagnosis.dispatch
    from accounts.models import Clinic, User
    from diagnosis.models import Case, LesionImage
    from diagnosis.services import case_submit, patient_create

    diagnosis.dispatch.case_analysis_enqueue = lambda *, case_id: None  # no worker here
    clinic = Clinic.objects.create(name="Hillside Rural Clinic")
    nurse = User.objects.create_user(
        "joy.banda", password=PASSWORD, first_name="Joy", last_name="Banda", role=User.Role.CLINIC_STAFF
    )
    nurse.clinics.set([clinic])
    photos = photos_by_class()
    predictor = installed_predictor()

    def register(identifier, name, born, sex, skin_type="IV"):
        return patient_create(
            actor=nurse,
            clinic=clinic,
            identifier=identifier,
            full_name=name,
            date_of_birth=datetime.date.fromisoformat(born),
            sex=sex,
            skin_type=skin_type,
            consent_given=True,
        )

    def submit(patient, site, paths, kinds, **history):
        uploads = [SimpleUploadedFile(p.name, p.read_bytes(), content_type="image/jpeg") for p in paths]
        return case_submit(actor=nurse, patient=patient, body_site=site, images=uploads, image_kinds=kinds, **history)

    thandiwe = register("HRC-0412", "Thandiwe Nkosi", "1961-07-03", "female", "V")
    samuel = register("HRC-0388", "Samuel Mutua", "1954-11-20", "male", "IV")
    grace = register("HRC-0371", "Grace Achieng", "1979-03-14", "female", "VI")
    peter = register("HRC-0365", "Peter van Wyk", "1948-01-09", "male", "II")

    older = submit(peter, Case.BodySite.FACE, [photos["bcc"][3]], [LesionImage.Kind.CLOSE_UP], duration="over_1_year")
    analyse(
        older,
        predictor,
        [
            {
                "probabilities": {
                    "akiec": 0.08,
                    "bcc": 0.61,
                    "bkl": 0.17,
                    "df": 0.02,
                    "mel": 0.04,
                    "nv": 0.07,
                    "vasc": 0.01,
                },
                "centre": (0.5, 0.45),
            }
        ],
    )
    benign = submit(grace, Case.BodySite.LOWER_EXTREMITY, [photos["nv"][10]], [LesionImage.Kind.OVERVIEW])
    analyse(
        benign,
        predictor,
        [
            {
                "probabilities": {
                    "akiec": 0.004,
                    "bcc": 0.006,
                    "bkl": 0.03,
                    "df": 0.01,
                    "mel": 0.05,
                    "nv": 0.897,
                    "vasc": 0.003,
                },
                "centre": (0.45, 0.5),
            }
        ],
    )
    submit(samuel, Case.BodySite.BACK, [photos["bkl"][5]], [LesionImage.Kind.OVERVIEW], itching=True)
    featured = submit(
        thandiwe,
        Case.BodySite.BACK,
        [photos["mel"][2], photos["mel"][3]],
        [LesionImage.Kind.OVERVIEW, LesionImage.Kind.CLOSE_UP],
        duration="1_6_months",
        recently_changed=True,
        abcde_asymmetry=True,
        abcde_border=True,
        abcde_colour=True,
        notes="Darker at one edge since the spring. Patient noticed it grow.",
    )
    analyse(
        featured,
        predictor,
        [
            {
                "probabilities": {
                    "akiec": 0.03,
                    "bcc": 0.02,
                    "bkl": 0.09,
                    "df": 0.01,
                    "mel": 0.57,
                    "nv": 0.27,
                    "vasc": 0.01,
                },
                "centre": (0.55, 0.4),
            },
            {
                "probabilities": {
                    "akiec": 0.02,
                    "bcc": 0.03,
                    "bkl": 0.12,
                    "df": 0.01,
                    "mel": 0.38,
                    "nv": 0.43,
                    "vasc": 0.01,
                },
                "centre": (0.4, 0.55),
            },
        ],
    )
    refer_for_screenshots(nurse, clinic, featured, older, benign)
    revisit = revisit_for_screenshots(benign, submit, predictor, photos)
    return {
        "featured": featured,
        "answered": benign,
        "lesion": revisit.lesion_id,
        "patient": samuel,
        "photo": photos["nv"][20],
        "has_model": predictor is not None,
    }


def refer_for_screenshots(nurse, clinic, featured, older, benign) -> None:
    """A specialist serving the clinic: the featured case in the queue and claimed, another
    waiting, and the benign one answered."""
    from accounts.models import User
    from triage import services
    from triage.models import Referral

    doctor = User.objects.create_user(
        "dr.okafor", password=PASSWORD, first_name="Ngozi", last_name="Okafor", role=User.Role.SPECIALIST
    )
    doctor.clinics.set([clinic])

    def referral_of(case, urgency, reason):
        case.refresh_from_db()
        existing = Referral.objects.filter(case=case).first()
        return existing or services.referral_create(actor=nurse, case=case, urgency=urgency, reason=reason)

    referral_of(older, "routine", "Pearly edge on the cheek; slowly growing for over a year.")
    answered = referral_of(benign, "routine", "The patient asks whether it needs removing.")
    services.referral_claim(actor=doctor, referral=answered)
    services.review_submit(
        actor=doctor,
        referral=answered,
        diagnosis="nv",
        agrees_with_model=True,
        outcome="monitor",
        follow_up_months=6,
        message="A benign melanocytic naevus with a regular network. Reassure the patient and photograph it "
        "again in six months, or sooner if it changes.",
    )
    featured_referral = referral_of(featured, "urgent", "Darker at one edge; the patient noticed it grow.")
    services.referral_claim(actor=doctor, referral=featured_referral)


def revisit_for_screenshots(benign, submit, predictor, photos):
    """Six months after the specialist said "monitor", the clinic photographs the same lesion again."""
    import datetime

    from django.utils import timezone

    from diagnosis.models import Case, Lesion, LesionImage
    from triage.models import Review

    earlier = timezone.now() - datetime.timedelta(days=190)
    Case.objects.filter(pk=benign.pk).update(created_at=earlier, analysed_at=earlier)
    Lesion.objects.filter(pk=benign.lesion_id).update(created_at=earlier, label="mole left calf")
    Review.objects.filter(referral__case=benign).update(created_at=earlier + datetime.timedelta(days=1))
    photo = another_photo_of_the_same_lesion(photos["nv"][10], photos["nv"][11])
    revisit = submit(
        benign.patient, Case.BodySite.LOWER_EXTREMITY, [photo], [LesionImage.Kind.OVERVIEW], lesion=benign.lesion
    )
    probabilities = {"akiec": 0.004, "bcc": 0.006, "bkl": 0.03, "df": 0.01, "mel": 0.04, "nv": 0.907, "vasc": 0.003}
    analyse(revisit, predictor, [{"probabilities": probabilities, "centre": (0.5, 0.5)}])
    return revisit


def start_server():
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.test.testcases import LiveServerThread

    server = LiveServerThread("localhost", StaticFilesHandler, port=0)
    server.daemon = True
    server.start()
    server.is_ready.wait()
    if server.error:
        raise server.error
    return server, f"http://localhost:{server.port}"


def shoot(base_url: str, data: dict) -> list[Path]:
    from playwright.sync_api import sync_playwright

    from tests.chromium import chromium_launch

    written = []
    with sync_playwright() as playwright:
        browser = chromium_launch(playwright)
        for width, height, scale, mobile in ((360, 780, 2, True), (1280, 860, 1, False)):
            context = browser.new_context(
                viewport={"width": width, "height": height},
                device_scale_factor=scale,
                is_mobile=mobile,
                has_touch=mobile,
            )
            page = context.new_page()
            page.goto(base_url + "/accounts/login/")
            page.get_by_label("Username").fill("joy.banda")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(base_url + "/")

            def capture(name: str, page=page, width=width) -> None:
                # Full-page shots do not scroll, so lazy images would never load.
                page.evaluate("document.querySelectorAll('img[loading=lazy]').forEach(i => i.loading = 'eager')")
                page.wait_for_load_state("networkidle")
                page.wait_for_function("Array.from(document.images).every(i => i.complete)")
                path = HERE / f"{name}-{width}.png"
                page.screenshot(path=str(path), full_page=True)
                written.append(path)

            capture("dashboard")
            page.goto(f"{base_url}/patients/{data['patient'].pk}/cases/new/")
            page.locator("#photo-camera").set_input_files(str(data["photo"]))
            page.locator(".photo-info", has_text="px").wait_for()
            page.get_by_label("Body site").select_option("back")
            page.get_by_label("Itching").check()
            capture("case-new")
            page.goto(f"{base_url}/cases/{data['featured'].pk}/")
            capture("case-result")
            page.goto(f"{base_url}/cases/{data['answered'].pk}/")
            capture("case-answer")
            page.goto(f"{base_url}/lesions/{data['lesion']}/")
            capture("lesion")
            page.goto(f"{base_url}/lesions/{data['lesion']}/compare/")
            capture("lesion-compare")
            if data["has_model"]:
                page.goto(f"{base_url}/model/")
                capture("model")
            # The specialist's side.
            context.clear_cookies()
            page.goto(base_url + "/accounts/login/")
            page.get_by_label("Username").fill("dr.okafor")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(base_url + "/")
            page.goto(f"{base_url}/referrals/")
            capture("queue")
            referral_id = data["featured"].referral.pk
            page.goto(f"{base_url}/referrals/{referral_id}/")
            capture("review")
            context.close()
        browser.close()
    return written


def main() -> None:
    from tests.chromium import CHROMIUM

    if not CHROMIUM.exists():
        sys.exit(f"Chromium is needed at {CHROMIUM} (apt-get install -y chromium).")
    if not (HAM10000 / "images").is_dir():
        sys.exit(f"HAM10000 images are needed at {HAM10000 / 'images'}.")
    with tempfile.TemporaryDirectory(prefix="skinportal-screenshots-") as workdir:
        configure_django(Path(workdir))
        data = populate()
        server, base_url = start_server()
        try:
            for path in shoot(base_url, data):
                print(path.relative_to(ROOT))
        finally:
            server.terminate()


if __name__ == "__main__":
    main()
