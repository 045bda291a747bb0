package server

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The operator page (/ops) shows the gateway's usage ledger. The browser
// never holds the admin token: the operator types it once, this server
// compares it with DASHBOARD_ADMIN_TOKEN_FILE and answers with a session
// cookie (HttpOnly, SameSite=Strict, Path=/ops); /ops/api/* then asks the
// gateway's admin API with the token added here.

const (
	opsCookie = "keyward_ops"
	opsPath   = "/ops"
	// DefaultOpsSessionTTL: a working day, after which the operator signs
	// in again.
	DefaultOpsSessionTTL = 8 * time.Hour
	// maxOpsSessions bounds the session table against sign-in floods.
	maxOpsSessions = 1000
	// Sign-in attempts that fail are limited per client address, so the
	// token cannot be guessed through the page at any useful rate.
	maxSignInFailures   = 10
	signInFailureWindow = time.Minute
	// maxAdminAnswer bounds what is relayed from the admin API (a CSV of
	// 400 days of every identity and model stays well below it).
	maxAdminAnswer = 64 << 20
)

// OpsOptions switches the operator page on.
type OpsOptions struct {
	// AdminURL is the gateway's admin listener, e.g. http://gateway:9464.
	AdminURL string
	// Token returns the gateway's admin token (a *TokenFile's Token).
	Token func() (string, error)
	// SecureCookies marks the session cookie Secure on plain HTTP too
	// (behind a TLS-terminating proxy).
	SecureCookies bool
	// SessionTTL is how long a sign-in lasts (default DefaultOpsSessionTTL).
	SessionTTL time.Duration
	// Client calls the admin API (default: 15 s timeout, no proxy from the
	// environment, no redirects, so the token goes nowhere else).
	Client *http.Client
}

type opsSession struct {
	expires time.Time
	token   [32]byte // hash of the admin token it was opened with
}

type opsFailures struct {
	n     int
	since time.Time
}

type ops struct {
	admin  string
	token  func() (string, error)
	secure bool
	ttl    time.Duration
	client *http.Client
	srv    *Server
	page   []byte

	mu       sync.Mutex
	sessions map[[32]byte]opsSession // by hash of the cookie's value
	failures map[string]opsFailures  // by client address
}

func newOps(s *Server, o OpsOptions, page []byte) (*ops, error) {
	if _, err := gatewayOrigin(o.AdminURL); err != nil {
		return nil, fmt.Errorf("checking admin URL: %w", err)
	}
	if o.Token == nil {
		return nil, fmt.Errorf("the operator page needs the admin token")
	}
	if o.SessionTTL == 0 {
		o.SessionTTL = DefaultOpsSessionTTL
	}
	if o.Client == nil {
		o.Client = &http.Client{
			Timeout:   15 * time.Second,
			Transport: &http.Transport{Proxy: nil, ResponseHeaderTimeout: 10 * time.Second, MaxIdleConnsPerHost: 4},
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	return &ops{
		admin: strings.TrimRight(o.AdminURL, "/"), token: o.Token, secure: o.SecureCookies,
		ttl: o.SessionTTL, client: o.Client, srv: s, page: page,
		sessions: map[[32]byte]opsSession{}, failures: map[string]opsFailures{},
	}, nil
}

func (o *ops) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /ops", o.handlePage)
	mux.HandleFunc("GET /ops/{$}", o.handlePage)
	mux.HandleFunc("GET /ops/session", o.handleSession)
	mux.HandleFunc("POST /ops/session", o.handleSignIn)
	mux.HandleFunc("DELETE /ops/session", o.handleSignOut)
	mux.HandleFunc("GET /ops/api/usage", o.signedIn(o.handleUsage))
	// {identity...}: an IPv6 identity is a /64 prefix ("ip:2001:db8::/64").
	mux.HandleFunc("GET /ops/api/identities/{identity...}", o.signedIn(o.handleIdentity))
	mux.HandleFunc("/ops/", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not_found", "message": "no such operator endpoint (GET /ops/api/usage, GET /ops/api/identities/{identity}, GET|POST|DELETE /ops/session)"})
	})
}

