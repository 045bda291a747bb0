package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	defaultLeeway        = 30 * time.Second
	defaultTierClaim     = "tier"
	defaultMaxTokenBytes = 8192
	// MinHMACSecretBytes is the shortest accepted HMAC secret (JWT HS* and
	// request signing): RFC 7518 §3.2 asks for at least the hash size.
	MinHMACSecretBytes = 32
)

// JWTConfig configures a JWTVerifier. Any combination of Secret,
// PublicKeyPEM and JWKSURL may be set; at least one is required.
type JWTConfig struct {
	// Secret enables HS256/HS384/HS512 (at least 32 bytes).
	Secret []byte
	// PublicKeyPEM holds one or more RSA, ECDSA or Ed25519 public keys
	// (PKIX "PUBLIC KEY", PKCS#1 "RSA PUBLIC KEY" or "CERTIFICATE" blocks).
	PublicKeyPEM []byte
	// JWKSURL is an https URL of the IdP's key set (http only for loopback).
	JWKSURL string
	// Issuer and Audience, when set, must match the iss and aud claims.
	Issuer   string
	Audience string
	// Algorithms optionally narrows the accepted algorithms further
	// (e.g. only "RS256"). Each key still only accepts its own family.
	Algorithms []string
	// Leeway tolerates clock skew on exp, nbf and iat (default 30s).
	Leeway time.Duration
	// MaxLifetime, when set, refuses tokens valid for longer than this
	// (exp - iat, or exp - now without iat), limiting what a stolen
	// long-lived token is worth. 0 = no cap.
	MaxLifetime time.Duration
	// TierClaim names the claim copied into Identity.Tier (default "tier").
	TierClaim string
	// MaxTokenBytes: longer tokens are refused before parsing (default 8192).
	MaxTokenBytes int
	// JWKSRefreshInterval is the background refresh period (default 5m).
	JWKSRefreshInterval time.Duration
	// JWKSUnknownKidRateLimit is the minimum gap between refreshes caused by
	// tokens with an unknown kid (default 1m).
	JWKSUnknownKidRateLimit time.Duration
	// JWKSTimeout bounds one JWKS fetch (default 10s).
	JWKSTimeout time.Duration
	// HTTPClient is used for JWKS fetches; it is copied, never modified.
	HTTPClient *http.Client
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives JWKS refresh failures (default slog.Default()).
	Logger *slog.Logger
}

// JWTVerifier verifies bearer JWTs. It is safe for concurrent use.
type JWTVerifier struct {
	parser        *jwt.Parser
	static        []any // configured keys: []byte secret and parsed public keys
	jwks          *jwksSource
	validAlgs     []string
	maxTokenBytes int
	tierClaim     string
	maxLifetime   time.Duration
	now           func() time.Time
}

// Sentinels returned by the keyfunc; jwt wraps them, classify finds them.
var (
	errUnknownKey   = errors.New("no key for this token")
	errAlgKeyMisfit = errors.New("algorithm does not match the key")
	errKidType      = errors.New("kid header is not a string")
)

