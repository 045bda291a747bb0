// Package server is the dashboard's small HTTP server: it serves the
// embedded page with a strict Content-Security-Policy, tells the page where
// the gateway is, and, when a JWT secret is configured, hands the page a
// short-lived token. It never handles the Anthropic key: the page talks to
// the gateway directly, through the gateway's CORS allowlist.
package server

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/keyward/keyward/services/dashboard/internal/web"
)

// Minter issues a signed JWT for subject, valid for ttl from now.
// main wires it to auth.MintHS256 with the gateway's dev secret.
type Minter func(subject string, ttl time.Duration) (string, error)

// Options configures a Server.
type Options struct {
	// GatewayURL is the gateway's base URL as the browser reaches it.
	GatewayURL string
	// Mint, when set, lets the page fetch tokens from POST /token.
	Mint Minter
	// TokenTTL is the lifetime of minted tokens (default DefaultTokenTTL,
	// at most MaxTokenTTL).
	TokenTTL time.Duration
	// Version is reported on /health and config.json.
	Version string
	Logger  *slog.Logger
	// Now is the clock for token expiry and operator sessions (default time.Now).
	Now func() time.Time
	// Ops, when set, serves the operator page at /ops; without it /ops
	// answers 404 saying how to switch it on.
	Ops *OpsOptions
}

// Server serves the dashboard.
type Server struct {
	gatewayURL string
	csp        string
	opsCSP     string
	mint       Minter
	ttl        time.Duration
	version    string
	log        *slog.Logger
	now        func() time.Time
	static     fs.FS
	index      []byte
	mux        *http.ServeMux
}

// New validates opts and builds the server.
func New(opts Options) (*Server, error) {
	origin, err := gatewayOrigin(opts.GatewayURL)
	if err != nil {
		return nil, fmt.Errorf("checking gateway URL: %w", err)
	}
	ttl := opts.TokenTTL
	if ttl == 0 {
		ttl = DefaultTokenTTL
	}
	if ttl < time.Minute || ttl > MaxTokenTTL {
		return nil, fmt.Errorf("token TTL %v: must be between 1m and %v", ttl, MaxTokenTTL)
	}
	s := &Server{
		gatewayURL: strings.TrimRight(opts.GatewayURL, "/"),
		mint:       opts.Mint,
		ttl:        ttl,
		version:    opts.Version,
		log:        opts.Logger,
		now:        opts.Now,
		static:     web.FS(),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.index, err = fs.ReadFile(s.static, "index.html")
	if err != nil {
		return nil, fmt.Errorf("reading embedded index.html: %w", err)
	}
	// connect-src names exactly the gateway: the page can reach nothing
	// else, so even injected script could not send data elsewhere. The
	// operator page talks to this server only.
	s.csp, s.opsCSP = pageCSP("'self' "+origin), pageCSP("'self'")

	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /{$}", s.handleIndex)
	s.mux.HandleFunc("GET /index.html", s.handleIndex)
	s.mux.HandleFunc("GET /static/{file}", s.handleStatic)
	s.mux.HandleFunc("GET /config.json", s.handleConfig)
	s.mux.HandleFunc("POST /token", s.handleToken)
	s.mux.HandleFunc("GET /health", s.handleHealth)
	if opts.Ops != nil {
		page, err := fs.ReadFile(s.static, "ops.html")
		if err != nil {
			return nil, fmt.Errorf("reading embedded ops.html: %w", err)
		}
		o, err := newOps(s, *opts.Ops, page)
		if err != nil {
			return nil, err
		}
		o.routes(s.mux)
	} else {
		s.mux.HandleFunc("/ops", opsDisabled)
		s.mux.HandleFunc("/ops/", opsDisabled)
	}
	// No catch-all: the mux then answers 404 for unknown paths and 405
	// (with Allow) for a known path with the wrong method.
	return s, nil
}

func pageCSP(connect string) string {
	return strings.Join([]string{
		"default-src 'none'",
		"script-src 'self'",
		"style-src 'self'",
		"img-src 'self'",
		"connect-src " + connect,
		"base-uri 'none'",
		"form-action 'none'",
		"frame-ancestors 'none'",
	}, "; ")
}

// Handler returns the dashboard's HTTP handler.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		if isOpsPath(r.URL.Path) {
			h.Set("Content-Security-Policy", s.opsCSP)
			// Usage figures are for the operator's eyes only: no cache keeps them.
			h.Set("Cache-Control", "no-store")
		} else {
			h.Set("Content-Security-Policy", s.csp)
		}
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		start := s.now()
		rw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		s.mux.ServeHTTP(rw, r)
		if r.URL.Path != "/health" {
			s.log.Info("request", "method", r.Method, "path", r.URL.Path, "status", rw.status,
				"duration_ms", s.now().Sub(start).Milliseconds())
		}
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (s *Server) handleIndex(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(s.index)
}

func (s *Server) handleStatic(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	if name == "index.html" || name == "ops.html" || strings.Contains(name, "..") {
		http.NotFound(w, r)
		return
	}
	data, err := fs.ReadFile(s.static, name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(data)
}

// pageConfig is what the page learns from its server.
type pageConfig struct {
	GatewayURL string `json:"gateway_url"`
	Auth       bool   `json:"auth"`
	Version    string `json:"version,omitempty"`
}

func (s *Server) handleConfig(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, pageConfig{GatewayURL: s.gatewayURL, Auth: s.mint != nil, Version: s.version})
}

type tokenResponse struct {
	Token     string `json:"token"`
	Subject   string `json:"subject"`
	ExpiresIn int64  `json:"expires_in"` // seconds
	ExpiresAt int64  `json:"expires_at"` // unix seconds
}

// handleToken mints a page token. The subject is the visitor's address, so
// every visitor keeps one stable identity (and one quota) at the gateway;
// a random subject per token would let anyone reset their quota by asking
// for a new token. Forwarding headers are not believed: the dashboard has
// no list of trusted proxies.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if s.mint == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{
			"error":   "not_found",
			"message": "this dashboard does not issue tokens (DASHBOARD_JWT_SECRET is not set)",
		})
		return
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	subject := "dashboard:" + host
	tok, err := s.mint(subject, s.ttl)
	if err != nil {
		// pkg/auth's errors never contain the secret, so the text is safe to log.
		s.log.Error("minting page token failed", "error", err)
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "token_unavailable", "message": "the dashboard could not issue a token"})
		return
	}
	now := s.now()
	writeJSON(w, http.StatusOK, tokenResponse{
		Token:     tok,
		Subject:   subject,
		ExpiresIn: int64(s.ttl / time.Second),
		ExpiresAt: now.Add(s.ttl).Unix(),
	})
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]string{"status": "healthy", "version": s.version})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
