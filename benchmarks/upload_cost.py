"""What the worst photo upload within the limits costs the web process: time and peak memory.

    .venv/bin/python -m benchmarks.upload_cost

Each scenario runs in a fresh Python process with the portal's settings (a temporary SQLite
database and media folder), signs a clinic user in with an API token and posts one case to
``POST /api/v1/cases/`` through Django's test client, the same code path gunicorn runs. It
prints the request's wall time, its answer, and the process's peak resident memory
(``ru_maxrss``) before and after the request. The scenarios are the most expensive requests
the limits admit (decoded-pixel budget, per-photo pixel limit, stored size), and the attack
from the hardening review (ten 7000x7000 PNGs), which must now be refused before decoding.
Target: every accepted request at most 2 s and 300 MB peak.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCENARIOS = {
    "10 PNG 1788x1788 (32 MP together, the request budget)": ("PNG", 1788, 10),
    "1 PNG 4898x4898 (24 MP, one photo at its limit)": ("PNG", 4898, 1),
    "1 HEIC 4898x4898 (24 MP)": ("HEIF", 4898, 1),
    "2 JPEG 7000x7000 (49 MP each, decoded at 1/2 scale)": ("JPEG", 7000, 2),
    "10 JPEG 4032x3024 (phone photos, 3 MP each decoded)": ("JPEG", 4032, 10),
    "10 PNG 7000x7000 (the reviewed attack)": ("PNG", 7000, 10),
}

MAKE = r"""
import io, os, sys
from PIL import Image
import pillow_heif
pillow_heif.register_heif_opener()
fmt, side, count, folder = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
height = side * 3 // 4 if side == 4032 else side
for n in range(count):
    options = {"quality": 90} if fmt != "PNG" else {}
    Image.new("RGB", (side, height), (120 + n, 80, 60)).save(os.path.join(folder, f"p{n}"), format=fmt, **options)
"""

CHILD = r"""
import io, json, os, resource, sys, time
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.core.files.uploadedfile import SimpleUploadedFile
from knox.models import AuthToken
from PIL import Image
import pillow_heif
pillow_heif.register_heif_opener()
from rest_framework.test import APIClient
from accounts.models import Clinic, User
from patients.models import Patient

fmt, side, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
clinic = Clinic.objects.create(name="Bench")
user = User.objects.create_user("bench", password="x" * 20, role=User.Role.CLINIC_STAFF)
user.clinics.add(clinic)
patient = Patient.objects.create(clinic=clinic, identifier="B-1", full_name="Bench Patient",
    date_of_birth="1970-01-01", sex="female", consent_given=True, created_by=user)
_, token = AuthToken.objects.create(user=user)
client = APIClient()
client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
# The photos were made by another process: making them here would raise this one's peak.
files = [open(os.path.join(sys.argv[4], f"p{n}"), "rb").read() for n in range(count)]
sizes = sum(len(f) for f in files)
# Warm up the code path with a small photo, so imports and first-use costs are not counted.
small = io.BytesIO(); Image.new("RGB", (64, 48)).save(small, format="JPEG")
client.post("/api/v1/cases/", {"patient": patient.pk, "body_site": "back",
    "images": [SimpleUploadedFile("w.jpg", small.getvalue())]}, format="multipart")
uploads = [SimpleUploadedFile(f"p{n}.{fmt.lower()}", data) for n, data in enumerate(files)]
del files
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
import gc; gc.collect()
start = time.perf_counter()
response = client.post("/api/v1/cases/", {"patient": patient.pk, "body_site": "back", "images": uploads},
    format="multipart")
elapsed = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"status": response.status_code, "seconds": elapsed, "rss_before_mb": before / 1024,
    "peak_mb": peak / 1024, "body_mb": sizes / 1e6,
    "answer": response.content.decode()[:160] if response.status_code != 201 else ""}))
"""


def main() -> None:
    print(f"{'scenario':66} {'answer':>6} {'seconds':>8} {'peak MB':>8} {'(before)':>9} {'body MB':>8}")
    for name, (fmt, side, count) in SCENARIOS.items():
        with tempfile.TemporaryDirectory() as tmp:
            env = {
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "skinportal.settings.local",
                "DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3",
                "DJANGO_MEDIA_ROOT": f"{tmp}/media",
                "CELERY_BROKER_URL": "memory://",
                "DJANGO_LOG_LEVEL": "ERROR",
                "DJANGO_ALLOWED_HOSTS": "testserver",
            }
            arguments = [fmt, str(side), str(count), tmp]
            subprocess.run([sys.executable, "-c", MAKE, *arguments], check=True, timeout=600)
            result = subprocess.run(
                [sys.executable, "-c", CHILD, *arguments],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
        if result.returncode != 0:
            print(f"{name:66} failed: {result.stderr[-400:]}")
            continue
        row = json.loads(result.stdout.strip().splitlines()[-1])
        print(
            f"{name:66} {row['status']:>6} {row['seconds']:8.2f} {row['peak_mb']:8.0f} "
            f"{row['rss_before_mb']:9.0f} {row['body_mb']:8.1f}"
        )
        if row["answer"]:
            print(f"{'':66} {row['answer']}")
    print("peak MB is the process's maximum resident memory; (before) is that maximum just before the request")


if __name__ == "__main__":
    main()
