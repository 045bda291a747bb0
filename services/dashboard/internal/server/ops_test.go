package server

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const testAdminToken = "admin-token-unit-0123456789abcdef"

// fakeAdmin stands in for the gateway's admin API: it checks the bearer
// token the way the gateway does and answers with canned bodies.
type fakeAdmin struct {
	*httptest.Server
	token atomic.Value // string
	calls atomic.Int64
	mu    sync.Mutex
	last  *http.Request
}

func newFakeAdmin(t *testing.T) *fakeAdmin {
	t.Helper()
	f := &fakeAdmin{}
	f.token.Store(testAdminToken)
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.calls.Add(1)
		f.mu.Lock()
		f.last = r.Clone(r.Context())
		f.mu.Unlock()
		// A header the dashboard must never relay.
		w.Header().Set("X-Admin-Echo", r.Header.Get("Authorization"))
		if r.Header.Get("Authorization") != "Bearer "+f.token.Load().(string) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":"unauthorized","message":"send the admin token as Authorization: Bearer <token>"}`)
			return
		}
		switch {
		case r.URL.Path == "/admin/usage" && r.URL.Query().Get("format") == "csv":
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
			w.Header().Set("Content-Disposition", `attachment; filename="keyward-usage.csv"`)
			_, _ = io.WriteString(w, "day,identity,model,cost_usd\n2026-12-04,sub:alice,claude-haiku-4-5,0.001200\n")
		case r.URL.Path == "/admin/usage" && r.URL.Query().Get("from") == "2020-01-01":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":"bad_request","message":"invalid usage query: at most 400 days per query"}`)
		case r.URL.Path == "/admin/usage":
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"backend":"redis","from":"2026-12-04","to":"2026-12-04","group_by":["identity"],"retention_days":35,"rows":[{"identity":"sub:alice","requests":2,"cost_micro_usd":1200,"cost_usd":0.0012}],"total":{"requests":2,"cost_micro_usd":1200,"cost_usd":0.0012}}`)
		case strings.HasPrefix(r.URL.Path, "/admin/identities/"):
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]string{"identity": strings.TrimPrefix(r.URL.Path, "/admin/identities/")})
		default:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"error":"not_found","message":"no such admin endpoint"}`)
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeAdmin) lastRequest() *http.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

func writeTokenFile(t *testing.T, token string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "admin-token")
	require.NoError(t, os.WriteFile(p, []byte(token+"\n"), 0o600))
	return p
}

type opsEnv struct {
	srv   *httptest.Server
	admin *fakeAdmin
	file  string
	logs  *bytes.Buffer
	now   *time.Time
	// seen collects every header and body the "browser" got, to prove
	// the token is in none of them.
	mu   sync.Mutex
	seen strings.Builder
}

func newOpsEnv(t *testing.T, mutate func(*OpsOptions)) *opsEnv {
	t.Helper()
	e := &opsEnv{admin: newFakeAdmin(t), file: writeTokenFile(t, testAdminToken), logs: &bytes.Buffer{}}
	now := time.Date(2026, 12, 4, 19, 0, 0, 0, time.UTC)
	e.now = &now
	tf, err := NewTokenFile(e.file)
	require.NoError(t, err)
	o := &OpsOptions{AdminURL: e.admin.URL, Token: tf.Token}
	if mutate != nil {
		mutate(o)
	}
	s, err := New(Options{
		GatewayURL: "http://127.0.0.1:5001", Ops: o, Now: func() time.Time { return *e.now },
		Logger: slog.New(slog.NewJSONHandler(lockedWriter{&e.mu, e.logs}, nil)),
	})
	require.NoError(t, err)
	e.srv = httptest.NewServer(s.Handler())
	t.Cleanup(e.srv.Close)
	return e
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// browser is a client with a cookie jar, like a browser tab.
func (e *opsEnv) browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &http.Client{Jar: jar, Timeout: 5 * time.Second}
}

func (e *opsEnv) do(t *testing.T, c *http.Client, method, path, ctype, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	e.mu.Lock()
	for k, v := range resp.Header {
		e.seen.WriteString(k + ": " + strings.Join(v, ",") + "\n")
	}
	e.seen.Write(b)
	e.mu.Unlock()
	return resp, string(b)
}

