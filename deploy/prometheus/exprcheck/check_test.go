package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func loadContract(t *testing.T) Exposition {
	t.Helper()
	exp, err := LoadExposition(contract)
	require.NoError(t, err)
	return exp
}

func TestExpositionLookup(t *testing.T) {
	exp := loadContract(t)
	tests := []struct {
		name       string
		wantFamily string
		wantSuffix string
		wantErr    string
	}{
		{name: "keyward_http_requests_total", wantFamily: "keyward_http_requests_total"},
		{name: "keyward_http_request_duration_seconds_bucket", wantFamily: "keyward_http_request_duration_seconds", wantSuffix: "_bucket"},
		{name: "keyward_upstream_request_duration_seconds_count", wantFamily: "keyward_upstream_request_duration_seconds", wantSuffix: "_count"},
		{name: "keyward_http_request_duration_seconds_sum", wantFamily: "keyward_http_request_duration_seconds", wantSuffix: "_sum"},
		{name: "keyward_http_request_duration_seconds", wantErr: "classic histogram"},
		{name: "keyward_inflight_requests_count", wantErr: "is a gauge, it has no _count series"},
		{name: "keyward_upstream_request_total", wantErr: `not in the exposition (closest: "keyward_upstream_requests_total")`},
		{name: "keyward_requests_total", wantErr: "not in the exposition"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fam, suffix, problem := exp.Lookup(tc.name)
			if tc.wantErr != "" {
				require.Contains(t, problem, tc.wantErr)
				return
			}
			require.Empty(t, problem)
			require.Equal(t, tc.wantFamily, fam.Name)
			require.Equal(t, tc.wantSuffix, suffix)
		})
	}
}

func TestExpositionHintOnlyForTypos(t *testing.T) {
	exp := loadContract(t)
	_, _, problem := exp.Lookup("keyward_upstream_failures_total")
	require.NotContains(t, problem, "closest", "a different name is not a typo of a similar-looking one")
	_, _, problem = exp.Lookup("keyward_cost_usd_totla")
	require.Contains(t, problem, `(closest: "keyward_cost_usd_total")`)
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"abc", "", 3}, {"", "ab", 2}, {"kitten", "sitting", 3},
		{"keyward_tokens_total", "keyward_tokens_total", 0}, {"totla", "total", 2},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, editDistance(tc.a, tc.b), "%q vs %q", tc.a, tc.b)
		require.Equal(t, tc.want, editDistance(tc.b, tc.a), "%q vs %q", tc.b, tc.a)
	}
}

func TestExpositionMerge(t *testing.T) {
	idle := Exposition{
		"keyward_inflight_requests": {Name: "keyward_inflight_requests", Type: "gauge", Labels: map[string]bool{}, Series: 1},
		"keyward_tokens_total":      {Name: "keyward_tokens_total", Type: "counter", Labels: map[string]bool{"model": true}, Series: 1},
	}
	busy := Exposition{
		"keyward_tokens_total":   {Name: "keyward_tokens_total", Type: "counter", Labels: map[string]bool{"kind": true}, Series: 2},
		"keyward_cost_usd_total": {Name: "keyward_cost_usd_total", Type: "counter", Labels: map[string]bool{"model": true}, Series: 1},
	}
	idle.Merge(busy)
	require.Len(t, idle, 3)
	require.Equal(t, []string{"kind", "model"}, idle["keyward_tokens_total"].LabelNames())
	require.Equal(t, 3, idle["keyward_tokens_total"].Series)
}

func TestExpositionReadsTypesAndLabels(t *testing.T) {
	exp := loadContract(t)
	require.Equal(t, "histogram", exp["keyward_http_request_duration_seconds"].Type)
	require.Equal(t, []string{"route"}, exp["keyward_http_request_duration_seconds"].LabelNames())
	require.Equal(t, "counter", exp["keyward_tokens_total"].Type)
	require.Equal(t, []string{"kind", "model"}, exp["keyward_tokens_total"].LabelNames())
	require.Equal(t, "gauge", exp["keyward_ratelimit_backend_up"].Type)
	require.Empty(t, exp["keyward_ratelimit_backend_up"].LabelNames())
}

