// Package middleware holds the gateway's middleware chain, one concern per
// file. internal/server assembles the chain and explains its order.
package middleware

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"

	"github.com/gin-gonic/gin"

	"github.com/keyward/keyward/services/gateway/internal/httperr"
)

// Recover turns a panic into a logged 500 instead of a dropped connection.
// http.ErrAbortHandler is re-raised: it is how a handler aborts a response
// that has already started (e.g. a stream).
func Recover(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				log.Error("panic while handling request", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				httperr.Write(c, log, fmt.Errorf("panic: %v", r))
			}
		}()
		c.Next()
	}
}
