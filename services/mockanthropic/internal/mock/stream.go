package mock

import (
	"bytes"
	"context"
	"net/http"
	"time"
)

// Events that never change, encoded once.
var (
	evPing = []byte("event: ping\ndata: {\"type\":\"ping\"}\n\n")
	evStop = []byte("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
)

// deltaBytes is the most text one content_block_delta carries: a few tokens, like the
// real API, so that even short answers arrive as several deltas. Thinking summaries and
// tool input come in pieces of their own sizes.
const (
	deltaBytes         = 24
	thinkingDeltaBytes = 48
	inputDeltaBytes    = 16
)

// padChunk is what long_line sends its line in, so the mock's memory stays constant.
var padChunk = bytes.Repeat([]byte("p"), 64<<10)

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
	midError   *apiError // replaces the overloaded error of error_after (echo_key_fields)
	j          *jsonBuf
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
		e := s.midError
		if e == nil {
			e = newAPIError(StatusOverloaded, s.errorType, defaultErrorMessage(StatusOverloaded, s.errorType))
		}
		s.write(s.j.event("error", newErrorJSON(e, s.c.id)))
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

// longLine sends one SSE data line of n bytes (a ping event padded to that length) in
// chunks, for the long_line directive. It counts as one event.
func (s *sse) longLine(n int) bool {
	if s.sent == s.dropAfter || s.sent == s.errorAfter {
		return s.emit(nil)
	}
	const head, tail = `data: {"type":"ping","padding":"`, `"}`
	if s.ctx.Err() != nil || !s.write([]byte("event: ping\n"+head)) {
		s.c.outcome = outcomeCancelled
		return false
	}
	for pad := n - len(head) - len(tail); pad > 0; {
		chunk := padChunk[:min(pad, len(padChunk))]
		if s.ctx.Err() != nil || !s.write(chunk) {
			s.c.outcome = outcomeCancelled
			return false
		}
		pad -= len(chunk)
	}
	if !s.write([]byte(tail + "\n\n")) {
		s.c.outcome = outcomeCancelled
		return false
	}
	s.sent++
	return true
}

// blockUsage is what a block bills.
func blockUsage(b *replyBlock) usage {
	return usage{output: b.out, input: b.in, thinking: b.thinking, webSearch: b.searches, webFetch: b.fetches}
}

// stream sends the reply as the real API's event sequence: message_start, each content
// block (content_block_start, deltas, content_block_stop; a ping after the first start),
// one or more message_delta with cumulative usage, message_stop. It bills the call as it
// goes (see billing.go), so an abandoned stream is billed what was generated.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, c *call, d *Directives, msgID string, rp *reply, base, total *usage) {
	s.stats.openStreams.Add(1)
	defer s.stats.openStreams.Add(-1)

	h := w.Header()
	h["Content-Type"] = sseContentType
	h["Cache-Control"] = noCache
	w.WriteHeader(http.StatusOK)
	c.status = http.StatusOK

	j := getJSONBuf()
	defer putJSONBuf(j)
	ev := &sse{
		w: w, ctx: r.Context(), c: c,
		delay:      time.Duration(d.EventDelayMs) * time.Millisecond,
		errorAfter: -1, dropAfter: -1,
		errorType: errOverloaded,
		midError:  c.midError,
		j:         j,
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
	}()

	// In message_start the reply is not yet written: stop_reason is null and output_tokens a
	// provisional count, as in the real stream; the final count comes in message_delta.
	start := &messageJSON{ID: msgID, Type: "message", Role: "assistant", Model: c.model,
		Content: []any{}, Usage: c.usageJSON(base, usageStart)}
	if !ev.emit(j.event("message_start", &messageStartEvent{Type: "message_start", Message: start})) {
		return
	}
	if d.LongLine > 0 && !ev.longLine(d.LongLine) {
		return
	}
	for i := range rp.blocks {
		if !s.streamBlock(ev, c, i, &rp.blocks[i]) {
			return
		}
	}
	// usage_deltas splits the output count over several message_delta events. The counts are
	// cumulative, so a consumer that adds them up instead of keeping the last over-bills.
	n := max(1, d.UsageDeltas)
	for i := 1; i <= n; i++ {
		md := &messageDeltaEvent{Type: "message_delta"}
		if i == n {
			md.Delta.StopReason, md.Delta.StopSequence = stopFields(rp)
			md.Usage = c.usageJSON(total, usageFinal)
			s.book(c) // everything is generated and billed by now
		} else {
			part := *total
			part.output = max(1, total.output*int64(i)/int64(n))
			md.Usage = c.usageJSON(&part, usageDelta)
		}
		if !ev.emit(j.event("message_delta", md)) {
			return
		}
	}
	ev.emit(evStop)
}

