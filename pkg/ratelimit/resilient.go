package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// FailureMode is what Resilient does while Redis is unreachable
// (KEYWARD_REDIS_FAILURE_MODE).
type FailureMode string

const (
	// FailureLocal limits with an in-process limiter holding this replica's
	// share of every limit (the default).
	FailureLocal FailureMode = "local"
	// FailureOpen admits everything: availability over protection.
	FailureOpen FailureMode = "open"
	// FailureClosed refuses everything with ErrBackendUnavailable (503).
	FailureClosed FailureMode = "closed"
)

// Backend names reported while Redis is down, one per failure mode.
const (
	BackendDegraded = "degraded"
	BackendOpen     = "open"
	BackendClosed   = "closed"
)

// ParseFailureMode reads KEYWARD_REDIS_FAILURE_MODE; "" is FailureLocal.
func ParseFailureMode(s string) (FailureMode, error) {
	switch m := FailureMode(s); m {
	case "":
		return FailureLocal, nil
	case FailureLocal, FailureOpen, FailureClosed:
		return m, nil
	}
	return "", fmt.Errorf("parsing redis failure mode %q: want local, open or closed", s)
}

// Observer receives Resilient's state for metrics without this package
// importing Prometheus. Calls are synchronous and must be cheap.
type Observer interface {
	// BackendUp is called with the initial state and on every change
	// (keyward_ratelimit_backend_up).
	BackendUp(up bool)
	// FallbackDecision is called for each Admit decided by the failure
	// policy (keyward_ratelimit_fallback_decisions_total{mode,decision}).
	FallbackDecision(mode string, allowed bool)
}

// ResilientOptions configures NewResilient. The zero value is the default
// policy: local fallback at full share, 100 ms per Redis call, probe every second.
type ResilientOptions struct {
	FailureMode FailureMode
	// LocalShareDivisor divides every limit of the local fallback, usually
	// the replica count, so N replicas on their own admit about what the
	// shared limit would (each share is rounded down, but at least 1).
	LocalShareDivisor int
	// Timeout bounds each Redis call (default 100ms) so a slow Redis costs
	// a request at most this much before the failure policy decides.
	Timeout time.Duration
	// ProbeInterval is how often Redis is PINGed (default 1s): while up, to
	// notice an outage without waiting for a request to fail; while down, to
	// switch back to shared limiting by itself.
	ProbeInterval time.Duration
	// Local configures the fallback limiter (clock, key bound).
	Local MemoryOptions
	// MaxPendingSettlements bounds the Settles of Redis reservations kept
	// while Redis is down and replayed when it is back (default 10000).
	MaxPendingSettlements int
	Observer              Observer     // nil: no metrics
	Logger                *slog.Logger // nil: discard
}

