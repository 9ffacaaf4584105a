# shellcheck shell=bash
# Source this file: puts the project's pinned toolchain (.tools/bin: node 22, pulumi, language hosts,
# this checkout's `microseg` CLI) first on PATH and points Pulumi at a local file backend under
# .state/ (Pulumi stacks and the embedded store), so nothing ever contacts a Pulumi service or downloads a plugin.
MICROSEG_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export MICROSEG_ROOT
# The provider plugin is not on PATH: scripts/setup.sh installs its archive into PULUMI_HOME (Pulumi warns about
# plugins it finds on PATH).
export PATH="$MICROSEG_ROOT/.tools/bin:$PATH"
mkdir -p "$MICROSEG_ROOT/.state/backend" "$MICROSEG_ROOT/.state/pulumi-home"
export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://$MICROSEG_ROOT/.state/backend}"
export PULUMI_HOME="${PULUMI_HOME:-$MICROSEG_ROOT/.state/pulumi-home}"
# The demo's embedded store lives next to the stack state that tracks it (a second clone must not find
# objects in ~/.microseg that its own stacks never created). Provider config `microseg:dataDir` still wins.
export MICROSEG_DATA_DIR="${MICROSEG_DATA_DIR:-$MICROSEG_ROOT/.state/microseg}"
export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE-microseg-local}"
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK=false
export PULUMI_DIY_BACKEND_NO_LEGACY_WARNING=true
export NODE_NO_WARNINGS=1
