// Package handlers holds the gateway's HTTP handlers. Handlers are thin:
// they bind the request, call pkg (limits, upstream, metering) and map the
// result; every error goes through httperr.
package handlers

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/keyward/keyward/pkg/anthropic"
	"github.com/keyward/keyward/pkg/ledger"
	"github.com/keyward/keyward/pkg/ratelimit"
	"github.com/keyward/keyward/services/gateway/internal/anscache"
	"github.com/keyward/keyward/services/gateway/internal/config"
	"github.com/keyward/keyward/services/gateway/internal/httperr"
	"github.com/keyward/keyward/services/gateway/internal/metrics"
	"github.com/keyward/keyward/services/gateway/internal/reqctx"
)

// Handlers serves every public endpoint.
type Handlers struct {
	Cfg     *config.Config
	Log     *slog.Logger
	Metrics *metrics.Metrics
	Limiter ratelimit.Limiter
	Client  *anthropic.Client
	// Ledger, when set, counts every settled call per identity, day and model.
	Ledger ledger.Ledger
	// ReadyCheck reports readiness and the body of GET /ready.
	ReadyCheck func() (bool, map[string]any)
	Version    string
	Now        func() time.Time
	streams    streamCounter
	// StreamCtx is cancelled when the drain deadline passes, ending open
	// streams with an error event instead of cutting them mid-event.
	StreamCtx context.Context
	// Cache is the shared answer cache of catalog queries (anscache).
	Cache anscache.Cache
}

// handle adapts a handler that returns an error to gin.
func (h *Handlers) handle(fn func(c *gin.Context) error) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := fn(c); err != nil {
			httperr.Write(c, h.Log, err)
		}
	}
}

// admit checks every limit for one upstream call in one backend round trip
// and sets the RateLimit-* headers (before any byte of a stream).
// A callID (unique per upstream call) takes one of the identity's
// concurrent-call slots, shared across replicas (live.go).
func (h *Handlers) admit(c *gin.Context, st *reqctx.State, tokens int64, costUSD float64, callID string) (*ratelimit.Decision, error) {
	pol := h.Cfg.PolicyFor(st.Caller.Tier)
	if pol.TokensPerMinute == 0 {
		tokens = 0
	}
	if pol.DailyBudgetUSD == 0 && pol.GlobalDailyUSD == 0 {
		costUSD = 0
	}
	req := ratelimit.Request{Key: st.Caller.Key, Policy: pol, Tokens: tokens, CostUSD: costUSD}
	if callID != "" && h.Cfg.Live.MaxConcurrentCalls > 0 {
		req.Policy.MaxConcurrent, req.CallID, req.Lease = h.Cfg.Live.MaxConcurrentCalls, callID, h.callLease()
	}
	d, err := h.Limiter.Admit(c.Request.Context(), req)
	if err != nil {
		h.Metrics.RateLimitRejects.WithLabelValues("backend").Inc()
		return nil, err
	}
	st.Decision = &d
	httperr.SetRateLimitHeaders(c.Writer.Header(), d)
	if !d.Allowed {
		if d.Unsatisfiable {
			// Waiting can never help: one call is bigger than the whole limit.
			h.Metrics.RateLimitRejects.WithLabelValues(string(d.Reason)).Inc()
			return nil, httperr.Invalid(unsatisfiableMessage(d.Reason, pol), "max_tokens")
		}
		if d.Reason == ratelimit.ReasonConcurrency {
			h.Metrics.RateLimitRejects.WithLabelValues("concurrency").Inc()
			return nil, tooManyCalls(req.Policy.MaxConcurrent)
		}
		if d.Reason == ratelimit.ReasonBackend {
			h.Metrics.RateLimitRejects.WithLabelValues("backend").Inc()
			return nil, ratelimit.ErrBackendUnavailable
		}
		h.Metrics.RateLimitRejects.WithLabelValues(string(d.Reason)).Inc()
		return nil, httperr.LimitExceeded(d, pol)
	}
	return &d, nil
}

func unsatisfiableMessage(r ratelimit.Reason, pol ratelimit.Policy) string {
	switch r {
	case ratelimit.ReasonTokens:
		return fmt.Sprintf("this request could use more than your limit of %d tokens per minute; lower max_tokens", pol.TokensPerMinute)
	case ratelimit.ReasonBudget:
		return fmt.Sprintf("this request could cost more than your daily budget of $%.2f; lower max_tokens", pol.DailyBudgetUSD)
	default:
		return "this request could cost more than the service's whole daily budget; lower max_tokens"
	}
}

// settle records the metered usage: metrics, cost, and the limiter's
// reservation. It runs even when the client went away, on its own context.
func (h *Handlers) settle(st *reqctx.State, d *ratelimit.Decision, model string, u anthropic.Usage) {
	bill, priced := h.Cfg.Prices.Bill(model, u, u.UsageExt)
	cost := bill.TotalUSD()
	if !priced && u.TotalTokens() > 0 {
		h.Log.Warn("model has no price: cost not counted", "model", model, "request_id", st.RequestID)
	}
	st.Usage, st.CostUSD = u, cost
	h.Metrics.ObserveUsage(model, u, cost, priced)
	record := h.recordUsage(st, d, model, u, cost)
	if d == nil || !d.Reservation.Settles() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := h.Limiter.Settle(ctx, d.Reservation, ratelimit.Usage{Tokens: u.TotalTokens(), CostUSD: cost, Record: record}); err != nil {
		h.Log.Warn("settling a reservation failed", "request_id", st.RequestID, "error", err.Error())
	}
}

// cost is what usage u costs on model: tokens, multipliers and fees.
func (h *Handlers) cost(model string, u anthropic.Usage) float64 {
	bill, _ := h.Cfg.Prices.Bill(model, u, u.UsageExt)
	return bill.TotalUSD()
}

// estimateCost prices a reservation as an upper bound: the input estimate at
// the dearest input rate (a cache write) plus max_tokens of output. Settling
// refunds the difference.
func (h *Handlers) estimateCost(model string, inputTokens, maxTokens int64) float64 {
	cost, _ := h.Cfg.Prices.ReserveCost(model, inputTokens, maxTokens)
	return cost
}

// streamCounter caps concurrent streams per identity on this replica.
type streamCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (s *streamCounter) acquire(key string, max int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n == nil {
		s.n = map[string]int{}
	}
	if max > 0 && s.n[key] >= max {
		return false
	}
	s.n[key]++
	return true
}

func (s *streamCounter) release(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n[key] <= 1 {
		delete(s.n, key)
		return
	}
	s.n[key]--
}
