package anthropic

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// ClientConfig configures NewClient. Zero values take the defaults named on
// each field.
type ClientConfig struct {
	// BaseURL of the upstream, e.g. https://api.anthropic.com or
	// http://127.0.0.1:8090. A path prefix is kept (http://h/anthropic).
	BaseURL string
	// APIKey returns the server's key; it is called on every attempt so a
	// rotated key file takes effect without a restart. Surrounding
	// whitespace (the newline of a mounted file) is trimmed.
	APIKey func() string
	// Transport defaults to net/http's transport tuned for one busy
	// upstream host: MaxIdleConnsPerHost 256, MaxConnsPerHost (below), dial
	// timeout 10s, TLS handshake timeout 10s, ResponseHeaderTimeout =
	// HeaderTimeout, HTTP/2 for https, RootCAs (below), and the egress
	// proxy from HTTPS_PROXY/HTTP_PROXY/NO_PROXY.
	Transport http.RoundTripper
	// RootCAs are the authorities trusted for the upstream's certificate
	// in the default transport (nil: the system roots). Set it to the
	// system pool plus an extra CA for a TLS-intercepting egress proxy or a
	// test upstream.
	RootCAs *x509.CertPool
	// HeaderTimeout bounds each attempt's wait for response headers
	// (default 60s). Expiry gives ErrUpstreamTimeout and is not retried:
	// the request was sent, the call is billable and not idempotent.
	HeaderTimeout time.Duration
	// MaxRetries is the number of retries after the first attempt
	// (default 2, so 3 attempts; negative: no retries).
	MaxRetries int
	// BaseBackoff and MaxBackoff shape exponential backoff with full jitter
	// (defaults 500ms and 8s).
	BaseBackoff, MaxBackoff time.Duration
	// MaxRetryWait is the longest wait before a retry the client accepts
	// (default 60s); a longer retry-after ends the call with the error, as
	// does one beyond the context's deadline.
	MaxRetryWait time.Duration
	// BreakerThreshold is the number of consecutive failed attempts
	// (529/5xx/timeout/connection) that open the circuit breaker
	// (default 5; negative disables the breaker).
	BreakerThreshold int
	// BreakerCooldown is how long the breaker stays open before one
	// half-open probe is let through (default 30s).
	BreakerCooldown time.Duration
	// MaxConnsPerHost caps the default transport's connections (default
	// 1024); requests beyond it wait for a free connection. Over HTTP/2
	// each connection carries many calls.
	MaxConnsPerHost int

	// Now, Sleep and Rand are injectable for tests (defaults time.Now, a
	// context-aware timer, math/rand/v2.Float64). Rand returns [0,1).
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
	Rand  func() float64
	// UserAgent is sent upstream on every attempt (default "keyward"); the
	// caller's own User-Agent never is, so the upstream sees one client.
	UserAgent string
	// OnAttempt, when set, is called after every upstream attempt of every
	// call, as Call.OnAttempt is for one call.
	OnAttempt func(attempt int, status int, err error)
}

// Call is one upstream request.
type Call struct {
	Method string      // "POST" (the default when empty); nothing else is allowed
	Path   string      // "/v1/messages" or "/v1/messages/count_tokens", optionally with "?beta=true"
	Header http.Header // normally from OutboundHeaders; filtered again by Do
	Body   []byte
	// OnAttempt, when set, is called after each attempt of this call that
	// reached the transport, with its index (0 first, so > 0 is a retry),
	// the HTTP status (0 when there was no response) and the attempt's
	// error (nil for 2xx; ErrUpstreamTimeout, ErrUpstreamConnection or the
	// context's error otherwise). Metrics label attempts by the call's
	// model with it.
	OnAttempt func(attempt int, status int, err error)
	// Retry says which failures Do retries for this call (default
	// RetryAll).
	Retry RetryPolicy
}

// RetryPolicy chooses which failed attempts Do retries.
type RetryPolicy uint8

