#!/usr/bin/env python3
"""A private network namespace for the local control plane's data path.

Pod IPs must be real, routable addresses (the API server refuses loopback ones in
EndpointSlices), and the pods' processes must listen on them. In a network namespace of
our own, kwok's pod range 10.244.0.0/16 is put on the loopback device: every pod IP is
then local and bindable, and nothing else is reachable. The control plane, the proxy, the
pod processes and the tests all run inside; downloads and builds happen before entering.

    python3 tools/netns.py run -- CMD...   # CMD in a fresh namespace (`make test` runs the
                                           # tests marked datapath so); every process left
                                           # in it is stopped afterwards
    python3 tools/netns.py up              # a lasting namespace `bluegreen` with the local
                                           # control plane and its data path (root only)
    python3 tools/netns.py exec -- CMD...  # CMD inside that lasting namespace
    python3 tools/netns.py down            # stop that control plane, delete the namespace

`run` uses `unshare --net` as root, and `unshare --user --map-root-user --net` otherwise
(where unprivileged user namespaces are allowed). Standard library only.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("BLUEGREEN_CACHE", REPO / ".cache"))
POD_NETWORK = "10.244.0.1/16"
"""kwok's --cidr, put on the loopback device of the namespace."""
NAME = "bluegreen"
"""The lasting namespace of `up`."""
RUN_STATE = CACHE / "cluster-test"
"""The control plane of `run` lives here, apart from one started on the host."""
UP_STATE = CACHE / "cluster-datapath"
SETUP = f"ip link set lo up && ip addr add {POD_NETWORK} dev lo"


def log(msg: str) -> None:
    print(f"[netns] {msg}", file=sys.stderr, flush=True)


def data_path_env(state: Path) -> dict[str, str]:
    """The environment of everything inside: the data path is on, with its own state."""
    return {
        **os.environ,
        "BLUEGREEN_DATA_PATH": "1",
        "BLUEGREEN_CLUSTER_DIR": os.environ.get("BLUEGREEN_CLUSTER_DIR", str(state)),
    }


def unshare_command() -> list[str]:
    if os.geteuid() == 0:
        return ["unshare", "--net"]
    return ["unshare", "--user", "--map-root-user", "--net"]


def net_namespace(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


def processes_in(namespace: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and net_namespace(int(entry.name)) == namespace:
            pids.append(int(entry.name))
    return pids


def stop_processes_in(namespace: str, grace: float = 10.0) -> None:
    """SIGTERM every process still in the namespace, then SIGKILL what is left."""
    pids = processes_in(namespace)
    if not pids:
        return
    log(f"stopping {len(pids)} process(es) left in the namespace")
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while processes_in(namespace) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in processes_in(namespace):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def wait_for_new_namespace(pid: int, own: str | None, timeout: float = 10.0) -> str | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = net_namespace(pid)
        if current is None or current != own:
            return current
        time.sleep(0.01)
    return None


def run(command: list[str]) -> int:
    if not command:
        raise SystemExit("netns.py run: no command given (netns.py run -- CMD...)")
    if os.environ.get("KUBECONFIG"):
        raise SystemExit(
            "netns.py run: KUBECONFIG is set; tests against another cluster run without a "
            "private namespace (unset KUBECONFIG to use the local control plane)"
        )
    own = net_namespace(os.getpid())
    inner = ["sh", "-c", f'{SETUP} && exec "$@"', "netns", *command]
    child = subprocess.Popen([*unshare_command(), "--", *inner], env=data_path_env(RUN_STATE))
    namespace = wait_for_new_namespace(child.pid, own)

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    code = child.wait()
    if code != 0 and namespace is None:
        log(
            "could not enter a private network namespace: `unshare --net` needs root, or "
            "unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1)"
        )
    if namespace is not None and namespace != own:
        stop_processes_in(namespace)
    return code


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=False)


def lasting_exists() -> bool:
    return NAME in _ip("netns", "list").stdout.split()


def up() -> int:
    if os.geteuid() != 0:
        raise SystemExit(
            "netns.py up: a lasting network namespace needs root (ip netns add); "
            "`make test` needs no root: it uses `netns.py run`"
        )
    if not lasting_exists():
        created = _ip("netns", "add", NAME)
        if created.returncode != 0:
            raise SystemExit(f"ip netns add {NAME} failed: {created.stderr.strip()}")
        setup = subprocess.run(["ip", "netns", "exec", NAME, "sh", "-c", SETUP], check=False)
        if setup.returncode != 0:
            raise SystemExit(f"configuring the namespace {NAME} failed")
    result = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            NAME,
            sys.executable,
            str(REPO / "tools" / "localcluster.py"),
            "up",
        ],
        env=data_path_env(UP_STATE),
        check=False,
    )
    if result.returncode == 0:
        log(f"the control plane and its data path run in the network namespace {NAME}:")
        log("  python3 tools/netns.py exec -- kubectl get pods -A")
        log(f"  sudo ip netns exec {NAME} bash     # a shell inside")
    return result.returncode


def exec_in(command: list[str]) -> int:
    if not lasting_exists():
        raise SystemExit(f"no network namespace {NAME}: start it with `make cluster DATA_PATH=1`")
    env = data_path_env(UP_STATE)
    env.setdefault("KUBECONFIG", str(Path(env["BLUEGREEN_CLUSTER_DIR"]) / "kubeconfig"))
    env["PATH"] = f"{REPO / '.venv' / 'bin'}:{env.get('PATH', '')}"  # kubectl, pytest
    return subprocess.run(["ip", "netns", "exec", NAME, *command], env=env, check=False).returncode


def down() -> int:
    if not UP_STATE.exists() and not lasting_exists():
        return 0
    subprocess.run(
        [sys.executable, str(REPO / "tools" / "localcluster.py"), "down"],
        env=data_path_env(UP_STATE),
        check=False,
    )
    if lasting_exists():
        namespace = net_namespace_of_lasting()
        if namespace is not None:
            stop_processes_in(namespace)
        _ip("netns", "delete", NAME)
        log(f"deleted the network namespace {NAME}")
    return 0


def net_namespace_of_lasting() -> str | None:
    try:
        return f"net:[{os.stat(f'/run/netns/{NAME}').st_ino}]"
    except OSError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["run", "up", "exec", "down"])
    parser.add_argument("args", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    rest = args.args[1:] if args.args[:1] == ["--"] else args.args
    if args.command == "run":
        sys.exit(run(rest))
    if args.command == "up":
        sys.exit(up())
    if args.command == "exec":
        sys.exit(exec_in(rest))
    sys.exit(down())


if __name__ == "__main__":
    main()
