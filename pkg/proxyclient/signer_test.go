package proxyclient_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/pkg/auth"
	"github.com/keyward/keyward/pkg/proxyclient"
)

// TestSignerHeadersAreVerifiable checks, with the gateway's own verifier,
// that every attempt (a retry too) carries a complete, valid, fresh
// signature over exactly the bytes sent.
func TestSignerHeadersAreVerifiable(t *testing.T) {
	secret := []byte("a-32-byte-or-longer-shared-secret!!")
	verifier, err := auth.NewHMACVerifier([]auth.HMACKey{{ID: "svc-1", Secret: secret}}, auth.NewMemoryNonceStore(), auth.HMACOptions{})
	require.NoError(t, err)

	var mu sync.Mutex
	var results []string
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		for _, h := range []string{auth.HeaderKeyID, auth.HeaderTimestamp, auth.HeaderNonce, auth.HeaderSignature} {
			if r.Header.Get(h) == "" {
				t.Errorf("header %s missing", h)
			}
		}
		id, err := verifier.Verify(r.Context(), r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header, body)
		mu.Lock()
		calls++
		n := calls
		if err != nil {
			results = append(results, "refused: "+err.Error())
		} else {
			results = append(results, "ok: "+id.Subject)
		}
		mu.Unlock()
		if err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if n == 1 { // make the client retry: the retry must be signed afresh
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = io.Copy(w, bytes.NewReader([]byte(`{"answer":"ok","model":"m","usage":{},"request_id":"r"}`)))
	}))
	defer srv.Close()

	c, err := proxyclient.New(srv.URL, proxyclient.WithSigner(auth.Signer{KeyID: "svc-1", Secret: secret}))
	require.NoError(t, err)
	_, err = c.Query(context.Background(), proxyclient.QueryRequest{Question: "signed?", Context: map[string]any{"n": 1}})
	require.NoError(t, err)
	require.Equal(t, []string{"ok: hmac:svc-1", "ok: hmac:svc-1"}, results)
}
