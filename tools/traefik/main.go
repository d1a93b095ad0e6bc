//go:build tools

// Package tools pins Traefik, the proxy of the local control plane's data path. It is
// never compiled: `go build` is pointed at github.com/traefik/traefik/v3/cmd/traefik
// directly, and this file only keeps `go mod tidy` aware of it.
package tools

import (
	_ "github.com/traefik/traefik/v3/cmd/traefik"
)
