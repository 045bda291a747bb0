package anthropic

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/pkg/devtls"
)

// The default transport trusts RootCAs, speaks HTTP/2 over TLS, and refuses
// a certificate its roots do not cover.
func TestDefaultTransportTLSAndHTTP2(t *testing.T) {
	ca, err := devtls.NewCA()
	require.NoError(t, err)
	certPEM, keyPEM, err := ca.Issue()
	require.NoError(t, err)
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	require.NoError(t, err)
	var mu sync.Mutex
	var protos []string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		protos = append(protos, r.Proto)
		mu.Unlock()
		okMessage(w, r)
	}))
	srv.EnableHTTP2 = true
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	srv.StartTLS()
	t.Cleanup(srv.Close)

	c, _ := newTestClient(t, srv.URL, func(cfg *ClientConfig) { cfg.RootCAs = ca.Pool() })
	resp, err := c.Do(context.Background(), messagesCall())
	require.NoError(t, err)
	require.Equal(t, 2, resp.ProtoMajor, "HTTP/2 to a TLS upstream")
	require.Contains(t, readAllClose(t, resp), "output_tokens")
	mu.Lock()
	require.Equal(t, []string{"HTTP/2.0"}, protos)
	mu.Unlock()

	untrusting, _ := newTestClient(t, srv.URL, func(cfg *ClientConfig) { cfg.MaxRetries = -1 })
	_, err = untrusting.Do(context.Background(), messagesCall())
	require.ErrorIs(t, err, ErrUpstreamConnection, "the system roots do not cover a development CA")
	require.ErrorContains(t, err, "certificate")
}

// An upstream (or egress proxy) that answers before reading a large body —
// a 413 — is reported as its answer, not as a broken pipe.
func TestDoEarlyAnswerBeforeBodyIsRead(t *testing.T) {
	up := newUpstream(t, status(413, anthropicErr("request_too_large", "Request exceeds the maximum allowed number of bytes.")))
	// newUpstream reads the body first; this one must not.
	up.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		status(413, anthropicErr("request_too_large", "too large"))(w, r)
	})
	c, _ := newTestClient(t, up.URL, nil)
	call := messagesCall()
	call.Body = []byte(`{"model":"claude-haiku-4-5","messages":[{"role":"user","content":"` + strings.Repeat("x", 8<<20) + `"}]}`)
	_, err := c.Do(context.Background(), call)
	var apiErr *APIError
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, 413, apiErr.Status)
}

// Call.OnAttempt reports this call's attempts only, in order, with the
// client-wide hook called as well.
func TestCallOnAttempt(t *testing.T) {
	up := newUpstream(t, overloaded, okMessage)
	var mu sync.Mutex
	var global []int
	c, _ := newTestClient(t, up.URL, func(cfg *ClientConfig) {
		cfg.OnAttempt = func(_, status int, _ error) { mu.Lock(); global = append(global, status); mu.Unlock() }
	})
	var mine attemptLog
	call := messagesCall()
	call.OnAttempt = mine.hook
	resp, err := c.Do(context.Background(), call)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	require.Equal(t, []int{529, 200}, mine.statuses)
	mu.Lock()
	require.Equal(t, []int{529, 200}, global)
	mu.Unlock()

	// Another call with no hook leaves the first call's log alone.
	resp, err = c.Do(context.Background(), messagesCall())
	require.NoError(t, err)
	resp.Body.Close()
	require.Len(t, mine.statuses, 2)
	mu.Lock()
	require.Equal(t, []int{529, 200, 200}, global, "the client-wide hook sees every call")
	mu.Unlock()
}
