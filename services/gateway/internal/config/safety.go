package config

import (
	"fmt"
	"net/url"
	"os"
	"sort"
	"time"
)

// Defaults of the pre-auth and upstream-derived bounds (README, "Hostile
// clients and upstreams").
const (
	DefaultMaxInflightPerAddress = 64
	DefaultBodyTimeout           = 5 * time.Second
	DefaultBodyMinBytesPerSecond = 16 << 10
	DefaultMaxRetryAfter         = 60 * time.Second
	DefaultWriteTimeout          = 10 * time.Second
	// minTrustedProxyBits is the shortest trusted-proxy prefix accepted: a
	// shorter one (0.0.0.0/0, ::/0, 2000::/3, 0.0.0.0/1 …) believes
	// forwarding headers from a large part of the Internet, so every caller
	// could pick its own identity. 10.0.0.0/8 and fd00::/8 still pass.
	minTrustedProxyBits = 8
)

// SafetyLimits are the YAML `limits:` keys of this file. They are global:
// a tier that sets one is an error.
type SafetyLimits struct {
	MaxInflightPerAddress int    `yaml:"max_inflight_per_address"`
	BodyTimeout           string `yaml:"body_timeout"`
	BodyMinBytesPerSecond int64  `yaml:"body_min_bytes_per_second"`
	MaxRetryAfter         string `yaml:"max_retry_after"`
	WriteTimeout          string `yaml:"write_timeout"`
}

// Safety holds the bounds on work a caller can cause before it is
// authenticated, the cap on what the upstream can tell callers to wait, and
// the outcome of the start-up checks for unsafe settings.
type Safety struct {
	// MaxInflightPerAddress caps the requests one client address (IPv6 per
	// /64) has in flight before authentication; always below MaxInflight,
	// so one address can never take every slot.
	MaxInflightPerAddress int
	// BodyTimeout is how long any request body may take; BodyMinRate adds
	// one second per that many bytes received, so large bodies that make
	// progress get longer and a trickle is cut at BodyTimeout.
	BodyTimeout time.Duration
	BodyMinRate int64
	// MaxRetryAfter caps the upstream retry-after passed to callers.
	MaxRetryAfter time.Duration
	// WriteTimeout bounds each write and flush to a caller; a caller that
	// stops reading is cut after it.
	WriteTimeout time.Duration

	AllowInsecureUpstream bool // KEYWARD_ALLOW_INSECURE_UPSTREAM
	StrictFilePermissions bool // KEYWARD_STRICT_FILE_PERMISSIONS

	// Warnings are unsafe settings allowed to start; main logs each one
	// and --check-config prints them.
	Warnings []string

	yaml SafetyLimits
}

// takeYAML records the limits: keys; tiers may not set them.
func (s *Safety) takeYAML(l SafetyLimits, tiers map[string]limitsYAML, p *problems) {
	s.yaml = l
	names := make([]string, 0, len(tiers))
	for name := range tiers {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if tiers[name].SafetyLimits != (SafetyLimits{}) {
			p.addf("tiers.%s: max_inflight_per_address, body_timeout, body_min_bytes_per_second, max_retry_after and write_timeout are global settings (set them under limits)", name)
		}
	}
}

