// Command registry is CNCF distribution's OCI registry (github.com/distribution/distribution/v3),
// built from the Go module proxy for the tests that push the Helm chart to a registry and
// install it from there (tests/cluster/test_oci_chart.py).
//
// It registers the filesystem and in-memory storage drivers only: the tests run it on a
// loopback port with plain HTTP, and the cloud drivers' SDKs would triple the build.
//
//	registry serve config.yml
//	registry --version
package main

import (
	"os"

	"github.com/distribution/distribution/v3/registry"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
)

func main() {
	if err := registry.RootCmd.Execute(); err != nil {
		os.Exit(1)
	}
}
