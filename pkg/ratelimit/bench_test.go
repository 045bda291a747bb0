package ratelimit

import (
	"context"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Limits high enough that every benchmarked call is admitted.
var benchPolicy = Policy{
	Requests:        Limit{Rate: 1_000_000_000, Period: time.Hour, Burst: 1_000_000_000},
	TokensPerMinute: 1_000_000_000_000,
	DailyBudgetUSD:  1_000_000,
	GlobalDailyUSD:  1_000_000_000,
}

var benchKeys = func() []string {
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "ip:198.51.100." + strconv.Itoa(i)
	}
	return keys
}()

func BenchmarkMemoryAdmit(b *testing.B) {
	ctx := context.Background()
	m, err := NewMemory(MemoryOptions{})
	require.NoError(b, err)
	for _, bc := range []struct {
		name string
		req  Request
	}{
		{"requests", Request{Policy: Policy{Requests: benchPolicy.Requests}}},
		{"tokens+budget", Request{Policy: benchPolicy, Tokens: 2000, CostUSD: 0.01}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				req, i := bc.req, 0
				for pb.Next() {
					req.Key = benchKeys[i%len(benchKeys)]
					i++
					if d, err := m.Admit(ctx, req); err != nil || !d.Allowed {
						b.Fatalf("admit: %v %+v", err, d)
					}
				}
			})
		})
	}
}

// benchRedis returns a limiter on a fresh redis-server and its round-trip counter.
func benchRedis(b *testing.B, opts RedisOptions) (*Redis, *rtCounter) {
	b.Helper()
	srv := startRedisTB(b)
	client := newTestClient(b, srv.Addr)
	rt := &rtCounter{}
	client.AddHook(rt)
	opts.Prefix = testPrefix(b)
	r, err := NewRedis(client, opts)
	require.NoError(b, err)
	return r, rt
}

// benchModes runs a benchmark with and without batching, for the A/B in one run.
var benchModes = []struct {
	name string
	opts RedisOptions
}{
	{"batched", RedisOptions{}},
	{"unbatched", RedisOptions{Unbatched: true}},
}

func reportRoundTrips(b *testing.B, rt *rtCounter, before int64) {
	b.ReportMetric(float64(rt.n.Load()-before)/float64(b.N), "roundtrips/op")
}

var benchRequests = []struct {
	name string
	req  Request
}{
	{"requests-only", Request{Policy: Policy{Requests: benchPolicy.Requests}}},
	{"tokens+budget+global", Request{Policy: benchPolicy, Tokens: 2000, CostUSD: 0.01}},
}

func BenchmarkRedisAdmit(b *testing.B) {
	ctx := context.Background()
	for _, mode := range benchModes {
		r, rt := benchRedis(b, mode.opts)
		for _, bc := range benchRequests {
			b.Run(mode.name+"/"+bc.name, func(b *testing.B) {
				req := bc.req
				req.Key = "warmup"
				_, err := r.Admit(ctx, req) // loads the script
				require.NoError(b, err)
				b.ReportAllocs()
				before := rt.n.Load()
				b.ResetTimer()
				for i := range b.N {
					req.Key = benchKeys[i%len(benchKeys)]
					if d, err := r.Admit(ctx, req); err != nil || !d.Allowed {
						b.Fatalf("admit: %v %+v", err, d)
					}
				}
				b.StopTimer()
				reportRoundTrips(b, rt, before)
			})
		}
	}
}

// BenchmarkRedisAdmitParallel is the gateway's situation: about 32 callers
// admitting at once on a small box. cpu-ns/op is this process's CPU (the
// gateway's share; redis-server's is not in it) per admission.
func BenchmarkRedisAdmitParallel(b *testing.B) {
	ctx := context.Background()
	for _, mode := range benchModes {
		r, rt := benchRedis(b, mode.opts)
		for _, bc := range benchRequests {
			b.Run(mode.name+"/"+bc.name, func(b *testing.B) {
				req := bc.req
				req.Key = "warmup"
				_, err := r.Admit(ctx, req) // loads the script
				require.NoError(b, err)
				b.ReportAllocs()
				b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
				var next atomic.Int64
				before, cpu := rt.n.Load(), processCPU()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					req := req
					for pb.Next() {
						req.Key = benchKeys[next.Add(1)%int64(len(benchKeys))]
						if d, err := r.Admit(ctx, req); err != nil || !d.Allowed {
							b.Errorf("admit: %v %+v", err, d)
							return
						}
					}
				})
				b.StopTimer()
				b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
				reportRoundTrips(b, rt, before)
			})
		}
	}
}

func BenchmarkRedisSettle(b *testing.B) {
	ctx := context.Background()
	r, rt := benchRedis(b, RedisOptions{})
	d, err := r.Admit(ctx, Request{Key: "sub:bench", Policy: benchPolicy, Tokens: 2000, CostUSD: 0.01})
	require.NoError(b, err)
	require.True(b, d.Allowed)
	require.NoError(b, r.Settle(ctx, d.Reservation, Usage{Tokens: 1000, CostUSD: 0.005}))
	b.ReportAllocs()
	before := rt.n.Load()
	b.ResetTimer()
	for range b.N {
		if err := r.Settle(ctx, d.Reservation, Usage{Tokens: 1000, CostUSD: 0.005}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportRoundTrips(b, rt, before)
}
