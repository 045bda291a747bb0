// Command rulespec reads rendered Kubernetes manifests on stdin and writes the spec of the
// PrometheusRule among them to stdout: a Prometheus rule file, so `promtool check rules`
// checks exactly what the chart ships rather than the source file it was copied from.
// With -same-as FILE it also fails unless that spec means the same YAML as FILE, which
// proves Helm passed the rules through untouched (Prometheus' own {{ $labels }} templates
// included).
//
//	helm template ... | rulespec -same-as files/keyward-alerts.yaml > rules.yaml
//	promtool check rules rules.yaml
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

func main() {
	sameAs := flag.String("same-as", "", "fail unless the spec equals this rule file")
	flag.Parse()
	var out bytes.Buffer
	if err := run(os.Stdin, &out); err != nil {
		fmt.Fprintln(os.Stderr, "rulespec:", err)
		os.Exit(1)
	}
	if *sameAs != "" {
		want, err := os.ReadFile(*sameAs)
		if err == nil {
			err = sameYAML(out.Bytes(), want)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "rulespec: comparing with %s: %v\n", *sameAs, err)
			os.Exit(1)
		}
	}
	if _, err := os.Stdout.Write(out.Bytes()); err != nil {
		fmt.Fprintln(os.Stderr, "rulespec:", err)
		os.Exit(1)
	}
}

// sameYAML reports whether two YAML documents decode to the same value; key order, quoting
// and block styles may differ.
func sameYAML(got, want []byte) error {
	var g, w any
	if err := yaml.Unmarshal(got, &g); err != nil {
		return fmt.Errorf("parsing the rendered rules: %w", err)
	}
	if err := yaml.Unmarshal(want, &w); err != nil {
		return fmt.Errorf("parsing the rule file: %w", err)
	}
	if !reflect.DeepEqual(g, w) {
		return errors.New("the PrometheusRule spec differs from the rule file")
	}
	return nil
}

func run(in io.Reader, out io.Writer) error {
	r := utilyaml.NewYAMLReader(bufio.NewReader(in))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return errors.New("no PrometheusRule in the input")
		}
		if err != nil {
			return fmt.Errorf("reading manifests: %w", err)
		}
		var obj struct {
			Kind string         `json:"kind"`
			Spec map[string]any `json:"spec"`
		}
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			return fmt.Errorf("parsing a manifest: %w", err)
		}
		if obj.Kind != "PrometheusRule" {
			continue
		}
		if len(obj.Spec) == 0 {
			return errors.New("the PrometheusRule has an empty spec")
		}
		b, err := yaml.Marshal(obj.Spec)
		if err != nil {
			return fmt.Errorf("writing the rule file: %w", err)
		}
		_, err = out.Write(b)
		return err
	}
}
