package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

func newVerifier(t testing.TB, cfg JWTConfig) *JWTVerifier {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = fixedNow
	}
	if cfg.Issuer == "" {
		cfg.Issuer = testIss
	}
	if cfg.Audience == "" {
		cfg.Audience = testAud
	}
	v, err := NewJWTVerifier(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(v.Close)
	return v
}

// es256As signs with the P-256 key but lets the header claim another
// algorithm: the "curve confusion" forgery.
func es256As(t testing.TB, key *ecdsa.PrivateKey) func(string) []byte {
	return func(ss string) []byte {
		sig, err := jwt.SigningMethodES256.Sign(ss, key)
		require.NoError(t, err)
		return sig
	}
}

func TestJWTVerifyForgeriesAndEdgeCases(t *testing.T) {
	k := testKeys()
	rsaPEM := pemPublic(t, &k.rsa.PublicKey)
	ecPEM := pemPublic(t, &k.ec.PublicKey)
	edPEM := pemPublic(t, k.ed.Public())

	// jku/x5u targets: any fetch here means the verifier followed a header.
	var headerFetches atomic.Int64
	lure := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		headerFetches.Add(1)
		_, _ = w.Write([]byte(`{"keys":[]}`))
	}))
	t.Cleanup(lure.Close)

	idp := newJWKSServer(t,
		jwk(t, &k.rsa2.PublicKey, "rs1", jwkset.AlgRS256),
		jwk(t, &k.ec.PublicKey, "ec1", ""),
	)

	hsOnly := newVerifier(t, JWTConfig{Secret: []byte(testSecret)})
	rsaOnly := newVerifier(t, JWTConfig{PublicKeyPEM: rsaPEM})
	mixed := newVerifier(t, JWTConfig{
		Secret:       []byte(testSecret),
		PublicKeyPEM: append(append(append([]byte{}, rsaPEM...), ecPEM...), edPEM...),
	})
	jwks := newVerifier(t, JWTConfig{JWKSURL: idp.URL})

	with := func(mut func(jwt.MapClaims)) jwt.MapClaims {
		c := claims()
		mut(c)
		return c
	}
	hs := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, []byte(testSecret), c, nil) }
	rs := func(c jwt.MapClaims, hdr map[string]any) string {
		return sign(t, jwt.SigningMethodRS256, k.rsa, c, hdr)
	}
	rs2 := func(m jwt.SigningMethod, kid string) string {
		return sign(t, m, k.rsa2, claims(), map[string]any{"kid": kid})
	}
	attacker := func(hdr map[string]any) string {
		return sign(t, jwt.SigningMethodRS256, k.attacker, claims(), hdr)
	}

	tests := []struct {
		name     string
		v        *JWTVerifier
		token    string
		reason   string // "" = accepted
		wantTier string
	}{
		{name: "valid HS256", v: hsOnly, token: hs(claims()), wantTier: "pro"},
		{name: "valid HS384", v: hsOnly, token: sign(t, jwt.SigningMethodHS384, []byte(testSecret), claims(), nil), wantTier: "pro"},
		{name: "valid RS256", v: mixed, token: rs(claims(), nil), wantTier: "pro"},
		{name: "valid PS256", v: mixed, token: sign(t, jwt.SigningMethodPS256, k.rsa, claims(), nil), wantTier: "pro"},
		{name: "valid ES256", v: mixed, token: sign(t, jwt.SigningMethodES256, k.ec, claims(), nil), wantTier: "pro"},
		{name: "valid EdDSA", v: mixed, token: sign(t, jwt.SigningMethodEdDSA, k.ed, claims(), nil), wantTier: "pro"},
		{name: "valid HS256 in mixed verifier", v: mixed, token: hs(claims()), wantTier: "pro"},
		{name: "valid without tier", v: hsOnly, token: hs(with(func(c jwt.MapClaims) { delete(c, "tier") }))},
		{name: "valid RS256 via JWKS kid", v: jwks, token: rs2(jwt.SigningMethodRS256, "rs1"), wantTier: "pro"},
		{name: "valid ES256 via JWKS kid", v: jwks, token: sign(t, jwt.SigningMethodES256, k.ec, claims(), map[string]any{"kid": "ec1"}), wantTier: "pro"},
		{name: "aud list containing ours", v: hsOnly, token: hs(with(func(c jwt.MapClaims) { c["aud"] = []string{"x", testAud} })), wantTier: "pro"},
		{name: "expired within leeway", v: hsOnly, token: hs(with(func(c jwt.MapClaims) { c["exp"] = t0.Add(-20 * time.Second).Unix() })), wantTier: "pro"},

		{name: "alg none", v: mixed, token: rawToken(t, map[string]any{"alg": "none", "typ": "JWT"}, claims(), nil), reason: ReasonAlgorithm},
		{name: "alg none with kid", v: jwks, token: rawToken(t, map[string]any{"alg": "none", "kid": "rs1"}, claims(), nil), reason: ReasonAlgorithm},
		{name: "unknown alg", v: mixed, token: rawToken(t, map[string]any{"alg": "HS1"}, claims(), nil), reason: ReasonAlgorithm},
		{name: "HS256 signed with the RSA public key PEM, RSA-only verifier", v: rsaOnly, token: sign(t, jwt.SigningMethodHS256, rsaPEM, claims(), nil), reason: ReasonAlgorithm},
		{name: "HS256 signed with the RSA public key PEM, mixed verifier", v: mixed, token: sign(t, jwt.SigningMethodHS256, rsaPEM, claims(), nil), reason: ReasonSignature},
		{name: "HS256 with the RSA PEM against JWKS", v: jwks, token: sign(t, jwt.SigningMethodHS256, rsaPEM, claims(), map[string]any{"kid": "rs1"}), reason: ReasonAlgorithm},
		{name: "wrong secret", v: hsOnly, token: sign(t, jwt.SigningMethodHS256, []byte(strings.Repeat("x", 40)), claims(), nil), reason: ReasonSignature},
		{name: "RS256 by a stranger's key", v: rsaOnly, token: attacker(nil), reason: ReasonSignature},
		{name: "expired beyond leeway", v: hsOnly, token: hs(with(func(c jwt.MapClaims) { c["exp"] = t0.Add(-120 * time.Second).Unix() })), reason: ReasonExpired},
		{name: "no exp", v: hsOnly, token: hs(with(func(c jwt.MapClaims) { delete(c, "exp") })), reason: ReasonClaims},
		{name: "exp of the wrong type", v: hsOnly, token: hs(with(func(c jwt.MapClaims) { c["exp"] = "tomorrow" })), reason: ReasonClaims},
		{name: "nbf in the future", v: hsOnly, token: hs(with(func(c jwt.MapClaims) { c["nbf"] = t0.Add(120 * time.Second).Unix() })), reason: ReasonNotYetValid},
		{name: "nbf within leeway", v: hsOnly, token: hs(with(func(c jwt.MapClaims) { c["nbf"] = t0.Add(20 * time.Second).Unix() })), wantTier: "pro"},
		{name: "iat in the future", v: hsOnly, token: hs(with(func(c jwt.MapClaims) { c["iat"] = t0.Add(120 * time.Second).Unix() })), reason: ReasonNotYetValid},
		{name: "wrong aud", v: hsOnly, token: hs(with(func(c jwt.MapClaims) { c["aud"] = "other-api" })), reason: ReasonClaims},
		{name: "missing aud", v: hsOnly, token: hs(with(func(c jwt.MapClaims) { delete(c, "aud") })), reason: ReasonClaims},
		{name: "wrong iss", v: hsOnly, token: hs(with(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" })), reason: ReasonClaims},
		{name: "missing iss", v: hsOnly, token: hs(with(func(c jwt.MapClaims) { delete(c, "iss") })), reason: ReasonClaims},
		{name: "missing sub", v: hsOnly, token: hs(with(func(c jwt.MapClaims) { delete(c, "sub") })), reason: ReasonClaims},
		{name: "empty sub", v: hsOnly, token: hs(with(func(c jwt.MapClaims) { c["sub"] = "" })), reason: ReasonClaims},
		{name: "numeric sub", v: hsOnly, token: hs(with(func(c jwt.MapClaims) { c["sub"] = 42 })), reason: ReasonClaims},
		{name: "tier not a string", v: hsOnly, token: hs(with(func(c jwt.MapClaims) { c["tier"] = []string{"pro"} })), reason: ReasonClaims},
		{name: "unknown kid", v: jwks, token: rs2(jwt.SigningMethodRS256, "nope"), reason: ReasonUnknownKey},
		{name: "path traversal kid", v: jwks, token: rs2(jwt.SigningMethodRS256, "../../dev/null"), reason: ReasonUnknownKey},
		{name: "SQL-ish kid", v: jwks, token: rs2(jwt.SigningMethodRS256, "' OR 1=1--"), reason: ReasonUnknownKey},
		{name: "empty kid searches every JWKS key", v: jwks, token: rs2(jwt.SigningMethodRS256, ""), wantTier: "pro"},
		{name: "kid not a string", v: jwks, token: rawToken(t, map[string]any{"alg": "RS256", "kid": 7}, claims(), func(ss string) []byte {
			sig, err := jwt.SigningMethodRS256.Sign(ss, k.rsa2)
			require.NoError(t, err)
			return sig
		}), reason: ReasonMalformed},
		{name: "jku to a local server", v: jwks, token: attacker(map[string]any{"kid": "attacker", "jku": lure.URL}), reason: ReasonUnknownKey},
		{name: "jku with a known kid", v: jwks, token: attacker(map[string]any{"kid": "rs1", "jku": lure.URL}), reason: ReasonSignature},
		{name: "x5u header", v: rsaOnly, token: attacker(map[string]any{"x5u": lure.URL}), reason: ReasonSignature},
		{name: "embedded jwk header", v: rsaOnly, token: attacker(map[string]any{"jwk": map[string]any{"kty": "RSA", "n": "AQAB", "e": "AQAB"}}), reason: ReasonSignature},
		{name: "garbage", v: mixed, token: "garbage", reason: ReasonMalformed},
		{name: "two dots of garbage", v: mixed, token: "a.b.c", reason: ReasonMalformed},
		{name: "four segments", v: mixed, token: hs(claims()) + ".x", reason: ReasonMalformed},
		{name: "claims not an object", v: hsOnly, token: rawToken(t, map[string]any{"alg": "HS256"}, []int{1}, nil), reason: ReasonMalformed},
		{name: "no alg", v: hsOnly, token: rawToken(t, map[string]any{"typ": "JWT"}, claims(), nil), reason: ReasonMalformed},
		{name: "1 MB token", v: mixed, token: "Bearer " + strings.Repeat(".", 1<<20), reason: ReasonTooLarge},
		{name: "empty", v: mixed, token: "", reason: ReasonMalformed},
		{name: "expired and bad signature says bad", v: hsOnly, token: sign(t, jwt.SigningMethodHS256, []byte(strings.Repeat("y", 40)), with(func(c jwt.MapClaims) { c["exp"] = t0.Add(-time.Hour).Unix() }), nil), reason: ReasonSignature},
		{name: "expired and tampered payload says bad", v: hsOnly, token: tamper(t, hs(with(func(c jwt.MapClaims) { c["exp"] = t0.Add(-time.Hour).Unix() }))), reason: ReasonSignature},
		{name: "RS512 when the JWK pins RS256", v: jwks, token: rs2(jwt.SigningMethodRS512, "rs1"), reason: ReasonAlgorithm},
		{name: "ES384 header on a P-256 key", v: mixed, token: rawToken(t, map[string]any{"alg": "ES384"}, claims(), es256As(t, k.ec)), reason: ReasonAlgorithm},
		{name: "ES384 header on a P-256 JWKS key", v: jwks, token: rawToken(t, map[string]any{"alg": "ES384", "kid": "ec1"}, claims(), es256As(t, k.ec)), reason: ReasonAlgorithm},
		{name: "ES256 on a verifier with only RSA", v: rsaOnly, token: sign(t, jwt.SigningMethodES256, k.ec, claims(), nil), reason: ReasonAlgorithm},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, err := tc.v.Verify(context.Background(), tc.token)
			if tc.reason == "" {
				require.NoError(t, err)
				require.Equal(t, Identity{Subject: "alice", Tier: tc.wantTier, Method: "jwt"}, withoutTimes(id))
				require.False(t, id.ExpiresAt.IsZero(), "exp is reported for revocation")
				return
			}
			require.Error(t, err)
			require.ErrorIs(t, err, ErrUnauthenticated)
			require.Equal(t, tc.reason, Reason(err), "error: %v", err)
			require.Equal(t, Identity{}, id)
			if len(tc.token) > 8 {
				require.NotContains(t, err.Error(), tc.token)
				for _, seg := range strings.Split(tc.token, ".") {
					if len(seg) > 8 {
						require.NotContains(t, err.Error(), seg)
					}
				}
			}
			require.NotContains(t, err.Error(), "alice")
		})
	}
	require.Zero(t, headerFetches.Load(), "a jku/x5u header was followed")
}

