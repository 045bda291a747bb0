// Package ledger records who spent what: per identity, UTC day and model,
// the requests, tokens, server-tool uses and cost of every settled call.
// The Redis ledger writes nothing on its own: it hands the limiter's settle
// a set of commands to queue in the same pipeline (no extra round trip);
// the memory ledger (in-process mode) keeps the same counters in memory.
package ledger

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultRetentionDays is how long a day's counters are kept.
const DefaultRetentionDays = 35

// MaxQueryDays bounds one query's range.
const MaxQueryDays = 400

// Backends.
const (
	BackendRedis  = "redis"
	BackendMemory = "memory"
)

// ErrInvalidQuery wraps every rejection of a malformed query.
var ErrInvalidQuery = errors.New("invalid usage query")

// Counters are what one row adds up. CostMicro is in micro-dollars (1e-6 USD).
type Counters struct {
	Requests         int64 `json:"requests"`
	InputTokens      int64 `json:"input_tokens"`
	OutputTokens     int64 `json:"output_tokens"`
	CacheReadTokens  int64 `json:"cache_read_tokens"`
	CacheWriteTokens int64 `json:"cache_write_tokens"`
	CacheHits        int64 `json:"cache_hits"` // requests that read from the prompt cache
	ServerToolUses   int64 `json:"server_tool_uses"`
	CostMicro        int64 `json:"cost_micro_usd"`
}

// fieldNames are the hash field suffixes, in Counters' order.
var fieldNames = []string{"requests", "input", "output", "cache_read", "cache_write", "cache_hits", "server_tools", "cost_micro"}

func (c *Counters) ptrs() []*int64 {
	return []*int64{&c.Requests, &c.InputTokens, &c.OutputTokens, &c.CacheReadTokens, &c.CacheWriteTokens, &c.CacheHits, &c.ServerToolUses, &c.CostMicro}
}

func (c *Counters) add(o Counters) {
	dst, src := c.ptrs(), o.ptrs()
	for i := range dst {
		*dst[i] += *src[i]
	}
}

// Entry is one settled call.
type Entry struct {
	Identity string // the limiter's key: "sub:alice", "ip:203.0.113.9", "hmac:ci"
	Tier     string
	Model    string
	Time     time.Time // names the UTC day
	Counters
}

// MicroUSD converts a cost to micro-dollars the way every total is kept
// (rounded to the nearest micro-dollar per call).
func MicroUSD(usd float64) int64 {
	if usd <= 0 || math.IsNaN(usd) || math.IsInf(usd, 0) {
		return 0
	}
	return int64(math.Round(usd * 1e6))
}

// Row is a total over some group. Fields not grouped by are empty.
type Row struct {
	Day      string `json:"day,omitempty"`
	Identity string `json:"identity,omitempty"`
	Model    string `json:"model,omitempty"`
	Tier     string `json:"tier,omitempty"`
	Counters
	CostUSD float64 `json:"cost_usd"`
}

// Query selects rows: days From..To (inclusive, UTC), optionally one identity.
type Query struct {
	From, To time.Time
	Identity string
}

// Days lists the UTC days of q, validating the range.
func (q Query) Days() ([]string, error) {
	from, to := q.From.UTC().Truncate(24*time.Hour), q.To.UTC().Truncate(24*time.Hour)
	if to.Before(from) {
		return nil, fmt.Errorf("%w: to is before from", ErrInvalidQuery)
	}
	n := int(to.Sub(from)/(24*time.Hour)) + 1
	if n > MaxQueryDays {
		return nil, fmt.Errorf("%w: at most %d days per query", ErrInvalidQuery, MaxQueryDays)
	}
	days := make([]string, 0, n)
	for d := from; !d.After(to); d = d.Add(24 * time.Hour) {
		days = append(days, d.Format(time.DateOnly))
	}
	return days, nil
}

// Writes are one entry's Redis commands, to queue into a pipeline.
type Writes struct {
	queue func(p redis.Pipeliner)
}

// Queue adds the writes to p (it satisfies ratelimit.Recorder).
func (w *Writes) Queue(p redis.Pipeliner) { w.queue(p) }

// Ledger is implemented by Redis and Memory.
type Ledger interface {
	// Record returns the writes recording e, for the caller to queue in the
	// pipeline of the settle it is part of; nil means e is already recorded
	// (the memory ledger).
	Record(e Entry) *Writes
	// Send runs what Record returned on its own (one round trip), for calls
	// that have no settle to carry it.
	Send(ctx context.Context, w *Writes) error
	// Rows returns one row per day × identity × model in q, with the tier
	// the identity last had that day.
	Rows(ctx context.Context, q Query) ([]Row, error)
	Backend() string
	// Retention is how many days a day's counters are kept.
	Retention() int
}

// GroupBy dimensions.
const (
	ByIdentity = "identity"
	ByModel    = "model"
	ByDay      = "day"
	ByTier     = "tier"
)

// Group sums rows over the dimensions not in by, sorted by cost (highest
// first), then by the grouped fields.
func Group(rows []Row, by []string) ([]Row, error) {
	keep := map[string]bool{}
	for _, b := range by {
		switch b {
		case ByIdentity, ByModel, ByDay, ByTier:
			keep[b] = true
		default:
			return nil, fmt.Errorf("%w: group_by %q (use identity, model, day, tier)", ErrInvalidQuery, b)
		}
	}
	type key struct{ day, id, model, tier string }
	sums := map[key]*Row{}
	var order []key
	for _, r := range rows {
		var k key
		if keep[ByDay] {
			k.day = r.Day
		}
		if keep[ByIdentity] {
			k.id = r.Identity
		}
		if keep[ByModel] {
			k.model = r.Model
		}
		if keep[ByTier] {
			k.tier = r.Tier
		}
		s, ok := sums[k]
		if !ok {
			s = &Row{Day: k.day, Identity: k.id, Model: k.model, Tier: k.tier}
			sums[k] = s
			order = append(order, k)
		}
		s.add(r.Counters)
	}
	out := make([]Row, 0, len(order))
	for _, k := range order {
		r := *sums[k]
		r.CostUSD = float64(r.CostMicro) / 1e6
		out = append(out, r)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.CostMicro != b.CostMicro {
			return a.CostMicro > b.CostMicro
		}
		if a.Day != b.Day {
			return a.Day < b.Day
		}
		if a.Identity != b.Identity {
			return a.Identity < b.Identity
		}
		if a.Model != b.Model {
			return a.Model < b.Model
		}
		return a.Tier < b.Tier
	})
	return out, nil
}

// Total sums every row.
func Total(rows []Row) Row {
	var t Row
	for _, r := range rows {
		t.add(r.Counters)
	}
	t.CostUSD = float64(t.CostMicro) / 1e6
	return t
}

func day(t time.Time) string { return t.UTC().Format(time.DateOnly) }
