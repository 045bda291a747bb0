package handlers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/keyward/keyward/pkg/anthropic"
	"github.com/keyward/keyward/services/gateway/internal/httperr"
	"github.com/keyward/keyward/services/gateway/internal/metrics"
	"github.com/keyward/keyward/services/gateway/internal/reqctx"
)

// maxUpstreamJSON caps a non-streaming upstream answer held in memory.
const maxUpstreamJSON = 32 << 20

// callUpstream performs one logical upstream call (with the client's bounded
// retries) and records its outcome.
func (h *Handlers) callUpstream(ctx context.Context, st *reqctx.State, model, path string, hdr http.Header, body []byte) (*http.Response, error) {
	start := time.Now()
	resp, err := h.Client.Do(ctx, anthropic.Call{
		Method: http.MethodPost, Path: path, Header: hdr, Body: body, Retry: st.UpstreamRetry,
		OnAttempt: func(attempt, status int, err error) { h.countAttempt(model, attempt, status, err) },
	})
	h.Metrics.UpstreamDuration.WithLabelValues(model).Observe(time.Since(start).Seconds())
	if h.Client.BreakerOpen() {
		h.Metrics.CircuitOpen.Set(1)
	} else {
		h.Metrics.CircuitOpen.Set(0)
	}
	var ae *anthropic.APIError
	switch {
	case err == nil:
		// The canonical spelling: Get would canonicalise "request-id" anew
		// (an allocation) on every call.
		st.UpstreamRequestID = h.Client.Redactor().Token(resp.Header.Get("Request-Id"))
	case errors.As(err, &ae):
		st.UpstreamRequestID = ae.RequestID
		h.capRetryAfter(st, ae)
	case errors.Is(err, anthropic.ErrCircuitOpen):
		h.Metrics.UpstreamRequests.WithLabelValues(model, "circuit_open").Inc()
		e := httperr.From(err)
		if ra := h.Client.BreakerRetryAfter(); ra > 0 {
			e.RetryAfter = ra
		}
		return nil, e
	}
	return resp, err
}

// countAttempt counts every upstream attempt — so alerts see each
// 429/529/5xx the upstream answered, retried or not — and the retries among
// them.
func (h *Handlers) countAttempt(model string, attempt, status int, err error) {
	if attempt > 0 {
		h.Metrics.UpstreamRetries.WithLabelValues(model).Inc()
	}
	code := "error"
	switch {
	case errors.Is(err, anthropic.ErrUpstreamTimeout) || errors.Is(err, context.DeadlineExceeded):
		code = "timeout"
	case status != 0:
		code = metrics.StatusCode(status)
	case errors.Is(err, context.Canceled):
		code = "cancelled"
	}
	h.Metrics.UpstreamRequests.WithLabelValues(model, code).Inc()
}

// completeJSON makes a non-streaming upstream call for an admitted request,
// reads the whole answer, meters its usage and settles the reservation —
// whatever the outcome, the reservation is settled exactly once: at the
// metered usage, at nothing when the upstream refused the call, and at the
// whole reservation when the answer was lost (the upstream may have billed
// all of it).
func (h *Handlers) completeJSON(c *gin.Context, st *reqctx.State, cm *callMoney, hdr http.Header, body []byte) (*http.Response, []byte, error) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), h.Cfg.RequestTimeout)
	defer cancel()
	resp, err := h.callUpstream(ctx, st, cm.model, "/v1/messages", hdr, body)
	if err != nil {
		cm.settleFailed(err, false)
		return nil, nil, err
	}
	out, err := readJSON(resp)
	if err != nil {
		cm.settleUnread()
		return nil, nil, fmt.Errorf("reading upstream answer: %w", err)
	}
	u, _, merr := anthropic.MeterJSON(out)
	if merr != nil {
		h.Log.Warn("upstream answer has no usage", "request_id", st.RequestID)
	}
	cm.settle(u, "")
	return resp, out, nil
}

// reserveStream takes one of the caller's concurrent-stream slots on this
// replica; release gives it back.
func (h *Handlers) reserveStream(st *reqctx.State) (release func(), err error) {
	max := h.Cfg.StreamCap(st.Caller.Tier)
	if !h.streams.acquire(st.Caller.Key, max) {
		h.Metrics.RateLimitRejects.WithLabelValues("streams").Inc()
		return nil, httperr.TooManyStreams(max)
	}
	return func() { h.streams.release(st.Caller.Key) }, nil
}

// readJSON reads a complete non-streaming upstream answer.
func readJSON(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	if n := resp.ContentLength; n >= 0 && n <= maxUpstreamJSON {
		// The usual case: one exact allocation instead of ReadAll's
		// doubling.
		b := make([]byte, n)
		if _, err := io.ReadFull(resp.Body, b); err != nil {
			return nil, err
		}
		return b, nil
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxUpstreamJSON))
	if err != nil {
		return nil, err
	}
	return b, nil
}

// setStreamHeaders prepares an SSE response. Rate-limit headers were set at
// admission, so they go out before the first byte.
func setStreamHeaders(c *gin.Context, upstreamRequestID string) {
	h := c.Writer.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	if upstreamRequestID != "" {
		h.Set("request-id", upstreamRequestID)
	}
}
