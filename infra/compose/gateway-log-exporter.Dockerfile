# The gateway's request metrics exporter for docker compose (blueprint_stack.gateway_exporter):
# it receives nginx's access log as syslog datagrams on UDP 9514 and serves /metrics on 9114.
# It routes paths to services as the gateway does, from the gateway's own template, copied here
# from the same file as the gateway image's. Build context: the repository root.
#   docker build -f infra/compose/gateway-log-exporter.Dockerfile -t blueprint/gateway-log-exporter .

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
RUN uv sync --frozen --no-dev --package blueprint-stack --no-install-workspace

COPY libs/ libs/
COPY infra/src/ infra/src/
RUN uv sync --frozen --no-dev --package blueprint-stack --no-editable


FROM ${PYTHON_IMAGE}
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/app/.venv/bin:$PATH
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin app
WORKDIR /app
COPY --from=build /app/.venv /app/.venv
COPY gateway/nginx.conf.template /app/nginx.conf.template
USER app
EXPOSE 9114/tcp 9514/udp
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9114/metrics', timeout=2)"]
CMD ["python", "-m", "blueprint_stack.gateway_exporter", "--syslog-udp", "0.0.0.0:9514", \
     "--nginx-conf", "/app/nginx.conf.template", "--host", "0.0.0.0", "--port", "9114"]
