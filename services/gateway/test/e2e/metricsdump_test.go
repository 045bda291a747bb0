package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/services/gateway/internal/testenv"
)

// TestMetricsDump scrapes a real gateway after a little traffic. With
// KEYWARD_METRICS_DUMP set it writes the exposition there, so `make
// test-metrics-names` can check that every metric the alert rules and the
// Grafana dashboard name really exists.
func TestMetricsDump(t *testing.T) {
	mock := testenv.StartMock(t)
	gw := testenv.StartGateway(t, mock.URL)
	code, _, b := post(t, gw.URL+"/api/query", nil, query)
	require.Equal(t, http.StatusOK, code, string(b))
	code, _, _ = post(t, gw.URL+"/v1/messages", nil, `{"model":"claude-sonnet-4-5","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	require.Equal(t, http.StatusOK, code)
	text := gw.MetricsText(t)
	for _, name := range []string{
		"keyward_http_requests_total", "keyward_http_request_duration_seconds", "keyward_upstream_requests_total",
		"keyward_upstream_request_duration_seconds", "keyward_tokens_total", "keyward_cost_usd_total",
		"keyward_ratelimit_rejections_total", "keyward_auth_failures_total", "keyward_ratelimit_backend_up",
		"keyward_inflight_requests", "keyward_build_info",
	} {
		require.Contains(t, text, "\n"+name, "the metric contract names %s", name)
	}
	require.NotContains(t, text, "127.0.0.1", "no IPs in labels")
	require.False(t, strings.Contains(text, `route="/api/query?`), "route templates, never raw paths")
	if out := os.Getenv("KEYWARD_METRICS_DUMP"); out != "" {
		require.NoError(t, os.MkdirAll(filepath.Dir(out), 0o755))
		require.NoError(t, os.WriteFile(out, []byte(text), 0o644))
	}
}
