"""The inference side of a case: claim, score, record, sum up, sweep, analyse again, withdraw a photo.

How nothing is lost or scored twice:

- A photo is queued for analysis only after its row is committed (``transaction.on_commit``
  in ``case_submit``); if the broker is down the case is still saved and the sweeper sends
  the message later.
- A worker *claims* a photo with a conditional ``update()`` (queued -> analysing) and goes
  on only if it changed exactly one row, so a duplicate message does nothing.
- Results are stored under the unique constraint (image, model_version): a task that runs
  twice (redelivered after a killed worker) cannot write a second prediction.
- The sweeper (``analysis_sweep``, run by beat) re-sends photos left queued or analysing for
  too long, fails photos that used up their attempts, and settles cases whose photos are
  all finished, so every lost message or crashed worker costs a delay, never a case.

Timings are settings read from the environment (skinportal/settings/base.py, docs/settings.md):
``SKINPORTAL_ANALYSIS_REQUEUE_SECONDS`` (60), ``SKINPORTAL_ANALYSIS_STALE_SECONDS`` (120),
``SKINPORTAL_ANALYSIS_MAX_ATTEMPTS`` (8), ``SKINPORTAL_ANALYSIS_SWEEP_SECONDS`` (30, skinportal/celery.py).
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import F, OuterRef, Q, Subquery
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext as _

from accounts.permissions import can_submit_clinical_records
from accounts.services import audit_record
from diagnosis import dispatch, polling
from diagnosis.models import Case, LesionImage, Prediction
from diagnosis.selectors import case_list_for
from diagnosis.signals import case_refer, case_result_written
from diagnosis.transitions import CASE_AWAITING_RESULT, IN_SPECIALIST_HANDS, PENDING, case_transition
from inference import serving
from inference.serving import CLASSES, GATE_OK, HIGH, ArtifactError, ImageResult, case_risk
from skinportal.text import clean_text

from . import safety_net

logger = logging.getLogger(__name__)

Status = LesionImage.AnalysisStatus
# Statuses in which a new result (photos added for a specialist, a new model version) updates
# the case's risk and summary without moving the case. Answered cases keep the result they were answered on.
CASE_RESULT_REFRESHED = (Case.Status.REFERRED, Case.Status.UNDER_REVIEW, Case.Status.INFORMATION_REQUESTED)
# Melanoma over its threshold is a suspected cancer: referred as urgent; other flags as routine.
URGENT_CLASSES = frozenset({"mel"})

# What clinic users read on a failed photo (the API and the web page show analysis_error).
# Fixed wording only: exception text can carry file paths and other server internals, so it
# goes to the server log with the image id instead.
MODEL_UNAVAILABLE = gettext_noop(
    "The analysis model could not be loaded on the analysis server. Support has been alerted in the "
    "server log; use “Analyse again” once it is fixed."
)
PHOTO_MISSING = gettext_noop("The stored photo file is missing, so it cannot be analysed.")
PHOTO_UNREADABLE = gettext_noop("This photo could not be read as an image.")
PHOTO_NOT_SCORED = gettext_noop("The analysis model could not score this photo.")


class PermanentAnalysisError(Exception):
    """This photo cannot be scored however often we try; the message, one of the fixed ones above, is shown."""


def requeue_after() -> timedelta:
    """A queued photo nobody has started on for this long is sent to the queue again."""
    return timedelta(seconds=settings.SKINPORTAL_ANALYSIS_REQUEUE_SECONDS)


def stale_after() -> timedelta:
    """A photo in analysis this long was abandoned by its worker; longer than the task's hard time limit."""
    return timedelta(seconds=settings.SKINPORTAL_ANALYSIS_STALE_SECONDS)


def max_attempts() -> int:
    return settings.SKINPORTAL_ANALYSIS_MAX_ATTEMPTS


