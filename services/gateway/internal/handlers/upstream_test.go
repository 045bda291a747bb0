package handlers

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/pkg/anthropic"
	"github.com/keyward/keyward/services/gateway/internal/metrics"
)

// Every attempt the client reports through Call.OnAttempt is one
// keyward_upstream_requests_total sample labelled by the call's model and
// the outcome, and every attempt after the first is a retry.
func TestCountAttemptLabels(t *testing.T) {
	h := &Handlers{Metrics: metrics.New(prometheus.NewRegistry(), "test")}
	timeout := fmt.Errorf("calling upstream: %w", anthropic.ErrUpstreamTimeout)
	for _, a := range []struct {
		attempt, status int
		err             error
	}{
		{0, 529, &anthropic.APIError{Status: 529}},
		{1, 0, fmt.Errorf("calling upstream: %w", anthropic.ErrUpstreamConnection)},
		{2, 200, nil},
		{0, 0, fmt.Errorf("calling upstream: %w", context.Canceled)},
		{0, 0, timeout},
		{0, 200, timeout}, // headers arrived as the header timer fired
		{0, 0, fmt.Errorf("calling upstream: %w", context.DeadlineExceeded)},
	} {
		h.countAttempt("claude-haiku-4-5", a.attempt, a.status, a.err)
	}
	for code, want := range map[string]float64{"529": 1, "error": 1, "200": 1, "cancelled": 1, "timeout": 3} {
		require.Equal(t, want, testutil.ToFloat64(h.Metrics.UpstreamRequests.WithLabelValues("claude-haiku-4-5", code)), code)
	}
	require.Equal(t, 2.0, testutil.ToFloat64(h.Metrics.UpstreamRetries.WithLabelValues("claude-haiku-4-5")))
}
