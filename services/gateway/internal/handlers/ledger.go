package handlers

import (
	"context"
	"time"

	"github.com/keyward/keyward/pkg/anthropic"
	"github.com/keyward/keyward/pkg/ledger"
	"github.com/keyward/keyward/pkg/ratelimit"
	"github.com/keyward/keyward/services/gateway/internal/reqctx"
)

// ledgerEntry is one settled call as the usage ledger counts it.
func (h *Handlers) ledgerEntry(st *reqctx.State, model string, u anthropic.Usage, cost float64) ledger.Entry {
	e := ledger.Entry{Identity: st.Caller.Key, Tier: st.Caller.Tier, Model: model, Time: h.now()}
	e.Requests = 1
	e.InputTokens = u.InputTokens
	e.OutputTokens = u.OutputTokens
	e.CacheReadTokens = u.CacheReadInputTokens
	e.CacheWriteTokens = u.CacheCreationInputTokens
	if u.CacheReadInputTokens > 0 {
		e.CacheHits = 1
	}
	if s := u.ServerToolUse; s != nil {
		e.ServerToolUses = s.WebSearchRequests + s.WebFetchRequests + s.CodeExecutionRequests
	}
	e.CostMicro = ledger.MicroUSD(cost)
	if e.Identity == "" {
		e.Identity = "anonymous"
	}
	return e
}

// recordUsage adds the call to the ledger. It returns the writes to carry in
// the settle's pipeline when there is a Redis settle to carry them (no round
// trip of their own); otherwise it sends them itself.
func (h *Handlers) recordUsage(st *reqctx.State, d *ratelimit.Decision, model string, u anthropic.Usage, cost float64) ratelimit.Recorder {
	if h.Ledger == nil {
		return nil
	}
	w := h.Ledger.Record(h.ledgerEntry(st, model, u, cost))
	if w == nil {
		return nil
	}
	if d != nil && d.Reservation.Settles() && d.Reservation.Backend == ratelimit.BackendRedis {
		return w
	}
	if h.Limiter.Backend() != ratelimit.BackendRedis {
		// Redis is down (the limiter is on its fallback): the write would
		// hold this request for a dial timeout, so it is dropped (README
		// "Who spent what").
		h.Log.Debug("usage ledger write dropped while Redis is down", "request_id", st.RequestID)
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := h.Ledger.Send(ctx, w); err != nil {
		h.Log.Warn("writing the usage ledger failed", "request_id", st.RequestID, "error", err.Error())
	}
	return nil
}