// Resilient is the Limiter the gateway uses with Redis: shared limits while
// Redis answers, the configured FailureMode while it does not, and back to
// shared limits by itself once a probe succeeds.
//
// Settlement while Redis is down: a reservation made by the fallback settles
// with the fallback; one made in Redis is queued (bounded) and replayed when
// Redis is back, so refunds and the usage of aborted streams are not lost.
// The local fallback starts each outage with empty counters: it bounds spend
// during the outage, it does not know what was spent in Redis before it.
type Resilient struct {
	primary  *Redis
	local    *Memory
	mode     FailureMode
	divisor  int
	timeout  time.Duration
	interval time.Duration
	obs      Observer
	log      *slog.Logger

	up atomic.Bool

	known knownSpend // the shared spend last seen, for the local fallback

	pendingMu  sync.Mutex
	pending    []pendingSettle
	maxPending int

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

var _ Limiter = (*Resilient)(nil)

type pendingSettle struct {
	res  Reservation
	used Usage
}

type nopObserver struct{}

func (nopObserver) BackendUp(bool)                {}
func (nopObserver) FallbackDecision(string, bool) {}

// NewResilient wraps primary with the failure policy in opts. It PINGs Redis
// once (bounded by Timeout) to start in the right state, and starts a probe
// goroutine that Close stops. A Redis that is down at start is not an error:
// the gateway must start and serve under the failure policy.
func NewResilient(primary *Redis, opts ResilientOptions) (*Resilient, error) {
	if primary == nil {
		return nil, errors.New("creating resilient limiter: nil redis limiter")
	}
	mode, err := ParseFailureMode(string(opts.FailureMode))
	if err != nil {
		return nil, fmt.Errorf("creating resilient limiter: %w", err)
	}
	switch {
	case opts.LocalShareDivisor < 0:
		return nil, fmt.Errorf("creating resilient limiter: LocalShareDivisor must be >= 1, got %d", opts.LocalShareDivisor)
	case opts.Timeout < 0:
		return nil, fmt.Errorf("creating resilient limiter: Timeout must be > 0, got %s", opts.Timeout)
	case opts.ProbeInterval < 0:
		return nil, fmt.Errorf("creating resilient limiter: ProbeInterval must be > 0, got %s", opts.ProbeInterval)
	case opts.MaxPendingSettlements < 0:
		return nil, fmt.Errorf("creating resilient limiter: MaxPendingSettlements must be >= 0, got %d", opts.MaxPendingSettlements)
	}
	local, err := NewMemory(opts.Local)
	if err != nil {
		return nil, fmt.Errorf("creating resilient limiter: %w", err)
	}
	local.backend = BackendDegraded
	r := &Resilient{
		primary:    primary,
		local:      local,
		mode:       mode,
		divisor:    max(1, opts.LocalShareDivisor),
		timeout:    opts.Timeout,
		interval:   opts.ProbeInterval,
		obs:        opts.Observer,
		log:        opts.Logger,
		maxPending: opts.MaxPendingSettlements,
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
	}
	if r.timeout == 0 {
		r.timeout = 100 * time.Millisecond
	}
	if r.interval == 0 {
		r.interval = time.Second
	}
	if r.maxPending == 0 {
		r.maxPending = 10_000
	}
	if r.obs == nil {
		r.obs = nopObserver{}
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	up := r.ping(context.Background()) == nil
	r.up.Store(up)
	r.obs.BackendUp(up)
	if !up {
		r.log.Warn("rate-limit redis unreachable at start; limiting under the failure policy", slog.String("mode", string(mode)))
	}
	go r.probe()
	return r, nil
}

// Admit implements Limiter.
func (r *Resilient) Admit(ctx context.Context, req Request) (Decision, error) {
	if err := req.validate(); err != nil {
		return Decision{}, fmt.Errorf("admitting request: %w", err)
	}
	if r.up.Load() {
		cctx, cancel := context.WithTimeout(ctx, r.timeout)
		d, err := r.primary.Admit(cctx, req)
		cancel()
		if err == nil {
			r.known.note(req.Key, &d, r.local.now)
			return d, nil
		}
		if ctx.Err() != nil {
			return Decision{}, fmt.Errorf("admitting request: %w", ctx.Err())
		}
		r.markDown(err)
	}
	return r.fallbackAdmit(ctx, req)
}

func (r *Resilient) fallbackAdmit(ctx context.Context, req Request) (Decision, error) {
	switch r.mode {
	case FailureOpen:
		r.obs.FallbackDecision(string(FailureOpen), true)
		lim := req.Policy.Requests.normalized()
		return Decision{
			Allowed:     true,
			Limit:       lim,
			Remaining:   lim.Burst, // nothing is counted while open
			Backend:     BackendOpen,
			Reservation: Reservation{Key: req.Key, Policy: req.Policy, Day: utcDay(r.local.now()), Backend: BackendOpen},
		}, nil
	case FailureClosed:
		r.obs.FallbackDecision(string(FailureClosed), false)
		return Decision{
			Reason:     ReasonBackend,
			Limit:      req.Policy.Requests.normalized(),
			RetryAfter: r.retryAfter(),
			Backend:    BackendClosed,
		}, fmt.Errorf("admitting request: %w", ErrBackendUnavailable)
	}
	req.Policy = r.share(r.known.deduct(req.Key, utcDay(r.local.now()), req.Policy))
	d, err := r.local.Admit(ctx, req)
	if err != nil {
		return Decision{}, err
	}
	r.obs.FallbackDecision(string(FailureLocal), d.Allowed)
	return d, nil
}

// retryAfter is the Retry-After of a closed-mode refusal: the next probe,
// but at least a second so it fits an integer header.
func (r *Resilient) retryAfter() time.Duration {
	return max(time.Second, r.interval.Round(time.Second))
}

// share is this replica's part of p for the local fallback. Rounding down
// keeps N replicas together within the shared limit; the floor of 1 keeps
// a tiny limit from becoming a total outage.
func (r *Resilient) share(p Policy) Policy {
	if r.divisor == 1 {
		return p
	}
	n := r.divisor
	if !p.Requests.IsZero() {
		l := p.Requests.normalized()
		p.Requests = Limit{Rate: max(1, l.Rate/n), Period: l.Period, Burst: max(1, l.Burst/n)}
	}
	if p.TokensPerMinute > 0 {
		p.TokensPerMinute = max(1, p.TokensPerMinute/int64(n))
	}
	if p.MaxConcurrent > 0 {
		p.MaxConcurrent = max(1, p.MaxConcurrent/n)
	}
	p.DailyBudgetUSD = shareUSD(p.DailyBudgetUSD, n)
	p.GlobalDailyUSD = shareUSD(p.GlobalDailyUSD, n)
	return p
}

func shareUSD(v float64, n int) float64 {
	if v <= 0 {
		return v
	}
	return max(1e-6, math.Floor(v/float64(n)*1e6)/1e6)
}

// Settle implements Limiter.
func (r *Resilient) Settle(ctx context.Context, res Reservation, used Usage) error {
	if err := res.validate(); err != nil {
		return fmt.Errorf("settling reservation: %w", err)
	}
	if err := used.validate(); err != nil {
		return fmt.Errorf("settling reservation: %w", err)
	}
	if !res.Settles() {
		return nil
	}
	switch res.Backend {
	case BackendOpen:
		return nil // nothing was reserved
	case BackendDegraded:
		return r.local.Settle(ctx, res, used)
	}
	if r.up.Load() {
		cctx, cancel := context.WithTimeout(ctx, r.timeout)
		err := r.primary.Settle(cctx, res, used)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("settling reservation: %w", ctx.Err())
		}
		r.markDown(err)
	}
	return r.enqueue(res, used)
}

// Extend implements Limiter. A reservation follows its backend: the local
// fallback's with the fallback, an open-mode one always succeeds (nothing is
// counted while open). One made in Redis is extended there while Redis
// answers; while it does not, the failure mode decides: open allows, closed
// refuses (the caller stops the answer), local charges the extension to
// this replica's share in the fallback, never refunded (strict side), and
// leaves res as it was, so the settlement replayed to Redis later charges
// the whole usage there.
func (r *Resilient) Extend(ctx context.Context, res *Reservation, moreTokens int64, moreUSD float64) (bool, error) {
	if res == nil {
		return false, fmt.Errorf("extending reservation: %w: nil reservation", ErrInvalidRequest)
	}
	if _, err := newExtension(*res, moreTokens, moreUSD, r.local.now()); err != nil {
		return false, fmt.Errorf("extending reservation: %w", err)
	}
	switch res.Backend {
	case BackendOpen:
		return true, nil
	case BackendDegraded:
		return r.local.Extend(ctx, res, moreTokens, moreUSD)
	}
	if r.up.Load() {
		cctx, cancel := context.WithTimeout(ctx, r.timeout)
		ok, err := r.primary.Extend(cctx, res, moreTokens, moreUSD)
		cancel()
		if err == nil {
			return ok, nil
		}
		if ctx.Err() != nil {
			return false, fmt.Errorf("extending reservation: %w", ctx.Err())
		}
		r.markDown(err)
	}
	switch r.mode {
	case FailureOpen:
		r.obs.FallbackDecision(string(FailureOpen), true)
		return true, nil
	case FailureClosed:
		r.obs.FallbackDecision(string(FailureClosed), false)
		return false, fmt.Errorf("extending reservation: %w", ErrBackendUnavailable)
	}
	p := r.share(r.known.deduct(res.Key, utcDay(r.local.now()), res.Policy))
	p.Requests, p.MaxConcurrent = Limit{}, 0 // an extension is not a new call
	d, err := r.local.Admit(ctx, Request{Key: res.Key, Policy: p, Tokens: moreTokens, CostUSD: moreUSD})
	if err != nil {
		return false, err
	}
	r.obs.FallbackDecision(string(FailureLocal), d.Allowed)
	return d.Allowed, nil
}

func (r *Resilient) enqueue(res Reservation, used Usage) error {
	r.pendingMu.Lock()
	defer r.pendingMu.Unlock()
	if len(r.pending) >= r.maxPending {
		return fmt.Errorf("settling reservation: %d settlements already waiting for redis, dropped: %w", len(r.pending), ErrBackendUnavailable)
	}
	r.pending = append(r.pending, pendingSettle{res, used})
	return nil
}

// Pending reports how many settlements wait for Redis to come back.
func (r *Resilient) Pending() int {
	r.pendingMu.Lock()
	defer r.pendingMu.Unlock()
	return len(r.pending)
}

// Status implements Limiter.
func (r *Resilient) Status(ctx context.Context, key string, policy Policy) (Status, error) {
	if err := validKey(key); err != nil {
		return Status{}, fmt.Errorf("reading quota: %w", err)
	}
	if err := policy.validate(); err != nil {
		return Status{}, fmt.Errorf("reading quota: %w", err)
	}
	if r.up.Load() {
		cctx, cancel := context.WithTimeout(ctx, r.timeout)
		st, err := r.primary.Status(cctx, key, policy)
		cancel()
		if err == nil {
			return st, nil
		}
		if ctx.Err() != nil {
			return Status{}, fmt.Errorf("reading quota: %w", ctx.Err())
		}
		r.markDown(err)
	}
	switch r.mode {
	case FailureOpen:
		lim := policy.Requests.normalized()
		return Status{
			Limit: lim, Remaining: lim.Burst,
			TokensPerMinute: policy.TokensPerMinute, TokensRemaining: policy.TokensPerMinute,
			DailyBudgetUSD: policy.DailyBudgetUSD, BudgetResetAt: nextMidnight(r.local.now()),
			Backend: BackendOpen,
		}, nil
	case FailureClosed:
		return Status{Limit: policy.Requests.normalized(), Backend: BackendClosed},
			fmt.Errorf("reading quota: %w", ErrBackendUnavailable)
	}
	return r.local.Status(ctx, key, r.share(policy))
}

// Backend implements Limiter: "redis" while Redis answers, else "degraded",
// "open" or "closed" after the failure mode.
func (r *Resilient) Backend() string {
	if r.up.Load() {
		return BackendRedis
	}
	switch r.mode {
	case FailureOpen:
		return BackendOpen
	case FailureClosed:
		return BackendClosed
	}
	return BackendDegraded
}

// Close stops the probe. The Redis client stays open: it is the caller's.
func (r *Resilient) Close() error {
	r.once.Do(func() {
		close(r.stop)
		<-r.done
	})
	return r.local.Close()
}

func (r *Resilient) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	return r.primary.Ping(ctx)
}

