#!/usr/bin/env python3
"""Package the operator's Helm chart for a release, with the release's image baked in.

    python3 tools/package_chart.py --version 0.2.0 \\
        --repository ghcr.io/OWNER/bluegreen-operator --digest sha256:<64 hex> --out dist/

A copy of charts/bluegreen-operator gets `image.repository` and `image.digest` set in its
values.yaml (every comment kept), then `helm package --version V --app-version V`. The
package is checked before its path is printed (the last line of output): `helm show values`
has the digest, and `helm template` renders the operator's Deployment with
`repository@digest`. So `helm install oci://...` of the published chart runs exactly the
image the same release built and signed, with no value to set.

The release workflow (.github/workflows/release-operator.yml) runs it, and so does
tests/cluster/test_oci_chart.py. Only the standard library is used, and helm (--helm, or the
one on PATH).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHART = REPO / "charts" / "bluegreen-operator"
DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
# Helm's chart versions are SemVer 2 without a leading v.
VERSION = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$"
)
# registry[:port]/path, lowercase, no tag and no digest.
REPOSITORY = re.compile(r"^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+$")
IMAGE_KEYS = ("repository", "digest")


def bake_values(text: str, repository: str, digest: str) -> str:
    """values.yaml with image.repository and image.digest replaced, nothing else touched."""
    lines = text.splitlines(keepends=True)
    try:
        start = lines.index("image:\n")
    except ValueError:
        raise SystemExit("values.yaml has no top-level `image:` block") from None
    wanted = {"repository": repository, "digest": digest}
    done: set[str] = set()
    for i in range(start + 1, len(lines)):
        line = lines[i]
        if line.strip() and not line.startswith((" ", "#")):
            break  # the next top-level key: the image block has ended
        match = re.match(r"^  (repository|digest):( .*)?\n$", line)
        if match:
            key = match.group(1)
            lines[i] = f'  {key}: "{wanted[key]}"\n'
            done.add(key)
    missing = set(IMAGE_KEYS) - done
    if missing:
        raise SystemExit(f"values.yaml: image.{', image.'.join(sorted(missing))} not found")
    return "".join(lines)


def package(*, version: str, repository: str, digest: str, out: Path, helm: str = "helm") -> Path:
    if not VERSION.match(version):
        raise SystemExit(f"--version {version!r} is not a SemVer version such as 0.2.0")
    if not DIGEST.match(digest):
        raise SystemExit(f"--digest {digest!r} is not sha256:<64 lowercase hex digits>")
    if not REPOSITORY.match(repository):
        raise SystemExit(f"--repository {repository!r}: registry/path, without tag or digest")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / CHART.name
        shutil.copytree(CHART, staged)
        values = staged / "values.yaml"
        values.write_text(bake_values(values.read_text(), repository, digest))
        result = subprocess.run(
            [
                *(helm, "package", str(staged), "--destination", str(out)),
                *("--version", version, "--app-version", version),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    path = out / f"{CHART.name}-{version}.tgz"
    if not path.is_file():
        raise SystemExit(f"helm package made no {path}:\n{result.stdout}{result.stderr}")
    shown = subprocess.run(
        [helm, "show", "values", str(path)], capture_output=True, text=True, check=True
    ).stdout
    if f'digest: "{digest}"' not in shown or f'repository: "{repository}"' not in shown:
        raise SystemExit(f"the packaged values do not have the image:\n{shown}")
    rendered = subprocess.run(
        [helm, "template", "bluegreen-operator", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if f'image: "{repository}@{digest}"' not in rendered:
        raise SystemExit(f"the packaged chart does not render {repository}@{digest}")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--version", required=True, help="chart version and appVersion: 0.2.0")
    parser.add_argument("--repository", required=True, help="the image's repository")
    parser.add_argument("--digest", required=True, help="the image's digest: sha256:...")
    parser.add_argument("--out", type=Path, required=True, help="folder for the .tgz")
    parser.add_argument("--helm", default=shutil.which("helm") or "helm")
    args = parser.parse_args()
    try:
        path = package(
            version=args.version,
            repository=args.repository,
            digest=args.digest,
            out=args.out,
            helm=args.helm,
        )
    except subprocess.CalledProcessError as err:
        sys.exit(f"{' '.join(err.cmd)} failed:\n{err.stdout}{err.stderr}")
    print(path)


if __name__ == "__main__":
    main()
