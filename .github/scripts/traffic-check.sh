#!/usr/bin/env bash
# A bounded curl loop that proves a switch served every request, and measures which colour
# answered. Each request is a new connection (as a user's would be); the colour is read from
# the X-App-Color response header that the demo app sets.
#
# Usage:
#   traffic-check.sh --url URL [--host HOST] [--requests N] [--max-seconds S]
#                    [--interval S] [--timeout S] [--stop-file PATH]
#                    [--expect COLOR=MIN-MAX]... [--min-requests N]
#
#   --url          where to send GET requests (e.g. http://127.0.0.1:8080/)
#   --host         Host header, for an Ingress rule (e.g. shop.e2e.test)
#   --requests     stop after this many requests (default 2000)
#   --max-seconds  stop after this long (default 300): the loop is always bounded
#   --interval     pause between requests in seconds (default 0.05)
#   --timeout      per-request limit in seconds (default 5); a timeout counts as an error
#   --stop-file    stop as soon as this file exists (so a workflow can end the loop once
#                  the release is done)
#   --expect       COLOR=MIN-MAX: fail unless COLOR answered MIN..MAX percent of the 2xx
#                  responses (repeatable; used to measure a canary split)
#   --min-requests fail if fewer requests were sent (default 1)
#
# Prints the totals, the share per colour, every status that was not 2xx, and the moments
# the answering colour changed. Exits 1 if any request was not answered 2xx (connection
# errors and timeouts count, as status 000), if an --expect range is missed, or if fewer
# than --min-requests were sent; 2 on a usage error.
set -euo pipefail

url=""
host=""
max_requests=2000
max_seconds=300
interval=0.05
timeout=5
stop_file=""
min_requests=1
expects=()

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit 2
}

is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }
is_number() { [[ "$1" =~ ^[0-9]+([.][0-9]+)?$ ]]; }

while (($#)); do
  case "$1" in
    --url) url="${2:-}"; shift 2 ;;
    --host) host="${2:-}"; shift 2 ;;
    --requests) max_requests="${2:-}"; shift 2 ;;
    --max-seconds) max_seconds="${2:-}"; shift 2 ;;
    --interval) interval="${2:-}"; shift 2 ;;
    --timeout) timeout="${2:-}"; shift 2 ;;
    --stop-file) stop_file="${2:-}"; shift 2 ;;
    --expect) expects+=("${2:-}"); shift 2 ;;
    --min-requests) min_requests="${2:-}"; shift 2 ;;
    -h | --help) usage ;;
    *) echo "traffic-check: unknown argument: $1" >&2; usage ;;
  esac
done

[[ -n "${url}" ]] || { echo "traffic-check: --url is required" >&2; usage; }
if ! is_uint "${max_requests}" || ((max_requests == 0)); then
  echo "traffic-check: --requests must be a positive integer" >&2; exit 2
fi
if ! is_uint "${max_seconds}" || ((max_seconds == 0)); then
  echo "traffic-check: --max-seconds must be a positive integer" >&2; exit 2
fi
is_uint "${min_requests}" || { echo "traffic-check: --min-requests must be an integer" >&2; exit 2; }
is_number "${interval}" || { echo "traffic-check: --interval must be a number of seconds" >&2; exit 2; }
is_number "${timeout}" || { echo "traffic-check: --timeout must be a number of seconds" >&2; exit 2; }
for e in "${expects[@]}"; do
  [[ "${e}" =~ ^[A-Za-z0-9_-]+=[0-9]+(\.[0-9]+)?-[0-9]+(\.[0-9]+)?$ ]] ||
    { echo "traffic-check: --expect takes COLOR=MIN-MAX (percent), not '${e}'" >&2; exit 2; }
done
command -v curl >/dev/null || { echo "traffic-check: curl is not on PATH" >&2; exit 2; }

curl_args=(--silent --show-error --output /dev/null --dump-header - --max-time "${timeout}"
  --write-out '\n%{http_code}\n')
