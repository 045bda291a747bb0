package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestShortenForChangesOnlyForLines(t *testing.T) {
	in := []byte("      - alert: A\n        expr: up == 0\n        for: 5m\n        labels:\n          for: keep-me\n      - alert: B\n        expr: x > 0\n")
	out, n := shortenFor(in, 5*time.Second)
	if n != 2 {
		t.Fatalf("changed %d lines, want 2 (every `for:` line at any depth)", n)
	}
	if !strings.Contains(string(out), "        for: 5s\n") || strings.Contains(string(out), "for: 5m") {
		t.Fatalf("for: not shortened:\n%s", out)
	}
	if !strings.Contains(string(out), "expr: up == 0\n") || !strings.Contains(string(out), "expr: x > 0\n") {
		t.Fatalf("expressions changed:\n%s", out)
	}
}

func TestShippedRulesEveryForIsShortened(t *testing.T) {
	b, err := os.ReadFile("../helm/keyward/files/keyward-alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, n := shortenFor(b, 5*time.Second)
	if want := strings.Count(string(b), "\n        for: "); n != want || n == 0 {
		t.Fatalf("shortened %d `for:` values, the file has %d", n, want)
	}
	if len(out) > len(b) {
		t.Fatalf("copy grew: %d > %d bytes", len(out), len(b))
	}
}

func TestDashboardQueriesAndExpansion(t *testing.T) {
	qs, vars, err := dashboardQueries("../helm/keyward/files/keyward-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) < 30 || len(vars) != 2 {
		t.Fatalf("%d panel queries, %d variables", len(qs), len(vars))
	}
	for _, q := range qs {
		e := expandGrafana(q.expr, "300s")
		if strings.Contains(e, "$") {
			t.Errorf("panel %q: unexpanded variable in %s", q.panel, e)
		}
	}
	if vars[0].metric != "keyward_build_info" || vars[0].label != "job" {
		t.Errorf("first variable: %+v", vars[0])
	}
	if vars[1].metric != `keyward_build_info{job=~".+"}` || vars[1].label != "instance" {
		t.Errorf("second variable: %+v", vars[1])
	}
}
