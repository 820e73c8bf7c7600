# syntax=docker/dockerfile:1.7
# The notifier service. Build from the repository root:
#   docker build -f deploy/docker/notifier.Dockerfile -t ppe/notifier .
# Run: python -m services.notifier.main on $NOTIFIER_PORT (8082); GET /healthz is the health check.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# --- build: resolve and install the pinned dependency set into a venv -----------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY requirements.txt constraints.txt ./
RUN pip install -r requirements.txt -c constraints.txt

# --- runtime: the venv and the source, nothing else; runs as an unprivileged user -----------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    NOTIFIER_HOST=0.0.0.0 \
    NOTIFIER_PORT=8082
RUN groupadd --system --gid 10001 ppe \
 && useradd --system --uid 10001 --gid ppe --home-dir /app --no-create-home --shell /usr/sbin/nologin ppe
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# Every image carries all of shared/, services/ and migrations/, so any of them can run the migrations.
COPY alembic.ini ./
COPY shared/ shared/
COPY migrations/ migrations/
COPY services/ services/
COPY deploy/docker/healthcheck.py /opt/ppe/healthcheck.py
USER ppe
EXPOSE 8082
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "/opt/ppe/healthcheck.py", "notifier"]
STOPSIGNAL SIGTERM
CMD ["python", "-m", "services.notifier.main"]
