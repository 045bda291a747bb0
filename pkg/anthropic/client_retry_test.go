package anthropic

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// failFirstDial fails its first n round trips as a refused dial (nothing
// reached the upstream), then passes through.
type failFirstDial struct {
	n    atomic.Int32
	next http.RoundTripper
}

func (f *failFirstDial) RoundTrip(r *http.Request) (*http.Response, error) {
	if f.n.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	}
	return f.next.RoundTrip(r)
}

// With RetryUnsent, every answer the upstream gave goes back at once: the
// caller (an SDK) retries, and one SDK attempt is one upstream attempt.
func TestRetryUnsentPassesUpstreamAnswersBack(t *testing.T) {
	for _, tc := range []struct {
		name string
		step func(http.ResponseWriter, *http.Request)
		code int
	}{
		{"529", overloaded, 529},
		{"429 with retry-after", status(429, anthropicErr("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"), "retry-after", "7"), 429},
		{"500", status(500, anthropicErr("api_error", "Internal server error")), 500},
		{"503", status(503, anthropicErr("overloaded_error", "busy")), 503},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(t, tc.step, okMessage)
			c, rec := newTestClient(t, up.URL, nil)
			_, err := c.Do(context.Background(), Call{Path: "/v1/messages", Body: []byte(`{}`), Retry: RetryUnsent})
			var ae *APIError
			require.ErrorAs(t, err, &ae)
			require.Equal(t, tc.code, ae.Status)
			require.Equal(t, 1, up.count(), "no gateway retry of an upstream answer")
			require.Empty(t, rec.waits())
		})
	}
}

func TestRetryUnsentRetriesConnectFailures(t *testing.T) {
	up := newUpstream(t, okMessage)
	rt := &failFirstDial{next: http.DefaultTransport}
	rt.n.Store(2)
	c, rec := newTestClient(t, up.URL, func(cfg *ClientConfig) { cfg.Transport = rt })
	resp, err := c.Do(context.Background(), Call{Path: "/v1/messages", Body: []byte(`{}`), Retry: RetryUnsent})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 1, up.count(), "the two refused dials never reached the upstream")
	require.Len(t, rec.waits(), 2, "both connect failures were retried after a backoff")
}

func TestRetryAllStillRetriesOverload(t *testing.T) {
	up := newUpstream(t, overloaded, overloaded, okMessage)
	c, _ := newTestClient(t, up.URL, nil)
	resp, err := c.Do(context.Background(), Call{Path: "/v1/messages", Body: []byte(`{}`)})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 3, up.count())
}

func TestUpstreamSeesTheGatewaysUserAgentOnly(t *testing.T) {
	up := newUpstream(t, okMessage)
	c, _ := newTestClient(t, up.URL, func(cfg *ClientConfig) { cfg.UserAgent = "keyward/v9" })
	in := http.Header{"User-Agent": {"claude-cli/2.1.328 (external, cli)"}}
	resp, err := c.Do(context.Background(), Call{Path: "/v1/messages", Header: in, Body: []byte(`{}`)})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, "keyward/v9", up.headers[0].Get("User-Agent"))
}
