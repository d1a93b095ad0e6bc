#!/usr/bin/env bash
# Build actionlint from the Go module proxy into .cache/bin/actionlint-<version>/ (idempotent).
#
# Nothing is downloaded but Go modules: `go install` fetches github.com/rhysd/actionlint at the
# pinned version through GOPROXY and compiles it with the local Go toolchain. A binary already
# there that reports the same version is kept. Prints the binary's path on the last line.
#
# Usage: .github/scripts/build-actionlint.sh
#        ACTIONLINT_VERSION=v1.7.12 .github/scripts/build-actionlint.sh
set -euo pipefail

ACTIONLINT_VERSION="${ACTIONLINT_VERSION:-v1.7.12}"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin_dir="${repo_root}/.cache/bin/actionlint-${ACTIONLINT_VERSION}"
actionlint="${bin_dir}/actionlint"

export GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0

if [[ -x "${actionlint}" ]] && "${actionlint}" -version 2>/dev/null | head -n1 | grep -qx "${ACTIONLINT_VERSION}"; then
  echo "${actionlint}"
  exit 0
fi

command -v go >/dev/null || { echo "build-actionlint.sh: go is not on PATH" >&2; exit 2; }

mkdir -p "${bin_dir}"
start=$(date +%s)
# -ldflags stamps the version the way actionlint's release builds do, so `-version` prints it
# even when the module's build info is unavailable.
GOBIN="${bin_dir}" nice -n 19 go install -trimpath \
  -ldflags "-s -w -X github.com/rhysd/actionlint.version=${ACTIONLINT_VERSION}" \
  "github.com/rhysd/actionlint/cmd/actionlint@${ACTIONLINT_VERSION}"
echo "build-actionlint.sh: built actionlint ${ACTIONLINT_VERSION} in $(( $(date +%s) - start ))s" >&2
echo "${actionlint}"
