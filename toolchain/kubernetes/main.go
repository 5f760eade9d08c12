// The kubernetes provider's own main (cmd/pulumi-resource-kubernetes) embeds schema files that are
// generated upstream and left out of the published module, so it does not compile from the module
// alone. This main serves the same provider package with the schema files the module does ship
// (copied next to this file by `python -m tools.toolchain build`, with their version set).
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
)

//go:embed schema.json
var schema []byte

//go:embed terraform-mapping.json
var mapping []byte

func main() { provider.Serve("kubernetes", version.Version, schema, mapping) }
