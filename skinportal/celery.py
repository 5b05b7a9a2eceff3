"""The Celery app: configured from Django settings (``CELERY_`` namespace); queues ``inference`` and ``notifications``.

    celery -A skinportal worker -Q inference     # scores images; loads the model once per pool process
    celery -A skinportal worker -Q notifications # emails notifications; returns expired referral claims
    celery -A skinportal beat                    # runs the sweeper (analysis.services.analysis_sweep),
                                                 # the referral of cases with no readable photo,
                                                 # the field alerts and the orphaned-file cleanup

Serialisation, acks_late, reject-on-worker-lost, prefetch and time limits are Django
settings (skinportal/settings/base.py); this module adds routing, the beat schedule, the
start-up refusal of demo accounts under production settings and the hook that loads the
model in each worker process after the fork.

Without DJANGO_SETTINGS_MODULE the worker uses the local (development) settings, as
manage.py does; the Docker image sets the production settings.
"""

from __future__ import annotations

import logging
import os

from celery import Celery
from celery.schedules import crontab
from celery.signals import worker_init, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "skinportal.settings.local")

logger = logging.getLogger(__name__)

INFERENCE_QUEUE = "inference"
# Notification emails and the referral workflow's housekeeping: light work that must never
# wait behind, or hold up, image analysis.
NOTIFICATIONS_QUEUE = "notifications"
ORPHAN_SWEEP_SECONDS = 60 * 60
# Cases waiting too long for a photo the model can read are referred (analysis/safety_net.py).
UNREADABLE_SWEEP_SECONDS = 10 * 60
# The model in the field (monitoring/alerts.py): alerts to administrators, each sent once.
FIELD_ALERTS_SECONDS = 60 * 60
# Follow-ups due are notified once a day, in the morning (CELERY_TIMEZONE); idempotent, so a
# run that is repeated or late notifies nobody twice.
FOLLOW_UPS_HOUR = 7
FOLLOW_UPS_EXPIRES = 12 * 60 * 60

app = Celery("skinportal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_routes = {
    "inference.*": {"queue": INFERENCE_QUEUE},
    "notifications.*": {"queue": NOTIFICATIONS_QUEUE},
    "triage.*": {"queue": NOTIFICATIONS_QUEUE},
}
# Loading the model in a fresh pool process takes a moment; the default 4 s is tight on a busy machine.
app.conf.worker_proc_alive_timeout = 60
app.autodiscover_tasks()


@app.on_after_configure.connect
def _schedule_sweeper(sender: Celery, **kwargs) -> None:
    """Beat sends the sweeper every few seconds; a lost or never-sent message costs a delay, not a case."""
    from django.conf import settings

    every = settings.SKINPORTAL_ANALYSIS_SWEEP_SECONDS
    # A sweep nobody picked up in time is superseded by the next one.
    sender.add_periodic_task(
        every, sender.signature("inference.sweep"), name="inference-sweep", queue=INFERENCE_QUEUE, expires=every
    )
    # Files stored by a transaction that was later rolled back (diagnosis.services.case_submit).
    sender.add_periodic_task(
        ORPHAN_SWEEP_SECONDS,
        sender.signature("inference.orphaned_files_delete"),
        name="orphaned-files-delete",
        queue=INFERENCE_QUEUE,
        expires=ORPHAN_SWEEP_SECONDS,
    )
    # Referrals whose claim lease ran out go back to the queue (triage.services.referral_claims_expire).
    claims_every = settings.SKINPORTAL_REFERRAL_SWEEP_SECONDS
    sender.add_periodic_task(
        claims_every,
        sender.signature("triage.claims_expire"),
        name="referral-claims-expire",
        queue=NOTIFICATIONS_QUEUE,
        expires=claims_every,
    )
    # Cases whose photos were all turned back and no usable one came in time: to a specialist.
    sender.add_periodic_task(
        UNREADABLE_SWEEP_SECONDS,
        sender.signature("inference.unreadable_cases_refer"),
        name="unreadable-cases-refer",
        queue=INFERENCE_QUEUE,
        expires=UNREADABLE_SWEEP_SECONDS,
    )
    # Field sensitivity and the turned-back share checked against their alert levels.
    sender.add_periodic_task(
        FIELD_ALERTS_SECONDS,
        sender.signature("notifications.field_alerts"),
        name="field-alerts",
        queue=NOTIFICATIONS_QUEUE,
        expires=FIELD_ALERTS_SECONDS,
    )
    # Answers kept for resent case uploads, once their 24 hours are over.
    sender.add_periodic_task(
        ORPHAN_SWEEP_SECONDS,
        sender.signature("inference.idempotency_records_expired_delete"),
        name="idempotency-records-expired-delete",
        queue=INFERENCE_QUEUE,
        expires=ORPHAN_SWEEP_SECONDS,
    )

    # Expired API tokens: the request checks only the token it presents (accounts/authentication.py).
    sender.add_periodic_task(
        ORPHAN_SWEEP_SECONDS,
        sender.signature("notifications.tokens_expired_delete"),
        name="tokens-expired-delete",
        queue=NOTIFICATIONS_QUEUE,
        expires=ORPHAN_SWEEP_SECONDS,
    )

    # Once a day: clinic staff hear of each lesion follow-up that came due (continuity.services).
    sender.add_periodic_task(
        crontab(hour=FOLLOW_UPS_HOUR, minute=0),
        sender.signature("notifications.follow_ups_due"),
        name="follow-ups-due",
        queue=NOTIFICATIONS_QUEUE,
        expires=FOLLOW_UPS_EXPIRES,
    )


@worker_init.connect
def refuse_demo_users_at_worker_start(**kwargs) -> None:
    """Under production settings a worker does not start while demo accounts exist (as wsgi.py).

    Celery logs and swallows an ``Exception`` raised by a signal handler, so the refusal is a
    ``SystemExit``, which stops the worker before it consumes anything.
    """
    from django.core.exceptions import ImproperlyConfigured

    from accounts.checks import refuse_demo_users

    try:
        refuse_demo_users()
    except ImproperlyConfigured as exc:
        logger.critical("worker refused to start: %s", exc)
        raise SystemExit(f"worker refused to start: {exc}") from exc


# Set in the worker's main process before its pool forks: does this worker consume the inference queue?
_consumes_inference = True


@worker_init.connect
def note_whether_worker_serves_the_model(sender=None, **kwargs) -> None:
    """A worker started for the notifications queue alone never loads the model."""
    global _consumes_inference
    try:
        queues = set(sender.app.amqp.queues.consume_from or ())
    except AttributeError:
        return
    if queues:
        _consumes_inference = INFERENCE_QUEUE in queues


@worker_process_init.connect
def load_model_in_worker_process(**kwargs) -> None:
    """Load the predictor once in every pool process, after the fork, never in the parent.

    A model that cannot load is logged, not raised: the process stays up, each task tries
    the load again and records the failure on the image, and /readyz reports it.
    """
    if not _consumes_inference:
        return
    from inference.artifact import ArtifactError
    from inference.predictor import get_predictor

    try:
        predictor = get_predictor()
    except ArtifactError:
        logger.exception("the model could not be loaded in worker process %s", os.getpid())
        return
    logger.info("worker process %s loaded model %s", os.getpid(), predictor.model_version)
