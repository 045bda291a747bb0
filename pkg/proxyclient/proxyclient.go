// Package proxyclient is a Go client for the keyward gateway: the Go
// counterpart of the seed's ProxyClient. It asks questions (whole or
// streamed), runs catalog analytics queries, reads the caller's quota and
// probes health, with optional bearer-token or HMAC authentication.
//
// Calls that the gateway refuses for a passing reason (429, 503, 529, or a
// broken connection) are retried with jittered exponential backoff that
// honours Retry-After; any other refusal comes back at once as an *Error.
// Every call stops as soon as its context is done, including while it waits
// to retry.
package proxyclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Defaults chosen so that a client sitting behind the gateway's default
// 30/60s limit rides out a burst without the caller noticing, yet never
// blocks for longer than the window itself.
const (
	DefaultMaxRetries   = 2
	DefaultBaseBackoff  = 500 * time.Millisecond
	DefaultMaxBackoff   = 8 * time.Second
	DefaultMaxRetryWait = 60 * time.Second
	// DefaultTimeout is how long the default transport waits for the
	// gateway to start answering.
	DefaultTimeout = 2 * time.Minute

	// maxResponseBytes bounds what a JSON answer may make us buffer.
	maxResponseBytes = 8 << 20
)

// Signer signs an outgoing request whose body is body, by setting headers
// on req. github.com/keyward/keyward/pkg/auth.Signer satisfies it. It is
// called again for every retry, so each attempt carries a fresh timestamp
// and nonce and the gateway's replay protection does not reject the retry.
type Signer interface {
	Sign(req *http.Request, body []byte) error
}

// TokenSource returns the bearer token to send. It is called before every
// attempt so that a refreshing source (a short-lived JWT) is always current.
type TokenSource func(ctx context.Context) (string, error)

// Client calls one keyward gateway. It is safe for concurrent use.
type Client struct {
	base         *url.URL
	http         *http.Client
	token        TokenSource
	signer       Signer
	userAgent    string
	maxRetries   int
	baseBackoff  time.Duration
	maxBackoff   time.Duration
	maxRetryWait time.Duration

	// Time is injected so retry waits and Retry-After dates can be tested
	// without sleeping.
	now   func() time.Time
	after func(time.Duration) <-chan time.Time
	// jitter returns a number in [0,1).
	jitter func() float64
}

// Option configures a Client.
type Option func(*Client) error

// WithHTTPClient sets the HTTP client (transport, proxy, TLS). The default
// waits at most DefaultTimeout for the gateway to start answering and sets
// no overall timeout, so that long streams are bounded by the caller's
// context and the gateway's stream cap rather than cut off here. An
// http.Client.Timeout would also cut streams short.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error {
		if hc == nil {
			return errors.New("http client is nil")
		}
		c.http = hc
		return nil
	}
}

// WithBearerToken sends a fixed "Authorization: Bearer" token.
func WithBearerToken(token string) Option {
	return func(c *Client) error {
		if strings.TrimSpace(token) == "" {
			return errors.New("bearer token is empty")
		}
		c.token = func(context.Context) (string, error) { return token, nil }
		return nil
	}
}

// WithTokenSource asks src for the bearer token before every attempt, for
// tokens that expire and are refreshed (JWTs).
func WithTokenSource(src TokenSource) Option {
	return func(c *Client) error {
		if src == nil {
			return errors.New("token source is nil")
		}
		c.token = src
		return nil
	}
}

// WithSigner signs every attempt with s (HMAC request signatures for
// server-side callers).
func WithSigner(s Signer) Option {
	return func(c *Client) error {
		if s == nil {
			return errors.New("signer is nil")
		}
		c.signer = s
		return nil
	}
}

// WithMaxRetries sets how many times a call is retried after its first
// attempt (0 disables retries).
func WithMaxRetries(n int) Option {
	return func(c *Client) error {
		if n < 0 {
			return fmt.Errorf("max retries %d is negative", n)
		}
		c.maxRetries = n
		return nil
	}
}

// WithBackoff sets the exponential backoff: the wait before retry n is
// about base·2ⁿ, jittered, and never more than max. A Retry-After from the
// gateway takes precedence.
func WithBackoff(base, max time.Duration) Option {
	return func(c *Client) error {
		if base <= 0 || max < base {
			return fmt.Errorf("backoff base %v and max %v: need 0 < base <= max", base, max)
		}
		c.baseBackoff, c.maxBackoff = base, max
		return nil
	}
}

// WithMaxRetryWait sets the longest Retry-After the client waits out by
// itself. A longer one (an exhausted daily budget, say) is returned to the
// caller at once as an *Error carrying RetryAfter.
func WithMaxRetryWait(d time.Duration) Option {
	return func(c *Client) error {
		if d < 0 {
			return fmt.Errorf("max retry wait %v is negative", d)
		}
		c.maxRetryWait = d
		return nil
	}
}

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option {
	return func(c *Client) error {
		c.userAgent = ua
		return nil
	}
}

// New returns a client for the gateway at baseURL (for example
// "http://localhost:5001"; a path prefix such as "https://host/keyward" is
// kept).
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("parsing base URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("base URL %q: scheme must be http or https", baseURL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("base URL %q: host is missing", baseURL)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("base URL %q: must not carry credentials, a query or a fragment", u.Redacted())
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	c := &Client{
		base:         u,
		http:         &http.Client{Transport: defaultTransport()},
		userAgent:    "keyward-proxyclient/1",
		maxRetries:   DefaultMaxRetries,
		baseBackoff:  DefaultBaseBackoff,
		maxBackoff:   DefaultMaxBackoff,
		maxRetryWait: DefaultMaxRetryWait,
		now:          time.Now,
		after:        time.After,
		jitter:       rand.Float64,
	}
	for _, opt := range opts {
		if err := opt(c); err != nil {
			return nil, fmt.Errorf("configuring client: %w", err)
		}
	}
	return c, nil
}

