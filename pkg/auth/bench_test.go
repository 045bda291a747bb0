package auth

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func BenchmarkVerifyHS256(b *testing.B) {
	v := newVerifier(b, JWTConfig{Secret: []byte(testSecret)})
	tok := sign(b, jwt.SigningMethodHS256, []byte(testSecret), claims(), nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyRS256(b *testing.B) {
	k := testKeys()
	v := newVerifier(b, JWTConfig{PublicKeyPEM: pemPublic(b, &k.rsa.PublicKey)})
	tok := sign(b, jwt.SigningMethodRS256, k.rsa, claims(), nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyRejectHuge is the cost of refusing a 1 MB token.
func BenchmarkVerifyRejectHuge(b *testing.B) {
	v := newVerifier(b, JWTConfig{Secret: []byte(testSecret)})
	huge := string(make([]byte, 1<<20))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, huge); Reason(err) != ReasonTooLarge {
			b.Fatal(err)
		}
	}
}

// alwaysFresh isolates the signature check from nonce bookkeeping.
type alwaysFresh struct{}

func (alwaysFresh) Claim(context.Context, string, string, time.Duration) (bool, error) {
	return true, nil
}

func BenchmarkHMACVerify(b *testing.B) {
	body := []byte(`{"question":"What is our MRR trend over the last quarter?","context":{"plan":"pro","seats":42}}`)
	v := newHMACVerifier(b, alwaysFresh{})
	r := signReq(b, testSigner(t0), http.MethodPost, "/api/query?b=2&a=1", body)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, r.method, r.path, r.query, r.header, r.body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHMACVerifyMemoryNonces(b *testing.B) {
	body := []byte(`{"question":"hi"}`)
	store := NewMemoryNonceStore()
	store.max = 1 << 30
	v := newHMACVerifier(b, store)
	reqs := make([]signedReq, 4096)
	for i := range reqs {
		reqs[i] = signReq(b, testSigner(t0), http.MethodPost, "/api/query", body)
	}
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == len(reqs) {
			b.StopTimer()
			store = NewMemoryNonceStore()
			store.max = 1 << 30
			v.store = store
			b.StartTimer()
			i = 0
		}
		r := reqs[i]
		i++
		if _, err := v.Verify(ctx, r.method, r.path, r.query, r.header, r.body); err != nil {
			b.Fatal(err)
		}
	}
}
