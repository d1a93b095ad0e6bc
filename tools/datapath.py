"""The data path of the local control plane: Traefik, built from the Go module proxy.

Used by tools/localcluster.py; standard library only. `prepare_traefik_sources` writes the
two local modules that tools/traefik/go.mod replaces into .cache/build/traefik/:

- `ext/`: Traefik's dynamic-configuration extension point (`github.com/traefik/traefik/
  dynamic/ext`), a folder of Traefik's repository that no module proxy serves. Traefik
  embeds two structs of it, empty in the open-source build; the stub is two empty structs.
- `lego/`: lego v5 (the ACME client) copied from the module cache, with the file that
  registers its DNS-01 providers replaced by one that registers none: the module proxy
  refuses several of those providers' SDKs, and DNS-01 has no use on loopback.

Nothing here is committed: the folder is rebuilt from the module cache on every build.

Another Traefik version: change TRAEFIK_VERSION (and LEGO_VERSION to the lego v5 its go.mod
requires) here and the require line in tools/traefik/go.mod, run `python3
tools/localcluster.py build` once so that .cache/build/traefik exists, then `go mod tidy`
in tools/traefik (GOWORK=off GOTOOLCHAIN=local GOFLAGS=-mod=mod).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
from pathlib import Path

TRAEFIK_VERSION = "v3.7.13"
LEGO_MODULE = "github.com/go-acme/lego/v5"
LEGO_VERSION = "v5.4.1"
EXT_MODULE = "github.com/traefik/traefik/dynamic/ext"
TRAEFIK_PACKAGE = "github.com/traefik/traefik/v3/cmd/traefik"
TRAEFIK_VERSION_PACKAGE = "github.com/traefik/traefik/v3/pkg/version"

EXT_SOURCE = """\
// Package ext is the extension point of Traefik's dynamic configuration. The
// open-source build embeds these structs empty; the local data path needs nothing more.
package ext

// HTTP extends the HTTP configuration.
type HTTP struct{}

// Router extends a router's configuration.
type Router struct{}
"""

NO_DNS_PROVIDERS_SOURCE = """\
// Package dns would map DNS-01 provider names to their implementations. In this build no
// provider is registered: the local data path serves plain HTTP on loopback addresses.
package dns

import (
\t"fmt"

\t"github.com/go-acme/lego/v5/challenge"
)

// NewDNSChallengeProviderByName refuses every name: no DNS-01 provider is built in.
func NewDNSChallengeProviderByName(name string) (challenge.Provider, error) {
\treturn nil, fmt.Errorf("unrecognized DNS provider: %s (none is built into this Traefik)", name)
}
"""


def module_dir(module: str, version: str, env: dict[str, str], cwd: Path) -> Path:
    """Download a module into the module cache (if needed) and return its folder."""
    out = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{version}"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"go mod download {module}@{version} failed:\n{out.stdout}{out.stderr}")
    return Path(json.loads(out.stdout)["Dir"])


def _make_writable(root: Path) -> None:
    """The module cache is read-only; the copy must be editable and removable."""
    for path in (root, *root.rglob("*")):
        mode = path.stat().st_mode
        path.chmod(mode | stat.S_IWUSR | (stat.S_IXUSR if path.is_dir() else 0))


def write_ext_stub(target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    (target / "go.mod").write_text(f"module {EXT_MODULE}\n\ngo 1.26.0\n")
    (target / "ext.go").write_text(EXT_SOURCE)


def write_lego_copy(source: Path, target: Path) -> None:
    if target.exists():
        _make_writable(target)
        shutil.rmtree(target)
    shutil.copytree(source, target)
    _make_writable(target)
    dns = target / "providers" / "dns"
    for test_file in dns.glob("*_test.go"):
        test_file.unlink()
    (dns / "zz_gen_dns_providers.go").write_text(NO_DNS_PROVIDERS_SOURCE)


def prepare_traefik_sources(build_root: Path, go_env: dict[str, str], mod_dir: Path) -> None:
    """Write ext/ and lego/ under build_root, where tools/traefik/go.mod expects them."""
    build_root.mkdir(parents=True, exist_ok=True)
    write_ext_stub(build_root / "ext")
    # Download from outside the wrapper module: its go.mod cannot load before lego/ exists.
    lego = module_dir(LEGO_MODULE, LEGO_VERSION, {**go_env, "GOFLAGS": "-mod=mod"}, build_root)
    write_lego_copy(lego, build_root / "lego")


def traefik_ldflags(build_date: str) -> str:
    stamp = f"-X {TRAEFIK_VERSION_PACKAGE}.Version={TRAEFIK_VERSION}"
    return f"-s -w {stamp} -X {TRAEFIK_VERSION_PACKAGE}.BuildDate={build_date}"


def go_env() -> dict[str, str]:
    return {**os.environ, "GOWORK": "off", "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}


# --------------------------------------------------------------------------- run

GATEWAY_API_MODULE = "sigs.k8s.io/gateway-api"
GATEWAY_API_VERSION = "v1.6.1"
POD_NETWORK_PROBE = "10.244.0.1"
"""An address of kwok's pod range: bindable only inside the data path's namespace."""
INGRESS_CLASS = "nginx"
GATEWAY_CLASS = "traefik"
GATEWAY_NAMESPACE = "datapath"
GATEWAY_NAME = "web"
RUN_LABEL = "kwok.bluegreen.dev/run"


def pod_network_is_local() -> bool:
    """True inside the namespace of tools/netns.py, where pod IPs are local addresses."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((POD_NETWORK_PROBE, 0))
        except OSError:
            return False
    return True


