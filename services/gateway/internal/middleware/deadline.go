package middleware

import (
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
)

// WriteDeadline bounds every write and flush to the caller: each one must
// finish within per, or the connection fails, net/http cancels the
// request's context, and everything the request holds (its in-flight and
// stream slots, its upstream call) is released. The public server has no
// WriteTimeout (streams are long-lived), so without this a caller that
// stops reading — a full TCP receive window — would hold a handler blocked
// in Write for as long as it keeps the connection open.
//
// Streams additionally cap their writes at an absolute time (LimitWrites):
// the stream lifetime, or the drain deadline once shutdown starts.
func WriteDeadline(per time.Duration) gin.HandlerFunc {
	return func(c *gin.Context) {
		w := &deadlineWriter{ResponseWriter: c.Writer, per: per}
		// A copy, not the pointer: one allocation less per request.
		w.rc = *http.NewResponseController(w.ResponseWriter)
		c.Writer = w
		// Armed up front for responses that are only a header (written
		// when the handler returns), and again at the end for the final
		// flush: a deadline left from the connection's previous request
		// may have passed.
		w.arm()
		c.Next()
		w.arm()
	}
}

// WriteLimiter is implemented by the writer WriteDeadline installs.
type WriteLimiter interface {
	// LimitWrites makes t the latest time any write may block until,
	// including one in progress.
	LimitWrites(t time.Time)
}

type deadlineWriter struct {
	gin.ResponseWriter
	rc  http.ResponseController
	per time.Duration

	mu      sync.Mutex
	limit   time.Time // zero: none
	noCtrl  bool      // the connection cannot take deadlines (in-process tests)
	limited bool
}

var _ WriteLimiter = (*deadlineWriter)(nil)

func (w *deadlineWriter) arm() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.noCtrl {
		return
	}
	d := time.Now().Add(w.per)
	if w.limited && d.After(w.limit) {
		d = w.limit
	}
	if err := w.rc.SetWriteDeadline(d); err != nil {
		w.noCtrl = true
	}
}

func (w *deadlineWriter) LimitWrites(t time.Time) {
	w.mu.Lock()
	if !w.limited || t.Before(w.limit) {
		w.limit, w.limited = t, true
	}
	w.mu.Unlock()
	w.arm()
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	w.arm()
	return w.ResponseWriter.Write(p)
}

func (w *deadlineWriter) WriteString(s string) (int, error) {
	w.arm()
	return w.ResponseWriter.WriteString(s)
}

func (w *deadlineWriter) Flush() {
	w.arm()
	w.ResponseWriter.Flush()
}

// Unwrap lets http.ResponseController reach the connection.
func (w *deadlineWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
