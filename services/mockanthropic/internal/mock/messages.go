package mock

import (
	"net/http"
	"strconv"
	"strings"
)

// messages serves POST /v1/messages.
func (s *Server) messages(w http.ResponseWriter, r *http.Request, c *call, body []byte) {
	key, version, ok := s.gate(w, r, c)
	if !ok {
		return
	}
	req, e := parseRequest(body, version, true)
	if e != nil {
		s.fail(w, c, e)
		return
	}
	m := lookupModel(*req.Model)
	if m == nil {
		s.fail(w, c, newAPIError(http.StatusNotFound, errNotFound, "model: "+*req.Model))
		return
	}
	if *req.MaxTokens > m.MaxTokens {
		s.fail(w, c, invalidRequest("max_tokens: "+strconv.FormatInt(*req.MaxTokens, 10)+" > "+
			strconv.FormatInt(m.MaxTokens, 10)+", which is the maximum allowed number of output tokens for "+m.ID))
		return
	}
	c.model, c.stream = *req.Model, req.Stream

	var prompt Directives
	if text := req.lastUserText(); strings.Contains(text, directiveMarker) {
		var err error
		if prompt, err = parseDirectives(text); err != nil {
			s.fail(w, c, invalidRequest("mock directive: "+err.Error()))
			return
		}
	}
	// Only calls that reach "the model" consume a queued fault, as only those could have
	// been overloaded upstream.
	d := s.faults.plan(&prompt)
	if !s.delay(r, c, &d) {
		return
	}
	if d.EchoKey {
		c.fault = true
		s.fail(w, c, newAPIError(http.StatusUnauthorized, errAuthentication, "invalid x-api-key: "+key))
		return
	}
	if f := d.fault(); f != nil {
		c.fault = true
		s.fail(w, c, f)
		return
	}

	var bpBuf [maxCacheBreakpoints + 1]breakpoint
	size, bps := req.promptShape(s.seed, bpBuf[:0])
	c.usage = s.cache.bill(size, bps, s.now())
	a := buildAnswer(req, &d)
	c.usage.output = a.outputTokens
	msgID := newID("msg_")
	if req.Stream {
		s.stream(w, r, c, &d, msgID, &a)
		return
	}
	buf := getBuf()
	*buf = appendMessage(*buf, msgID, c.model, &a, &c.usage)
	c.status = http.StatusOK
	h := w.Header()
	h["Content-Length"] = []string{strconv.Itoa(len(*buf))}
	writeJSON(w, http.StatusOK, *buf)
	putBuf(buf)
}

// delay applies first_byte_ms and hang. It reports false, with the call marked cancelled,
// when the client went away while waiting.
func (s *Server) delay(r *http.Request, c *call, d *Directives) bool {
	ctx := r.Context()
	if d.Hang {
		c.fault = true
		<-ctx.Done()
		c.outcome = outcomeCancelled
		return false
	}
	if !wait(ctx, d.FirstByteMs) {
		c.outcome = outcomeCancelled
		return false
	}
	return true
}

// countTokens serves POST /v1/messages/count_tokens. It honours the directives that make
// sense without a reply (status, error_type, retry_after…, first_byte_ms, hang, echo_key)
// but not the fault queue, which belongs to /v1/messages.
func (s *Server) countTokens(w http.ResponseWriter, r *http.Request, c *call, body []byte) {
	key, version, ok := s.gate(w, r, c)
	if !ok {
		return
	}
	req, e := parseRequest(body, version, false)
	if e != nil {
		s.fail(w, c, e)
		return
	}
	if lookupModel(*req.Model) == nil {
		s.fail(w, c, newAPIError(http.StatusNotFound, errNotFound, "model: "+*req.Model))
		return
	}
	c.model = *req.Model
	if text := req.lastUserText(); strings.Contains(text, directiveMarker) {
		d, err := parseDirectives(text)
		if err != nil {
			s.fail(w, c, invalidRequest("mock directive: "+err.Error()))
			return
		}
		if !s.delay(r, c, &d) {
			return
		}
		if d.EchoKey {
			c.fault = true
			s.fail(w, c, newAPIError(http.StatusUnauthorized, errAuthentication, "invalid x-api-key: "+key))
			return
		}
		if f := d.fault(); f != nil {
			c.fault = true
			s.fail(w, c, f)
			return
		}
	}
	size, _ := req.promptShape(s.seed, nil)
	n := inputTokens(size)
	c.usage.input = n
	var b [48]byte
	out := append(b[:0], `{"input_tokens":`...)
	out = strconv.AppendInt(out, n, 10)
	out = append(out, '}')
	c.status = http.StatusOK
	writeJSON(w, http.StatusOK, out)
}

// appendUsage appends the usage object as message_start and non-streamed replies carry it.
func appendUsage(dst []byte, u *usage, outputTokens int64) []byte {
	dst = appendIntField(append(dst, '{'), false, "input_tokens", u.input)
	dst = appendIntField(dst, true, "cache_creation_input_tokens", u.cacheCreation())
	dst = appendIntField(dst, true, "cache_read_input_tokens", u.cacheRead)
	dst = append(dst, `,"cache_creation":`...)
	dst = appendIntField(append(dst, '{'), false, "ephemeral_5m_input_tokens", u.cacheCreate5m)
	dst = appendIntField(dst, true, "ephemeral_1h_input_tokens", u.cacheCreate1h)
	dst = append(dst, '}')
	dst = appendIntField(dst, true, "output_tokens", outputTokens)
	return append(dst, `,"service_tier":"standard"}`...)
}

// appendMessageHead appends a Message object up to and including `"content":[`.
func appendMessageHead(dst []byte, id, model string) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendJSONString(dst, id)
	dst = append(dst, `,"type":"message","role":"assistant","model":`...)
	dst = appendJSONString(dst, model)
	return append(dst, `,"content":[`...)
}

func appendStop(dst []byte, a *answer) []byte {
	dst = append(dst, `"stop_reason":`...)
	dst = appendJSONString(dst, a.stopReason)
	dst = append(dst, `,"stop_sequence":`...)
	if a.stopReason == stopSequence {
		return appendJSONString(dst, a.stopSequence)
	}
	return append(dst, "null"...)
}

// appendMessage appends the complete non-streamed reply.
func appendMessage(dst []byte, id, model string, a *answer, u *usage) []byte {
	dst = appendMessageHead(dst, id, model)
	dst = append(dst, `{"type":"text","text":`...)
	dst = appendJSONString(dst, a.text)
	dst = append(dst, `}],`...)
	dst = appendStop(dst, a)
	dst = append(dst, `,"usage":`...)
	dst = appendUsage(dst, u, u.output)
	return append(dst, '}')
}