def gateway_api_crds(go_env: dict[str, str], cwd: Path) -> Path:
    """The standard-channel CRDs, from the module cache (the Traefik build fetched them)."""
    env = {**go_env, "GOPROXY": "off", "GOFLAGS": "-mod=mod"}
    return module_dir(GATEWAY_API_MODULE, GATEWAY_API_VERSION, env, cwd) / "config/crd/standard"


def ingress_class() -> dict[str, object]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": {"name": INGRESS_CLASS},
        "spec": {"controller": "k8s.io/ingress-nginx"},
    }


def gateway_class() -> dict[str, object]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "GatewayClass",
        "metadata": {"name": GATEWAY_CLASS},
        "spec": {"controllerName": "traefik.io/gateway-controller"},
    }


def gateway(port: int) -> dict[str, object]:
    """One HTTP listener on the port of Traefik's `gateway` entrypoint; routes from every
    namespace may attach."""
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": GATEWAY_NAME, "namespace": GATEWAY_NAMESPACE},
        "spec": {
            "gatewayClassName": GATEWAY_CLASS,
            "listeners": [
                {
                    "name": "http",
                    "protocol": "HTTP",
                    "port": port,
                    "allowedRoutes": {"namespaces": {"from": "All"}},
                }
            ],
        },
    }


def entrypoint_flags(name: str, port: int) -> list[str]:
    return [
        f"--entryPoints.{name}.address=127.0.0.1:{port}",
        # Headers that alias another (X_Forwarded_For) are dropped, not passed on.
        f"--entryPoints.{name}.http.aliasHeadersStrategy=delete",
    ]


def traefik_command(binary: Path, ports: dict[str, int]) -> list[str]:
    """Traefik on loopback: `web` and `websecure` serve Ingresses (ingress-nginx's
    annotations), `gateway` serves HTTPRoutes, `traefik` answers /ping and the API."""
    entrypoints = [flag for name, port in ports.items() for flag in entrypoint_flags(name, port)]
    return [
        str(binary),
        "--global.checkNewVersion=false",
        "--global.sendAnonymousUsage=false",
        "--log.level=INFO",
        "--log.noColor=true",
        *entrypoints,
        "--entryPoints.websecure.http.tls=true",
        "--ping=true",
        "--api=true",
        "--api.insecure=true",
        "--api.dashboard=false",
        "--providers.providersThrottleDuration=100ms",
        "--providers.kubernetesIngressNGINX=true",
        "--providers.kubernetesIngressNGINX.httpEntryPoint=web",
        "--providers.kubernetesIngressNGINX.httpsEntryPoint=websecure",
        "--providers.kubernetesGateway=true",
    ]


def data_path_info(ports: dict[str, int]) -> dict[str, object]:
    """What tests read from <cluster dir>/datapath.json."""
    return {
        "traefikVersion": TRAEFIK_VERSION,
        "ingress": f"http://127.0.0.1:{ports['web']}",
        "ingressTLS": f"https://127.0.0.1:{ports['websecure']}",
        "gateway": f"http://127.0.0.1:{ports['gateway']}",
        "traefikAPI": f"http://127.0.0.1:{ports['traefik']}",
        "gatewayRef": {"namespace": GATEWAY_NAMESPACE, "name": GATEWAY_NAME},
        "ingressClassName": INGRESS_CLASS,
        "runLabel": {RUN_LABEL: "demo"},
        "demoImage": "registry.example/bluegreen-demo",
    }
