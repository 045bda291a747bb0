package revoke

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultPoll is how often a replica checks the version key. With it every
// replica refuses a revoked token within about half a second.
const DefaultPoll = 250 * time.Millisecond

// fullSync re-reads the whole list even when the version did not move, so a
// replica that missed a change (a Redis failover losing the INCR) converges.
const fullSync = 30 * time.Second

// Redis stores revocations in one hash shared by every replica, plus a
// version counter bumped by every change:
//
//	P revoked:{revoked}:entries   field "jti|<id>" or "sub|<subject>" → JSON Entry
//	P revoked:{revoked}:version   INCR on every change
//
// Both share a hash tag, so a change is one MULTI even on a Cluster.
type Redis struct {
	client  redis.UniversalClient
	entries string
	version string
	local   *Denylist
	poll    time.Duration
	log     *slog.Logger
	seen    atomic.Int64 // version last read; -1 before the first
}

// NewRedis returns a store on client whose local copy is local. prefix
// should be the limiter's ("" for the gateway's default); keys get
// "keyward:v1:" after it.
func NewRedis(client redis.UniversalClient, prefix string, local *Denylist, log *slog.Logger) *Redis {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	base := prefix + "keyward:v1:revoked:{revoked}:"
	r := &Redis{client: client, entries: base + "entries", version: base + "version", local: local, poll: DefaultPoll, log: log}
	r.seen.Store(-1)
	return r
}

// Add writes e and bumps the version, dropping lapsed entries on the way.
func (r *Redis) Add(ctx context.Context, e Entry) error {
	if err := e.Validate(); err != nil {
		return err
	}
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encoding revocation: %w", err)
	}
	if _, err := r.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, r.entries, e.field(), b)
		p.Incr(ctx, r.version)
		return nil
	}); err != nil {
		return fmt.Errorf("writing revocation to redis: %w", err)
	}
	r.prune(ctx)
	return r.Sync(ctx)
}

// Remove lifts a revocation; it reports whether there was one.
func (r *Redis) Remove(ctx context.Context, kind, value string) (bool, error) {
	var del *redis.IntCmd
	if _, err := r.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		del = p.HDel(ctx, r.entries, kind+"|"+value)
		p.Incr(ctx, r.version)
		return nil
	}); err != nil {
		return false, fmt.Errorf("removing revocation from redis: %w", err)
	}
	return del.Val() > 0, r.Sync(ctx)
}

// Backend names the store.
func (r *Redis) Backend() string { return "redis" }

// List returns the revocations in force, read from Redis.
func (r *Redis) List(ctx context.Context) ([]Entry, error) {
	m, err := r.read(ctx)
	if err != nil {
		return nil, err
	}
	now := r.local.now()
	out := make([]Entry, 0, len(m))
	for _, e := range m {
		if now.Before(e.Until) {
			out = append(out, e)
		}
	}
	sortEntries(out)
	return out, nil
}

// Sync reads the whole list into the local copy.
func (r *Redis) Sync(ctx context.Context) error {
	v, err := r.client.Get(ctx, r.version).Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("reading revocation version from redis: %w", err)
	}
	m, err := r.read(ctx)
	if err != nil {
		return err
	}
	r.local.replace(m)
	r.seen.Store(v)
	return nil
}

// Run keeps the local copy current until ctx ends: one GET of the version
// key per poll, the whole hash only when it moved (or every fullSync). A
// Redis outage keeps the last copy: revocations stay in force.
func (r *Redis) Run(ctx context.Context) {
	t := time.NewTicker(r.poll)
	defer t.Stop()
	last := time.Now()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		err := r.tick(cctx, time.Since(last) >= fullSync)
		cancel()
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			failing = true
			r.log.Warn("revocation list not refreshed; keeping the last copy", "error", err.Error())
		case err == nil:
			failing = false
		}
		if err == nil {
			last = time.Now()
		}
	}
}

func (r *Redis) tick(ctx context.Context, full bool) error {
	v, err := r.client.Get(ctx, r.version).Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("reading revocation version from redis: %w", err)
	}
	if v == r.seen.Load() && !full {
		return nil
	}
	return r.Sync(ctx)
}

func (r *Redis) read(ctx context.Context) (map[string]Entry, error) {
	raw, err := r.client.HGetAll(ctx, r.entries).Result()
	if err != nil {
		return nil, fmt.Errorf("reading revocations from redis: %w", err)
	}
	m := make(map[string]Entry, len(raw))
	for k, v := range raw {
		var e Entry
		if err := json.Unmarshal([]byte(v), &e); err != nil {
			r.log.Warn("ignoring an unreadable revocation entry", "field", k)
			continue
		}
		m[k] = e
	}
	return m, nil
}

// prune drops lapsed entries (best effort: they are ignored anyway).
func (r *Redis) prune(ctx context.Context) {
	m, err := r.read(ctx)
	if err != nil {
		return
	}
	now := r.local.now()
	var dead []string
	for k, e := range m {
		if !now.Before(e.Until) {
			dead = append(dead, k)
		}
	}
	if len(dead) > 0 {
		r.client.HDel(ctx, r.entries, dead...)
	}
}