func (e *opsEnv) signIn(t *testing.T, c *http.Client, token string) (*http.Response, string) {
	t.Helper()
	b, err := json.Marshal(map[string]string{"token": token})
	require.NoError(t, err)
	return e.do(t, c, http.MethodPost, "/ops/session", "application/json", string(b))
}

func errorCode(t *testing.T, body string) string {
	t.Helper()
	var e struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &e), "a JSON error: %s", body)
	require.NotEmpty(t, e.Message, "the error says why: %s", body)
	return e.Error
}

func TestOpsWithoutConfigurationSaysHowToEnableIt(t *testing.T) {
	srv := newTestServer(t, Options{})
	for _, path := range []string{"/ops", "/ops/", "/ops/api/usage", "/ops/session"} {
		resp, body := get(t, srv.URL+path)
		require.Equal(t, http.StatusNotFound, resp.StatusCode, path)
		require.Equal(t, "not_found", errorCode(t, body))
		require.Contains(t, body, "DASHBOARD_ADMIN_URL and DASHBOARD_ADMIN_TOKEN_FILE")
	}
}

func TestOpsPageIsServedWithItsOwnStrictCSP(t *testing.T) {
	e := newOpsEnv(t, nil)
	resp, body := e.do(t, e.browser(t), http.MethodGet, "/ops", "", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, body, `<script type="module" src="/static/ops.js"></script>`)
	require.NotContains(t, body, "<script>")
	require.NotContains(t, body, "style=")
	csp := resp.Header.Get("Content-Security-Policy")
	require.Contains(t, csp, "connect-src 'self';", "the operator page talks to its own server only")
	require.Contains(t, csp, "script-src 'self'")
	require.NotContains(t, csp, "unsafe-inline")
	require.NotContains(t, csp, "5001")
	require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	// The page itself is not a static file anyone can fetch around /ops.
	resp, _ = get(t, e.srv.URL+"/static/ops.html")
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	for _, f := range []string{"ops.js", "ops.css"} {
		resp, _ := get(t, e.srv.URL+"/static/"+f)
		require.Equal(t, http.StatusOK, resp.StatusCode, f)
	}
}

func TestOpsAPINeedsASignIn(t *testing.T) {
	e := newOpsEnv(t, nil)
	c := e.browser(t)
	for _, path := range []string{"/ops/api/usage", "/ops/api/usage?format=csv", "/ops/api/identities/sub:alice"} {
		resp, body := e.do(t, c, http.MethodGet, path, "", "")
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, path)
		require.Equal(t, "unauthorized", errorCode(t, body))
	}
	// A made-up cookie is no session either.
	u, _ := url.Parse(e.srv.URL + "/ops")
	c.Jar.SetCookies(u, []*http.Cookie{{Name: opsCookie, Value: "guessed", Path: "/ops"}})
	resp, _ := e.do(t, c, http.MethodGet, "/ops/api/usage", "", "")
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Zero(t, e.admin.calls.Load(), "nothing reached the admin API")

	resp, body := e.do(t, c, http.MethodGet, "/ops/session", "", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.JSONEq(t, `{"signed_in":false}`, body)
}

func TestOpsSignInRefusesAWrongToken(t *testing.T) {
	e := newOpsEnv(t, nil)
	c := e.browser(t)
	for _, tok := range []string{"wrong", testAdminToken + "x", testAdminToken[:len(testAdminToken)-1]} {
		resp, body := e.signIn(t, c, tok)
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		require.Equal(t, "unauthorized", errorCode(t, body))
		require.Empty(t, resp.Header.Values("Set-Cookie"), "no session for a wrong token")
	}
	resp, _ := e.do(t, c, http.MethodGet, "/ops/api/usage", "", "")
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	// Not JSON: a cross-site form cannot post a sign-in.
	resp, body := e.do(t, c, http.MethodPost, "/ops/session", "application/x-www-form-urlencoded", "token="+testAdminToken)
	require.Equal(t, http.StatusUnsupportedMediaType, resp.StatusCode)
	require.Equal(t, "unsupported_media_type", errorCode(t, body))
	for _, bad := range []string{`{`, `{"token":""}`, `{"token":"x","extra":1}`, `[]`} {
		resp, body := e.do(t, c, http.MethodPost, "/ops/session", "application/json", bad)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, bad)
		require.Equal(t, "bad_request", errorCode(t, body))
	}
}

