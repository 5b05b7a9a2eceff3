"""Where an upload's CPU goes: SQL queries and a cProfile of the web request and of the worker task.

    .venv/bin/python -m benchmarks.upload_profile [--uploads 100] [--database-url postgres://...]
        [--side 200] [--top 25] [--show-queries]

Runs in one process, without HTTP, a broker or a second process, so the figures depend little
on how busy the machine is: the upload request (``POST /api/v1/cases/`` through DRF's test
client, token authentication, the real services, storage and serializer; the analysis message
goes to Celery's in-memory transport) and the worker task (``analysis.services.image_analyse``
on the photo just uploaded, with the served model). Prints, per upload and per photo:

- the SQL queries each runs (the statements with ``--show-queries``);
- the median wall time of each, and of the model call alone (``Predictor.run``) in the same run;
- the functions with the largest share of each under cProfile, and the shares of a few
  families (database, image decoding and encoding, the model, templates and serializers).

Photos are HAM10000 images (200x150 in ../shared) or, with ``--side 1600``, the same photos
enlarged to a 1600 px phone-sized JPEG. The database is a temporary SQLite file unless
``--database-url`` names a PostgreSQL database (created and dropped).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HAM10000 = ROOT.parent / "shared" / "data" / "ham10000" / "images"

# Function families, by the file the time is spent in (cProfile's own time, not cumulative).
FAMILIES = {
    "database (ORM, driver)": ("django/db/", "sqlite3", "psycopg"),
    "images (Pillow decode, encode, resize)": ("PIL/", "pillow_heif"),
    "model (LiteRT, numpy)": ("ai_edge_litert", "numpy/", "inference/"),
    "storage (files)": ("django/core/files/", "storages/", "botocore/", "boto3/", "s3transfer/"),
    "serializers, templates, i18n": (
        "rest_framework/serializers",
        "rest_framework/fields",
        "django/template/",
        "django/utils/translation",
        "gettext",
    ),
    "broker (Celery, kombu)": ("celery/", "kombu/"),
}


def photos(data: Path, count: int, side: int) -> list[bytes]:
    from PIL import Image

    files = sorted(data.glob("*.jpg"))[::10][:count]
    if not files:
        raise SystemExit(f"no HAM10000 images in {data}")
    out = []
    for file in files:
        if side <= 200:
            out.append(file.read_bytes())
            continue
        with Image.open(file) as image:
            big = image.convert("RGB").resize((side, side * 3 // 4), Image.Resampling.BICUBIC)
        buffer = io.BytesIO()
        big.save(buffer, format="JPEG", quality=90)
        out.append(buffer.getvalue())
    return out


def family_shares(stats: pstats.Stats) -> dict[str, float]:
    total = sum(entry[2] for entry in stats.stats.values()) or 1.0
    shares = dict.fromkeys(FAMILIES, 0.0)
    for (filename, _line, _name), entry in stats.stats.items():
        for family, markers in FAMILIES.items():
            if any(marker in filename for marker in markers):
                shares[family] += entry[2] / total
                break
    return shares


def top_functions(profile: cProfile.Profile, top: int, sort: str) -> str:
    buffer = io.StringIO()
    stats = pstats.Stats(profile, stream=buffer)
    stats.strip_dirs().sort_stats(sort).print_stats(top)
    lines = buffer.getvalue().splitlines()
    start = next((n for n, line in enumerate(lines) if line.strip().startswith("ncalls")), 0)
    return "\n".join(lines[start:])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=100)
    parser.add_argument("--database-url", help="a PostgreSQL database to create and drop; default: temporary SQLite")
    parser.add_argument("--side", type=int, default=200, help="photo width: 200 (as stored in ../shared) or 1600")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--show-queries", action="store_true")
    parser.add_argument("--data", type=Path, default=HAM10000)
    args = parser.parse_args(argv)

    scratch = Path(tempfile.mkdtemp(prefix="skinportal-profile-"))
    database_url = args.database_url or f"sqlite:///{scratch / 'profile.sqlite3'}"
    if database_url.startswith("postgres"):
        from benchmarks.upload_latency import create_postgres_database

        create_postgres_database(database_url)
    os.environ.update(
        DJANGO_SETTINGS_MODULE="skinportal.settings.local",
        DJANGO_DEBUG="false",
        DATABASE_URL=database_url,
        DJANGO_MEDIA_ROOT=str(scratch / "media"),
        CELERY_BROKER_URL="memory://",
        DJANGO_LOG_LEVEL="WARNING",
        UPLOAD_MAX_PHOTOS_PER_HOUR="0",
    )
    for name in ("SKINPORTAL_S3_BUCKET",):
        os.environ.pop(name, None)
    try:
        run(args, photos(args.data, args.uploads, args.side))
    finally:
        from django.db import connections

        connections.close_all()
        if database_url.startswith("postgres"):
            from benchmarks.upload_latency import drop_postgres_database

            drop_postgres_database(database_url)
        shutil.rmtree(scratch, ignore_errors=True)


def run(args, payloads: list[bytes]) -> None:
    import django

    django.setup()
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext, setup_test_environment
    from knox.models import AuthToken
    from rest_framework.test import APIClient

    from accounts.models import Clinic, User
    from analysis import services as analysis
    from diagnosis.models import LesionImage
    from inference.predictor import get_predictor
    from inference.preprocessing import model_pixels
    from patients.models import Patient

    setup_test_environment()  # the test client needs it; nothing else changes
    call_command("migrate", verbosity=0, interactive=False)
    clinic = Clinic.objects.create(name="Profile clinic")
    user = User.objects.create_user("profile-nurse", password="profile-password-1", role="clinic_staff")
    user.clinics.add(clinic)
    patient = Patient.objects.create(
        clinic=clinic,
        identifier="PROF-1",
        full_name="Profile Patient",
        date_of_birth="1970-01-01",
        sex="female",
        consent_given=True,
        created_by=user,
    )
    _, token = AuthToken.objects.create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    predictor = get_predictor()

    def upload(data: bytes) -> dict:
        image = SimpleUploadedFile("lesion.jpg", data, content_type="image/jpeg")
        response = client.post(
            "/api/v1/cases/", {"patient": patient.pk, "body_site": "back", "images": [image]}, format="multipart"
        )
        assert response.status_code == 201, response.content[:500]
        return response.json()

    for data in payloads[:5]:  # warm-up: imports, caches, connections
        analysis.image_analyse(image_id=upload(data)["images"][0]["id"])

    web_ms, worker_ms, model_ms, web_queries, worker_queries = [], [], [], [], []
    web_profile, worker_profile = cProfile.Profile(), cProfile.Profile()
    shown = False
    for data in payloads:
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            body = upload(data)
            web_ms.append((time.perf_counter() - started) * 1000)
        web_queries.append(len(queries))
        if args.show_queries and not shown:
            print("SQL of one upload:")
            for number, query in enumerate(queries.captured_queries, start=1):
                print(f"  {number:2}. {query['sql'][:160]}")
        image_id = body["images"][0]["id"]
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            outcome = analysis.image_analyse(image_id=image_id)
            worker_ms.append((time.perf_counter() - started) * 1000)
        assert outcome == "scored", outcome
        worker_queries.append(len(queries))
        if args.show_queries and not shown:
            print("SQL of one worker task:")
            for number, query in enumerate(queries.captured_queries, start=1):
                print(f"  {number:2}. {query['sql'][:160]}")
            shown = True
        image = LesionImage.objects.get(pk=image_id)
        with image.file.open("rb") as handle:
            from inference.preprocessing import load_image

            pixels = model_pixels(load_image(io.BytesIO(handle.read())), predictor.artifact.input_size)
        started = time.perf_counter()
        predictor.run(pixels)
        model_ms.append((time.perf_counter() - started) * 1000)

    # A poll of a case awaiting its result: the full answer, then the conditional one (304).
    pending = upload(payloads[0])
    path = f"/api/v1/cases/{pending['id']}/"
    full_ms, poll_ms, full_queries, poll_queries = [], [], [], []
    for _ in range(30):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.get(path)
            full_ms.append((time.perf_counter() - started) * 1000)
        full_queries.append(len(queries))
        etag = response.get("ETag")
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            answer = client.get(path, HTTP_IF_NONE_MATCH=etag or "")
            poll_ms.append((time.perf_counter() - started) * 1000)
        poll_queries.append(len(queries))
    conditional = answer.status_code == 304

    # The profiled passes, separate from the timed ones (cProfile slows Python code down).
    for data in payloads[: max(20, len(payloads) // 2)]:
        web_profile.enable()
        body = upload(data)
        web_profile.disable()
        worker_profile.enable()
        analysis.image_analyse(image_id=body["images"][0]["id"])
        worker_profile.disable()

    engine = connection.vendor
    print(
        f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}; "
        f"{os.cpu_count()} CPUs; {engine}; {len(payloads)} uploads of one {args.side} px HAM10000 JPEG; "
        f"model {predictor.model_version}, LiteRT threads {predictor.threads}"
    )
    print(f"sql queries per upload: {statistics.median(web_queries):.0f} (max {max(web_queries)})")
    print(f"sql queries per worker task: {statistics.median(worker_queries):.0f} (max {max(worker_queries)})")
    print(
        f"upload request in process, median {statistics.median(web_ms):.1f} ms "
        f"(p95 {sorted(web_ms)[int(len(web_ms) * 0.95) - 1]:.1f})"
    )
    print(
        f"case read while analysing, in process: full answer median {statistics.median(full_ms):.1f} ms, "
        f"{statistics.median(full_queries):.0f} queries; conditional poll "
        f"({'304' if conditional else 'no ETag: full answer'}) median {statistics.median(poll_ms):.1f} ms, "
        f"{statistics.median(poll_queries):.0f} queries"
    )
    model = statistics.median(model_ms)
    worker = statistics.median(worker_ms)
    print(
        f"worker task in process (database, storage, compute), median {worker:.1f} ms; "
        f"model call median {model:.2f} ms; ratio {worker / model:.1f}x"
    )
    for label, profile in (("upload request", web_profile), ("worker task", worker_profile)):
        stats = pstats.Stats(profile)
        shares = family_shares(stats)
        print(
            f"\n{label}: share of profiled time by family: "
            + ", ".join(f"{family} {share:.0%}" for family, share in shares.items())
        )
        print(f"{label}: top {args.top} functions by own time")
        print(top_functions(profile, args.top, "tottime"))
        print(f"{label}: top {args.top} by cumulative time")
        print(top_functions(profile, args.top, "cumulative"))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
