# The portal image: web, worker and beat run from it with different commands.
# No TensorFlow: the worker serves the model with LiteRT.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    DJANGO_SETTINGS_MODULE=skinportal.settings.production

WORKDIR /app
# Pango and a font for WeasyPrint (the referral letter as PDF).
RUN apt-get update && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*
COPY requirements.txt .
# requirements.txt is locked with hashes (bin/lock): exactly what CI tested, verified.
RUN pip install --no-cache-dir --require-hashes -r requirements.txt

COPY . .
RUN DJANGO_SECRET_KEY="$(python -c "import secrets; print(secrets.token_urlsafe(64))")" \
    DJANGO_ALLOWED_HOSTS=localhost python manage.py collectstatic --noinput

RUN useradd --create-home --uid 1000 portal && mkdir -p /data/media && chown -R portal /data
USER portal
EXPOSE 8000
# One process per core, 8 threads each (skinportal/gunicorn.py; WEB_CONCURRENCY, GUNICORN_THREADS).
CMD ["gunicorn", "-c", "python:skinportal.gunicorn", "skinportal.wsgi:application"]
