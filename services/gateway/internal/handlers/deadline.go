package handlers

import (
	"context"
	"time"

	"github.com/gin-gonic/gin"
)

// streamGrace is how long a stream's writes may still take after its
// lifetime cap or the drain deadline: enough for the closing error event,
// and the bound on how long a caller that stopped reading keeps its slots
// after the stream should have ended.
var streamGrace = 2 * time.Second

// writeLimiter is the writer the server's WriteDeadline middleware
// installs: each write is bounded on its own, and LimitWrites adds an
// absolute bound.
type writeLimiter interface{ LimitWrites(time.Time) }

// boundStreamWrites caps every write of a stream at its lifetime plus
// streamGrace, and, once the drain starts, at streamGrace from then. Without
// it the lifetime cap and the drain deadline only close the upstream: a
// handler blocked writing to a caller that does not read would outlive both.
// The returned func stops watching the drain.
func (h *Handlers) boundStreamWrites(c *gin.Context) (stop func()) {
	wl, ok := c.Writer.(writeLimiter)
	if !ok {
		return func() {}
	}
	wl.LimitWrites(time.Now().Add(h.Cfg.MaxStreamDuration + streamGrace))
	unwatch := context.AfterFunc(h.StreamCtx, func() { wl.LimitWrites(time.Now().Add(streamGrace)) })
	return func() { unwatch() }
}
