// Package ratelimit decides whether a caller may make one more upstream call:
// requests per window (GCRA), tokens per minute, a daily USD budget per
// identity and a global daily USD cap. Token and cost limits reserve an
// estimate before the upstream call and settle to the metered usage after it.
//
// Two implementations satisfy Limiter and pass one conformance suite: Redis
// (shared by every replica, Redis TIME as the clock) and in-process memory.
// Resilient wraps a Redis limiter with a failure policy for Redis outages.
package ratelimit

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrBackendUnavailable is returned when the limiter cannot reach its store and
// the failure policy says to refuse (mode "closed"). Callers map it to 503.
var ErrBackendUnavailable = errors.New("rate-limit backend unavailable")

// ErrInvalidRequest wraps every rejection of malformed input to Admit, Settle
// or Status (empty key, negative estimates, non-finite costs). It is a caller
// bug, not a store outage: Resilient does not fall back on it.
var ErrInvalidRequest = errors.New("invalid rate-limit request")

// Limit is a GCRA limit: Rate events per Period, with bursts of up to Burst.
type Limit struct {
	Rate   int
	Period time.Duration
	Burst  int
}

// IsZero reports whether the limit is unset (no limiting).
func (l Limit) IsZero() bool { return l.Rate <= 0 || l.Period <= 0 }

// Policy is every limit that applies to one identity (a tier).
// Zero values mean "no limit of that kind".
type Policy struct {
	Name            string  // tier name; "" is the default tier
	Requests        Limit   // requests per window
	TokensPerMinute int64   // input+output tokens per minute
	DailyBudgetUSD  float64 // USD per identity per UTC day
	GlobalDailyUSD  float64 // USD for all identities together per UTC day
	// MaxConcurrent caps the identity's upstream calls in flight at once,
	// across every replica sharing the store (0 = no cap). Each admitted
	// call holds a lease until Settle, or until the lease expires when its
	// replica died.
	MaxConcurrent int
}

// Request asks for admission of one upstream call.
type Request struct {
	Key     string // identity key, already normalised ("ip:203.0.113.9", "sub:alice")
	Policy  Policy
	Tokens  int64   // reservation estimate: input estimate + max_tokens; 0 skips the token check
	CostUSD float64 // reservation estimate in USD; 0 skips the budget checks
	// CallID names the call's concurrency lease: unique per call (the
	// caller generates it, never from client input). Required when
	// Policy.MaxConcurrent > 0.
	CallID string
	// Lease is how long a lease lives if Settle never comes (default 15m).
	Lease time.Duration
}

// Reason names the limit that refused a request.
type Reason string

const (
	ReasonNone         Reason = ""
	ReasonRequests     Reason = "requests"
	ReasonTokens       Reason = "tokens"
	ReasonBudget       Reason = "budget"
	ReasonGlobalBudget Reason = "global_budget"
	ReasonConcurrency  Reason = "concurrency"
	ReasonBackend      Reason = "backend"
)

// Decision is the outcome of Admit. For an admitted request Reservation must
// be passed to Settle exactly once, whatever happens upstream.
type Decision struct {
	Allowed     bool
	Reason      Reason        // set when !Allowed
	Limit       Limit         // the request limit that applied
	Remaining   int           // requests left in the window after this one
	RetryAfter  time.Duration // when !Allowed: earliest time a retry can succeed
	ResetAfter  time.Duration // time until the request bucket is full again
	Reservation Reservation
	Backend     string // "redis", "memory", "degraded" (local fallback), "open"
	// Unsatisfiable is set when the request alone exceeds a whole limit
	// (Tokens above TokensPerMinute, CostUSD above a daily budget), so no
	// amount of waiting helps; RetryAfter is 0 then. Callers should answer
	// with a 4xx that says so (e.g. "lower max_tokens") rather than a 429.
	Unsatisfiable bool
	// BudgetSpentUSD and GlobalSpentUSD are the identity's and everyone's
	// spend today as the backend counted it at this decision, outstanding
	// reservations (this one, when admitted) included; 0 when that budget
	// was not checked or the backend does not report it. The resilient
	// limiter remembers them for its local fallback.
	BudgetSpentUSD float64
	GlobalSpentUSD float64
}

// Reservation is what Admit put aside for one call.
type Reservation struct {
	Key     string
	Policy  Policy
	Tokens  int64
	CostUSD float64
	Day     string // UTC day the cost was reserved on (YYYY-MM-DD)
	Backend string // which backend holds it; Settle routes to the same one
	CallID  string // the concurrency lease Settle gives back ("" when none)
}

// Settles reports whether Settle can change anything for this reservation.
// Only token and budget limits are reconciled with what a call used, and a
// concurrency lease is given back; a request-count limit is final at
// admission, so callers may skip Settle (and the context and timer they
// would make for it).
func (r Reservation) Settles() bool {
	return r.CallID != "" || r.Policy.TokensPerMinute > 0 || toMicro(r.Policy.DailyBudgetUSD) > 0 || toMicro(r.Policy.GlobalDailyUSD) > 0
}

// Usage is what a call actually consumed (from the upstream's usage fields).
type Usage struct {
	Tokens  int64
	CostUSD float64
	// Record, when set, queues more writes (the usage ledger's) into the
	// Redis settle's own pipeline, so they cost no round trip of their own;
	// they are sent even when the settle has nothing to adjust. Only the
	// Redis limiter sends them (Resilient keeps them with a settle it replays
	// later); the memory limiter ignores them.
	Record Recorder
}

// Recorder queues writes into a pipeline (see Usage.Record). Implementations
// should be pointers, so Usage stays comparable.
type Recorder interface {
	Queue(p redis.Pipeliner)
}

// Status is a caller's own quota, read without consuming anything.
type Status struct {
	Limit           Limit
	Remaining       int
	ResetAfter      time.Duration
	TokensPerMinute int64
	TokensRemaining int64
	DailyBudgetUSD  float64
	BudgetSpentUSD  float64 // includes outstanding reservations
	BudgetResetAt   time.Time
	Backend         string
}

// Limiter is implemented by the Redis and memory limiters and by Resilient.
type Limiter interface {
	// Admit checks every limit of req.Policy and, only if all pass, consumes
	// one request and reserves req.Tokens and req.CostUSD atomically.
	Admit(ctx context.Context, req Request) (Decision, error)
	// Settle replaces a reservation with the actual usage (refunding or
	// charging the difference).
	Settle(ctx context.Context, res Reservation, used Usage) error
	// Extend adds moreTokens and moreUSD to an admitted reservation, checked
	// atomically against the caller's token bucket, daily budget and the
	// global cap: all of it or nothing. On ok, res grows by what was put
	// aside, so Settle later refunds or charges against the whole; on a
	// refusal res is unchanged. Live metering calls it as an answer's
	// metered cost passes what was reserved.
	Extend(ctx context.Context, res *Reservation, moreTokens int64, moreUSD float64) (ok bool, err error)
	// Status reports key's quota under policy without consuming anything.
	Status(ctx context.Context, key string, policy Policy) (Status, error)
	// Backend names the store currently deciding: "redis", "memory", "degraded", "open", "closed".
	Backend() string
	Close() error
}
