package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/pkg/auth"
	"github.com/keyward/keyward/services/dashboard/internal/web"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef-dev")

func newTestServer(t *testing.T, opts Options) *httptest.Server {
	t.Helper()
	if opts.GatewayURL == "" {
		opts.GatewayURL = "http://127.0.0.1:5001"
	}
	s, err := New(opts)
	require.NoError(t, err)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

func TestNewValidatesOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{"no gateway", Options{}, "checking gateway URL"},
		{"TTL too long", Options{GatewayURL: "http://gw:5001", TokenTTL: time.Hour}, "must be between 1m and 15m0s"},
		{"TTL too short", Options{GatewayURL: "http://gw:5001", TokenTTL: time.Second}, "must be between"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opts)
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestPageIsServedWithStrictCSP(t *testing.T) {
	srv := newTestServer(t, Options{GatewayURL: "https://keyward.example.com:8443/base/"})
	for _, path := range []string{"/", "/index.html"} {
		resp, body := get(t, srv.URL+path)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
		require.Contains(t, body, `<script type="module" src="/static/app.js"></script>`)
		csp := resp.Header.Get("Content-Security-Policy")
		require.Contains(t, csp, "script-src 'self';")
		require.Contains(t, csp, "connect-src 'self' https://keyward.example.com:8443;")
		require.Contains(t, csp, "default-src 'none'")
		require.Contains(t, csp, "frame-ancestors 'none'")
		require.NotContains(t, csp, "unsafe-inline")
		require.NotContains(t, csp, "unsafe-eval")
		require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
		require.Equal(t, "no-referrer", resp.Header.Get("Referrer-Policy"))
	}
}

// The CSP forbids inline script and style, so the page must not rely on
// any: an inline handler would silently do nothing in the browser.
func TestPageHasNoInlineScriptOrStyle(t *testing.T) {
	for _, page := range []string{"index.html", "ops.html"} {
		html, err := fs.ReadFile(web.FS(), page)
		require.NoError(t, err)
		for _, m := range regexp.MustCompile(`(?is)<script\b[^>]*>`).FindAllString(string(html), -1) {
			require.Contains(t, m, `src="/static/`, "%s: inline script: %s", page, m)
		}
		require.NotRegexp(t, `(?is)<script\b[^>]*>\s*[^<\s]`, string(html), "%s: script element with a body", page)
		require.NotRegexp(t, `(?i)\son[a-z]+\s*=`, string(html), "%s: inline event handler", page)
		require.NotRegexp(t, `(?i)\sstyle\s*=`, string(html), "%s: inline style attribute", page)
		require.NotRegexp(t, `(?i)<style\b`, string(html), "%s: style element", page)
		require.NotRegexp(t, `(?i)javascript:`, string(html), page)
	}
	for _, script := range []string{"app.js", "ops.js"} {
		js, err := fs.ReadFile(web.FS(), script)
		require.NoError(t, err)
		require.NotRegexp(t, `\beval\(|new Function\(|\.innerHTML\s*=|insertAdjacentHTML|document\.write`, string(js),
			"%s must build DOM from text, never from HTML strings: answers and identities are untrusted", script)
	}
}

func TestEmbeddedFilesCarryNoKeyMaterial(t *testing.T) {
	err := fs.WalkDir(web.FS(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(web.FS(), path)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), "sk-ant") || strings.Contains(string(b), "x-api-key") || strings.Contains(string(b), "ANTHROPIC_API_KEY") {
			return errors.New(path + " mentions key material")
		}
		return nil
	})
	require.NoError(t, err)
}

func TestStaticFiles(t *testing.T) {
	srv := newTestServer(t, Options{})
	tests := []struct {
		path, ctype string
		status      int
	}{
		{"/static/app.js", "text/javascript; charset=utf-8", 200},
		{"/static/app.css", "text/css; charset=utf-8", 200},
		{"/static/favicon.svg", "image/svg+xml", 200},
		{"/static/missing.js", "text/plain; charset=utf-8", 404},
		{"/static/..%2fweb.go", "text/plain; charset=utf-8", 404},
		{"/static/index.html", "text/plain; charset=utf-8", 404},
		{"/static/", "text/plain; charset=utf-8", 404},
		{"/nope", "text/plain; charset=utf-8", 404},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, _ := get(t, srv.URL+tt.path)
			require.Equal(t, tt.status, resp.StatusCode)
			require.Equal(t, tt.ctype, resp.Header.Get("Content-Type"))
			require.NotEmpty(t, resp.Header.Get("Content-Security-Policy"), "every response carries the CSP")
		})
	}
}

