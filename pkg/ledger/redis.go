package ledger

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis keeps the ledger next to the limiter's counters (P = prefix +
// "keyward:v1:ledger:", ID = the identity with '{', '}' and '%' escaped):
//
//	P{ID}:YYYY-MM-DD    hash: "<model>|<counter>" → HINCRBY, "tier" → last tier
//	Pspend:YYYY-MM-DD   sorted set: identity → that day's cost in micro-dollars
//
// Both expire RetentionDays after the end of their day. One call's writes
// are a handful of commands queued in the settle's pipeline.
type Redis struct {
	client    redis.UniversalClient
	base      string
	retention int
}

var _ Ledger = (*Redis)(nil)

// NewRedis returns a ledger on client. prefix is the limiter's ("" for the
// gateway's default); retentionDays <= 0 means DefaultRetentionDays.
func NewRedis(client redis.UniversalClient, prefix string, retentionDays int) (*Redis, error) {
	if client == nil {
		return nil, errors.New("creating redis ledger: nil client")
	}
	if strings.ContainsAny(prefix, "{}") {
		return nil, errors.New("creating redis ledger: prefix must not contain '{' or '}'")
	}
	if retentionDays <= 0 {
		retentionDays = DefaultRetentionDays
	}
	return &Redis{client: client, base: prefix + "keyward:v1:ledger:", retention: retentionDays}, nil
}

var tagEscaper = strings.NewReplacer("%", "%25", "{", "%7B", "}", "%7D")

func (r *Redis) dayKey(identity, day string) string {
	return r.base + "{" + tagEscaper.Replace(identity) + "}:" + day
}

func (r *Redis) spendKey(day string) string { return r.base + "spend:" + day }

// expiry is the end of day plus the retention.
func (r *Redis) expiry(t time.Time) time.Time {
	start := t.UTC().Truncate(24 * time.Hour)
	return start.Add(time.Duration(r.retention+1) * 24 * time.Hour)
}

// Record implements Ledger.
func (r *Redis) Record(e Entry) *Writes {
	d := day(e.Time)
	key, spend := r.dayKey(e.Identity, d), r.spendKey(d)
	exp := r.expiry(e.Time)
	c := e.Counters
	vals := c.ptrs()
	return &Writes{queue: func(p redis.Pipeliner) {
		ctx := context.Background()
		for i, v := range vals {
			if *v != 0 {
				p.HIncrBy(ctx, key, e.Model+"|"+fieldNames[i], *v)
			}
		}
		p.HSet(ctx, key, "tier", e.Tier)
		p.ExpireAt(ctx, key, exp)
		p.ZIncrBy(ctx, spend, float64(c.CostMicro), e.Identity)
		p.ExpireAt(ctx, spend, exp)
	}}
}

// Send implements Ledger.
func (r *Redis) Send(ctx context.Context, w *Writes) error {
	if w == nil {
		return nil
	}
	if _, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error { w.Queue(p); return nil }); err != nil {
		return fmt.Errorf("writing usage ledger to redis: %w", err)
	}
	return nil
}

// Rows implements Ledger: one round trip for the days' identities (skipped
// for one identity) and one for their hashes.
func (r *Redis) Rows(ctx context.Context, q Query) ([]Row, error) {
	days, err := q.Days()
	if err != nil {
		return nil, err
	}
	type dayID struct{ day, id string }
	var wanted []dayID
	if q.Identity != "" {
		for _, d := range days {
			wanted = append(wanted, dayID{d, q.Identity})
		}
	} else {
		cmds := make([]*redis.StringSliceCmd, len(days))
		if _, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, d := range days {
				cmds[i] = p.ZRange(ctx, r.spendKey(d), 0, -1)
			}
			return nil
		}); err != nil {
			return nil, fmt.Errorf("reading usage ledger from redis: %w", err)
		}
		for i, d := range days {
			for _, id := range cmds[i].Val() {
				wanted = append(wanted, dayID{d, id})
			}
		}
	}
	if len(wanted) == 0 {
		return nil, nil
	}
	hashes := make([]*redis.MapStringStringCmd, len(wanted))
	if _, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, w := range wanted {
			hashes[i] = p.HGetAll(ctx, r.dayKey(w.id, w.day))
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("reading usage ledger from redis: %w", err)
	}
	var rows []Row
	for i, w := range wanted {
		rows = append(rows, parseHash(w.day, w.id, hashes[i].Val())...)
	}
	return rows, nil
}

func parseHash(day, identity string, h map[string]string) []Row {
	byModel := map[string]*Row{}
	var models []string
	for f, v := range h {
		i := strings.LastIndexByte(f, '|')
		if i < 0 {
			continue
		}
		model, name := f[:i], f[i+1:]
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			continue
		}
		row, ok := byModel[model]
		if !ok {
			row = &Row{Day: day, Identity: identity, Model: model, Tier: h["tier"]}
			byModel[model] = row
			models = append(models, model)
		}
		ptrs := row.ptrs()
		for j, fn := range fieldNames {
			if fn == name {
				*ptrs[j] += n
			}
		}
	}
	out := make([]Row, 0, len(models))
	for _, m := range models {
		r := *byModel[m]
		r.CostUSD = float64(r.CostMicro) / 1e6
		out = append(out, r)
	}
	return out
}

// Backend implements Ledger.
func (r *Redis) Backend() string { return BackendRedis }

// Retention implements Ledger.
func (r *Redis) Retention() int { return r.retention }
