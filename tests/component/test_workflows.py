"""The GitHub Actions workflows in .github/: actionlint finds nothing, and each does its job.

actionlint is built from the Go module proxy by .github/scripts/build-actionlint.sh (once:
the binary is kept in .cache/bin/actionlint-<version>/). When shellcheck is on PATH,
actionlint also checks every `run:` script with it.

Every action is pinned by a full commit SHA with its version in a comment, the same action
at the same commit everywhere, and Dependabot (.github/dependabot.yml) keeps them moving.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from tools.localcluster import HELM_VERSION

from bluegreen.api.v1alpha1 import BlueGreenApp

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"
SCRIPTS = REPO / ".github" / "scripts"
BUILD_ACTIONLINT = SCRIPTS / "build-actionlint.sh"
TRAFFIC_CHECK = SCRIPTS / "traffic-check.sh"
RELEASE_VERSION = SCRIPTS / "release-version.sh"
ALL = ["ci.yml", "e2e-kind.yml", "release-demo-app.yml", "release-operator.yml"]


def _workflow(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the key `on` as the boolean true.
    if True in data:
        data["on"] = data.pop(True)
    return data


def _steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def _runs(workflow: dict[str, Any]) -> str:
    """Every `run:` script of the workflow, one after the other."""
    return "\n".join(step["run"] for step in _steps(workflow) if "run" in step)


def _uses(workflow: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in _steps(workflow) if str(s.get("uses", "")).split("@")[0] == action]


# ----------------------------------------------------------------------------- actionlint


@pytest.fixture(scope="module")
def actionlint() -> Path:
    result = subprocess.run(
        ["bash", str(BUILD_ACTIONLINT)],
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
        timeout=1200,
    )
    assert result.returncode == 0, f"building actionlint failed:\n{result.stdout}{result.stderr}"
    path = Path(result.stdout.strip().splitlines()[-1])
    assert path.is_file(), result.stdout
    return path


def test_actionlint_finds_nothing(actionlint: Path) -> None:
    files = sorted(str(p.relative_to(REPO)) for p in WORKFLOWS.glob("*.y*ml"))
    assert files == [f".github/workflows/{name}" for name in ALL]
    result = subprocess.run(
        [str(actionlint), "-no-color", "-oneline", *files],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_build_script_is_idempotent(actionlint: Path) -> None:
    again = subprocess.run(
        ["bash", str(BUILD_ACTIONLINT)],
        capture_output=True,
        text=True,
        check=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert again.stdout.strip() == str(actionlint)
    assert "built" not in again.stderr
    version = subprocess.run(
        [str(actionlint), "-version"], capture_output=True, text=True, check=True
    ).stdout
    assert version.splitlines()[0] == actionlint.parent.name.removeprefix("actionlint-")


def test_scripts_pass_shellcheck() -> None:
    if shutil.which("shellcheck") is None:
        pytest.fail(
            "shellcheck is not installed (Debian package shellcheck; `make apt` installs it)"
        )
    scripts = sorted(str(p) for p in SCRIPTS.glob("*.sh"))
    assert scripts
    result = subprocess.run(
        ["shellcheck", "--format=gcc", *scripts], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


# ----------------------------------------------------------------------------- all workflows

USES = re.compile(r"^\s*(?:- )?uses:\s*(\S+)(.*)$")
PINNED = re.compile(
    r"^(?P<action>[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(/[A-Za-z0-9_./-]+)?)@(?P<sha>[0-9a-f]{40})$"
)
VERSION_COMMENT = re.compile(r"^ # (?P<version>v[0-9]+\.[0-9]+\.[0-9]+)$")


def _pins(name: str) -> list[tuple[str, str, str]]:
    """(action, sha, version) of every `uses:` line of a workflow, from its text (YAML
    drops the comments that name the versions)."""
    out = []
    for line in (WORKFLOWS / name).read_text().splitlines():
        m = USES.match(line)
        if not m:
            continue
        pinned, comment = PINNED.match(m.group(1)), VERSION_COMMENT.match(m.group(2))
        assert pinned and comment, f"{name}: not pinned as action@<40 hex> # vX.Y.Z: {line}"
        out.append((pinned["action"], pinned["sha"], comment["version"]))
    return out


@pytest.mark.parametrize("name", ALL)
def test_actions_are_pinned_by_sha_and_permissions_are_explicit(name: str) -> None:
    workflow = _workflow(name)
    uses = [s["uses"] for s in _steps(workflow) if "uses" in s]
    assert uses
    pins = _pins(name)
    assert [f"{a}@{sha}" for a, sha, _ in pins] == uses  # every `uses:` line was read
    assert "permissions" in workflow
    for job in workflow["jobs"].values():
        assert job.get("runs-on") == "ubuntu-latest"
        assert "timeout-minutes" in job


def test_each_action_is_pinned_to_one_commit_everywhere() -> None:
    seen: dict[str, set[tuple[str, str]]] = {}
    for name in ALL:
        for action, sha, version in _pins(name):
            seen.setdefault(action.lower(), set()).add((sha, version))
    assert {a: v for a, v in seen.items() if len(v) > 1} == {}
    # The versions are the ones Dependabot moves: a major.minor.patch per SHA.
    assert len(seen) >= 10, sorted(seen)


def test_dependabot_updates_actions_base_image_and_python_pins() -> None:
    config = yaml.safe_load((REPO / ".github" / "dependabot.yml").read_text())
    assert config["version"] == 2
    updates = {(u["package-ecosystem"], u["directory"]) for u in config["updates"]}
    assert updates == {("github-actions", "/"), ("docker", "/"), ("uv", "/"), ("pip", "/docker")}
    assert all(u["schedule"]["interval"] == "weekly" for u in config["updates"])


# ----------------------------------------------------------------------------- ci.yml


def test_ci_lints_unit_tests_and_runs_make_test() -> None:
    ci = _workflow("ci.yml")
    assert {"push", "pull_request"} <= set(ci["on"])
    runs = [s.get("run", "").strip() for s in _steps(ci)]
    assert "make lint" in runs
    assert "make test" in runs
    assert any(r.startswith(".venv/bin/pytest tests/unit") for r in runs)
    assert ci["permissions"] == {"contents": "read"}

    test_job = next(
        j for j in ci["jobs"].values() if any(s.get("run") == "make test" for s in j["steps"])
    )
    go = _uses({"jobs": {"t": test_job}}, "actions/setup-go")
    python = _uses({"jobs": {"t": test_job}}, "actions/setup-python")
    assert go and python
    assert (
        ci["env"]["GO_VERSION"] == "1.26" and go[0]["with"]["go-version"] == "${{ env.GO_VERSION }}"
    )
    assert ci["env"]["PYTHON_VERSION"] == "3.11"
    assert python[0]["with"]["python-version"] == "${{ env.PYTHON_VERSION }}"
    caches = _uses({"jobs": {"t": test_job}}, "actions/cache")
    go_cache = next(c for c in caches if ".cache/bin" in c["with"]["path"])
    assert set(go_cache["with"]["path"].split()) == {
        "~/.cache/go-build",
        "~/go/pkg/mod",
        ".cache/bin",
    }
    assert "hashFiles('tools/*/go.sum')" in go_cache["with"]["key"]


# ----------------------------------------------------------------------------- e2e-kind.yml


def test_e2e_builds_loads_installs_and_runs_the_cluster_tests_through_kubeconfig() -> None:
    e2e = _workflow("e2e-kind.yml")
    steps = _steps(e2e)
    runs = _runs(e2e)
    assert 'docker build --tag "$OPERATOR_IMAGE" .' in runs
    assert 'docker build --tag "$APP_IMAGE" app/' in runs
    assert "kind create cluster" in runs and "kind load docker-image" in runs
    for chart in (
        "ingress-nginx/ingress-nginx",
        "prometheus-community/kube-prometheus-stack",
        "charts/bluegreen-operator",
    ):
        assert re.search(rf"helm upgrade --install \S+ {re.escape(chart)}", runs), chart
    assert "image.repository=" in runs and "image.tag=" in runs

    # KUBECONFIG points at the kind cluster before the cluster tests run, so the tests use it
    # (and do not build the local control plane).
    exported = next(
        i
        for i, s in enumerate(steps)
        if "KUBECONFIG=" in s.get("run", "") and "GITHUB_ENV" in s["run"]
    )
    tests = next(
        i
        for i, s in enumerate(steps)
        if re.search(r"(pytest -m cluster|make test)", s.get("run", ""))
    )
    assert exported < tests
    assert "kind get kubeconfig" in steps[exported]["run"]

    # The chart's operator comes after the tests (two operators must not share apps), then
    # the measured release through the Ingress.
    chart = next(i for i, s in enumerate(steps) if "charts/bluegreen-operator" in s.get("run", ""))
    measured = next(i for i, s in enumerate(steps) if "traffic-check.sh" in s.get("run", ""))
    assert tests < chart < measured
    assert "--expect" in steps[measured]["run"] and "--stop-file" in steps[measured]["run"]


def test_e2e_app_is_a_valid_blue_green_app_with_a_canary_step() -> None:
    e2e = _workflow("e2e-kind.yml")
    script = next(s["run"] for s in _steps(e2e) if "traffic-check.sh" in s.get("run", ""))
    manifest = script.split("<<EOF\n", 1)[1].split("\nEOF\n", 1)[0]
    body = yaml.safe_load(manifest.replace("${APP_HOST}", e2e["env"]["APP_HOST"]))
    app = BlueGreenApp.model_validate(body)
    assert app.spec.ingress is not None and app.spec.ingress.class_name == "nginx"
    assert app.spec.strategy.canary is not None
    assert [s.weight for s in app.spec.strategy.canary.steps] == [50]
    assert app.spec.template.spec["containers"][0]["image"] == "bluegreen-demo:v1"
    assert "bluegreen-demo:v2" in script


# ----------------------------------------------------------------------------- release-demo-app.yml


def test_demo_app_release_uses_oidc_least_privilege_and_waits_for_healthy() -> None:
    text = (WORKFLOWS / "release-demo-app.yml").read_text()
    release = _workflow("release-demo-app.yml")
    assert release["on"] == {"push": {"tags": ["v*"]}}
    assert release["permissions"] == {"id-token": "write", "contents": "read"}
    assert all("permissions" not in job for job in release["jobs"].values())
    # The operator's tags are v* too: here the example runs only where it is configured.
    assert [job.get("if") for job in release["jobs"].values()] == ["vars.APP_NAME != ''"]

    # No static AWS keys, in inputs, env or secrets.
    for forbidden in (
        "aws-access-key-id",
        "aws-secret-access-key",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ):
        assert forbidden not in text
    assert "secrets." not in text
    creds = _uses(release, "aws-actions/configure-aws-credentials")
    assert len(creds) == 1
    assert set(creds[0]["with"]) == {"role-to-assume", "role-session-name", "aws-region"}
    assert _uses(release, "aws-actions/amazon-ecr-login")

    runs = _runs(release)
    assert "docker push" in runs
    assert 'kubectl -n "$APP_NAMESPACE" patch bga' in runs
    assert "--for=jsonpath='{.status.phase}'=Healthy" in runs
    assert "--for=jsonpath='{.status.observedGeneration}'" in runs
    # Nothing in the job needs or creates cluster-wide rights.
    for broad in (
        "clusterrolebinding",
        "cluster-admin",
        "--as=",
        "kubectl apply",
        "kubectl create",
    ):
        assert broad not in runs.lower()


# ----------------------------------------------------------------------------- release-operator.yml


def _job(workflow: dict[str, Any], name: str) -> dict[str, Any]:
    job: dict[str, Any] = workflow["jobs"][name]
    return job


def _job_runs(job: dict[str, Any]) -> str:
    return "\n".join(step["run"] for step in job["steps"] if "run" in step)


def test_operator_release_runs_on_tags_with_least_privilege_per_job() -> None:
    release = _workflow("release-operator.yml")
    assert release["on"] == {"push": {"tags": ["v*"]}}
    assert release["permissions"] == {}
    perms = {name: job["permissions"] for name, job in release["jobs"].items()}
    assert perms == {
        "version": {"contents": "read"},
        "image": {"contents": "read", "packages": "write", "id-token": "write"},
        "chart": {"contents": "read", "packages": "write", "id-token": "write"},
        "python": {"contents": "read"},
        "pypi": {"id-token": "write"},
        "github": {"contents": "write"},
    }
    # Everything waits for the version check; PyPI for the image and the chart.
    assert _job(release, "image")["needs"] == "version"
    assert set(_job(release, "pypi")["needs"]) == {"python", "image", "chart"}
    assert ".github/scripts/release-version.sh" in _job_runs(_job(release, "version"))
    # The helm of the release is the helm of the tests.
    assert release["env"]["HELM_VERSION"] == HELM_VERSION


def test_operator_release_has_no_static_credentials() -> None:
    text = (WORKFLOWS / "release-operator.yml").read_text()
    release = _workflow("release-operator.yml")
    assert "secrets." not in text
    for forbidden in ("aws-access-key-id", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert forbidden not in text
    (creds,) = _uses(release, "aws-actions/configure-aws-credentials")
    assert creds["if"] == "vars.ECR_REGISTRY != ''"
    assert creds["with"]["role-to-assume"] == "${{ vars.AWS_IMAGE_ROLE }}"
    assert set(creds["with"]) == {"role-to-assume", "role-session-name", "aws-region"}
    (ecr,) = _uses(release, "aws-actions/amazon-ecr-login")
    assert ecr["if"] == "vars.ECR_REGISTRY != ''"
    for login in _uses(release, "docker/login-action"):
        assert login["with"] == {
            "registry": "ghcr.io",
            "username": "${{ github.actor }}",
            "password": "${{ github.token }}",
        }
    (pypi,) = _uses(release, "pypa/gh-action-pypi-publish")
    assert "with" not in pypi, "trusted publishing: no token, no password"
    assert _job(release, "pypi")["environment"]["name"] == "pypi"


def test_operator_image_is_multi_arch_attested_and_signed_by_digest() -> None:
    release = _workflow("release-operator.yml")
    image = _job(release, "image")
    (build,) = _uses({"jobs": {"image": image}}, "docker/build-push-action")
    assert release["env"]["PLATFORMS"] == "linux/amd64,linux/arm64"
    assert build["with"]["platforms"] == "${{ env.PLATFORMS }}"
    assert build["with"]["push"] is True
    assert build["with"]["sbom"] is True
    assert build["with"]["provenance"] == "mode=max"
    assert build["with"]["tags"] == "${{ steps.names.outputs.tags }}"
    runs = _job_runs(image)
    assert 'image="ghcr.io/${OWNER}/${IMAGE_NAME}"' in runs
    assert '"${ECR_REGISTRY}/${ECR_REPOSITORY}:${VERSION}"' in runs
    assert 'cosign sign --yes "${tag%:*}@${DIGEST}"' in runs
    assert image["outputs"]["digest"] == "${{ steps.build.outputs.digest }}"
    assert _uses({"jobs": {"image": image}}, "sigstore/cosign-installer")
    assert _uses({"jobs": {"image": image}}, "docker/setup-qemu-action")


def test_operator_chart_is_packaged_with_the_digest_pushed_to_oci_and_signed() -> None:
    release = _workflow("release-operator.yml")
    chart = _job(release, "chart")
    assert chart["env"]["DIGEST"] == "${{ needs.image.outputs.digest }}"
    assert chart["env"]["IMAGE"] == "${{ needs.image.outputs.image }}"
    runs = _job_runs(chart)
    assert "python3 tools/package_chart.py" in runs
    assert '--repository "${IMAGE}" --digest "${DIGEST}"' in runs
    assert 'oci://ghcr.io/${OWNER}/charts"' in runs
    assert "--password-stdin" in runs
    assert 'cosign sign --yes "ghcr.io/${OWNER}/charts/bluegreen-operator@${digest}"' in runs


def test_the_python_package_is_built_with_the_hash_checked_uv() -> None:
    runs = _job_runs(_job(_workflow("release-operator.yml"), "python"))
    assert "--require-hashes --no-deps -r docker/uv-requirements.txt" in runs
    assert "uv build --out-dir dist" in runs


# ----------------------------------------------------------------------------- release-version.sh


def _release_version(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(RELEASE_VERSION), *args],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )


def test_release_version_agrees_with_the_repository() -> None:
    pyproject = re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M)
    assert pyproject
    version = pyproject.group(1)
    ok = _release_version(f"v{version}", "Blue-Org")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines() == [f"version={version}", "owner=blue-org"]

    wrong = _release_version("v9.9.9")
    assert wrong.returncode == 1
    assert f"pyproject.toml version is '{version}', the tag says 9.9.9" in wrong.stderr
    assert "Chart.yaml appVersion" in wrong.stderr
    assert "CHANGELOG.md has no '## [9.9.9]' section" in wrong.stderr
    for not_a_release in ("9.9.9", "v1", "v1.2", "vnext"):
        refused = _release_version(not_a_release)
        assert refused.returncode == 1
        assert "is not a release tag vX.Y.Z" in refused.stderr


# ----------------------------------------------------------------------------- traffic-check.sh


class _Colours(BaseHTTPRequestHandler):
    """Answers in turn from blue and green (by X-App-Color); `fail_every` answers 503."""

    colours: tuple[str, ...] = ("blue", "green")
    fail_every = 0
    count = 0
    lock = threading.Lock()

    def do_GET(self) -> None:
        with self.lock:
            type(self).count += 1
            n = type(self).count
        failing = self.fail_every and n % self.fail_every == 0
        self.send_response(503 if failing else 200)
        self.send_header("X-App-Color", self.colours[n % len(self.colours)])
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def colours_server() -> Iterator[tuple[str, type[_Colours]]]:
    handler = type("Handler", (_Colours,), {"count": 0, "lock": threading.Lock()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", handler
    finally:
        server.shutdown()
        server.server_close()


def _traffic(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(TRAFFIC_CHECK), "--interval", "0", "--max-seconds", "30", *args],
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


def test_traffic_check_prints_the_share_per_colour(
    colours_server: tuple[str, type[_Colours]],
) -> None:
    url, _ = colours_server
    result = _traffic("--url", url, "--requests", "20", "--expect", "green=40-60")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "requests: 20 in " in result.stdout
    assert "2xx: 20, errors (non-2xx): 0" in result.stdout
    assert "color blue: 10 (50.0%)" in result.stdout
    assert "color green: 10 (50.0%)" in result.stdout
    assert result.stdout.rstrip().endswith("OK")

    missed = _traffic("--url", url, "--requests", "10", "--expect", "green=90-100")
    assert missed.returncode == 1
    assert "FAIL: color green answered 5 of 10 2xx responses, outside 90-100%" in missed.stderr


def test_traffic_check_fails_on_any_error(colours_server: tuple[str, type[_Colours]]) -> None:
    url, handler = colours_server
    handler.fail_every = 7
    result = _traffic("--url", url, "--requests", "21")
    assert result.returncode == 1
    assert "2xx: 18, errors (non-2xx): 3" in result.stdout
    assert "status 503: 3" in result.stdout
    assert "FAIL: 3 of 21 requests were not answered 2xx" in result.stderr


def test_traffic_check_counts_refused_connections_and_stops_on_the_stop_file(
    tmp_path: Path,
) -> None:
    with ThreadingHTTPServer(("127.0.0.1", 0), _Colours) as probe:
        closed = f"http://127.0.0.1:{probe.server_address[1]}/"
    refused = _traffic("--url", closed, "--requests", "3", "--timeout", "2")
    assert refused.returncode == 1
    assert "status 000: 3" in refused.stdout

    stop = tmp_path / "stop"
    stop.touch()
    stopped = _traffic("--url", closed, "--stop-file", str(stop), "--min-requests", "1")
    assert stopped.returncode == 1
    assert "requests: 0 in " in stopped.stdout
    assert "FAIL: only 0 requests were sent (at least 1 needed)" in stopped.stderr

    usage = _traffic("--requests", "3")
    assert usage.returncode == 2
