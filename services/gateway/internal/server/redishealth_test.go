package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/pkg/redistest"
	"github.com/keyward/keyward/services/gateway/internal/metrics"
)

func TestRedisHealthReportsMemoryAndAnEvictingPolicy(t *testing.T) {
	srv := redistest.Start(t, "--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru")
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rc.Close()
	m := metrics.NewRedisHealth(prometheus.NewRegistry())
	h := &redisHealth{rc: rc, m: m, log: slog.New(slog.NewTextHandler(io.Discard, nil)), backend: func() string { return "redis" }, warnGap: time.Minute}

	h.check(context.Background())
	p, d := h.state()
	require.Equal(t, "eviction_policy", p)
	require.Contains(t, d, "allkeys-lru")
	require.Equal(t, 1.0, testutil.ToFloat64(m.Problem.WithLabelValues("eviction_policy")))
	require.Equal(t, float64(64<<20), testutil.ToFloat64(m.MaxMemory))
	require.Greater(t, testutil.ToFloat64(m.MemoryUsed), 0.0)

	_, err := srv.Do("CONFIG", "SET", "maxmemory-policy", "noeviction")
	require.NoError(t, err)
	h.check(context.Background())
	p, _ = h.state()
	require.Empty(t, p)
	require.Equal(t, 0.0, testutil.ToFloat64(m.Problem.WithLabelValues("eviction_policy")))

	srv.Stop()
	h.check(context.Background())
	p, _ = h.state()
	require.Equal(t, "unreachable", p)
	require.Equal(t, 0.0, testutil.ToFloat64(m.MemoryUsed), "0 when unknown")
}

func TestClassifyRedisError(t *testing.T) {
	for msg, want := range map[string]string{
		"DENIED Redis is running in protected mode because protected mode is enabled": "protected_mode",
		"NOAUTH Authentication required.":                                             "auth",
		"WRONGPASS invalid username-password pair or user is disabled.":               "auth",
		"dial tcp 127.0.0.1:1: connect: connection refused":                           "unreachable",
	} {
		got, _ := classifyRedisError(errors.New(msg))
		require.Equal(t, want, got, msg)
	}
}
