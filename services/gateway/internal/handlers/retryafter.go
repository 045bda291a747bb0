package handlers

import (
	"github.com/keyward/keyward/pkg/anthropic"
	"github.com/keyward/keyward/services/gateway/internal/reqctx"
)

// capRetryAfter bounds the upstream's retry-after before it reaches the
// caller (KEYWARD_MAX_RETRY_AFTER): a hostile or confused upstream asking
// for a day would otherwise park every SDK that honours it. The real value
// is logged.
func (h *Handlers) capRetryAfter(st *reqctx.State, ae *anthropic.APIError) {
	max := h.Cfg.Safety.MaxRetryAfter
	if max <= 0 || ae.RetryAfter <= max {
		return
	}
	h.Log.Warn("upstream retry-after capped", "request_id", st.RequestID,
		"upstream_retry_after_s", ae.RetryAfter.Seconds(), "passed_on_s", max.Seconds(), "upstream_status", ae.Status)
	ae.RetryAfter = max
}