// loadSafety resolves the bounds (YAML, then env) and runs the start-up
// checks. It runs after the upstream URL and trusted proxies are known.
func (c *Config) loadSafety(p *problems, get func(string, string) string) {
	s := &c.Safety
	y := s.yaml
	s.AllowInsecureUpstream = boolVar(p, get, "KEYWARD_ALLOW_INSECURE_UPSTREAM", false)
	s.StrictFilePermissions = boolVar(p, get, "KEYWARD_STRICT_FILE_PERMISSIONS", false)

	s.MaxInflightPerAddress = min(DefaultMaxInflightPerAddress, max(1, c.MaxInflight/2))
	switch {
	case y.MaxInflightPerAddress < 0:
		p.addf("limits.max_inflight_per_address must be ≥ 1")
	case y.MaxInflightPerAddress > 0 && y.MaxInflightPerAddress >= c.MaxInflight:
		p.addf("limits.max_inflight_per_address (%d) must be below limits.max_inflight (%d): one address could otherwise take every slot", y.MaxInflightPerAddress, c.MaxInflight)
	case y.MaxInflightPerAddress > 0:
		s.MaxInflightPerAddress = y.MaxInflightPerAddress
	}
	s.BodyTimeout = yamlDuration(p, "limits.body_timeout", y.BodyTimeout, DefaultBodyTimeout)
	s.BodyMinRate = DefaultBodyMinBytesPerSecond
	switch {
	case y.BodyMinBytesPerSecond < 0:
		p.addf("limits.body_min_bytes_per_second must be ≥ 1")
	case y.BodyMinBytesPerSecond > 0:
		s.BodyMinRate = y.BodyMinBytesPerSecond
	}
	s.WriteTimeout = yamlDuration(p, "limits.write_timeout", y.WriteTimeout, DefaultWriteTimeout)
	s.MaxRetryAfter = yamlDuration(p, "limits.max_retry_after", y.MaxRetryAfter, DefaultMaxRetryAfter)
	s.MaxRetryAfter = durVar(p, get, "KEYWARD_MAX_RETRY_AFTER", s.MaxRetryAfter)
	if s.MaxRetryAfter < time.Second {
		p.addf("KEYWARD_MAX_RETRY_AFTER / limits.max_retry_after must be at least 1s (Retry-After is in whole seconds)")
	}

	c.checkUpstreamTransport(p)
	c.checkTrustedProxies(p)
	for _, f := range []struct{ env, what string }{
		{"ANTHROPIC_API_KEY_FILE", "the Anthropic API key"},
		{"KEYWARD_JWT_SECRET_FILE", "the JWT secret"},
		{"KEYWARD_HMAC_KEYS_FILE", "the HMAC keys"},
		{"KEYWARD_REDIS_PASSWORD_FILE", "the Redis password"},
		{"KEYWARD_TLS_KEY_FILE", "the TLS private key"},
	} {
		if path := get(f.env, ""); path != "" {
			c.checkSecretFile(p, f.env, path, f.what)
		}
	}
}

// checkUpstreamTransport refuses a cleartext upstream off this host: the
// server key would cross the network in clear. The offline mock is exempt
// (its key is not a secret), as is loopback (a TLS-originating sidecar).
func (c *Config) checkUpstreamTransport(p *problems) {
	u, err := url.Parse(c.UpstreamURL)
	if err != nil || u.Scheme != "http" || c.UsingMock || isLoopbackHost(u.Hostname()) {
		return
	}
	if c.Safety.AllowInsecureUpstream {
		c.Safety.Warnings = append(c.Safety.Warnings, fmt.Sprintf("KEYWARD_UPSTREAM_URL %s is cleartext http to a non-loopback host: the API key crosses the network unencrypted (allowed by KEYWARD_ALLOW_INSECURE_UPSTREAM)", u.Redacted()))
		return
	}
	p.addf("KEYWARD_UPSTREAM_URL %s is cleartext http to a non-loopback host: the API key would cross the network unencrypted; use https, or set KEYWARD_ALLOW_INSECURE_UPSTREAM=true if the network path is protected otherwise", u.Redacted())
}

// checkTrustedProxies refuses catch-all trusted proxies: with them every
// caller chooses its own client address, hence its limiter identity.
func (c *Config) checkTrustedProxies(p *problems) {
	for _, pr := range c.TrustedProxies {
		bits := pr.Bits()
		if pr.Addr().Is4In6() {
			// ::ffff:0:0/96 is every IPv4 address.
			bits -= 96
		}
		if bits < minTrustedProxyBits {
			p.addf("KEYWARD_TRUSTED_PROXIES: %s is a catch-all (prefixes shorter than /%d are refused): every caller could set X-Forwarded-For and pick its own identity, escaping per-client limits; list only your load balancers' addresses", pr, minTrustedProxyBits)
		}
	}
}

// checkSecretFile warns about (or, with KEYWARD_STRICT_FILE_PERMISSIONS,
// refuses) a secret file other users can read or write. A missing file is
// not judged here: key files may appear after start (mounted Secrets).
func (c *Config) checkSecretFile(p *problems, env, path, what string) {
	fi, err := os.Stat(path)
	if err != nil {
		return
	}
	mode := fi.Mode().Perm()
	if mode&0o077 == 0 {
		return
	}
	msg := fmt.Sprintf("%s %s (%s) has mode %04o: readable or writable by group or others; make it 0600 or 0400 (Kubernetes: defaultMode 0400)", env, path, what, mode)
	if c.Safety.StrictFilePermissions {
		p.addf("%s (refused by KEYWARD_STRICT_FILE_PERMISSIONS)", msg)
		return
	}
	c.Safety.Warnings = append(c.Safety.Warnings, msg)
}

func yamlDuration(p *problems, key, v string, def time.Duration) time.Duration {
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		p.addf("%s %q: want a positive duration like 5s", key, v)
		return def
	}
	return d
}
