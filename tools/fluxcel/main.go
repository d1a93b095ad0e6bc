// Command flux-health prints what Flux's kustomize-controller decides about objects from the
// healthCheckExprs of a Kustomization, with Flux's own evaluator
// (github.com/fluxcd/pkg/runtime/cel: the observedGeneration check, then the inProgress,
// failed and current CEL expressions in that order, InProgress if none holds).
//
// The Kustomization comes as a YAML file (the first document of kind Kustomization); the
// objects as JSON on stdin, one object or a List (`kubectl get bga -o json`). One JSON line
// per object:
//
//	{"kind":"BlueGreenApp","name":"shop","status":"Current"}
//
// An expression that cannot be evaluated (it reads a field the object does not have yet)
// gives "Unknown" and the error, as Flux's status poller reports it and polls again. An
// object whose apiVersion and kind no healthCheckExprs entry names is an error: Flux would
// judge it with kstatus alone (tools/kstatus).
//
// Usage: flux-health kustomization.yaml < objects.json
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/fluxcd/pkg/apis/kustomize"
	"github.com/fluxcd/pkg/runtime/cel"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

type kustomization struct {
	Kind string `json:"kind"`
	Spec struct {
		HealthCheckExprs []kustomize.CustomHealthCheck `json:"healthCheckExprs"`
	} `json:"spec"`
}

type line struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	Status    string `json:"status"`
	Error     string `json:"error,omitempty"`
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: flux-health kustomization.yaml < objects.json")
		os.Exit(2)
	}
	checks, err := readChecks(os.Args[1])
	if err != nil {
		fail(err)
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
		check, ok := checks[u.GetAPIVersion()+"/"+u.GetKind()]
		if !ok {
			fail(fmt.Errorf("no healthCheckExprs entry for %s %s", u.GetAPIVersion(), u.GetKind()))
		}
		evaluator, err := cel.NewStatusEvaluator(&check.HealthCheckExpressions)
		if err != nil {
			fail(err)
		}
		verdict := line{Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName()}
		if result, err := evaluator.Evaluate(context.Background(), u); err != nil {
			verdict.Status, verdict.Error = "Unknown", err.Error()
		} else {
			verdict.Status = result.Status.String()
		}
		if err := out.Encode(verdict); err != nil {
			fail(err)
		}
	}
}

func readChecks(path string) (map[string]kustomize.CustomHealthCheck, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for _, doc := range bytes.Split(text, []byte("\n---")) {
		var k kustomization
		if err := yaml.Unmarshal(doc, &k); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if k.Kind != "Kustomization" {
			continue
		}
		checks := map[string]kustomize.CustomHealthCheck{}
		for _, c := range k.Spec.HealthCheckExprs {
			checks[c.APIVersion+"/"+c.Kind] = c
		}
		return checks, nil
	}
	return nil, fmt.Errorf("%s holds no Kustomization", path)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "flux-health:", err)
	os.Exit(1)
}