const (
	// RetryAll retries 429 (except the spend cap), 529, 5xx and connection
	// failures before the request was sent: for callers that do not retry
	// themselves (a browser page).
	RetryAll RetryPolicy = iota
	// RetryUnsent retries only failures where nothing reached the upstream
	// (dial, DNS, TLS). Every answer the upstream gave, 429/529/5xx
	// included, goes back to the caller at once: for callers that retry
	// themselves (the official SDKs retry 2 times), so that their retries
	// and ours do not multiply.
	RetryUnsent
)

// allowedPaths is every path Do will send to. Keeping the list here, not in
// the router, means no route mistake can hand the server key to the
// upstream's files, batches or admin endpoints.
var allowedPaths = []string{
	"/v1/messages",
	"/v1/messages?beta=true",
	"/v1/messages/count_tokens",
	"/v1/messages/count_tokens?beta=true",
}

// ErrPathNotAllowed is returned by Do for a path outside allowedPaths.
var ErrPathNotAllowed = errors.New("upstream path not allowed")

const (
	defaultHeaderTimeout   = 60 * time.Second
	defaultMaxRetries      = 2
	defaultBaseBackoff     = 500 * time.Millisecond
	defaultMaxBackoff      = 8 * time.Second
	defaultMaxRetryWait    = 60 * time.Second
	defaultBreakerThresh   = 5
	defaultBreakerCooldown = 30 * time.Second
	defaultMaxConnsPerHost = 1024
	// maxErrorBody bounds what is read of a non-2xx body.
	maxErrorBody = 64 << 10
	// maxRetryAfter keeps a hostile retry-after from overflowing durations.
	maxRetryAfter = 24 * time.Hour
)

// Client calls the upstream with the server key, bounded retries, a header
// timeout and a circuit breaker. It is safe for concurrent use.
type Client struct {
	cfg       ClientConfig
	urls      map[string]string // allowed path → absolute URL
	rt        http.RoundTripper
	transport *http.Transport // the default transport, when Client built it
	breaker   *breaker
}