// tamper rewrites the payload (sub becomes mallory) and keeps the signature.
func tamper(t testing.TB, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	var c map[string]any
	require.NoError(t, json.Unmarshal(raw, &c))
	c["sub"] = "mallory"
	raw, err = json.Marshal(c)
	require.NoError(t, err)
	parts[1] = base64.RawURLEncoding.EncodeToString(raw)
	return strings.Join(parts, ".")
}

func TestJWTHugeTokenRefusedBeforeParsing(t *testing.T) {
	v := newVerifier(t, JWTConfig{Secret: []byte(testSecret)})
	huge := strings.Repeat(".", 1<<20)
	ctx := context.Background()
	// Parsing a megabyte would allocate at least a megabyte; refusing on
	// length alone allocates almost nothing, whatever the size.
	allocs := testing.AllocsPerRun(20, func() {
		_, err := v.Verify(ctx, huge)
		if Reason(err) != ReasonTooLarge {
			t.Fatalf("reason %q, want too_large", Reason(err))
		}
	})
	require.LessOrEqual(t, allocs, 5.0)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < 100; i++ {
		_, _ = v.Verify(ctx, huge)
	}
	runtime.ReadMemStats(&after)
	// Parsing would cost at least 100 x 1 MiB here.
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(64<<10))

	// One byte over the limit is refused, the limit itself is parsed.
	small := newVerifier(t, JWTConfig{Secret: []byte(testSecret), MaxTokenBytes: 512})
	tok := sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims(), nil)
	require.Less(t, len(tok), 512)
	padded := tok + strings.Repeat("A", 512-len(tok)) // same token, longer signature segment
	_, err := small.Verify(ctx, padded)
	require.NotEqual(t, ReasonTooLarge, Reason(err))
	_, err = small.Verify(ctx, padded+"A")
	require.Equal(t, ReasonTooLarge, Reason(err))
}