func (r *Resilient) markDown(err error) {
	if r.up.CompareAndSwap(true, false) {
		r.obs.BackendUp(false)
		r.log.Warn("rate-limit redis unreachable; limiting under the failure policy",
			slog.String("mode", string(r.mode)), slog.String("error", err.Error()))
	}
}

func (r *Resilient) markUp() {
	if r.up.CompareAndSwap(false, true) {
		r.obs.BackendUp(true)
		r.log.Info("rate-limit redis reachable again; shared limiting resumed")
	}
}

// probe PINGs Redis every interval until Close. On success it switches back
// to shared limiting first (new requests should not wait for the backlog)
// and then replays the settlements that waited for Redis.
func (r *Resilient) probe() {
	defer close(r.done)
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		if err := r.ping(context.Background()); err != nil {
			r.markDown(err)
			continue
		}
		r.markUp()
		r.replay()
	}
}

// replay settles queued reservations in Redis; on the first failure the rest
// go back to the queue for the next probe.
func (r *Resilient) replay() {
	r.pendingMu.Lock()
	batch := r.pending
	r.pending = nil
	r.pendingMu.Unlock()
	for i, p := range batch {
		select {
		case <-r.stop:
			r.requeue(batch[i:])
			return
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
		err := r.primary.Settle(ctx, p.res, p.used)
		cancel()
		if err != nil {
			r.requeue(batch[i:])
			return
		}
	}
}

func (r *Resilient) requeue(rest []pendingSettle) {
	r.pendingMu.Lock()
	defer r.pendingMu.Unlock()
	r.pending = append(rest, r.pending...)
	if len(r.pending) > r.maxPending {
		r.pending = r.pending[:r.maxPending]
	}
}
