package mock

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const testKey = "test-key-123"

// newTestServer starts the mock on a loopback port and returns it with its base URL.
func newTestServer(t testing.TB, opts Options) (*Server, string) {
	t.Helper()
	if opts.APIKey == "" {
		opts.APIKey = testKey
	}
	s, err := New(opts)
	require.NoError(t, err)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts.URL
}

// apiRequest builds an authenticated request with the 2023 API version.
func apiRequest(t testing.TB, method, url, body string) *http.Request {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	require.NoError(t, err)
	req.Header.Set("x-api-key", testKey)
	req.Header.Set("anthropic-version", Version2023)
	req.Header.Set("content-type", "application/json")
	return req
}

// serve runs req through s in-process and returns the recorded response.
func serve(s *Server, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec
}

// body builds a /v1/messages body with one user message.
func body(text string, extra ...string) string {
	b, _ := json.Marshal(text)
	fields := `"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":` + string(b) + `}]`
	for _, e := range extra {
		fields += "," + e
	}
	return "{" + fields + "}"
}

type errorBody struct {
	Type  string `json:"type"`
	Error struct {
		Type    string         `json:"type"`
		Message string         `json:"message"`
		Details map[string]any `json:"details"`
	} `json:"error"`
	RequestID string `json:"request_id"`
}

// requireAPIError asserts an Anthropic-shaped error with the given status and type.
func requireAPIError(t testing.TB, rec *httptest.ResponseRecorder, status int, errType string) errorBody {
	t.Helper()
	require.Equal(t, status, rec.Code, rec.Body.String())
	require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	var e errorBody
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &e), rec.Body.String())
	require.Equal(t, "error", e.Type)
	require.Equal(t, errType, e.Error.Type)
	require.NotEmpty(t, e.Error.Message)
	require.True(t, strings.HasPrefix(e.RequestID, "req_"), e.RequestID)
	require.Equal(t, rec.Header().Get("request-id"), e.RequestID, "body and header request ids differ")
	return e
}

type messageBody struct {
	ID           string  `json:"id"`
	Type         string  `json:"type"`
	Role         string  `json:"role"`
	Model        string  `json:"model"`
	StopReason   string  `json:"stop_reason"`
	StopSequence *string `json:"stop_sequence"`
	Content      []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	} `json:"content"`
	Usage usageBody `json:"usage"`
}

type usageBody struct {
	InputTokens              int64  `json:"input_tokens"`
	OutputTokens             int64  `json:"output_tokens"`
	CacheCreationInputTokens int64  `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int64  `json:"cache_read_input_tokens"`
	ServiceTier              string `json:"service_tier"`
	CacheCreation            struct {
		Ephemeral5m int64 `json:"ephemeral_5m_input_tokens"`
		Ephemeral1h int64 `json:"ephemeral_1h_input_tokens"`
	} `json:"cache_creation"`
}

func decodeMessage(t testing.TB, rec *httptest.ResponseRecorder) messageBody {
	t.Helper()
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var m messageBody
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &m), rec.Body.String())
	return m
}

// sseEvent is one parsed server-sent event.
type sseEvent struct {
	Name string
	Data map[string]any
	Raw  string
}

// parseSSE parses a complete SSE body and checks the invariant both SDKs rely on: every
// event has an event: name and a data: line whose "type" equals it.
func parseSSE(t testing.TB, b []byte) []sseEvent {
	t.Helper()
	var events []sseEvent
	var cur sseEvent
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.Name != "" || cur.Raw != "" {
				require.NotEmpty(t, cur.Name, "event without a name: %s", cur.Raw)
				require.NoError(t, json.Unmarshal([]byte(cur.Raw), &cur.Data), cur.Raw)
				require.Equal(t, cur.Name, cur.Data["type"], "event name and data type differ")
				events = append(events, cur)
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, "event: "):
			cur.Name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			cur.Raw = strings.TrimPrefix(line, "data: ")
		default:
			t.Fatalf("unexpected SSE line %q", line)
		}
	}
	require.NoError(t, sc.Err())
	require.True(t, cur.Name == "" && cur.Raw == "", "stream ended inside an event")
	return events
}

func eventNames(events []sseEvent) []string {
	names := make([]string, len(events))
	for i, e := range events {
		names[i] = e.Name
	}
	return names
}

// collapse squeezes runs of content_block_delta into one name, to compare event order.
func collapse(names []string) []string {
	var out []string
	for _, n := range names {
		if n == "content_block_delta" && len(out) > 0 && out[len(out)-1] == n {
			continue
		}
		out = append(out, n)
	}
	return out
}

func num(v any) int64 { return int64(v.(float64)) }
