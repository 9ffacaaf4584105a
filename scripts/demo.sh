#!/usr/bin/env bash
# `npm run demo [stack] [--destroy]`: installs what is missing, builds, and brings the flagship example up.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
# shellcheck source=env.sh
source "$ROOT/scripts/env.sh"
exec node "$ROOT/dist/scripts/demo.js" "$@"
