#!/usr/bin/env python3
"""Build the Go programs the tests run besides the control plane, from the Go module proxy.

    python3 tools/gotools.py build            # every tool below that is missing or stale
    python3 tools/gotools.py build kstatus    # one of them
    python3 tools/gotools.py path registry    # where its binary is (built or not)

| tool        | wrapper module   | what it is                                                    |
| ----------- | ---------------- | ------------------------------------------------------------- |
| helm        | (go install)     | helm v4, as tools/localcluster.py builds it                   |
| registry    | tools/registry/  | CNCF distribution's OCI registry (helm push / install oci://)  |
| kstatus     | tools/kstatus/   | sigs.k8s.io/cli-utils kstatus: what Flux's healthChecks decide |
| argocd-lua  | tools/gopherlua/ | gopher-lua running an Argo CD health check as Argo CD does    |
| flux-health | tools/fluxcel/   | Flux's own evaluator of a Kustomization's healthCheckExprs    |

`make setup` runs `build`, with or without KUBECONFIG: none of these is part of the local
control plane. Each binary is kept in .cache/bin/<tool>-<version>/ with a stamp of the
wrapper module it was built from (go.mod, go.sum, main.go); a binary whose stamp matches is
not built again. Only the standard library is used, like tools/localcluster.py.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

if __package__:  # imported by the tests as tools.gotools
    from .localcluster import GO_ENV, REPO, bin_dir, build_helm, helm_bin, log
else:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from localcluster import GO_ENV, REPO, bin_dir, build_helm, helm_bin, log

STAMP = ".built-from"


@dataclass(frozen=True)
class Tool:
    name: str  # the binary's name and its folder's prefix in .cache/bin
    module: str  # the wrapper module's folder under tools/
    library: str  # the Go module it wraps
    version: str  # that module's version (the folder's suffix)
    ldflags: str = "-s -w"

    @property
    def source(self) -> Path:
        return REPO / "tools" / self.module

    @property
    def binary(self) -> Path:
        return bin_dir(self.name, self.version) / self.name

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for name in ("go.mod", "go.sum", "main.go"):
            digest.update(name.encode() + b"\0" + (self.source / name).read_bytes() + b"\0")
        return digest.hexdigest()

    def fresh(self) -> bool:
        stamp = self.binary.parent / STAMP
        return (
            self.binary.is_file()
            and stamp.is_file()
            and stamp.read_text().strip() == self.fingerprint()
        )

    def build(self) -> None:
        if self.fresh():
            return
        if self.version not in (self.source / "go.mod").read_text():
            raise SystemExit(f"tools/{self.module}/go.mod does not require {self.library}")
        target = self.binary.parent
        target.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        log(f"go build {self.library} {self.version} -> {self.binary}")
        subprocess.run(
            [
                *("nice", "-n", "19", "go", "build", "-trimpath"),
                *("-ldflags", self.ldflags, "-o", str(self.binary) + ".tmp", "."),
            ],
            cwd=self.source,
            env={**os.environ, **GO_ENV},
            check=True,
        )
        Path(str(self.binary) + ".tmp").replace(self.binary)
        (target / STAMP).write_text(self.fingerprint() + "\n")
        log(f"built {self.name} {self.version} in {time.monotonic() - started:.0f}s")


REGISTRY_VERSION = "v3.1.2"
KSTATUS_VERSION = "v0.37.2"
GOPHER_LUA_VERSION = "v1.1.2"
FLUX_RUNTIME_VERSION = "v0.117.0"

TOOLS = {
    t.name: t
    for t in (
        Tool(
            "registry",
            "registry",
            "github.com/distribution/distribution/v3",
            REGISTRY_VERSION,
            # `registry --version` prints the module's version, as its release builds do.
            "-s -w -X github.com/distribution/distribution/v3/version.version=" + REGISTRY_VERSION,
        ),
        Tool("kstatus", "kstatus", "sigs.k8s.io/cli-utils", KSTATUS_VERSION),
        Tool("argocd-lua", "gopherlua", "github.com/yuin/gopher-lua", GOPHER_LUA_VERSION),
        Tool("flux-health", "fluxcel", "github.com/fluxcd/pkg/runtime", FLUX_RUNTIME_VERSION),
    )
}


def tool_bin(name: str) -> Path:
    """The binary of one of TOOLS (or helm), whether or not it is built yet."""
    if name == "helm":
        return helm_bin()
    return TOOLS[name].binary


def build(names: list[str]) -> None:
    for name in names or ["helm", *TOOLS]:
        if name == "helm":
            build_helm()
        else:
            TOOLS[name].build()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("command", choices=["build", "path"])
    parser.add_argument("tools", nargs="*", metavar="TOOL", help="helm, " + ", ".join(TOOLS))
    args = parser.parse_args()
    unknown = [t for t in args.tools if t != "helm" and t not in TOOLS]
    if unknown:
        parser.error("unknown tool: " + ", ".join(unknown))
    if args.command == "build":
        build(args.tools)
    else:
        for name in args.tools or ["helm", *TOOLS]:
            print(tool_bin(name))


if __name__ == "__main__":
    main()
