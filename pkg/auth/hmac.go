package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Request-signing headers (see HMAC.md for the full scheme).
const (
	HeaderKeyID     = "X-Keyward-Key-Id"
	HeaderTimestamp = "X-Keyward-Timestamp"
	HeaderNonce     = "X-Keyward-Nonce"
	HeaderSignature = "X-Keyward-Signature"
)

const (
	hmacVersion          = "keyward-hmac-v1"
	defaultHMACWindow    = 300 * time.Second
	defaultNonceTTL      = 600 * time.Second
	minNonceLen          = 16
	maxNonceLen          = 128
	maxKeyIDLen          = 64
	maxSignatureHeader   = 1024
	maxSignaturesPerCall = 8
)

// CanonicalString builds the exact text that is signed:
//
//	"keyward-hmac-v1\n" + METHOD + "\n" + escapedPath + "\n" + sortedQuery + "\n" +
//	timestamp + "\n" + nonce + "\n" + lowercase hex(SHA-256(body))
//
// sortedQuery decodes rawQuery, re-encodes every key and value with RFC 3986
// percent-encoding (unreserved characters as is, everything else %XX upper
// case), sorts by key then value and joins the pairs with "&". Inputs that
// could blur the line structure (a method that is not an HTTP token, a path
// with whitespace or control bytes, a bad nonce) and unparseable queries are
// errors.
func CanonicalString(method, escapedPath, rawQuery string, ts int64, nonce string, body []byte) (string, error) {
	if !isToken(method) {
		return "", errors.New("building canonical string: method is not an HTTP token")
	}
	if !validPath(escapedPath) {
		return "", errors.New("building canonical string: path must start with / and contain no spaces or control characters")
	}
	if !validNonce(nonce) {
		return "", fmt.Errorf("building canonical string: nonce must be %d-%d characters of [A-Za-z0-9_-]", minNonceLen, maxNonceLen)
	}
	q, err := canonicalQuery(rawQuery)
	if err != nil {
		return "", fmt.Errorf("building canonical string: %w", err)
	}
	sum := sha256.Sum256(body)
	var b strings.Builder
	b.Grow(len(hmacVersion) + len(method) + len(escapedPath) + len(q) + len(nonce) + 20 + 2*sha256.Size + 6)
	b.WriteString(hmacVersion)
	b.WriteByte('\n')
	b.WriteString(method)
	b.WriteByte('\n')
	b.WriteString(escapedPath)
	b.WriteByte('\n')
	b.WriteString(q)
	b.WriteByte('\n')
	b.WriteString(strconv.FormatInt(ts, 10))
	b.WriteByte('\n')
	b.WriteString(nonce)
	b.WriteByte('\n')
	b.WriteString(hex.EncodeToString(sum[:]))
	return b.String(), nil
}

func canonicalQuery(raw string) (string, error) {
	if raw == "" {
		return "", nil
	}
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return "", fmt.Errorf("parsing query: %w", err)
	}
	pairs := make([][2]string, 0, len(vals))
	for k, vs := range vals {
		for _, v := range vs {
			pairs = append(pairs, [2]string{k, v})
		}
	}
	slices.SortFunc(pairs, func(a, b [2]string) int {
		if c := strings.Compare(a[0], b[0]); c != 0 {
			return c
		}
		return strings.Compare(a[1], b[1])
	})
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(escapeRFC3986(p[0]))
		b.WriteByte('=')
		b.WriteString(escapeRFC3986(p[1]))
	}
	return b.String(), nil
}

