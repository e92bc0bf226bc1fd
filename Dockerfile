# Build the wheel (and the dependencies' wheels) in one stage; install only those in the final image.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md bot.py ./
COPY cogs ./cogs
COPY services ./services
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HTTP_HOST=0.0.0.0 HTTP_PORT=8080
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl \
    && rm -rf /wheels \
    && useradd --create-home --uid 10001 retouch \
    && mkdir -p /app/data && chown retouch:retouch /app/data
WORKDIR /app
USER retouch
# The SQLite store (DATABASE_URL=sqlite:///data/retouch.db) lives here; mount it to keep quota and settings.
VOLUME ["/app/data"]
EXPOSE 8080
# SIGTERM starts the shutdown drain (bot.py's SHUTDOWN_GRACE_SECONDS); give it time with stop_grace_period.
STOPSIGNAL SIGTERM
# Ready: every shard connected and the database answering. No curl in a slim image: Python asks.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('HTTP_PORT', '8080') + '/readyz', timeout=4)"]
# `docker compose run --rm bot check` checks the configuration; `sync` forces the global command sync.
ENTRYPOINT ["python", "-m", "bot"]
CMD ["run"]
