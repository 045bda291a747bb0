package auth

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

func jwksVerifier(t testing.TB, srvURL string, clk *clock, mut func(*JWTConfig)) *JWTVerifier {
	t.Helper()
	cfg := JWTConfig{JWKSURL: srvURL, Now: clk.Now}
	if mut != nil {
		mut(&cfg)
	}
	return newVerifier(t, cfg)
}

func rsTok(t testing.TB, kid string) string {
	t.Helper()
	k := testKeys()
	key := k.rsa
	if kid == "new" || kid == "newer" {
		key = k.rsa2
	}
	return sign(t, jwt.SigningMethodRS256, key, claims(), map[string]any{"kid": kid})
}

func TestJWKSRotationNewKidAfterOneRefresh(t *testing.T) {
	k := testKeys()
	idp := newJWKSServer(t, jwk(t, &k.rsa.PublicKey, "old", ""))
	clk := &clock{now: t0}
	v := jwksVerifier(t, idp.URL, clk, nil)
	ctx := context.Background()
	require.EqualValues(t, 1, idp.fetches.Load(), "initial fetch")

	_, err := v.Verify(ctx, rsTok(t, "old"))
	require.NoError(t, err)
	require.EqualValues(t, 1, idp.fetches.Load(), "known kid must not fetch")

	// The IdP rotates: a token signed with the new key arrives.
	idp.setKeys(t, jwk(t, &k.rsa.PublicKey, "old", ""), jwk(t, &k.rsa2.PublicKey, "new", ""))
	id, err := v.Verify(ctx, rsTok(t, "new"))
	require.NoError(t, err)
	require.Equal(t, "alice", id.Subject)
	require.EqualValues(t, 2, idp.fetches.Load(), "exactly one refresh for the new kid")

	_, err = v.Verify(ctx, rsTok(t, "old"))
	require.NoError(t, err)
	_, err = v.Verify(ctx, rsTok(t, "new"))
	require.NoError(t, err)
	require.EqualValues(t, 2, idp.fetches.Load())

	// A further rotation inside the gap waits for the next window...
	idp.setKeys(t, jwk(t, &k.rsa2.PublicKey, "newer", ""))
	clk.Advance(30 * time.Second)
	_, err = v.Verify(ctx, rsTok(t, "newer"))
	require.Equal(t, ReasonUnknownKey, Reason(err))
	require.EqualValues(t, 2, idp.fetches.Load())
	// ...and is picked up once the gap has passed; the dropped key is gone.
	clk.Advance(31 * time.Second)
	_, err = v.Verify(ctx, rsTok(t, "newer"))
	require.NoError(t, err)
	require.EqualValues(t, 3, idp.fetches.Load())
	_, err = v.Verify(ctx, rsTok(t, "old"))
	require.Equal(t, ReasonUnknownKey, Reason(err), "a key removed from the JWKS must stop verifying")
}

