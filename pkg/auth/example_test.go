package auth_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/keyward/keyward/pkg/auth"
	"github.com/redis/go-redis/v9"
)

var exampleNow = time.Unix(1_700_000_000, 0)

const exampleSecret = "example-secret-at-least-32-bytes-long!!"

func ExampleMintHS256() {
	tok, err := auth.MintHS256([]byte(exampleSecret), auth.MintClaims{
		Subject: "alice", Tier: "pro", TTL: time.Hour, Now: exampleNow,
	})
	if err != nil {
		panic(err)
	}
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	fmt.Println(string(payload))
	// Output: {"exp":1700003600,"iat":1700000000,"nbf":1700000000,"sub":"alice","tier":"pro"}
}

func ExampleJWTVerifier_Verify() {
	ctx := context.Background()
	v, err := auth.NewJWTVerifier(ctx, auth.JWTConfig{
		Secret: []byte(exampleSecret),
		Issuer: "https://idp.example",
		Now:    func() time.Time { return exampleNow },
	})
	if err != nil {
		panic(err)
	}
	defer v.Close()

	good, _ := auth.MintHS256([]byte(exampleSecret), auth.MintClaims{
		Subject: "alice", Tier: "pro", Issuer: "https://idp.example", TTL: time.Hour, Now: exampleNow,
	})
	id, err := v.Verify(ctx, good)
	fmt.Println(id.Subject, id.Tier, id.Method, id.ExpiresAt.Sub(id.IssuedAt), err)

	stale, _ := auth.MintHS256([]byte(exampleSecret), auth.MintClaims{
		Subject: "alice", Issuer: "https://idp.example", TTL: time.Hour, Now: exampleNow.Add(-2 * time.Hour),
	})
	_, err = v.Verify(ctx, stale)
	fmt.Println(auth.Reason(err), errors.Is(err, auth.ErrUnauthenticated))

	_, err = v.Verify(ctx, "not-a-jwt")
	fmt.Println(auth.Reason(err))
	// Output:
	// alice pro jwt 1h0m0s <nil>
	// expired true
	// malformed
}

func ExampleSigner_Sign() {
	body := []byte(`{"question":"What is our MRR trend?","context":{}}`)
	req, _ := http.NewRequest(http.MethodPost, "http://localhost:5001/api/query?b=2&a=1", bytes.NewReader(body))
	s := auth.Signer{
		KeyID:  "docs-example",
		Secret: []byte("keyward-docs-example-secret-0123456789"),
		// Fixed here for a reproducible output; leave both nil in real code.
		Now:   func() time.Time { return exampleNow },
		Nonce: func() string { return "7f3c9a1e5b2d4c6f8a0b1c2d3e4f5a6b" },
	}
	if err := s.Sign(req, body); err != nil {
		panic(err)
	}
	for _, h := range []string{auth.HeaderKeyID, auth.HeaderTimestamp, auth.HeaderNonce, auth.HeaderSignature} {
		fmt.Printf("%s: %s\n", h, req.Header.Get(h))
	}
	// Output:
	// X-Keyward-Key-Id: docs-example
	// X-Keyward-Timestamp: 1700000000
	// X-Keyward-Nonce: 7f3c9a1e5b2d4c6f8a0b1c2d3e4f5a6b
	// X-Keyward-Signature: v1=e358fc40eae099427b31865ef24fcabdf1959f822e8de7c049520f37c0dce856
}

func ExampleHMACVerifier_Verify() {
	secret := []byte("keyward-docs-example-secret-0123456789")
	now := func() time.Time { return exampleNow }
	v, err := auth.NewHMACVerifier([]auth.HMACKey{{ID: "billing-job", Secret: secret}}, auth.NewMemoryNonceStore(), auth.HMACOptions{Now: now})
	if err != nil {
		panic(err)
	}
	body := []byte(`{"query_type":"mrr_analysis","parameters":{"time_period":"last_30_days"}}`)
	req, _ := http.NewRequest(http.MethodPost, "http://gateway/api/analytics-query", bytes.NewReader(body))
	_ = auth.Signer{KeyID: "billing-job", Secret: secret, Now: now}.Sign(req, body)

	// Server side: the gateway passes what it received.
	id, err := v.Verify(context.Background(), req.Method, req.URL.EscapedPath(), req.URL.RawQuery, req.Header, body)
	fmt.Println(id.Subject, err)
	_, err = v.Verify(context.Background(), req.Method, req.URL.EscapedPath(), req.URL.RawQuery, req.Header, body)
	fmt.Println(auth.Reason(err)) // the same request again
	// Output:
	// hmac:billing-job <nil>
	// replay
}

func ExampleCanonicalString() {
	s, err := auth.CanonicalString("GET", "/api/rate-limit-status", "z=1&a=%7e&a=b+c", 1700000000, "nonce-0123456789ab", nil)
	if err != nil {
		panic(err)
	}
	fmt.Println(s)
	// Output:
	// keyward-hmac-v1
	// GET
	// /api/rate-limit-status
	// a=b%20c&a=~&z=1
	// 1700000000
	// nonce-0123456789ab
	// e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
}

