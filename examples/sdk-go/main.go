// Command sdk-go runs program.go through the Go Automation API as an inline program (no
// pulumi-language-go needed: the program runs in this process) and prints a JSON summary on stdout.
//
//	go run . [up] [preview] [destroy]     (default: all three, in that order)
//
// The backend, passphrase, Pulumi home and microseg data directory come from the environment
// (PULUMI_BACKEND_URL, PULUMI_CONFIG_PASSPHRASE, PULUMI_HOME, MICROSEG_DATA_DIR); the CLI and the
// microseg plugin installed in PULUMI_HOME (`pulumi plugin install resource microseg ... --file`) are used.
// `preview` fails unless it shows no changes.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
	"github.com/pulumi/pulumi/sdk/v3/go/common/workspace"
)

const project = "microseg-sdk-go"

func main() {
	steps := os.Args[1:]
	if len(steps) == 0 {
		steps = []string{"up", "preview", "destroy"}
	}
	summary, err := run(context.Background(), steps)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sdk-go:", err)
		os.Exit(1)
	}
	out, _ := json.Marshal(summary)
	fmt.Println(string(out))
}

func run(ctx context.Context, steps []string) (map[string]any, error) {
	backend := os.Getenv("PULUMI_BACKEND_URL")
	if backend == "" {
		return nil, fmt.Errorf("PULUMI_BACKEND_URL is not set (want a file:// backend)")
	}
	stackName := os.Getenv("STACK")
	if stackName == "" {
		stackName = "dev"
	}
	env := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok && (strings.HasPrefix(k, "PULUMI_") || strings.HasPrefix(k, "MICROSEG_")) {
			env[k] = v
		}
	}
	opts := []auto.LocalWorkspaceOption{
		auto.Project(workspace.Project{
			Name:    project,
			Runtime: workspace.NewProjectRuntimeInfo("go", nil),
			Backend: &workspace.ProjectBackend{URL: backend},
		}),
		auto.EnvVars(env),
	}
	if home := os.Getenv("PULUMI_HOME"); home != "" {
		opts = append(opts, auto.PulumiHome(home))
	}
	stack, err := auto.UpsertStackInlineSource(ctx, stackName, project, program, opts...)
	if err != nil {
		return nil, err
	}
	summary := map[string]any{"stack": stackName}
	for _, step := range steps {
		switch step {
		case "up":
			res, err := stack.Up(ctx, optup.ProgressStreams(os.Stderr))
			if err != nil {
				return nil, err
			}
			outputs := map[string]any{}
			for k, v := range res.Outputs {
				outputs[k] = v.Value
			}
			version, err := providerVersion(ctx, stack)
			if err != nil {
				return nil, err
			}
			summary["up"] = map[string]any{
				"result":          res.Summary.Result,
				"resourceChanges": res.Summary.ResourceChanges,
				"outputs":         outputs,
				"providerVersion": version,
			}
		case "preview":
			res, err := stack.Preview(ctx, optpreview.ProgressStreams(os.Stderr))
			if err != nil {
				return nil, err
			}
			summary["preview"] = map[string]any{"changeSummary": res.ChangeSummary}
			for op, n := range res.ChangeSummary {
				if op != "same" && n > 0 {
					return nil, fmt.Errorf("preview after up shows changes: %v", res.ChangeSummary)
				}
			}
		case "destroy":
			res, err := stack.Destroy(ctx, optdestroy.ProgressStreams(os.Stderr))
			if err != nil {
				return nil, err
			}
			summary["destroy"] = map[string]any{"result": res.Summary.Result, "resourceChanges": res.Summary.ResourceChanges}
		default:
			return nil, fmt.Errorf("unknown step %q (want up, preview or destroy)", step)
		}
	}
	return summary, nil
}

// providerVersion is the plugin version the SDK asked for, as recorded on the default provider in the state.
func providerVersion(ctx context.Context, stack auto.Stack) (string, error) {
	dep, err := stack.Export(ctx)
	if err != nil {
		return "", err
	}
	var state struct {
		Resources []struct {
			Type   string         `json:"type"`
			Inputs map[string]any `json:"inputs"`
		} `json:"resources"`
	}
	if err := json.Unmarshal(dep.Deployment, &state); err != nil {
		return "", err
	}
	for _, r := range state.Resources {
		if r.Type == "pulumi:providers:microseg" {
			v, _ := r.Inputs["version"].(string)
			return v, nil
		}
	}
	return "", nil
}
