package revoke

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/pkg/auth"
	"github.com/keyward/keyward/pkg/ratelimit"
	"github.com/keyward/keyward/pkg/redistest"
)

func TestDenylistRules(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 500e6, time.UTC)
	clock := now
	d := NewDenylist(func() time.Time { return clock })
	require.NoError(t, d.Add(Entry{Kind: KindJTI, Value: "t1", RevokedAt: now, Until: now.Add(time.Hour)}))
	require.NoError(t, d.Add(Entry{Kind: KindSubject, Value: "bob", RevokedAt: now, Until: now.Add(time.Hour)}))

	for _, tc := range []struct {
		name string
		id   auth.Identity
		want bool
	}{
		{"revoked jti", auth.Identity{Subject: "alice", TokenID: "t1"}, true},
		{"another jti", auth.Identity{Subject: "alice", TokenID: "t2"}, false},
		{"no jti", auth.Identity{Subject: "alice"}, false},
		{"subject, issued before", auth.Identity{Subject: "bob", IssuedAt: now.Add(-time.Minute)}, true},
		{"subject, issued in the same second", auth.Identity{Subject: "bob", IssuedAt: now.Truncate(time.Second)}, true},
		{"subject, issued after", auth.Identity{Subject: "bob", IssuedAt: now.Add(time.Second).Truncate(time.Second)}, false},
		{"subject, no iat", auth.Identity{Subject: "bob"}, true},
		{"subject is not a jti", auth.Identity{Subject: "carol", TokenID: "bob"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) { require.Equal(t, tc.want, d.Revoked(tc.id)) })
	}
	clock = now.Add(time.Hour)
	require.False(t, d.Revoked(auth.Identity{Subject: "alice", TokenID: "t1"}), "a revocation lapses at until")
	require.Empty(t, d.List())

	for name, e := range map[string]Entry{
		"kind":    {Kind: "email", Value: "x", RevokedAt: now, Until: now.Add(time.Hour)},
		"value":   {Kind: KindJTI, RevokedAt: now, Until: now.Add(time.Hour)},
		"until":   {Kind: KindJTI, Value: "x", RevokedAt: now, Until: now},
		"no time": {Kind: KindJTI, Value: "x", RevokedAt: now},
	} {
		require.ErrorIs(t, d.Add(e), ErrInvalid, name)
	}
}

func TestRedisReplicasConverge(t *testing.T) {
	srv := redistest.Start(t)
	newClient := func() *Redis {
		c, err := ratelimit.NewRedisClient(ratelimit.RedisConfig{URL: srv.URL()})
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		r := NewRedis(c, t.Name()+":", NewDenylist(nil), nil)
		require.NoError(t, r.Sync(context.Background()))
		return r
	}
	a, b := newClient(), newClient()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go b.Run(ctx)

	now := time.Now()
	require.NoError(t, a.Add(ctx, Entry{Kind: KindJTI, Value: "t1", RevokedAt: now, Until: now.Add(time.Hour)}))
	require.True(t, a.local.Revoked(auth.Identity{Subject: "x", TokenID: "t1"}), "the writer sees it at once")
	require.Eventually(t, func() bool { return b.local.Revoked(auth.Identity{Subject: "x", TokenID: "t1"}) },
		2*time.Second, 10*time.Millisecond, "another replica picks it up by polling")
	es, err := b.List(ctx)
	require.NoError(t, err)
	require.Len(t, es, 1)

	ok, err := a.Remove(ctx, KindJTI, "t1")
	require.NoError(t, err)
	require.True(t, ok)
	require.Eventually(t, func() bool { return !b.local.Revoked(auth.Identity{Subject: "x", TokenID: "t1"}) },
		2*time.Second, 10*time.Millisecond)
}
