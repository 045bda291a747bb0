package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/services/gateway/internal/testenv"
)

const streamBody = `{"model":"claude-sonnet-4-5","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"stream over the hop"}]}`

// upstreamProtos lists the protocol of every /v1/ call the mock received.
func upstreamProtos(t *testing.T, mock *testenv.Proc) []string {
	t.Helper()
	var out []string
	for _, r := range mock.Requests(t) {
		if strings.HasPrefix(r.Path, "/v1/") {
			out = append(out, r.Proto)
		}
	}
	return out
}

// The hop production runs: the gateway calls an HTTPS upstream, trusts it
// through KEYWARD_UPSTREAM_CA_FILE, and speaks HTTP/2 to it — JSON calls,
// streams and retries alike.
func TestUpstreamOverTLSSpeaksHTTP2(t *testing.T) {
	mock := testenv.StartMock(t)
	require.True(t, strings.HasPrefix(mock.URL, "https://"), mock.URL)
	gw := testenv.StartGateway(t, mock.URL)

	code, _, b := post(t, gw.URL+"/api/query", nil, query)
	require.Equal(t, http.StatusOK, code, string(b))
	code, _, b = post(t, gw.URL+"/v1/messages", nil, streamBody)
	require.Equal(t, http.StatusOK, code, string(b))
	require.Contains(t, string(b), "event: message_stop")
	// /api/* callers (browser pages) do not retry, so the gateway retries a
	// 529 for them; /v1/* passes it back for the SDK to retry.
	mock.MockPost(t, "/_mock/faults", `{"queue":[{"status":529}]}`)
	code, _, b = post(t, gw.URL+"/api/query", nil, query)
	require.Equal(t, http.StatusOK, code, string(b))

	protos := upstreamProtos(t, mock)
	require.Len(t, protos, 4, "three calls, one retried")
	for _, p := range protos {
		require.Equal(t, "HTTP/2.0", p, "every upstream call went over HTTP/2")
	}
	require.Equal(t, 1.0, gw.Metric(t, "keyward_upstream_requests_total", `code="529"`))
	require.Equal(t, 3.0, gw.Metric(t, "keyward_upstream_requests_total", `code="200"`))
	require.Equal(t, 1.0, gw.Metric(t, "keyward_upstream_retries_total", `model="claude-sonnet-4-5"`))
	require.Contains(t, gw.MetricsText(t), "\nkeyward_log_write_errors_total 0\n", "the log writer's failures are exported")
}

// Without the CA the gateway refuses the upstream's certificate: a clean
// 502 naming no secret, and no call reaches the mock.
func TestUpstreamCertificateIsVerified(t *testing.T) {
	mock := testenv.StartMock(t)
	gw := testenv.StartGateway(t, mock.URL, "KEYWARD_UPSTREAM_CA_FILE=", "KEYWARD_UPSTREAM_MAX_RETRIES=0")
	code, _, b := post(t, gw.URL+"/api/query", nil, query)
	require.Equal(t, http.StatusBadGateway, code, string(b))
	require.NotContains(t, string(b), testenv.MockKey)
	require.Empty(t, upstreamProtos(t, mock), "nothing was sent over an unverified connection")
	require.Equal(t, 1.0, gw.Metric(t, "keyward_upstream_requests_total", `code="error"`))
}

// The plain-http subset: a cleartext upstream (a sidecar that originates
// TLS) goes through the same transport over HTTP/1.1.
func TestUpstreamOverPlainHTTP(t *testing.T) {
	mock := testenv.StartMockHTTP(t)
	require.True(t, strings.HasPrefix(mock.URL, "http://"), mock.URL)
	gw := testenv.StartGateway(t, mock.URL)

	code, _, b := post(t, gw.URL+"/api/query", nil, query)
	require.Equal(t, http.StatusOK, code, string(b))
	code, _, b = post(t, gw.URL+"/v1/messages", nil, streamBody)
	require.Equal(t, http.StatusOK, code, string(b))
	require.Contains(t, string(b), "event: message_stop")
	mock.MockPost(t, "/_mock/faults", `{"queue":[{"status":529}]}`)
	code, _, b = post(t, gw.URL+"/api/query", nil, query)
	require.Equal(t, http.StatusOK, code, string(b))
	for _, p := range upstreamProtos(t, mock) {
		require.Equal(t, "HTTP/1.1", p)
	}
	require.Equal(t, 1.0, gw.Metric(t, "keyward_upstream_retries_total"))
}
