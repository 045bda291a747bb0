package metrics_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/pkg/redistest"
	"github.com/keyward/keyward/services/gateway/internal/metrics"
)

// A command sent alone and a pipeline of several commands are one round
// trip each: what make bench divides by the requests served.
func TestRedisRoundTripsCountsCommandsAndPipelines(t *testing.T) {
	srv := redistest.Start(t)
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr, Protocol: 3, PoolSize: 1})
	t.Cleanup(func() { _ = rc.Close() })
	m := metrics.NewRedisHealth(prometheus.NewRegistry())
	rc.AddHook(m.Hook())
	ctx := context.Background()

	pipeline := func() {
		_, err := rc.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.Incr(ctx, "k")
			p.Incr(ctx, "k")
			p.Get(ctx, "k")
			return nil
		})
		require.NoError(t, err)
	}
	// A new connection's handshake (HELLO, CLIENT SETINFO) is round trips
	// of its own; count from open connections.
	require.NoError(t, rc.Ping(ctx).Err())
	pipeline()
	base := testutil.ToFloat64(m.RoundTrips)
	require.Greater(t, base, 2.0)
	require.NoError(t, rc.Set(ctx, "k", "1", 0).Err())
	require.Equal(t, base+1, testutil.ToFloat64(m.RoundTrips))
	pipeline()
	require.Equal(t, base+2, testutil.ToFloat64(m.RoundTrips))
}
