package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/pkg/redistest"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

const (
	hmacKeyID  = "svc-a"
	hmacSecret = "hmac-secret-0123456789abcdefghijklmnop" // 38 bytes
)

var nonceSeq atomic.Int64

// seqNonce gives each signed request in a test binary a distinct nonce.
func seqNonce() string { return fmt.Sprintf("nonce-%016d", nonceSeq.Add(1)) }

type signedReq struct {
	method, path, query string
	header              http.Header
	body                []byte
}

func signReq(t testing.TB, s Signer, method, target string, body []byte) signedReq {
	t.Helper()
	req, err := http.NewRequest(method, "http://gateway.test"+target, bytes.NewReader(body))
	require.NoError(t, err)
	require.NoError(t, s.Sign(req, body))
	return signedReq{method: req.Method, path: req.URL.EscapedPath(), query: req.URL.RawQuery, header: req.Header, body: body}
}

func (r signedReq) verify(v *HMACVerifier) (Identity, error) {
	return v.Verify(context.Background(), r.method, r.path, r.query, r.header, r.body)
}

func testSigner(at time.Time) Signer {
	return Signer{KeyID: hmacKeyID, Secret: []byte(hmacSecret), Now: func() time.Time { return at }, Nonce: seqNonce}
}

func newHMACVerifier(t testing.TB, store NonceStore, keys ...HMACKey) *HMACVerifier {
	t.Helper()
	if len(keys) == 0 {
		keys = []HMACKey{{ID: hmacKeyID, Secret: []byte(hmacSecret)}}
	}
	v, err := NewHMACVerifier(keys, store, HMACOptions{Now: fixedNow})
	require.NoError(t, err)
	return v
}