func ExamplePresent() {
	h := http.Header{}
	fmt.Println(auth.Present(h))
	h.Set(auth.HeaderKeyID, "svc")
	fmt.Println(auth.Present(h))
	// Output:
	// false
	// true
}

func ExampleParseHMACKeys() {
	keys, err := auth.ParseHMACKeys("svc-a:0123456789abcdef0123456789abcdef, svc-b:fedcba9876543210fedcba9876543210")
	fmt.Println(len(keys), keys[0].ID, keys[1].ID, err)

	_, err = auth.ParseHMACKeys("svc-c:too-short")
	fmt.Println(err)
	// Output:
	// 2 svc-a svc-b <nil>
	// hmac key "svc-c": secret is 9 bytes, at least 32 required
}

func ExampleNewRedisNonceStore() {
	opt, err := redis.ParseURL(os.Getenv("KEYWARD_REDIS_URL"))
	if err != nil {
		fmt.Println("KEYWARD_REDIS_URL:", err)
		return
	}
	// Two replicas, each with its own client, sharing one Redis and prefix.
	replicaA, replicaB := redis.NewClient(opt), redis.NewClient(opt)
	defer replicaA.Close()
	defer replicaB.Close()
	a := auth.NewRedisNonceStore(replicaA, "keyward:v1:")
	b := auth.NewRedisNonceStore(replicaB, "keyward:v1:")
	ctx := context.Background()
	// A nonce accepted by one replica is a replay on every other.
	first, err := a.Claim(ctx, "svc", "nonce-example-0123456789", 10*time.Minute)
	if err != nil {
		fmt.Println("claim:", err)
		return
	}
	replay, _ := b.Claim(ctx, "svc", "nonce-example-0123456789", 10*time.Minute)
	fmt.Println(first, replay)
	_, _ = auth.NewHMACVerifier([]auth.HMACKey{{ID: "svc", Secret: []byte(exampleSecret)}}, a, auth.HMACOptions{})
	// Output: true false
}

func ExampleNewMemoryNonceStore() {
	store := auth.NewMemoryNonceStore()
	first, _ := store.Claim(context.Background(), "svc", "nonce-0123456789ab", 10*time.Minute)
	again, _ := store.Claim(context.Background(), "svc", "nonce-0123456789ab", 10*time.Minute)
	fmt.Println(first, again)
	// Output: true false
}

func ExampleHashSubject() {
	fmt.Println(auth.HashSubject("alice"))
	// Output: 9224a033b9e463048bd99b3173eb31ba
}

func ExampleBearerToken() {
	h := http.Header{}
	h.Set("Authorization", "Bearer eyJhbGciOi...")
	fmt.Println(auth.BearerToken(h, false))

	sdk := http.Header{}
	sdk.Set("x-api-key", "eyJhbGciOi...") // what Anthropic SDKs send
	fmt.Println(auth.BearerToken(sdk, true))

	basic := http.Header{}
	basic.Set("Authorization", "Basic dXNlcjpwYXNz")
	tok, present := auth.BearerToken(basic, true)
	fmt.Printf("%q %v\n", tok, present) // present but unusable: answer 401
	// Output:
	// eyJhbGciOi... true
	// eyJhbGciOi... true
	// "" true
}

func ExampleParsePrefixes() {
	p, err := auth.ParsePrefixes("10.0.0.0/8, 203.0.113.9, 2001:db8::/32")
	fmt.Println(p, err)
	// Output: [10.0.0.0/8 203.0.113.9/32 2001:db8::/32] <nil>
}

func ExampleIdentityKeyForIP() {
	for _, s := range []string{"203.0.113.9", "::ffff:203.0.113.9", "2001:db8::1", "2001:DB8:0:0::ffff"} {
		fmt.Println(auth.IdentityKeyForIP(netip.MustParseAddr(s)))
	}
	// Output:
	// ip:203.0.113.9
	// ip:203.0.113.9
	// ip:2001:db8::/64
	// ip:2001:db8::/64
}

func ExampleAllowlist_Allows() {
	prefixes, _ := auth.ParsePrefixes("10.0.0.0/8")
	a := auth.NewAllowlist(prefixes)
	fmt.Println(a.Allows(netip.MustParseAddr("10.1.2.3")), a.Allows(netip.MustParseAddr("::ffff:10.1.2.3")), a.Allows(netip.MustParseAddr("192.0.2.1")))
	fmt.Println(auth.NewAllowlist(nil).Allows(netip.MustParseAddr("192.0.2.1")))
	// Output:
	// true true false
	// true
}

func ExampleReason() {
	_, err := auth.ParsePrefixes("nope")
	fmt.Printf("%q\n", auth.Reason(err)) // not an auth rejection

	v, _ := auth.NewJWTVerifier(context.Background(), auth.JWTConfig{Secret: []byte(exampleSecret)})
	defer v.Close()
	_, err = v.Verify(context.Background(), strings.Repeat("a", 10_000))
	fmt.Println(auth.Reason(err)) // use as the keyward_auth_failures_total label
	// Output:
	// ""
	// too_large
}
