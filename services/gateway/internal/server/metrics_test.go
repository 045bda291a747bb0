package server_test

import (
	"bytes"
	"flag"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/pkg/anthropic"
)

var update = flag.Bool("update", false, "rewrite golden files")

// The families compared exactly. Durations are left out: they vary by run.
var scriptedFamilies = []string{
	"keyward_http_requests_total",
	"keyward_upstream_requests_total",
	"keyward_upstream_retries_total",
	"keyward_tokens_total",
	"keyward_cost_usd_total",
	"keyward_ratelimit_rejections_total",
	"keyward_auth_failures_total",
	"keyward_ratelimit_backend_up",
	"keyward_inflight_requests",
	"keyward_streams_active",
	"keyward_budget_global_daily_usd",
	"keyward_spend_alert_usd_per_hour",
	"keyward_upstream_circuit_open",
}

// TestScriptedMetrics sends a scripted mix — success, a streamed success with
// cache tokens, an upstream 529, an auth failure, a rate-limited call — and
// compares every counter to a golden file, then re-derives the cost from the
// token counters to the cent.
func TestScriptedMetrics(t *testing.T) {
	h := newHarness(t, map[string]string{
		"KEYWARD_RATE_LIMIT":     "5/60s",
		"KEYWARD_JWT_SECRET":     "metrics-secret-metrics-secret-0123456",
		"KEYWARD_ALLOWED_MODELS": "claude-sonnet-4-5,claude-haiku-4-5",
	})
	code, _, b := h.post("/api/query", `{"question":"What is my MRR?","context":{"current_mrr":92148.74}}`)
	require.Equal(t, http.StatusOK, code, string(b))

	cached := `{"model":"claude-haiku-4-5","max_tokens":512,"stream":true,` +
		`"system":[{"type":"text","text":"` + strings.Repeat("Context about the customer base. ", 100) + `","cache_control":{"type":"ephemeral","ttl":"1h"}}],` +
		`"messages":[{"role":"user","content":"q [[mock:usage_deltas=3 output_tokens=120]]"}]}`
	code, _, b = h.post("/v1/messages", cached)
	require.Equal(t, http.StatusOK, code, string(b))
	require.Contains(t, string(b), "message_stop")

	code, _, b = h.post("/v1/messages", message("claude-sonnet-4-5", "x [[mock:status=529 retry_after_ms=10]]"))
	require.Equal(t, 529, code, string(b))

	code, _, _ = h.do(http.MethodGet, "/api/rate-limit-status", nil, "")
	require.Equal(t, http.StatusOK, code)
	code, _, _ = h.post("/api/query", `{"question":"q","context":{}}`, "Authorization", "Bearer not-a-token")
	require.Equal(t, http.StatusUnauthorized, code)
	for i := 0; i < 2; i++ {
		code, _, b = h.post("/api/query", `{"question":"q","context":{}}`)
		require.Equal(t, http.StatusOK, code, string(b))
	}
	code, _, _ = h.post("/api/query", `{"question":"q","context":{}}`)
	require.Equal(t, http.StatusTooManyRequests, code)

	reg := h.reg
	golden := "testdata/scripted.golden"
	if *update {
		writeGolden(t, h.metricsText(), golden)
	}
	f, err := os.Open(golden)
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, testutil.GatherAndCompare(reg, f, scriptedFamilies...))

	// Cost to the cent, re-derived from the token counters and the prices.
	prices := anthropic.DefaultPrices()
	var want float64
	for _, model := range []string{"claude-sonnet-4-5", "claude-haiku-4-5"} {
		u := anthropic.Usage{
			InputTokens:              int64(tokenCount(t, reg, model, "input")),
			OutputTokens:             int64(tokenCount(t, reg, model, "output")),
			CacheReadInputTokens:     int64(tokenCount(t, reg, model, "cache_read")),
			CacheCreationInputTokens: int64(tokenCount(t, reg, model, "cache_write")),
			CacheCreation:            &anthropic.CacheCreation{Ephemeral1h: int64(tokenCount(t, reg, model, "cache_write"))},
		}
		c, priced := prices.Cost(model, u)
		require.True(t, priced)
		want += c
	}
	got := sumFamily(t, reg, "keyward_cost_usd_total")
	require.InDelta(t, want, got, 0.005, "cost to the cent")
	require.InDelta(t, want, got, 1e-9, "in fact to the micro-dollar")
}

func tokenCount(t *testing.T, reg *prometheus.Registry, model, kind string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "keyward_tokens_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["model"] == model && labels["kind"] == kind {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func sumFamily(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var s float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				s += m.GetCounter().GetValue()
			}
		}
	}
	return s
}

func writeGolden(t *testing.T, body, path string) {
	t.Helper()
	var out bytes.Buffer
	keep := false
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "# HELP ") {
			name := strings.Fields(line)[2]
			keep = false
			for _, f := range scriptedFamilies {
				if f == name {
					keep = true
				}
			}
		}
		if keep && line != "" {
			out.WriteString(line + "\n")
		}
	}
	require.NoError(t, os.MkdirAll("testdata", 0o755))
	require.NoError(t, os.WriteFile(path, out.Bytes(), 0o644))
}
