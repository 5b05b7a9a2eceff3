"""ASGI entry point."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "skinportal.settings.production")

application = get_asgi_application()

from accounts.checks import refuse_demo_users  # noqa: E402

refuse_demo_users()
