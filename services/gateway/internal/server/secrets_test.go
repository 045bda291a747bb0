package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/services/gateway/internal/testenv"
)

const callerSentinel = "SENTINEL-caller-credential-7f3a9c"

// TestUpstreamSeesOnlyTheServerKey: whatever credentials and headers a caller
// sends, the upstream receives the server key and only allowlisted headers.
func TestUpstreamSeesOnlyTheServerKey(t *testing.T) {
	h := newHarness(t, nil)
	hostile := []string{
		"Authorization", "Bearer " + callerSentinel,
		"X-Api-Key", callerSentinel,
		"Cookie", "session=" + callerSentinel,
		"Connection", "x-api-key",
		"X-Forwarded-For", "1.2.3.4",
		"X-Real-IP", "1.2.3.4",
		"Proxy-Authorization", "Basic " + callerSentinel,
		"X-Foo", callerSentinel,
		"Anthropic-Version", "2023-06-01",
		"Anthropic-Beta", "prompt-caching-2024-07-31",
	}
	code, _, body := h.post("/v1/messages", message("claude-sonnet-4-5", "hello"), hostile...)
	require.Equal(t, http.StatusOK, code, string(body))
	code, _, body = h.post("/api/query", `{"question":"q","context":{}}`, hostile...)
	require.Equal(t, http.StatusOK, code, string(body))

	reqs := h.mock.Requests(t)
	require.Len(t, reqs, 2)
	for _, r := range reqs {
		hdr := http.Header(r.Headers)
		require.Equal(t, testenv.MockKey, hdr.Get("X-Api-Key"), "the upstream always gets the server key")
		for _, name := range []string{"Authorization", "Cookie", "X-Forwarded-For", "X-Real-Ip", "Proxy-Authorization", "X-Foo", "Connection"} {
			require.Empty(t, hdr.Values(name), "%s must not be forwarded", name)
		}
		for name, vals := range hdr {
			require.NotContains(t, strings.Join(vals, ","), callerSentinel, "header %s leaks the caller credential", name)
		}
	}
	require.Equal(t, "prompt-caching-2024-07-31", http.Header(reqs[0].Headers).Get("Anthropic-Beta"), "anthropic-beta passes through")
}

// TestKeyNeverLeaks runs the server key and a caller credential through every
// error path — including an upstream that echoes the key back — and greps the
// responses, the logs and the metrics for both.
func TestKeyNeverLeaks(t *testing.T) {
	h := newHarness(t, map[string]string{"KEYWARD_UPSTREAM_MAX_RETRIES": "0", "KEYWARD_UPSTREAM_BREAKER_THRESHOLD": "0", "KEYWARD_RATE_LIMIT": "12/60s"})
	auth := []string{"Authorization", "Bearer " + callerSentinel, "X-Api-Key", callerSentinel}
	var bodies []string
	record := func(code int, hdr http.Header, b []byte) {
		var sb strings.Builder
		sb.Write(b)
		for k, v := range hdr {
			sb.WriteString(k + ": " + strings.Join(v, ",") + "\n")
		}
		bodies = append(bodies, sb.String())
	}
	// An upstream that echoes the key it received in a 401 body: the caller
	// gets a generic 502 and no trace of the key.
	code, hdr, b := h.post("/v1/messages", message("claude-sonnet-4-5", "[[mock:echo_key]]"), auth...)
	require.Equal(t, http.StatusBadGateway, code, string(b))
	record(code, hdr, b)
	code, hdr, b = h.post("/api/query", `{"question":"[[mock:echo_key]]","context":{}}`, auth...)
	require.Equal(t, http.StatusBadGateway, code, string(b))
	record(code, hdr, b)
	for _, d := range []string{"status=529", "status=500", "status=400", "status=429 retry_after=1", "spend_limit"} {
		code, hdr, b = h.post("/v1/messages", message("claude-sonnet-4-5", "x [[mock:"+d+"]]"), auth...)
		require.GreaterOrEqual(t, code, 400, d)
		record(code, hdr, b)
	}
	// A stream that fails mid-way, a bad request and a rate-limited one.
	code, hdr, b = h.post("/v1/messages", message("claude-sonnet-4-5", "x [[mock:error_after=3]]", `"stream":true`), auth...)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(b), "event: error")
	record(code, hdr, b)
	code, hdr, b = h.post("/api/query", `{"bad":1}`, auth...)
	record(code, hdr, b)
	for i := 0; i < 5; i++ {
		code, hdr, b = h.post("/api/query", `{"question":"q","context":{}}`, auth...)
		record(code, hdr, b)
	}
	require.Equal(t, http.StatusTooManyRequests, code, "the limit of 12 was reached")

	time.Sleep(50 * time.Millisecond) // let access-log lines land
	everything := strings.Join(bodies, "\n") + h.logs.String() + h.metricsText()
	require.NotContains(t, everything, testenv.MockKey, "the server key leaked")
	require.NotContains(t, everything, "SERVERKEY", "part of the server key leaked")
	require.NotContains(t, everything, callerSentinel, "the caller's credential leaked")
	require.Contains(t, h.logs.String(), "could not authenticate", "an upstream 401 is logged as an error for operators")
}
