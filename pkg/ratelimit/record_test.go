package ratelimit

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// hashRecorder increments one hash field: a stand-in for the usage ledger.
type hashRecorder struct{ key string }

func (h *hashRecorder) Queue(p redis.Pipeliner) { p.HIncrBy(context.Background(), h.key, "n", 1) }

// requestRTs counts round trips, leaving out a new connection's handshake
// (HELLO, CLIENT SETINFO), which go-redis also sends through the hooks.
type requestRTs struct{ n atomic.Int64 }

func handshake(cmds ...redis.Cmder) bool {
	for _, c := range cmds {
		if n := c.Name(); n != "hello" && n != "client" {
			return false
		}
	}
	return true
}

func (c *requestRTs) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *requestRTs) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !handshake(cmd) {
			c.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (c *requestRTs) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if !handshake(cmds...) {
			c.n.Add(1)
		}
		return next(ctx, cmds)
	}
}

// The ledger's writes ride in the settle's own round trip, also when the
// settle has nothing to adjust, and after a script-cache flush (NOSCRIPT)
// they are applied exactly once.
func TestSettleCarriesRecordInItsRoundTrip(t *testing.T) {
	srv := startRedis(t)
	for _, unbatched := range []bool{false, true} {
		t.Run(map[bool]string{false: "batched", true: "unbatched"}[unbatched], func(t *testing.T) {
			c := newTestClient(t, srv.Addr)
			rt := &requestRTs{}
			c.AddHook(rt)
			r, err := NewRedis(c, RedisOptions{Prefix: testPrefix(t), Unbatched: unbatched})
			require.NoError(t, err)
			ctx := context.Background()
			rec := &hashRecorder{key: testPrefix(t) + "ledger"}
			c.Del(ctx, rec.key)
			pol := Policy{Requests: Limit{Rate: 100, Period: time.Minute, Burst: 100}, DailyBudgetUSD: 10, TokensPerMinute: 100000}
			d, err := r.Admit(ctx, Request{Key: "sub:ledger", Policy: pol, Tokens: 100, CostUSD: 0.5})
			require.NoError(t, err)
			require.True(t, d.Allowed)

			// Load the settle script first (a first EVALSHA gets NOSCRIPT).
			warm, err := r.Admit(ctx, Request{Key: "sub:warm", Policy: pol, Tokens: 100, CostUSD: 0.5})
			require.NoError(t, err)
			require.NoError(t, r.Settle(ctx, warm.Reservation, Usage{Tokens: 1, CostUSD: 0.1}))

			before := rt.n.Load()
			require.NoError(t, r.Settle(ctx, d.Reservation, Usage{Tokens: 40, CostUSD: 0.2, Record: rec}))
			require.Equal(t, int64(1), rt.n.Load()-before, "settle and ledger in one round trip")
			st, err := r.Status(ctx, "sub:ledger", pol)
			require.NoError(t, err)
			require.InDelta(t, 0.2, st.BudgetSpentUSD, 1e-9, "the settle itself still applied")

			// Nothing to adjust: the record alone, still one round trip.
			d, err = r.Admit(ctx, Request{Key: "sub:ledger", Policy: pol, Tokens: 100, CostUSD: 0.5})
			require.NoError(t, err)
			before = rt.n.Load()
			require.NoError(t, r.Settle(ctx, d.Reservation, Usage{Tokens: 100, CostUSD: 0.5, Record: rec}))
			require.Equal(t, int64(1), rt.n.Load()-before)

			// An emptied script cache: the script is re-sent, the record is not.
			d, err = r.Admit(ctx, Request{Key: "sub:ledger", Policy: pol, Tokens: 100, CostUSD: 0.5})
			require.NoError(t, err)
			require.NoError(t, c.ScriptFlush(ctx).Err())
			require.NoError(t, r.Settle(ctx, d.Reservation, Usage{Tokens: 10, CostUSD: 0.1, Record: rec}))
			n, err := c.HGet(ctx, rec.key, "n").Int()
			require.NoError(t, err)
			require.Equal(t, 3, n, "each record applied exactly once (unbatched=%v)", unbatched)
			st, err = r.Status(ctx, "sub:ledger", pol)
			require.NoError(t, err)
			require.InDelta(t, 0.8, st.BudgetSpentUSD, 1e-9)
			c.Del(ctx, rec.key)
		})
	}
}
