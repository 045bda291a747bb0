package mock

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func adminCall(t *testing.T, s *Server, method, path, b string) (int, map[string]any) {
	t.Helper()
	rec := serve(s, httptestRequest(method, path, b))
	var out map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out), rec.Body.String())
	return rec.Code, out
}

func TestFaultQueue(t *testing.T) {
	s, err := New(Options{APIKey: testKey})
	require.NoError(t, err)
	code, out := adminCall(t, s, "POST", "/_mock/faults",
		`{"queue":[{"status":529},{"status":429,"retry_after":2},{"status":500,"retry_after_ms":150,"should_retry":true},{"spend_limit":true},{"status":503,"error_type":"overloaded_error","message":"busy"}]}`)
	require.Equal(t, 200, code)
	require.EqualValues(t, 5, out["pending"])

	// Invalid requests do not consume queued faults: they never reach "the model".
	requireAPIError(t, serve(s, apiRequest(t, "POST", "/v1/messages", `{"model":"claude-sonnet-4-5"}`)), 400, errInvalidRequest)
	noKey := apiRequest(t, "POST", "/v1/messages", body("hi"))
	noKey.Header.Del("x-api-key")
	requireAPIError(t, serve(s, noKey), 401, errAuthentication)
	// Nor do count_tokens calls.
	require.Equal(t, 200, serve(s, apiRequest(t, "POST", "/v1/messages/count_tokens", body("hi"))).Code)

	rec := serve(s, apiRequest(t, "POST", "/v1/messages", body("hi")))
	requireAPIError(t, rec, 529, errOverloaded)
	require.Empty(t, rec.Header().Get("retry-after"))

	rec = serve(s, apiRequest(t, "POST", "/v1/messages", streamBody("hi")))
	requireAPIError(t, rec, 429, errRateLimit)
	require.Equal(t, "2", rec.Header().Get("retry-after"), "a fault replaces a stream before it starts")

	rec = serve(s, apiRequest(t, "POST", "/v1/messages", body("hi")))
	requireAPIError(t, rec, 500, errAPI)
	require.Equal(t, "150", rec.Header().Get("retry-after-ms"))
	require.Equal(t, "true", rec.Header().Get("x-should-retry"))

	rec = serve(s, apiRequest(t, "POST", "/v1/messages", body("hi")))
	e := requireAPIError(t, rec, 429, errRateLimit)
	require.Equal(t, "enforced_spend_limit_reached", e.Error.Details["error_code"])
	require.Empty(t, rec.Header().Get("retry-after"), "the spend cap has no retry-after")

	rec = serve(s, apiRequest(t, "POST", "/v1/messages", body("hi")))
	e = requireAPIError(t, rec, 503, errOverloaded)
	require.Equal(t, "busy", e.Error.Message)

	// The queue is drained: back to normal.
	decodeMessage(t, serve(s, apiRequest(t, "POST", "/v1/messages", body("hi"))))
	_, st := adminCall(t, s, "GET", "/_mock/stats", "")
	require.EqualValues(t, 0, st["faults_pending"])
	require.EqualValues(t, 5, st["faults_injected"])

	// A prompt directive beats the queued fault, field by field.
	adminCall(t, s, "POST", "/_mock/faults", `{"queue":[{"status":529,"retry_after":9}]}`)
	rec = serve(s, apiRequest(t, "POST", "/v1/messages", body("hi [[mock:status=500]]")))
	requireAPIError(t, rec, 500, errAPI)
	require.Equal(t, "9", rec.Header().Get("retry-after"))

	// GET shows, DELETE clears.
	adminCall(t, s, "POST", "/_mock/faults", `{"queue":[{"status":529}]}`)
	_, q := adminCall(t, s, "GET", "/_mock/faults", "")
	require.Len(t, q["queue"], 1)
	adminCall(t, s, "DELETE", "/_mock/faults", "")
	decodeMessage(t, serve(s, apiRequest(t, "POST", "/v1/messages", body("hi"))))
}

func TestAdminRejectsBadInput(t *testing.T) {
	s, err := New(Options{APIKey: testKey})
	require.NoError(t, err)
	tests := []struct {
		method, path, body, want string
		status                   int
	}{
		{"POST", "/_mock/faults", `{"queue":[{"stauts":529}]}`, `unknown field "stauts"`, 400},
		{"POST", "/_mock/faults", `{"queue":[{"status":200},{"status":99}]}`, "queue.1: status 99", 400},
		{"POST", "/_mock/faults", `{}`, "queue: Field required", 400},
		{"POST", "/_mock/faults", `not json`, "request body", 400},
		{"POST", "/_mock/config", `{"first_byte_ms":-3}`, "first_byte_ms -3", 400},
		{"POST", "/_mock/config", `{"delay":3}`, `unknown field "delay"`, 400},
		{"GET", "/_mock/requests?limit=0", ``, "limit", 400},
		{"PUT", "/_mock/faults", ``, "Method Not Allowed", 405},
		{"GET", "/_mock/reset", ``, "Method Not Allowed", 405},
		{"GET", "/_mock/nope", ``, "admin API", 404},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path+" "+tt.body, func(t *testing.T) {
			rec := serve(s, httptestRequest(tt.method, tt.path, tt.body))
			e := requireAPIError(t, rec, tt.status, defaultErrorType(tt.status))
			require.Contains(t, e.Error.Message, tt.want)
		})
	}
	_, q := adminCall(t, s, "GET", "/_mock/faults", "")
	require.Empty(t, q["queue"], "a rejected script queues nothing")
}

