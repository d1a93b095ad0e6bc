#!/usr/bin/env bash
# The version of a release, from its tag, checked against what the repository says.
#
# A tag vX.Y.Z releases version X.Y.Z of everything at once: the Python package
# (pyproject.toml `version`), the operator image (tagged X.Y.Z) and the Helm chart (its
# `version` and `appVersion`). They must agree before anything is published, or the chart
# would point at an image of another version.
#
# Prints `version=X.Y.Z` and `owner=<repository owner, lowercase>` (image and chart names
# must be lowercase) for $GITHUB_OUTPUT; exits 1 with a message when something disagrees.
#
# Usage: .github/scripts/release-version.sh v0.2.0 [owner]
set -euo pipefail

tag="${1:?usage: release-version.sh vX.Y.Z [owner]}"
owner="${2:-${GITHUB_REPOSITORY_OWNER:-}}"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
semver='^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$'

if [[ "${tag}" != v* ]] || ! [[ "${tag#v}" =~ ${semver} ]]; then
  echo "release-version.sh: ${tag} is not a release tag vX.Y.Z" >&2
  exit 1
fi
version="${tag#v}"

field() { # field FILE KEY: the value of a top-level `KEY = "..."` or `KEY: "..."` line
  sed -nE "s/^$2[[:space:]]*[=:][[:space:]]*\"?([^\"[:space:]]+)\"?[[:space:]]*$/\1/p" "$1" | head -n1
}

failed=0
for check in \
  "pyproject.toml version:$(field "${repo_root}/pyproject.toml" version)" \
  "charts/bluegreen-operator/Chart.yaml version:$(field "${repo_root}/charts/bluegreen-operator/Chart.yaml" version)" \
  "charts/bluegreen-operator/Chart.yaml appVersion:$(field "${repo_root}/charts/bluegreen-operator/Chart.yaml" appVersion)"; do
  what="${check%:*}"
  found="${check##*:}"
  if [[ "${found}" != "${version}" ]]; then
    echo "release-version.sh: ${what} is '${found}', the tag says ${version}" >&2
    failed=1
  fi
done
if ! grep -q "^## \[${version}\]" "${repo_root}/CHANGELOG.md"; then
  echo "release-version.sh: CHANGELOG.md has no '## [${version}]' section" >&2
  failed=1
fi
if ((failed)); then
  exit 1
fi
echo "version=${version}"
if [[ -n "${owner}" ]]; then
  echo "owner=${owner,,}"
fi