[[ -z "${host}" ]] || curl_args+=(--header "Host: ${host}")

declare -A by_color=()
declare -A bad_status=()
sent=0
ok=0
errors=0
last_color=""
switches=()
start_ns=$(date +%s%N)

elapsed() { # seconds since the start, with milliseconds
  local now_ns
  now_ns=$(date +%s%N)
  awk -v d="$((now_ns - start_ns))" 'BEGIN { printf "%.3f", d / 1e9 }'
}

echo "traffic-check: GET ${url}${host:+ (Host: ${host})}, at most ${max_requests} requests or ${max_seconds}s"
while ((sent < max_requests)); do
  if [[ -n "${stop_file}" && -e "${stop_file}" ]]; then
    echo "traffic-check: ${stop_file} exists: stopping"
    break
  fi
  if (( $(date +%s%N) - start_ns >= max_seconds * 1000000000 )); then
    echo "traffic-check: ${max_seconds}s passed: stopping"
    break
  fi

  response="$(curl "${curl_args[@]}" "${url}" 2>/dev/null || true)"
  sent=$((sent + 1))
  code="$(printf '%s\n' "${response}" | awk 'NF { last = $0 } END { print last }')"
  [[ "${code}" =~ ^[0-9]{3}$ ]] || code="000"
  color="$(printf '%s\n' "${response}" | tr -d '\r' |
    awk -F': *' 'tolower($1) == "x-app-color" { print $2; exit }')"

  if [[ "${code}" == 2?? ]]; then
    ok=$((ok + 1))
    color="${color:-(none)}"
    by_color["${color}"]=$(( ${by_color["${color}"]:-0} + 1 ))
    if [[ "${color}" != "${last_color}" ]]; then
      switches+=("request ${sent} at $(elapsed)s: ${last_color:-(start)} -> ${color}")
      last_color="${color}"
    fi
  else
    errors=$((errors + 1))
    bad_status["${code}"]=$(( ${bad_status["${code}"]:-0} + 1 ))
    echo "traffic-check: request ${sent} at $(elapsed)s answered ${code}" >&2
  fi
  sleep "${interval}"
done

duration="$(elapsed)"
echo "requests: ${sent} in ${duration}s, 2xx: ${ok}, errors (non-2xx): ${errors}"
for c in $(printf '%s\n' "${!by_color[@]}" | sort); do
  awk -v c="${c}" -v n="${by_color[${c}]}" -v t="${ok}" \
    'BEGIN { printf "color %s: %d (%.1f%%)\n", c, n, (t ? 100 * n / t : 0) }'
done
for s in $(printf '%s\n' "${!bad_status[@]}" | sort); do
  echo "status ${s}: ${bad_status[${s}]}"
done
if ((${#switches[@]} <= 20)); then
  for s in "${switches[@]}"; do echo "colour change: ${s}"; done
else
  echo "colour changes: ${#switches[@]} (alternating, as behind a weighted canary); first 5:"
  for s in "${switches[@]:0:5}"; do echo "colour change: ${s}"; done
fi

failed=0
if ((errors > 0)); then
  echo "FAIL: ${errors} of ${sent} requests were not answered 2xx" >&2
  failed=1
fi
if ((sent < min_requests)); then
  echo "FAIL: only ${sent} requests were sent (at least ${min_requests} needed)" >&2
  failed=1
fi
for e in "${expects[@]}"; do
  c="${e%%=*}"
  range="${e#*=}"
  low="${range%-*}"
  high="${range#*-}"
  n="${by_color[${c}]:-0}"
  if ! awk -v n="${n}" -v t="${ok}" -v lo="${low}" -v hi="${high}" \
    'BEGIN { s = (t ? 100 * n / t : 0); exit !(t > 0 && s >= lo && s <= hi) }'; then
    echo "FAIL: color ${c} answered ${n} of ${ok} 2xx responses, outside ${low}-${high}%" >&2
    failed=1
  fi
done
if ((failed == 0)); then
  echo "OK"
fi
exit "${failed}"
