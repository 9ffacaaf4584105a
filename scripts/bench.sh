#!/usr/bin/env bash
# `npm run bench [-- args]`: runs the engine benchmark (bench/engine.ts) under Node 22 after setup.
# Results: a table on stdout and bench/results/latest.json.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
# shellcheck source=env.sh
source "$ROOT/scripts/env.sh"
exec node --expose-gc --max-old-space-size=8192 "$ROOT/dist/bench/engine.js" "$@"