func TestHMACVerify(t *testing.T) {
	body := []byte(`{"question":"What is our churn?","context":{}}`)
	v := newHMACVerifier(t, NewMemoryNonceStore())

	t.Run("valid", func(t *testing.T) {
		r := signReq(t, testSigner(t0), http.MethodPost, "/api/query?b=2&a=1", body)
		id, err := r.verify(v)
		require.NoError(t, err)
		require.Equal(t, Identity{Subject: "hmac:svc-a", Method: "hmac"}, id)
	})

	tests := []struct {
		name   string
		signAt time.Time
		mutate func(*signedReq)
		reason string
	}{
		{name: "ts 299s in the past", signAt: t0.Add(-299 * time.Second)},
		{name: "ts 299s in the future", signAt: t0.Add(299 * time.Second)},
		{name: "ts exactly 300s old", signAt: t0.Add(-300 * time.Second)},
		{name: "query order does not matter", mutate: func(r *signedReq) { r.query = "a=1&b=2" }},
		{name: "query encoding does not matter", mutate: func(r *signedReq) { r.query = "%61=1&b=%32" }},
		{name: "ts 301s in the past", signAt: t0.Add(-301 * time.Second), reason: ReasonTimestamp},
		{name: "ts 301s in the future", signAt: t0.Add(301 * time.Second), reason: ReasonTimestamp},
		{name: "one body byte flipped", mutate: func(r *signedReq) { r.body = bytes.Clone(r.body); r.body[3] ^= 1 }, reason: ReasonSignature},
		{name: "body truncated", mutate: func(r *signedReq) { r.body = r.body[:len(r.body)-1] }, reason: ReasonSignature},
		{name: "other path", mutate: func(r *signedReq) { r.path = "/api/analytics-query" }, reason: ReasonSignature},
		{name: "other method", mutate: func(r *signedReq) { r.method = http.MethodPut }, reason: ReasonSignature},
		{name: "query value changed", mutate: func(r *signedReq) { r.query = "b=2&a=2" }, reason: ReasonSignature},
		{name: "query parameter added", mutate: func(r *signedReq) { r.query += "&c=3" }, reason: ReasonSignature},
		{name: "nonce swapped", mutate: func(r *signedReq) { r.header.Set(HeaderNonce, "another-nonce-0000000") }, reason: ReasonSignature},
		{name: "timestamp edited", mutate: func(r *signedReq) { r.header.Set(HeaderTimestamp, strconv.FormatInt(t0.Unix()+1, 10)) }, reason: ReasonSignature},
		{name: "unknown key id", mutate: func(r *signedReq) { r.header.Set(HeaderKeyID, "svc-b") }, reason: ReasonUnknownKey},
		{name: "signature of another scheme only", mutate: func(r *signedReq) { r.header.Set(HeaderSignature, "v0="+strings.Repeat("ab", 32)) }, reason: ReasonMalformed},
		{name: "signature not hex", mutate: func(r *signedReq) { r.header.Set(HeaderSignature, "v1="+strings.Repeat("zz", 32)) }, reason: ReasonMalformed},
		{name: "signature too short", mutate: func(r *signedReq) { r.header.Set(HeaderSignature, "v1=abcd") }, reason: ReasonMalformed},
		{name: "signature without scheme", mutate: func(r *signedReq) { r.header.Set(HeaderSignature, strings.Repeat("ab", 32)) }, reason: ReasonMalformed},
		{name: "signature empty", mutate: func(r *signedReq) { r.header.Set(HeaderSignature, "") }, reason: ReasonMalformed},
		{name: "signature header huge", mutate: func(r *signedReq) { r.header.Set(HeaderSignature, strings.Repeat("v1=00,", 1000)) }, reason: ReasonMalformed},
		{name: "wrong signature", mutate: func(r *signedReq) { r.header.Set(HeaderSignature, "v1="+strings.Repeat("00", 32)) }, reason: ReasonSignature},
		{name: "right signature among several", mutate: func(r *signedReq) {
			r.header.Set(HeaderSignature, "v1="+strings.Repeat("00", 32)+", v1="+strings.TrimPrefix(r.header.Get(HeaderSignature), "v1=")+",v2=future")
		}},
		{name: "timestamp not a number", mutate: func(r *signedReq) { r.header.Set(HeaderTimestamp, "yesterday") }, reason: ReasonMalformed},
		{name: "timestamp negative", mutate: func(r *signedReq) { r.header.Set(HeaderTimestamp, "-1") }, reason: ReasonMalformed},
		{name: "timestamp in ms", mutate: func(r *signedReq) { r.header.Set(HeaderTimestamp, strconv.FormatInt(t0.UnixMilli(), 10)) }, reason: ReasonMalformed},
		{name: "timestamp overflow", mutate: func(r *signedReq) { r.header.Set(HeaderTimestamp, "99999999999999999999999") }, reason: ReasonMalformed},
		{name: "nonce too short", mutate: func(r *signedReq) { r.header.Set(HeaderNonce, "short") }, reason: ReasonMalformed},
		{name: "nonce with newline", mutate: func(r *signedReq) { r.header.Set(HeaderNonce, "nonce-0000000000\nx") }, reason: ReasonMalformed},
		{name: "nonce too long", mutate: func(r *signedReq) { r.header.Set(HeaderNonce, strings.Repeat("n", 129)) }, reason: ReasonMalformed},
		{name: "key id with colon", mutate: func(r *signedReq) { r.header.Set(HeaderKeyID, "svc:a") }, reason: ReasonMalformed},
		{name: "header missing", mutate: func(r *signedReq) { r.header.Del(HeaderNonce) }, reason: ReasonMalformed},
		{name: "header twice", mutate: func(r *signedReq) { r.header.Add(HeaderKeyID, hmacKeyID) }, reason: ReasonMalformed},
		{name: "no headers at all", mutate: func(r *signedReq) { r.header = http.Header{} }, reason: ReasonMissing},
		{name: "malformed query", mutate: func(r *signedReq) { r.query = "a=%zz" }, reason: ReasonMalformed},
		{name: "semicolon query", mutate: func(r *signedReq) { r.query = "a=1;b=2" }, reason: ReasonMalformed},
		{name: "path with space", mutate: func(r *signedReq) { r.path = "/api/query x" }, reason: ReasonMalformed},
		{name: "method with newline", mutate: func(r *signedReq) { r.method = "POST\n/api/query" }, reason: ReasonMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			at := tc.signAt
			if at.IsZero() {
				at = t0
			}
			r := signReq(t, testSigner(at), http.MethodPost, "/api/query?b=2&a=1", body)
			if tc.mutate != nil {
				tc.mutate(&r)
			}
			id, err := r.verify(v)
			if tc.reason == "" {
				require.NoError(t, err)
				require.Equal(t, "hmac:svc-a", id.Subject)
				return
			}
			require.ErrorIs(t, err, ErrUnauthenticated)
			require.Equal(t, tc.reason, Reason(err), "error: %v", err)
			require.NotContains(t, err.Error(), hmacSecret)
		})
	}
}