# --- One photo ------------------------------------------------------------------------------
def image_analysis_claim(*, image_id: int, resume: bool = False, model_version: str = "") -> LesionImage | None:
    """Take a photo for scoring with a conditional update; None when another run has it or it is finished.

    ``resume``: this message may take over a photo left in analysis by its own earlier run
    (a retry, or a redelivery after the worker died). Otherwise only a photo abandoned for
    longer than ``stale_after()`` can be taken over. A photo that used up its attempts is
    failed instead of claimed.

    ``model_version``: the photo comes with the id and artifact hash of its prediction by that
    version, if it has one (``served_prediction_id``, ``served_prediction_sha256``), read in the
    same query.
    """
    now = timezone.now()
    claimable = Q(analysis_status=Status.QUEUED) | Q(
        analysis_status=Status.ANALYSING, analysis_updated_at__lt=now - stale_after()
    )
    if resume:
        claimable |= Q(analysis_status=Status.ANALYSING)
    candidates = LesionImage.objects.filter(claimable, pk=image_id)
    claimed = candidates.filter(analysis_attempts__lt=max_attempts()).update(
        analysis_status=Status.ANALYSING,
        analysis_attempts=F("analysis_attempts") + 1,
        analysis_started_at=now,
        analysis_updated_at=now,
        analysis_error="",
    )
    if claimed != 1:
        if _fail(candidates.filter(analysis_attempts__gte=max_attempts()), reason=_gave_up()):
            case_result_update(case_id=LesionImage.objects.get(pk=image_id).case_id)
        return None
    # The case's patient and clinic come along: the audit of the case's transition names the clinic.
    claimed_image = LesionImage.objects.select_related("case__patient__clinic")
    if model_version:
        served = Prediction.objects.filter(image=OuterRef("pk"), model_version=model_version)
        claimed_image = claimed_image.annotate(
            served_prediction_id=Subquery(served.values("pk")[:1]),
            served_prediction_sha256=Subquery(served.values("artifact_sha256")[:1]),
        )
    image = claimed_image.get(pk=image_id)
    image.served_prediction_version = model_version
    if image.case.status == Case.Status.SUBMITTED:
        try:
            case_transition(case=image.case, to_status=Case.Status.ANALYSING)
        except ValidationError:  # another photo of the case moved it first
            logger.debug("case %s already moved on", image.case_id, exc_info=True)
    return image


def _gave_up() -> str:
    return f"The photo could not be analysed after {max_attempts()} attempts. Use “Analyse again” to retry."


def image_analysis_release(*, image_id: int) -> None:
    """Hand a claimed photo back to the queue after a transient error (best effort)."""
    try:
        LesionImage.objects.filter(pk=image_id, analysis_status=Status.ANALYSING).update(
            analysis_status=Status.QUEUED, analysis_updated_at=timezone.now()
        )
    except Exception:  # the database itself is failing: the sweeper finds the photo later
        logger.warning("could not release image %s", image_id, exc_info=True)


def image_analysis_fail(*, image_id: int, reason: str) -> bool:
    """Mark a pending photo failed with a reason the user sees; False if it was not pending."""
    return _fail(LesionImage.objects.filter(pk=image_id), reason=reason) == 1


def _fail(images, *, reason: str) -> int:
    return images.filter(analysis_status__in=PENDING).update(
        analysis_status=Status.FAILED, analysis_error=reason[:1000], analysis_updated_at=timezone.now()
    )


def _read_photo(image: LesionImage):
    try:
        with image.file.open("rb") as handle:
            data = handle.read()
    except FileNotFoundError as exc:
        logger.error("image %s: the stored file %s is missing", image.pk, image.file.name)
        raise PermanentAnalysisError(PHOTO_MISSING) from exc
    # Other OSErrors (storage briefly unavailable) propagate and are retried.
    try:
        return serving.read_photo(data)
    except Exception as exc:  # any decoder failure: corrupt, truncated, unsupported, too large
        logger.warning("image %s could not be read as an image", image.pk, exc_info=True)
        raise PermanentAnalysisError(PHOTO_UNREADABLE) from exc


def _served_prediction(image: LesionImage, model_version: str) -> tuple[bool, str]:
    """(whether the photo has a prediction by this version, its artifact hash): from the claim's
    query when it looked for this version, else one query."""
    if getattr(image, "served_prediction_version", "") == model_version:
        return image.served_prediction_id is not None, image.served_prediction_sha256 or ""
    found = Prediction.objects.filter(image=image, model_version=model_version).first()
    return found is not None, found.artifact_sha256 if found is not None else ""


def _serving_predictor(*, image_id: int | None = None):
    try:
        return serving.served_model()
    except ArtifactError as exc:
        logger.error("the model cannot be loaded (image %s): %s", image_id, exc)
        raise PermanentAnalysisError(MODEL_UNAVAILABLE) from exc


