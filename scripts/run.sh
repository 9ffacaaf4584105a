#!/usr/bin/env bash
# Runs a command under the project's toolchain (Node 22, local Pulumi backend), after setup.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
# shellcheck source=env.sh
source "$ROOT/scripts/env.sh"
cd "$ROOT"
export PATH="$ROOT/node_modules/.bin:$PATH"
exec "$@"
