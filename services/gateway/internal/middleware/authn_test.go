package middleware

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/pkg/auth"
	"github.com/keyward/keyward/pkg/revoke"
	"github.com/keyward/keyward/services/gateway/internal/metrics"
)

// tokenIsID "verifies" a token by reading it as "subject/jti".
type tokenIsID struct{}

func (tokenIsID) Verify(_ context.Context, tok string) (auth.Identity, error) {
	for i := range tok {
		if tok[i] == '/' {
			return auth.Identity{Subject: tok[:i], TokenID: tok[i+1:], IssuedAt: time.Now().Add(-time.Hour), Method: "jwt"}, nil
		}
	}
	return auth.Identity{Subject: tok, IssuedAt: time.Now().Add(-time.Hour), Method: "jwt"}, nil
}

func TestAuthnRefusesRevokedTokens(t *testing.T) {
	m := metrics.New(prometheus.NewRegistry(), "test")
	m.Init(nil)
	deny := revoke.NewDenylist(nil)
	now := time.Now()
	require.NoError(t, deny.Add(revoke.Entry{Kind: revoke.KindJTI, Value: "stolen", RevokedAt: now, Until: now.Add(time.Hour)}))
	require.NoError(t, deny.Add(revoke.Entry{Kind: revoke.KindSubject, Value: "mallory", RevokedAt: now, Until: now.Add(time.Hour)}))
	e := engine(ClientIP(), Authn(AuthnConfig{JWT: tokenIsID{}, Revoked: deny, Metrics: m, Log: quiet}))
	for tok, want := range map[string]int{
		"alice/stolen": http.StatusUnauthorized,
		"alice/other":  http.StatusOK,
		"alice":        http.StatusOK,
		"mallory/any":  http.StatusUnauthorized,
		"bob/stolen":   http.StatusUnauthorized,
	} {
		req := httptest.NewRequest(http.MethodGet, "/api/x", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		e.ServeHTTP(w, req)
		require.Equal(t, want, w.Code, tok)
		if want == http.StatusUnauthorized {
			require.Contains(t, w.Body.String(), "revoked", tok)
			require.NotContains(t, w.Body.String(), "stolen", "the error never quotes the token")
		}
	}
	require.Equal(t, 3.0, testutil.ToFloat64(m.AuthFailures.WithLabelValues(auth.ReasonRevoked)))
}
