package auth

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/pkg/redistest"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

func TestMemoryNonceStoreExpiresAndBounds(t *testing.T) {
	clk := &clock{now: t0}
	m := NewMemoryNonceStore()
	m.now = clk.Now
	m.max = 3
	ctx := context.Background()

	claim := func(kid, nonce string) (bool, error) { return m.Claim(ctx, kid, nonce, time.Minute) }
	fresh, err := claim("k", "n1")
	require.NoError(t, err)
	require.True(t, fresh)
	fresh, err = claim("k", "n1")
	require.NoError(t, err)
	require.False(t, fresh, "second claim is a replay")
	fresh, err = claim("k2", "n1")
	require.NoError(t, err)
	require.True(t, fresh, "nonces are per key id")
	// ("k1","2x") and ("k","12x") must not collide.
	fresh, err = claim("k1", "2x")
	require.NoError(t, err)
	require.True(t, fresh)

	// Full: refuse rather than forget a live nonce.
	_, err = claim("k", "n4")
	require.ErrorIs(t, err, ErrUnavailable)
	fresh, err = claim("k", "n1")
	require.NoError(t, err)
	require.False(t, fresh, "a full store still remembers")

	// After the TTL everything is forgotten and space is reclaimed.
	clk.Advance(time.Minute)
	fresh, err = claim("k", "n1")
	require.NoError(t, err)
	require.True(t, fresh)
	require.Len(t, m.seen, 1)
	require.Len(t, m.exp, 1)
}

func TestMemoryNonceStoreConcurrentClaimsOneWinner(t *testing.T) {
	m := NewMemoryNonceStore()
	var wins atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ok, err := m.Claim(context.Background(), "k", "same-nonce", time.Minute); err == nil && ok {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	require.EqualValues(t, 1, wins.Load())
}

func TestRedisNonceStoreConcurrentClaimsOneWinner(t *testing.T) {
	srv := redistest.Start(t)
	var wins atomic.Int64
	var wg sync.WaitGroup
	// Eight "replicas", each with its own connection pool, race for one nonce.
	for i := 0; i < 8; i++ {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr})
		t.Cleanup(func() { _ = c.Close() })
		s := NewRedisNonceStore(c, fmt.Sprintf("test:%s:", t.Name()))
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := s.Claim(context.Background(), "k", "race-nonce-000000", time.Minute)
			if err == nil && ok {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	require.EqualValues(t, 1, wins.Load())

	// Default prefix gives the documented key.
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = c.Close() })
	ok, err := NewRedisNonceStore(c, "").Claim(context.Background(), "kid1", "nonce-abcdefghijkl", 10*time.Second)
	require.NoError(t, err)
	require.True(t, ok)
	n, err := c.Exists(context.Background(), "keyward:v1:nonce:kid1:nonce-abcdefghijkl").Result()
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
}

func TestRedisNonceStoreNilClient(t *testing.T) {
	_, err := NewRedisNonceStore(nil, "").Claim(context.Background(), "k", "n", time.Second)
	require.ErrorIs(t, err, ErrUnavailable)
}
