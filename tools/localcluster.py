#!/usr/bin/env python3
"""Build and run a real, local Kubernetes control plane on loopback.

etcd, kube-apiserver, kube-controller-manager and kube-scheduler are built from
their Go modules (wrapper modules in tools/k8s and tools/etcd); kwok plays the
kubelet, so pods become Running and Ready with IPs without running containers.

    python3 tools/localcluster.py build   # build missing binaries (cached by version)
    python3 tools/localcluster.py up      # start (or reuse) the cluster, print the export line
    python3 tools/localcluster.py down    # stop exactly the processes `up` started
    python3 tools/localcluster.py status  # is it running?

Everything lives under .cache/ (ignored by git): binaries in .cache/bin/<tool>-<version>/,
the running cluster in .cache/cluster/ (kubeconfig, pids, pki, etcd data) and the logs
of every component in .cache/cluster/logs/.

With BLUEGREEN_DATA_PATH=1 (or `up --data-path`), inside the network namespace of
tools/netns.py (which sets it), `up` also starts the data path: Traefik reading Ingresses and HTTPRoutes,
and the kubelet stand-in tools/podrunner.py that runs opted-in pods as real processes.
Their addresses are written to <cluster dir>/datapath.json.

Only the standard library is used, so this runs before any virtualenv exists.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

try:  # imported by tests as tools.localcluster
    from tools import datapath
except ImportError:  # run as a script: tools/ is on the path
    import datapath  # type: ignore[no-redef]

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("BLUEGREEN_CACHE", REPO / ".cache"))
STATE = Path(os.environ.get("BLUEGREEN_CLUSTER_DIR", CACHE / "cluster"))

K8S_VERSION = "v1.37.2"
ETCD_VERSION = "v3.6.16"
KWOK_VERSION = "v0.8.0"
HELM_VERSION = "v4.3.1"

GO_ENV = {"GOWORK": "off", "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}
K8S_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
ADMIN_TOKEN_USER = "bluegreen-admin"  # noqa: S105 - a user name
NODE_COUNT = int(os.environ.get("BLUEGREEN_NODES", "2"))
NODE_MAX_PODS = 5000


def log(msg: str) -> None:
    print(f"[localcluster] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- build


def bin_dir(tool: str, version: str) -> Path:
    return CACHE / "bin" / f"{tool}-{version}"


def k8s_bin(name: str) -> Path:
    return bin_dir("k8s", K8S_VERSION) / name


def etcd_bin() -> Path:
    return bin_dir("etcd", ETCD_VERSION) / "etcd"


def kwok_bin() -> Path:
    return bin_dir("kwok", KWOK_VERSION) / "kwok"


def helm_bin() -> Path:
    return bin_dir("helm", HELM_VERSION) / "helm"


def _version_output(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout + out.stderr


def _go(args: list[str], cwd: Path | None = None) -> None:
    env = {**os.environ, **GO_ENV}
    log("go " + " ".join(args))
    subprocess.run(["go", *args], cwd=cwd, env=env, check=True)


def check_k8s_replaces() -> None:
    """Fail loudly when kubernetes grew a staging module our go.mod does not replace."""
    env = {**os.environ, **GO_ENV}
    out = subprocess.run(
        ["go", "mod", "download", "-json", f"k8s.io/kubernetes@{K8S_VERSION}"],
        cwd=REPO / "tools" / "k8s",
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    gomod = Path(json.loads(out.stdout)["GoMod"]).read_text()
    staging = {line.split()[0] for line in gomod.splitlines() if "=> ./staging/src/" in line}
    ours = (REPO / "tools" / "k8s" / "go.mod").read_text()
    minor = K8S_VERSION.split(".")[1]
    missing = sorted(
        m for m in staging if f"{m} => {m} v0.{minor}.{K8S_VERSION.split('.')[2]}" not in ours
    )
    if missing:
        raise SystemExit(
            "tools/k8s/go.mod lacks replace directives for staging modules: "
            + ", ".join(missing)
            + "\nRegenerate it with: python3 tools/localcluster.py gen-k8s-mod"
        )


def gen_k8s_mod() -> None:
    """Write tools/k8s/go.mod from the kubernetes go.mod's list of staging modules."""
    env = {**os.environ, **GO_ENV}
    mod_dir = REPO / "tools" / "k8s"
    out = subprocess.run(
        ["go", "mod", "download", "-json", f"k8s.io/kubernetes@{K8S_VERSION}"],
        cwd=mod_dir,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    gomod = Path(json.loads(out.stdout)["GoMod"]).read_text()
    staging = sorted(line.split()[0] for line in gomod.splitlines() if "=> ./staging/src/" in line)
    go_line = next(line for line in gomod.splitlines() if line.startswith("go "))
    staged_version = "v0." + ".".join(K8S_VERSION.split(".")[1:])
    lines = [
        "module bluegreen.dev/tools/k8s",
        "",
        go_line,
        "",
        f"require k8s.io/kubernetes {K8S_VERSION}",
        "",
        "// Generated by tools/localcluster.py gen-k8s-mod from the kubernetes go.mod:",
        "// every staging module is replaced by its published twin.",
        "replace (",
        *(f"\t{m} => {m} {staged_version}" for m in staging),
        ")",
        "",
    ]
    (mod_dir / "go.mod").write_text("\n".join(lines))
    _go(["mod", "tidy"], cwd=mod_dir)


def build_k8s() -> None:
    target = bin_dir("k8s", K8S_VERSION)
    if all(
        f"Kubernetes {K8S_VERSION}" in _version_output([str(target / c), "--version"])
        for c in K8S_COMMANDS
    ):
        return
    check_k8s_replaces()
    target.mkdir(parents=True, exist_ok=True)
    major, minor = K8S_VERSION.lstrip("v").split(".")[:2]
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    ldflags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        ldflags += [
            f"-X {pkg}.gitVersion={K8S_VERSION}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate={stamp}",
        ]
    started = time.monotonic()
    # One `go build` for all three commands, so shared packages compile once.
    _go(
        [
            "build",
            "-trimpath",
            "-ldflags",
            " ".join(ldflags),
            "-o",
            str(target) + "/",
            *(f"k8s.io/kubernetes/cmd/{c}" for c in K8S_COMMANDS),
        ],
        cwd=REPO / "tools" / "k8s",
    )
    log(f"built kubernetes {K8S_VERSION} in {time.monotonic() - started:.0f}s")


def build_etcd() -> None:
    if f"etcd Version: {ETCD_VERSION.lstrip('v')}" in _version_output(
        [str(etcd_bin()), "--version"]
    ):
        return
    etcd_bin().parent.mkdir(parents=True, exist_ok=True)
    _go(
        ["build", "-trimpath", "-ldflags", "-s -w", "-o", str(etcd_bin()), "."],
        cwd=REPO / "tools" / "etcd",
    )


def _go_install(tool: str, version: str, packages: list[str], probe: list[str]) -> None:
    target = bin_dir(tool, version)
    if version in _version_output([str(target / probe[0]), *probe[1:]]):
        return
    target.mkdir(parents=True, exist_ok=True)
    os.environ["GOBIN"] = str(target)
    try:
        _go(["install", "-trimpath", "-ldflags", "-s -w", *(f"{p}@{version}" for p in packages)])
    finally:
        del os.environ["GOBIN"]


def build_kwok() -> None:
    _go_install("kwok", KWOK_VERSION, ["sigs.k8s.io/kwok/cmd/kwok"], ["kwok", "--version"])


def build_helm() -> None:
    # helm's version is stamped through ldflags in its own release process; the module
    # build reports the module version via build info, which `helm version` prints.
    target = bin_dir("helm", HELM_VERSION)
    if (target / "helm").exists() and "v4." in _version_output([str(target / "helm"), "version"]):
        return
    _go_install("helm", HELM_VERSION, ["helm.sh/helm/v4/cmd/helm"], ["helm", "version"])


def traefik_bin() -> Path:
    return bin_dir("traefik", datapath.TRAEFIK_VERSION) / "traefik"


def traefik_version_ok() -> bool:
    out = _version_output([str(traefik_bin()), "version"])
    return re.search(rf"^Version:\s+{re.escape(datapath.TRAEFIK_VERSION)}$", out, re.M) is not None


def build_traefik() -> None:
    """Traefik from its module, through the wrapper in tools/traefik (see tools/datapath.py)."""
    if traefik_version_ok():
        return
    # tools/traefik/go.mod points at this folder (relative paths), whatever BLUEGREEN_CACHE says.
    build_root = REPO / ".cache" / "build" / "traefik"
    wrapper = REPO / "tools" / "traefik"
    datapath.prepare_traefik_sources(build_root, {**os.environ, **GO_ENV}, wrapper)
    traefik_bin().parent.mkdir(parents=True, exist_ok=True)
    partial = traefik_bin().with_suffix(".tmp")
    started = time.monotonic()
    _go(
        [
            "build",
            "-trimpath",
            "-ldflags",
            datapath.traefik_ldflags(datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")),
            "-o",
            str(partial),
            datapath.TRAEFIK_PACKAGE,
        ],
        cwd=wrapper,
    )
    partial.replace(traefik_bin())
    log(f"built traefik {datapath.TRAEFIK_VERSION} in {time.monotonic() - started:.0f}s")


def build_all() -> None:
    if shutil.which("go") is None:
        raise SystemExit("go is not installed; the local control plane is built from Go modules")
    build_etcd()
    build_kwok()
    build_helm()
    build_k8s()
    build_traefik()


# --------------------------------------------------------------------------- run


@dataclass
class Ports:
    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int
    kwok: int


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def kubeconfig_path() -> Path:
    return STATE / "kubeconfig"


def _pids() -> dict[str, int]:
    path = STATE / "pids.json"
    if not path.exists():
        return {}
    return {k: int(v) for k, v in json.loads(path.read_text()).items()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    # A zombie still answers kill(0); read its state.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _ssl_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(STATE / "pki" / "ca.crt"))


def _token() -> str:
    return (STATE / "pki" / "admin.token").read_text().strip()


def api(
    method: str, path: str, body: object | None = None, timeout: float = 10
) -> tuple[int, object]:
    """One request to the local API server as the admin user."""
    server = json.loads((STATE / "endpoints.json").read_text())["apiserver"]
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        server + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {_token()}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, context=_ssl_context(), timeout=timeout) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw.startswith(b"{") else raw.decode()
    except urllib.error.HTTPError as err:
        raw = err.read()
        return err.code, json.loads(raw) if raw.startswith(b"{") else raw.decode()


def data_path_on() -> bool:
    return os.environ.get("BLUEGREEN_DATA_PATH", "") not in ("", "0")


DATA_PATH_COMPONENTS = ("podrunner", "traefik")


def healthy() -> bool:
    pids = _pids()
    if not pids or not all(_alive(p) for p in pids.values()):
        return False
    if data_path_on() and not all(name in pids for name in DATA_PATH_COMPONENTS):
        return False
    try:
        status, _ = api("GET", "/readyz", timeout=3)
    except (OSError, KeyError, ValueError):
        return False
    return status == 200


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_pki(pki: Path) -> None:
    pki.mkdir(parents=True, exist_ok=True)
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(pki / "ca.key"),
        "-out",
        str(pki / "ca.crt"),
        "-days",
        "3650",
        "-subj",
        "/CN=bluegreen-local-ca",
    )
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(pki / "apiserver.key"),
        "-out",
        str(pki / "apiserver.csr"),
        "-subj",
        "/CN=kube-apiserver",
    )
    ext = pki / "apiserver.ext"
    ext.write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost,IP:10.96.0.1,DNS:kubernetes,"
        "DNS:kubernetes.default,DNS:kubernetes.default.svc,"
        "DNS:kubernetes.default.svc.cluster.local\n"
        "extendedKeyUsage=serverAuth\n"
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        str(pki / "apiserver.csr"),
        "-CA",
        str(pki / "ca.crt"),
        "-CAkey",
        str(pki / "ca.key"),
        "-CAcreateserial",
        "-out",
        str(pki / "apiserver.crt"),
        "-days",
        "3650",
        "-extfile",
        str(ext),
    )
    _openssl("genrsa", "-out", str(pki / "sa.key"), "2048")
    _openssl("rsa", "-in", str(pki / "sa.key"), "-pubout", "-out", str(pki / "sa.pub"))
    token = os.urandom(24).hex()
    (pki / "admin.token").write_text(token + "\n")
    (pki / "tokens.csv").write_text(f'{token},{ADMIN_TOKEN_USER},1000,"system:masters"\n')
    for f in pki.iterdir():
        f.chmod(0o600)