def image_analyse(*, image_id: int, resume: bool = False) -> str:
    """Score one photo with the served model and store the result; safe to run any number of times.

    Returns what happened: "scored", "already scored", "failed" or "skipped".
    """
    image = image_analysis_claim(image_id=image_id, resume=resume, model_version=serving.served_version())
    if image is None:
        # Finished by an earlier run that died before settling the case? Settle it now.
        finished = LesionImage.objects.filter(pk=image_id).exclude(analysis_status__in=PENDING).first()
        if finished is not None:
            case_result_update(case_id=finished.case_id)
        return "skipped"
    settled: list[bool] = []  # True once the case's result was written with the prediction
    try:
        predictor = _serving_predictor(image_id=image.pk)
        scored, scored_sha256 = _served_prediction(image, predictor.model_version)
        if scored:
            if scored_sha256 and scored_sha256 != predictor.artifact.sha256:
                logger.error(
                    "image %s: model %s now has hash %s, but scored with %s",
                    image.pk,
                    predictor.model_version,
                    predictor.artifact.sha256,
                    scored_sha256,
                )
                raise PermanentAnalysisError(MODEL_UNAVAILABLE)
            outcome = "already scored"
            _mark_done(image)
        else:
            photo = _read_photo(image)
            try:
                reading = serving.read(predictor, photo)
            except (ValueError, RuntimeError) as exc:
                logger.exception("the model could not score image %s", image.pk)
                raise PermanentAnalysisError(PHOTO_NOT_SCORED) from exc
            prediction_record(
                existing_checked=True,  # just looked for, above
                settled=settled,
                image=image,
                model_version=reading.model_version,
                probabilities=reading.probabilities,
                top_class=reading.top_class,
                balanced_class=reading.balanced_class,
                artifact_sha256=reading.artifact_sha256,
                inference_ms=reading.inference_ms,
                heatmap=reading.heatmap_layer,
                gate=reading.gate,
                gate_score=reading.gate_score,
            )
            outcome = "scored"
    except PermanentAnalysisError as exc:
        image_analysis_fail(image_id=image.pk, reason=str(exc))
        outcome = "failed"
    except BaseException:
        image_analysis_release(image_id=image.pk)
        raise
    if not settled:
        case_result_update(case_id=image.case_id)
    return outcome


def _mark_done(image: LesionImage) -> None:
    # Only the run that holds the claim finishes the photo; a photo sent back to the queue
    # meanwhile is finished by its next run, which finds this prediction and does no work.
    LesionImage.objects.filter(pk=image.pk, analysis_status=Status.ANALYSING).update(
        analysis_status=Status.DONE, analysis_error="", analysis_updated_at=timezone.now()
    )


def prediction_record(
    *,
    image: LesionImage,
    model_version: str,
    probabilities: dict[str, float],
    top_class: str,
    inference_ms: float,
    heatmap: bytes | None = None,  # the overlay layer (serving.Reading.heatmap_layer), or older kinds
    balanced_class: str = "",
    artifact_sha256: str = "",
    gate: str = GATE_OK,
    gate_score: float | None = None,
    existing_checked: bool = False,
    settled: list[bool] | None = None,
) -> Prediction:
    """Store a photo's result for one model version and mark the photo done.

    A second call for the same (image, model_version) writes nothing and returns the first
    prediction: the unique constraint decides, so concurrent duplicates are safe too.
    ``existing_checked``: the caller has just looked for that first prediction (image_analyse
    does, to compare the artifact's hash), so it is not looked for twice. ``settled``: write
    the case's result in the same transaction where possible (see ``_prediction_write``).
    """
    existing = None
    if not existing_checked:
        existing = Prediction.objects.filter(image=image, model_version=model_version).first()
    if existing is not None:
        _check_prediction(probabilities, top_class, balanced_class)
        _mark_done(image)
        return existing
    return _prediction_write(
        image=image,
        model_version=model_version,
        probabilities=probabilities,
        top_class=top_class,
        inference_ms=inference_ms,
        heatmap=heatmap,
        balanced_class=balanced_class,
        artifact_sha256=artifact_sha256,
        gate=gate,
        gate_score=gate_score,
        settled=settled,
    )