func TestJWTMintedTokenRoundTrip(t *testing.T) {
	tok, err := MintHS256([]byte(testSecret), MintClaims{Subject: "bob", Tier: "free", Issuer: testIss, Audience: testAud, TTL: time.Minute, Now: t0})
	require.NoError(t, err)
	v := newVerifier(t, JWTConfig{Secret: []byte(testSecret)})
	id, err := v.Verify(context.Background(), tok)
	require.NoError(t, err)
	require.Equal(t, Identity{Subject: "bob", Tier: "free", Method: "jwt"}, withoutTimes(id))

	late := newVerifier(t, JWTConfig{Secret: []byte(testSecret), Now: func() time.Time { return t0.Add(time.Minute + 31*time.Second) }})
	_, err = late.Verify(context.Background(), tok)
	require.Equal(t, ReasonExpired, Reason(err))
}

func TestJWTMaxLifetime(t *testing.T) {
	v := newVerifier(t, JWTConfig{Secret: []byte(testSecret), MaxLifetime: time.Hour})
	hs := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, []byte(testSecret), c, nil) }
	tests := []struct {
		name   string
		iat    any
		exp    time.Time
		reason string
	}{
		{"one hour", t0.Unix(), t0.Add(time.Hour), ""},
		{"one day", t0.Unix(), t0.Add(24 * time.Hour), ReasonClaims},
		{"issued long ago, expiring soon", t0.Add(-23 * time.Hour).Unix(), t0.Add(time.Hour), ReasonClaims},
		{"no iat, short", nil, t0.Add(30 * time.Minute), ""},
		{"no iat, a year", nil, t0.Add(365 * 24 * time.Hour), ReasonClaims},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := claims()
			c["exp"] = tc.exp.Unix()
			if tc.iat == nil {
				delete(c, "iat")
			} else {
				c["iat"] = tc.iat
			}
			_, err := v.Verify(context.Background(), hs(c))
			require.Equal(t, tc.reason, Reason(err), "%v", err)
		})
	}
}

