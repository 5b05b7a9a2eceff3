"""Score chosen cases again with the deployed model, keeping every earlier prediction.

    python manage.py reanalyse --case 12 --case 15
    python manage.py reanalyse --all [--dry-run]

Each chosen case goes through ``analysis.services.case_reanalyse``: its photos are queued
again and the workers score them with the model they serve. Predictions of earlier model
versions stay (one row per image and model version). A photo that already has a
prediction from the deployed version is not scored again: a version names one immutable
artifact, so the numbers would be the same; there is no option to force it. Cases whose
every photo is scored by the deployed version are left alone, as are cases still being
analysed and cases a specialist has taken on, is waiting on or has answered (under review,
information requested, reviewed, closed). A referred case waiting in the queue is scored by
the new version too, as a new prediction: it stays referred, in the specialist's hands.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from analysis.services import case_reanalyse
from diagnosis.models import Case
from inference.serving import ArtifactError, deployed_version

LEFT_ALONE = {
    Case.Status.SUBMITTED: "analysis in progress",
    Case.Status.ANALYSING: "analysis in progress",
    Case.Status.UNDER_REVIEW: "with a specialist",
    Case.Status.INFORMATION_REQUESTED: "waiting for the clinic's answer",
    Case.Status.REVIEWED: "reviewed by a specialist",
    Case.Status.CLOSED: "closed",
}


class Command(BaseCommand):
    help = "Score chosen cases again with the deployed model; earlier predictions are kept."

    def add_arguments(self, parser) -> None:
        chosen = parser.add_mutually_exclusive_group(required=True)
        chosen.add_argument("--case", type=int, action="append", dest="case_ids", metavar="ID", help="repeatable")
        chosen.add_argument("--all", action="store_true", dest="all_cases", help="every case")
        parser.add_argument("--dry-run", action="store_true", help="say what would be queued, change nothing")

    def handle(self, *args, case_ids: list[int] | None, all_cases: bool, dry_run: bool, **options) -> None:
        try:
            version = deployed_version()
        except ArtifactError as exc:
            raise CommandError(f"no deployed model: {exc}") from exc

        cases = Case.objects.order_by("pk").prefetch_related("images__predictions")
        if not all_cases:
            cases = cases.filter(pk__in=case_ids)
            missing = sorted(set(case_ids) - set(cases.values_list("pk", flat=True)))
            if missing:
                raise CommandError(f"no case with id {', '.join(map(str, missing))}")

        queued = skipped = 0
        for case in cases.iterator(chunk_size=200):
            reason = LEFT_ALONE.get(case.status)
            images = list(case.images.all())
            if reason is None and images and all_scored_by(images, version):
                reason = f"already scored by {version}"
            if reason is not None:
                skipped += 1
                self.stdout.write(f"case {case.pk}: left alone ({reason})")
                continue
            # The status is checked again on the locked row: a case answered since it was read here is left alone.
            if not dry_run and case_reanalyse(case=case, actor=None, unless_status_in=tuple(LEFT_ALONE)) is None:
                skipped += 1
                self.stdout.write(f"case {case.pk}: left alone (moved on meanwhile)")
                continue
            queued += 1
            self.stdout.write(f"case {case.pk}: {'would be ' if dry_run else ''}queued ({len(images)} photos)")
        verb = "would be queued" if dry_run else "queued"
        self.stdout.write(self.style.SUCCESS(f"{queued} cases {verb} for {version}, {skipped} left alone"))


def all_scored_by(images, version: str) -> bool:
    return all(any(p.model_version == version for p in image.predictions.all()) for image in images)