def _check_prediction(probabilities: dict[str, float], top_class: str, balanced_class: str) -> None:
    if set(probabilities) != set(CLASSES) or top_class not in CLASSES or balanced_class not in ("", *CLASSES):
        raise ValueError(f"a prediction needs probabilities for exactly {CLASSES}")


def _prediction_write(
    *,
    image: LesionImage,
    model_version: str,
    probabilities: dict[str, float],
    top_class: str,
    inference_ms: float,
    heatmap: bytes | None = None,
    balanced_class: str = "",
    artifact_sha256: str = "",
    gate: str = GATE_OK,
    gate_score: float | None = None,
    settled: list[bool] | None = None,
) -> Prediction:
    """prediction_record once the caller has looked for an earlier prediction (image_analyse
    does, to compare the artifact's hash): the unique constraint still settles a race.

    ``settled``: a list to which True is appended when the case's result was written in the
    same transaction as the prediction (``case_result_update``: one commit instead of two);
    otherwise the caller settles the case itself.
    """
    _check_prediction(probabilities, top_class, balanced_class)
    fields = dict(
        image=image,
        model_version=model_version,
        probabilities={name: float(probabilities[name]) for name in CLASSES},
        top_class=top_class,
        balanced_class=balanced_class,
        artifact_sha256=artifact_sha256,
        inference_ms=float(inference_ms),
        gate=gate,
        gate_score=None if gate_score is None else float(gate_score),
    )
    prediction = Prediction(**fields)
    if heatmap:
        # The file's name says what it is (Prediction.heatmap_is_layer): a layer over the photo,
        # as an indexed PNG (or WebP, from earlier versions), or a photo with the map blended in.
        if heatmap[:4] == b"RIFF":
            name = "heatmap.webp"
        else:
            name = "layer.png" if serving.heatmap_is_layer(heatmap) else "heatmap.png"
        prediction.heatmap.save(name, ContentFile(heatmap), save=False)
    if settled is not None:
        try:
            with transaction.atomic():
                # The case is locked before its photo, the order case_reanalyse takes them in.
                list(Case.objects.select_for_update().filter(pk=image.case_id).values_list("pk", flat=True))
                prediction.full_clean(exclude=["image"], validate_constraints=False)
                prediction.save()
                _mark_done(image)
                case_result_update(case_id=image.case_id, savepoint=False)
            settled.append(True)
            return prediction
        except Exception:
            # A duplicate prediction, or writing the case's result failed: all of it was rolled
            # back. The prediction is stored on its own below, as it always was, and the caller
            # settles the case afterwards (meeting any error of its own there, as before).
            logger.info("image %s: prediction and case result not written together", image.pk, exc_info=True)
            prediction = Prediction(**fields, heatmap=prediction.heatmap.name or None)
    try:
        with transaction.atomic():
            # The image is the row in hand (claimed above): no query to prove it exists.
            prediction.full_clean(exclude=["image"], validate_constraints=False)
            prediction.save()
            _mark_done(image)
    except IntegrityError:
        if prediction.heatmap:
            prediction.heatmap.delete(save=False)
        _mark_done(image)
        return Prediction.objects.get(image=image, model_version=model_version)
    except BaseException:
        if prediction.heatmap:
            prediction.heatmap.delete(save=False)
        raise
    return prediction


