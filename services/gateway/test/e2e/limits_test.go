// Package e2e runs several real gateway processes against a real
// redis-server and the real mock upstream, all on loopback.
package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/pkg/redistest"
	"github.com/keyward/keyward/services/gateway/internal/testenv"
)

const query = `{"question":"How is churn?","context":{"churned":12}}`

func post(t *testing.T, url string, hdr map[string]string, body string) (int, http.Header, []byte) {
	t.Helper()
	h := map[string]string{"Content-Type": "application/json"}
	for k, v := range hdr {
		h[k] = v
	}
	return testenv.Do(t, http.MethodPost, url, h, body)
}

func randomIP() string {
	return fmt.Sprintf("%d.%d.%d.%d", rand.IntN(223)+1, rand.IntN(256), rand.IntN(256), rand.IntN(254)+1)
}

// TestSharedLimitIsExactAcrossReplicas: three gateways share one Redis. A
// concurrent burst of 3× the limit from one client, spread over the replicas
// and each request carrying a random spoofed X-Forwarded-For/X-Real-IP, admits
// exactly the limit; the rest get a valid 429; after the reset, requests pass.
func TestSharedLimitIsExactAcrossReplicas(t *testing.T) {
	rds := redistest.Start(t)
	mock := testenv.StartMock(t)
	const limit = 10
	gws := testenv.StartReplicas(t, 3, mock.URL, rds.URL(), "KEYWARD_RATE_LIMIT=10/10s")
	type result struct {
		code int
		hdr  http.Header
		body []byte
	}
	results := make([]result, 3*limit)
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			spoof := map[string]string{"X-Forwarded-For": randomIP(), "X-Real-IP": randomIP()}
			c, h, b := post(t, gws[i%3].URL+"/api/query", spoof, query)
			results[i] = result{c, h, b}
		}(i)
	}
	wg.Wait()
	ok, limited := 0, 0
	for _, r := range results {
		switch r.code {
		case http.StatusOK:
			ok++
		case http.StatusTooManyRequests:
			limited++
			ra, err := strconv.Atoi(r.hdr.Get("Retry-After"))
			require.NoError(t, err, "Retry-After is whole seconds")
			require.GreaterOrEqual(t, ra, 1)
			require.Equal(t, "10", r.hdr.Get("RateLimit-Limit"))
			require.Equal(t, "0", r.hdr.Get("RateLimit-Remaining"))
			require.Equal(t, "10;w=10", r.hdr.Get("RateLimit-Policy"))
			var e map[string]any
			require.NoError(t, json.Unmarshal(r.body, &e))
			require.Equal(t, "Rate limit exceeded", e["error"])
			require.Equal(t, "Maximum 10 requests per 10 seconds", e["message"])
			require.EqualValues(t, ra, e["retry_after"])
		default:
			t.Fatalf("unexpected status %d: %s", r.code, r.body)
		}
	}
	t.Logf("figure: admitted %d/%d across 3 replicas, %d limited", ok, len(results), limited)
	require.Equal(t, limit, ok, "exactly the limit is admitted across replicas")
	require.Equal(t, 2*limit, limited)

	// The status endpoint shows the shared bucket and consumes nothing.
	for i := 0; i < 5; i++ {
		code, _, b := testenv.Do(t, http.MethodGet, gws[i%3].URL+"/api/rate-limit-status?user=someone-else", nil, "")
		require.Equal(t, http.StatusOK, code)
		var st map[string]any
		require.NoError(t, json.Unmarshal(b, &st))
		require.EqualValues(t, 0, st["remaining"])
		require.Equal(t, "redis", st["backend"])
	}

	// GCRA refills continuously: after Retry-After one more request passes.
	var retry int
	for _, r := range results {
		if r.code == http.StatusTooManyRequests {
			retry, _ = strconv.Atoi(r.hdr.Get("Retry-After"))
			break
		}
	}
	time.Sleep(time.Duration(retry)*time.Second + 100*time.Millisecond)
	code, _, b := post(t, gws[1].URL+"/api/query", nil, query)
	require.Equal(t, http.StatusOK, code, string(b))
}

// TestForwardingHeadersOnlyFromTrustedProxies: with a trusted proxy the
// right-most untrusted X-Forwarded-For address is the key; from an untrusted
// peer the headers are ignored.
func TestForwardingHeadersOnlyFromTrustedProxies(t *testing.T) {
	mock := testenv.StartMock(t)
	trusting := testenv.StartGateway(t, mock.URL, "KEYWARD_RATE_LIMIT=2/60s", "KEYWARD_TRUSTED_PROXIES=127.0.0.1/32")
	// The loopback peer is the trusted proxy; 10.9.9.9 is the client per XFF.
	for i := 0; i < 2; i++ {
		code, _, b := post(t, trusting.URL+"/api/query", map[string]string{"X-Forwarded-For": randomIP() + ", 198.51.100.7"}, query)
		require.Equal(t, http.StatusOK, code, string(b))
	}
	code, _, _ := post(t, trusting.URL+"/api/query", map[string]string{"X-Forwarded-For": "1.1.1.1, 198.51.100.7"}, query)
	require.Equal(t, http.StatusTooManyRequests, code, "same right-most address, same bucket, whatever the client prepends")
	code, _, _ = post(t, trusting.URL+"/api/query", map[string]string{"X-Forwarded-For": "198.51.100.8"}, query)
	require.Equal(t, http.StatusOK, code, "another client behind the proxy has its own bucket")
	code, _, _ = post(t, trusting.URL+"/api/query", map[string]string{"X-Forwarded-For": "::ffff:198.51.100.7"}, query)
	require.Equal(t, http.StatusTooManyRequests, code, "IPv4-mapped IPv6 is the same client")

	untrusting := testenv.StartGateway(t, mock.URL, "KEYWARD_RATE_LIMIT=2/60s")
	for i := 0; i < 2; i++ {
		code, _, _ = post(t, untrusting.URL+"/api/query", map[string]string{"X-Forwarded-For": randomIP(), "X-Real-IP": randomIP()}, query)
		require.Equal(t, http.StatusOK, code)
	}
	code, _, _ = post(t, untrusting.URL+"/api/query", map[string]string{"X-Forwarded-For": "203.0.113.200", "X-Real-IP": "203.0.113.201", "CF-Connecting-IP": "203.0.113.202", "Forwarded": "for=203.0.113.203"}, query)
	require.Equal(t, http.StatusTooManyRequests, code, "an untrusted peer cannot pick its identity")
}

func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "keyward.yaml")
	require.NoError(t, os.WriteFile(p, []byte(yaml), 0o600))
	return p
}
