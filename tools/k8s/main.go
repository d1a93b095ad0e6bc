//go:build tools

// Package tools pins the Kubernetes control-plane commands that the local
// test cluster is built from. It is never compiled: `go build` is pointed at
// the command packages directly, and this file only keeps `go mod tidy`
// aware of them.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
