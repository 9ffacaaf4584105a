// Command microseg-gen-sdk generates microseg's SDKs from schema.json with the Pulumi code generators
// of pkg/v3 at the pinned version. `pulumi package gen-sdk` does the same through each language
// host's GeneratePackage RPC, but the nodejs, python and go hosts are untagged modules that the Go
// module proxy does not serve, so this calls the generators directly.
//
// Usage: microseg-gen-sdk <schema.json> <out-dir> <language>...
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

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
	}
	return nil
}
