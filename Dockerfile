FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY bot.py ./
COPY cogs ./cogs
COPY services ./services
RUN pip install --no-cache-dir . \
    && useradd --create-home --uid 10001 retouch \
    && mkdir -p /app/data && chown retouch:retouch /app/data

USER retouch
# The SQLite store (DATABASE_URL=sqlite:///data/retouch.db) lives here; mount it to keep quota and settings.
VOLUME ["/app/data"]
CMD ["python", "bot.py"]