def write_kubeconfig(path: Path, server: str) -> None:
    ca = base64.b64encode((STATE / "pki" / "ca.crt").read_bytes()).decode()
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "bluegreen-local",
                        "cluster": {"server": server, "certificate-authority-data": ca},
                    }
                ],
                "users": [{"name": ADMIN_TOKEN_USER, "user": {"token": _token()}}],
                "contexts": [
                    {
                        "name": "bluegreen-local",
                        "context": {"cluster": "bluegreen-local", "user": ADMIN_TOKEN_USER},
                    }
                ],
                "current-context": "bluegreen-local",
            },
            indent=2,
        )
    )
    path.chmod(0o600)


def _spawn(name: str, cmd: list[str], logs: Path) -> int:
    commands_file = STATE / "commands.json"
    commands = json.loads(commands_file.read_text()) if commands_file.exists() else {}
    commands[name] = cmd
    commands_file.write_text(json.dumps(commands, indent=2))
    out = (logs / f"{name}.log").open("ab")
    out.write(f"\n=== {datetime.now(UTC).isoformat()} {' '.join(cmd)}\n".encode())
    out.flush()
    proc = subprocess.Popen(
        cmd,
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        cwd=STATE,
    )
    return proc.pid


def _wait(what: str, check: object, timeout: float) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout
    last_err: Exception | None = None
    while time.monotonic() < deadline:
        for name, pid in _pids().items():
            if not _alive(pid):
                raise SystemExit(
                    f"{name} exited while waiting for {what}; see {STATE / 'logs' / (name + '.log')}"
                )
        try:
            if check():
                return
        except Exception as err:  # noqa: BLE001 - retried until the deadline
            last_err = err
        time.sleep(0.2)
    raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what} (last error: {last_err})")


