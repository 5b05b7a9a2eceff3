"""Skin Portal: teledermatology for rural clinics."""

# Load the Celery app with Django so that shared tasks bind to it.
try:
    from .celery import app as celery_app
except ImportError:  # the Celery app module is optional for the web process
    celery_app = None

__all__ = ["celery_app"]
