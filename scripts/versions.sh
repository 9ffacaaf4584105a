# shellcheck shell=bash
# The one place the toolchain versions are pinned. @pulumi/pulumi in package.json must equal PULUMI_VERSION
# (a unit test checks it).
NODE_VERSION=22.23.3
PULUMI_VERSION=3.259.0
PULUMI_YAML_VERSION=1.38.1
