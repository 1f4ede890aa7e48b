# Provisioning image for docker-compose: every service's package and migrations, so one one-shot
# container can create the roles and schemas, migrate all four services and write a dev key pair.
# Build context: the repository root.
#   docker build -f infra/compose/provision.Dockerfile -t blueprint/provision .

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG UV_VERSION=0.13.9
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
RUN pip install "uv==${UV_VERSION}"
WORKDIR /src

COPY pyproject.toml uv.lock ./
COPY libs/servicekit/pyproject.toml libs/servicekit/
COPY libs/contracts/pyproject.toml libs/contracts/
COPY template-svc/pyproject.toml template-svc/
COPY task-svc/pyproject.toml task-svc/
COPY qc-svc/pyproject.toml qc-svc/
COPY notify-svc/pyproject.toml notify-svc/
COPY infra/pyproject.toml infra/
COPY clients/cli/pyproject.toml clients/cli/
RUN uv sync --frozen --no-dev --no-install-workspace \
    --package template-svc --package task-svc --package qc-svc --package notify-svc

COPY libs/ libs/
COPY template-svc/ template-svc/
COPY task-svc/ task-svc/
COPY qc-svc/ qc-svc/
COPY notify-svc/ notify-svc/
RUN uv sync --frozen --no-dev --no-editable \
    --package template-svc --package task-svc --package qc-svc --package notify-svc


FROM ${PYTHON_IMAGE}
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/app/.venv/bin:$PATH
# Same uid as the service images, so the key files written here are readable there.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin app \
    && install -d -o app -g app -m 0750 /keys
WORKDIR /app
COPY --from=build /app/.venv /app/.venv
COPY template-svc/alembic.ini /app/template-svc/alembic.ini
COPY template-svc/migrations/ /app/template-svc/migrations/
COPY task-svc/alembic.ini /app/task-svc/alembic.ini
COPY task-svc/migrations/ /app/task-svc/migrations/
COPY qc-svc/alembic.ini /app/qc-svc/alembic.ini
COPY qc-svc/migrations/ /app/qc-svc/migrations/
COPY notify-svc/alembic.ini /app/notify-svc/alembic.ini
COPY notify-svc/migrations/ /app/notify-svc/migrations/
COPY infra/compose/provision.py /app/provision.py
USER app
CMD ["python", "/app/provision.py", "all"]
