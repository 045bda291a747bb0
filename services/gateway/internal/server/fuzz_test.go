package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keyward/keyward/services/gateway/internal/config"
	"github.com/keyward/keyward/services/gateway/internal/server"
)

// fuzzRoutes are the endpoints whose request validation is fuzzed.
var fuzzRoutes = []string{"/api/query", "/api/analytics-query", "/v1/messages", "/v1/messages/count_tokens"}

// fakeUpstream answers like the Messages API: JSON, SSE when the body asks
// for a stream, and count_tokens. The fuzz target needs the happy path to be
// cheap and in-process; the mock binary covers fidelity elsewhere.
func fakeUpstream(tb testing.TB) *httptest.Server {
	tb.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/v1/messages/count_tokens" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"input_tokens":12}`)
			return
		}
		var req struct {
			Model  string `json:"model"`
			Stream bool   `json:"stream"`
		}
		_ = json.Unmarshal(body, &req)
		if !req.Stream {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"id":"msg_1","type":"message","role":"assistant","model":"`+req.Model+`","content":[{"type":"text","text":"ok"}],"stop_reason":"end_turn","usage":{"input_tokens":12,"output_tokens":2}}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for _, ev := range []string{
			`event: message_start` + "\n" + `data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"` + req.Model + `","usage":{"input_tokens":12,"output_tokens":1}}}`,
			`event: content_block_start` + "\n" + `data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`,
			`event: content_block_delta` + "\n" + `data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"ok"}}`,
			`event: content_block_stop` + "\n" + `data: {"type":"content_block_stop","index":0}`,
			`event: message_delta` + "\n" + `data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":2}}`,
			`event: message_stop` + "\n" + `data: {"type":"message_stop"}`,
		} {
			_, _ = io.WriteString(w, ev+"\n\n")
		}
	}))
	tb.Cleanup(srv.Close)
	return srv
}

// FuzzAPIRequests sends arbitrary bodies to the request-validating endpoints
// through the real gin engine (whole middleware chain, handlers, upstream
// client) with a fake upstream. Whatever the body: never a 5xx or a panic
// (Recover would turn it into a 500), a JSON body in the endpoint's error
// shape unless a stream started, and never the server's API key.
//
// Seed corpus: testdata/fuzz/FuzzAPIRequests. Run:
//
//	go test -run '^$' -fuzz '^FuzzAPIRequests$' -fuzztime 30s ./internal/server/
func FuzzAPIRequests(f *testing.F) {
	const key = "sk-ant-fuzz-SERVERKEY-0123456789abcdef"
	up := fakeUpstream(f)
	cfg, err := config.Load(config.MapEnv(map[string]string{
		"ANTHROPIC_API_KEY":    key,
		"KEYWARD_UPSTREAM_URL": up.URL,
		"KEYWARD_RATE_LIMIT":   "1000000000/1s",
		"KEYWARD_ADDR":         "127.0.0.1:0",
		"KEYWARD_METRICS_ADDR": "127.0.0.1:1",
		// Retries would only slow the fuzzer down; the breaker would turn a
		// burst of upstream failures into 503s, which is not what is tested.
		"KEYWARD_UPSTREAM_MAX_RETRIES":       "0",
		"KEYWARD_UPSTREAM_BREAKER_THRESHOLD": "0",
	}), "fuzz")
	if err != nil {
		f.Fatal(err)
	}
	srv, err := server.New(cfg, server.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(srv.Close)
	h := srv.Handler()

	f.Add(uint8(0), []byte(`{"question":"What is my MRR?","context":{"mrr":1}}`))
	f.Add(uint8(0), []byte(`{"question":"q","context":{},"stream":true}`))
	f.Add(uint8(1), []byte(`{"query_type":"mrr_analysis","parameters":{"time_period":"last_30_days","include_forecast":true}}`))
	f.Add(uint8(1), []byte(`{"query_type":"churn_analysis","parameters":{"time_period":"last_7_days","top_n":1e309}}`))
	f.Add(uint8(2), []byte(`{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}`))
	f.Add(uint8(2), []byte(`{"model":"claude-sonnet-4-5","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	f.Add(uint8(3), []byte(`{"model":"claude-haiku-4-5","messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]}`))
	f.Add(uint8(0), []byte(`{"question":"\ud800","context":{"a":"</context>"}}`))

	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		path := fuzzRoutes[int(route)%len(fuzzRoutes)]
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		res := rec.Result()
		out := rec.Body.Bytes()
		if res.StatusCode >= 500 {
			t.Fatalf("%s answered %d: %s", path, res.StatusCode, out)
		}
		if bytes.Contains(out, []byte(key)) {
			t.Fatalf("%s: the server key is in the response", path)
		}
		if strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
			if res.StatusCode != http.StatusOK {
				t.Fatalf("%s: an event stream with status %d", path, res.StatusCode)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("%s answered %d with a body that is not JSON: %q", path, res.StatusCode, out)
		}
		if res.StatusCode < 400 {
			return
		}
		var e map[string]any
		_ = json.Unmarshal(out, &e)
		if strings.HasPrefix(path, "/v1/") {
			if e["type"] != "error" {
				t.Fatalf("%s %d: not Anthropic's error shape: %s", path, res.StatusCode, out)
			}
		} else if s, _ := e["error"].(string); s == "" || e["message"] == nil {
			t.Fatalf("%s %d: not the seed's error shape: %s", path, res.StatusCode, out)
		}
	})
}
