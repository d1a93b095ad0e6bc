// Command kstatus prints the status that kstatus (sigs.k8s.io/cli-utils/pkg/kstatus/status)
// computes for Kubernetes objects: the library Flux's health checks, `kubectl wait`-style
// tools and cli-utils' appliers use to decide whether an object is done.
//
// It reads JSON on stdin, one object or a List (`kubectl get bga shop -o json`, or
// `kubectl get bga -o json`), and prints one JSON line per object:
//
//	{"kind":"BlueGreenApp","namespace":"default","name":"shop","status":"Current","message":"..."}
//
// status is one of InProgress, Failed, Current, Terminating, Unknown. Exit code 0 when every
// object was computed, 1 on bad input.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type line struct {
	Kind       string             `json:"kind"`
	Namespace  string             `json:"namespace,omitempty"`
	Name       string             `json:"name"`
	Status     string             `json:"status"`
	Message    string             `json:"message"`
	Conditions []status.Condition `json:"conditions,omitempty"`
}

func main() {
	if len(os.Args) > 1 {
		fmt.Fprintln(os.Stderr, "usage: kstatus < object.json   (one object or a List, as JSON)")
		os.Exit(2)
	}
	raw, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(err)
	}
	var obj unstructured.Unstructured
	if err := obj.UnmarshalJSON(raw); err != nil {
		fail(err)
	}
	objects := []unstructured.Unstructured{obj}
	if obj.IsList() {
		list, err := obj.ToList()
		if err != nil {
			fail(err)
		}
		objects = list.Items
	}
	out := json.NewEncoder(os.Stdout)
	for i := range objects {
		u := &objects[i]
		res, err := status.Compute(u)
		if err != nil {
			fail(fmt.Errorf("%s/%s: %w", u.GetKind(), u.GetName(), err))
		}
		if err := out.Encode(line{
			Kind:       u.GetKind(),
			Namespace:  u.GetNamespace(),
			Name:       u.GetName(),
			Status:     res.Status.String(),
			Message:    res.Message,
			Conditions: res.Conditions,
		}); err != nil {
			fail(err)
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "kstatus:", err)
	os.Exit(1)
}
