package middleware

import (
	"context"
	"log/slog"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/keyward/keyward/services/gateway/internal/reqctx"
)

// AccessLog writes one structured line per request after it completes. Only
// allowlisted fields are logged: never a key, token, Authorization header,
// query string or prompt text.
func AccessLog(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Next()
		st := reqctx.Get(c)
		route := c.FullPath()
		if route == "" {
			route = "other"
		}
		status := c.Writer.Status()
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelWarn
		}
		attrs := make([]slog.Attr, 0, 16)
		attrs = append(attrs,
			slog.String("request_id", st.RequestID),
			slog.String("method", c.Request.Method),
			slog.String("route", route),
			slog.Int("status", status),
			slog.Float64("latency_ms", float64(time.Since(st.Start).Microseconds())/1000),
			slog.String("client_ip", clientIPString(st)),
		)
		if st.Caller.Key != "" {
			attrs = append(attrs, slog.String("identity", st.Caller.Key))
		}
		if st.Model != "" {
			attrs = append(attrs, slog.String("model", st.Model))
		}
		if st.RequestedModel != "" {
			attrs = append(attrs, slog.String("requested_model", st.RequestedModel))
		}
		if sid := SessionID(c.Request.Header.Get(SessionHeader)); sid != "" {
			attrs = append(attrs, slog.String("session_id", sid))
		}
		if st.UpstreamRequestID != "" {
			attrs = append(attrs, slog.String("upstream_request_id", st.UpstreamRequestID))
		}
		if st.Usage.InputTokens+st.Usage.OutputTokens > 0 {
			attrs = append(attrs,
				slog.Int64("input_tokens", st.Usage.InputTokens),
				slog.Int64("output_tokens", st.Usage.OutputTokens),
				slog.Int64("cache_read_tokens", st.Usage.CacheReadInputTokens),
				slog.Int64("cache_write_tokens", st.Usage.CacheCreationInputTokens),
				slog.Float64("cost_usd", st.CostUSD))
		}
		if st.Stream {
			attrs = append(attrs, slog.Bool("stream", true))
		}
		if st.Outcome != "" {
			attrs = append(attrs, slog.String("outcome", st.Outcome))
		}
		if st.Settlement != "" {
			attrs = append(attrs, slog.String("settlement", st.Settlement))
		}
		log.LogAttrs(context.Background(), level, "request", attrs...)
	}
}

// SessionHeader is the header Claude Code sends on every request, so a
// session's requests and cost can be aggregated without parsing bodies.
const SessionHeader = "X-Claude-Code-Session-Id"

// maxSessionID bounds a logged session id (Claude Code sends a UUID, 36).
const maxSessionID = 64

// SessionID returns the header value fit for a log line: at most 64
// characters of [A-Za-z0-9._:-]; anything else (a forged value with
// newlines, quotes or a megabyte of text) is dropped entirely rather than
// half-kept.
func SessionID(v string) string {
	if len(v) == 0 || len(v) > maxSessionID {
		return ""
	}
	for i := 0; i < len(v); i++ {
		b := v[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '_' || b == '.' || b == ':') {
			return ""
		}
	}
	return v
}

func clientIPString(st *reqctx.State) string {
	if st.ClientIP.IsValid() {
		return st.ClientIP.String()
	}
	return ""
}
