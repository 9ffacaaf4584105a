// Command microseg-gen-sdk generates microseg's SDKs from schema.json with the Pulumi code generators
// of pkg/v3 at the pinned version. `pulumi package gen-sdk` does the same through each language
// host's GeneratePackage RPC, but the nodejs, python and go hosts are untagged modules that the Go
// module proxy does not serve, so this calls the generators directly.
//
// The Go generator writes packages but no module file, so for go this also writes <out-dir>/go/go.mod
// (module = the parent of the schema's go.importBasePath, so `<importBasePath>` resolves to
// <out-dir>/go/<package>) requiring github.com/pulumi/pulumi/sdk/v3 at the version this tool was built
// with, and runs `go mod tidy` there for the requirements and go.sum (needs go and the module cache
// or proxy).
//
// Usage: microseg-gen-sdk <schema.json> <out-dir> <language>...
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime/debug"

	gogen "github.com/pulumi/pulumi/pkg/v3/codegen/go"
	nodejsgen "github.com/pulumi/pulumi/pkg/v3/codegen/nodejs"
	pygen "github.com/pulumi/pulumi/pkg/v3/codegen/python"
	"github.com/pulumi/pulumi/pkg/v3/codegen/schema"
)

const tool = "microseg-gen-sdk"

func main() {
	if len(os.Args) < 4 {
		fmt.Fprintln(os.Stderr, "usage: microseg-gen-sdk <schema.json> <out-dir> <nodejs|python|go>...")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2], os.Args[3:]); err != nil {
		fmt.Fprintln(os.Stderr, "microseg-gen-sdk:", err)
		os.Exit(1)
	}
}

func load(schemaPath string) (*schema.Package, error) {
	raw, err := os.ReadFile(schemaPath)
	if err != nil {
		return nil, err
	}
	var spec schema.PackageSpec
	if err := json.Unmarshal(raw, &spec); err != nil {
		return nil, fmt.Errorf("%s: %w", schemaPath, err)
	}
	// The schema references no other package, so the loader is never asked for one.
	pkg, diags, err := schema.BindSpec(spec, schema.NewPluginLoader(nil), schema.ValidationOptions{})
	if err != nil {
		return nil, err
	}
	if diags.HasErrors() {
		return nil, fmt.Errorf("%s is not a valid Pulumi schema: %s", schemaPath, diags.Error())
	}
	return pkg, nil
}

func run(schemaPath, outDir string, languages []string) error {
	for _, lang := range languages {
		// Each generator decorates the bound package with its language info, so bind afresh per language.
		pkg, err := load(schemaPath)
		if err != nil {
			return err
		}
		var files map[string][]byte
		switch lang {
		case "nodejs":
			files, err = nodejsgen.GeneratePackage(tool, pkg, nil, nil, false, nil)
		case "python":
			files, err = pygen.GeneratePackage(tool, pkg, nil, nil)
		case "go":
			files, err = gogen.GeneratePackage(tool, pkg, nil)
		default:
			err = fmt.Errorf("unknown language %q (want nodejs, python or go)", lang)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", lang, err)
		}
		dir := filepath.Join(outDir, lang)
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		for name, content := range files {
			p := filepath.Join(dir, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(p, content, 0o644); err != nil {
				return err
			}
		}
		if lang == "go" {
			if err := writeGoModule(pkg, dir); err != nil {
				return fmt.Errorf("go: %w", err)
			}
		}
	}
	return nil
}

const pulumiSDK = "github.com/pulumi/pulumi/sdk/v3"

// writeGoModule makes dir a Go module whose path is the parent of importBasePath, requiring the
// Pulumi Go SDK this tool was built against, then lets `go mod tidy` complete go.mod and go.sum.
func writeGoModule(pkg *schema.Package, dir string) error {
	info, ok := pkg.Language["go"].(gogen.GoPackageInfo)
	if !ok || info.ImportBasePath == "" {
		return fmt.Errorf("the schema's language.go.importBasePath is required to write go.mod")
	}
	modulePath := info.ModulePath
	if modulePath == "" {
		modulePath = path.Dir(info.ImportBasePath)
	}
	version, err := builtWith(pulumiSDK)
	if err != nil {
		return err
	}
	gomod := fmt.Sprintf("module %s\n\ngo 1.25\n\nrequire %s %s\n", modulePath, pulumiSDK, version)
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644); err != nil {
		return err
	}
	cmd := exec.Command("go", "mod", "tidy")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go mod tidy in %s: %w", dir, err)
	}
	return nil
}

// builtWith returns the version of module mod in this binary's build, so the SDK's requirement
// follows tools/pulumi/go.mod.
func builtWith(mod string) (string, error) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "", fmt.Errorf("no build info in %s; cannot tell which %s it was built with", tool, mod)
	}
	for _, dep := range bi.Deps {
		if dep.Path == mod {
			if dep.Replace != nil && dep.Replace.Version != "" {
				return dep.Replace.Version, nil
			}
			return dep.Version, nil
		}
	}
	return "", fmt.Errorf("%s was not built with %s", tool, mod)
}