// opsDisabled answers every /ops path of a dashboard without the page.
func opsDisabled(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusNotFound, map[string]string{
		"error":   "not_found",
		"message": "the operator page is not enabled on this dashboard (set DASHBOARD_ADMIN_URL and DASHBOARD_ADMIN_TOKEN_FILE)",
	})
}

func isOpsPath(p string) bool { return p == opsPath || strings.HasPrefix(p, opsPath+"/") }

func (o *ops) handlePage(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(o.page)
}

func hashOf(s string) [32]byte { return sha256.Sum256([]byte(s)) }

func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// current returns the signed-in session of r, if any. A session opened with
// an admin token that has since been rotated is over.
func (o *ops) current(r *http.Request) (opsSession, bool) {
	c, err := r.Cookie(opsCookie)
	if err != nil || c.Value == "" || len(c.Value) > 128 {
		return opsSession{}, false
	}
	tok, err := o.token()
	if err != nil {
		return opsSession{}, false
	}
	want := hashOf(tok)
	key := hashOf(c.Value)
	now := o.srv.now()
	o.mu.Lock()
	defer o.mu.Unlock()
	sess, ok := o.sessions[key]
	if !ok {
		return opsSession{}, false
	}
	if !now.Before(sess.expires) || subtle.ConstantTimeCompare(sess.token[:], want[:]) != 1 {
		delete(o.sessions, key)
		return opsSession{}, false
	}
	return sess, true
}

func (o *ops) signedIn(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, ok := o.current(r); !ok {
			writeJSON(w, http.StatusUnauthorized, map[string]string{
				"error": "unauthorized", "message": "sign in on the operator page with the gateway's admin token",
			})
			return
		}
		next(w, r)
	}
}

type sessionState struct {
	SignedIn  bool   `json:"signed_in"`
	ExpiresAt string `json:"expires_at,omitempty"`
}

func (o *ops) handleSession(w http.ResponseWriter, r *http.Request) {
	sess, ok := o.current(r)
	if !ok {
		writeJSON(w, http.StatusOK, sessionState{})
		return
	}
	writeJSON(w, http.StatusOK, sessionState{SignedIn: true, ExpiresAt: sess.expires.UTC().Format(time.RFC3339)})
}

// throttled reports whether addr failed too often lately, and for how long
// it must wait.
func (o *ops) throttled(addr string, now time.Time) (time.Duration, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	f, ok := o.failures[addr]
	if !ok || now.Sub(f.since) >= signInFailureWindow {
		return 0, false
	}
	if f.n < maxSignInFailures {
		return 0, false
	}
	return signInFailureWindow - now.Sub(f.since), true
}

func (o *ops) failed(addr string, now time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.failures) > 10000 {
		for a, f := range o.failures {
			if now.Sub(f.since) >= signInFailureWindow {
				delete(o.failures, a)
			}
		}
	}
	f := o.failures[addr]
	if now.Sub(f.since) >= signInFailureWindow {
		f = opsFailures{since: now}
	}
	f.n++
	o.failures[addr] = f
}

