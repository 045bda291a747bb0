package handlers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/keyward/keyward/pkg/anthropic"
	"github.com/keyward/keyward/pkg/ratelimit"
	"github.com/keyward/keyward/services/gateway/internal/httperr"
	"github.com/keyward/keyward/services/gateway/internal/reqctx"
)

// Settlement reasons of keyward_settlements_estimated_total: the phase a
// call was in when it ended without its final usage.
const (
	settleNoResponse = "no_response" // a non-streaming call that ended before its answer was read
	settleBudgetStop = "budget_stop" // the gateway stopped the answer at the budget
)

// callMoney is one upstream call's money from admission to settlement: the
// reservation, the bounds the request sets, and the live extensions of a
// stream. A stream reserves its input, its thinking budget and a first
// slice of output, then extends the reservation a slice at a time as the
// metered output passes it; when the budget cannot cover a slice, the
// stream is stopped at an event boundary. A non-streaming call reserves its
// whole max_tokens (README "How budgets hold").
type callMoney struct {
	h      *Handlers
	st     *reqctx.State
	d      *ratelimit.Decision
	model  string
	bounds anthropic.Bounds
	slice  int64
	// covered is the output (tokens) the reservation was last sized for.
	covered    int64
	extensions int
	refused    bool
}

// reserved is what a reservation holds: the input it bounds (lateInput of
// it added by server tools during the answer), and the tokens and USD put
// aside.
type reserved struct {
	inputTokens, lateInputTokens, tokens int64
	usd                                  float64
}

// reserveFunc prices the reservation of a call that reserves out output
// tokens.
type reserveFunc func(out int64) (reserved, error)

// admitCall reserves an upstream call: one Redis round trip for every
// limit. A stream reserves min(max_tokens, thinking budget + one output
// slice) of output, a non-streaming call all of max_tokens.
func (h *Handlers) admitCall(c *gin.Context, st *reqctx.State, model string, maxTokens int64, thinking json.RawMessage, stream bool, reserve reserveFunc) (*callMoney, error) {
	cm := &callMoney{
		h: h, st: st, model: model, slice: h.Cfg.Live.OutputSlice,
		bounds: anthropic.Bounds{MaxTokens: maxTokens, ThinkingBudget: thinkingBudget(thinking, maxTokens)},
	}
	out := maxTokens
	if stream && cm.slice > 0 {
		out = min(maxTokens, cm.bounds.ThinkingBudget+cm.slice)
	}
	cm.covered = out
	r, err := reserve(out)
	if err != nil {
		return nil, err
	}
	cm.bounds.InputTokens, cm.bounds.LateInputTokens = r.inputTokens, r.lateInputTokens
	d, err := h.admit(c, st, r.tokens, r.usd, newCallID())
	if err != nil {
		return nil, err
	}
	cm.d = d
	return cm, nil
}

// newCallID names one upstream call's concurrency lease: random, never
// taken from the client (a repeated id would share one slot).
func newCallID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// callLease is how long a call's concurrency slot outlives a replica that
// died before settling it: the longest a call can last, plus a minute.
func (h *Handlers) callLease() time.Duration {
	return max(h.Cfg.MaxStreamDuration, h.Cfg.RequestTimeout) + time.Minute
}

// tooManyCalls is the 429 for an identity at its concurrent-call cap.
func tooManyCalls(max int) *httperr.Error {
	return &httperr.Error{
		Status: http.StatusTooManyRequests, Short: "Rate limit exceeded", Type: "rate_limit_error",
		Message:    fmt.Sprintf("Maximum %d concurrent calls", max),
		RetryAfter: time.Second, ShouldRetry: "true", Outcome: "limited:concurrency",
	}
}

// estimateReserve is the reservation of a gateway-built request (/api/*):
// no fetched input, no multipliers.
func (h *Handlers) estimateReserve(model string, body []byte) reserveFunc {
	return func(out int64) (reserved, error) {
		in := anthropic.EstimateInputTokens(body)
		return reserved{inputTokens: in, tokens: in + out, usd: h.estimateCost(model, in, out)}, nil
	}
}

// thinkingBudget is the output a request's thinking may use: budget_tokens
// for enabled thinking, max_tokens for adaptive thinking (it has no budget
// of its own), 0 without thinking.
func thinkingBudget(raw json.RawMessage, maxTokens int64) int64 {
	if len(raw) == 0 {
		return 0
	}
	var t struct {
		Type         string `json:"type"`
		BudgetTokens int64  `json:"budget_tokens"`
	}
	if json.Unmarshal(raw, &t) != nil {
		return maxTokens // the upstream will judge it; bound it as the most it could be
	}
	switch t.Type {
	case "enabled":
		return min(max(t.BudgetTokens, 0), maxTokens)
	case "disabled":
		return 0
	}
	return maxTokens // adaptive, and types added later
}

