package metrics

import (
	"runtime"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/pkg/anthropic"
)

func TestUnpricedModelIsCountedNotPricedAtZero(t *testing.T) {
	m := New(prometheus.NewRegistry(), "t")
	m.ObserveUsage("claude-private-1", anthropic.Usage{InputTokens: 10, OutputTokens: 5}, 0, false)
	require.Equal(t, 1.0, testutil.ToFloat64(m.Unpriced.WithLabelValues("claude-private-1")))
	require.Equal(t, 15.0, testutil.ToFloat64(m.Tokens.WithLabelValues("claude-private-1", "input"))+testutil.ToFloat64(m.Tokens.WithLabelValues("claude-private-1", "output")))
	require.Zero(t, testutil.CollectAndCount(m.CostUSD), "no cost series is invented for an unpriced model")
}

func TestInitCreatesKnownSeriesAtZero(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, "t")
	m.Init([]string{"claude-haiku-4-5"})
	require.Equal(t, len(LimitLabels), testutil.CollectAndCount(m.RateLimitRejects))
	require.Equal(t, len(AuthReasonLabels), testutil.CollectAndCount(m.AuthFailures))
	require.Equal(t, len(TokenKindLabels), testutil.CollectAndCount(m.Tokens))
	require.Equal(t, 1.0, testutil.ToFloat64(m.BuildInfo.WithLabelValues("t", runtime.Version())))
}

func TestStatusCodeLabels(t *testing.T) {
	require.Equal(t, "200", StatusCode(200))
	require.Equal(t, "529", StatusCode(529))
	require.Equal(t, "99", StatusCode(99))
}
