# Base images by exact tag (CPython 3.11.14 on Debian 12), the dependencies exactly as requirements.txt
# locks them (pip refuses a file whose hash differs). One stage builds every wheel; the final image installs
# only those, offline.
FROM python:3.11.14-slim-bookworm AS build
WORKDIR /src
COPY requirements.txt ./
RUN pip wheel --no-cache-dir --require-hashes --no-deps --wheel-dir /wheels -r requirements.txt
COPY pyproject.toml README.md bot.py ./
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
# The SQLite store (DATABASE_URL=sqlite:///data/retouch.db) lives here; mount it to keep quota and settings.
VOLUME ["/app/data"]
EXPOSE 8080 8081
# SIGTERM starts the shutdown drain (bot.py's SHUTDOWN_GRACE_SECONDS); give it time with stop_grace_period.
STOPSIGNAL SIGTERM
# Ready: every shard connected and the database answering. No curl in a slim image: Python asks.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('HTTP_PORT', '8080') + '/readyz', timeout=4)"]
# `docker compose run --rm bot check` checks the configuration; `sync` forces the global command sync.
ENTRYPOINT ["python", "-m", "bot"]
CMD ["run"]
