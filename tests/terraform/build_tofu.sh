#!/usr/bin/env bash
# Build OpenTofu from the Go module proxy into .cache/bin/tofu/tofu (idempotent).
#
# `go install github.com/opentofu/opentofu/cmd/tofu@VERSION` is refused because OpenTofu's
# go.mod has a replace directive (hashicorp/hcl/v2 => opentofu/hcl/v2), and `go install
# pkg@version` only accepts modules that build the same as a dependency as they do as the
# main module. So this script builds the same package from a throw-away wrapper module in a
# temporary directory whose go.mod/go.sum are OpenTofu's own (same requirements, same
# replace), renamed, and requiring OpenTofu at VERSION. Nothing is written to the repository
# except the binary under .cache/ (git-ignored).
#
# Usage: tests/terraform/build_tofu.sh            # builds only if missing or another version
#        TOFU_VERSION=v1.12.6 tests/terraform/build_tofu.sh
set -euo pipefail

TOFU_VERSION="${TOFU_VERSION:-v1.12.6}"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin_dir="${repo_root}/.cache/bin/tofu"
tofu="${bin_dir}/tofu"

export GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
# A missing ~/.terraformrc is not an error worth printing.
export TF_CLI_CONFIG_FILE=/dev/null

if [[ -x "${tofu}" ]] && "${tofu}" version 2>/dev/null | head -n1 | grep -qx "OpenTofu ${TOFU_VERSION}"; then
  echo "build_tofu.sh: ${tofu} is already OpenTofu ${TOFU_VERSION}"
  exit 0
fi

command -v go >/dev/null || { echo "build_tofu.sh: go is not on PATH" >&2; exit 2; }

work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT

# Fetch the module (through GOPROXY) and find its go.mod and go.sum in the module cache.
module_json="$(go mod download -json "github.com/opentofu/opentofu@${TOFU_VERSION}")"
module_dir="$(printf '%s' "${module_json}" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
if [[ -z "${module_dir}" || ! -f "${module_dir}/go.mod" ]]; then
  echo "build_tofu.sh: could not locate github.com/opentofu/opentofu@${TOFU_VERSION} in the module cache" >&2
  printf '%s\n' "${module_json}" >&2
  exit 1
fi

cp "${module_dir}/go.mod" "${work}/go.mod"
cp "${module_dir}/go.sum" "${work}/go.sum"
chmod u+w "${work}/go.mod" "${work}/go.sum"
cd "${work}"
go mod edit -module=example.invalid/tofu-build -require="github.com/opentofu/opentofu@${TOFU_VERSION}"

mkdir -p "${bin_dir}"
start=$(date +%s)
# -X version.dev=no: a release build, as OpenTofu's own release configuration does;
# otherwise `tofu version` reports "-dev".
nice -n 19 go build -trimpath \
  -ldflags "-s -w -X github.com/opentofu/opentofu/version.dev=no" \
  -o "${tofu}.tmp" github.com/opentofu/opentofu/cmd/tofu
mv "${tofu}.tmp" "${tofu}"
echo "build_tofu.sh: built $("${tofu}" version | head -n1) in $(( $(date +%s) - start ))s -> ${tofu}"
