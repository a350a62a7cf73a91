# leadmgmt production image: one image for web (gunicorn), Celery worker, beat and migrations.
# Build: docker build -t leadmgmt .   Run: see docker-compose.yml and README.md ("Production").
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    # The app is run from /app (templates/ and staticfiles/ live next to the packages).
    PYTHONPATH=/app \
    DJANGO_SETTINGS_MODULE=leadmgmt.settings \
    LEADMGMT_PRODUCTION=1

RUN groupadd --system app && useradd --system --gid app --create-home --home-dir /home/app app

WORKDIR /app
COPY . /app
RUN pip install /app \
    # settings require these URLs; collectstatic only needs them to parse, nothing is contacted.
    && DATABASE_URL=postgres://build@localhost/build REDIS_URL=redis://localhost:6379/0 \
       DJANGO_SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput -v 0 \
    && chown -R app:app /app/staticfiles

USER app
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"
# WEB_CONCURRENCY (gunicorn workers) and FORWARDED_ALLOW_IPS (the proxies whose X-Forwarded-Proto
# gunicorn believes; default 127.0.0.1, set it to your TLS proxy's address) are read by gunicorn itself.
ENV FORWARDED_ALLOW_IPS=127.0.0.1
CMD ["gunicorn", "leadmgmt.wsgi", "--bind", "0.0.0.0:8000", "--threads", "4", "--access-logfile", "-", "--error-logfile", "-"]
