package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRetriesAgainstInjectedFaults(t *testing.T) {
	h := newHarness(t, nil)

	t.Run("529, 529, 200 succeeds after three attempts on /api", func(t *testing.T) {
		h.mock.MockPost(t, "/_mock/reset", `{}`)
		h.mock.MockPost(t, "/_mock/faults", `{"queue":[{"status":529},{"status":529}]}`)
		code, _, body := h.post("/api/query", `{"question":"retry me","context":{}}`)
		require.Equal(t, http.StatusOK, code, string(body))
		require.Equal(t, 3, h.upstreamCalls())
		require.Contains(t, h.metricsText(), `keyward_upstream_retries_total{model="claude-sonnet-4-5"} 2`)
	})

	t.Run("400 is attempted exactly once", func(t *testing.T) {
		h.mock.MockPost(t, "/_mock/reset", `{}`)
		code, _, body := h.post("/v1/messages", message("claude-sonnet-4-5", "bad [[mock:status=400]]"))
		require.Equal(t, http.StatusBadRequest, code, string(body))
		require.Equal(t, 1, h.upstreamCalls())
	})

	t.Run("retry-after is honoured", func(t *testing.T) {
		h.mock.MockPost(t, "/_mock/reset", `{}`)
		h.mock.MockPost(t, "/_mock/faults", `{"queue":[{"status":429,"retry_after":2}]}`)
		start := time.Now()
		code, _, body := h.post("/api/query", `{"question":"after a wait","context":{}}`)
		require.Equal(t, http.StatusOK, code, string(body))
		require.GreaterOrEqual(t, time.Since(start), 2*time.Second, "the retry waited for retry-after")
		require.Equal(t, 2, h.upstreamCalls())
	})

	t.Run("persistent 529 on /v1 goes back to the SDK after one attempt", func(t *testing.T) {
		h.mock.MockPost(t, "/_mock/reset", `{}`)
		code, hdr, body := h.post("/v1/messages", message("claude-sonnet-4-5", "x [[mock:status=529]]"))
		require.Equal(t, 529, code, string(body))
		require.NotEmpty(t, hdr.Get("Retry-After"))
		require.Equal(t, "true", hdr.Get("X-Should-Retry"))
		require.True(t, strings.Contains(string(body), `"overloaded_error"`), string(body))
		require.Equal(t, 1, h.upstreamCalls(), "the SDK retries; the gateway must not multiply its retries")
	})
}
