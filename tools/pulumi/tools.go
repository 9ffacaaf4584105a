//go:build tools

// Package tools pins the Pulumi CLI and the language hosts that microseg builds from Go modules.
// The nodejs and python language hosts are untagged modules the module proxy does not serve, so
// TypeScript programs run through the Automation API's in-process language runtime instead.
package tools

import (
	_ "github.com/pulumi/pulumi-yaml/cmd/pulumi-language-yaml"
	_ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
)