def _save_pids(pids: dict[str, int]) -> None:
    (STATE / "pids.json").write_text(json.dumps(pids, indent=2))


def require_pod_network() -> None:
    if not datapath.pod_network_is_local():
        raise SystemExit(
            "the data path needs kwok's pod range 10.244.0.0/16 on a local device: start it "
            "inside a private network namespace (`python3 tools/netns.py run -- CMD`, or "
            "`make cluster DATA_PATH=1`)"
        )


def up() -> None:
    if data_path_on():
        require_pod_network()
    if healthy():
        log("local control plane already running")
        print(f"export KUBECONFIG={kubeconfig_path()}")
        return
    down(quiet=True)
    (STATE / "datapath.json").unlink(missing_ok=True)
    build_all()
    started = time.monotonic()
    if STATE.exists():
        shutil.rmtree(STATE / "etcd", ignore_errors=True)
        shutil.rmtree(STATE / "pki", ignore_errors=True)
    logs = STATE / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for old in logs.glob("*.log"):
        old.unlink()
    make_pki(STATE / "pki")
    ports = Ports(*(free_port() for _ in range(6)))
    server = f"https://127.0.0.1:{ports.apiserver}"
    (STATE / "endpoints.json").write_text(
        json.dumps(
            {
                "apiserver": server,
                "etcd": f"http://127.0.0.1:{ports.etcd_client}",
                "kwok": f"http://127.0.0.1:{ports.kwok}",
            }
        )
    )
    write_kubeconfig(kubeconfig_path(), server)
    (STATE / "stages.yaml").write_text((REPO / "tools" / "kwok-stages.yaml").read_text())
    pki = STATE / "pki"
    pids: dict[str, int] = {}

    etcd_peer = f"http://127.0.0.1:{ports.etcd_peer}"
    etcd_client = f"http://127.0.0.1:{ports.etcd_client}"
    pids["etcd"] = _spawn(
        "etcd",
        [
            str(etcd_bin()),
            "--name=local",
            f"--data-dir={STATE / 'etcd'}",
            f"--listen-client-urls={etcd_client}",
            f"--advertise-client-urls={etcd_client}",
            f"--listen-peer-urls={etcd_peer}",
            f"--initial-advertise-peer-urls={etcd_peer}",
            f"--initial-cluster=local={etcd_peer}",
            "--listen-metrics-urls=",
            "--unsafe-no-fsync=true",
            "--quota-backend-bytes=4294967296",
            "--log-level=warn",
            "--snapshot-count=10000",
        ],
        logs,
    )
    _save_pids(pids)

    def etcd_ok() -> bool:
        with urllib.request.urlopen(etcd_client + "/health", timeout=2) as r:
            return b'"health":"true"' in r.read()

    _wait("etcd", etcd_ok, 60)

    pids["kube-apiserver"] = _spawn(
        "kube-apiserver",
        [
            str(k8s_bin("kube-apiserver")),
            f"--etcd-servers={etcd_client}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={ports.apiserver}",
            f"--cert-dir={pki}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--token-auth-file={pki / 'tokens.csv'}",
            "--authorization-mode=Node,RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--allow-privileged=true",
            # The advertised address is loopback, which the endpoint reconciler refuses.
            "--endpoint-reconciler-type=none",
            "--profiling=false",
            "--enable-priority-and-fairness=true",
            "--max-requests-inflight=1000",
            "--max-mutating-requests-inflight=500",
            "--v=1",
        ],
        logs,
    )
    _save_pids(pids)
    _wait("kube-apiserver /readyz", lambda: api("GET", "/readyz", timeout=3)[0] == 200, 120)

    pids["kube-controller-manager"] = _spawn(
        "kube-controller-manager",
        [
            str(k8s_bin("kube-controller-manager")),
            f"--kubeconfig={kubeconfig_path()}",
            f"--authentication-kubeconfig={kubeconfig_path()}",
            f"--authorization-kubeconfig={kubeconfig_path()}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports.controller_manager}",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--controllers=*,-nodeipam",
            "--kube-api-qps=200",
            "--kube-api-burst=400",
            "--concurrent-deployment-syncs=20",
            "--concurrent-replicaset-syncs=20",
            "--concurrent-service-endpoint-syncs=20",
            "--concurrent-gc-syncs=40",
            "--v=1",
        ],
        logs,
    )
    pids["kube-scheduler"] = _spawn(
        "kube-scheduler",
        [
            str(k8s_bin("kube-scheduler")),
            f"--kubeconfig={kubeconfig_path()}",
            f"--authentication-kubeconfig={kubeconfig_path()}",
            f"--authorization-kubeconfig={kubeconfig_path()}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports.scheduler}",
            "--kube-api-qps=200",
            "--kube-api-burst=400",
            "--v=1",
        ],
        logs,
    )
    pids["kwok"] = _spawn(
        "kwok",
        [
            str(kwok_bin()),
            f"--kubeconfig={kubeconfig_path()}",
            f"--config={STATE / 'stages.yaml'}",
            "--manage-all-nodes=true",
            "--cidr=10.244.0.0/16",
            "--node-ip=10.0.0.1",
            f"--server-address=127.0.0.1:{ports.kwok}",
            "--node-lease-duration-seconds=40",
        ],
        logs,
    )
    _save_pids(pids)

    for i in range(NODE_COUNT):
        create_node(f"kwok-node-{i}")

    def nodes_ready() -> bool:
        _, body = api("GET", "/api/v1/nodes")
        assert isinstance(body, dict)
        ready = [
            n
            for n in body.get("items", [])
            if any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in n.get("status", {}).get("conditions", [])
            )
        ]
        return len(ready) >= NODE_COUNT

    _wait("fake nodes to be Ready", nodes_ready, 60)

    def default_sa() -> bool:
        return api("GET", "/api/v1/namespaces/default/serviceaccounts/default")[0] == 200

    _wait("the default ServiceAccount", default_sa, 60)
    if data_path_on():
        start_data_path(pids, logs)
    log(f"local control plane ready in {time.monotonic() - started:.1f}s; logs in {logs}")
    print(f"export KUBECONFIG={kubeconfig_path()}")