// streamBlock sends one content block and bills it: a fixed-size block whole at its start,
// text and tool input in proportion to the bytes sent.
func (s *Server) streamBlock(ev *sse, c *call, i int, b *replyBlock) bool {
	j := ev.j
	bs := blockStream{ev: ev, c: c, b: b, progressive: b.kind == kindText || b.kind == kindToolUse}
	bs.delta.Type, bs.delta.Index = "content_block_delta", i
	if !bs.progressive {
		bu := blockUsage(b)
		c.billed.add(&bu)
	}
	start := blockStartEvent{Type: "content_block_start", Index: i, ContentBlock: blockJSON(b, true)}
	if !ev.emit(j.event("content_block_start", &start)) {
		return false
	}
	if i == 0 && !ev.emit(evPing) {
		return false
	}
	ok := true
	switch b.kind {
	case kindThinking:
		ok = bs.pieces(b.text, thinkingDeltaBytes) &&
			bs.send(&signatureDelta{Type: "signature_delta", Signature: b.signature})
	case kindText:
		for k := range b.citations {
			if ok = bs.send(&citationsDelta{Type: "citations_delta", Citation: &b.citations[k]}); !ok {
				break
			}
		}
		ok = ok && bs.pieces(b.text, deltaBytes)
	case kindToolUse, kindServerToolUse:
		// The first input_json_delta is empty, as from the real API.
		bs.jsonD.Type = "input_json_delta"
		ok = bs.send(&bs.jsonD) && bs.pieces(b.input, inputDeltaBytes)
	}
	if !ok {
		return false
	}
	bs.progress(1, 1)
	stop := blockStopEvent{Type: "content_block_stop", Index: i}
	return ev.emit(j.event("content_block_stop", &stop))
}

// blockStream is the state of one block while it streams; its delta structs are reused for
// every piece.
type blockStream struct {
	ev          *sse
	c           *call
	b           *replyBlock
	progressive bool
	billedOut   int64
	delta       blockDeltaEvent
	textD       textDelta
	thinkD      thinkingDelta
	jsonD       inputJSONDelta
}

// progress bills a progressive block up to sent of its size bytes, rounded up.
func (bs *blockStream) progress(sent, size int) {
	if !bs.progressive {
		return
	}
	target := bs.b.out
	if sent < size {
		target = (bs.b.out*int64(sent) + int64(size) - 1) / int64(size)
	}
	bs.c.billed.output += target - bs.billedOut
	bs.billedOut = target
}

func (bs *blockStream) send(delta any) bool {
	bs.delta.Delta = delta
	return bs.ev.emit(bs.ev.j.event("content_block_delta", &bs.delta))
}

// pieces sends text in deltas of at most n bytes, cut on rune boundaries, each of the kind
// the block streams (text_delta, thinking_delta or input_json_delta).
func (bs *blockStream) pieces(text string, n int) bool {
	sent := 0
	for rest := text; rest != ""; {
		chunk := cutRunes(rest, n)
		if chunk == "" { // a rune wider than n cannot occur in UTF-8, but never spin
			chunk = rest
		}
		rest = rest[len(chunk):]
		sent += len(chunk)
		bs.progress(sent, len(text))
		var d any
		switch bs.b.kind {
		case kindThinking:
			bs.thinkD = thinkingDelta{Type: "thinking_delta", Thinking: chunk}
			d = &bs.thinkD
		case kindText:
			bs.textD = textDelta{Type: "text_delta", Text: chunk}
			d = &bs.textD
		default:
			bs.jsonD = inputJSONDelta{Type: "input_json_delta", PartialJSON: chunk}
			d = &bs.jsonD
		}
		if !bs.send(d) {
			return false
		}
	}
	return true
}