// NewClient validates cfg, reporting every problem at once, and applies the
// defaults.
func NewClient(cfg ClientConfig) (*Client, error) {
	var errs []error
	base, err := url.Parse(cfg.BaseURL)
	switch {
	case cfg.BaseURL == "":
		errs = append(errs, errors.New("base URL: empty"))
	case err != nil:
		errs = append(errs, errors.New("base URL: not a URL"))
	case base.Scheme != "http" && base.Scheme != "https":
		errs = append(errs, errors.New("base URL: scheme must be http or https"))
	case base.Host == "":
		errs = append(errs, errors.New("base URL: no host"))
	case base.User != nil:
		errs = append(errs, errors.New("base URL: must not carry credentials"))
	case base.RawQuery != "" || base.Fragment != "":
		errs = append(errs, errors.New("base URL: must not have a query or fragment"))
	}
	if cfg.APIKey == nil {
		errs = append(errs, errors.New("API key: no APIKey function"))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"header timeout", cfg.HeaderTimeout}, {"base backoff", cfg.BaseBackoff},
		{"max backoff", cfg.MaxBackoff}, {"max retry wait", cfg.MaxRetryWait},
		{"breaker cooldown", cfg.BreakerCooldown},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative", d.name))
		}
	}
	if cfg.MaxConnsPerHost < 0 {
		errs = append(errs, errors.New("max conns per host: must not be negative"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("configuring upstream client: %w", errors.Join(errs...))
	}

	cfg.HeaderTimeout = orDefault(cfg.HeaderTimeout, defaultHeaderTimeout)
	cfg.BaseBackoff = orDefault(cfg.BaseBackoff, defaultBaseBackoff)
	cfg.MaxBackoff = orDefault(cfg.MaxBackoff, defaultMaxBackoff)
	cfg.MaxRetryWait = orDefault(cfg.MaxRetryWait, defaultMaxRetryWait)
	cfg.BreakerCooldown = orDefault(cfg.BreakerCooldown, defaultBreakerCooldown)
	cfg.MaxConnsPerHost = orDefault(cfg.MaxConnsPerHost, defaultMaxConnsPerHost)
	cfg.UserAgent = orDefault(cfg.UserAgent, "keyward")
	switch {
	case cfg.MaxRetries == 0:
		cfg.MaxRetries = defaultMaxRetries
	case cfg.MaxRetries < 0:
		cfg.MaxRetries = 0
	}
	if cfg.BreakerThreshold == 0 {
		cfg.BreakerThreshold = defaultBreakerThresh
	}
	if cfg.BaseBackoff > cfg.MaxBackoff {
		cfg.MaxBackoff = cfg.BaseBackoff
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleepContext
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}

	c := &Client{
		cfg:  cfg,
		urls: make(map[string]string, len(allowedPaths)),
		rt:   cfg.Transport,
		breaker: &breaker{
			threshold: cfg.BreakerThreshold,
			cooldown:  cfg.BreakerCooldown,
			now:       cfg.Now,
		},
	}
	prefix := strings.TrimSuffix(base.Path, "/")
	for _, p := range allowedPaths {
		u := *base
		path, query, _ := strings.Cut(p, "?")
		u.Path, u.RawPath, u.RawQuery = prefix+path, "", query
		c.urls[p] = u.String()
	}
	if c.rt == nil {
		c.transport = newTransport(cfg.HeaderTimeout, cfg.MaxConnsPerHost, cfg.RootCAs)
		c.rt = c.transport
	}
	return c, nil
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// newTransport is the one upstream transport: net/http's, which answers an
// early response (a 413 before the body is read) correctly, speaks HTTP/2
// over TLS and honours the egress proxy settings.
func newTransport(headerTimeout time.Duration, maxConns int, rootCAs *x509.CertPool) *http.Transport {
	return &http.Transport{
		Proxy:       http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		// A custom TLS config turns off the transport's automatic HTTP/2;
		// ForceAttemptHTTP2 turns it back on.
		TLSClientConfig:   &tls.Config{RootCAs: rootCAs, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2: true,
		// Every replica talks to one host: the default of 2 idle
		// connections per host would make each burst of HTTP/1.1 calls
		// above 2 dial (and handshake) anew.
		MaxIdleConns:          512,
		MaxIdleConnsPerHost:   256,
		MaxConnsPerHost:       maxConns,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: headerTimeout,
		ExpectContinueTimeout: time.Second,
	}
}

// CloseIdleConnections closes the default transport's idle connections
// (shutdown, tests). It does nothing for an injected Transport that lacks
// the method.
func (c *Client) CloseIdleConnections() {
	if ci, ok := c.rt.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

// BreakerOpen reports whether the circuit breaker is open (including while
// it waits for, or runs, its half-open probe). Export it as a gauge with a
// prometheus GaugeFunc.
func (c *Client) BreakerOpen() bool { return c.breaker.isOpen() }

// BreakerRetryAfter is how long until the open breaker lets a probe through
// (0 when closed or due): the gateway's Retry-After for ErrCircuitOpen,
// rounded up to at least a second.
func (c *Client) BreakerRetryAfter() time.Duration { return c.breaker.retryAfter() }

// Do sends call upstream with the server key (x-api-key, from APIKey on each
// attempt) and only allowlisted headers, retrying 429 (except the spend
// cap), 529, 500, 502, 503 and 504, and connection failures that happened
// before the request was sent (with call.Retry == RetryUnsent only the
// latter), at most MaxRetries times and only while the wait fits the
// context's deadline. retry-after-ms, then retry-after, is the
// minimum wait; otherwise exponential backoff with full jitter.
//
// On 2xx it returns the live response: the caller reads (streams) the body
// and must Close it; cancelling ctx aborts the body too. On a final non-2xx
// it returns (nil, *APIError). Other errors: ErrCircuitOpen (unwrapped, no
// call made), ErrUpstreamTimeout, ErrUpstreamConnection, ErrNoAPIKey,
// ErrPathNotAllowed, or the context's error, wrapped — use errors.Is/As.
func (c *Client) Do(ctx context.Context, call Call) (*http.Response, error) {
	if call.Method != "" && call.Method != http.MethodPost {
		return nil, fmt.Errorf("calling upstream: method %q: %w", call.Method, ErrPathNotAllowed)
	}
	target, ok := c.urls[call.Path]
	if !ok {
		return nil, fmt.Errorf("calling upstream: %w", ErrPathNotAllowed)
	}
	header := OutboundHeaders(call.Header)

	var lastErr error
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("calling upstream: %w", err)
		}
		probe, ok := c.breaker.allow()
		if !ok {
			if lastErr != nil {
				return nil, lastErr // the breaker opened during our retries
			}
			return nil, ErrCircuitOpen
		}
		resp, res := c.attempt(ctx, target, header, call.Body)
		c.breaker.record(probe, res.outcome)
		if res.sent {
			if c.cfg.OnAttempt != nil {
				c.cfg.OnAttempt(attempt, res.status, res.err)
			}
			if call.OnAttempt != nil {
				call.OnAttempt(attempt, res.status, res.err)
			}
		}
		if resp != nil {
			return resp, nil
		}
		lastErr = res.err
		if !res.retryable || attempt >= c.cfg.MaxRetries || (call.Retry == RetryUnsent && res.status != 0) {
			return nil, lastErr
		}
		wait := c.backoff(attempt, res.retryAfter)
		if wait > c.cfg.MaxRetryWait {
			return nil, lastErr
		}
		// Deadlines are wall-clock, so this compares with the real clock.
		if dl, ok := ctx.Deadline(); ok && wait >= time.Until(dl) {
			return nil, lastErr
		}
		if err := c.cfg.Sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("waiting to retry upstream: %w", err)
		}
	}
}

// backoff is the wait before retry number attempt+1: the server's
// retry-after as a floor, raised to a full-jitter exponential backoff.
func (c *Client) backoff(attempt int, retryAfter time.Duration) time.Duration {
	ceiling := c.cfg.MaxBackoff
	if attempt < 32 {
		if d := c.cfg.BaseBackoff << attempt; d > 0 && d < ceiling {
			ceiling = d
		}
	}
	r := c.cfg.Rand()
	if r < 0 || r >= 1 || math.IsNaN(r) {
		r = 0
	}
	return max(retryAfter, time.Duration(r*float64(ceiling)))
}

// attemptResult describes one attempt that did not return a usable response.
type attemptResult struct {
	sent       bool // a request was handed to the transport
	status     int
	err        error
	retryable  bool
	retryAfter time.Duration
	outcome    outcome
}

// headerTimeoutError is the cancel cause of an attempt whose header timer
// fired. The transport returns the cause as the request's error, so it
// reports itself as a timeout (net.Error style) for wrapping transports
// that label metrics.
type headerTimeoutError struct{}

func (headerTimeoutError) Error() string   { return "timeout awaiting upstream response headers" }
func (headerTimeoutError) Timeout() bool   { return true }
func (headerTimeoutError) Temporary() bool { return false }

var errHeaderTimeout error = headerTimeoutError{}

func (c *Client) attempt(ctx context.Context, target string, header http.Header, body []byte) (*http.Response, attemptResult) {
	key := strings.TrimSpace(c.cfg.APIKey())
	if key == "" {
		return nil, attemptResult{err: fmt.Errorf("calling upstream: %w", ErrNoAPIKey)}
	}
	// The attempt's context outlives Do on success: it is cancelled when
	// the caller closes the body, or by the header timer.
	actx, cancel := context.WithCancelCause(ctx)
	var gotConn atomic.Bool
	actx = httptrace.WithClientTrace(actx, &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { gotConn.Store(true) },
	})
	req, err := http.NewRequestWithContext(actx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		cancel(nil)
		return nil, attemptResult{err: fmt.Errorf("building upstream request: %w", err)}
	}
	req.Header = header.Clone()
	req.Header.Del("Authorization")
	req.Header.Set("X-Api-Key", key)
	req.Header.Set("User-Agent", c.cfg.UserAgent)

	timer := time.AfterFunc(c.cfg.HeaderTimeout, func() { cancel(errHeaderTimeout) })
	resp, err := c.rt.RoundTrip(req)
	if err != nil {
		timer.Stop()
		cancel(nil)
		res := c.classify(ctx, actx, err, gotConn.Load())
		res.sent = true
		return nil, res
	}
	NewRedactor(key).Headers(resp.Header)

	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if !timer.Stop() {
			// The timer fired as the headers arrived; the body is already
			// cancelled, so this attempt timed out after all.
			resp.Body.Close()
			cancel(nil)
			return nil, attemptResult{sent: true, status: resp.StatusCode, err: fmt.Errorf("calling upstream: %w", ErrUpstreamTimeout), outcome: outcomeFailure}
		}
		resp.Body = &attemptBody{ReadCloser: resp.Body, cancel: cancel}
		return resp, attemptResult{sent: true, status: resp.StatusCode, outcome: outcomeHealthy}
	}

	// The header timer keeps running while the error body is read, so a
	// body that trickles cannot hold the call.
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	resp.Body.Close()
	timer.Stop()
	cancel(nil)
	retryAfter := parseRetryAfter(resp.Header, c.cfg.Now())
	apiErr := parseAPIError(resp.StatusCode, resp.Header, raw, retryAfter, key)
	res := attemptResult{
		sent:       true,
		status:     resp.StatusCode,
		err:        apiErr,
		retryable:  apiErr.Retryable(),
		retryAfter: retryAfter,
		outcome:    outcomeHealthy,
	}
	if resp.StatusCode >= 500 {
		res.outcome = outcomeFailure
	}
	// The upstream's own verdict overrides the status rule, as in the SDKs,
	// but only to forbid: forcing a retry of other statuses could repeat a
	// billable call.
	if strings.EqualFold(resp.Header.Get("x-should-retry"), "false") {
		res.retryable = false
	}
	return nil, res
}