# --------------------------------------------------------------------------- data path


def venv_python() -> Path:
    python = REPO / ".venv" / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"{python} is missing: the data path needs the virtualenv (make setup)")
    return python


def _create(path: str, body: dict[str, object]) -> bool:
    """POST one object; True once it exists (False while its API is not served yet)."""
    status, answer = api("POST", path, body)
    if status in (201, 409):
        return True
    if status == 404:
        return False
    raise SystemExit(f"creating {body['kind']} failed: {status} {answer}")


def install_gateway_api() -> None:
    crds = datapath.gateway_api_crds({**os.environ, **GO_ENV}, STATE)
    kubectl = REPO / ".venv" / "bin" / "kubectl"
    applied = subprocess.run(
        [
            str(kubectl),
            f"--kubeconfig={kubeconfig_path()}",
            "apply",
            "--server-side",
            "-f",
            str(crds),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if applied.returncode != 0:
        raise SystemExit(f"installing the Gateway API CRDs failed:\n{applied.stderr}")


def _answers(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.status == 200


def create_routing_objects(gateway_port: int) -> None:
    """The IngressClass Traefik's ingress-nginx provider serves, and a Gateway for routes."""
    _create("/apis/networking.k8s.io/v1/ingressclasses", datapath.ingress_class())
    namespace = {"apiVersion": "v1", "kind": "Namespace"}
    _create("/api/v1/namespaces", {**namespace, "metadata": {"name": datapath.GATEWAY_NAMESPACE}})
    gateways = "/apis/gateway.networking.k8s.io/v1"
    _wait(
        "the GatewayClass API",
        lambda: _create(f"{gateways}/gatewayclasses", datapath.gateway_class()),
        60,
    )
    _create(
        f"{gateways}/namespaces/{datapath.GATEWAY_NAMESPACE}/gateways",
        datapath.gateway(gateway_port),
    )


def gateway_programmed() -> bool:
    path = (
        f"/apis/gateway.networking.k8s.io/v1/namespaces/{datapath.GATEWAY_NAMESPACE}"
        f"/gateways/{datapath.GATEWAY_NAME}"
    )
    status, body = api("GET", path)
    if status != 200 or not isinstance(body, dict):
        return False
    conditions = body.get("status", {}).get("conditions", [])
    return any(c["type"] == "Programmed" and c["status"] == "True" for c in conditions)


def start_data_path(pids: dict[str, int], logs: Path) -> None:
    """The kubelet stand-in, Traefik and the objects they serve; datapath.json says where."""
    started = time.monotonic()
    install_gateway_api()
    ports = {name: free_port() for name in ("web", "websecure", "gateway", "traefik")}
    create_routing_objects(ports["gateway"])
    ready_file = STATE / "podrunner.ready"
    ready_file.unlink(missing_ok=True)
    pids["podrunner"] = _spawn(
        "podrunner",
        [
            str(venv_python()),
            str(REPO / "tools" / "podrunner.py"),
            f"--kubeconfig={kubeconfig_path()}",
            f"--log-dir={logs / 'pods'}",
            f"--ready-file={ready_file}",
        ],
        logs,
    )
    _save_pids(pids)
    _wait("the kubelet stand-in", ready_file.exists, 60)
    traefik = datapath.traefik_command(traefik_bin(), ports)
    pids["traefik"] = _spawn("traefik", ["env", f"KUBECONFIG={kubeconfig_path()}", *traefik], logs)
    _save_pids(pids)
    ping = f"http://127.0.0.1:{ports['traefik']}/ping"
    _wait("traefik /ping", lambda: _answers(ping), 60)
    _wait("traefik to program the Gateway", gateway_programmed, 60)
    (STATE / "datapath.json").write_text(json.dumps(datapath.data_path_info(ports), indent=2))
    log(f"data path ready in {time.monotonic() - started:.1f}s: {STATE / 'datapath.json'}")


def create_node(name: str) -> None:
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
                "topology.kubernetes.io/zone": f"local-{name[-1]}",
            },
        },
        "spec": {},
    }
    status, body = api("POST", "/api/v1/nodes", node)
    if status not in (201, 409):
        raise SystemExit(f"creating node {name} failed: {status} {body}")


