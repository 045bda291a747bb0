package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const contract = "testdata/contract.prom"

func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestRunPassesOnGoodFiles(t *testing.T) {
	code, stdout, stderr := runCLI("--rules", "testdata/good.rules.yaml", "--dashboard", "testdata/good.dashboard.json", "--metrics", contract)
	require.Equal(t, exitOK, code, stderr)
	require.Empty(t, stderr)
	// Every metric is listed once, histograms under their family name, and
	// the recording rule's output counts as a known name.
	for _, name := range []string{
		"keyward_http_requests_total", "keyward_http_request_duration_seconds", "keyward_build_info",
		"keyward_cost_usd_total", "job:keyward_http_requests:rate5m", "up",
	} {
		require.Contains(t, stdout, "  "+name+" ")
	}
	require.NotContains(t, stdout, "_bucket")
	require.Contains(t, stdout, "exprcheck: ok")
}

func TestRunFailsNamingTheProblem(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{
			name: "unknown metric in a rule",
			args: []string{"--rules", "testdata/unknown-metric.bad.yaml"},
			want: []string{`alert "TypoInMetric"`, `metric "keyward_http_requests_totl" is not in the exposition (closest: "keyward_http_requests_total")`},
		},
		{
			name: "histogram selected without a suffix",
			args: []string{"--rules", "testdata/histogram-base.bad.yaml"},
			want: []string{`metric "keyward_http_request_duration_seconds" is a classic histogram`},
		},
		{
			name: "bucket of a counter",
			args: []string{"--rules", "testdata/counter-bucket.bad.yaml"},
			want: []string{`"keyward_cost_usd_total" is a counter, it has no _bucket series`},
		},
		{
			name: "rule that does not parse",
			args: []string{"--rules", "testdata/parse-error.bad.yaml"},
			want: []string{"loading rule file", "Unparseable", "parse error"},
		},
		{
			name: "rule with an unknown field",
			args: []string{"--rules", "testdata/unknown-field.bad.yaml"},
			want: []string{"loading rule file", "field four not found"},
		},
		{
			name: "unknown metric in a dashboard panel",
			args: []string{"--dashboard", "testdata/unknown-metric.bad.json"},
			want: []string{`panel "Requests" (id 2) target A`, `metric "keyward_tokens_by_kind_total" is not in the exposition`},
		},
		{
			name: "unknown label in a dashboard panel",
			args: []string{"--dashboard", "testdata/unknown-label.bad.json"},
			want: []string{`metric "keyward_http_requests_total" has no label "status" (it has: code, method, route)`},
		},
		{
			name: "dashboard expression that does not parse",
			args: []string{"--dashboard", "testdata/parse-error.bad.json"},
			want: []string{`panel "Requests" (id 2) target A: parsing`, "unclosed left parenthesis"},
		},
		{
			name: "duplicate panel id, also inside a collapsed row",
			args: []string{"--dashboard", "testdata/duplicate-id.bad.json"},
			want: []string{`panel id 2 is used twice: "Requests" and "Spend"`},
		},
		{
			name: "hard-coded datasource",
			args: []string{"--dashboard", "testdata/fixed-datasource.bad.json"},
			want: []string{`panel "Requests" (id 2): datasource must be ${datasource}`},
		},
		{
			name: "no datasource variable",
			args: []string{"--dashboard", "testdata/no-datasource-variable.bad.json"},
			want: []string{"no datasource variable"},
		},
		{
			name: "undefined Grafana variable",
			args: []string{"--dashboard", "testdata/undefined-variable.bad.json"},
			want: []string{"undefined variable $route"},
		},
		{
			name: "unknown metric in a variable query",
			args: []string{"--dashboard", "testdata/variable-unknown-metric.bad.json"},
			want: []string{`variable "instance"`, `metric "keyward_buildinfo" is not in the exposition`},
		},
		{
			name: "panel wider than the grid",
			args: []string{"--dashboard", "testdata/grid-overflow.bad.json"},
			want: []string{`panel "Requests" (id 2): gridPos`, "does not fit the 24-column grid"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCLI(append(tc.args, "--metrics", contract)...)
			require.Equal(t, exitFailed, code, stderr)
			for _, w := range tc.want {
				require.Contains(t, stderr, w)
			}
		})
	}
}

func TestRunGroupsMissingMetricsAndMergesDumps(t *testing.T) {
	dir := t.TempDir()
	idle := filepath.Join(dir, "idle.prom")
	require.NoError(t, os.WriteFile(idle, []byte("# TYPE keyward_inflight_requests gauge\nkeyward_inflight_requests 0\n"), 0o600))
	busy := filepath.Join(dir, "busy.prom")
	require.NoError(t, os.WriteFile(busy, []byte("# TYPE keyward_build_info gauge\nkeyward_build_info{version=\"v1\",goversion=\"go1\"} 1\n"), 0o600))

	// The idle dump alone lacks what good.dashboard.json uses; each missing
	// metric is reported once, followed by every panel that uses it.
	code, _, stderr := runCLI("--dashboard", "testdata/good.dashboard.json", "--metrics", idle)
	require.Equal(t, exitFailed, code)
	require.Equal(t, 1, strings.Count(stderr, `metric "keyward_http_requests_total" is not in the exposition`))
	require.Contains(t, stderr, `metric "keyward_build_info" is not in the exposition; used by:
      testdata/good.dashboard.json: variable "job"
      testdata/good.dashboard.json: variable "instance"`)
	require.Contains(t, stderr, "exports a labelled metric only after")

	// With both dumps and the contract, everything resolves.
	code, stdout, stderr := runCLI("--dashboard", "testdata/good.dashboard.json", "--metrics", idle, "--metrics", busy, "--metrics", contract)
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stdout, idle+","+busy+","+contract)
}

func TestRunUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no arguments", nil, "usage: exprcheck"},
		{"no metrics file", []string{"--rules", "testdata/good.rules.yaml"}, "usage: exprcheck"},
		{"nothing to check", []string{"--metrics", contract}, "usage: exprcheck"},
		{"missing metrics file", []string{"--rules", "testdata/good.rules.yaml", "--metrics", "testdata/nope.prom"}, "reading metrics exposition"},
		{"metrics file that is not an exposition", []string{"--rules", "testdata/good.rules.yaml", "--metrics", "testdata/good.dashboard.json"}, "parsing metrics exposition"},
		{"unknown flag", []string{"--rule", "x"}, "flag provided but not defined"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCLI(tc.args...)
			require.Equal(t, exitUsage, code)
			require.Contains(t, stderr, tc.want)
		})
	}
}

func TestRunTargetLabelsAreConfigurable(t *testing.T) {
	// good.rules.yaml matches on namespace, which Prometheus adds at scrape
	// time. Declaring no target labels must turn that into a problem.
	code, _, stderr := runCLI("--rules", "testdata/good.rules.yaml", "--metrics", contract, "--target-labels", "")
	require.Equal(t, exitFailed, code)
	require.Contains(t, stderr, `has no label "namespace"`)
}
