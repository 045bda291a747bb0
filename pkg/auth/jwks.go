package auth

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
)

const (
	defaultJWKSRefreshInterval = 5 * time.Minute
	defaultJWKSUnknownKidGap   = time.Minute
	defaultJWKSTimeout         = 10 * time.Second
	// maxJWKSBytes bounds what a (possibly compromised or misconfigured) IdP
	// can make every replica read; real key sets are a few kilobytes.
	maxJWKSBytes     = 1 << 20
	maxJWKSRedirects = 3
)

var errJWKSTooLarge = errors.New("JWKS response larger than 1 MiB")

// jwksKey is one usable verification key from the key set.
type jwksKey struct {
	key any    // public key: *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey
	alg string // the JWK's own "alg" pin, "" when the IdP did not set one
}

// jwksSet is an immutable snapshot of the key set, swapped atomically so that
// verification never takes a lock.
type jwksSet struct {
	byKid map[string][]jwksKey
	all   []jwksKey
}

// jwksSource keeps a JWKS fresh: an initial fetch, a background refresh, and
// an on-demand refresh for unknown key ids that is gated to at most one per
// unknownGap so that random kids cannot turn the gateway into a flood against
// the IdP. A failed fetch never replaces the last good set.
type jwksSource struct {
	url        string
	logURL     string
	client     *http.Client
	timeout    time.Duration
	unknownGap time.Duration
	now        func() time.Time
	log        *slog.Logger

	set     atomic.Pointer[jwksSet]
	fetchMu sync.Mutex // one fetch at a time

	gateMu      sync.Mutex
	lastUnknown time.Time

	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

type jwksOptions struct {
	url             string
	client          *http.Client
	timeout         time.Duration
	refreshInterval time.Duration
	unknownGap      time.Duration
	now             func() time.Time
	log             *slog.Logger
}

func newJWKSSource(ctx context.Context, o jwksOptions) (*jwksSource, error) {
	u, err := checkJWKSURL(o.url)
	if err != nil {
		return nil, err
	}
	s := &jwksSource{
		url:        o.url,
		logURL:     u.Redacted(),
		client:     jwksHTTPClient(o.client, o.timeout),
		timeout:    o.timeout,
		unknownGap: o.unknownGap,
		now:        o.now,
		log:        o.log,
		done:       make(chan struct{}),
	}
	s.set.Store(&jwksSet{})
	// A failed first fetch is not fatal: an IdP blip during a rollout should
	// not crash-loop every replica. Tokens fail with unknown_key until a
	// background or unknown-kid refresh succeeds.
	if err := s.refresh(ctx); err != nil {
		s.log.WarnContext(ctx, "initial JWKS fetch failed; will retry", "url", s.logURL, "error", err)
	}
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	go s.loop(bg, o.refreshInterval)
	return s, nil
}

func (s *jwksSource) loop(ctx context.Context, interval time.Duration) {
	defer close(s.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.refresh(ctx); err != nil && ctx.Err() == nil {
				s.log.WarnContext(ctx, "JWKS refresh failed; keeping the last good key set", "url", s.logURL, "error", err)
			}
		}
	}
}

func (s *jwksSource) close() {
	s.cancel()
	<-s.done
}

// refresh fetches the key set and, only when that fully succeeds, replaces
// the current snapshot.
func (s *jwksSource) refresh(ctx context.Context) error {
	s.fetchMu.Lock()
	defer s.fetchMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	// RefreshInterval 0: jwkset fetches once, synchronously, and starts no
	// goroutine of its own; the schedule is ours so Close can stop it.
	store, err := jwkset.NewStorageFromHTTP(s.url, jwkset.HTTPClientStorageOptions{
		Client:      s.client,
		Ctx:         ctx,
		HTTPTimeout: s.timeout,
	})
	if err != nil {
		return fmt.Errorf("fetching JWKS: %w", err)
	}
	jwks, err := store.KeyReadAll(ctx)
	if err != nil {
		return fmt.Errorf("reading fetched JWKS: %w", err)
	}
	set := &jwksSet{byKid: make(map[string][]jwksKey, len(jwks))}
	for _, j := range jwks {
		m := j.Marshal()
		if m.KTY == jwkset.KtyOct || (m.USE != "" && m.USE != jwkset.UseSig) {
			continue
		}
		key := j.Key()
		if pk, ok := key.(interface{ Public() crypto.PublicKey }); ok {
			key = pk.Public()
		}
		if algsForKey(key) == nil {
			continue
		}
		k := jwksKey{key: key, alg: m.ALG.String()}
		set.all = append(set.all, k)
		if m.KID != "" {
			set.byKid[m.KID] = append(set.byKid[m.KID], k)
		}
	}
	s.set.Store(set)
	return nil
}

// lookup returns the keys for kid ("" = every key), refreshing once when the
// kid is unknown and the unknown-kid gate is open.
func (s *jwksSource) lookup(ctx context.Context, kid string) []jwksKey {
	set := s.set.Load()
	if kid == "" {
		return set.all
	}
	if ks := set.byKid[kid]; len(ks) > 0 {
		return ks
	}
	if !s.openUnknownGate() {
		return nil
	}
	// Detached from the request: a client hanging up must not abort a fetch
	// that the gate has already paid for. The fetch is bounded by s.timeout.
	if err := s.refresh(context.WithoutCancel(ctx)); err != nil {
		s.log.WarnContext(ctx, "JWKS refresh for an unknown key id failed", "url", s.logURL, "error", err)
		return nil
	}
	return s.set.Load().byKid[kid]
}

func (s *jwksSource) openUnknownGate() bool {
	s.gateMu.Lock()
	defer s.gateMu.Unlock()
	now := s.now()
	if !s.lastUnknown.IsZero() && now.Sub(s.lastUnknown) < s.unknownGap {
		return false
	}
	s.lastUnknown = now
	return true
}

func checkJWKSURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("parsing JWKS URL: %w", err)
	}
	if u.Host == "" {
		return nil, errors.New("parsing JWKS URL: no host")
	}
	if !urlAllowed(u) {
		return nil, errors.New("JWKS URL must use https (plain http only for loopback hosts)")
	}
	return u, nil
}

// urlAllowed keeps key material on TLS: a JWKS fetched over plain HTTP lets
// anyone on the path mint tokens. Loopback is exempt for tests and sidecars.
func urlAllowed(u *url.URL) bool {
	switch strings.ToLower(u.Scheme) {
	case "https":
		return true
	case "http":
		return isLoopbackHost(u.Hostname())
	}
	return false
}

func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.Unmap().IsLoopback()
}

// jwksHTTPClient copies base (never mutating the caller's client), bounds
// the request time, caps the body and refuses redirects that leave TLS.
func jwksHTTPClient(base *http.Client, timeout time.Duration) *http.Client {
	c := &http.Client{}
	if base != nil {
		*c = *base
	}
	if c.Timeout == 0 || c.Timeout > timeout {
		c.Timeout = timeout
	}
	rt := c.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	c.Transport = capTransport{base: rt, max: maxJWKSBytes}
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= maxJWKSRedirects {
			return errors.New("too many JWKS redirects")
		}
		if !urlAllowed(req.URL) {
			return errors.New("JWKS redirect to a non-https URL refused")
		}
		return nil
	}
	return c
}

type capTransport struct {
	base http.RoundTripper
	max  int64
}

func (t capTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > t.max {
		resp.Body.Close()
		return nil, errJWKSTooLarge
	}
	resp.Body = &cappedBody{rc: resp.Body, left: t.max}
	return resp, nil
}

type cappedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, errJWKSTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *cappedBody) Close() error { return b.rc.Close() }
