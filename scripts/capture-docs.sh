#!/usr/bin/env bash
# Re-captures the command output shown in docs/ from real runs, so no output in the docs is typed by hand.
# Every `<!-- capture: NAME -->` ... `<!-- /capture -->` block in docs/*.md is replaced by the output of the
# command of the same NAME below. Runs against a throwaway data directory and Pulumi backend.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
# shellcheck source=env.sh
source "$ROOT/scripts/env.sh"
cd "$ROOT"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export MICROSEG_DATA_DIR="$work/data"
export PULUMI_BACKEND_URL="file://$work/backend"
mkdir -p "$work/backend"
out="$work/out"
mkdir -p "$out"

# Output is normalised where it varies between runs (durations, temp paths).
norm() { sed -E -e "s#$work#<tmp>#g" -e 's/\(([0-9.]+)s\)/(…s)/g' -e 's/Duration: [0-9a-z.]+/Duration: …/'; }

# The per-resource progress lines come in a different order every run; the diagnostics and outputs do not.
node dist/scripts/demo.js dev 2>&1 | norm | grep -v '^@ ' | sed -n '/^Diagnostics:/,$p' > "$out/demo-up"
node dist/scripts/demo.js dev 2>&1 | norm | grep -v '^@ ' | sed -n '/^Resources:/,/^$/p' > "$out/demo-up-again"
microseg traceflow -e dev --from vcci/shop/apigateway --to rating --port 8080 2>&1 | norm > "$out/traceflow-gateway-rating"
microseg traceflow -e dev --from vcci/shop/frontend --to database --port 5432 2>&1 | norm > "$out/traceflow-frontend-database"
microseg members -e dev backend-egress-ip 2>&1 | norm > "$out/members-egress"
microseg export -e dev --cluster vcci --flavor antrea --pods-only 2>&1 | norm > "$out/export-antrea-vcci"
microseg test examples/topologies/east-west-to-pod.yaml 2>&1 | norm > "$out/test-east-west" || true
# Team mode (docs/team-mode.md): a throw-away PostgreSQL, tokens, microseg serve, the dev stack through it.
node dist/scripts/team-capture.js "$out"
for f in "$out"/team-*; do norm < "$f" > "$f.n" && mv "$f.n" "$f"; done

node - "$out" docs/*.md <<'JS'
const fs = require('node:fs');
const [outDir, ...docs] = process.argv.slice(2);
for (const doc of docs) {
  const text = fs.readFileSync(doc, 'utf8');
  const next = text.replace(/<!-- capture: ([\w-]+) -->\n[\s\S]*?<!-- \/capture -->/g, (_m, name) => {
    const file = `${outDir}/${name}`;
    if (!fs.existsSync(file)) throw new Error(`${doc}: no captured output named ${name}`);
    return `<!-- capture: ${name} -->\n\`\`\`\n${fs.readFileSync(file, 'utf8').trimEnd()}\n\`\`\`\n<!-- /capture -->`;
  });
  if (next !== text) { fs.writeFileSync(doc, next); console.log(`updated ${doc}`); }
}
JS
