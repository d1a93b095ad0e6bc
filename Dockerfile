# syntax=docker/dockerfile:1
#
# The bluegreen operator image.
#
#   docker build -t bluegreen-operator:0.1.0 .
#
# build: builds the wheel from this repository and installs it, with exactly the runtime
#        dependencies pinned in uv.lock (exported as constraints), into /opt/venv.
# final: python:3.11-slim, an unprivileged numeric user and that virtualenv. No uv, no
#        compiler, no pip/setuptools/wheel, no source tree. Nothing is written at run time
#        (bytecode is compiled at build time), so readOnlyRootFilesystem works.
#
# tests/component/test_image_install.py replays the install below into a clean virtualenv
# and runs this ENTRYPOINT (parsed from this file) against a real API server.

FROM python:3.11-slim AS build
ARG UV_VERSION=0.13.8
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never
WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
COPY operator/ operator/
RUN mkdir /dist \
    && uv export --frozen --no-dev --no-hashes --no-emit-project --output-file /dist/constraints.txt \
    && uv build --wheel --out-dir /dist \
    && uv venv /opt/venv --python /usr/local/bin/python3 \
    && uv pip install --python /opt/venv/bin/python --constraint /dist/constraints.txt /dist/bluegreen-*.whl

FROM python:3.11-slim
# Build tools the base image ships are not needed to run: remove them with pip itself.
RUN python -m pip uninstall --no-cache-dir --yes pip setuptools wheel \
    && groupadd --system --gid 10001 bluegreen \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin bluegreen
COPY --from=build /opt/venv /opt/venv
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    BLUEGREEN_METRICS_PORT=8080
USER 10001:10001
# 8080: the operator's Prometheus metrics; 8081: kopf's liveness endpoint (/healthz).
EXPOSE 8080 8081
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8081/healthz', timeout=4)"]
# Which namespaces it serves comes as arguments: every one by default (CMD), or
# `--namespace=NAME` for each (a namespaced install). Arguments replace the CMD, so the Helm
# chart passes its own: the namespaces, the peering (--peering=NAME) and any other flag.
ENTRYPOINT ["kopf", "run", "--log-format=json", "-m", "bluegreen.runtime.handlers", "--liveness=http://0.0.0.0:8081/healthz"]
CMD ["--all-namespaces"]
