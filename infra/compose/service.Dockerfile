# The image of one of the four services, chosen by SERVICE (the workspace member: template-svc,
# task-svc, qc-svc or notify-svc). The build context is the repository root (the uv workspace):
#   docker build -f infra/compose/service.Dockerfile --build-arg SERVICE=task-svc -t blueprint/task-svc .
# Everything is installed from PyPI (uv itself too), pinned by the workspace's uv.lock. The
# service's Python package is its name with `_` for `-` (task-svc -> task_svc).

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

# uv resolves the workspace from the root and every member's pyproject.toml, so all of them come
# first: the dependency layer below is rebuilt only when the lock or a manifest changes.
COPY pyproject.toml uv.lock ./
COPY libs/servicekit/pyproject.toml libs/servicekit/
COPY libs/contracts/pyproject.toml libs/contracts/
COPY template-svc/pyproject.toml template-svc/
COPY task-svc/pyproject.toml task-svc/
COPY qc-svc/pyproject.toml qc-svc/
COPY notify-svc/pyproject.toml notify-svc/
COPY infra/pyproject.toml infra/
COPY clients/cli/pyproject.toml clients/cli/
# SERVICE is declared only here: the layers above do not depend on it, so the four images share
# them in the build cache.
ARG SERVICE
RUN : "${SERVICE:?build with --build-arg SERVICE=<workspace member>, e.g. task-svc}" \
    && uv sync --frozen --no-dev --package "${SERVICE}" --no-install-workspace

COPY libs/ libs/
COPY ${SERVICE}/ ${SERVICE}/
# The start command derives the package from SERVICE: the build fails here if it is not there.
RUN uv sync --frozen --no-dev --package "${SERVICE}" --no-editable \
    && /app/.venv/bin/python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec(sys.argv[1] + '.main') is None)" \
       "$(echo "${SERVICE}" | tr - _)"


FROM ${PYTHON_IMAGE}
ARG SERVICE
# SERVICE stays in the image's environment: the start command below reads it.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/app/.venv/bin:$PATH \
    SERVICE=${SERVICE}
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin app \
    && install -d -o app -g app -m 0750 /keys
WORKDIR /app
COPY --from=build /app/.venv /app/.venv
# The service folder stays next to the environment: alembic.ini and migrations/ are what
# `python -m servicekit.migrations upgrade --service-dir /app/${SERVICE}` reads.
COPY ${SERVICE}/alembic.ini /app/${SERVICE}/alembic.ini
COPY ${SERVICE}/migrations/ /app/${SERVICE}/migrations/
USER app
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
# The notify-svc image runs the Celery worker and beat as well (docker-compose.yml overrides the
# command):
#   celery -A notify_svc.celery_app worker --loglevel INFO
#   celery -A notify_svc.celery_app beat --loglevel INFO --schedule /tmp/celerybeat-schedule
# The service writes its own JSON access log line per request, so uvicorn's plain one is off.
# An exec-form CMD does not expand variables, so sh reads SERVICE (task-svc -> task_svc.main)
# and `exec`s uvicorn in its place: uvicorn stays PID 1 and receives SIGTERM itself.
CMD ["sh", "-c", "exec uvicorn \"$(echo \"$SERVICE\" | tr - _).main:create_app\" --factory --host 0.0.0.0 --port 8000 --no-access-log --timeout-keep-alive 75"]