# --- The case -------------------------------------------------------------------------------
def case_result_update(*, case_id: int, photo_withdrawn: bool = False, savepoint: bool = True) -> Case | None:
    """Once every photo is finished, write the case's risk and summary, and move it on if it awaits them.

    A case awaiting its result (submitted or analysing) becomes analysed, referred (high risk)
    or failed (no photo could be scored). A case already referred (by its checklist or by the
    clinic) and waiting for a specialist gets the new risk and summary but keeps its status;
    reviewed and closed cases are left as they were answered, unless a photo was withdrawn
    from them (``photo_withdrawn``): then the result is written again without it, its old
    values audited, and the status kept. Idempotent.

    ``savepoint=False``: the caller's transaction holds this write (the worker writes the
    prediction and the case's result in one) and rolls back as a whole if it fails.
    """
    refreshed = CASE_RESULT_REFRESHED + ((Case.Status.REVIEWED, Case.Status.CLOSED) if photo_withdrawn else ())
    with transaction.atomic(savepoint=savepoint):
        # Requests waiting for this case's result (a long poll) learn of the photo's outcome once
        # it is committed, whether or not it completes the case.
        transaction.on_commit(lambda: polling.result_changed(case_id))
        # The patient and clinic come along for the audit of the transition; only the case is locked.
        case = Case.objects.select_for_update(of=("self",)).select_related("patient__clinic").filter(pk=case_id).first()
        if case is None or case.status not in CASE_AWAITING_RESULT + refreshed:
            return case
        images = list(case.images.prefetch_related("predictions"))
        if not images or any(image.analysis_status in PENDING for image in images):
            return case
        results, versions, turned_back_at = [], [], []
        for number, image in enumerate(images, start=1):
            prediction = image.current_prediction if image.analysis_status == Status.DONE else None
            try:
                thresholds = _scoring_thresholds(prediction) if prediction else None
            except PermanentAnalysisError as exc:
                if case.status not in CASE_AWAITING_RESULT:
                    raise  # a result a specialist may have read is never rewritten without its photo
                # The artifact that scored the photo is gone or changed since: its probabilities
                # cannot be read against their own thresholds, and never against another model's.
                # The photo has no result, with the reason, and the case is settled without it
                # (a case left waiting for that artifact would wait for ever).
                LesionImage.objects.filter(pk=image.pk).update(
                    analysis_status=Status.FAILED, analysis_error=str(exc), analysis_updated_at=timezone.now()
                )
                image.analysis_status, image.analysis_error = Status.FAILED, str(exc)
                prediction = thresholds = None
            if prediction is not None and prediction.rejected:
                # Turned back by the photo gate: no result, but a photo of skin whose probabilities reach
                # a threshold still refers the case (inference/risk.py); a photo not of skin never does.
                results.append(ImageResult(number, prediction.probabilities, thresholds, turned_back=prediction.gate))
                turned_back_at.append(image.created_at)
            else:
                results.append(ImageResult(number, prediction.probabilities if prediction else None, thresholds))
            if prediction:
                versions.append(prediction.model_version)
        assessment = case_risk(results, thresholds={}, model_versions=versions)
        now = timezone.now()
        changes = {
            "risk": assessment.level,
            "summary": assessment.summary,
            "summary_facts": list(assessment.facts),
            "updated_at": now,
        }
        # Nothing falls through (safety_net.py): a case with no result because its photos were
        # turned back waits for a new photo; a retake turned back again refers it.
        unreadable = False
        if assessment.level:
            changes["analysed_at"] = now
            changes["awaiting_photo_since"] = None
        elif turned_back_at and case.status in CASE_AWAITING_RESULT:
            unreadable = safety_net.retake_turned_back(case, turned_back_at)
            changes["awaiting_photo_since"] = case.awaiting_photo_since or now
        elif case.status in CASE_AWAITING_RESULT:
            # Every photo failed for a technical reason (a file that cannot be read, the model
            # unavailable, attempts used up): no result either, so the case waits for a photo
            # the same way and reaches a specialist when nobody adds one.
            changes["awaiting_photo_since"] = case.awaiting_photo_since or now
        if case.status in refreshed and (case.risk, case.summary) != (changes["risk"], changes["summary"]):
            # A specialist may already have read the old result: keep it in the audit log.
            audit_record(
                actor=None,
                action="case.result_refresh",
                obj=case,
                details={
                    "status": case.status,
                    "old": {"risk": case.risk, "summary": case.summary, "summary_facts": case.summary_facts},
                    "new": {"risk": changes["risk"], "summary": changes["summary"]},
                    "model_versions": sorted(set(versions)),
                    **({"photo_withdrawn": True} if photo_withdrawn else {}),
                },
            )
        Case.objects.filter(pk=case.pk).update(**changes)
        for field, value in changes.items():
            setattr(case, field, value)
        if case.status in CASE_AWAITING_RESULT:
            audit_rate = None
            if not assessment.level:
                to_status = Case.Status.REFERRED if unreadable else Case.Status.FAILED
            elif assessment.level == HIGH:
                to_status = Case.Status.REFERRED
            else:
                to_status = Case.Status.ANALYSED
                # The audit sample: a share of the cases the model did not refer goes to a specialist.
                rate = safety_net.audit_sample_rate()
                if safety_net.audit_selects(case.pk, rate):
                    to_status, audit_rate = Case.Status.REFERRED, rate
            details = {"risk": assessment.level, "model_versions": sorted(set(versions))}
            if unreadable:
                safety_net.unreadable_refer(case, details=details)
            elif audit_rate is not None:
                safety_net.audit_refer(case, rate=audit_rate, details=details)
            elif to_status == Case.Status.REFERRED:
                flagged = {code for _, code in assessment.flagged}
                case_refer(
                    case,
                    source="model",
                    urgency="urgent" if flagged & URGENT_CLASSES else "routine",
                    reason=assessment.summary.split(". ")[0] + ".",
                    details=details,
                )
            else:
                case_transition(case=case, to_status=to_status, details=details)
        # ``urgent``: the result flags a class that is referred urgently (melanoma); triage raises a
        # referral the case already has, made routine before this result, to urgent.
        urgent = bool({code for _, code in assessment.flagged} & URGENT_CLASSES)
        case_result_written.send(sender=Case, case=case, urgent=urgent)
    return case


