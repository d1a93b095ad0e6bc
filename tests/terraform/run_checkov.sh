#!/usr/bin/env bash
# Static security scan of terraform/ with checkov, offline.
#
# checkov pins many packages of its own, so it lives in its own virtualenv
# (.cache/checkov-venv), never in the project's .venv. The venv is created on first use and
# reused afterwards; it is rebuilt only if the installed checkov is not the pinned version.
#
# Exit status: 0 when checkov reports no failed check, non-zero otherwise (checkov's own
# exit status; inline `#checkov:skip=CKV_...:reason` comments count as skipped, not failed).
set -euo pipefail

CHECKOV_VERSION="3.3.30"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
uv="${repo_root}/.cache/bootstrap/bin/uv"
venv="${repo_root}/.cache/checkov-venv"
python="${venv}/bin/python"
checkov="${venv}/bin/checkov"

installed_version() {
  "${python}" -c 'import importlib.metadata as m; print(m.version("checkov"))' 2>/dev/null || true
}

if [[ ! -x "${checkov}" || "$(installed_version)" != "${CHECKOV_VERSION}" ]]; then
  if [[ ! -x "${uv}" ]]; then
    echo "run_checkov.sh: ${uv} is missing; cannot create ${venv}" >&2
    exit 2
  fi
  if [[ ! -x "${python}" ]]; then
    nice -n 19 "${uv}" venv "${venv}" --python 3.11
  fi
  nice -n 19 "${uv}" pip install --python "${python}" "checkov==${CHECKOV_VERSION}"
fi

cd "${repo_root}"
# --skip-download: no call to the Prisma Cloud API for guidelines (the machine is offline,
# and the scan must not depend on a remote service). BC_SKIP_MAPPING does the same for
# older code paths.
export BC_SKIP_MAPPING=TRUE
exec nice -n 19 "${checkov}" -d terraform --framework terraform --quiet --compact --skip-download "$@"