func TestHMACReplayRejected(t *testing.T) {
	v := newHMACVerifier(t, NewMemoryNonceStore())
	r := signReq(t, testSigner(t0), http.MethodPost, "/api/query", []byte(`{}`))
	_, err := r.verify(v)
	require.NoError(t, err)
	_, err = r.verify(v)
	require.Equal(t, ReasonReplay, Reason(err))

	// A forged request with a fresh nonce must not burn the nonce: the
	// genuine request carrying it still goes through afterwards.
	genuine := signReq(t, testSigner(t0), http.MethodPost, "/api/query", []byte(`{}`))
	forged := genuine
	forged.body = []byte(`{"evil":1}`)
	_, err = forged.verify(v)
	require.Equal(t, ReasonSignature, Reason(err))
	_, err = genuine.verify(v)
	require.NoError(t, err)
}

func TestHMACReplayAcrossReplicasWithRedis(t *testing.T) {
	srv := redistest.Start(t)
	newClient := func() redis.UniversalClient {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr, DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second, MaxRetries: -1})
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	prefix := "test:" + t.Name() + ":"
	replicaA := newHMACVerifier(t, NewRedisNonceStore(newClient(), prefix))
	replicaB := newHMACVerifier(t, NewRedisNonceStore(newClient(), prefix))

	r := signReq(t, testSigner(t0), http.MethodPost, "/api/query", []byte(`{"question":"hi"}`))
	_, err := r.verify(replicaA)
	require.NoError(t, err)
	_, err = r.verify(replicaB)
	require.Equal(t, ReasonReplay, Reason(err), "replica B must see replica A's nonce")

	// The nonce key is where the docs say, with the configured TTL.
	ttl, err := newClient().TTL(context.Background(), prefix+"nonce:"+hmacKeyID+":"+r.header.Get(HeaderNonce)).Result()
	require.NoError(t, err)
	require.InDelta(t, defaultNonceTTL.Seconds(), ttl.Seconds(), 5)

	// A different request is still fine on B.
	_, err = signReq(t, testSigner(t0), http.MethodPost, "/api/query", []byte(`{"question":"hi"}`)).verify(replicaB)
	require.NoError(t, err)

	t.Run("redis down fails closed", func(t *testing.T) {
		srv.Stop()
		fresh := signReq(t, testSigner(t0), http.MethodPost, "/api/query", []byte(`{}`))
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_, err := replicaA.Verify(ctx, fresh.method, fresh.path, fresh.query, fresh.header, fresh.body)
		require.ErrorIs(t, err, ErrUnavailable)
		require.NotErrorIs(t, err, ErrUnauthenticated, "a store outage is a 503, not a 401")
		require.Empty(t, Reason(err))

		// Forgeries are still 401 while Redis is down: the store is not consulted.
		fresh.body = []byte(`{"x":1}`)
		_, err = fresh.verify(replicaA)
		require.Equal(t, ReasonSignature, Reason(err))
	})
}

func TestHMACKeyRotation(t *testing.T) {
	oldSecret := []byte(hmacSecret)
	newSecret := []byte("rotated-secret-abcdefghijklmnopqrstuvwxyz")
	v := newHMACVerifier(t, NewMemoryNonceStore(),
		HMACKey{ID: hmacKeyID, Secret: oldSecret},
		HMACKey{ID: hmacKeyID, Secret: newSecret},
		HMACKey{ID: "svc-a-2026", Secret: newSecret},
	)
	for _, s := range []Signer{
		{KeyID: hmacKeyID, Secret: oldSecret, Now: fixedNow, Nonce: seqNonce},
		{KeyID: hmacKeyID, Secret: newSecret, Now: fixedNow, Nonce: seqNonce},
		{KeyID: "svc-a-2026", Secret: newSecret, Now: fixedNow, Nonce: seqNonce},
	} {
		id, err := signReq(t, s, http.MethodPost, "/v1/messages", []byte(`{}`)).verify(v)
		require.NoError(t, err, s.KeyID)
		require.Equal(t, "hmac:"+s.KeyID, id.Subject)
	}
	// The old secret is not valid under the new key id.
	_, err := signReq(t, Signer{KeyID: "svc-a-2026", Secret: oldSecret, Now: fixedNow, Nonce: seqNonce}, http.MethodPost, "/v1/messages", nil).verify(v)
	require.Equal(t, ReasonSignature, Reason(err))

	// After the overlap, only the new secret remains.
	after := newHMACVerifier(t, NewMemoryNonceStore(), HMACKey{ID: hmacKeyID, Secret: newSecret})
	_, err = signReq(t, Signer{KeyID: hmacKeyID, Secret: oldSecret, Now: fixedNow, Nonce: seqNonce}, http.MethodPost, "/v1/messages", nil).verify(after)
	require.Equal(t, ReasonSignature, Reason(err))
}