func (o *ops) handleSignIn(w http.ResponseWriter, r *http.Request) {
	// A JSON body means a cross-site form cannot post here: the browser
	// would have to ask first (CORS preflight), and this server never agrees.
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		writeJSON(w, http.StatusUnsupportedMediaType, map[string]string{"error": "unsupported_media_type", "message": `send {"token": "<admin token>"} as application/json`})
		return
	}
	addr, now := clientAddr(r), o.srv.now()
	if wait, ok := o.throttled(addr, now); ok {
		w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
		writeJSON(w, http.StatusTooManyRequests, map[string]string{"error": "too_many_attempts", "message": "too many wrong admin tokens from this address; try again in a minute"})
		return
	}
	var body struct {
		Token string `json:"token"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || strings.TrimSpace(body.Token) == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad_request", "message": `body must be JSON: {"token": "<admin token>"}`})
		return
	}
	want, err := o.token()
	if err != nil {
		o.srv.log.Error("operator sign-in impossible", "error", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "unavailable", "message": "the dashboard cannot read its admin token file"})
		return
	}
	// Both sides hashed first: the compare takes the same time whatever the lengths.
	got, wh := hashOf(strings.TrimSpace(body.Token)), hashOf(want)
	if subtle.ConstantTimeCompare(got[:], wh[:]) != 1 {
		o.failed(addr, now)
		o.srv.log.Warn("operator sign-in refused", "client", addr)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized", "message": "that is not the gateway's admin token"})
		return
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "unavailable", "message": "the dashboard could not open a session"})
		return
	}
	id := base64.RawURLEncoding.EncodeToString(raw[:])
	sess := opsSession{expires: now.Add(o.ttl), token: wh}
	o.mu.Lock()
	if len(o.sessions) >= maxOpsSessions {
		for k, s := range o.sessions {
			if !now.Before(s.expires) {
				delete(o.sessions, k)
			}
		}
	}
	if len(o.sessions) >= maxOpsSessions {
		// Drop one at random (map order) rather than refuse the operator.
		for k := range o.sessions {
			delete(o.sessions, k)
			break
		}
	}
	o.sessions[hashOf(id)] = sess
	o.mu.Unlock()
	o.srv.log.Info("operator signed in", "client", addr)
	http.SetCookie(w, o.cookie(r, id, int(o.ttl.Seconds())))
	writeJSON(w, http.StatusOK, sessionState{SignedIn: true, ExpiresAt: sess.expires.UTC().Format(time.RFC3339)})
}

func (o *ops) handleSignOut(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(opsCookie); err == nil {
		o.mu.Lock()
		delete(o.sessions, hashOf(c.Value))
		o.mu.Unlock()
	}
	http.SetCookie(w, o.cookie(r, "", -1))
	writeJSON(w, http.StatusOK, sessionState{})
}

// cookie is the session cookie: never readable by script (HttpOnly), never
// sent on a request another site starts (SameSite=Strict), never sent to
// the dashboard's other pages (Path=/ops).
func (o *ops) cookie(r *http.Request, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name: opsCookie, Value: value, Path: opsPath, MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: o.secure || r.TLS != nil,
	}
}

// usageParams are the query parameters /ops/api/usage passes on.
var usageParams = map[string]bool{"from": true, "to": true, "identity": true, "group_by": true, "top": true, "format": true}

var groupNames = map[string]bool{"identity": true, "model": true, "day": true, "tier": true}

// checkUsage validates the query before it goes to the gateway, so the
// operator gets a clear answer for a typo; the gateway checks the range.
func checkUsage(q url.Values) error {
	for k, v := range q {
		if !usageParams[k] {
			return fmt.Errorf("unknown parameter %q (use from, to, identity, group_by, top, format)", k)
		}
		if len(v) != 1 {
			return fmt.Errorf("give %s once", k)
		}
	}
	var from, to time.Time
	for _, d := range []struct {
		name string
		t    *time.Time
	}{{"from", &from}, {"to", &to}} {
		if v := q.Get(d.name); v != "" {
			t, err := time.Parse(time.DateOnly, v)
			if err != nil {
				return fmt.Errorf("%s must be a date YYYY-MM-DD", d.name)
			}
			*d.t = t
		}
	}
	if !from.IsZero() && !to.IsZero() && to.Before(from) {
		return fmt.Errorf("to (%s) is before from (%s)", q.Get("to"), q.Get("from"))
	}
	if g := q.Get("group_by"); g != "" {
		for _, f := range strings.Split(g, ",") {
			if !groupNames[strings.TrimSpace(f)] {
				return fmt.Errorf("group_by %q: use identity, model, day, tier (comma separated)", f)
			}
		}
	}
	if v := q.Get("top"); v != "" {
		if n, err := strconv.Atoi(v); err != nil || n < 1 || n > 10000 {
			return fmt.Errorf("top must be an integer from 1 to 10000")
		}
	}
	if f := q.Get("format"); f != "" && f != "json" && f != "csv" {
		return fmt.Errorf("format must be json or csv")
	}
	if len(q.Get("identity")) > 512 {
		return fmt.Errorf("identity must be at most 512 bytes")
	}
	return nil
}

func (o *ops) handleUsage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if err := checkUsage(q); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad_request", "message": err.Error()})
		return
	}
	name := ""
	if q.Get("format") == "csv" {
		name = "keyward-usage"
		for _, k := range []string{"from", "to"} {
			if v := q.Get(k); v != "" {
				name += "-" + v // a validated date: safe in the header
			}
		}
		name += ".csv"
	}
	o.forward(w, r, "/admin/usage", q, name)
}

func (o *ops) handleIdentity(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("identity")
	if id == "" || len(id) > 512 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad_request", "message": "identity must be 1 to 512 bytes, e.g. sub:alice"})
		return
	}
	// An escaped "../" would otherwise walk out of /admin/identities/ at the gateway.
	for _, seg := range strings.Split(id, "/") {
		if seg == "." || seg == ".." {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad_request", "message": "identity must not contain . or .. path segments"})
			return
		}
	}
	q := url.Values{}
	if t := r.URL.Query().Get("tier"); t != "" {
		q.Set("tier", t)
	}
	o.forward(w, r, "/admin/identities/"+id, q, "")
}

// forward asks the admin API and relays its answer's status and body, with
// none of its headers but the content type: the token is added here and
// nothing the gateway sends back can carry it to the browser. A CSV answer
// (filename set) is offered as a download.
func (o *ops) forward(w http.ResponseWriter, r *http.Request, path string, q url.Values, filename string) {
	tok, err := o.token()
	if err != nil {
		o.srv.log.Error("admin token unavailable", "error", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "unavailable", "message": "the dashboard cannot read its admin token file"})
		return
	}
	u := o.admin + (&url.URL{Path: path}).EscapedPath()
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, u, nil)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad_request", "message": "the request cannot be passed to the gateway"})
		return
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := o.client.Do(req)
	if err != nil {
		// The error names the admin URL, never the header.
		o.srv.log.Warn("admin API call failed", "path", path, "error", err)
		writeJSON(w, http.StatusBadGateway, map[string]string{"error": "gateway_unavailable", "message": "the gateway's admin API did not answer; try again"})
		return
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		o.srv.log.Error("the gateway refused the dashboard's admin token", "path", path)
		writeJSON(w, http.StatusBadGateway, map[string]string{"error": "admin_token_rejected", "message": "the gateway refused this dashboard's admin token: DASHBOARD_ADMIN_TOKEN_FILE must hold the gateway's KEYWARD_ADMIN_TOKEN_FILE token"})
		return
	case resp.StatusCode == http.StatusNotFound:
		msg := "the gateway's admin API is not enabled"
		var e struct {
			Message string `json:"message"`
		}
		if json.NewDecoder(io.LimitReader(resp.Body, 4<<10)).Decode(&e) == nil && e.Message != "" {
			msg = "the gateway says: " + e.Message
		}
		writeJSON(w, http.StatusBadGateway, map[string]string{"error": "admin_api_unavailable", "message": msg})
		return
	}
	ct := resp.Header.Get("Content-Type")
	if mt, _, _ := mime.ParseMediaType(ct); mt != "application/json" && mt != "text/csv" {
		writeJSON(w, http.StatusBadGateway, map[string]string{"error": "bad_gateway", "message": fmt.Sprintf("the gateway's admin API answered %d with %q", resp.StatusCode, ct)})
		return
	}
	w.Header().Set("Content-Type", ct)
	if filename != "" && resp.StatusCode == http.StatusOK {
		w.Header().Set("Content-Disposition", `attachment; filename="`+filename+`"`)
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, io.LimitReader(resp.Body, maxAdminAnswer))
}
