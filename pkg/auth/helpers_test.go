package auth

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

// t0 is the fixed "now" of the tests: whole seconds, so window edges are exact.
var t0 = time.Unix(1_700_000_000, 0)

func fixedNow() time.Time { return t0 }

const (
	testSecret = "test-secret-0123456789abcdefghijklmnopqrstuvwxyz" // 48 bytes
	testIss    = "https://idp.example"
	testAud    = "keyward"
)

// Keys are generated once per test binary: RSA generation is slow.
var testKeys = sync.OnceValue(func() *keySet {
	mustRSA := func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return k
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	ec384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		panic(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return &keySet{rsa: mustRSA(), rsa2: mustRSA(), attacker: mustRSA(), ec: ec, ec384: ec384, ed: ed}
})

type keySet struct {
	rsa, rsa2, attacker *rsa.PrivateKey
	ec, ec384           *ecdsa.PrivateKey
	ed                  ed25519.PrivateKey
}

func pemPublic(t testing.TB, pub crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// claims returns a valid claim set at t0; mutate it per case.
func claims() jwt.MapClaims {
	return jwt.MapClaims{
		"sub":  "alice",
		"tier": "pro",
		"iss":  testIss,
		"aud":  testAud,
		"iat":  t0.Unix(),
		"exp":  t0.Add(time.Hour).Unix(),
	}
}

func sign(t testing.TB, m jwt.SigningMethod, key any, c jwt.MapClaims, hdr map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	for k, v := range hdr {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	require.NoError(t, err)
	return s
}

// rawToken builds a token whose header says whatever the test wants, signed
// by signer (which may use a different algorithm than the header claims).
func rawToken(t testing.TB, hdr map[string]any, c any, signer func(signingString string) []byte) string {
	t.Helper()
	h, err := json.Marshal(hdr)
	require.NoError(t, err)
	b, err := json.Marshal(c)
	require.NoError(t, err)
	ss := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(b)
	var sig []byte
	if signer != nil {
		sig = signer(ss)
	}
	return ss + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// jwksServer is a loopback IdP whose key set can be swapped and broken.
type jwksServer struct {
	*httptest.Server
	fetches atomic.Int64
	body    atomic.Pointer[[]byte]
	status  atomic.Int64
}

func newJWKSServer(t testing.TB, keys ...jwkset.JWK) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.setKeys(t, keys...)
	s.status.Store(http.StatusOK)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.fetches.Add(1)
		if code := int(s.status.Load()); code != http.StatusOK {
			http.Error(w, "idp down", code)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(*s.body.Load())
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) setKeys(t testing.TB, keys ...jwkset.JWK) {
	t.Helper()
	store := jwkset.NewMemoryStorage()
	for _, k := range keys {
		require.NoError(t, store.KeyWrite(context.Background(), k))
	}
	raw, err := store.JSONPublic(context.Background())
	require.NoError(t, err)
	b := []byte(raw)
	s.body.Store(&b)
}

func (s *jwksServer) setBody(b []byte) { s.body.Store(&b) }

func jwk(t testing.TB, key any, kid string, alg jwkset.ALG) jwkset.JWK {
	t.Helper()
	j, err := jwkset.NewJWKFromKey(key, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid, ALG: alg}})
	require.NoError(t, err)
	return j
}

// clock is a settable clock for tests that move time.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func selfSignedCert(t testing.TB, key *rsa.PrivateKey) []byte {
	t.Helper()
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "idp.example"},
		NotBefore:    t0.Add(-time.Hour),
		NotAfter:     t0.Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	require.NoError(t, err)
	return der
}

// syncBuffer collects log output written from background goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newTestLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