// NewJWTVerifier validates cfg and, when JWKSURL is set, fetches the key set
// and starts its background refresh (stop it with Close). A failed first
// JWKS fetch is logged, not returned: see jwksSource.
func NewJWTVerifier(ctx context.Context, cfg JWTConfig) (*JWTVerifier, error) {
	if len(cfg.Secret) == 0 && len(cfg.PublicKeyPEM) == 0 && cfg.JWKSURL == "" {
		return nil, errors.New("creating JWT verifier: no key source (secret, public key or JWKS URL) configured")
	}
	if cfg.Leeway < 0 || cfg.MaxLifetime < 0 || cfg.MaxTokenBytes < 0 || cfg.JWKSRefreshInterval < 0 ||
		cfg.JWKSUnknownKidRateLimit < 0 || cfg.JWKSTimeout < 0 {
		return nil, errors.New("creating JWT verifier: durations and sizes must not be negative")
	}
	cfg = jwtDefaults(cfg)

	v := &JWTVerifier{maxTokenBytes: cfg.MaxTokenBytes, tierClaim: cfg.TierClaim, maxLifetime: cfg.MaxLifetime, now: cfg.Now}
	var algs []string
	if len(cfg.Secret) > 0 {
		if len(cfg.Secret) < MinHMACSecretBytes {
			return nil, fmt.Errorf("creating JWT verifier: secret is %d bytes, at least %d required", len(cfg.Secret), MinHMACSecretBytes)
		}
		v.static = append(v.static, slices.Clone(cfg.Secret))
		algs = append(algs, hmacAlgs...)
	}
	if len(cfg.PublicKeyPEM) > 0 {
		keys, err := parsePublicKeysPEM(cfg.PublicKeyPEM)
		if err != nil {
			return nil, fmt.Errorf("creating JWT verifier: %w", err)
		}
		for _, k := range keys {
			v.static = append(v.static, k)
			algs = append(algs, algsForKey(k)...)
		}
	}
	if cfg.JWKSURL != "" {
		algs = append(algs, asymmetricAlgs...)
	}
	slices.Sort(algs)
	algs = slices.Compact(algs)
	if len(cfg.Algorithms) > 0 {
		algs = slices.DeleteFunc(algs, func(a string) bool { return !slices.Contains(cfg.Algorithms, a) })
		if len(algs) == 0 {
			return nil, errors.New("creating JWT verifier: none of the configured algorithms fits the configured keys")
		}
	}
	v.validAlgs = algs

	opts := []jwt.ParserOption{
		jwt.WithValidMethods(algs),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(cfg.Now),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	v.parser = jwt.NewParser(opts...)

	if cfg.JWKSURL != "" {
		src, err := newJWKSSource(ctx, jwksOptions{
			url:             cfg.JWKSURL,
			client:          cfg.HTTPClient,
			timeout:         cfg.JWKSTimeout,
			refreshInterval: cfg.JWKSRefreshInterval,
			unknownGap:      cfg.JWKSUnknownKidRateLimit,
			now:             cfg.Now,
			log:             cfg.Logger,
		})
		if err != nil {
			return nil, fmt.Errorf("creating JWT verifier: %w", err)
		}
		v.jwks = src
	}
	return v, nil
}

func jwtDefaults(cfg JWTConfig) JWTConfig {
	if cfg.Leeway == 0 {
		cfg.Leeway = defaultLeeway
	}
	if cfg.TierClaim == "" {
		cfg.TierClaim = defaultTierClaim
	}
	if cfg.MaxTokenBytes == 0 {
		cfg.MaxTokenBytes = defaultMaxTokenBytes
	}
	if cfg.JWKSRefreshInterval == 0 {
		cfg.JWKSRefreshInterval = defaultJWKSRefreshInterval
	}
	if cfg.JWKSUnknownKidRateLimit == 0 {
		cfg.JWKSUnknownKidRateLimit = defaultJWKSUnknownKidGap
	}
	if cfg.JWKSTimeout == 0 {
		cfg.JWKSTimeout = defaultJWKSTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg
}

// Close stops the background JWKS refresh. Verify keeps working with the
// last fetched keys. Close is idempotent.
func (v *JWTVerifier) Close() {
	if v.jwks != nil {
		v.jwks.closeOnce.Do(v.jwks.close)
	}
}

// Algorithms returns the accepted JWS algorithms, sorted.
func (v *JWTVerifier) Algorithms() []string { return slices.Clone(v.validAlgs) }

// Verify checks token and returns the caller it identifies. Every failure is
// an *Error wrapping ErrUnauthenticated with one of the Reason* values; the
// error text never contains the token or any of its claims.
func (v *JWTVerifier) Verify(ctx context.Context, token string) (Identity, error) {
	// Checked before anything touches the token, so a megabyte of dots costs
	// nothing (CVE-2025-30204 class of bugs).
	if len(token) > v.maxTokenBytes {
		return Identity{}, reject(ReasonTooLarge, errTokenTooLarge)
	}
	if token == "" {
		return Identity{}, reject(ReasonMalformed, errEmptyToken)
	}
	claims := jwt.MapClaims{}
	tok, err := v.parser.ParseWithClaims(token, claims, v.keyfunc(ctx))
	// Only this exact combination is success (CVE-2024-51744): never accept
	// a token because its error "only" says expired.
	if err != nil || tok == nil || !tok.Valid {
		return Identity{}, v.classify(tok, err)
	}
	sub, err := claims.GetSubject()
	if err != nil || sub == "" {
		return Identity{}, reject(ReasonClaims, safeError{msg: "token has no sub claim", err: err})
	}
	if v.maxLifetime > 0 && !v.lifetimeOK(claims) {
		return Identity{}, reject(ReasonClaims, safeError{msg: "token lifetime longer than allowed"})
	}
	var tier string
	if raw, ok := claims[v.tierClaim]; ok {
		s, ok := raw.(string)
		if !ok {
			return Identity{}, reject(ReasonClaims, safeError{msg: "tier claim is not a string"})
		}
		tier = s
	}
	id := Identity{Subject: sub, Tier: tier, Method: "jwt"}
	if jti, ok := claims["jti"].(string); ok {
		id.TokenID = jti
	}
	if iat, err := claims.GetIssuedAt(); err == nil && iat != nil {
		id.IssuedAt = iat.Time
	}
	if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
		id.ExpiresAt = exp.Time
	}
	return id, nil
}

// lifetimeOK runs after validation, so exp exists and parses.
func (v *JWTVerifier) lifetimeOK(c jwt.MapClaims) bool {
	exp, err := c.GetExpirationTime()
	if err != nil || exp == nil {
		return false
	}
	start := v.now()
	if iat, err := c.GetIssuedAt(); err == nil && iat != nil {
		start = iat.Time
	}
	return exp.Sub(start) <= v.maxLifetime
}

var (
	errTokenTooLarge = safeError{msg: "token longer than the configured limit"}
	errEmptyToken    = safeError{msg: "empty token"}
)

// safeError keeps the wrapped error for errors.Is but prints only msg, so
// library messages that quote token content never reach logs.
type safeError struct {
	msg string
	err error
}

func (e safeError) Error() string { return e.msg }
func (e safeError) Unwrap() error { return e.err }

// keyfunc picks candidate keys by the token's algorithm and kid. kid is only
// ever a map key; jku, x5u and jwk headers are never read.
func (v *JWTVerifier) keyfunc(ctx context.Context) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		alg := t.Method.Alg()
		kid := ""
		if raw, ok := t.Header["kid"]; ok {
			s, ok := raw.(string)
			if !ok {
				return nil, errKidType
			}
			kid = s
		}
		var keys []jwt.VerificationKey
		misfit := false
		for _, k := range v.static {
			// The type assertion half of algorithm pinning: an HS256 token
			// only ever meets the []byte secret, never PEM bytes.
			if keyAllowsAlg(k, alg) {
				keys = append(keys, k)
			} else {
				misfit = true
			}
		}
		if v.jwks != nil {
			for _, k := range v.jwks.lookup(ctx, kid) {
				if keyAllowsAlg(k.key, alg) && (k.alg == "" || k.alg == alg) {
					keys = append(keys, k.key)
				} else {
					misfit = true
				}
			}
		}
		if len(keys) == 0 {
			if misfit && (kid == "" || v.jwks == nil || len(v.jwks.set.Load().byKid[kid]) > 0) {
				return nil, errAlgKeyMisfit
			}
			return nil, errUnknownKey
		}
		return jwt.VerificationKeySet{Keys: keys}, nil
	}
}

