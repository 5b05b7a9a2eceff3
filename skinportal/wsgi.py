"""WSGI entry point (gunicorn skinportal.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "skinportal.settings.production")

application = get_wsgi_application()

# Management commands run this as a system check; gunicorn does not, so check here too.
from accounts.checks import refuse_demo_users  # noqa: E402

refuse_demo_users()