func defaultTransport() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	// A non-streamed answer arrives with its headers, so this also bounds
	// a whole Query.
	t.ResponseHeaderTimeout = DefaultTimeout
	return t
}

// call is one logical API call, possibly made of several attempts.
type call struct {
	method string
	path   string
	body   []byte // nil for GET
	accept string
	retry  bool
}

// do runs c until it gets a response that is final: a 2xx (returned open,
// for the caller to read and close) or an error. Retries happen only here,
// before any of the response reached the caller, so a stream that has
// started is never replayed.
func (c *Client) do(ctx context.Context, cl call) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		resp, err := c.attempt(ctx, cl)
		if err == nil && resp.StatusCode >= 200 && resp.StatusCode < 300 {
			return resp, nil
		}

		var apiErr *Error
		if err == nil {
			apiErr = c.readError(resp)
			err = apiErr
		} else if ctxErr := ctx.Err(); ctxErr != nil {
			// The transport reports cancellation in many shapes; callers
			// should only have to check errors.Is(err, context.Canceled).
			return nil, fmt.Errorf("calling %s %s: %w", cl.method, cl.path, ctxErr)
		} else if !isTransportError(err) {
			return nil, err
		}

		if !cl.retry || attempt >= c.maxRetries || !retryable(apiErr) {
			return nil, c.finalError(cl, err)
		}
		wait := c.backoff(attempt)
		if apiErr != nil && apiErr.RetryAfter > 0 {
			if apiErr.RetryAfter > c.maxRetryWait {
				return nil, c.finalError(cl, err)
			}
			// Never earlier than the gateway asked: its limiter would just
			// refuse again and burn an attempt.
			wait = apiErr.RetryAfter
		}
		if dl, ok := ctx.Deadline(); ok && c.now().Add(wait).After(dl) {
			// Sleeping past the deadline only to fail then helps nobody.
			return nil, c.finalError(cl, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("calling %s %s: waiting to retry: %w", cl.method, cl.path, ctx.Err())
		case <-c.after(wait):
		}
	}
}

func (c *Client) finalError(cl call, err error) error {
	var apiErr *Error
	if errors.As(err, &apiErr) {
		return apiErr
	}
	return fmt.Errorf("calling %s %s: %w", cl.method, cl.path, err)
}

// transportError marks failures to reach the gateway at all (as opposed to
// failures building the request), which are worth retrying.
type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

func isTransportError(err error) bool {
	var te *transportError
	return errors.As(err, &te)
}

// retryable reports whether a refusal is worth another attempt: the
// limiter's 429, an overloaded or draining gateway (503) or upstream (529),
// and connection failures (apiErr nil). Any other 4xx is the caller's
// mistake and repeating it cannot help.
func retryable(apiErr *Error) bool {
	if apiErr == nil {
		return true
	}
	if apiErr.noRetry {
		return false
	}
	switch apiErr.Status {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable, 529:
		return true
	}
	return false
}

// backoff is the jittered exponential wait before retry attempt+1: half
// fixed, half random, so that clients refused together do not come back
// together, yet the wait still grows.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.baseBackoff
	for i := 0; i < attempt && d < c.maxBackoff; i++ {
		d *= 2
	}
	d = min(d, c.maxBackoff)
	return d/2 + time.Duration(c.jitter()*float64(d/2))
}

func (c *Client) attempt(ctx context.Context, cl call) (*http.Response, error) {
	u := *c.base
	u.Path = c.base.Path + cl.path
	var body io.Reader = http.NoBody
	if cl.body != nil {
		body = bytes.NewReader(cl.body)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("building request %s %s: %w", cl.method, cl.path, err)
	}
	if cl.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", cl.accept)
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	if c.token != nil {
		tok, err := c.token(ctx)
		if err != nil {
			return nil, fmt.Errorf("getting bearer token: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if c.signer != nil {
		if err := c.signer.Sign(req, cl.body); err != nil {
			return nil, fmt.Errorf("signing request %s %s: %w", cl.method, cl.path, err)
		}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &transportError{err: err}
	}
	return resp, nil
}

// getJSON and postJSON make a call and decode a 2xx JSON answer into out.
func (c *Client) getJSON(ctx context.Context, path string, retry bool, out any) error {
	return c.roundTrip(ctx, call{method: http.MethodGet, path: path, accept: "application/json", retry: retry}, out)
}

func (c *Client) postJSON(ctx context.Context, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encoding request for %s: %w", path, err)
	}
	return c.roundTrip(ctx, call{method: http.MethodPost, path: path, body: body, accept: "application/json", retry: true}, out)
}

func (c *Client) roundTrip(ctx context.Context, cl call, out any) error {
	resp, err := c.do(ctx, cl)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(io.LimitReader(resp.Body, maxResponseBytes))
	if err := dec.Decode(out); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("reading answer of %s %s: %w", cl.method, cl.path, ctxErr)
		}
		return fmt.Errorf("decoding answer of %s %s: %w", cl.method, cl.path, err)
	}
	return nil
}
