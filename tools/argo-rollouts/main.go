//go:build tools

// Package tools pins the Argo Rollouts controller, the peer the benchmarks compare
// the operator with. It is never compiled: `go build` is pointed at the command
// package directly, and this file only keeps `go mod tidy` aware of it.
package tools

import (
	_ "github.com/argoproj/argo-rollouts/cmd/rollouts-controller"
)