func TestHMACStoreErrorsAreUnavailable(t *testing.T) {
	v := newHMACVerifier(t, failingStore{})
	_, err := signReq(t, testSigner(t0), http.MethodGet, "/api/rate-limit-status", nil).verify(v)
	require.ErrorIs(t, err, ErrUnavailable)
	require.Empty(t, Reason(err))
}

type failingStore struct{}

func (failingStore) Claim(context.Context, string, string, time.Duration) (bool, error) {
	return false, errors.New("disk on fire")
}

func TestNewHMACVerifierValidates(t *testing.T) {
	good := []HMACKey{{ID: "k", Secret: []byte(hmacSecret)}}
	store := NewMemoryNonceStore()
	tests := []struct {
		name  string
		keys  []HMACKey
		store NonceStore
		opts  HMACOptions
		want  string
	}{
		{"no keys", nil, store, HMACOptions{}, "no keys"},
		{"no store", good, nil, HMACOptions{}, "no nonce store"},
		{"short secret", []HMACKey{{ID: "k", Secret: []byte("short")}}, store, HMACOptions{}, "at least 32"},
		{"bad id", []HMACKey{{ID: "a b", Secret: []byte(hmacSecret)}}, store, HMACOptions{}, "id must be"},
		{"ttl shorter than two windows", good, store, HMACOptions{Window: time.Minute, NonceTTL: time.Minute}, "twice the window"},
		{"negative window", good, store, HMACOptions{Window: -time.Second}, "positive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewHMACVerifier(tc.keys, tc.store, tc.opts)
			require.ErrorContains(t, err, tc.want)
			require.NotContains(t, err.Error(), hmacSecret)
		})
	}
}

func TestCanonicalString(t *testing.T) {
	body := []byte("hello")
	const bodyHash = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
	tests := []struct {
		name, method, path, query string
		want                      string // the canonical query line
		err                       string
	}{
		{name: "empty query", method: "POST", path: "/api/query", want: ""},
		{name: "sorted by key then value", method: "GET", path: "/x", query: "b=2&a=2&a=1", want: "a=1&a=2&b=2"},
		{name: "plus is space", method: "GET", path: "/x", query: "q=a+b", want: "q=a%20b"},
		{name: "unreserved kept, rest encoded", method: "GET", path: "/x", query: "k=~-._AZaz09%2F%3D%26", want: "k=~-._AZaz09%2F%3D%26"},
		{name: "lower-case escapes normalised", method: "GET", path: "/x", query: "k=%2f", want: "k=%2F"},
		{name: "key without value", method: "GET", path: "/x", query: "flag&a=1", want: "a=1&flag="},
		{name: "empty pairs skipped", method: "GET", path: "/x", query: "a=1&&b=2&", want: "a=1&b=2"},
		{name: "unicode", method: "GET", path: "/x", query: "n=%C3%A9", want: "n=%C3%A9"},
		{name: "bad escape", method: "GET", path: "/x", query: "a=%zz", err: "parsing query"},
		{name: "semicolon", method: "GET", path: "/x", query: "a=1;b=2", err: "parsing query"},
		{name: "empty method", method: "", path: "/x", err: "method"},
		{name: "method with space", method: "GET X", path: "/x", err: "method"},
		{name: "relative path", method: "GET", path: "x", err: "path"},
		{name: "path with newline", method: "GET", path: "/x\n/y", err: "path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CanonicalString(tc.method, tc.path, tc.query, 1700000000, "nonce-0123456789abcdef", body)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			want := "keyward-hmac-v1\n" + tc.method + "\n" + tc.path + "\n" + tc.want + "\n1700000000\nnonce-0123456789abcdef\n" + bodyHash
			require.Equal(t, want, got)
		})
	}
	_, err := CanonicalString("GET", "/x", "", 1, "bad nonce!", nil)
	require.ErrorContains(t, err, "nonce")
}

