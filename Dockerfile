# syntax=docker/dockerfile:1
#
# The isams-sync image: one image, two processes chosen by arguments
# (`serve --host 0.0.0.0 --port 8080` for the webhook ingest, `consume --health-port 8090`
# for the workers; see deploy/). Build from the repository root:
#
#   docker build -t REGISTRY/isams-sync:0.1.0 .
#
# For reproducible production builds pin the base image by digest:
#   --build-arg PYTHON_IMAGE=python:3.11-slim@sha256:<digest>

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: a virtualenv holding the locked dependencies and the isams-sync wheel ---------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# Pinned build tools: the same source always builds the same wheel.
RUN python -m pip install pip==26.3 setuptools==84.2.1

# The runtime virtualenv gets no pip of its own: this stage's pip installs into it.
RUN python -m venv --without-pip /opt/venv

# Dependencies first, in their own layer (rebuilt only when the lock changes). Wheels only:
# every locked package ships manylinux wheels, so the image needs no compiler, and
# --no-deps means nothing outside the lock can slip in.
COPY deploy/docker/runtime-lock.txt /tmp/runtime-lock.txt
RUN python -m pip --python /opt/venv/bin/python install \
        --only-binary=:all: --no-deps --requirement /tmp/runtime-lock.txt

# The application. `pip check` fails the build if the lock no longer satisfies the pins in
# pyproject.toml; the last line proves the console script starts.
WORKDIR /src
COPY pyproject.toml ./
COPY app ./app
COPY consumers ./consumers
RUN python -m pip wheel --no-deps --no-build-isolation --wheel-dir /tmp/wheels . \
    && python -m pip --python /opt/venv/bin/python install --no-deps /tmp/wheels/isams_sync-*.whl \
    && python -m pip --python /opt/venv/bin/python check \
    && /opt/venv/bin/isams-sync --help > /dev/null

# --- runtime: the base image, an unprivileged user and the virtualenv -----------------------
FROM ${PYTHON_IMAGE} AS runtime

ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="isams-sync" \
      org.opencontainers.image.description="iSAMS to ManageBac+ sync: webhook ingest and Kafka workers" \
      org.opencontainers.image.version="${VERSION}"

# Nothing installs packages at run time: drop pip and friends (fewer scanner findings).
# The numeric uid/gid match runAsUser/runAsGroup in deploy/base (kubelet can only verify
# runAsNonRoot against a numeric user).
RUN python -m pip uninstall --yes --quiet --root-user-action=ignore pip setuptools wheel \
    && groupadd --system --gid 10001 isams \
    && useradd --system --uid 10001 --gid isams --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin isams

COPY --from=build /opt/venv /opt/venv

# Bytecode was compiled at install time; the root filesystem is read-only in Kubernetes.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# Not writable by the service user: set SYNC_DATABASE_URL (PostgreSQL) and mount the schools
# file; the SQLite default (./var/sync.db) is for development only.
WORKDIR /app
USER 10001:10001
EXPOSE 8080 8090

# Python is PID 1 and handles SIGTERM itself: `serve` (uvicorn) stops accepting and finishes
# requests in flight; `consume` finishes in-flight changes, commits and leaves the group.
# It starts no child processes, so no init process is needed to reap them.
ENTRYPOINT ["isams-sync"]
CMD ["--help"]
