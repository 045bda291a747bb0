package mock

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// FuzzMessages checks that no body makes the mock panic or answer 5xx unless a directive
// asked for it, and that every non-streamed answer is well-formed JSON.
func FuzzMessages(f *testing.F) {
	for _, seed := range []string{
		body("hello"),
		streamBody("hi [[mock:usage_deltas=2]]"),
		`{"model":"claude-sonnet-4-5","max_tokens":5,"system":[{"type":"text","text":"s","cache_control":{"type":"ephemeral","ttl":"1h"}}],"messages":[{"role":"user","content":[{"type":"image","source":{}},{"type":"text","text":"x"}]}]}`,
		`{"model":"claude-sonnet-4-5","max_tokens":5,"stop_sequences":["a"],"tools":[{"name":"t","cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":"é\u0000"}]}`,
		body("t [[mock:thinking_tokens=3000 redacted_thinking]]", `"max_tokens":4096`, `"thinking":{"type":"enabled","budget_tokens":2048,"display":"omitted"}`),
		streamBody("s [[mock:web_search=2 web_fetch=1 tool_use=t iterations=2]]", `"tools":[{"name":"t","input_schema":{"properties":{"a":{"type":"string"}}}},{"type":"web_search_20250305","name":"web_search"},{"type":"web_fetch_20250910","name":"web_fetch"}]`),
		`{"model":"claude-sonnet-4-5","max_tokens":5,"speed":"fast","inference_geo":"us","mcp_servers":[{}],"messages":[{"role":"user","content":[{"type":"document","source":{"type":"url","url":"u"}},{"type":"image","source":{"type":"base64","data":"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"}},{"type":"text","text":"x [[mock:doc_pages=3 image_size=10x10 input_tokens=5]]"}]}]}`,
		`{"model":null,"messages":[null]}`,
		`[]`, `null`, `"x"`, `{`,
	} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	s, err := New(Options{APIKey: testKey, RecordLimit: 16})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b string, v2026 bool) {
		// hang and long delays end when this context does.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		req := apiRequest(t, http.MethodPost, "/v1/messages", b).WithContext(ctx)
		if v2026 {
			req.Header.Set("anthropic-version", Version2026)
		}
		rec := serveRecovering(s, req)
		if rec == nil {
			return // drop_after: the connection was cut on purpose
		}
		directed := strings.Contains(b, directiveMarker)
		if rec.Code >= 500 && !directed {
			t.Fatalf("status %d for a body without directives: %s", rec.Code, rec.Body.String())
		}
		if rec.Header().Get("Content-Type") == "application/json" && !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("invalid JSON: %s", rec.Body.String())
		}
	})
}

// serveRecovering serves req, returning nil when the handler aborted the connection on
// purpose (drop_after), which net/http does by panicking with http.ErrAbortHandler.
func serveRecovering(s *Server, req *http.Request) (rec *httptest.ResponseRecorder) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				panic(v)
			}
			rec = nil
		}
	}()
	return serve(s, req)
}
