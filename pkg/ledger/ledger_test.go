package ledger

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/pkg/ratelimit"
	"github.com/keyward/keyward/pkg/redistest"
)

// day1 is yesterday 10:00 UTC: Redis keys expire relative to the real clock.
var day1 = time.Now().UTC().Truncate(24 * time.Hour).Add(-14 * time.Hour)

func entries() []Entry {
	e := func(id, tier, model string, t time.Time, in, out, cr, micro int64) Entry {
		x := Entry{Identity: id, Tier: tier, Model: model, Time: t}
		x.Requests, x.InputTokens, x.OutputTokens, x.CacheReadTokens, x.CostMicro = 1, in, out, cr, micro
		if cr > 0 {
			x.CacheHits = 1
		}
		return x
	}
	return []Entry{
		e("sub:alice", "pro", "claude-sonnet-4-5", day1, 100, 50, 0, 1050),
		e("sub:alice", "pro", "claude-sonnet-4-5", day1, 100, 50, 900, 1320),
		e("sub:alice", "pro", "claude-haiku-4-5", day1.Add(24*time.Hour), 10, 5, 0, 35),
		e("sub:{odd}%", "", "claude-haiku-4-5", day1, 1000, 1000, 0, 6000),
		e("ip:203.0.113.9", "", "claude-haiku-4-5", day1.Add(13*time.Hour), 1, 1, 0, 6),
	}
}

func checkLedger(t *testing.T, l Ledger) {
	t.Helper()
	ctx := context.Background()
	rows, err := l.Rows(ctx, Query{From: day1, To: day1.Add(24 * time.Hour)})
	require.NoError(t, err)
	total := Total(rows)
	require.Equal(t, int64(5), total.Requests)
	require.Equal(t, int64(1050+1320+35+6000+6), total.CostMicro)
	require.Equal(t, int64(1), total.CacheHits)

	byID, err := Group(rows, []string{ByIdentity})
	require.NoError(t, err)
	require.Equal(t, "sub:{odd}%", byID[0].Identity, "top spender first, identity kept as given")
	require.Equal(t, int64(6000), byID[0].CostMicro)
	require.Equal(t, "sub:alice", byID[1].Identity)
	require.Equal(t, int64(2405), byID[1].CostMicro)
	require.InDelta(t, 0.002405, byID[1].CostUSD, 1e-12)

	byTier, err := Group(rows, []string{ByTier})
	require.NoError(t, err)
	require.Len(t, byTier, 2)

	byDayModel, err := Group(rows, []string{ByDay, ByModel})
	require.NoError(t, err)
	require.Len(t, byDayModel, 3, "day 1 × 2 models + day 2 × 1 model (the 23:00 call is still day 1)")

	one, err := l.Rows(ctx, Query{From: day1, To: day1, Identity: "sub:alice"})
	require.NoError(t, err)
	require.Len(t, one, 1)
	require.Equal(t, int64(900), one[0].CacheReadTokens)
	require.Equal(t, "pro", one[0].Tier)

	_, err = Group(rows, []string{"colour"})
	require.ErrorIs(t, err, ErrInvalidQuery)
	_, err = l.Rows(ctx, Query{From: day1, To: day1.Add(-24 * time.Hour)})
	require.ErrorIs(t, err, ErrInvalidQuery)
	_, err = l.Rows(ctx, Query{From: day1, To: day1.AddDate(2, 0, 0)})
	require.ErrorIs(t, err, ErrInvalidQuery)
}

func TestMemoryLedger(t *testing.T) {
	l := NewMemory(35, func() time.Time { return day1 })
	for _, e := range entries() {
		require.Nil(t, l.Record(e), "memory records at once")
	}
	require.Equal(t, BackendMemory, l.Backend())
	checkLedger(t, l)
}

func TestRedisLedger(t *testing.T) {
	srv := redistest.Start(t)
	c, err := ratelimit.NewRedisClient(ratelimit.RedisConfig{URL: srv.URL()})
	require.NoError(t, err)
	defer c.Close()
	l, err := NewRedis(c, "t:", 35)
	require.NoError(t, err)
	ctx := context.Background()
	var w []*Writes
	for _, e := range entries() {
		w = append(w, l.Record(e))
	}
	// Half through Send, half queued into someone else's pipeline (the settle's).
	require.NoError(t, l.Send(ctx, w[0]))
	_, err = c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, x := range w[1:] {
			x.Queue(p)
		}
		return nil
	})
	require.NoError(t, err)
	checkLedger(t, l)

	d1 := day1.Format(time.DateOnly)
	ttl, err := c.TTL(ctx, "t:keyward:v1:ledger:{sub:alice}:"+d1).Result()
	require.NoError(t, err)
	require.Positive(t, ttl, "every ledger key expires")
	exp, err := c.ExpireTime(ctx, "t:keyward:v1:ledger:spend:"+d1).Result()
	require.NoError(t, err)
	require.Equal(t, day1.Truncate(24*time.Hour).AddDate(0, 0, 36).Unix(), int64(exp/time.Second), "kept 35 days after the day ends")
	_, err = NewRedis(c, "bad{", 35)
	require.Error(t, err)
}