func TestSignerDefaults(t *testing.T) {
	req, err := http.NewRequest("", "http://gateway.test", nil)
	require.NoError(t, err)
	s := Signer{KeyID: hmacKeyID, Secret: []byte(hmacSecret)}
	require.NoError(t, s.Sign(req, nil))
	n := req.Header.Get(HeaderNonce)
	require.Len(t, n, 32)
	ts, err := strconv.ParseInt(req.Header.Get(HeaderTimestamp), 10, 64)
	require.NoError(t, err)
	require.InDelta(t, time.Now().Unix(), ts, 5)

	v, err := NewHMACVerifier([]HMACKey{{ID: hmacKeyID, Secret: []byte(hmacSecret)}}, NewMemoryNonceStore(), HMACOptions{})
	require.NoError(t, err)
	// Empty method and path are what net/http sends: GET and "/".
	_, err = v.Verify(context.Background(), http.MethodGet, "/", "", req.Header, nil)
	require.NoError(t, err)

	// Two signatures never share a nonce.
	req2, _ := http.NewRequest(http.MethodGet, "http://gateway.test/", nil)
	require.NoError(t, s.Sign(req2, nil))
	require.NotEqual(t, n, req2.Header.Get(HeaderNonce))

	for _, bad := range []Signer{
		{KeyID: "", Secret: []byte(hmacSecret)},
		{KeyID: hmacKeyID, Secret: []byte("short")},
		{KeyID: hmacKeyID, Secret: []byte(hmacSecret), Nonce: func() string { return "x" }},
	} {
		r, _ := http.NewRequest(http.MethodGet, "http://gateway.test/", nil)
		require.Error(t, bad.Sign(r, nil))
		require.Empty(t, r.Header.Get(HeaderSignature), "no partial signing")
	}
}

func TestHMACSignedPathsRoundTripThroughHTTP(t *testing.T) {
	// What the client signs (URL.EscapedPath) must be what the server sees,
	// including escaped characters and a path that needs escaping.
	v := newHMACVerifier(t, NewMemoryNonceStore())
	for _, target := range []string{"/api/query", "/v1/messages/count_tokens", "/a%2Fb/c", "/with%20space", "/caf%C3%A9?x=%C3%A9&y"} {
		t.Run(target, func(t *testing.T) {
			r := signReq(t, testSigner(t0), http.MethodPost, target, []byte("x"))
			u, err := url.ParseRequestURI(target)
			require.NoError(t, err)
			_, err = v.Verify(context.Background(), http.MethodPost, u.EscapedPath(), u.RawQuery, r.header, []byte("x"))
			require.NoError(t, err)
		})
	}
}

func TestPresent(t *testing.T) {
	require.False(t, Present(http.Header{}))
	require.False(t, Present(http.Header{"Authorization": {"Bearer x"}}))
	for _, h := range []string{HeaderKeyID, HeaderTimestamp, HeaderNonce, HeaderSignature} {
		hdr := http.Header{}
		hdr.Set(h, "")
		require.True(t, Present(hdr), h)
		require.True(t, (&HMACVerifier{}).Present(hdr), h)
	}
}

func TestParseHMACKeys(t *testing.T) {
	s1 := strings.Repeat("a", 32)
	s2 := "b:c:" + strings.Repeat("d", 30) // colons allowed in secrets
	keys, err := ParseHMACKeys(" kid1:" + s1 + " , ,kid-2.x:" + s2 + ",")
	require.NoError(t, err)
	require.Equal(t, []HMACKey{{ID: "kid1", Secret: []byte(s1)}, {ID: "kid-2.x", Secret: []byte(s2)}}, keys)

	keys, err = ParseHMACKeys("")
	require.NoError(t, err)
	require.Empty(t, keys)

	const leaked = "supersecretvaluethatmustnotleak"
	_, err = ParseHMACKeys("k1:" + leaked + ",nocolon" + leaked + ",bad id:" + strings.Repeat("x", 40) + ",k4:" + s1)
	require.Error(t, err)
	require.NotContains(t, err.Error(), leaked)
	require.Contains(t, err.Error(), `"k1"`, "all problems are reported, naming the key id")
	require.Contains(t, err.Error(), "entry 2")
	require.Contains(t, err.Error(), "entry 3")
}
