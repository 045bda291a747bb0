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
	if e := d.applicable(req); e != nil {
		s.fail(w, c, e)
		return
	}
	if d.EchoKeyHeaders {
		echoKeyHeaders(w.Header(), key)
	}
	fault := d.keyFault(key)
	if fault != nil && d.EchoKeyFields && d.ErrorAfter != nil && req.Stream {
		// With error_after the key goes into the mid-stream error event instead.
		c.midError, fault = fault, nil
	}
	if fault == nil {
		fault = d.fault()
	}

	// The call is accepted, and its input billed, from here on unless a fault answers it.
	var base usage
	if fault == nil {
		base = s.input(req, &d)
		c.accepted, c.billed, c.usage = true, base, base
		if req.Speed != nil {
			c.speed = *req.Speed
		}
		if req.InferenceGeo != nil {
			c.geo = *req.InferenceGeo
		}
		c.serverTools = req.serverTool("web_search_") || req.serverTool("web_fetch_")
		c.iterations = d.Iterations
	}
	if !s.delay(r, c, &d) {
		return
	}
	if fault != nil {
		c.fault = true
		s.fail(w, c, fault)
		return
	}

	toolInput := ""
	if d.ToolUse != "" {
		toolInput = sampleToolInput(body, d.ToolUse)
	}
	rp := buildReply(req, &d, toolInput)
	total := base
	t := rp.totals()
	total.add(&t)
	c.usage = total
	msgID := newID("msg_")
	if req.Stream {
		s.stream(w, r, c, &d, msgID, &rp, &base, &total)
		return
	}
	// A non-streamed reply is generated whole before it is sent, so it is billed whole.
	c.billed = total
	s.book(c)
	j := getJSONBuf()
	j.encode(c.messageBody(msgID, &rp, &total))
	c.status = http.StatusOK
	h := w.Header()
	h["Content-Length"] = []string{strconv.Itoa(j.buf.Len())}
	writeJSON(w, http.StatusOK, j.buf.Bytes())
	putJSONBuf(j)
}

// input bills the prompt: its text and blocks, the documents and images the API would
// fetch, the prompt cache, and server-side context (MCP servers, containers).
func (s *Server) input(req *messagesRequest, d *Directives) usage {
	var bpBuf [maxCacheBreakpoints + 1]breakpoint
	hidden := newHiddenInput(d)
	size, bps := req.promptShape(s.seed, &hidden, bpBuf[:0])
	forced := int64(-1)
	if d.InputTokens != nil {
		forced = int64(*d.InputTokens)
	}
	u := s.cache.bill(size, bps, forced, s.now())
	if req.usesServerInput() {
		u.input += orDefault(d.ServerInputTokens, defaultServerInputTokens)
	}
	return u
}

// applicable rejects directives that need a request feature the request lacks, as the real
// API could not have produced what they describe.
func (d *Directives) applicable(req *messagesRequest) *apiError {
	bad := func(msg string) *apiError { return invalidRequest("mock directive: " + msg) }
	switch {
	case (d.ThinkingTokens != nil || d.RedactedThinking) && !req.thinks():
		return bad("thinking_tokens and redacted_thinking need thinking enabled or adaptive in the request")
	case d.WebSearch > 0 && !req.serverTool("web_search_"):
		return bad("web_search=" + strconv.Itoa(d.WebSearch) + " needs a web_search_* server tool in tools")
	case d.WebFetch > 0 && !req.serverTool("web_fetch_"):
		return bad("web_fetch=" + strconv.Itoa(d.WebFetch) + " needs a web_fetch_* server tool in tools")
	case d.ServerInputTokens != nil && !req.usesServerInput():
		return bad("server_input_tokens needs mcp_servers or container in the request")
	case d.LongLine > 0 && !req.Stream:
		return bad("long_line needs \"stream\": true")
	}
	if d.ToolUse != "" {
		for i := range req.Tools {
			if t := &req.Tools[i]; t.Name == d.ToolUse && (t.Type == "" || t.Type == "custom") {
				return nil
			}
		}
		return bad("tool_use=" + d.ToolUse + ": no custom tool of that name in tools")
	}
	return nil
}

// keyFault is the answer of echo_key and echo_key_fields, which put the received key where
// a proxy must never let it through.
func (d *Directives) keyFault(key string) *apiError {
	switch {
	case d.EchoKeyFields:
		status := http.StatusUnauthorized
		if d.Status >= 400 {
			status = d.Status
		}
		e := newAPIError(status, key, "invalid x-api-key: "+key)
		e.errorCode, e.param, e.requestID = key, key, key
		return e
	case d.EchoKey:
		return newAPIError(http.StatusUnauthorized, errAuthentication, "invalid x-api-key: "+key)
	}
	return nil
}

// echoKeyHeaders puts the received key in the response headers an upstream sets.
func echoKeyHeaders(h http.Header, key string) {
	v := []string{key}
	for _, name := range [...]string{"Request-Id", "Anthropic-Organization-Id", "Anthropic-Workspace-Id", "X-Echo", "Cf-Ray", "Server-Timing"} {
		h[name] = v
	}
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
// sense without a reply (status, error_type, retry_after…, first_byte_ms, hang, echo_key…)
// and those that shape the input (doc_pages, doc_page_tokens, image_size, input_tokens,
// also from the configured defaults), but not the fault queue, which belongs to
// /v1/messages. It counts the prompt as the call would bill it before any server tool runs.
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
	var d Directives
	if text := req.lastUserText(); strings.Contains(text, directiveMarker) {
		var err error
		if d, err = parseDirectives(text); err != nil {
			s.fail(w, c, invalidRequest("mock directive: "+err.Error()))
			return
		}
		if d.EchoKeyHeaders {
			echoKeyHeaders(w.Header(), key)
		}
		if !s.delay(r, c, &d) {
			return
		}
		f := d.keyFault(key)
		if f == nil {
			f = d.fault()
		}
		if f != nil {
			c.fault = true
			s.fail(w, c, f)
			return
		}
	}
	defaults := s.faults.currentDefaults()
	shape := Directives{DocPages: defaults.DocPages, DocPageTokens: defaults.DocPageTokens,
		ImageSize: defaults.ImageSize, InputTokens: defaults.InputTokens}
	shape = shape.merge(&d)
	hidden := newHiddenInput(&shape)
	size, _ := req.promptShape(s.seed, &hidden, nil)
	n := inputTokens(size)
	if shape.InputTokens != nil {
		n = int64(*shape.InputTokens)
	}
	c.usage.input = n
	c.status = http.StatusOK
	writeJSON(w, http.StatusOK, marshal(struct {
		InputTokens int64 `json:"input_tokens"`
	}{n}))
}
