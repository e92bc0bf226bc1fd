# Base images by exact tag (CPython 3.11.14 on Debian 12), the dependencies exactly as requirements.txt
# locks them (pip refuses a file whose hash differs). One stage builds every wheel; the final image installs
# only those, offline.
FROM python:3.11.14-slim-bookworm AS build
WORKDIR /src
COPY requirements.txt ./
RUN pip wheel --no-cache-dir --require-hashes --no-deps --wheel-dir /wheels -r requirements.txt
COPY pyproject.toml README.md LICENSE bot.py ./
COPY cogs ./cogs
COPY services ./services
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11.14-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HTTP_HOST=0.0.0.0 HTTP_PORT=8080
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --no-deps /wheels/*.whl \
    && rm -rf /wheels \
    && useradd --create-home --uid 10001 retouch \
    && mkdir -p /app/data && chown retouch:retouch /app/data
WORKDIR /app
USER retouch
# Without DATABASE_URL the SQLite store is /app/data/retouch.db: mount a volume there (`-v retouch-data:/app/data`)
# to keep quota and settings. No VOLUME line: the compose stack keeps its data in PostgreSQL, and a VOLUME would
# give every container an anonymous volume nobody uses or removes.
EXPOSE 8080 8081
# SIGTERM starts the shutdown drain (bot.py's SHUTDOWN_GRACE_SECONDS); give it time with stop_grace_period.
STOPSIGNAL SIGTERM
# Ready: every shard connected, the database answering, the IONOS token accepted. No curl in a slim image:
# Python asks. HTTP_PORT=0 turns the endpoint off: nothing to ask, which the check says (and passes).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('HTTP_PORT') or '8080'; port == '0' and sys.exit(print('HTTP_PORT=0: no /readyz to ask, so readiness is not checked; set HTTP_PORT to check it')); urllib.request.urlopen('http://127.0.0.1:' + port + '/readyz', timeout=4)"]
# `docker compose run --rm bot check` checks the configuration; `sync` forces the global command sync.
ENTRYPOINT ["python", "-m", "bot"]
CMD ["run"]
