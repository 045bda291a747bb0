package server

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/keyward/keyward/pkg/auth"
)

// Defaults, from DESIGN.md's port table: the dashboard listens on the seed's
// Streamlit port, which is also the gateway's default CORS origin.
const (
	DefaultAddr       = ":8501"
	DefaultGatewayURL = "http://localhost:5001"
	// DefaultTokenTTL keeps a leaked page token useful for minutes, not
	// hours; the page renews it long before it runs out.
	DefaultTokenTTL = 10 * time.Minute
	// MaxTokenTTL is the longest lifetime the dashboard will mint.
	MaxTokenTTL = 15 * time.Minute
)

// Config is the dashboard's environment. It deliberately has no field for
// the Anthropic key: the dashboard never reads ANTHROPIC_API_KEY.
type Config struct {
	Addr       string // DASHBOARD_ADDR
	GatewayURL string // DASHBOARD_GATEWAY_URL, as the browser must use it
	JWTSecret  []byte // DASHBOARD_JWT_SECRET, optional
	// JWTIssuer and JWTAudience (DASHBOARD_JWT_ISSUER, DASHBOARD_JWT_AUDIENCE)
	// go into minted tokens, for gateways that set KEYWARD_JWT_ISSUER or
	// KEYWARD_JWT_AUDIENCE.
	JWTIssuer   string
	JWTAudience string
	// AdminURL (DASHBOARD_ADMIN_URL) is the gateway's admin listener
	// (KEYWARD_METRICS_ADDR) as this server reaches it, and AdminTokenFile
	// (DASHBOARD_ADMIN_TOKEN_FILE) the file holding the gateway's admin
	// token. Together they switch the operator page (/ops) on; the token is
	// used only by this server and never sent to a browser.
	AdminURL       string
	AdminTokenFile string
	// SecureCookies (DASHBOARD_COOKIE_SECURE=true) marks the operator
	// session cookie Secure even on plain HTTP, for a dashboard behind a
	// TLS-terminating proxy. Over TLS it is Secure anyway.
	SecureCookies bool
}

// LoadConfig reads the environment through getenv and reports every problem
// at once.
func LoadConfig(getenv func(string) string) (Config, error) {
	cfg := Config{
		Addr:        strings.TrimSpace(getenv("DASHBOARD_ADDR")),
		GatewayURL:  strings.TrimSpace(getenv("DASHBOARD_GATEWAY_URL")),
		JWTSecret:   []byte(getenv("DASHBOARD_JWT_SECRET")),
		JWTIssuer:   strings.TrimSpace(getenv("DASHBOARD_JWT_ISSUER")),
		JWTAudience: strings.TrimSpace(getenv("DASHBOARD_JWT_AUDIENCE")),

		AdminURL:       strings.TrimSpace(getenv("DASHBOARD_ADMIN_URL")),
		AdminTokenFile: strings.TrimSpace(getenv("DASHBOARD_ADMIN_TOKEN_FILE")),
	}
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.GatewayURL == "" {
		cfg.GatewayURL = DefaultGatewayURL
	}
	if len(cfg.JWTSecret) == 0 {
		cfg.JWTSecret = nil
	}
	var errs []error
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		errs = append(errs, fmt.Errorf("DASHBOARD_ADDR %q: want host:port or :port: %w", cfg.Addr, err))
	}
	if _, err := gatewayOrigin(cfg.GatewayURL); err != nil {
		errs = append(errs, fmt.Errorf("DASHBOARD_GATEWAY_URL: %w", err))
	}
	if cfg.JWTSecret != nil && len(cfg.JWTSecret) < auth.MinHMACSecretBytes {
		// Shorter HS256 secrets can be brute-forced offline from one token,
		// and the gateway refuses them anyway.
		errs = append(errs, fmt.Errorf("DASHBOARD_JWT_SECRET: need at least %d bytes, got %d", auth.MinHMACSecretBytes, len(cfg.JWTSecret)))
	}
	if cfg.JWTSecret == nil && (cfg.JWTIssuer != "" || cfg.JWTAudience != "") {
		errs = append(errs, errors.New("DASHBOARD_JWT_ISSUER/DASHBOARD_JWT_AUDIENCE: set only together with DASHBOARD_JWT_SECRET"))
	}
	if (cfg.AdminURL == "") != (cfg.AdminTokenFile == "") {
		errs = append(errs, errors.New("DASHBOARD_ADMIN_URL/DASHBOARD_ADMIN_TOKEN_FILE: set both to enable the operator page, or neither"))
	}
	if cfg.AdminURL != "" {
		if _, err := gatewayOrigin(cfg.AdminURL); err != nil {
			errs = append(errs, fmt.Errorf("DASHBOARD_ADMIN_URL: %w", err))
		}
	}
	switch v := strings.TrimSpace(getenv("DASHBOARD_COOKIE_SECURE")); v {
	case "", "false":
	case "true":
		cfg.SecureCookies = true
	default:
		errs = append(errs, fmt.Errorf("DASHBOARD_COOKIE_SECURE %q: want true or false", v))
	}
	if len(errs) > 0 {
		return Config{}, fmt.Errorf("invalid dashboard configuration: %w", errors.Join(errs...))
	}
	return cfg, nil
}

// gatewayOrigin validates the gateway URL and returns its origin
// (scheme://host[:port]) for the page's connect-src.
func gatewayOrigin(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("parsing %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("%q: scheme must be http or https", raw)
	}
	if u.Host == "" || u.Hostname() == "" {
		return "", fmt.Errorf("%q: host is missing", raw)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q: must not carry credentials, a query or a fragment", u.Redacted())
	}
	if strings.ContainsAny(u.Host, " ;'\"") {
		// It goes into a CSP header; refuse anything that could break out.
		return "", fmt.Errorf("%q: host has characters not allowed in a URL host", raw)
	}
	return u.Scheme + "://" + u.Host, nil
}

// HealthURL is where `dashboard healthcheck` finds this server's /health,
// given the listen address (":8501" → http://127.0.0.1:8501/health).
func HealthURL(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("parsing listen address %q: %w", addr, err)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::", "[::]":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/health", nil
}

// HS256Minter mints page tokens with the gateway's shared HS256 secret,
// carrying the configured issuer and audience so that a gateway which
// checks them accepts the tokens.
func HS256Minter(cfg Config, now func() time.Time) Minter {
	secret := cfg.JWTSecret
	return func(subject string, ttl time.Duration) (string, error) {
		return auth.MintHS256(secret, auth.MintClaims{
			Subject: subject, TTL: ttl, Now: now(),
			Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience,
		})
	}
}