func TestOpsSignInGivesARestrictedSessionCookie(t *testing.T) {
	e := newOpsEnv(t, nil)
	c := e.browser(t)
	resp, body := e.signIn(t, c, testAdminToken)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.JSONEq(t, `{"signed_in":true,"expires_at":"2026-12-05T03:00:00Z"}`, body)
	cookies := resp.Cookies()
	require.Len(t, cookies, 1)
	ck := cookies[0]
	require.Equal(t, opsCookie, ck.Name)
	require.Equal(t, "/ops", ck.Path, "sent to the operator page only, not to the dashboard's other pages")
	require.True(t, ck.HttpOnly, "no script can read it")
	require.Equal(t, http.SameSiteStrictMode, ck.SameSite)
	require.False(t, ck.Secure, "plain HTTP without DASHBOARD_COOKIE_SECURE")
	require.Equal(t, int((8 * time.Hour).Seconds()), ck.MaxAge)
	require.GreaterOrEqual(t, len(ck.Value), 43, "256 random bits")
	require.NotContains(t, ck.Value, testAdminToken)

	resp, body = e.do(t, c, http.MethodGet, "/ops/session", "", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, body, `"signed_in":true`)
	resp, body = e.do(t, c, http.MethodGet, "/ops/api/usage?group_by=identity&top=5", "", "")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.Contains(t, body, `"identity":"sub:alice"`)
	require.Equal(t, "Bearer "+testAdminToken, e.admin.lastRequest().Header.Get("Authorization"), "the server adds the token")
	require.Equal(t, "identity", e.admin.lastRequest().URL.Query().Get("group_by"))
	require.Equal(t, "5", e.admin.lastRequest().URL.Query().Get("top"))

	// The session ends with its lifetime.
	*e.now = e.now.Add(8 * time.Hour)
	resp, _ = e.do(t, c, http.MethodGet, "/ops/api/usage", "", "")
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

func TestOpsCookieIsSecureOverTLSOrWhenConfigured(t *testing.T) {
	e := newOpsEnv(t, func(o *OpsOptions) { o.SecureCookies = true })
	resp, _ := e.signIn(t, e.browser(t), testAdminToken)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.True(t, resp.Cookies()[0].Secure)

	tf, err := NewTokenFile(writeTokenFile(t, testAdminToken))
	require.NoError(t, err)
	s, err := New(Options{GatewayURL: "http://127.0.0.1:5001", Ops: &OpsOptions{AdminURL: "http://127.0.0.1:9", Token: tf.Token}})
	require.NoError(t, err)
	ts := httptest.NewTLSServer(s.Handler())
	defer ts.Close()
	resp, err = ts.Client().Post(ts.URL+"/ops/session", "application/json", strings.NewReader(`{"token":"`+testAdminToken+`"}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.True(t, resp.Cookies()[0].Secure, "Secure over TLS")
}

func TestOpsSignOutEndsTheSession(t *testing.T) {
	e := newOpsEnv(t, nil)
	c, other := e.browser(t), e.browser(t)
	e.signIn(t, c, testAdminToken)
	e.signIn(t, other, testAdminToken)
	resp, _ := e.do(t, c, http.MethodDelete, "/ops/session", "", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, -1, resp.Cookies()[0].MaxAge, "the cookie is cleared")
	resp, _ = e.do(t, c, http.MethodGet, "/ops/api/usage", "", "")
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	resp, _ = e.do(t, other, http.MethodGet, "/ops/api/usage", "", "")
	require.Equal(t, http.StatusOK, resp.StatusCode, "another browser's session is untouched")
}

func TestOpsTokenRotationEndsOldSessions(t *testing.T) {
	e := newOpsEnv(t, nil)
	c := e.browser(t)
	e.signIn(t, c, testAdminToken)
	rotated := "rotated-admin-token-9876543210"
	require.NoError(t, os.WriteFile(e.file, []byte(rotated), 0o600))
	// A later mtime, whatever the filesystem's resolution.
	later := time.Now().Add(time.Minute)
	require.NoError(t, os.Chtimes(e.file, later, later))
	e.admin.token.Store(rotated)

	resp, _ := e.do(t, c, http.MethodGet, "/ops/api/usage", "", "")
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "a session opened with the old token is over")
	resp, _ = e.signIn(t, c, testAdminToken)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	resp, _ = e.signIn(t, c, rotated)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp, body := e.do(t, c, http.MethodGet, "/ops/api/usage", "", "")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.Equal(t, "Bearer "+rotated, e.admin.lastRequest().Header.Get("Authorization"))
}

func TestOpsSignInIsThrottledAfterRepeatedFailures(t *testing.T) {
	e := newOpsEnv(t, nil)
	c := e.browser(t)
	for range maxSignInFailures {
		resp, _ := e.signIn(t, c, "guess")
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	}
	resp, body := e.signIn(t, c, testAdminToken)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "even the right token waits")
	require.Equal(t, "too_many_attempts", errorCode(t, body))
	require.Equal(t, "60", resp.Header.Get("Retry-After"))
	*e.now = e.now.Add(signInFailureWindow)
	resp, _ = e.signIn(t, c, testAdminToken)
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestOpsCSVExportIsPassedThroughAsADownload(t *testing.T) {
	e := newOpsEnv(t, nil)
	c := e.browser(t)
	e.signIn(t, c, testAdminToken)
	resp, body := e.do(t, c, http.MethodGet, "/ops/api/usage?from=2026-11-21&to=2026-12-04&group_by=day,identity,model&format=csv", "", "")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.Equal(t, "text/csv; charset=utf-8", resp.Header.Get("Content-Type"))
	require.Equal(t, `attachment; filename="keyward-usage-2026-11-21-2026-12-04.csv"`, resp.Header.Get("Content-Disposition"))
	require.Equal(t, "day,identity,model,cost_usd\n2026-12-04,sub:alice,claude-haiku-4-5,0.001200\n", body)
	q := e.admin.lastRequest().URL.Query()
	require.Equal(t, "csv", q.Get("format"))
	require.Equal(t, "2026-11-21", q.Get("from"))
	require.Equal(t, "day,identity,model", q.Get("group_by"))
}

func TestOpsBadUsageQueriesAreRefusedWithReasons(t *testing.T) {
	e := newOpsEnv(t, nil)
	c := e.browser(t)
	e.signIn(t, c, testAdminToken)
	tests := []struct{ query, want string }{
		{"from=2026-13-01", "from must be a date YYYY-MM-DD"},
		{"to=yesterday", "to must be a date YYYY-MM-DD"},
		{"from=2026-12-04&to=2026-12-01", "to (2026-12-01) is before from (2026-12-04)"},
		{"group_by=identity,user", `group_by "user"`},
		{"top=0", "top must be an integer from 1 to 10000"},
		{"top=many", "top must be an integer"},
		{"format=xml", "format must be json or csv"},
		{"limit=5", `unknown parameter "limit"`},
		{"from=2026-12-01&from=2026-12-02", "give from once"},
		{"identity=" + strings.Repeat("a", 513), "at most 512 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.query[:min(len(tt.query), 30)], func(t *testing.T) {
			resp, body := e.do(t, c, http.MethodGet, "/ops/api/usage?"+tt.query, "", "")
			require.Equal(t, http.StatusBadRequest, resp.StatusCode, body)
			require.Equal(t, "bad_request", errorCode(t, body))
			var e struct{ Message string }
			require.NoError(t, json.Unmarshal([]byte(body), &e))
			require.Contains(t, e.Message, tt.want)
		})
	}
	require.Zero(t, e.admin.calls.Load(), "refused before reaching the gateway")

	// What only the gateway can judge comes back as the gateway said it.
	resp, body := e.do(t, c, http.MethodGet, "/ops/api/usage?from=2020-01-01&to=2026-12-04", "", "")
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Contains(t, body, "at most 400 days per query")
}

func TestOpsExplainsAGatewayThatRefusesOrIsDown(t *testing.T) {
	e := newOpsEnv(t, nil)
	c := e.browser(t)
	e.signIn(t, c, testAdminToken)
	e.admin.token.Store("the-gateway-has-another-token")
	resp, body := e.do(t, c, http.MethodGet, "/ops/api/usage", "", "")
	require.Equal(t, http.StatusBadGateway, resp.StatusCode)
	require.Equal(t, "admin_token_rejected", errorCode(t, body))
	require.Contains(t, body, "KEYWARD_ADMIN_TOKEN_FILE")
	resp, _ = e.do(t, c, http.MethodGet, "/ops/session", "", "")
	require.Equal(t, http.StatusOK, resp.StatusCode, "the operator stays signed in: the fault is the configuration")

	e.admin.token.Store(testAdminToken)
	e.admin.Close()
	resp, body = e.do(t, c, http.MethodGet, "/ops/api/usage", "", "")
	require.Equal(t, http.StatusBadGateway, resp.StatusCode)
	require.Equal(t, "gateway_unavailable", errorCode(t, body))
}

func TestOpsIdentityDetailsAreProxied(t *testing.T) {
	e := newOpsEnv(t, nil)
	c := e.browser(t)
	e.signIn(t, c, testAdminToken)
	for id, want := range map[string]string{"sub:alice": "/admin/identities/sub:alice", "ip:2001:db8::/64": "/admin/identities/ip:2001:db8::/64"} {
		resp, body := e.do(t, c, http.MethodGet, "/ops/api/identities/"+url.PathEscape(id), "", "")
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
		require.Equal(t, want, e.admin.lastRequest().URL.Path)
		require.Contains(t, body, id)
	}
	before := e.admin.calls.Load()
	for _, bad := range []string{"%2E%2E%2F%2E%2E%2Fadmin%2Frevocations", "sub:a%2F..%2F..%2Fusage", ""} {
		resp, body := e.do(t, c, http.MethodGet, "/ops/api/identities/"+bad, "", "")
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s: %s", bad, body)
		require.Equal(t, "bad_request", errorCode(t, body))
	}
	require.Equal(t, before, e.admin.calls.Load(), "nothing left /admin/identities/")
}

// TestOpsTokenNeverReachesTheBrowserOrTheLogs walks every answer a browser
// can get, good and bad, and looks for the token in all headers and bodies.
func TestOpsTokenNeverReachesTheBrowserOrTheLogs(t *testing.T) {
	e := newOpsEnv(t, nil)
	c := e.browser(t)
	e.do(t, c, http.MethodGet, "/ops", "", "")
	e.do(t, c, http.MethodGet, "/ops/api/usage", "", "")
	e.signIn(t, c, "wrong")
	e.signIn(t, c, testAdminToken)
	for _, p := range []string{"/ops", "/ops/session", "/ops/api/usage", "/ops/api/usage?format=csv", "/ops/api/usage?format=xml",
		"/ops/api/usage?from=2020-01-01", "/ops/api/identities/sub:alice", "/ops/nothing", "/", "/config.json", "/static/ops.js"} {
		resp, _ := e.do(t, c, http.MethodGet, p, "", "")
		require.Less(t, resp.StatusCode, 500, p)
	}
	e.admin.token.Store("other")
	e.do(t, c, http.MethodGet, "/ops/api/usage", "", "")
	e.do(t, c, http.MethodDelete, "/ops/session", "", "")

	e.mu.Lock()
	defer e.mu.Unlock()
	seen := e.seen.String()
	require.Contains(t, seen, "sub:alice", "the walk saw real answers")
	require.NotContains(t, seen, testAdminToken)
	require.NotContains(t, seen, "X-Admin-Echo", "the gateway's headers are not relayed")
	require.Contains(t, e.logs.String(), "operator signed in")
	require.NotContains(t, e.logs.String(), testAdminToken)
}

func TestTokenFile(t *testing.T) {
	dir := t.TempDir()
	_, err := NewTokenFile(filepath.Join(dir, "missing"))
	require.ErrorContains(t, err, "reading the admin token file")
	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(empty, []byte(" \n"), 0o600))
	_, err = NewTokenFile(empty)
	require.ErrorContains(t, err, "the file is empty")

	p := writeTokenFile(t, "  first-token \n")
	f, err := NewTokenFile(p)
	require.NoError(t, err)
	tok, err := f.Token()
	require.NoError(t, err)
	require.Equal(t, "first-token", tok, "surrounding space is not part of the token")

	// While a secret is swapped the file may vanish: the last token holds.
	require.NoError(t, os.Remove(p))
	tok, err = f.Token()
	require.NoError(t, err)
	require.Equal(t, "first-token", tok)
	require.NoError(t, os.WriteFile(p, []byte("second-token-longer"), 0o600))
	tok, err = f.Token()
	require.NoError(t, err)
	require.Equal(t, "second-token-longer", tok)
}
