package auth

import (
	"context"
	"crypto/hmac"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var knownReasons = []string{
	ReasonMissing, ReasonMalformed, ReasonTooLarge, ReasonSignature, ReasonAlgorithm, ReasonExpired,
	ReasonNotYetValid, ReasonClaims, ReasonUnknownKey, ReasonTimestamp, ReasonReplay, ReasonIPDenied,
}

// Seed corpora live in testdata/fuzz/<FuzzName>/ as well; run e.g.
// go test -run '^$' -fuzz FuzzVerifyHeaders -fuzztime 30s ./auth/
func FuzzCanonicalString(f *testing.F) {
	f.Add("POST", "/api/query", "b=2&a=1", int64(1700000000), "7f3c9a1e5b2d4c6f8a0b1c2d3e4f5a6b", []byte(`{"question":"hi"}`))
	f.Add("GET", "/a%2Fb", "q=a+b&q=%C3%A9&flag", int64(-1), "nonce_nonce-nonce", []byte{})
	f.Add("GET", "/", "a=%zz;b", int64(0), "short", []byte(nil))
	f.Fuzz(func(t *testing.T, method, path, query string, ts int64, nonce string, body []byte) {
		s, err := CanonicalString(method, path, query, ts, nonce, body)
		if err != nil {
			return
		}
		lines := strings.Split(s, "\n")
		if len(lines) != 7 {
			t.Fatalf("canonical string has %d lines: %q", len(lines), s)
		}
		if lines[0] != hmacVersion || lines[1] != method || lines[2] != path ||
			lines[4] != strconv.FormatInt(ts, 10) || lines[5] != nonce || len(lines[6]) != 64 {
			t.Fatalf("fields not where the scheme says: %q", s)
		}
		// The canonical query is a fixed point: canonicalising it again
		// changes nothing, so signer and verifier always agree.
		again, err := canonicalQuery(lines[3])
		if err != nil || again != lines[3] {
			t.Fatalf("canonical query %q not stable: %q, %v", lines[3], again, err)
		}
		if s2, _ := CanonicalString(method, path, query, ts, nonce, body); s2 != s {
			t.Fatal("not deterministic")
		}
	})
}

func FuzzVerifyHeaders(f *testing.F) {
	const secret = "fuzz-secret-0123456789abcdefghijklmnop"
	valid := func(method, path, query string, body []byte) string {
		c, err := CanonicalString(method, path, query, 1700000000, "nonce-0123456789ab", body)
		if err != nil {
			panic(err)
		}
		return "v1=" + hex.EncodeToString(computeMAC([]byte(secret), c))
	}
	f.Add("k1", "1700000000", "nonce-0123456789ab", valid("POST", "/api/query", "", []byte("{}")), "POST", "/api/query", "", []byte("{}"))
	f.Add("k1", "1700000000", "nonce-0123456789ab", valid("GET", "/x", "a=1", nil)+",v1=00", "GET", "/x", "a=1", []byte(nil))
	f.Add("k1", "+1700000000", "nonce-0123456789ab", "v1=zz", "POST", "", "%", []byte("x"))
	f.Add("", "", "", "", "", "", "", []byte(nil))
	f.Fuzz(func(t *testing.T, kid, ts, nonce, sig, method, path, query string, body []byte) {
		v, err := NewHMACVerifier([]HMACKey{{ID: "k1", Secret: []byte(secret)}}, NewMemoryNonceStore(),
			HMACOptions{Now: func() time.Time { return time.Unix(1700000000, 0) }})
		if err != nil {
			t.Fatal(err)
		}
		h := http.Header{}
		for k, val := range map[string]string{HeaderKeyID: kid, HeaderTimestamp: ts, HeaderNonce: nonce, HeaderSignature: sig} {
			if val != "" {
				h.Set(k, val)
			}
		}
		id, err := v.Verify(context.Background(), method, path, query, h, body)
		if err != nil {
			if !slices.Contains(knownReasons, Reason(err)) {
				t.Fatalf("rejection without a known reason: %v", err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatal("secret in error")
			}
			return
		}
		// Accepted: it must carry a genuine signature over exactly these inputs.
		if id.Subject != "hmac:k1" {
			t.Fatalf("identity %+v", id)
		}
		n, _ := strconv.ParseInt(strings.TrimSpace(ts), 10, 64)
		p := path
		if p == "" {
			p = "/"
		}
		c, err := CanonicalString(method, p, query, n, strings.TrimSpace(nonce), body)
		if err != nil {
			t.Fatalf("accepted a request with no canonical form: %v", err)
		}
		want := computeMAC([]byte(secret), c)
		sigs, err := parseSignatures(strings.TrimSpace(sig))
		if err != nil || !slices.ContainsFunc(sigs, func(s []byte) bool { return hmac.Equal(s, want) }) {
			t.Fatal("accepted without a valid signature")
		}
	})
}

func FuzzVerifyToken(f *testing.F) {
	k := testKeys()
	v, err := NewJWTVerifier(context.Background(), JWTConfig{
		Secret: []byte(testSecret), PublicKeyPEM: pemPublic(f, &k.rsa.PublicKey), Now: fixedNow, MaxTokenBytes: 4096,
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(v.Close)
	f.Add(sign(f, jwt.SigningMethodHS256, []byte(testSecret), claims(), nil))
	f.Add(sign(f, jwt.SigningMethodRS256, k.rsa, claims(), map[string]any{"kid": "../../dev/null", "jku": "http://127.0.0.1:1/"}))
	f.Add(rawToken(f, map[string]any{"alg": "none"}, claims(), nil))
	f.Add("eyJhbGciOiJIUzI1NiJ9.e30.")
	f.Add("...")
	f.Fuzz(func(t *testing.T, token string) {
		id, err := v.Verify(context.Background(), token)
		if err == nil {
			if id.Subject == "" || id.Method != "jwt" {
				t.Fatalf("accepted with identity %+v", id)
			}
			return
		}
		if !errors.Is(err, ErrUnauthenticated) || !slices.Contains(knownReasons, Reason(err)) {
			t.Fatalf("rejection without a known reason: %v", err)
		}
		if len(token) >= 16 && strings.Contains(err.Error(), token) {
			t.Fatal("token in error text")
		}
	})
}
