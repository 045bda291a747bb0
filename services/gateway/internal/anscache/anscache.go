// Package anscache is the shared answer cache of catalog queries: identical
// queries (same type, parameters, data, model and prompt) within a TTL get
// one upstream call's answer. Concurrent identical requests coalesce into one
// fill: in process with a per-key call, across replicas with a Redis lock
// whose holder fills while the others wait, bounded, for its result.
package anscache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Fill computes the value on a miss. Its error is not cached.
type Fill func(ctx context.Context) ([]byte, error)

// Cache is what the handlers use.
type Cache interface {
	// Get returns the value of key, filling it with fill (and storing it for
	// ttl) when absent. hit reports that the value came from the cache or
	// from another request's fill, so this request made no upstream call.
	Get(ctx context.Context, key string, ttl time.Duration, fill Fill) (val []byte, hit bool, err error)
}

// Memory is the in-process cache, for a gateway without Redis.
type Memory struct {
	now func() time.Time

	mu      sync.Mutex
	entries map[string]memEntry
	calls   map[string]*memCall
}

type memEntry struct {
	val     []byte
	expires time.Time
}

type memCall struct {
	done chan struct{}
	val  []byte
	err  error
}

var _ Cache = (*Memory)(nil)

// NewMemory returns an empty in-process cache; now may be nil (time.Now).
func NewMemory(now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{now: now, entries: map[string]memEntry{}, calls: map[string]*memCall{}}
}

// maxMemEntries bounds the in-process cache; past it, expired entries are
// dropped and, if still full, the value is served but not kept.
const maxMemEntries = 10000

func (m *Memory) Get(ctx context.Context, key string, ttl time.Duration, fill Fill) ([]byte, bool, error) {
	for {
		m.mu.Lock()
		if e, ok := m.entries[key]; ok && m.now().Before(e.expires) {
			m.mu.Unlock()
			return e.val, true, nil
		}
		if c, ok := m.calls[key]; ok {
			m.mu.Unlock()
			select {
			case <-c.done:
			case <-ctx.Done():
				return nil, false, ctx.Err()
			}
			if c.err == nil {
				return c.val, true, nil
			}
			continue // the filler failed: try again, as the filler now
		}
		c := &memCall{done: make(chan struct{})}
		m.calls[key] = c
		m.mu.Unlock()

		c.val, c.err = fill(ctx)
		m.mu.Lock()
		delete(m.calls, key)
		if c.err == nil {
			m.store(key, c.val, ttl)
		}
		m.mu.Unlock()
		close(c.done)
		return c.val, false, c.err
	}
}

func (m *Memory) store(key string, val []byte, ttl time.Duration) {
	now := m.now()
	if len(m.entries) >= maxMemEntries {
		for k, e := range m.entries {
			if !now.Before(e.expires) {
				delete(m.entries, k)
			}
		}
		if len(m.entries) >= maxMemEntries {
			return
		}
	}
	m.entries[key] = memEntry{val: val, expires: now.Add(ttl)}
}

// Redis shares the cache between replicas.
type Redis struct {
	rc     redis.UniversalClient
	prefix string
	// LockTTL bounds how long a filler holds the lock (a crashed replica's
	// lock expires by itself); MaxWait bounds how long the others wait for
	// its value before they fill themselves; Poll is how often they look.
	LockTTL, MaxWait, Poll time.Duration
}

var _ Cache = (*Redis)(nil)

// NewRedis returns a cache in rc under prefix (e.g. "keyward:cache:").
func NewRedis(rc redis.UniversalClient, prefix string, lockTTL, maxWait time.Duration) *Redis {
	return &Redis{rc: rc, prefix: prefix, LockTTL: lockTTL, MaxWait: maxWait, Poll: 25 * time.Millisecond}
}

// unlock deletes the lock only if this filler still holds it.
var unlock = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

func (r *Redis) Get(ctx context.Context, key string, ttl time.Duration, fill Fill) ([]byte, bool, error) {
	vk, lk := r.prefix+"v:"+key, r.prefix+"l:"+key
	deadline := time.Now().Add(r.MaxWait)
	for {
		val, err := r.rc.Get(ctx, vk).Bytes()
		switch {
		case err == nil:
			return val, true, nil
		case !errors.Is(err, redis.Nil):
			// The cache is an optimisation: without Redis, answer uncached
			// (the limiter's failure mode governs admission separately).
			v, ferr := fill(ctx)
			return v, false, ferr
		}
		token := newToken()
		ok, err := r.rc.SetNX(ctx, lk, token, r.LockTTL).Result()
		if err != nil {
			v, ferr := fill(ctx)
			return v, false, ferr
		}
		if ok {
			v, ferr := fill(ctx)
			if ferr == nil {
				// A failed store only costs later callers a call of their own.
				_ = r.rc.Set(context.WithoutCancel(ctx), vk, v, ttl).Err()
			}
			_ = unlock.Run(context.WithoutCancel(ctx), r.rc, []string{lk}, token).Err()
			return v, false, ferr
		}
		if !time.Now().Before(deadline) {
			// The filler is slower than the bound: answer this request
			// itself rather than keep its caller waiting.
			v, ferr := fill(ctx)
			return v, false, ferr
		}
		select {
		case <-time.After(r.Poll):
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}

func newToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
