package middleware

import (
	"log/slog"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/keyward/keyward/services/gateway/internal/httperr"
	"github.com/keyward/keyward/services/gateway/internal/metrics"
)

// Shed refuses work beyond max in-flight requests at once with an immediate
// 503 and Retry-After, instead of queueing until everything is slow.
func Shed(max int, m *metrics.Metrics, log *slog.Logger) gin.HandlerFunc {
	sem := make(chan struct{}, max)
	return func(c *gin.Context) {
		select {
		case sem <- struct{}{}:
		default:
			m.RateLimitRejects.WithLabelValues("inflight").Inc()
			httperr.Write(c, log, httperr.Overloaded("the gateway is at capacity; retry shortly", "shed", time.Second))
			return
		}
		defer func() { <-sem }()
		c.Next()
	}
}
