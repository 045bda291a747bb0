package e2e

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/pkg/auth"
	"github.com/keyward/keyward/pkg/redistest"
	"github.com/keyward/keyward/services/gateway/internal/testenv"
)

const (
	hmacOld = "ci-2026a"
	hmacNew = "ci-2026b"
	secOld  = "old-secret-old-secret-old-secret-0123456789"
	secNew  = "new-secret-new-secret-new-secret-0123456789"
)

func signed(t *testing.T, kid, secret, method, url, body string, mutate func(*http.Request)) *http.Request {
	t.Helper()
	return signedAt(t, time.Now(), kid, secret, method, url, body, mutate)
}

func signedAt(t *testing.T, at time.Time, kid, secret, method, url, body string, mutate func(*http.Request)) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	require.NoError(t, auth.Signer{KeyID: kid, Secret: []byte(secret), Now: func() time.Time { return at }}.Sign(req, []byte(body)))
	if mutate != nil {
		mutate(req)
	}
	return req
}

func send(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestHMACSignedRequestsAcrossReplicas: valid signatures pass (old and new
// key during rotation); any change to body, method or path, a stale
// timestamp, a malformed signature, or a replay to another replica sharing
// Redis is a 401 — never a 500.
func TestHMACSignedRequestsAcrossReplicas(t *testing.T) {
	rds := redistest.Start(t)
	mock := testenv.StartMock(t)
	keys := filepath.Join(t.TempDir(), "hmac-keys")
	require.NoError(t, os.WriteFile(keys, []byte("# rotation: both valid\n"+hmacOld+":"+secOld+"\n"+hmacNew+":"+secNew+"\n"), 0o600))
	a := testenv.StartGateway(t, mock.URL, "KEYWARD_REDIS_URL="+rds.URL(), "KEYWARD_HMAC_KEYS_FILE="+keys, "KEYWARD_AUTH_REQUIRED=true")
	b := testenv.StartGateway(t, mock.URL, "KEYWARD_REDIS_URL="+rds.URL(), "KEYWARD_HMAC_KEYS_FILE="+keys, "KEYWARD_AUTH_REQUIRED=true")

	code, body := send(t, signedAt(t, time.Now().Add(-290*time.Second), hmacOld, secOld, "POST", a.URL+"/api/query", query, nil))
	require.Equal(t, http.StatusOK, code, "inside the ±300 s window: %s", body)
	for _, k := range [][2]string{{hmacOld, secOld}, {hmacNew, secNew}} {
		code, body = send(t, signed(t, k[0], k[1], "POST", a.URL+"/api/query", query, nil))
		require.Equal(t, http.StatusOK, code, "%s: %s", k[0], body)
	}

	replay := signed(t, hmacNew, secNew, "POST", a.URL+"/api/query", query, nil)
	code, _ = send(t, replay.Clone(replay.Context()))
	require.Equal(t, http.StatusOK, code)
	again, _ := http.NewRequest("POST", b.URL+"/api/query", strings.NewReader(query))
	again.Header = replay.Header.Clone()
	code, _ = send(t, again)
	require.Equal(t, http.StatusUnauthorized, code, "a replay to the other replica is refused: the nonce is shared in Redis")

	cases := map[string]*http.Request{
		"body byte flipped": signed(t, hmacNew, secNew, "POST", a.URL+"/api/query", query, func(r *http.Request) {
			r.Body = io.NopCloser(strings.NewReader(strings.Replace(query, "12", "13", 1)))
			r.ContentLength = int64(len(query))
		}),
		"other path": signed(t, hmacNew, secNew, "POST", a.URL+"/api/query", query, func(r *http.Request) {
			r.URL.Path = "/api/analytics-query"
		}),
		"other method": signed(t, hmacNew, secNew, "POST", a.URL+"/api/rate-limit-status", "", func(r *http.Request) {
			r.Method = "GET"
		}),
		"signed 301s ago":           signedAt(t, time.Now().Add(-301*time.Second), hmacNew, secNew, "POST", a.URL+"/api/query", query, nil),
		"signed 301s in the future": signedAt(t, time.Now().Add(301*time.Second), hmacNew, secNew, "POST", a.URL+"/api/query", query, nil),
		"timestamp edited after signing": signed(t, hmacNew, secNew, "POST", a.URL+"/api/query", query, func(r *http.Request) {
			r.Header.Set("X-Keyward-Timestamp", strconv.FormatInt(time.Now().Unix()+1, 10))
		}),
		"malformed signature": signed(t, hmacNew, secNew, "POST", a.URL+"/api/query", query, func(r *http.Request) {
			r.Header.Set("X-Keyward-Signature", "v1=zz-not-hex")
		}),
		"unknown key id": signed(t, "nobody", secNew, "POST", a.URL+"/api/query", query, nil),
		"wrong secret":   signed(t, hmacNew, secOld, "POST", a.URL+"/api/query", query, nil),
	}
	for name, req := range cases {
		code, body := send(t, req)
		require.Equal(t, http.StatusUnauthorized, code, "%s: %s", name, body)
	}
	require.Greater(t, a.Metric(t, "keyward_auth_failures_total", `reason="bad_timestamp"`), 0.0)
	require.Greater(t, b.Metric(t, "keyward_auth_failures_total", `reason="replay"`), 0.0)

	// Redis down: signatures cannot be checked for replays, so fail closed.
	rds.Stop()
	code, body = send(t, signed(t, hmacNew, secNew, "POST", a.URL+"/api/query", query, nil))
	require.Equal(t, http.StatusServiceUnavailable, code, body)

	a.Stop() // flush every log line before searching them
	b.Stop()
	require.NotContains(t, a.Logs()+b.Logs(), secNew)
}

// TestIPAllowlistIgnoresSpoofedHeaders: an untrusted peer cannot get past
// the allowlist by claiming an allowed address in forwarding headers.
func TestIPAllowlistIgnoresSpoofedHeaders(t *testing.T) {
	mock := testenv.StartMock(t)
	gw := testenv.StartGateway(t, mock.URL, "KEYWARD_IP_ALLOWLIST=203.0.113.0/24")
	code, _, b := post(t, gw.URL+"/api/query", map[string]string{
		"X-Forwarded-For": "203.0.113.5", "X-Real-IP": "203.0.113.5", "Forwarded": "for=203.0.113.5", "CF-Connecting-IP": "203.0.113.5",
	}, query)
	require.Equal(t, http.StatusForbidden, code, string(b))
	require.Contains(t, string(b), "not allowed")
	require.Equal(t, 1.0, gw.Metric(t, "keyward_auth_failures_total", `reason="ip_denied"`))

	// Behind a trusted proxy, the forwarded address is the one checked.
	proxied := testenv.StartGateway(t, mock.URL, "KEYWARD_IP_ALLOWLIST=203.0.113.0/24", "KEYWARD_TRUSTED_PROXIES=127.0.0.1")
	code, _, b = post(t, proxied.URL+"/api/query", map[string]string{"X-Forwarded-For": "203.0.113.5"}, query)
	require.Equal(t, http.StatusOK, code, string(b))
	code, _, _ = post(t, proxied.URL+"/api/query", map[string]string{"X-Forwarded-For": "198.51.100.1"}, query)
	require.Equal(t, http.StatusForbidden, code)
}

// TestTokenCommandAndTiers: `gateway token` mints a token the gateway
// accepts, and its tier claim selects the tier's limits.
func TestTokenCommandAndTiers(t *testing.T) {
	mock := testenv.StartMock(t)
	cfg := writeConfig(t, `
limits:
  requests: "2/60s"
tiers:
  pro:
    requests: "5/60s"
`)
	gw := testenv.StartGateway(t, mock.URL, "KEYWARD_CONFIG="+cfg, "KEYWARD_RATE_LIMIT=", "KEYWARD_JWT_SECRET="+jwtSecret)
	mint := func(args ...string) string {
		cmd := exec.Command(filepath.Join(testenv.Binaries(t), "gateway"), append([]string{"token"}, args...)...)
		cmd.Env = []string{"KEYWARD_JWT_SECRET=" + jwtSecret}
		cmd.Dir = t.TempDir()
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		require.NoError(t, cmd.Run(), errb.String())
		return strings.TrimSpace(out.String())
	}
	pro := mint("--sub", "carol", "--ttl", "10m", "--tier", "pro")
	free := mint("--sub", "dave", "--ttl", "10m")
	count := func(tok string) int {
		n := 0
		for i := 0; i < 7; i++ {
			c, _, _ := post(t, gw.URL+"/api/query", map[string]string{"Authorization": "Bearer " + tok}, query)
			if c == http.StatusOK {
				n++
			}
		}
		return n
	}
	require.Equal(t, 5, count(pro), "the pro tier allows 5 per window")
	require.Equal(t, 2, count(free), "the default tier allows 2, in its own bucket (identity = sub)")
	_, _, b := testenv.Do(t, http.MethodGet, gw.URL+"/api/rate-limit-status", map[string]string{"Authorization": "Bearer " + pro}, "")
	require.Contains(t, string(b), `"tier":"pro"`)
	require.Contains(t, string(b), `"identity":"jwt"`)
}
