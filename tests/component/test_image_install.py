"""The operator image, replayed without Docker (Docker cannot run on the test machines).

Everything is taken from the Dockerfile itself, so the image and this test cannot drift:

1. the build stage's COPY sources are copied into an empty directory (the build context
   as the image sees it), and its install RUN line is executed there with the image's
   paths relocated into a temporary directory (`/dist`, `/opt/venv`, the base image's
   Python): the wheel is built, uv.lock's runtime pins are exported with their hashes, and
   they and the wheel go into a CLEAN virtualenv with `--require-hashes`. The same commands
   with one hash changed must fail: the hashes are checked, not only written;
2. the final stage's ENTRYPOINT runs from that virtualenv with the final stage's ENV,
   against the real API server. Its argument `--namespace=<the test's own namespace>`
   replaces the CMD (`--all-namespaces`), as the chart's arguments do, so no other operator
   of the test session acts on the same apps and this one acts on nobody else's; and the
   liveness port (and BLUEGREEN_METRICS_PORT) become free ports, since tests share the
   machine;
3. the liveness endpoint answers, the logs are JSON, a BlueGreenApp reaches Healthy, and
   nothing was written into the installed tree (what readOnlyRootFilesystem demands).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.support.apps import Apps, app_manifest
from tests.support.cluster import REPO, Cluster
from tests.support.process import free_port
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster

DOCKERFILE = REPO / "Dockerfile"
UV = REPO / ".cache" / "bootstrap" / "bin" / "uv"
HADOLINT = Path(sys.executable).parent / "hadolint"
CHECKOV = REPO / ".cache" / "checkov-venv" / "bin" / "checkov"
# Paths of the image, and where the replay puts them.
IMAGE_DIST, IMAGE_VENV, IMAGE_PYTHON = "/dist", "/opt/venv", "/usr/local/bin/python3"
IMAGE_LIVENESS_PORT = 8081


# --------------------------------------------------------------------------- Dockerfile


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [arg for kw, arg in self.instructions if kw == keyword]

    def env(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for arg in self.all("ENV"):
            for item in shlex.split(arg):
                key, _, value = item.partition("=")
                out[key] = value
        return out

    def args(self) -> dict[str, str]:
        out = {}
        for arg in self.all("ARG"):
            key, _, value = arg.partition("=")
            out[key.strip()] = value.strip()
        return out


def parse_dockerfile(text: str) -> list[Stage]:
    """Stages with their instructions; continuation lines joined, comment lines dropped."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continuation"
    stages: list[Stage] = []
    for line in logical:
        keyword, _, arg = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = arg.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
        else:
            assert stages, f"{keyword} before FROM"
            stages[-1].instructions.append((keyword, arg.strip()))
    return stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text())


def entrypoint(stage: Stage, keyword: str = "ENTRYPOINT") -> list[str]:
    (raw,) = stage.all(keyword)
    argv = json.loads(raw)  # exec form only: no shell, PID 1 gets the signals
    assert isinstance(argv, list) and all(isinstance(a, str) for a in argv)
    return argv


def install_run(stage: Stage) -> str:
    (run,) = [r for r in stage.all("RUN") if "uv build" in r]
    return run


# --------------------------------------------------------------------------- static


