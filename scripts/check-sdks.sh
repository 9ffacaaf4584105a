#!/usr/bin/env bash
# Checks that the generated SDKs compile in their language (run by test/e2e/sdks-compile.test.ts):
#   nodejs  tsc --noEmit -p sdk/nodejs with the project's TypeScript
#   python  .tools/venv (created if missing) with pulumi==$PULUMI_VERSION and sdk/python installed, then
#           `import pulumi_microseg` and `compileall` of sdk/python
#   go      go build ./... and go vet ./... in the sdk/go module (go.mod/go.sum written by microseg-gen-sdk)
# Usage: scripts/check-sdks.sh [nodejs] [python] [go]   (default: all three)
#        scripts/check-sdks.sh --venv-only              (only prepare .tools/venv; prints its python)
# Cached: the venv is reinstalled only when the pinned pulumi version or sdk/python changes; Go uses the
# module cache. Cold: ~30 s for the venv, minutes for the first Go module downloads.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=versions.sh
source scripts/versions.sh
export PATH="$ROOT/.tools/bin:$PATH"
log() { printf '[check-sdks] %s\n' "$*" >&2; }
timed() {
  local name="$1" start ms; shift
  start=$(date +%s%N); "$@"; ms=$(( ($(date +%s%N) - start) / 1000000 ))
  log "$name ok in $((ms / 1000)).$(( (ms % 1000) / 100 ))s"
}

VENV="$ROOT/.tools/venv"
PY="$VENV/bin/python"

pick_python() {
  for c in python3.13 python3.12 python3.11 python3.10 python3.9 python3; do
    if command -v "$c" >/dev/null && "$c" -c 'import sys, venv; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; then
      command -v "$c"; return
    fi
  done
  log "no python >= 3.9 with the venv module found"; return 1
}

# Creates/refreshes the venv. Serialised with flock: several jest workers may ask at once.
prepare_venv() {
  mkdir -p "$ROOT/.tools"
  exec 9>"$ROOT/.tools/venv.lock"
  flock 9
  if [ ! -x "$PY" ]; then
    log "creating .tools/venv"
    "$(pick_python)" -m venv "$VENV"
  fi
  local stamp="$VENV/microseg.stamp" want
  want="$( (echo "pulumi==$PULUMI_VERSION"; find sdk/python -type f -not -path '*/__pycache__/*' -not -path '*/build/*' -not -path '*.egg-info*' | LC_ALL=C sort | xargs sha256sum) | sha256sum | cut -d' ' -f1)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "pip install pulumi==$PULUMI_VERSION and sdk/python into .tools/venv"
    "$PY" -m pip install --quiet --disable-pip-version-check "pulumi==$PULUMI_VERSION"
    # Install from a copy: building in sdk/python would leave build/ and *.egg-info in the generated tree.
    local tmp; tmp="$(mktemp -d)"
    cp -r sdk/python "$tmp/pulumi_microseg_sdk"
    "$PY" -m pip install --quiet --disable-pip-version-check "$tmp/pulumi_microseg_sdk" "pulumi==$PULUMI_VERSION"
    "$PY" -m pip install --quiet --disable-pip-version-check --no-deps --force-reinstall "$tmp/pulumi_microseg_sdk"
    rm -rf "$tmp"
    echo "$want" > "$stamp"
  fi
  flock -u 9
}

check_nodejs() {
  node node_modules/typescript/bin/tsc --noEmit -p sdk/nodejs
}

check_python() {
  prepare_venv
  # Byte code goes to .tools/pycache, never into the generated tree (gen.js --check would see it).
  PYTHONPYCACHEPREFIX="$ROOT/.tools/pycache" "$PY" -c 'import pulumi_microseg, pulumi; assert pulumi_microseg.VirtualMachine and pulumi_microseg.FirewallPolicy'
  PYTHONPYCACHEPREFIX="$ROOT/.tools/pycache" "$PY" -m compileall -q sdk/python
}

check_go() {
  (cd sdk/go && GOWORK=off GOFLAGS=-mod=readonly go build ./... && GOWORK=off GOFLAGS=-mod=readonly go vet ./...)
}

if [ "${1:-}" = "--venv-only" ]; then
  prepare_venv
  echo "$PY"
  exit 0
fi
langs=("$@")
[ ${#langs[@]} -eq 0 ] && langs=(nodejs python go)
for lang in "${langs[@]}"; do
  case "$lang" in
    nodejs) timed "nodejs (tsc --noEmit -p sdk/nodejs)" check_nodejs ;;
    python) timed "python (import pulumi_microseg, compileall sdk/python)" check_python ;;
    go) timed "go (go build ./... && go vet ./... in sdk/go)" check_go ;;
    *) log "unknown language $lang (want nodejs, python or go)"; exit 2 ;;
  esac
done