func TestJWKSRandomKidsRefreshAtMostOncePerInterval(t *testing.T) {
	k := testKeys()
	idp := newJWKSServer(t, jwk(t, &k.rsa.PublicKey, "old", ""))
	clk := &clock{now: t0}
	v := jwksVerifier(t, idp.URL, clk, nil)
	ctx := context.Background()

	tokens := make([]string, 1000)
	for i := range tokens {
		// The attacker needs no valid signature: the kid lookup comes first.
		tokens[i] = rawToken(t, map[string]any{"alg": "RS256", "kid": fmt.Sprintf("rand-%d-%d", i, time.Now().UnixNano())}, claims(),
			func(string) []byte { return bytes.Repeat([]byte{0x5a}, 256) })
	}
	var wg sync.WaitGroup
	var accepted, unknown atomic.Int64
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(tokens); i += 8 {
				_, err := v.Verify(ctx, tokens[i])
				switch {
				case err == nil:
					accepted.Add(1)
				case Reason(err) == ReasonUnknownKey:
					unknown.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	require.Zero(t, accepted.Load())
	require.EqualValues(t, 1000, unknown.Load())
	require.LessOrEqual(t, idp.fetches.Load(), int64(2), "initial fetch plus at most one unknown-kid refresh")

	// The next interval allows exactly one more.
	clk.Advance(time.Minute)
	for _, tok := range tokens[:100] {
		_, err := v.Verify(ctx, tok)
		require.Equal(t, ReasonUnknownKey, Reason(err))
	}
	require.LessOrEqual(t, idp.fetches.Load(), int64(3))

	// Legitimate tokens were never held up.
	_, err := v.Verify(ctx, rsTok(t, "old"))
	require.NoError(t, err)
}

// Each subtest gets its own IdP and verifier, so none depends on the state
// another left behind. Waits are on observable counts: fetches the IdP saw,
// or refresh failures the verifier logged.
func TestJWKSIdPDownKeepsCachedKeys(t *testing.T) {
	k := testKeys()
	type env struct {
		idp  *jwksServer
		clk  *clock
		v    *JWTVerifier
		logs *syncBuffer
		good string
	}
	setup := func(t *testing.T) env {
		e := env{idp: newJWKSServer(t, jwk(t, &k.rsa.PublicKey, "old", "")), clk: &clock{now: t0}, logs: &syncBuffer{}}
		e.v = jwksVerifier(t, e.idp.URL, e.clk, func(c *JWTConfig) {
			c.JWKSRefreshInterval = 20 * time.Millisecond
			c.Logger = newTestLogger(e.logs)
		})
		e.good = rsTok(t, "old")
		_, err := e.v.Verify(context.Background(), e.good)
		require.NoError(t, err)
		return e
	}
	// waitFetches waits until the IdP has answered n more fetches: the
	// refresh behind the first n-1 of them has then run to its end, as
	// refreshes run one at a time.
	waitFetches := func(t *testing.T, idp *jwksServer, n int64) {
		before := idp.fetches.Load()
		require.Eventually(t, func() bool { return idp.fetches.Load() >= before+n }, 5*time.Second, 5*time.Millisecond,
			"background refresh should keep trying")
	}
	refreshFailures := func(e env) int { return strings.Count(e.logs.String(), "JWKS refresh failed") }
	ctx := context.Background()

	t.Run("500 during background refresh", func(t *testing.T) {
		e := setup(t)
		e.idp.status.Store(http.StatusInternalServerError)
		waitFetches(t, e.idp, 3)
		_, err := e.v.Verify(ctx, e.good)
		require.NoError(t, err)
	})
	t.Run("500 on unknown-kid refresh", func(t *testing.T) {
		e := setup(t)
		e.idp.status.Store(http.StatusInternalServerError)
		e.clk.Advance(2 * time.Minute)
		before := e.idp.fetches.Load()
		_, err := e.v.Verify(ctx, rsTok(t, "new"))
		require.Equal(t, ReasonUnknownKey, Reason(err))
		require.Greater(t, e.idp.fetches.Load(), before, "the unknown kid was looked up")
		_, err = e.v.Verify(ctx, e.good)
		require.NoError(t, err)
	})
	t.Run("garbage body", func(t *testing.T) {
		e := setup(t)
		e.idp.setBody([]byte(`{"keys":[{"kty":"RSA","n":"!!"}]`))
		waitFetches(t, e.idp, 3)
		require.Eventually(t, func() bool { return refreshFailures(e) >= 2 }, 5*time.Second, 5*time.Millisecond,
			"the garbage was fetched and refused")
		_, err := e.v.Verify(ctx, e.good)
		require.NoError(t, err)
	})
	t.Run("server gone", func(t *testing.T) {
		e := setup(t)
		e.idp.Close()
		e.clk.Advance(2 * time.Minute)
		_, err := e.v.Verify(ctx, rsTok(t, "new"))
		require.Equal(t, ReasonUnknownKey, Reason(err))
		require.Eventually(t, func() bool { return refreshFailures(e) >= 2 }, 5*time.Second, 5*time.Millisecond,
			"background refreshes against the vanished IdP failed")
		_, err = e.v.Verify(ctx, e.good)
		require.NoError(t, err)
	})
}

func TestJWKSInitialFetchFailureRecovers(t *testing.T) {
	k := testKeys()
	idp := newJWKSServer(t, jwk(t, &k.rsa.PublicKey, "old", ""))
	idp.status.Store(http.StatusServiceUnavailable)
	clk := &clock{now: t0}
	v := jwksVerifier(t, idp.URL, clk, nil)
	_, err := v.Verify(context.Background(), rsTok(t, "old"))
	require.Equal(t, ReasonUnknownKey, Reason(err), "no keys yet")

	idp.status.Store(http.StatusOK)
	clk.Advance(time.Minute)
	_, err = v.Verify(context.Background(), rsTok(t, "old"))
	require.NoError(t, err, "the unknown-kid refresh loads the set once the IdP is back")
}

func TestJWKSResponseBodyCapped(t *testing.T) {
	k := testKeys()
	// A valid key set padded past 1 MiB with whitespace (valid JSON).
	idp := newJWKSServer(t, jwk(t, &k.rsa.PublicKey, "old", ""))
	body := *idp.body.Load()
	idp.setBody(append(append([]byte{}, body[:len(body)-1]...), append(bytes.Repeat([]byte(" "), maxJWKSBytes), '}')...))
	v := jwksVerifier(t, idp.URL, &clock{now: t0}, nil)
	_, err := v.Verify(context.Background(), rsTok(t, "old"))
	require.Equal(t, ReasonUnknownKey, Reason(err))

	// The same set under the cap loads fine.
	idp.setBody(body)
	v2 := jwksVerifier(t, idp.URL, &clock{now: t0}, nil)
	_, err = v2.Verify(context.Background(), rsTok(t, "old"))
	require.NoError(t, err)
}

func TestJWKSIgnoresSymmetricAndEncryptionKeys(t *testing.T) {
	k := testKeys()
	idp := newJWKSServer(t)
	// Served by hand: an oct (shared-secret) key and an RSA key for encryption.
	rsaJWK := jwk(t, &k.rsa.PublicKey, "enc", "")
	m := rsaJWK.Marshal()
	idp.setBody(fmt.Appendf(nil, `{"keys":[{"kty":"oct","kid":"oct","alg":"HS256","k":"%s"},{"kty":"RSA","kid":"enc","use":"enc","n":"%s","e":"%s"}]}`,
		base64.RawURLEncoding.EncodeToString([]byte(testSecret)), m.N, m.E))
	v := jwksVerifier(t, idp.URL, &clock{now: t0}, nil)

	hs := sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims(), map[string]any{"kid": "oct"})
	_, err := v.Verify(context.Background(), hs)
	require.Equal(t, ReasonAlgorithm, Reason(err), "HS256 is never accepted from a JWKS")
	_, err = v.Verify(context.Background(), rsTok(t, "enc"))
	require.Equal(t, ReasonUnknownKey, Reason(err), "use=enc keys do not verify signatures")
}

func TestJWKSRedirectOffTLSRefused(t *testing.T) {
	var hits atomic.Int64
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		// 192.0.2.0/24 is TEST-NET-1: never dialled, the redirect is refused first.
		http.Redirect(w, r, "http://192.0.2.1/jwks", http.StatusFound)
	}))
	t.Cleanup(redirector.Close)
	logs := &syncBuffer{}
	v := jwksVerifier(t, redirector.URL, &clock{now: t0}, func(c *JWTConfig) {
		c.Logger = newTestLogger(logs)
		c.JWKSTimeout = 2 * time.Second
	})
	_, err := v.Verify(context.Background(), rsTok(t, "old"))
	require.Equal(t, ReasonUnknownKey, Reason(err))
	require.EqualValues(t, 2, hits.Load(), "initial fetch and one unknown-kid refresh")
	require.Contains(t, logs.String(), "non-https")
}

