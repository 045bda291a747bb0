package handlers

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/keyward/keyward/pkg/anthropic"
)

// heartbeatEvery is how long the upstream may be silent before the gateway
// sends an SSE comment so proxies and browsers keep the connection open.
var heartbeatEvery = 15 * time.Second

var chunkPool = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

type chunk struct {
	buf *[]byte
	n   int
	err error
}

// streamEnd says why a pumped stream ended.
type streamEnd int

const (
	endComplete   streamEnd = iota // upstream finished (EOF)
	endUpstream                    // upstream failed after the first byte
	endClientGone                  // the caller disconnected
	endLifetime                    // the stream hit the maximum duration
	endShutdown                    // the drain deadline passed
)

// pump copies upstream SSE bytes to the client as they arrive, flushing each
// read, feeding the usage meter on the way (nothing is buffered beyond one
// read). While the upstream is silent it sends heartbeat comments — only at
// an event boundary, so they never split an event. It returns why it ended;
// the caller closes the upstream body.
func pump(ctx, shutdown context.Context, lifetime time.Duration, body io.Reader, w io.Writer, flush func(), meter *anthropic.StreamMeter) streamEnd {
	chunks := make(chan chunk, 1)
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			bp := chunkPool.Get().(*[]byte)
			n, err := body.Read(*bp)
			select {
			case chunks <- chunk{buf: bp, n: n, err: err}:
			case <-done:
				chunkPool.Put(bp)
				return
			}
			if err != nil {
				return
			}
		}
	}()

	life := time.NewTimer(lifetime)
	defer life.Stop()
	beat := time.NewTicker(heartbeatEvery)
	defer beat.Stop()
	atBoundary := true
	wrote := false
	for {
		select {
		case ch := <-chunks:
			if ch.n > 0 {
				p := (*ch.buf)[:ch.n]
				_, _ = meter.Write(p)
				if _, werr := w.Write(p); werr != nil {
					chunkPool.Put(ch.buf)
					return endClientGone
				}
				flush()
				wrote = true
				atBoundary = endsEvent(p)
				beat.Reset(heartbeatEvery)
			}
			chunkPool.Put(ch.buf)
			if ch.err != nil {
				if errors.Is(ch.err, io.EOF) {
					if meter.Completed() || meter.ErrorType() != "" {
						return endComplete
					}
					return endUpstream // closed before message_stop
				}
				if ctx.Err() != nil {
					return endClientGone
				}
				return endUpstream
			}
		case <-beat.C:
			if wrote && atBoundary {
				if _, err := io.WriteString(w, ": keepalive\n\n"); err != nil {
					return endClientGone
				}
				flush()
			}
		case <-life.C:
			return endLifetime
		case <-ctx.Done():
			return endClientGone
		case <-shutdown.Done():
			return endShutdown
		}
	}
}

func endsEvent(p []byte) bool {
	n := len(p)
	return n >= 2 && p[n-1] == '\n' && (p[n-2] == '\n' || (n >= 4 && p[n-2] == '\r' && p[n-3] == '\n'))
}

// errorEvent is the SSE error event the gateway sends when a stream fails
// after its first byte (never retried: bytes already reached the client).
func errorEvent(errType, message string) []byte {
	b := make([]byte, 0, 128)
	b = append(b, "event: error\ndata: "...)
	b = append(b, anthropic.NewErrorBody(errType, message, "")...)
	b = append(b, "\n\n"...)
	return b
}

func endMessage(e streamEnd) (string, string) {
	switch e {
	case endLifetime:
		return "timeout_error", "the stream exceeded the gateway's maximum duration"
	case endShutdown:
		return "overloaded_error", "the gateway is restarting; retry the request"
	default:
		return "api_error", "the connection to the Claude API was lost mid-stream"
	}
}

// flusherOf returns a flush func for w.
func flusherOf(w http.ResponseWriter) func() {
	if f, ok := w.(http.Flusher); ok {
		return f.Flush
	}
	return func() {}
}
