// Package auth verifies callers: JWTs (HMAC, RSA, ECDSA, Ed25519 and JWKS),
// HMAC-signed requests for server-side callers, and IP allowlists on the
// client IP. It knows nothing of HTTP frameworks; the gateway calls it.
package auth

import (
	"errors"
	"time"
)

// ErrUnauthenticated wraps every credential rejection. Use Reason(err) for
// a metric-safe label; the error text never contains the credential.
var ErrUnauthenticated = errors.New("unauthenticated")

// ErrUnavailable is returned when verification needs a store that is down
// (the HMAC nonce store): callers fail closed with 503.
var ErrUnavailable = errors.New("auth store unavailable")

// Identity is a verified caller.
type Identity struct {
	Subject string // JWT sub, or "hmac:<key id>"
	Tier    string // value of the configured tier claim, "" if none
	Method  string // "jwt" or "hmac"
	// JWT only, for revocation: the jti claim ("" if none) and the iat and
	// exp claims (zero if absent).
	TokenID   string
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// Failure reasons, used as the label of keyward_auth_failures_total.
const (
	ReasonMissing     = "missing"
	ReasonMalformed   = "malformed"
	ReasonTooLarge    = "too_large"
	ReasonSignature   = "bad_signature"
	ReasonAlgorithm   = "bad_algorithm"
	ReasonExpired     = "expired"
	ReasonNotYetValid = "not_yet_valid"
	ReasonClaims      = "bad_claims" // iss, aud, missing exp, ...
	ReasonRevoked     = "revoked"    // a valid token whose jti or subject an operator revoked
	ReasonUnknownKey  = "unknown_key"
	ReasonTimestamp   = "bad_timestamp"
	ReasonReplay      = "replay"
	ReasonIPDenied    = "ip_denied"
)

// Error is a rejection with a metric-safe reason.
type Error struct {
	Reason string
	Err    error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return "unauthenticated: " + e.Reason
	}
	return "unauthenticated: " + e.Reason + ": " + e.Err.Error()
}

func (e *Error) Unwrap() []error { return []error{ErrUnauthenticated, e.Err} }

// Reason returns the failure reason of err, or "" when err is not an auth rejection.
func Reason(err error) string {
	var ae *Error
	if errors.As(err, &ae) {
		return ae.Reason
	}
	return ""
}

func reject(reason string, err error) error { return &Error{Reason: reason, Err: err} }