func TestCheckResolvesSelectors(t *testing.T) {
	c := Checker{
		Exposition:   loadContract(t),
		Recorded:     map[string]bool{"keyward:cost_usd:spent_today_utc": true},
		TargetLabels: defaultTargetLabels,
	}
	tests := []struct {
		name     string
		query    string
		wantUses []string
		wantErr  string
	}{
		{
			name:     "matrix, subquery and offset are all walked",
			query:    `sum_over_time(rate(keyward_cost_usd_total[5m])[1d:5m]) + keyward_tokens_total offset 1h`,
			wantUses: []string{"keyward_cost_usd_total", "keyward_tokens_total"},
		},
		{
			name:     "name given as a __name__ matcher",
			query:    `{__name__="keyward_streams_active", job="keyward"}`,
			wantUses: []string{"keyward_streams_active"},
		},
		{
			name:     "name regex resolves to every matching family",
			query:    `{__name__=~"keyward_upstream_.*_total"}`,
			wantUses: []string{"keyward_upstream_requests_total", "keyward_upstream_retries_total"},
		},
		{
			name:    "name regex matching nothing",
			query:   `{__name__=~"keyward_nothing_.*"}`,
			wantErr: "matches no metric in the exposition",
		},
		{
			name:     "le on buckets and scrape labels are fine",
			query:    `keyward_http_request_duration_seconds_bucket{le="+Inf", route="/api/query", pod="gw-0", instance="x"}`,
			wantUses: []string{"keyward_http_request_duration_seconds"},
		},
		{
			name:    "le on a counter is not",
			query:   `keyward_http_requests_total{le="1"}`,
			wantErr: `has no label "le"`,
		},
		{
			name:     "recorded series and Prometheus' own series",
			query:    `keyward:cost_usd:spent_today_utc > 0 and on (job) up == 1 unless ALERTS{alertname="X"}`,
			wantUses: []string{"keyward:cost_usd:spent_today_utc", "up", "ALERTS"},
		},
		{
			name:    "label typo",
			query:   `sum(keyward_tokens_total{kinds="input"})`,
			wantErr: `metric "keyward_tokens_total" has no label "kinds" (it has: kind, model)`,
		},
		{
			name:     "no selector at all",
			query:    `vector(1) * time()`,
			wantUses: nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := c.Check([]Expr{{Source: "test", Query: tc.query}})
			if tc.wantErr != "" {
				require.Len(t, res.Problems, 1)
				require.Contains(t, res.Problems[0], tc.wantErr)
				require.Contains(t, res.Problems[0], "test: ")
				return
			}
			require.Empty(t, res.Problems)
			got := make([]string, 0, len(res.Uses))
			for name := range res.Uses {
				got = append(got, name)
			}
			require.ElementsMatch(t, tc.wantUses, got)
		})
	}
}

func TestCheckSkipsLabelCheckForFamiliesWithoutSeries(t *testing.T) {
	// client_golang only prints HELP/TYPE once a vector has a child; a
	// family with no series gives nothing to compare labels with.
	exp := Exposition{"keyward_auth_failures_total": {Name: "keyward_auth_failures_total", Type: "counter", Labels: map[string]bool{}}}
	res := Checker{Exposition: exp}.Check([]Expr{{Source: "s", Query: `rate(keyward_auth_failures_total{reason="expired"}[5m])`}})
	require.Empty(t, res.Problems)
}

func TestSubstituteGrafanaVariables(t *testing.T) {
	d, err := ParseDashboard([]byte(`{
		"templating": {"list": [
			{"name": "datasource", "type": "datasource", "query": "prometheus"},
			{"name": "job", "type": "query"},
			{"name": "win", "type": "interval", "current": {"value": "$__auto"}, "options": [{"value": "15m"}]},
			{"name": "q", "type": "custom", "current": {"value": ["0.9", "0.99"]}},
			{"name": "all", "type": "custom", "current": {"value": "$__all"}, "allValue": "a|b"}
		]},
		"panels": [{"id": 1, "title": "p", "gridPos": {"w": 1, "h": 1}}]
	}`))
	require.NoError(t, err)
	vars := d.variableValues()
	tests := []struct{ in, want string }{
		{`rate(x{job=~"$job"}[$__rate_interval])`, `rate(x{job=~".*"}[5m])`},
		{`rate(x{job=~"${job}"}[${__interval}])`, `rate(x{job=~".*"}[1m])`},
		{`rate(x{job=~"${job:regex}"}[$__range])`, `rate(x{job=~".*"}[1d])`},
		{`rate(x{job=~"[[job]]"}[[[win]]])`, `rate(x{job=~".*"}[15m])`},
		{`histogram_quantile($q, x)`, `histogram_quantile(0.9, x)`},
		{`x{a=~"$all"} / $__range_s`, `x{a=~"a|b"} / 86400`},
		{`x{job=~"$jobs"}`, `x{job=~".*"}`},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			require.Equal(t, tc.want, d.substitute(tc.in, vars))
		})
	}
	// "$jobs" is not "$job" followed by "s".
	require.Len(t, d.Problems, 1)
	require.Contains(t, d.Problems[0], "undefined variable $jobs")
}

func TestVariableQueryPromQL(t *testing.T) {
	tests := []struct {
		raw    string
		want   string
		wantOK bool
	}{
		{`"label_values(keyward_build_info, job)"`, "keyward_build_info", true},
		{`{"query": "label_values(keyward_build_info{job=~\"a\", instance!=\"b\"}, instance)"}`, `keyward_build_info{job=~"a", instance!="b"}`, true},
		{`"query_result(topk(3, sum by (model) (keyward_cost_usd_total)))"`, "topk(3, sum by (model) (keyward_cost_usd_total))", true},
		{`"label_values(job)"`, "", false},
		{`"metrics(keyward_.*)"`, "", false},
		{`""`, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.raw, func(t *testing.T) {
			got, ok := variableQueryPromQL(json.RawMessage(tc.raw))
			require.Equal(t, tc.wantOK, ok)
			require.Equal(t, tc.want, got)
		})
	}
}
