package anscache

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/pkg/redistest"
)

// coalesces runs n concurrent Gets of one key through c and reports how
// many fills ran and how many callers were hits. The fill waits until every
// caller has started, so they really are concurrent.
func coalesces(t *testing.T, c Cache, n int) (fills int64, hits int64) {
	t.Helper()
	var started sync.WaitGroup
	started.Add(n)
	release := make(chan struct{})
	go func() { started.Wait(); close(release) }()
	var wg sync.WaitGroup
	var f, h atomic.Int64
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			started.Done()
			v, hit, err := c.Get(context.Background(), "k", time.Minute, func(context.Context) ([]byte, error) {
				f.Add(1)
				<-release
				time.Sleep(50 * time.Millisecond) // let the others find the fill in progress
				return []byte("answer"), nil
			})
			require.NoError(t, err)
			require.Equal(t, "answer", string(v))
			if hit {
				h.Add(1)
			}
		}()
	}
	wg.Wait()
	return f.Load(), h.Load()
}

func TestMemoryCoalescesAndExpires(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	m := NewMemory(func() time.Time { return now })
	fills, hits := coalesces(t, m, 20)
	require.Equal(t, int64(1), fills)
	require.Equal(t, int64(19), hits)

	_, hit, err := m.Get(context.Background(), "k", time.Minute, func(context.Context) ([]byte, error) { return nil, errors.New("not called") })
	require.NoError(t, err)
	require.True(t, hit)
	now = now.Add(2 * time.Minute)
	v, hit, err := m.Get(context.Background(), "k", time.Minute, func(context.Context) ([]byte, error) { return []byte("fresh"), nil })
	require.NoError(t, err)
	require.False(t, hit, "past its TTL the entry is filled again")
	require.Equal(t, "fresh", string(v))
}

func TestFailedFillIsNotCached(t *testing.T) {
	m := NewMemory(nil)
	_, _, err := m.Get(context.Background(), "k", time.Minute, func(context.Context) ([]byte, error) { return nil, errors.New("upstream 529") })
	require.Error(t, err)
	v, hit, err := m.Get(context.Background(), "k", time.Minute, func(context.Context) ([]byte, error) { return []byte("ok"), nil })
	require.NoError(t, err)
	require.False(t, hit)
	require.Equal(t, "ok", string(v))
}

func TestRedisCoalescesAcrossClients(t *testing.T) {
	srv := redistest.Start(t)
	var caches []*Redis
	for range 3 { // three replicas, each with its own connection pool
		rc := redis.NewClient(&redis.Options{Addr: srv.Addr})
		t.Cleanup(func() { _ = rc.Close() })
		caches = append(caches, NewRedis(rc, "t1:", 10*time.Second, 5*time.Second))
	}
	var fills, hits atomic.Int64
	var wg sync.WaitGroup
	for i := range 21 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, hit, err := caches[i%3].Get(context.Background(), "k", time.Minute, func(context.Context) ([]byte, error) {
				fills.Add(1)
				time.Sleep(200 * time.Millisecond)
				return []byte("answer"), nil
			})
			require.NoError(t, err)
			require.Equal(t, "answer", string(v))
			if hit {
				hits.Add(1)
			}
		}()
	}
	wg.Wait()
	require.Equal(t, int64(1), fills.Load(), "one fill for 21 concurrent callers on 3 clients")
	require.Equal(t, int64(20), hits.Load())

	// A filler that fails leaves no value and frees the lock: the next
	// caller fills.
	_, _, err := caches[0].Get(context.Background(), "k2", time.Minute, func(context.Context) ([]byte, error) { return nil, errors.New("boom") })
	require.Error(t, err)
	v, hit, err := caches[1].Get(context.Background(), "k2", time.Minute, func(context.Context) ([]byte, error) { return []byte("second"), nil })
	require.NoError(t, err)
	require.False(t, hit)
	require.Equal(t, "second", string(v))
}

func TestRedisWaitIsBounded(t *testing.T) {
	srv := redistest.Start(t)
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = rc.Close() })
	c := NewRedis(rc, "t2:", time.Minute, 200*time.Millisecond)
	// Another replica holds the lock and never finishes.
	require.NoError(t, rc.Set(context.Background(), "t2:l:k", "other", time.Minute).Err())
	start := time.Now()
	v, hit, err := c.Get(context.Background(), "k", time.Minute, func(context.Context) ([]byte, error) { return []byte("own"), nil })
	require.NoError(t, err)
	require.False(t, hit)
	require.Equal(t, "own", string(v), "after the bounded wait the caller answers itself")
	require.Less(t, time.Since(start), 2*time.Second)
}
