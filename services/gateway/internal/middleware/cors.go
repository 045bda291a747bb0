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
		AllowHeaders: append([]string{"Content-Type", "Authorization", "X-Request-ID",
			"X-Keyward-Key-Id", "X-Keyward-Timestamp", "X-Keyward-Nonce", "X-Keyward-Signature"}, browserSDKHeaders...),
		ExposeHeaders: []string{"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "RateLimit-Policy",
			"Retry-After", "X-Request-ID", "request-id", "X-Should-Retry", "X-Keyward-Cache"},
		AllowCredentials: false,
		MaxAge:           10 * time.Minute,
	})
}

// browserSDKHeaders are what the official Anthropic SDKs send from a browser
// (with the gateway as base URL and a JWT as "API key"); without them their
// preflight would fail. None is forwarded upstream except anthropic-version
// and anthropic-beta.
var browserSDKHeaders = []string{
	"X-Api-Key", "Anthropic-Version", "Anthropic-Beta", "Anthropic-Dangerous-Direct-Browser-Access",
	"X-Stainless-Arch", "X-Stainless-Lang", "X-Stainless-Os", "X-Stainless-Package-Version",
	"X-Stainless-Retry-Count", "X-Stainless-Runtime", "X-Stainless-Runtime-Version",
	"X-Stainless-Timeout", "X-Stainless-Helper-Method", "X-Stainless-Async",
}