func TestJWKSURLPolicy(t *testing.T) {
	tests := []struct {
		url  string
		want bool
	}{
		{"https://idp.example/.well-known/jwks.json", true},
		{"HTTPS://idp.example/jwks", true},
		{"http://127.0.0.1:8080/jwks", true},
		{"http://[::1]:8080/jwks", true},
		{"http://localhost/jwks", true},
		{"http://idp.example/jwks", false},
		{"http://10.0.0.1/jwks", false},
		{"http://127.0.0.1.evil.example/jwks", false},
		{"ftp://idp.example/jwks", false},
		{"file:///etc/passwd", false},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			u, err := url.Parse(tc.url)
			require.NoError(t, err)
			require.Equal(t, tc.want, urlAllowed(u))
		})
	}
}

func TestJWKSCloseStopsBackgroundRefresh(t *testing.T) {
	k := testKeys()
	idp := newJWKSServer(t, jwk(t, &k.rsa.PublicKey, "old", ""))
	cfg := JWTConfig{JWKSURL: idp.URL, Now: fixedNow, Issuer: testIss, Audience: testAud, JWKSRefreshInterval: 10 * time.Millisecond}
	v, err := NewJWTVerifier(context.Background(), cfg)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return idp.fetches.Load() >= 3 }, 5*time.Second, 5*time.Millisecond)
	v.Close()
	v.Close() // idempotent
	// Close returns once the refresh goroutine has: nothing is left to
	// fetch in the background, and no fetch is running.
	select {
	case <-v.jwks.done:
	default:
		t.Fatal("Close returned while the background refresh still runs")
	}
	require.True(t, v.jwks.fetchMu.TryLock(), "no fetch in flight after Close")
	v.jwks.fetchMu.Unlock()
	_, err = v.Verify(context.Background(), rsTok(t, "old"))
	require.NoError(t, err, "cached keys still verify after Close")
}
