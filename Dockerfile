# One non-root image for every service: the API, the job worker (it trains: the `train` extra),
# and the Ray head and nodes (`ray` extra; a Ray job's entrypoint `scaling-service train` runs in
# this image). PyPI's torch for Linux x86-64 carries CUDA, so the same image trains on the host's
# GPUs (compose: `gpus: all` on the worker or Ray node) or on its CPUs.
FROM python:3.11-slim AS build
ARG EXTRAS=train,ray
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
RUN pip install --no-cache-dir --prefix=/install ".[${EXTRAS}]"

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY --from=build /install /usr/local
WORKDIR /app
# Migrations are read from the source tree next to the package (service/db.py: MIGRATIONS_DIR).
COPY migrations ./migrations
COPY alembic.ini ./
COPY service ./service
RUN useradd --create-home --uid 10001 scaling && mkdir -p /app/var && chown scaling /app/var
USER scaling
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
CMD ["scaling-service", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