def _scoring_thresholds(prediction: Prediction) -> dict[str, float]:
    """The referral thresholds of the artifact that scored the prediction, not of the one loaded now.

    A prediction that recorded its artifact's hash is settled only with exactly that artifact.
    """
    try:
        return serving.thresholds_of(prediction.model_version, prediction.artifact_sha256)
    except ArtifactError as exc:
        logger.error("image %s: cannot read the thresholds of its model: %s", prediction.image_id, exc)
        raise PermanentAnalysisError(MODEL_UNAVAILABLE) from exc


def case_reanalyse(
    *, case: Case, actor, request: HttpRequest | None = None, unless_status_in: Collection[str] = ()
) -> Case | None:
    """Analyse a case again ("Analyse again", or ``manage.py reanalyse`` with no actor).

    Every photo goes back to the queue with fresh attempts. Photos already scored by the
    served model version are not scored again (same artifact, same numbers); the others,
    including failed ones, are. Earlier predictions are kept.

    Clinic staff can do this only while the case is theirs (analysed or failed): a case in a
    specialist's hands or answered is refused. Without an actor (a new model deployed), such a
    case is scored by the new version too, as a new prediction that does not change its status.

    ``unless_status_in``: statuses in which the case is left alone, checked on the locked row (a
    case a specialist answered since the caller looked at it): then nothing is done and None returned.
    """
    if actor is not None:
        if not can_submit_clinical_records(actor) or not case_list_for(user=actor).filter(pk=case.pk).exists():
            raise PermissionDenied(gettext("You cannot analyse this case again."))
    with transaction.atomic():
        current = Case.objects.select_for_update().get(pk=case.pk)
        if current.status in unless_status_in:
            return None
        keeps_status = current.status in IN_SPECIALIST_HANDS
        if keeps_status and actor is not None:
            raise ValidationError(
                {
                    "status": gettext(
                        "This case is with a specialist or has been answered, so it cannot be analysed again."
                    )
                },
                code="invalid_transition",
            )
        now = timezone.now()
        if not keeps_status and current.status not in CASE_AWAITING_RESULT:
            case_transition(case=case, to_status=Case.Status.ANALYSING, actor=actor, request=request)
            Case.objects.filter(pk=case.pk).update(risk="", summary="", summary_facts=[], updated_at=now)
            case.risk, case.summary, case.summary_facts = "", "", []
        count = case.images.update(
            analysis_status=Status.QUEUED,
            analysis_error="",
            analysis_attempts=0,
            analysis_started_at=None,
            analysis_updated_at=now,
        )
        audit_record(
            actor=actor,
            action="case.reanalyse",
            obj=case,
            request=request,
            details={"images": count, "status": current.status, "status_kept": keeps_status},
        )
        transaction.on_commit(lambda: dispatch.case_analysis_enqueue(case_id=case.pk))
    return case


