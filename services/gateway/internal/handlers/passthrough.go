package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/keyward/keyward/pkg/anthropic"
	"github.com/keyward/keyward/pkg/auth"
	"github.com/keyward/keyward/services/gateway/internal/httperr"
	"github.com/keyward/keyward/services/gateway/internal/reqctx"
)

// Messages is POST /v1/messages: the Anthropic-compatible passthrough. The
// caller's bytes are forwarded untouched (unknown fields survive); the
// gateway only inspects them, injects the server key and meters usage.
func (h *Handlers) Messages() gin.HandlerFunc {
	return h.handle(func(c *gin.Context) error {
		st := reqctx.Get(c)
		st.UpstreamRetry = anthropic.RetryUnsent
		req, err := anthropic.ParseMessageRequest(st.Body)
		if err != nil {
			return httperr.Invalid(err.Error())
		}
		body, err := h.routeModel(st, &req)
		if err != nil {
			return err
		}
		if req.MaxTokens < 1 {
			return httperr.Invalid("max_tokens: must be an integer ≥ 1", "max_tokens")
		}
		if limit := h.Cfg.MaxTokensFor(req.Model); limit > 0 && req.MaxTokens > limit {
			return httperr.Invalid(fmt.Sprintf("max_tokens: %d > %d, which is the maximum allowed number of output tokens for %s through this gateway", req.MaxTokens, limit, req.Model), "max_tokens")
		}
		st.Stream = req.Stream
		h.Metrics.ModelRequests.WithLabelValues(modelLabel(st), req.Model).Inc()
		if h.Cfg.SendUserID && st.Caller.Subject != "" {
			if body, err = withUserID(body, auth.HashSubject(st.Caller.Subject)); err != nil {
				return httperr.Invalid("could not set metadata.user_id: " + err.Error())
			}
		}
		if req.Stream {
			release, err := h.reserveStream(st)
			if err != nil {
				return err
			}
			defer release()
		}
		cm, err := h.admitCall(c, st, req.Model, req.MaxTokens, req.Thinking, req.Stream, func(out int64) (reserved, error) {
			res, err := h.reservation(c, st, req, body, out)
			r := reserved{inputTokens: res.VisibleInputTokens + res.HiddenInputTokens, tokens: res.Tokens(), usd: res.CostUSD}
			if res.ServerToolUses > 0 {
				// Documents are fetched before the answer starts (in
				// message_start's input); tool results arrive during it.
				r.lateInputTokens = res.HiddenInputTokens + res.RereadTokens
			}
			return r, err
		})
		if err != nil {
			return err
		}
		hdr := anthropic.OutboundHeaders(c.Request.Header)
		if req.Stream {
			return h.streamPassthrough(c, st, cm, hdr, body)
		}
		resp, out, err := h.completeJSON(c, st, cm, hdr, body)
		if err != nil {
			return err
		}
		anthropic.CopyResponseHeaders(c.Writer.Header(), resp.Header)
		c.Data(resp.StatusCode, "application/json", h.Client.Redactor().Bytes(out))
		return nil
	})
}

func (h *Handlers) streamPassthrough(c *gin.Context, st *reqctx.State, cm *callMoney, hdr http.Header, body []byte) error {
	ctx, cancel := context.WithCancel(c.Request.Context())
	defer cancel()
	meter := anthropic.NewStreamMeter()
	cm.live(meter)
	resp, err := h.callUpstream(ctx, st, cm.model, "/v1/messages", hdr, body)
	if err != nil {
		cm.settleFailed(err, true)
		return err
	}
	defer resp.Body.Close()
	h.Metrics.StreamsActive.Inc()
	defer h.Metrics.StreamsActive.Dec()
	defer h.boundStreamWrites(c)()
	setStreamHeaders(c, st.UpstreamRequestID)
	c.Writer.WriteHeader(http.StatusOK)
	flush := flusherOf(c.Writer)
	flush()
	end := pump(ctx, h.StreamCtx, h.Cfg.MaxStreamDuration, resp.Body, h.sseOut(c.Writer), flush, meter)
	cancel() // stop the upstream at once, whatever ended the stream
	switch end {
	case endComplete:
	case endClientGone:
		st.Outcome = "client_gone"
	default:
		t, msg := endMessage(end)
		st.Outcome = "stream_" + t
		_, _ = c.Writer.Write(errorEvent(t, msg))
		flush()
	}
	// Aborted streams are charged what was seen, or a conservative bound.
	cm.settleStream(meter)
	return nil
}

// CountTokens is POST /v1/messages/count_tokens. It costs a request from the
// caller's window but reserves no tokens (counting is free upstream).
func (h *Handlers) CountTokens() gin.HandlerFunc {
	return h.handle(func(c *gin.Context) error {
		st := reqctx.Get(c)
		st.UpstreamRetry = anthropic.RetryUnsent
		req, err := anthropic.ParseMessageRequest(st.Body)
		if err != nil {
			return httperr.Invalid(err.Error())
		}
		body, err := h.routeModel(st, &req)
		if err != nil {
			return err
		}
		if _, err := h.admit(c, st, 0, 0, ""); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(c.Request.Context(), h.Cfg.RequestTimeout)
		defer cancel()
		resp, err := h.callUpstream(ctx, st, req.Model, "/v1/messages/count_tokens", anthropic.OutboundHeaders(c.Request.Header), body)
		if err != nil {
			return err
		}
		out, err := readJSON(resp)
		if err != nil {
			return fmt.Errorf("reading upstream answer: %w", err)
		}
		anthropic.CopyResponseHeaders(c.Writer.Header(), resp.Header)
		c.Data(resp.StatusCode, "application/json", h.Client.Redactor().Bytes(out))
		return nil
	})
}

// routeModel resolves the model the caller sent (an alias becomes its
// upstream model, before the allowlist, limits and pricing see it), checks
// it against the allowlist, and returns the body to send: the caller's bytes
// unchanged, or with "model" rewritten when an alias was used.
func (h *Handlers) routeModel(st *reqctx.State, req *anthropic.MessageRequest) ([]byte, error) {
	if req.Model == "" {
		return nil, httperr.Invalid("model: field required", "model")
	}
	requested := req.Model
	upstream := h.Cfg.ResolveModel(requested)
	if !h.Cfg.ModelAllowed(upstream) {
		return nil, httperr.Invalid("model: "+strconv.Quote(truncate(requested, 64))+" is not allowed by this gateway; see GET /v1/models", "model")
	}
	st.Model, req.Model = upstream, upstream
	if upstream == requested {
		return st.Body, nil
	}
	st.RequestedModel = requested
	body, err := withModel(st.Body, upstream)
	if err != nil {
		return nil, httperr.Invalid("could not route the model: " + err.Error())
	}
	return body, nil
}

// modelLabel is the requested_model label: the alias when one was used.
func modelLabel(st *reqctx.State) string {
	if st.RequestedModel != "" {
		return st.RequestedModel
	}
	return st.Model
}

// withModel sets the top-level "model", keeping every other field as sent.
func withModel(body []byte, model string) ([]byte, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return nil, err
	}
	top["model"], _ = json.Marshal(model)
	return json.Marshal(top)
}

// withUserID sets metadata.user_id, keeping every other field as sent.
func withUserID(body []byte, uid string) ([]byte, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return nil, err
	}
	meta := map[string]json.RawMessage{}
	if raw, ok := top["metadata"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &meta); err != nil {
			return nil, fmt.Errorf("metadata must be an object")
		}
	}
	meta["user_id"], _ = json.Marshal(uid)
	top["metadata"], _ = json.Marshal(meta)
	return json.Marshal(top)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