func TestConfigDefaults(t *testing.T) {
	s, err := New(Options{APIKey: testKey, Defaults: Directives{Status: 503}})
	require.NoError(t, err)
	requireAPIError(t, serve(s, apiRequest(t, "POST", "/v1/messages", body("hi"))), 503, errAPI)

	code, cfg := adminCall(t, s, "POST", "/_mock/config", `{"status":529,"retry_after":1}`)
	require.Equal(t, 200, code)
	require.EqualValues(t, 529, cfg["status"])
	for range 3 {
		requireAPIError(t, serve(s, apiRequest(t, "POST", "/v1/messages", body("hi"))), 529, errOverloaded)
	}
	// Per-request status=200 opts one call out of a failing default.
	decodeMessage(t, serve(s, apiRequest(t, "POST", "/v1/messages", body("hi [[mock:status=200]]"))))

	adminCall(t, s, "POST", "/_mock/config", `{}`)
	decodeMessage(t, serve(s, apiRequest(t, "POST", "/v1/messages", body("hi"))))

	// Reset restores the start-up defaults, not the zero value.
	adminCall(t, s, "POST", "/_mock/reset", "")
	_, cfg = adminCall(t, s, "GET", "/_mock/config", "")
	require.EqualValues(t, 503, cfg["status"])
}

func TestEchoKey(t *testing.T) {
	s, err := New(Options{APIKey: testKey})
	require.NoError(t, err)
	for _, auth := range []func(*http.Request){
		func(r *http.Request) {},
		func(r *http.Request) { r.Header.Del("x-api-key"); r.Header.Set("authorization", "Bearer "+testKey) },
	} {
		req := apiRequest(t, "POST", "/v1/messages", body("hi [[mock:echo_key]]"))
		auth(req)
		e := requireAPIError(t, serve(s, req), 401, errAuthentication)
		require.Equal(t, "invalid x-api-key: "+testKey, e.Error.Message)
	}
}

func TestRecordedRequestsAndStats(t *testing.T) {
	s, err := New(Options{APIKey: testKey, RecordLimit: 3})
	require.NoError(t, err)
	for i, text := range []string{"one", "two", "three", "four"} {
		req := apiRequest(t, "POST", "/v1/messages", body(text))
		req.Header.Set("X-Test-Seq", string(rune('a'+i)))
		serve(s, req)
	}
	serve(s, apiRequest(t, "GET", "/v1/models?limit=2", ""))
	serve(s, apiRequest(t, "GET", "/nowhere", ""))

	rec := serve(s, httptestRequest("GET", "/_mock/requests", ""))
	require.Equal(t, 200, rec.Code)
	var got struct{ Requests []RecordedRequest }
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	require.Len(t, got.Requests, 3, "a ring of the last RecordLimit requests")
	require.Equal(t, "/v1/messages", got.Requests[0].Path)
	require.Contains(t, got.Requests[0].Body, `"four"`)
	require.Equal(t, "d", got.Requests[0].Headers.Get("X-Test-Seq"))
	require.Equal(t, testKey, got.Requests[0].Headers.Get("X-Api-Key"), "headers exactly as received")
	require.Equal(t, 200, got.Requests[0].Status)
	require.True(t, strings.HasPrefix(got.Requests[0].RequestID, "req_"))
	require.Equal(t, "/v1/models", got.Requests[1].Path)
	require.Equal(t, "limit=2", got.Requests[1].Query)
	require.Equal(t, 404, got.Requests[2].Status)

	rec = serve(s, httptestRequest("GET", "/_mock/requests?path=/v1/messages&limit=5", ""))
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	require.Len(t, got.Requests, 1)

	_, st := adminCall(t, s, "GET", "/_mock/stats", "")
	require.EqualValues(t, 6, st["requests"])
	require.Equal(t, map[string]any{"/v1/messages": 4.0, "/v1/models": 1.0, "other": 1.0}, st["by_path"])
	require.Equal(t, map[string]any{"200": 5.0, "404": 1.0}, st["by_status"])

	adminCall(t, s, "POST", "/_mock/reset", "")
	_, st = adminCall(t, s, "GET", "/_mock/stats", "")
	require.EqualValues(t, 0, st["requests"])
	_, reqs := adminCall(t, s, "GET", "/_mock/requests", "")
	require.Empty(t, reqs["requests"])
	code, h := adminCall(t, s, "GET", "/_mock/health", "")
	require.Equal(t, 200, code)
	require.Equal(t, "ok", h["status"])
}

func TestRecordedBodyIsCapped(t *testing.T) {
	s, err := New(Options{APIKey: testKey, RecordBodyMax: 100})
	require.NoError(t, err)
	serve(s, apiRequest(t, "POST", "/v1/messages", body(strings.Repeat("z", 500))))
	got := s.rec.snapshot("", 0)
	require.Len(t, got, 1)
	require.Len(t, got[0].Body, 100)
	require.True(t, got[0].BodyTruncated)
}

func TestNew(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"defaults", Options{}, ""},
		{"key with spaces", Options{APIKey: " k "}, "white space"},
		{"negative body limit", Options{MaxBodyBytes: -1}, "max body bytes"},
		{"negative record limit", Options{RecordLimit: -1}, "record limit"},
		{"bad defaults", Options{Defaults: Directives{Status: 99}}, "default directives: status 99"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.opts)
			if tt.want == "" {
				require.NoError(t, err)
				require.NotNil(t, s)
				return
			}
			require.ErrorContains(t, err, tt.want)
		})
	}
}
