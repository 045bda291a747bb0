package middleware

import (
	"time"

	"github.com/gin-gonic/gin"

	"github.com/keyward/keyward/services/gateway/internal/metrics"
	"github.com/keyward/keyward/services/gateway/internal/reqctx"
)

// Metrics counts requests by route template (never the raw path), method and
// status, and tracks in-flight work.
func Metrics(m *metrics.Metrics) gin.HandlerFunc {
	return func(c *gin.Context) {
		route := c.FullPath()
		if route == "" {
			route = "other"
		}
		probe := route == "/health" || route == "/ready"
		if !probe {
			m.Inflight.Inc()
		}
		c.Next()
		if !probe {
			m.Inflight.Dec()
		}
		st := reqctx.Get(c)
		m.HTTPRequests.WithLabelValues(route, methodLabel(c.Request.Method), metrics.StatusCode(c.Writer.Status())).Inc()
		m.HTTPDuration.WithLabelValues(route).Observe(time.Since(st.Start).Seconds())
	}
}

// methodLabel bounds the method label: arbitrary methods are client input.
func methodLabel(m string) string {
	switch m {
	case "GET", "POST", "OPTIONS", "HEAD", "PUT", "DELETE", "PATCH":
		return m
	}
	return "other"
}
