package handlers

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyward/keyward/pkg/anthropic"
)

// heartbeatEvery is how long the upstream may be silent before the gateway
// sends an SSE comment so proxies and browsers keep the connection open.
var heartbeatEvery = 15 * time.Second

// readBufPool holds the per-stream read buffers. 4 KiB is the transport's
// own read buffer size, so a larger buffer would rarely fill, and each open
// stream holds one for its whole life.
var readBufPool = sync.Pool{New: func() any { b := make([]byte, 4<<10); return &b }}

// streamEnd says why a pumped stream ended.
type streamEnd int

const (
	endComplete   streamEnd = iota // upstream finished (EOF)
	endUpstream                    // upstream failed after the first byte
	endClientGone                  // the caller disconnected
	endLifetime                    // the stream hit the maximum duration
	endShutdown                    // the drain deadline passed
	endBudget                      // the meter's watcher stopped it (the budget cannot cover more)
	endLongLine                    // the upstream sent an SSE line over maxSSELine
)

// pump copies upstream SSE bytes to the client as they arrive, flushing each
// read, feeding the usage meter on the way (nothing is buffered beyond one
// read). While the upstream is silent it sends heartbeat comments — only at
// an event boundary, so they never split an event. It returns why it ended;
// the caller closes the upstream body.
//
// The copy runs in the handler's own goroutine, not in a reader goroutine
// feeding a channel: that saves a goroutine hand-off per event, and a
// goroutine with its buffer per open stream. The stream's lifetime, the
// drain deadline (shutdown) and a heartbeat the client cannot take end the
// stream from timer callbacks, which close the upstream body (when it is an
// io.Closer, as an HTTP response body is) to interrupt a blocked read.
func pump(ctx, shutdown context.Context, lifetime time.Duration, body io.Reader, w io.Writer, flush func(), meter *anthropic.StreamMeter) streamEnd {
	w = asLineCap(w)
	var ended atomic.Int32 // 0, or the streamEnd a callback decided, plus one
	interrupt := func(e streamEnd) {
		if ended.CompareAndSwap(0, int32(e)+1) {
			if c, ok := body.(io.Closer); ok {
				_ = c.Close()
			}
		}
	}
	life := time.AfterFunc(lifetime, func() { interrupt(endLifetime) })
	defer life.Stop()
	unwatch := context.AfterFunc(shutdown, func() { interrupt(endShutdown) })
	defer unwatch()

	// mu orders the heartbeat's writes with the copy loop's: both write to
	// w, and the heartbeat needs to know where the last chunk ended.
	var (
		mu         sync.Mutex
		atBoundary = true
		wrote      bool
		done       bool
		last       time.Time
		beat       *time.Timer
	)
	mu.Lock()
	beat = time.AfterFunc(heartbeatEvery, func() {
		mu.Lock()
		if done {
			mu.Unlock()
			return
		}
		// The timer is not reset per chunk (a timer update per event); it
		// fires on schedule and waits out the rest of a quiet period.
		if quiet := time.Since(last); wrote && quiet < heartbeatEvery {
			beat.Reset(heartbeatEvery - quiet)
			mu.Unlock()
			return
		}
		if wrote && atBoundary {
			if _, err := io.WriteString(w, ": keepalive\n\n"); err != nil {
				mu.Unlock()
				interrupt(endClientGone)
				return
			}
			flush()
		}
		beat.Reset(heartbeatEvery)
		mu.Unlock()
	})
	mu.Unlock()
	defer func() {
		mu.Lock()
		done = true
		mu.Unlock()
		beat.Stop()
	}()

	bp := readBufPool.Get().(*[]byte)
	defer readBufPool.Put(bp)
	buf := *bp
	for {
		n, err := body.Read(buf)
		if n > 0 {
			// Bytes that arrived are metered and passed on even when the
			// stream is ending: what was seen is what gets billed.
			p := buf[:n]
			mu.Lock()
			// A halted meter (the budget cannot cover more) has taken the
			// bytes up to the end of the event that halted it: only those
			// go on, so the stream ends at an event boundary.
			mn, merr := meter.Write(p)
			halted := merr != nil
			p = p[:mn]
			_, werr := w.Write(p)
			if werr == nil {
				flush()
			}
			wrote, atBoundary, last = true, endsEvent(p), time.Now()
			mu.Unlock()
			if errors.Is(werr, errLineTooLong) {
				return endLongLine
			}
			if werr != nil {
				return endClientGone
			}
			if halted {
				return endBudget
			}
		}
		if e := ended.Load(); e != 0 {
			return streamEnd(e - 1)
		}
		if err == nil {
			continue
		}
		if errors.Is(err, io.EOF) {
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
	case endBudget:
		return "budget_exceeded", budgetStopMessage
	case endLongLine:
		return "api_error", "the Claude API sent an SSE line longer than 1 MiB; the stream was ended"
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
