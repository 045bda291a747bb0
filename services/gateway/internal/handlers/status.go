package handlers

import (
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/keyward/keyward/pkg/ratelimit"
	"github.com/keyward/keyward/services/gateway/internal/httperr"
	"github.com/keyward/keyward/services/gateway/internal/reqctx"
)

// RateLimitStatus is GET /api/rate-limit-status: the caller's own quota. It
// consumes nothing and only ever shows the caller's own bucket (query
// parameters are ignored).
func (h *Handlers) RateLimitStatus() gin.HandlerFunc {
	return h.handle(func(c *gin.Context) error {
		st := reqctx.Get(c)
		pol := h.Cfg.PolicyFor(st.Caller.Tier)
		s, err := h.Limiter.Status(c.Request.Context(), st.Caller.Key, pol)
		if err != nil {
			return err
		}
		now := h.now()
		httperr.SetRateLimitHeaders(c.Writer.Header(), ratelimit.Decision{Limit: s.Limit, Remaining: s.Remaining, ResetAfter: s.ResetAfter})
		resetAfter := int64(math.Ceil(s.ResetAfter.Seconds()))
		body := gin.H{
			"limit":               s.Limit.Rate,
			"remaining":           s.Remaining,
			"reset":               now.Add(time.Duration(resetAfter) * time.Second).Unix(),
			"reset_after_seconds": resetAfter,
			"window":              windowString(s.Limit.Period),
			"policy":              httperr.Policy(s.Limit),
			"identity":            identityKind(st.Caller.Method),
			"backend":             s.Backend,
		}
		if pol.Name != "" {
			body["tier"] = pol.Name
		}
		if s.TokensPerMinute > 0 {
			body["tokens"] = gin.H{"limit_per_minute": s.TokensPerMinute, "remaining": s.TokensRemaining}
		}
		if s.DailyBudgetUSD > 0 {
			body["budget"] = gin.H{
				"daily_usd":     s.DailyBudgetUSD,
				"spent_usd":     round6(s.BudgetSpentUSD),
				"remaining_usd": round6(math.Max(0, s.DailyBudgetUSD-s.BudgetSpentUSD)),
				"resets_at":     s.BudgetResetAt.UTC().Format(time.RFC3339),
			}
		}
		c.JSON(http.StatusOK, body)
		return nil
	})
}

func (h *Handlers) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func windowString(d time.Duration) string {
	return strconv.FormatInt(int64(math.Round(d.Seconds())), 10) + "s"
}

func identityKind(method string) string {
	switch method {
	case "jwt", "hmac":
		return method
	}
	return "ip"
}

func round6(f float64) float64 { return math.Round(f*1e6) / 1e6 }

// Health is GET /health: liveness only; it never depends on Redis or the upstream.
func (h *Handlers) Health() gin.HandlerFunc {
	return func(c *gin.Context) {
		c.JSON(http.StatusOK, gin.H{"status": "healthy", "timestamp": h.now().UTC().Format(time.RFC3339), "version": h.Version})
	}
}

// Ready is GET /ready: 200 once config and key are loaded, 503 while draining.
// A degraded limiter backend is reported but does not fail readiness: pods
// must not flap on a Redis blip.
func (h *Handlers) Ready() gin.HandlerFunc {
	return func(c *gin.Context) {
		ok, body := h.ReadyCheck()
		if ok {
			c.JSON(http.StatusOK, body)
			return
		}
		c.JSON(http.StatusServiceUnavailable, body)
	}
}