// classify maps a parse failure to a reason. Signature problems are checked
// before claims, so a forged token that is also expired says bad_signature.
func (v *JWTVerifier) classify(tok *jwt.Token, err error) error {
	if err == nil {
		err = errors.New("token not valid")
	}
	reason, msg := ReasonMalformed, "malformed token"
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed), errors.Is(err, errKidType):
		reason, msg = ReasonMalformed, "malformed token"
	case tok != nil && tok.Method != nil && !slices.Contains(v.validAlgs, tok.Method.Alg()):
		reason, msg = ReasonAlgorithm, "token algorithm not accepted"
	case tok != nil && tok.Method == nil:
		if _, ok := tok.Header["alg"].(string); ok {
			reason, msg = ReasonAlgorithm, "token algorithm not accepted"
		} else {
			reason, msg = ReasonMalformed, "token has no alg header"
		}
	case errors.Is(err, errAlgKeyMisfit):
		reason, msg = ReasonAlgorithm, "token algorithm does not match the key"
	case errors.Is(err, errUnknownKey):
		reason, msg = ReasonUnknownKey, "no verification key for this token"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		reason, msg = ReasonSignature, "token signature invalid"
	case errors.Is(err, jwt.ErrTokenExpired):
		reason, msg = ReasonExpired, "token expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		reason, msg = ReasonNotYetValid, "token not valid yet"
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		reason, msg = ReasonClaims, "token claims invalid"
	}
	return reject(reason, safeError{msg: msg, err: err})
}
