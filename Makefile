# bluegreen: the two commands a newcomer needs are `make demo` and `make test`.
# Every target installs what it needs and is safe to run again.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
export GOWORK := off
export GOTOOLCHAIN := local
export CGO_ENABLED := 0

UV_VERSION := 0.13.8
BOOTSTRAP := .cache/bootstrap
UV := $(BOOTSTRAP)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
CLUSTER := python3 tools/localcluster.py
NETNS := python3 tools/netns.py
PYTEST_ARGS ?=
# A run narrowed with PYTEST_ARGS may leave one of the two sessions nothing to run; the
# whole suite (CI) must collect tests in both: pytest's "no tests" (exit 5) fails it.
EMPTY_OK := $(if $(PYTEST_ARGS),|| [ $$? = 5 ],)
# Without KUBECONFIG, the tests that send real traffic (marked datapath) run in a session of
# their own inside a private network namespace, where the local control plane has a real
# data path: Traefik, and pods that run as processes on their own IPs. The others run
# outside it, as they need no such path (and some need the network). Exit status 5 means
# PYTEST_ARGS selected none of them.
PYTEST := $(VENV)/bin/pytest

.PHONY: help setup apt venv binaries cluster cluster-down demo test lint crds chart-readme bench clean

help:
	@echo "make demo          run a release and a rollback on a local control plane"
	@echo "make test          install everything, then run every check and test"
	@echo "make cluster       start (or reuse) the local control plane; prints the KUBECONFIG export"
	@echo "                   DATA_PATH=1: with Traefik and real pod processes, in a network namespace (root)"
	@echo "make cluster-down  stop the local control plane"
	@echo "make lint          ruff, mypy --strict, import-linter, CRD drift"
	@echo "make crds          regenerate crds/ and the chart's copy from the pydantic models"
	@echo "make chart-readme  regenerate the chart's README.md from its values.yaml"

setup: apt venv binaries

# Debian packages: Prometheus (and promtool) for analysis tests, openssl for the local PKI,
# Lua for the Argo CD health check, shellcheck for the workflows' scripts, jq for the
# uninstall guide's check.
apt:
	@missing=""; \
	for p in prometheus openssl lua5.4 shellcheck jq; do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

$(UV):
	python3 -m venv $(BOOTSTRAP)
	$(BOOTSTRAP)/bin/pip install -q uv==$(UV_VERSION)

venv: $(UV)
	$(UV) sync --frozen --quiet

# With KUBECONFIG set the tests run against that cluster: nothing of the local control plane
# (etcd, kube-apiserver, controller-manager, scheduler, kwok) is built. The other tools are
# (helm, Argo Rollouts, the OCI registry, kstatus, gopher-lua, Flux's CEL, OpenTofu,
# actionlint).
binaries:
	@if [ -n "$${KUBECONFIG:-}" ]; then \
	  echo "KUBECONFIG is set: tests use that cluster; the local control plane is not built"; \
	else \
	  $(CLUSTER) build; \
	fi
	python3 tools/argorollouts.py build
	python3 tools/gotools.py build
	bash tests/terraform/build_tofu.sh
	bash .github/scripts/build-actionlint.sh

cluster: setup
	@$(if $(DATA_PATH),$(NETNS) up,$(CLUSTER) up)

cluster-down:
	@$(CLUSTER) down
	@$(NETNS) down

crds: venv
	$(PY) -m bluegreen.api.crdgen --write

chart-readme: venv
	$(PY) tools/chart_readme.py

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(PY) -m bluegreen.api.crdgen --check

test: setup lint
ifeq ($(KUBECONFIG),)
	$(PYTEST) -m "not datapath" $(PYTEST_ARGS) $(EMPTY_OK)
	$(NETNS) run -- $(PYTEST) -m datapath $(PYTEST_ARGS) $(EMPTY_OK)
else
	$(PYTEST) -m "not local_only" $(PYTEST_ARGS)
endif

# A release and a rollback through the real data path, in a private network namespace of
# its own (tools/netns.py) with its own local control plane (.cache/demo/); the first run
# also builds Prometheus with Kubernetes discovery. KUBECONFIG is not used.
demo: setup
	$(PY) tools/demo.py

# 100 releases of one app, then 1000 apps created, released and left idle 300 s, then the
# same side by side with Argo Rollouts and a bare baseline (tests/bench/peer.py), then 200
# hostile specs (tests/cluster/test_hostile_specs.py, about 25 min); prints each number
# against its target and writes tests/bench/results/summary.json (about 100 min).
# BENCH_ARGS="--short" for a smoke run (20 releases, 50 apps, 5 + 5 side-by-side releases,
# 40 hostile specs), "--hostile-examples N", "--summary-only" for the table.
bench: setup
	$(PY) -m tests.bench.run_all $(BENCH_ARGS)

clean: cluster-down
	rm -rf .cache/cluster .cache/cluster-test .cache/cluster-datapath .cache/build