func TestWrongMethodIsRefused(t *testing.T) {
	srv := newTestServer(t, Options{})
	resp, err := http.Post(srv.URL+"/", "application/json", strings.NewReader("{}"))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)

	resp, body := get(t, srv.URL+"/token")
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, body)
}

func TestConfigTellsThePageWhereTheGatewayIs(t *testing.T) {
	srv := newTestServer(t, Options{GatewayURL: "http://127.0.0.1:5001/", Version: "1.2.3"})
	resp, body := get(t, srv.URL+"/config.json")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	require.JSONEq(t, `{"gateway_url":"http://127.0.0.1:5001","auth":false,"version":"1.2.3"}`, body)

	srv = newTestServer(t, Options{Mint: func(string, time.Duration) (string, error) { return "t", nil }})
	_, body = get(t, srv.URL+"/config.json")
	require.Contains(t, body, `"auth":true`)
}

func TestHealth(t *testing.T) {
	srv := newTestServer(t, Options{Version: "v9"})
	resp, body := get(t, srv.URL+"/health")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.JSONEq(t, `{"status":"healthy","version":"v9"}`, body)
}

func TestTokenEndpointWithoutSecretSaysSo(t *testing.T) {
	srv := newTestServer(t, Options{})
	resp, err := http.Post(srv.URL+"/token", "", nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	b, _ := io.ReadAll(resp.Body)
	require.Contains(t, string(b), "DASHBOARD_JWT_SECRET is not set")
}

// The token the page gets must be accepted by the gateway's own verifier,
// be short-lived and be tied to the visitor, not to a fresh random identity.
func TestTokenIsShortLivedAndAcceptedByTheGatewayVerifier(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	cfg := Config{JWTSecret: testSecret, JWTIssuer: "keyward-dashboard", JWTAudience: "keyward"}
	srv := newTestServer(t, Options{Mint: HS256Minter(cfg, func() time.Time { return now }), TokenTTL: 5 * time.Minute, Now: func() time.Time { return now }})

	resp, err := http.Post(srv.URL+"/token", "", nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	var tok tokenResponse
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&tok))
	require.Equal(t, "dashboard:127.0.0.1", tok.Subject)
	require.Equal(t, int64(300), tok.ExpiresIn)
	require.Equal(t, now.Add(5*time.Minute).Unix(), tok.ExpiresAt)

	v, err := auth.NewJWTVerifier(context.Background(), auth.JWTConfig{Secret: testSecret, Issuer: "keyward-dashboard", Audience: "keyward", Now: func() time.Time { return now }})
	require.NoError(t, err)
	defer v.Close()
	id, err := v.Verify(context.Background(), tok.Token)
	require.NoError(t, err)
	require.Equal(t, "dashboard:127.0.0.1", id.Subject)

	// Six minutes on, the same token is refused.
	late, err := auth.NewJWTVerifier(context.Background(), auth.JWTConfig{Secret: testSecret, Issuer: "keyward-dashboard", Audience: "keyward", Now: func() time.Time { return now.Add(6 * time.Minute) }})
	require.NoError(t, err)
	defer late.Close()
	_, err = late.Verify(context.Background(), tok.Token)
	require.ErrorIs(t, err, auth.ErrUnauthenticated)

	// A forged forwarding header does not change whose quota is used.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/token", nil)
	req.Header.Set("X-Forwarded-For", "203.0.113.7")
	resp2, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp2.Body.Close()
	var tok2 tokenResponse
	require.NoError(t, json.NewDecoder(resp2.Body).Decode(&tok2))
	require.Equal(t, "dashboard:127.0.0.1", tok2.Subject)
}

func TestTokenMintFailureIsReportedWithoutDetail(t *testing.T) {
	srv := newTestServer(t, Options{Mint: func(string, time.Duration) (string, error) {
		return "", errors.New("minting token: secret is 3 bytes")
	}})
	resp, err := http.Post(srv.URL+"/token", "", nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	require.NotContains(t, string(b), "secret")
}
