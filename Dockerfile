# syntax=docker/dockerfile:1
#
# The bluegreen operator image.
#
#   docker build -t bluegreen-operator:dev .
#   (releases: .github/workflows/release-operator.yml builds linux/amd64 and linux/arm64)
#
# Supply chain:
# - both stages start from the same base, pinned by the digest of its multi-arch index
#   (python:3.11-slim; the tag is informative, the digest decides). Dependabot's docker
#   updates move it (.github/dependabot.yml);
# - every Python package is hash-checked: uv from docker/uv-requirements.txt, and the
#   runtime dependencies from uv.lock, exported with their hashes and installed with
#   --require-hashes. Only the wheel built here from this repository has no hash to check.
#
# build: builds the wheel and installs it, with exactly the runtime dependencies of uv.lock,
#        into /opt/venv.
# final: the base image, an unprivileged numeric user and that virtualenv. No uv, no
#        compiler, no pip/setuptools/wheel, no source tree. Nothing is written at run time
#        (bytecode is compiled at build time), so readOnlyRootFilesystem works.
#
# tests/component/test_image_install.py replays the install below into a clean virtualenv,
# proves a wrong hash is refused, and runs this ENTRYPOINT (parsed from this file) against a
# real API server.

FROM python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7 AS build
WORKDIR /src
# uv, at the version the Makefile bootstraps (docker/uv-requirements.txt says which).
COPY docker/uv-requirements.txt ./
RUN pip install --no-cache-dir --require-hashes --no-deps -r uv-requirements.txt
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never
COPY pyproject.toml uv.lock README.md LICENSE ./
COPY operator/ operator/
RUN mkdir /dist \
    && uv export --frozen --no-dev --no-emit-project --format requirements-txt --output-file /dist/requirements.txt \
    && uv build --wheel --out-dir /dist \
    && uv venv /opt/venv --python /usr/local/bin/python3 \
    && uv pip install --python /opt/venv/bin/python --require-hashes --no-deps -r /dist/requirements.txt \
    && uv pip install --python /opt/venv/bin/python --no-deps /dist/bluegreen-*.whl \
    && uv pip check --python /opt/venv/bin/python

FROM python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7
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