func TestJWTCustomTierClaimAndAlgorithms(t *testing.T) {
	k := testKeys()
	c := claims()
	c["https://example.com/plan"] = "enterprise"
	v := newVerifier(t, JWTConfig{PublicKeyPEM: pemPublic(t, &k.rsa.PublicKey), TierClaim: "https://example.com/plan", Algorithms: []string{"RS256"}})
	require.Equal(t, []string{"RS256"}, v.Algorithms())
	id, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodRS256, k.rsa, c, nil))
	require.NoError(t, err)
	require.Equal(t, "enterprise", id.Tier)

	// RS512 with the right key is still refused when only RS256 is configured.
	_, err = v.Verify(context.Background(), sign(t, jwt.SigningMethodRS512, k.rsa, c, nil))
	require.Equal(t, ReasonAlgorithm, Reason(err))
}

func TestNewJWTVerifierRejectsBadConfig(t *testing.T) {
	k := testKeys()
	privDER, err := x509.MarshalPKCS8PrivateKey(k.rsa)
	require.NoError(t, err)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	tests := []struct {
		name string
		cfg  JWTConfig
		want string
	}{
		{"nothing configured", JWTConfig{}, "no key source"},
		{"short secret", JWTConfig{Secret: []byte("short")}, "at least 32"},
		{"not PEM", JWTConfig{PublicKeyPEM: []byte("hello")}, "no PEM block"},
		{"private key", JWTConfig{PublicKeyPEM: pemBlock("PRIVATE KEY", privDER)}, "private key"},
		{"RSA 1024", JWTConfig{PublicKeyPEM: pemPublic(t, &small.PublicKey)}, "at least 2048"},
		{"P-384 is fine but trailing junk is not", JWTConfig{PublicKeyPEM: append(pemPublic(t, &k.ec384.PublicKey), "junk"...)}, "trailing data"},
		{"plain http JWKS", JWTConfig{JWKSURL: "http://idp.example/jwks"}, "https"},
		{"JWKS without host", JWTConfig{JWKSURL: "https:///jwks"}, "no host"},
		{"algorithms that fit no key", JWTConfig{Secret: []byte(testSecret), Algorithms: []string{"RS256"}}, "none of the configured algorithms"},
		{"negative leeway", JWTConfig{Secret: []byte(testSecret), Leeway: -time.Second}, "negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewJWTVerifier(context.Background(), tc.cfg)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestJWTPublicKeyFormats(t *testing.T) {
	k := testKeys()
	tok := sign(t, jwt.SigningMethodRS256, k.rsa, claims(), nil)
	cert := selfSignedCert(t, k.rsa)
	for name, pemBytes := range map[string][]byte{
		"PKIX":                          pemPublic(t, &k.rsa.PublicKey),
		"PKCS1":                         pemBlock("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)),
		"certificate":                   pemBlock("CERTIFICATE", cert),
		"second of two keys (rotation)": append(pemPublic(t, &k.rsa2.PublicKey), pemPublic(t, &k.rsa.PublicKey)...),
	} {
		t.Run(name, func(t *testing.T) {
			v := newVerifier(t, JWTConfig{PublicKeyPEM: pemBytes})
			id, err := v.Verify(context.Background(), tok)
			require.NoError(t, err)
			require.Equal(t, "alice", id.Subject)
		})
	}
}

func TestJWTVerifyConcurrent(t *testing.T) {
	v := newVerifier(t, JWTConfig{Secret: []byte(testSecret)})
	good := sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims(), nil)
	bad := tamper(t, good)
	errs := make(chan error, 64)
	for i := 0; i < 64; i++ {
		go func() {
			tok := good
			if i%2 == 1 {
				tok = bad
			}
			_, err := v.Verify(context.Background(), tok)
			if (err == nil) != (i%2 == 0) {
				errs <- errors.New("wrong outcome")
				return
			}
			errs <- nil
		}()
	}
	for i := 0; i < 64; i++ {
		require.NoError(t, <-errs)
	}
}

// withoutTimes drops iat and exp, which depend on when a token was minted.
func withoutTimes(id Identity) Identity {
	id.IssuedAt, id.ExpiresAt = time.Time{}, time.Time{}
	return id
}
