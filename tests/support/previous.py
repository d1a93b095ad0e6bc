"""A previous version of the operator, taken from this repository's git history, to run
as a real process beside the current one (upgrade tests).

Only its `operator/bluegreen` package is extracted; it runs with this checkout's virtual
environment, so a version far enough back that its dependencies differ would not do.
Without the commit in the clone (a shallow checkout) the tests that need it fail and say
how to get it: they are never skipped.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from tests.support.cluster import REPO

SELECTED_BY_NAME = "c3319c135f2ab7286151ac7b684202297cc48cb7"
"""The last revision whose operator selected pods by `app.kubernetes.io/name` (plus
`bluegreen.dev/color`) and did not know `bluegreen.dev/app`."""

CACHE = REPO / ".cache" / "previous-operator"


class PreviousVersionMissingError(RuntimeError):
    pass


def _git(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, check=False)


def operator_source(commit: str = SELECTED_BY_NAME) -> Path:
    """A directory holding the `bluegreen` package as it was at `commit` (extracted once,
    kept in .cache/previous-operator/), for `OperatorProcess(source=...)`."""
    dest = CACHE / commit[:12]
    if (dest / "bluegreen" / "runtime" / "handlers.py").is_file():
        return dest
    if _git("cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
        _git("fetch", "--quiet", "--unshallow")  # a shallow clone: its origin has the rest
    if _git("cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
        raise PreviousVersionMissingError(
            f"the upgrade tests run the operator of commit {commit[:12]}, which this clone "
            "does not have (a shallow checkout?): `git fetch --unshallow`, or check out with "
            "fetch-depth: 0"
        )
    archive = _git("archive", "--format=tar", commit, "operator/bluegreen")
    if archive.returncode != 0:
        raise PreviousVersionMissingError(archive.stderr.decode(errors="replace"))
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=CACHE, prefix=".extract-"))
    try:
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(tmp, filter="data")
        (tmp / "operator" / "bluegreen").rename(tmp / "bluegreen")
        (tmp / "operator").rmdir()
        tmp.rename(dest)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not dest.is_dir():
            raise
    return dest
