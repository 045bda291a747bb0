package middleware

import (
	"context"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/keyward/keyward/pkg/auth"
	"github.com/keyward/keyward/services/gateway/internal/httperr"
	"github.com/keyward/keyward/services/gateway/internal/metrics"
	"github.com/keyward/keyward/services/gateway/internal/reqctx"
)

// JWTVerifier is what Authn needs from a JWT verifier.
type JWTVerifier interface {
	Verify(ctx context.Context, token string) (auth.Identity, error)
}

// HMACVerifier is what Authn needs from a request-signature verifier.
type HMACVerifier interface {
	Verify(ctx context.Context, method, escapedPath, rawQuery string, h http.Header, body []byte) (auth.Identity, error)
}

// AuthnConfig configures Authn. Nil verifiers mean "not configured".
type AuthnConfig struct {
	Allowlist *auth.Allowlist
	JWT       JWTVerifier
	HMAC      HMACVerifier
	Required  bool
	// Revoked, when set, is asked about every verified JWT (a local lookup,
	// no network): a revoked token is a 401 with reason "revoked".
	Revoked interface{ Revoked(auth.Identity) bool }
	Metrics *metrics.Metrics
	Log     *slog.Logger
}

// Authn runs the IP allowlist, then HMAC signatures, then JWTs. A present but
// invalid credential is always a 401, never a silent fall back to anonymous.
// With no JWT source configured, Authorization/x-api-key are ignored (SDKs
// always send one) — and no caller credential is ever forwarded upstream.
func Authn(cfg AuthnConfig) gin.HandlerFunc {
	fail := func(c *gin.Context, err error) {
		if r := auth.Reason(err); r != "" {
			cfg.Metrics.AuthFailures.WithLabelValues(r).Inc()
			// The reason only: never the token or signature.
			cfg.Log.Info("authentication failed", "request_id", reqctx.Get(c).RequestID, "reason", r)
		}
		httperr.Write(c, cfg.Log, err)
	}
	return func(c *gin.Context) {
		st := reqctx.Get(c)
		if cfg.Allowlist != nil && !cfg.Allowlist.Allows(st.ClientIP) {
			fail(c, &auth.Error{Reason: auth.ReasonIPDenied})
			return
		}
		r := c.Request
		if cfg.HMAC != nil && auth.Present(r.Header) {
			id, err := cfg.HMAC.Verify(r.Context(), r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header, st.Body)
			if err != nil {
				fail(c, err)
				return
			}
			st.Caller = reqctx.Caller{Key: "hmac:" + strings.TrimPrefix(id.Subject, "hmac:"), Subject: id.Subject, Tier: id.Tier, Method: "hmac"}
			c.Next()
			return
		}
		if cfg.JWT != nil {
			if tok, present := auth.BearerToken(r.Header, httperr.IsV1(r.URL.Path)); present {
				id, err := cfg.JWT.Verify(r.Context(), tok)
				if err != nil {
					fail(c, err)
					return
				}
				if cfg.Revoked != nil && cfg.Revoked.Revoked(id) {
					fail(c, &auth.Error{Reason: auth.ReasonRevoked})
					return
				}
				st.Caller = reqctx.Caller{Key: "sub:" + id.Subject, Subject: id.Subject, Tier: id.Tier, Method: "jwt"}
				c.Next()
				return
			}
		}
		if cfg.Required {
			fail(c, &auth.Error{Reason: auth.ReasonMissing})
			return
		}
		c.Next()
	}
}
