#!/usr/bin/env bash
# `npm test`: installs what is missing, builds, checks generated files and lint, then runs every jest
# suite (unit, provider contract, store, end-to-end with the real Pulumi CLI). Jest's JSON results go to
# .state/jest-results.json for .ci/run. Extra arguments are passed to jest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
# shellcheck source=env.sh
source scripts/env.sh
status=0
echo "== generated files (schema.json, docs/reference, sdk/) are up to date"
node dist/scripts/gen.js --check || status=1
echo "== lint (engine purity)"
node node_modules/eslint/bin/eslint.js provider/src || status=1
echo "== jest"
node node_modules/jest/bin/jest.js --ci --json --outputFile=.state/jest-results.json "$@" || status=1
exit $status
