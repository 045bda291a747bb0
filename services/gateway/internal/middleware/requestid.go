package middleware

import (
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/keyward/keyward/services/gateway/internal/reqctx"
)

// RequestIDHeader carries the request id both ways.
const RequestIDHeader = "X-Request-ID"

// RequestID accepts a sane inbound X-Request-ID (1–64 chars of
// [A-Za-z0-9._-]) or generates one, and starts the request state.
func RequestID() gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.GetHeader(RequestIDHeader)
		if !saneID(id) {
			id = newID()
		}
		st := &reqctx.State{RequestID: id, Start: time.Now()}
		reqctx.Set(c, st)
		c.Writer.Header().Set(RequestIDHeader, id)
		// Anthropic's name for it, which the SDKs read (err.requestID);
		// a response passed through from the upstream replaces it with the
		// upstream's id.
		c.Writer.Header()["Request-Id"] = []string{id}
		c.Next()
	}
}

func saneID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '_' || b == '.') {
			return false
		}
	}
	return true
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "kw_" + hex.EncodeToString(b[:])
}
