"""Screenshots of the web UI for the docs, at a phone's 360 px and a desktop's 1280 px, and a
look at every page as each role sees it.

    .venv/bin/python docs/screenshots/take.py                       # rewrite the references beside this file
    .venv/bin/python docs/screenshots/take.py --out DIR --layout-report DIR/layout.json

Builds a throwaway database and media folder, registers example patients and submits cases
through the real services with the HAM10000 sample photos in tests/data (so it runs on any
checkout), starts the site on a local port and drives Debian's Chromium (/usr/bin/chromium)
through it. Writes dashboard-*.png, case-new-*.png, case-result-*.png, case-answer-*.png,
lesion-*.png, lesion-compare-*.png and model-*.png (the clinic's pages), queue-*.png and
review-*.png (the specialist's).

The pages are deterministic: a fixed clock (every date, "waiting 2 hours"), fixed example
data, a fresh database, animations off. tests/test_browser_screens.py runs this command into a
temporary folder and fails when a page differs from its reference here, unless the reference
was updated in the same change (run the first command and commit the PNGs).

With --layout-report it also visits the dashboard, the case page with a result, the lesion and
compare pages, the referral queue, the review page and the Model page as a nurse, a specialist
and an administrator at both widths, and records in that JSON file every page that scrolls
sideways, every text box whose text overflows it, and every heatmap layer that is not exactly
over its photo or hides it.

The case results come from the installed model when there is one (SKINPORTAL_MODEL_DIR or
the default artifact). Without one, the probabilities and heatmap are a made-up example
and the model version on the page says so.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SAMPLE = ROOT / "tests" / "data" / "ham10000"
sys.path.insert(0, str(ROOT))
PASSWORD = "screenshots-only-password"
EXAMPLE_VERSION = "example-only-not-a-model-result"
EXAMPLE_THRESHOLDS = {"mel": 0.2, "bcc": 0.25, "akiec": 0.3}
WIDTHS = ((360, 780, 2, True), (1280, 860, 1, False))
# Every page is drawn at this instant, whenever the command runs.
NOW = datetime.datetime(2026, 11, 17, 9, 30, tzinfo=datetime.UTC)


class Clock:
    """The site's clock while the command runs: ``django.utils.timezone.now`` and the
    ``timesince`` filter read it, so dates and "waiting 2 hours" are the same on every run."""

    def __init__(self, now: datetime.datetime):
        self.now = now

    def __call__(self) -> datetime.datetime:
        return self.now

    def install(self) -> None:
        # Before Django loads the models, so field defaults (default=timezone.now) use it too.
        from django.template import defaultfilters
        from django.utils import timesince, timezone

        original = timesince.timesince

        def fixed_timesince(d, now=None, *args, **kwargs):
            return original(d, now or self.now, *args, **kwargs)

        timezone.now = self
        timesince.timesince = defaultfilters.timesince = fixed_timesince


CLOCK = Clock(NOW)


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
    """The HAM10000 sample photos in tests/data by diagnosis (attribution in tests/data/README.md)."""
    found: dict[str, list[Path]] = {}
    with (SAMPLE / "sample_metadata.csv").open() as handle:
        for row in csv.DictReader(handle):
            path = SAMPLE / "images" / f"{row['image_id']}.jpg"
            if path.exists():
                found.setdefault(row["dx"], []).append(path)
    for paths in found.values():
        paths.sort()
    return found


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

    from analysis import services as analysis
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
            heatmap=overlay_png(picture, example_activation_map(example["centre"])),
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
    from diagnosis.services import case_submit
    from patients.services import patient_create

    diagnosis.dispatch.case_analysis_enqueue = lambda *, case_id: None  # no worker here
    CLOCK.now = NOW - datetime.timedelta(days=400)
    # Near Lilongwe: the dashboard shows the day's UV index there (a clear-sky estimate: no forecast is fetched).
    clinic = Clinic.objects.create(name="Hillside Rural Clinic", latitude=-13.9626, longitude=33.7741)
    nurse = User.objects.create_user(
        "joy.banda", password=PASSWORD, first_name="Joy", last_name="Banda", role=User.Role.CLINIC_STAFF
    )
    nurse.clinics.set([clinic])
    User.objects.create_user(
        "ada.admin",
        password=PASSWORD,
        first_name="Ada",
        last_name="Mensah",
        role=User.Role.ADMINISTRATOR,
        is_staff=True,
        is_superuser=True,
    )
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

    CLOCK.now = NOW - datetime.timedelta(days=3, hours=5)
    older = submit(peter, Case.BodySite.FACE, [photos["bcc"][2]], [LesionImage.Kind.CLOSE_UP], duration="over_1_year")
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
    CLOCK.now = NOW - datetime.timedelta(days=190)
    benign = submit(grace, Case.BodySite.LOWER_EXTREMITY, [photos["nv"][0]], [LesionImage.Kind.OVERVIEW])
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
    CLOCK.now = NOW - datetime.timedelta(days=1, hours=2)
    submit(samuel, Case.BodySite.BACK, [photos["bkl"][0]], [LesionImage.Kind.OVERVIEW], itching=True)
    CLOCK.now = NOW - datetime.timedelta(hours=2, minutes=40)
    featured = submit(
        thandiwe,
        Case.BodySite.BACK,
        [photos["mel"][0], photos["mel"][2]],
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
        "photo": photos["nv"][2],
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

    CLOCK.now = NOW - datetime.timedelta(days=3)
    referral_of(older, "routine", "Pearly edge on the cheek; slowly growing for over a year.")
    CLOCK.now = NOW - datetime.timedelta(days=189, hours=20)
    answered = referral_of(benign, "routine", "The patient asks whether it needs removing.")
    CLOCK.now = NOW - datetime.timedelta(days=189, hours=3)
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
    CLOCK.now = NOW - datetime.timedelta(hours=2, minutes=30)
    featured_referral = referral_of(featured, "urgent", "Darker at one edge; the patient noticed it grow.")
    CLOCK.now = NOW - datetime.timedelta(minutes=25)
    services.referral_claim(actor=doctor, referral=featured_referral)


def revisit_for_screenshots(benign, submit, predictor, photos):
    """Six months after the specialist said "monitor", the clinic photographs the same lesion again."""
    from diagnosis.models import Case, Lesion, LesionImage

    Lesion.objects.filter(pk=benign.lesion_id).update(label="mole left calf")
    CLOCK.now = NOW - datetime.timedelta(hours=1, minutes=10)
    photo = photos["nv"][3]  # the sample has one photo per lesion: another naevus stands in
    revisit = submit(
        benign.patient, Case.BodySite.LOWER_EXTREMITY, [photo], [LesionImage.Kind.OVERVIEW], lesion=benign.lesion
    )
    probabilities = {"akiec": 0.004, "bcc": 0.006, "bkl": 0.03, "df": 0.01, "mel": 0.04, "nv": 0.907, "vasc": 0.003}
    analyse(revisit, predictor, [{"probabilities": probabilities, "centre": (0.5, 0.5)}])
    CLOCK.now = NOW
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


def page_function(name: str) -> str:
    """A function expression for ``page.evaluate`` from a file beside this one (its comments dropped)."""
    lines = (HERE / name).read_text().splitlines()
    source = "\n".join(line for line in lines if not line.startswith("//")).strip()
    return source.removeprefix("(").removesuffix(")")


# What the layout check measures on each page (run in the page; returns a list of problems).
LAYOUT_CHECK = page_function("layout-check.js")

# Every heatmap layer: exactly over its photo (boxes within 3 px) with the heatmap on, and the
# photo still shown under it (drawn, opaque, and the element hit at its centre).
HEATMAP_CHECK = page_function("heatmap-check.js")


# (role, user, [(page name, path, screenshot name or None)]); the staff's and the specialist's
# pages with a screenshot name are the README's screenshots.
def role_pages(data: dict) -> list[tuple[str, str, list[tuple[str, str, str | None]]]]:
    featured, answered, lesion = data["featured"].pk, data["answered"].pk, data["lesion"]
    referral = data["featured"].referral.pk
    model = [("model", "/model/", "model")] if data["has_model"] else []
    common = [
        ("case-result", f"/cases/{featured}/", None),
        ("lesion", f"/lesions/{lesion}/", None),
        ("lesion-compare", f"/lesions/{lesion}/compare/", None),
    ]
    return [
        (
            "clinic staff",
            "joy.banda",
            [
                ("dashboard", "/", "dashboard"),
                ("case-list", "/cases/?status=referred", None),
                ("case-new", f"/patients/{data['patient'].pk}/cases/new/", "case-new"),
                ("case-result", f"/cases/{featured}/", "case-result"),
                ("case-answer", f"/cases/{answered}/", "case-answer"),
                ("lesion", f"/lesions/{lesion}/", "lesion"),
                ("lesion-compare", f"/lesions/{lesion}/compare/", "lesion-compare"),
                *model,
            ],
        ),
        (
            "specialist",
            "dr.okafor",
            [
                ("dashboard", "/", None),
                ("queue", "/referrals/", "queue"),
                ("review", f"/referrals/{referral}/", "review"),
                *common,
                *[(name, path, None) for name, path, _shot in model],
            ],
        ),
        (
            "administrator",
            "ada.admin",
            [
                ("dashboard", "/", None),
                ("queue", "/referrals/", None),
                ("review", f"/referrals/{referral}/", None),
                *common,
                *[(name, path, None) for name, path, _shot in model],
            ],
        ),
    ]


def shoot(base_url: str, data: dict, out_dir: Path) -> tuple[list[Path], list[dict]]:
    """Screenshots into ``out_dir``, and the layout of every page of every role at both widths."""
    from playwright.sync_api import sync_playwright

    from tests.chromium import chromium_launch

    written: list[Path] = []
    visits: list[dict] = []
    with sync_playwright() as playwright:
        browser = chromium_launch(playwright)
        for width, height, scale, mobile in WIDTHS:
            for role, username, pages in role_pages(data):
                context = browser.new_context(
                    viewport={"width": width, "height": height},
                    device_scale_factor=scale,
                    is_mobile=mobile,
                    has_touch=mobile,
                    reduced_motion="reduce",
                    locale="en-GB",
                    timezone_id="UTC",
                )
                page = context.new_page()
                page.goto(base_url + "/accounts/login/")
                page.get_by_label("Username").fill(username)
                page.get_by_label("Password").fill(PASSWORD)
                page.get_by_role("button", name="Sign in").click()
                page.wait_for_url(base_url + "/")
                for name, path, shot in pages:
                    response = page.goto(base_url + path)
                    answered = [] if response.ok else [{"kind": "page failed", "detail": f"HTTP {response.status}"}]
                    if name == "case-new":
                        page.locator("#photo-camera").set_input_files(str(data["photo"]))
                        page.locator(".photo-info", has_text="px").wait_for()
                        page.get_by_label("Body site").select_option("back")
                        page.get_by_label("Itching").check()
                    # Full-page shots do not scroll, so lazy images would never load.
                    page.evaluate("document.querySelectorAll('img[loading=lazy]').forEach(i => i.loading = 'eager')")
                    page.wait_for_load_state("networkidle")
                    page.wait_for_function("Array.from(document.images).every(i => i.complete)")
                    if shot is not None:
                        target = out_dir / f"{shot}-{width}.png"
                        page.screenshot(path=str(target), full_page=True, animations="disabled", caret="hide")
                        written.append(target)
                    problems = page.evaluate(LAYOUT_CHECK)
                    heatmaps = page.evaluate(HEATMAP_CHECK)  # after the shot: it turns the heatmaps on
                    visits.append(
                        {
                            "role": role,
                            "page": name,
                            "width": width,
                            "viewers": heatmaps["viewers"],
                            "problems": answered + problems + heatmaps["problems"],
                        }
                    )
                context.close()
        browser.close()
    return written, visits


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="where the PNGs go (default: beside this file)")
    parser.add_argument("--layout-report", type=Path, help="the layout findings of every page, as JSON, here")
    args = parser.parse_args(argv)

    from tests.chromium import CHROMIUM

    if not CHROMIUM.exists():
        sys.exit(f"Chromium is needed at {CHROMIUM} (apt-get install -y chromium).")
    CLOCK.install()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="skinportal-screenshots-") as workdir:
        configure_django(Path(workdir))
        data = populate()
        server, base_url = start_server()
        try:
            # The layout is always looked at, so the references and the test's shots come from the same visits.
            written, visits = shoot(base_url, data, args.out)
        finally:
            server.terminate()
    for path in written:
        print(path)
    found = [(visit, problem) for visit in visits for problem in visit["problems"]]
    for visit, problem in found:
        print(f"{visit['role']}, {visit['page']}, {visit['width']} px: {problem['kind']}: {problem['detail']}")
    print(f"layout: {len(visits)} pages looked at, {len(found)} problems")
    if args.layout_report is not None:
        args.layout_report.write_text(json.dumps({"visits": visits}, indent=2) + "\n")


if __name__ == "__main__":
    main()