// classify turns a RoundTrip error into an attempt result.
func (c *Client) classify(ctx, actx context.Context, err error, gotConn bool) attemptResult {
	if ctxErr := ctx.Err(); ctxErr != nil {
		// The caller gave up; that says nothing about the upstream.
		if errors.Is(ctxErr, context.DeadlineExceeded) && gotConn {
			return attemptResult{err: fmt.Errorf("calling upstream: %w: %w", ErrUpstreamTimeout, ctxErr)}
		}
		return attemptResult{err: fmt.Errorf("calling upstream: %w", ctxErr)}
	}
	var ne net.Error
	timedOut := errors.Is(context.Cause(actx), errHeaderTimeout) || (errors.As(err, &ne) && ne.Timeout() && gotConn)
	switch {
	case timedOut:
		return attemptResult{err: fmt.Errorf("calling upstream: %w", ErrUpstreamTimeout), outcome: outcomeFailure}
	case !gotConn:
		// Dial, DNS or TLS failed: nothing was sent, so a retry cannot
		// double-bill.
		return attemptResult{err: fmt.Errorf("calling upstream: %w: %s", ErrUpstreamConnection, describeNetErr(err)), retryable: true, outcome: outcomeFailure}
	default:
		// The connection broke after the request may have been sent.
		return attemptResult{err: fmt.Errorf("calling upstream: %w: %s", ErrUpstreamConnection, describeNetErr(err)), outcome: outcomeFailure}
	}
}

// describeNetErr names a transport failure without the URL (which is
// harmless, but callers log these errors next to request data and the
// shorter the better).
func describeNetErr(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}

// attemptBody releases the attempt's context when the caller closes the body.
type attemptBody struct {
	io.ReadCloser
	cancel context.CancelCauseFunc
}

func (b *attemptBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel(nil)
	return err
}

// parseRetryAfter reads retry-after-ms, then retry-after (seconds, possibly
// fractional, or an HTTP-date), as the SDKs do. Absent or unparsable: 0.
func parseRetryAfter(h http.Header, now time.Time) time.Duration {
	if v := strings.TrimSpace(h.Get("retry-after-ms")); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms >= 0 && !math.IsInf(ms, 0) {
			return min(time.Duration(min(ms, float64(maxRetryAfter/time.Millisecond))*float64(time.Millisecond)), maxRetryAfter)
		}
	}
	v := strings.TrimSpace(h.Get("retry-after"))
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s < 0 || math.IsNaN(s) {
			return 0
		}
		return min(time.Duration(min(s, maxRetryAfter.Seconds())*float64(time.Second)), maxRetryAfter)
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), maxRetryAfter)
	}
	return 0
}

func sleepContext(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