# --- The sweeper ----------------------------------------------------------------------------
def analysis_sweep() -> dict[str, int]:
    """Re-send photos stuck in the queue or abandoned in analysis; settle finished cases.

    Run every ``SKINPORTAL_ANALYSIS_SWEEP_SECONDS`` by beat (task ``inference.sweep``). Safe
    to run at any time and from anywhere: every change is a conditional update.
    """
    now = timezone.now()
    waiting = Q(analysis_status=Status.QUEUED) & (
        Q(analysis_updated_at__lt=now - requeue_after())
        | Q(analysis_updated_at__isnull=True, created_at__lt=now - requeue_after())
    )
    abandoned = Q(analysis_status=Status.ANALYSING, analysis_updated_at__lt=now - stale_after())
    stuck = LesionImage.objects.filter(waiting | abandoned)

    settle: set[int] = set()
    exhausted = list(stuck.filter(analysis_attempts__gte=max_attempts()).values_list("pk", "case_id"))
    for image_id, case_id in exhausted:
        if _fail(stuck.filter(pk=image_id), reason=_gave_up()):
            settle.add(case_id)
    abandoned_ids = list(stuck.filter(abandoned, analysis_attempts__lt=max_attempts()).values_list("pk", flat=True))
    returned = LesionImage.objects.filter(abandoned, pk__in=abandoned_ids).update(analysis_status=Status.QUEUED)
    to_send = list(
        LesionImage.objects.filter(waiting | Q(pk__in=abandoned_ids, analysis_status=Status.QUEUED))
        .filter(analysis_attempts__lt=max_attempts())
        .values_list("pk", flat=True)
    )
    sent = dispatch.image_analysis_enqueue(image_ids=to_send)

    # Cases whose photos are all finished but whose result was never written (the worker
    # died in between); one minute of grace so the sweeper does not race a live worker.
    settle |= set(
        Case.objects.filter(status__in=CASE_AWAITING_RESULT, updated_at__lt=now - requeue_after())
        .exclude(images__analysis_status__in=PENDING)
        .filter(images__isnull=False)
        .values_list("pk", flat=True)
        .distinct()
    )
    for case_id in settle:
        try:
            case_result_update(case_id=case_id)
        except Exception:  # one case must not stop the sweep of the others
            logger.exception("could not settle case %s", case_id)
    counts = {
        "failed": len(exhausted),
        "returned": returned,
        "sent": sent,
        "to_send": len(to_send),
        "cases": len(settle),
    }
    if any(counts.values()):
        logger.info("analysis sweep: %s", counts)
    return counts


def image_withdraw(*, actor, image: LesionImage, reason: str, request: HttpRequest | None = None) -> LesionImage:
    """Withdraw a photo of a reviewed or closed case: kept with its file and predictions, never
    deleted, but no longer counted on any page, in the API, the letter or the FHIR export. The
    case's risk and summary are written again from its other photos (the old ones audited).
    Administrators only; a case keeps at least one photo."""
    if not getattr(actor, "is_administrator", False):
        raise PermissionDenied(_("Only an administrator can withdraw a photo."))
    reason = clean_text(reason, field="reason", multiline=True)
    if not reason:
        raise ValidationError({"reason": _("Say why the photo is withdrawn.")})
    with transaction.atomic():
        case = Case.objects.select_for_update().get(pk=image.case_id)
        locked = LesionImage.all_objects.select_for_update().get(pk=image.pk)
        if locked.withdrawn_at is not None:
            raise ValidationError(_("This photo is already withdrawn."))
        if case.status not in (Case.Status.REVIEWED, Case.Status.CLOSED):
            raise ValidationError(_("Only a photo of a case a specialist has answered can be withdrawn."))
        if not LesionImage.objects.filter(case=case).exclude(pk=locked.pk).exists():
            raise ValidationError(_("This is the case's last photo; a case keeps at least one."))
        if LesionImage.objects.filter(case=case, analysis_status__in=PENDING).exists():
            # The result is written again once every photo is finished: not before, so not now.
            raise ValidationError(
                _("A photo of this case is still being analysed; withdraw this one once the analysis is finished.")
            )
        now = timezone.now()
        LesionImage.all_objects.filter(pk=locked.pk).update(
            withdrawn_at=now, withdrawn_by=actor, withdrawn_reason=reason
        )
        audit_record(
            actor=actor,
            action="image.withdraw",
            obj=locked,
            request=request,
            details={
                "case": case.pk,
                "reason": reason,
                "predictions": list(Prediction.objects.filter(image=locked).values_list("pk", flat=True)),
                "case_risk": case.risk,
            },
        )
        case_result_update(case_id=case.pk, photo_withdrawn=True)
        locked.refresh_from_db()
    return locked
