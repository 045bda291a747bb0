package mock

import (
	"context"
	"net/http"
	"time"
)

// Events that never change, encoded once.
var (
	evBlockStart = []byte("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n")
	evPing       = []byte("event: ping\ndata: {\"type\":\"ping\"}\n\n")
	evBlockStop  = []byte("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n")
	evStop       = []byte("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
)

// deltaBytes is the most text one content_block_delta carries: a few tokens, like the
// real API, so that even short answers arrive as several deltas.
const deltaBytes = 24

// sse writes one response's events, applying event delays and the error_after and
// drop_after faults, and noticing when the client goes away.
type sse struct {
	w          http.ResponseWriter
	flusher    http.Flusher
	ctx        context.Context
	c          *call
	delay      time.Duration
	timer      *time.Timer
	sent       int
	errorAfter int // -1: never
	dropAfter  int // -1: never
	errorType  string
	buf        []byte
}

// emit sends one event. It reports false when the stream must end here: the client is
// gone, or an injected fault took the place of this event.
func (s *sse) emit(ev []byte) bool {
	if s.sent == s.dropAfter {
		s.c.outcome = outcomeDropped
		return false
	}
	if s.sent > 0 && s.delay > 0 {
		if s.timer == nil {
			s.timer = time.NewTimer(s.delay)
		} else {
			s.timer.Reset(s.delay)
		}
		select {
		case <-s.timer.C:
		case <-s.ctx.Done():
			s.c.outcome = outcomeCancelled
			return false
		}
	} else if s.ctx.Err() != nil {
		s.c.outcome = outcomeCancelled
		return false
	}
	if s.sent == s.errorAfter {
		e := newAPIError(StatusOverloaded, s.errorType, defaultErrorMessage(StatusOverloaded, s.errorType))
		b := append(s.buf[:0], "event: error\ndata: "...)
		b = appendErrorBody(b, e, s.c.id)
		b = append(b, '\n', '\n')
		s.buf = b
		s.write(b)
		s.c.outcome = outcomeStreamError
		return false
	}
	if !s.write(ev) {
		s.c.outcome = outcomeCancelled
		return false
	}
	s.sent++
	return true
}

func (s *sse) write(b []byte) bool {
	if _, err := s.w.Write(b); err != nil {
		return false
	}
	if s.flusher != nil {
		s.flusher.Flush()
	}
	return true
}

// stream sends the reply as the real API's event sequence: message_start, one text block
// (content_block_start, ping, content_block_delta…, content_block_stop), one or more
// message_delta with cumulative usage, message_stop.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, c *call, d *Directives, msgID string, a *answer) {
	s.stats.openStreams.Add(1)
	defer s.stats.openStreams.Add(-1)

	h := w.Header()
	h["Content-Type"] = sseContentType
	h["Cache-Control"] = noCache
	w.WriteHeader(http.StatusOK)
	c.status = http.StatusOK

	buf := getBuf()
	defer putBuf(buf)
	ev := &sse{
		w: w, ctx: r.Context(), c: c,
		delay:      time.Duration(d.EventDelayMs) * time.Millisecond,
		errorAfter: -1, dropAfter: -1,
		errorType: errOverloaded,
		buf:       *buf,
	}
	ev.flusher, _ = w.(http.Flusher)
	if d.ErrorAfter != nil {
		ev.errorAfter = *d.ErrorAfter
		if d.ErrorType != "" {
			ev.errorType = d.ErrorType
		}
	}
	if d.DropAfter != nil {
		ev.dropAfter = *d.DropAfter
	}
	if d.ErrorAfter != nil || d.DropAfter != nil {
		c.fault = true
	}
	defer func() {
		if ev.timer != nil {
			ev.timer.Stop()
		}
		*buf = ev.buf
	}()

	u := &c.usage
	b := append(ev.buf[:0], "event: message_start\ndata: {\"type\":\"message_start\",\"message\":"...)
	b = appendMessageHead(b, msgID, c.model)
	// In message_start the reply is not yet written: stop_reason is null and output_tokens a
	// provisional count, as in the real stream; the final count comes in message_delta.
	b = append(b, `],"stop_reason":null,"stop_sequence":null,"usage":`...)
	b = appendUsage(b, u, 1)
	b = append(b, "}}\n\n"...)
	ev.buf = b
	if !ev.emit(b) || !ev.emit(evBlockStart) || !ev.emit(evPing) {
		return
	}
	for text := a.text; text != ""; {
		chunk := cutRunes(text, deltaBytes)
		if chunk == "" { // a rune wider than deltaBytes cannot occur in UTF-8, but never spin
			chunk = text
		}
		text = text[len(chunk):]
		b = append(ev.buf[:0], "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":"...)
		b = appendJSONString(b, chunk)
		b = append(b, "}}\n\n"...)
		ev.buf = b
		if !ev.emit(b) {
			return
		}
	}
	if !ev.emit(evBlockStop) {
		return
	}
	// usage_deltas splits the output count over several message_delta events. The counts are
	// cumulative, so a consumer that adds them up instead of keeping the last over-bills.
	n := max(1, d.UsageDeltas)
	for i := 1; i <= n; i++ {
		out := max(1, u.output*int64(i)/int64(n))
		b = append(ev.buf[:0], "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{"...)
		if i == n {
			b = appendStop(b, a)
		} else {
			b = append(b, `"stop_reason":null,"stop_sequence":null`...)
		}
		b = append(b, `},"usage":`...)
		b = appendIntField(append(b, '{'), false, "input_tokens", u.input)
		b = appendIntField(b, true, "cache_creation_input_tokens", u.cacheCreation())
		b = appendIntField(b, true, "cache_read_input_tokens", u.cacheRead)
		b = appendIntField(b, true, "output_tokens", out)
		b = append(b, "}}\n\n"...)
		ev.buf = b
		if !ev.emit(b) {
			return
		}
	}
	ev.emit(evStop)
}