def _stop_group(pid: int, timeout: float, poll: float) -> None:
    """SIGTERM the process group `pid` leads (a component and its children), wait up to
    `timeout` s for `pid` to exit, checking every `poll` s, then SIGKILL the group."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(poll)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def down(quiet: bool = False) -> None:
    pids = _pids()
    # Stop in reverse order of start: the fake kubelet and controllers first, etcd last.
    for name, pid in reversed(list(pids.items())):
        if not _alive(pid):
            continue
        _stop_group(pid, timeout=10, poll=0.1)
        if not quiet:
            log(f"stopped {name} (pid {pid})")
    (STATE / "pids.json").unlink(missing_ok=True)
    shutil.rmtree(STATE / "etcd", ignore_errors=True)


def restart(name: str) -> None:
    """Stop one component and start it again with the same command line (chaos tests)."""
    pids = _pids()
    commands_file = STATE / "commands.json"
    commands = json.loads(commands_file.read_text()) if commands_file.exists() else {}
    if name not in pids:
        raise SystemExit(f"no running component named {name}: {sorted(pids)}")
    pid = pids[name]
    if name not in commands:
        # A cluster started before commands were recorded: read the running command line.
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        commands[name] = [part.decode() for part in raw.split(b"\0") if part]
    _stop_group(pid, timeout=20, poll=0.05)
    started = time.monotonic()
    pids[name] = _spawn(name, commands[name], STATE / "logs")
    _save_pids(pids)
    if name == "kube-apiserver":
        _wait("kube-apiserver /readyz", lambda: api("GET", "/readyz", timeout=3)[0] == 200, 120)
    log(f"restarted {name} in {time.monotonic() - started:.1f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "command", choices=["build", "up", "down", "status", "gen-k8s-mod", "env", "restart"]
    )
    parser.add_argument("component", nargs="?", help="with restart: e.g. kube-apiserver")
    parser.add_argument(
        "--data-path", action="store_true", help="with up: also Traefik and pods that run"
    )
    args = parser.parse_args()
    if args.data_path:
        os.environ["BLUEGREEN_DATA_PATH"] = "1"
    if args.command == "build":
        build_all()
    elif args.command == "up":
        up()
    elif args.command == "down":
        down()
    elif args.command == "status":
        ok = healthy()
        print("running" if ok else "stopped")
        sys.exit(0 if ok else 1)
    elif args.command == "restart":
        restart(args.component or "kube-apiserver")
    elif args.command == "gen-k8s-mod":
        gen_k8s_mod()
    elif args.command == "env":
        print(f"export KUBECONFIG={kubeconfig_path()}")
        print(f"export PATH={bin_dir('helm', HELM_VERSION)}:$PATH")


if __name__ == "__main__":
    main()