func escapeRFC3986(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isUnreserved(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

func isUnreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// isToken reports whether s is an RFC 9110 token (what a method must be).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

func validPath(p string) bool {
	if !strings.HasPrefix(p, "/") {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] <= ' ' || p[i] >= 0x7f {
			return false
		}
	}
	return true
}

func validNonce(n string) bool {
	if len(n) < minNonceLen || len(n) > maxNonceLen {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validKeyID keeps key ids short and boring: they end up in Redis keys,
// rate-limit identities and logs.
func validKeyID(id string) bool {
	if id == "" || len(id) > maxKeyIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func computeMAC(secret []byte, canonical string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(canonical))
	return m.Sum(nil)
}

// Signer signs outgoing requests for a server-side caller. Never ship the
// secret to a browser: anything in page JavaScript is public.
type Signer struct {
	KeyID  string
	Secret []byte
	Now    func() time.Time // default time.Now
	Nonce  func() string    // default: 24 random bytes, base64url (32 characters)
}

// Sign sets the four X-Keyward-* headers on req. body must be exactly the
// bytes that will be sent (the caller sets req.Body itself).
func (s Signer) Sign(req *http.Request, body []byte) error {
	if !validKeyID(s.KeyID) {
		return fmt.Errorf("signing request: key id must be 1-%d characters of [A-Za-z0-9._-]", maxKeyIDLen)
	}
	if len(s.Secret) < MinHMACSecretBytes {
		return fmt.Errorf("signing request: secret must be at least %d bytes", MinHMACSecretBytes)
	}
	if req == nil || req.URL == nil {
		return errors.New("signing request: request has no URL")
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	nonce := randomNonce
	if s.Nonce != nil {
		nonce = s.Nonce
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	path := req.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	ts := now().Unix()
	n := nonce()
	canonical, err := CanonicalString(method, path, req.URL.RawQuery, ts, n, body)
	if err != nil {
		return fmt.Errorf("signing request: %w", err)
	}
	if req.Header == nil {
		req.Header = make(http.Header)
	}
	req.Header.Set(HeaderKeyID, s.KeyID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderNonce, n)
	req.Header.Set(HeaderSignature, "v1="+hex.EncodeToString(computeMAC(s.Secret, canonical)))
	return nil
}

func randomNonce() string {
	var b [24]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// HMACKey is one request-signing key. Several keys may share an ID while a
// secret is rotated; each secret must be at least 32 bytes.
type HMACKey struct {
	ID     string
	Secret []byte
}

// HMACOptions tunes an HMACVerifier.
type HMACOptions struct {
	Window   time.Duration    // accepted |now - timestamp| (default 300s)
	NonceTTL time.Duration    // how long a nonce is remembered (default 600s, at least 2*Window)
	Now      func() time.Time // default time.Now
}

// HMACVerifier verifies signed requests from server-side callers and blocks
// replays through a NonceStore shared by all replicas.
type HMACVerifier struct {
	keys   map[string][][]byte
	store  NonceStore
	window time.Duration
	ttl    time.Duration
	now    func() time.Time
}

// NewHMACVerifier validates keys and options up front.
func NewHMACVerifier(keys []HMACKey, store NonceStore, opts HMACOptions) (*HMACVerifier, error) {
	if len(keys) == 0 {
		return nil, errors.New("creating HMAC verifier: no keys")
	}
	if store == nil {
		return nil, errors.New("creating HMAC verifier: no nonce store")
	}
	if opts.Window == 0 {
		opts.Window = defaultHMACWindow
	}
	if opts.NonceTTL == 0 {
		opts.NonceTTL = defaultNonceTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Window < 0 {
		return nil, errors.New("creating HMAC verifier: window must be positive")
	}
	// A nonce must outlive every timestamp that can still pass the window
	// check (now-window .. now+window), or a replay after expiry succeeds.
	if opts.NonceTTL < 2*opts.Window {
		return nil, fmt.Errorf("creating HMAC verifier: nonce TTL %s is shorter than twice the window %s", opts.NonceTTL, opts.Window)
	}
	v := &HMACVerifier{keys: make(map[string][][]byte), store: store, window: opts.Window, ttl: opts.NonceTTL, now: opts.Now}
	for i, k := range keys {
		if !validKeyID(k.ID) {
			return nil, fmt.Errorf("creating HMAC verifier: key %d: id must be 1-%d characters of [A-Za-z0-9._-]", i+1, maxKeyIDLen)
		}
		if len(k.Secret) < MinHMACSecretBytes {
			return nil, fmt.Errorf("creating HMAC verifier: key %q: secret is %d bytes, at least %d required", k.ID, len(k.Secret), MinHMACSecretBytes)
		}
		v.keys[k.ID] = append(v.keys[k.ID], slices.Clone(k.Secret))
	}
	return v, nil
}

// Present reports whether h carries any request-signing header. A request
// with some but not all of them is still "present": Verify rejects it
// rather than letting it fall through to anonymous access.
func Present(h http.Header) bool {
	for _, k := range [...]string{HeaderKeyID, HeaderTimestamp, HeaderNonce, HeaderSignature} {
		if len(h.Values(k)) > 0 {
			return true
		}
	}
	return false
}

// Present is the package-level Present, for callers holding a verifier.
func (v *HMACVerifier) Present(h http.Header) bool { return Present(h) }

// Verify checks a signed request. method, escapedPath (URL.EscapedPath) and
// rawQuery are what the server received; body is the full request body as
// read (through a size limit) by the caller. The nonce is claimed only after
// the signature and timestamp pass, so unsigned junk cannot fill the store.
// A nonce-store failure returns an error wrapping ErrUnavailable (fail
// closed: 503); everything else is an *Error with a Reason.
func (v *HMACVerifier) Verify(ctx context.Context, method, escapedPath, rawQuery string, h http.Header, body []byte) (Identity, error) {
	if !Present(h) {
		return Identity{}, reject(ReasonMissing, errors.New("no request-signing headers"))
	}
	kid, ok1 := singleHeader(h, HeaderKeyID)
	tsText, ok2 := singleHeader(h, HeaderTimestamp)
	nonce, ok3 := singleHeader(h, HeaderNonce)
	sigText, ok4 := singleHeader(h, HeaderSignature)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return Identity{}, reject(ReasonMalformed, errors.New("each request-signing header must appear exactly once"))
	}
	if !validKeyID(kid) {
		return Identity{}, reject(ReasonMalformed, errors.New("malformed key id"))
	}
	secrets := v.keys[kid]
	if len(secrets) == 0 {
		return Identity{}, reject(ReasonUnknownKey, errors.New("unknown key id"))
	}
	ts, ok := parseUnixSeconds(tsText)
	if !ok {
		return Identity{}, reject(ReasonMalformed, errors.New("malformed timestamp"))
	}
	if !validNonce(nonce) {
		return Identity{}, reject(ReasonMalformed, errors.New("malformed nonce"))
	}
	sigs, err := parseSignatures(sigText)
	if err != nil {
		return Identity{}, reject(ReasonMalformed, err)
	}
	if escapedPath == "" {
		escapedPath = "/"
	}
	canonical, err := CanonicalString(method, escapedPath, rawQuery, ts, nonce, body)
	if err != nil {
		return Identity{}, reject(ReasonMalformed, err)
	}
	matched := false
	for _, secret := range secrets {
		mac := computeMAC(secret, canonical)
		for _, s := range sigs {
			// Constant time on the decoded bytes: a byte-by-byte early exit
			// would let an attacker discover the MAC one byte at a time.
			if hmac.Equal(mac, s) {
				matched = true
			}
		}
	}
	if !matched {
		return Identity{}, reject(ReasonSignature, errors.New("request signature invalid"))
	}
	skew := v.now().Sub(time.Unix(ts, 0))
	if skew > v.window || skew < -v.window {
		return Identity{}, reject(ReasonTimestamp, fmt.Errorf("timestamp outside the %s window", v.window))
	}
	fresh, err := v.store.Claim(ctx, kid, nonce, v.ttl)
	if err != nil {
		if !errors.Is(err, ErrUnavailable) {
			err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return Identity{}, fmt.Errorf("claiming request nonce: %w", err)
	}
	if !fresh {
		return Identity{}, reject(ReasonReplay, errors.New("nonce already used"))
	}
	return Identity{Subject: "hmac:" + kid, Method: "hmac"}, nil
}

func singleHeader(h http.Header, name string) (string, bool) {
	vals := h.Values(name)
	if len(vals) != 1 {
		return "", false
	}
	return strings.TrimSpace(vals[0]), true
}

// parseUnixSeconds accepts 1-12 ASCII digits: no sign, no spaces, no
// exponent, nothing strconv would otherwise tolerate.
func parseUnixSeconds(s string) (int64, bool) {
	if s == "" || len(s) > 12 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// parseSignatures reads "v1=<hex>[,v1=<hex>...]". Other schemes are skipped
// so that a future v2 can be sent alongside v1 during a migration.
func parseSignatures(h string) ([][]byte, error) {
	if len(h) > maxSignatureHeader {
		return nil, errors.New("signature header too long")
	}
	var out [][]byte
	for _, part := range strings.Split(h, ",") {
		scheme, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, errors.New("malformed signature header")
		}
		if scheme != "v1" {
			continue
		}
		b, err := hex.DecodeString(val)
		if err != nil || len(b) != sha256.Size {
			return nil, errors.New("malformed v1 signature")
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, errors.New("no v1 signature")
	}
	if len(out) > maxSignaturesPerCall {
		return nil, errors.New("too many signatures")
	}
	return out, nil
}

// ParseHMACKeys parses the KEYWARD_HMAC_KEYS format "kid1:secret1,kid2:secret2"
// (split at the first colon; blank entries skipped). Errors name the entry
// by position and key id, never by secret.
func ParseHMACKeys(s string) ([]HMACKey, error) {
	var keys []HMACKey
	var errs []error
	for i, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		id, secret, ok := strings.Cut(entry, ":")
		id, secret = strings.TrimSpace(id), strings.TrimSpace(secret)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("hmac key entry %d: expected kid:secret", i+1))
		case !validKeyID(id):
			errs = append(errs, fmt.Errorf("hmac key entry %d: key id must be 1-%d characters of [A-Za-z0-9._-]", i+1, maxKeyIDLen))
		case len(secret) < MinHMACSecretBytes:
			errs = append(errs, fmt.Errorf("hmac key %q: secret is %d bytes, at least %d required", id, len(secret), MinHMACSecretBytes))
		default:
			keys = append(keys, HMACKey{ID: id, Secret: []byte(secret)})
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return keys, nil
}
