package middleware

import (
	"time"

	"github.com/gin-contrib/cors"
	"github.com/gin-gonic/gin"
)

// CORS allows exactly the configured origins (no wildcards, no regex, no
// credentials: bearer tokens don't need cookies). Foreign origins get no
// Access-Control-Allow-Origin, so browsers refuse to hand them the answer.
func CORS(origins []string) gin.HandlerFunc {
	return cors.New(cors.Config{
		AllowOrigins: origins,
		AllowMethods: []string{"GET", "POST", "OPTIONS"},
		AllowHeaders: []string{"Content-Type", "Authorization", "X-Request-ID",
			"X-Keyward-Key-Id", "X-Keyward-Timestamp", "X-Keyward-Nonce", "X-Keyward-Signature"},
		ExposeHeaders: []string{"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "RateLimit-Policy",
			"Retry-After", "X-Request-ID", "request-id"},
		AllowCredentials: false,
		MaxAge:           10 * time.Minute,
	})
}