// live installs the stream's watcher on meter (nothing to watch when no
// token or budget limit applies).
func (cm *callMoney) live(meter *anthropic.StreamMeter) {
	if !cm.d.Reservation.Settles() {
		return
	}
	meter.Watch(func() (int64, bool) {
		u, _ := meter.Bound(cm.bounds)
		if cm.fits(u) && u.OutputTokens < cm.covered {
			return meter.OutputSoFar() + (cm.covered - u.OutputTokens), true
		}
		target := u
		target.OutputTokens = u.OutputTokens + cm.slice
		if cm.bounds.MaxTokens > 0 {
			target.OutputTokens = max(u.OutputTokens, min(target.OutputTokens, cm.bounds.MaxTokens))
		}
		if !cm.extend(target) {
			return 0, false
		}
		cm.covered = target.OutputTokens
		return meter.OutputSoFar() + max(1, cm.covered-u.OutputTokens), true
	}, cm.covered-cm.bounds.ThinkingBudget)
}

// fits reports whether the reservation covers usage u.
func (cm *callMoney) fits(u anthropic.Usage) bool {
	res := cm.d.Reservation
	if res.Policy.TokensPerMinute > 0 && u.TotalTokens() > res.Tokens {
		return false
	}
	if budgeted(res.Policy) {
		if cm.h.cost(cm.model, u) > res.CostUSD {
			return false
		}
	}
	return true
}

func budgeted(p ratelimit.Policy) bool { return p.DailyBudgetUSD > 0 || p.GlobalDailyUSD > 0 }

// extend grows the reservation to cover target: one Limiter round trip. A
// refusal or an error (the failure mode already applied) stops the answer.
func (cm *callMoney) extend(target anthropic.Usage) bool {
	res := &cm.d.Reservation
	var moreTokens int64
	var moreUSD float64
	if res.Policy.TokensPerMinute > 0 {
		moreTokens = max(0, target.TotalTokens()-res.Tokens)
	}
	if budgeted(res.Policy) {
		moreUSD = max(0, cm.h.cost(cm.model, target)-res.CostUSD)
	}
	if moreTokens == 0 && moreUSD == 0 {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	cm.extensions++
	ok, err := cm.h.Limiter.Extend(ctx, res, moreTokens, moreUSD)
	if err != nil {
		cm.h.Log.Warn("extending a reservation failed; stopping the answer", "request_id", cm.st.RequestID, "error", err.Error())
		ok = false
	}
	if !ok {
		cm.refused = true
		cm.h.Metrics.RateLimitRejects.WithLabelValues("budget_live").Inc()
	}
	return ok
}

// settleStream settles a stream at its metered usage, or at the meter's
// conservative bound when the final usage never arrived.
func (cm *callMoney) settleStream(meter *anthropic.StreamMeter) anthropic.Usage {
	u, estimated := meter.Bound(cm.bounds)
	reason := ""
	if estimated {
		reason = meter.Phase().String()
		if cm.refused {
			reason = settleBudgetStop
		}
	}
	cm.settle(u, reason)
	return u
}

// settleFailed settles a call whose upstream request failed: nothing when the
// upstream refused it or was never reached, and the bound of a call it may
// have accepted (a timeout after sending, the caller gone) otherwise — never
// $0 for a call the upstream may be billing.
func (cm *callMoney) settleFailed(err error, stream bool) {
	if !mayBeBilled(err) {
		cm.settle(anthropic.Usage{}, "")
		return
	}
	if stream {
		u, _ := anthropic.NewStreamMeter().Bound(cm.bounds)
		cm.settle(u, anthropic.PhaseBeforeStart.String())
		return
	}
	cm.settleUnread()
}

// settleUnread settles a non-streaming call whose answer was never read:
// the upstream may have produced all of it, so the whole bound.
func (cm *callMoney) settleUnread() {
	cm.settle(anthropic.Usage{InputTokens: cm.bounds.InputTokens, OutputTokens: max(cm.bounds.MaxTokens, anthropic.AbandonedOutputMargin)}, settleNoResponse)
}

// mayBeBilled reports whether a failed upstream call may still have been
// accepted and billed: the request went out and no answer came back.
func mayBeBilled(err error) bool {
	var ae *anthropic.APIError
	if errors.As(err, &ae) {
		return false // the upstream answered with an error
	}
	return errors.Is(err, anthropic.ErrUpstreamTimeout) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

func (cm *callMoney) settle(u anthropic.Usage, estimatedReason string) {
	if estimatedReason != "" {
		cm.st.Settlement = "estimated"
		cm.h.Metrics.SettlementsEstimated.WithLabelValues(estimatedReason).Inc()
	}
	cm.h.settle(cm.st, cm.d, cm.model, u)
}

// budgetStopMessage is the message of the budget_exceeded error event that
// ends a stream the gateway stopped at the budget (endMessage).
const budgetStopMessage = "the answer was stopped: it would cost more than your remaining budget or token rate allows"