def test_dockerfile_is_hadolint_clean() -> None:
    result = subprocess.run(
        [str(HADOLINT), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_is_checkov_clean() -> None:
    if not CHECKOV.exists():
        subprocess.run(
            ["bash", str(REPO / "tests/terraform/run_checkov.sh"), "--version"], check=True
        )
    result = subprocess.run(
        [
            str(CHECKOV),
            *("-f", str(DOCKERFILE), "--framework", "dockerfile"),
            *("--quiet", "--compact", "--skip-download"),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_shape(stages: list[Stage]) -> None:
    build, final = stages[0], stages[-1]
    assert len(stages) == 2 and build.name == "build"
    # One base for both stages, pinned by digest (the tag only says what it is).
    assert build.base == final.base
    assert re.fullmatch(r"python:3\.11-slim@sha256:[a-f0-9]{64}", build.base), build.base
    # The final stage gets the virtualenv and nothing else from the build.
    copies = final.all("COPY")
    assert copies == [f"--from=build {IMAGE_VENV} {IMAGE_VENV}"], copies
    assert not any("uv " in r or "apt-get" in r for r in final.all("RUN"))
    env = final.env()
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PATH"].startswith(f"{IMAGE_VENV}/bin:")
    (user,) = final.all("USER")
    assert re.fullmatch(r"[1-9][0-9]{3,}:[1-9][0-9]{3,}", user), "a numeric, non-root user"
    argv = entrypoint(final)
    assert argv[:2] == ["kopf", "run"]
    assert "--log-format=json" in argv
    # Which namespaces it serves are arguments: every one unless they say otherwise (the
    # chart passes --all-namespaces or --namespace=... for each).
    assert "--all-namespaces" not in argv and not any(a.startswith("--namespace") for a in argv)
    assert entrypoint(final, "CMD") == ["--all-namespaces"]
    assert argv[argv.index("-m") + 1] == "bluegreen.runtime.handlers"
    assert f"--liveness=http://0.0.0.0:{IMAGE_LIVENESS_PORT}/healthz" in argv
    # The uv that replays the build is the one the image installs.
    version = subprocess.run([str(UV), "--version"], capture_output=True, text=True, check=True)
    assert [f"uv=={version.stdout.split()[1]}"] == list(
        _requirements((REPO / "docker" / "uv-requirements.txt").read_text())
    )


# --------------------------------------------------------------------------- replay


@dataclass
class Installed:
    root: Path  # where the image's /dist and /opt/venv were relocated
    venv: Path
    wheel: Path
    argv: list[str]
    env: dict[str, str]


def _copy_context(build: Stage, context: Path) -> None:
    """The build stage's COPY sources, where its WORKDIR (the context directory) gets them."""
    assert build.all("WORKDIR") == ["/src"]
    for arg in build.all("COPY"):
        *sources, dest = arg.split()
        assert not any(s.startswith("--") for s in sources), arg
        target = context / dest
        for source in sources:
            src = REPO / source
            if src.is_dir():  # COPY dir/ dest/ copies the directory's contents
                shutil.copytree(
                    src, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
                )
            elif dest.endswith("/"):
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, target / src.name)
            else:
                shutil.copy2(src, target)


def _relocate(command: str, root: Path) -> str:
    python = os.path.realpath(sys._base_executable)  # the same 3.11 the image's base has
    out = command.replace(IMAGE_DIST, str(root / "dist"))
    out = out.replace(IMAGE_VENV, str(root / "venv"))
    out = out.replace(IMAGE_PYTHON, python)
    return re.sub(r"(^|&&\s*)uv ", lambda m: f"{m.group(1)}{UV} ", out)


@pytest.fixture(scope="module")
def installed(stages: list[Stage], tmp_path_factory: pytest.TempPathFactory) -> Installed:
    build, final = stages[0], stages[-1]
    root = tmp_path_factory.mktemp("image")
    context = root / "src"
    context.mkdir()
    _copy_context(build, context)
    clean = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    command = _relocate(install_run(build), root)
    result = subprocess.run(
        ["/bin/sh", "-c", command],
        cwd=context,
        env={**clean, **build.env()},
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    (wheel,) = (root / "dist").glob("bluegreen-*.whl")
    venv = root / "venv"

    image_env = final.env()
    path = image_env.pop("PATH").replace(IMAGE_VENV, str(venv)).replace("${PATH}", "/usr/bin:/bin")
    env = {
        **image_env,
        "PATH": path,
        "HOME": str(root / "nonexistent"),  # the image's user has no home
        "LANG": "C.UTF-8",
    }
    return Installed(root=root, venv=venv, wheel=wheel, argv=entrypoint(final), env=env)


def test_the_wheel_holds_the_package_only(installed: Installed) -> None:
    names = zipfile.ZipFile(installed.wheel).namelist()
    assert "bluegreen/runtime/handlers.py" in names
    # The license travels with the package (the build stage copies LICENSE).
    (license_file,) = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
    text = zipfile.ZipFile(installed.wheel).read(license_file).decode()
    assert text == (REPO / "LICENSE").read_text() and "Apache License" in text
    assert all(n.startswith(("bluegreen/", "bluegreen-")) for n in names), names


def test_the_clean_venv_has_the_wheel_and_the_locked_pins_only(installed: Installed) -> None:
    py = installed.venv / "bin" / "python"
    out = subprocess.run(
        [
            str(py),
            "-c",
            "import sys, bluegreen, kopf; print(sys.version_info[:2], bluegreen.__file__)",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=installed.venv,
        env=installed.env,
    ).stdout
    assert out.startswith("(3, 11)")
    assert str(installed.venv) in out, "bluegreen must come from the wheel, not the source tree"
    frozen = subprocess.run(
        [str(UV), "pip", "freeze", "--python", str(py)], capture_output=True, text=True, check=True
    ).stdout
    pins = dict(_pin(line) for line in frozen.splitlines() if "==" in line)
    locked = subprocess.run(
        [str(UV), "export", "--frozen", "--no-dev", "--no-hashes", "--no-emit-project"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    want = dict(
        _pin(line.split(";")[0]) for line in locked.splitlines() if "==" in line and line[0] != "#"
    )
    assert f"bluegreen @ {installed.wheel.as_uri()}" in frozen.splitlines()
    for name, version in pins.items():
        assert want.get(name) == version, f"{name}=={version} is not what uv.lock pins"
    for dev_only in ("pytest", "ruff", "mypy", "hatchling", "pip", "setuptools"):
        assert dev_only not in pins, f"{dev_only} in the runtime image"


def _requirements(text: str) -> dict[str, list[str]]:
    """name==version -> its hashes, from a requirements file in uv export's format."""
    out: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not line.startswith(" "):
            current = stripped.split(";")[0].split()[0].rstrip("\\").strip()
            out[current] = []
        out[current] += re.findall(r"--hash=(sha256:[a-f0-9]{64})", stripped)
    return out


def test_every_runtime_dependency_is_installed_by_hash(
    installed: Installed, stages: list[Stage]
) -> None:
    run = install_run(stages[0])
    assert "--no-hashes" not in run
    exported = (installed.root / "dist" / "requirements.txt").read_text()
    required = _requirements(exported)
    assert len(required) > 20 and all("==" in r for r in required), required
    assert all(required.values()), [r for r, h in required.items() if not h]
    # Every package of the clean venv but the wheel came through that file.
    frozen = subprocess.run(
        [str(UV), "pip", "freeze", "--python", str(installed.venv / "bin" / "python")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    installed_pins = {"==".join(_pin(line)) for line in frozen.splitlines() if "==" in line}
    assert installed_pins == {"==".join(_pin(r)) for r in required}


def test_a_wrong_hash_is_refused(installed: Installed, stages: list[Stage], tmp_path: Path) -> None:
    """The install commands of the RUN line, replayed with one hash changed, fail."""
    steps = [step.strip() for step in install_run(stages[0]).split("&&")]
    make_venv = next(step for step in steps if step.startswith("uv venv "))
    hashed = next(step for step in steps if "--require-hashes" in step)
    assert "-r /dist/requirements.txt" in hashed and "--no-deps" in hashed
    (tmp_path / "dist").mkdir()
    exported = (installed.root / "dist" / "requirements.txt").read_text()
    victim, hashes = next((r, h) for r, h in _requirements(exported).items() if "kopf" in r)
    tampered = exported
    for digest in hashes:  # every hash of the package, so no wheel of it can match
        tampered = tampered.replace(digest, "sha256:" + "0" * 64)
    (tmp_path / "dist" / "requirements.txt").write_text(tampered)
    clean = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env = {**clean, **stages[0].env()}
    subprocess.run(
        ["/bin/sh", "-c", _relocate(make_venv, tmp_path)], env=env, check=True, timeout=60
    )
    result = subprocess.run(
        ["/bin/sh", "-c", _relocate(hashed, tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode != 0, f"{victim} was installed with a wrong hash"
    assert f"Hash mismatch for `{victim}`" in result.stderr, result.stderr


def test_the_build_stage_installs_uv_by_hash(stages: list[Stage], tmp_path: Path) -> None:
    """uv itself comes from docker/uv-requirements.txt, at the Makefile's UV_VERSION; its
    hashes are those of the wheels PyPI serves for linux/amd64 and linux/arm64 (pip
    downloads each with --require-hashes)."""
    build = stages[0]
    (install,) = [r for r in build.all("RUN") if "uv-requirements.txt" in r]
    assert "--require-hashes" in install
    requirements = REPO / "docker" / "uv-requirements.txt"
    pinned = _requirements(requirements.read_text())
    makefile = re.search(r"^UV_VERSION := (\S+)$", (REPO / "Makefile").read_text(), re.M)
    assert makefile and list(pinned) == [f"uv=={makefile.group(1)}"]
    pip = REPO / ".cache" / "bootstrap" / "bin" / "pip"
    for platform in ("manylinux_2_17_x86_64", "manylinux_2_28_aarch64"):
        result = subprocess.run(
            [
                *(str(pip), "download", "--quiet", "--no-deps", "--only-binary=:all:"),
                *("--platform", platform, "--python-version", "3.11"),
                *("--require-hashes", "-r", str(requirements), "-d", str(tmp_path / platform)),
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def _pin(line: str) -> tuple[str, str]:
    name, version = line.strip().split("==", 1)
    return re.sub(r"[-_.]+", "-", name).lower(), version


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if not p.is_symlink()
    }


@pytest.fixture
def image_namespace(api_client: client.ApiClient, crd: None) -> Iterator[str]:
    name = f"img-{uuid.uuid4().hex[:10]}"
    client.CoreV1Api(api_client).create_namespace({"metadata": {"name": name}})
    yield name
    client.CoreV1Api(api_client).delete_namespace(name, propagation_policy="Background")


def test_the_entrypoint_runs_the_operator_from_the_clean_venv(
    installed: Installed,
    cluster: Cluster,
    api_client: client.ApiClient,
    image_namespace: str,
    tmp_path: Path,
) -> None:
    liveness, metrics = free_port(), free_port()
    argv = [a.replace(f":{IMAGE_LIVENESS_PORT}/", f":{liveness}/") for a in installed.argv]
    changed = [a for a, b in zip(installed.argv, argv, strict=True) if a != b]
    assert changed == [f"--liveness=http://0.0.0.0:{IMAGE_LIVENESS_PORT}/healthz"]
    argv.append(f"--namespace={image_namespace}")  # replaces the CMD, as the chart's arguments
    env = {
        **installed.env,
        "KUBECONFIG": str(cluster.kubeconfig),
        "BLUEGREEN_METRICS_PORT": str(metrics),
    }
    # argv[0] is found on the image's PATH, which starts with the virtualenv's bin/.
    assert shutil.which(argv[0], path=env["PATH"]) == str(installed.venv / "bin" / argv[0])

    workdir = tmp_path / "cwd"  # empty: nothing of the repository is importable from here
    workdir.mkdir()
    before = _snapshot(installed.venv)
    log_path = tmp_path / "operator.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            argv,
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            executable=shutil.which(argv[0], path=env["PATH"]),
        )
    try:
        health = wait_for(
            "the liveness endpoint",
            lambda: _get(f"http://127.0.0.1:{liveness}/healthz", proc, log_path),
            timeout=30,
        )
        assert "api" in json.loads(health), health  # the operator's own probe ran
        exposition = wait_for(
            "the metrics endpoint",
            lambda: _get(f"http://127.0.0.1:{metrics}/metrics", proc, log_path),
            timeout=10,
        )
        assert "bluegreen_kube_api_requests_total" in exposition

        apps = Apps(api_client, image_namespace)
        apps.create(app_manifest("shop"))
        status = apps.wait_phase("shop", "Healthy", timeout=60)
        assert status["activeColor"] == "blue"
        # Deleted while the operator runs: it removes its finalizer, the app goes.
        apps.delete("shop")
        wait_for("the app to be finalized and gone", lambda: not _exists(apps, "shop"))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    logs = log_path.read_text(errors="replace")
    records = [json.loads(line) for line in logs.splitlines() if line.strip()]
    assert all(isinstance(r, dict) and "message" in r for r in records), logs[-2000:]
    assert any(r["message"] == "bluegreen operator configured" for r in records)
    assert _snapshot(installed.venv) == before, "the operator wrote into its installed tree"
    assert list(workdir.iterdir()) == [], "the operator wrote into its working directory"


def _exists(apps: Apps, name: str) -> bool:
    try:
        apps.get(name)
    except ApiException as err:
        if err.status == 404:
            return False
        raise
    return True


def _get(url: str, proc: subprocess.Popen[bytes], log_path: Path) -> str | None:
    if proc.poll() is not None:
        raise AssertionError(f"the operator exited ({proc.returncode}):\n{log_path.read_text()}")
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return str(resp.read().decode())
    except OSError:
        time.sleep(0.1)
        return None
