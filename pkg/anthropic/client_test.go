package anthropic

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const serverKey = "sk-ant-api03-SERVERKEY-0123456789"

// upstream is an httptest Anthropic stand-in that answers with a scripted
// sequence of responses and records what it received.
type upstream struct {
	*httptest.Server
	mu      sync.Mutex
	script  []func(w http.ResponseWriter, r *http.Request)
	hits    int
	headers []http.Header
	paths   []string
	bodies  []string
}

func newUpstream(t *testing.T, script ...func(w http.ResponseWriter, r *http.Request)) *upstream {
	t.Helper()
	u := &upstream{script: script}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		i := u.hits
		u.hits++
		u.headers = append(u.headers, r.Header.Clone())
		u.paths = append(u.paths, r.URL.RequestURI())
		u.bodies = append(u.bodies, string(body))
		step := u.script[min(i, len(u.script)-1)]
		u.mu.Unlock()
		step(w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.hits
}

func status(code int, body string, header ...string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Request-Id", fmt.Sprintf("req_%d", code))
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}
}

func anthropicErr(typ, msg string) string { return string(NewErrorBody(typ, msg, "")) }

var (
	overloaded = status(529, anthropicErr("overloaded_error", "Overloaded"))
	okMessage  = status(200, `{"type":"message","model":"claude-haiku-4-5","usage":{"input_tokens":3,"output_tokens":5}}`)
)

// recorder captures the client's waits instead of sleeping.
type recorder struct {
	mu     sync.Mutex
	sleeps []time.Duration
}

func (r *recorder) sleep(ctx context.Context, d time.Duration) error {
	r.mu.Lock()
	r.sleeps = append(r.sleeps, d)
	r.mu.Unlock()
	return ctx.Err()
}

func (r *recorder) waits() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.sleeps...)
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type attemptLog struct {
	mu       sync.Mutex
	statuses []int
	errs     []error
}

func (a *attemptLog) hook(attempt, status int, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if attempt != len(a.statuses) {
		panic(fmt.Sprintf("attempt %d reported out of order", attempt))
	}
	a.statuses = append(a.statuses, status)
	a.errs = append(a.errs, err)
}

func newTestClient(t *testing.T, baseURL string, mod func(*ClientConfig)) (*Client, *recorder) {
	t.Helper()
	rec := &recorder{}
	cfg := ClientConfig{
		BaseURL: baseURL,
		APIKey:  func() string { return serverKey + "\n" }, // as read from a mounted file
		Sleep:   rec.sleep,
		Rand:    func() float64 { return 0.5 },
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := NewClient(cfg)
	require.NoError(t, err)
	t.Cleanup(c.CloseIdleConnections)
	return c, rec
}

func messagesCall() Call {
	return Call{Method: http.MethodPost, Path: "/v1/messages", Header: http.Header{"Anthropic-Version": {"2023-06-01"}},
		Body: []byte(`{"model":"claude-haiku-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`)}
}

func readAllClose(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

func TestDoRetriesOverloadedWithJitteredBackoff(t *testing.T) {
	up := newUpstream(t, overloaded, overloaded, okMessage)
	var log attemptLog
	rands := []float64{0.5, 0.25}
	c, rec := newTestClient(t, up.URL, func(cfg *ClientConfig) {
		cfg.OnAttempt = log.hook
		cfg.Rand = func() float64 { r := rands[0]; rands = rands[1:]; return r }
	})
	resp, err := c.Do(context.Background(), messagesCall())
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	require.Contains(t, readAllClose(t, resp), `"output_tokens":5`)
	require.Equal(t, 3, up.count())
	// Full jitter: rand × min(8s, 500ms·2^n) → 0.5×500ms, then 0.25×1s.
	require.Equal(t, []time.Duration{250 * time.Millisecond, 250 * time.Millisecond}, rec.waits())
	require.Equal(t, []int{529, 529, 200}, log.statuses)
	var apiErr *APIError
	require.ErrorAs(t, log.errs[0], &apiErr)
	require.Equal(t, "overloaded_error", apiErr.Type)
	require.NoError(t, log.errs[2])
	// Every attempt carried the same body.
	require.Equal(t, up.bodies[0], up.bodies[2])
}

func TestDoGivesUpAfterMaxRetries(t *testing.T) {
	up := newUpstream(t, status(503, anthropicErr("api_error", "unavailable")))
	c, rec := newTestClient(t, up.URL, nil)
	_, err := c.Do(context.Background(), messagesCall())
	var apiErr *APIError
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, 503, apiErr.Status)
	require.Equal(t, "req_503", apiErr.RequestID)
	require.Equal(t, 3, up.count(), "default MaxRetries 2 = 3 attempts")
	require.Len(t, rec.waits(), 2)
}

func TestDoDoesNotRetryClientErrors(t *testing.T) {
	tests := []struct {
		name   string
		step   func(http.ResponseWriter, *http.Request)
		status int
		spend  bool
	}{
		{"400", status(400, anthropicErr("invalid_request_error", "max_tokens: too big")), 400, false},
		{"403", status(403, anthropicErr("permission_error", "no")), 403, false},
		{"404", status(404, anthropicErr("not_found_error", "model: nope")), 404, false},
		{"413", status(413, "<html>too large</html>"), 413, false},
		{"spend-limit 429", status(429, `{"type":"error","error":{"type":"rate_limit_error","message":"spend cap","details":{"error_code":"enforced_spend_limit_reached"}}}`), 429, true},
		{"x-should-retry false", status(529, anthropicErr("overloaded_error", "x"), "x-should-retry", "false"), 529, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := newUpstream(t, tt.step, okMessage)
			c, rec := newTestClient(t, up.URL, nil)
			_, err := c.Do(context.Background(), messagesCall())
			var apiErr *APIError
			require.ErrorAs(t, err, &apiErr)
			require.Equal(t, tt.status, apiErr.Status)
			require.Equal(t, tt.spend, apiErr.SpendLimit)
			require.Equal(t, 1, up.count())
			require.Empty(t, rec.waits())
		})
	}
}

func TestDoUnauthorizedRedactsEchoedKey(t *testing.T) {
	up := newUpstream(t, status(401, anthropicErr("authentication_error", "invalid x-api-key "+serverKey)))
	c, _ := newTestClient(t, up.URL, nil)
	_, err := c.Do(context.Background(), messagesCall())
	var apiErr *APIError
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, 401, apiErr.Status)
	require.Equal(t, "authentication_error", apiErr.Type)
	require.Equal(t, 1, up.count())
	require.NotContains(t, err.Error(), "SERVERKEY")
	require.NotContains(t, apiErr.Message, "SERVERKEY")
	require.Contains(t, err.Error(), "[redacted]")
}

func TestDoHonoursRetryAfterAsMinimumWait(t *testing.T) {
	up := newUpstream(t, status(429, anthropicErr("rate_limit_error", "slow down"), "retry-after", "2"), okMessage)
	c, rec := newTestClient(t, up.URL, func(cfg *ClientConfig) { cfg.Rand = func() float64 { return 0 } })
	resp, err := c.Do(context.Background(), messagesCall())
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, []time.Duration{2 * time.Second}, rec.waits())

	// retry-after-ms wins over retry-after, and a larger backoff wins over both.
	up2 := newUpstream(t, status(529, anthropicErr("overloaded_error", "x"), "retry-after-ms", "120", "retry-after", "9"), okMessage)
	c2, rec2 := newTestClient(t, up2.URL, func(cfg *ClientConfig) { cfg.Rand = func() float64 { return 0.9 } })
	resp, err = c2.Do(context.Background(), messagesCall())
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, []time.Duration{450 * time.Millisecond}, rec2.waits())
}

func TestDoRetryAfterBeyondDeadlineReturnsAtOnce(t *testing.T) {
	up := newUpstream(t, status(429, anthropicErr("rate_limit_error", "slow down"), "retry-after", "30"))
	c, _ := newTestClient(t, up.URL, func(cfg *ClientConfig) { cfg.Sleep = nil }) // real sleeping
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err := c.Do(ctx, messagesCall())
	require.Less(t, time.Since(start), time.Second)
	var apiErr *APIError
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, 429, apiErr.Status)
	require.Equal(t, 30*time.Second, apiErr.RetryAfter, "the gateway passes it on as Retry-After")
	require.Equal(t, 1, up.count())

	// Without a deadline, MaxRetryWait bounds the wait the same way.
	c2, rec := newTestClient(t, up.URL, func(cfg *ClientConfig) { cfg.MaxRetryWait = 10 * time.Second })
	_, err = c2.Do(context.Background(), messagesCall())
	require.ErrorAs(t, err, &apiErr)
	require.Empty(t, rec.waits())
	require.Equal(t, 2, up.count())
}

func TestDoRetriesConnectionRefused(t *testing.T) {
	// A port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())

	var log attemptLog
	c, rec := newTestClient(t, "http://"+addr, func(cfg *ClientConfig) { cfg.OnAttempt = log.hook })
	_, err = c.Do(context.Background(), messagesCall())
	require.ErrorIs(t, err, ErrUpstreamConnection)
	require.NotErrorIs(t, err, ErrUpstreamTimeout)
	require.Len(t, log.statuses, 3)
	require.Len(t, rec.waits(), 2)
}

// The first dial fails, the retry reaches the upstream: the call succeeds and
// the upstream saw exactly one request.
func TestDoRecoversFromFailedDial(t *testing.T) {
	up := newUpstream(t, okMessage)
	var dials atomic.Int32
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if dials.Add(1) == 1 {
			return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("connect: connection refused")}
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	c, rec := newTestClient(t, up.URL, func(cfg *ClientConfig) { cfg.Transport = tr })
	t.Cleanup(tr.CloseIdleConnections)
	resp, err := c.Do(context.Background(), messagesCall())
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 1, up.count())
	require.Len(t, rec.waits(), 1)
}

// A connection that dies after the request was sent is not retried: the
// upstream may have started a billable generation.
func TestDoDoesNotRetryAfterRequestWasSent(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	c, rec := newTestClient(t, up.URL, nil)
	_, err := c.Do(context.Background(), messagesCall())
	require.ErrorIs(t, err, ErrUpstreamConnection)
	require.Equal(t, 1, up.count())
	require.Empty(t, rec.waits())
}

func TestDoHeaderTimeoutIsNotRetried(t *testing.T) {
	release := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		select { // silent upstream
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	var log attemptLog
	c, rec := newTestClient(t, up.URL, func(cfg *ClientConfig) {
		cfg.HeaderTimeout = 150 * time.Millisecond
		cfg.OnAttempt = log.hook
	})
	start := time.Now()
	_, err := c.Do(context.Background(), messagesCall())
	elapsed := time.Since(start)
	require.ErrorIs(t, err, ErrUpstreamTimeout)
	require.GreaterOrEqual(t, elapsed, 150*time.Millisecond)
	require.Less(t, elapsed, 2*time.Second)
	require.Equal(t, 1, up.count())
	require.Empty(t, rec.waits())
	require.Equal(t, []int{0}, log.statuses)
}

// The header timeout bounds the wait for headers only, not a long stream.
func TestDoHeaderTimeoutDoesNotCutStreams(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		for i := 0; i < 4; i++ {
			_, _ = io.WriteString(w, sse("ping", `{"type":"ping"}`))
			http.NewResponseController(w).Flush()
			time.Sleep(60 * time.Millisecond)
		}
	})
	c, _ := newTestClient(t, up.URL, func(cfg *ClientConfig) { cfg.HeaderTimeout = 100 * time.Millisecond })
	resp, err := c.Do(context.Background(), messagesCall())
	require.NoError(t, err)
	require.Equal(t, 4, strings.Count(readAllClose(t, resp), "event: ping"))
}

func TestDoCircuitBreaker(t *testing.T) {
	var healthy atomic.Bool
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if healthy.Load() {
			okMessage(w, r)
			return
		}
		overloaded(w, r)
	})
	clock := &fakeClock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	c, _ := newTestClient(t, up.URL, func(cfg *ClientConfig) {
		cfg.BreakerThreshold = 3
		cfg.BreakerCooldown = 30 * time.Second
		cfg.MaxRetries = -1
		cfg.Now = clock.Now
	})
	for i := 0; i < 3; i++ {
		_, err := c.Do(context.Background(), messagesCall())
		var apiErr *APIError
		require.ErrorAs(t, err, &apiErr)
	}
	require.Equal(t, 3, up.count())
	require.True(t, c.BreakerOpen())
	require.Equal(t, 30*time.Second, c.BreakerRetryAfter())

	// Open: refused at once, nothing reaches the upstream.
	for i := 0; i < 20; i++ {
		start := time.Now()
		_, err := c.Do(context.Background(), messagesCall())
		require.Equal(t, ErrCircuitOpen, err)
		require.Less(t, time.Since(start), 10*time.Millisecond)
	}
	require.Equal(t, 3, up.count())

	// After the cooldown one probe goes through; a failed probe re-opens it.
	clock.Advance(31 * time.Second)
	_, err := c.Do(context.Background(), messagesCall())
	var apiErr *APIError
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, 4, up.count())
	require.True(t, c.BreakerOpen())
	_, err = c.Do(context.Background(), messagesCall())
	require.ErrorIs(t, err, ErrCircuitOpen)
	require.Equal(t, 4, up.count())

	// The next probe succeeds and closes it.
	clock.Advance(31 * time.Second)
	healthy.Store(true)
	resp, err := c.Do(context.Background(), messagesCall())
	require.NoError(t, err)
	resp.Body.Close()
	require.False(t, c.BreakerOpen())
	resp, err = c.Do(context.Background(), messagesCall())
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 6, up.count())
}

// While the half-open probe is in flight, every other call is refused.
func TestDoBreakerAllowsExactlyOneProbe(t *testing.T) {
	inProbe := make(chan struct{})
	release := make(chan struct{})
	var failing atomic.Bool
	failing.Store(true)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			overloaded(w, r)
			return
		}
		close(inProbe)
		<-release
		okMessage(w, r)
	})
	clock := &fakeClock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	c, _ := newTestClient(t, up.URL, func(cfg *ClientConfig) {
		cfg.BreakerThreshold = 2
		cfg.MaxRetries = -1
		cfg.Now = clock.Now
	})
	for i := 0; i < 2; i++ {
		_, _ = c.Do(context.Background(), messagesCall())
	}
	require.True(t, c.BreakerOpen())
	clock.Advance(time.Minute)
	failing.Store(false)

	done := make(chan error, 1)
	go func() {
		resp, err := c.Do(context.Background(), messagesCall())
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	<-inProbe
	for i := 0; i < 5; i++ {
		_, err := c.Do(context.Background(), messagesCall())
		require.ErrorIs(t, err, ErrCircuitOpen)
	}
	close(release)
	require.NoError(t, <-done)
	require.False(t, c.BreakerOpen())
	require.Equal(t, 3, up.count())
}

func TestDoBreakerCountsConnectionFailures(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	c, _ := newTestClient(t, "http://"+addr, func(cfg *ClientConfig) { cfg.BreakerThreshold = 5 })
	_, err = c.Do(context.Background(), messagesCall()) // 3 attempts
	require.ErrorIs(t, err, ErrUpstreamConnection)
	require.False(t, c.BreakerOpen())
	_, err = c.Do(context.Background(), messagesCall()) // attempts 4 and 5 open it
	require.ErrorIs(t, err, ErrUpstreamConnection)
	require.True(t, c.BreakerOpen())
	_, err = c.Do(context.Background(), messagesCall())
	require.Equal(t, ErrCircuitOpen, err)
}

func TestDoBreakerIgnoresClientErrors(t *testing.T) {
	up := newUpstream(t, status(400, anthropicErr("invalid_request_error", "bad")))
	c, _ := newTestClient(t, up.URL, func(cfg *ClientConfig) { cfg.BreakerThreshold = 2 })
	for i := 0; i < 5; i++ {
		_, err := c.Do(context.Background(), messagesCall())
		var apiErr *APIError
		require.ErrorAs(t, err, &apiErr)
	}
	require.False(t, c.BreakerOpen())
	require.Equal(t, 5, up.count())
}

func TestDoCancelDuringBackoffReturnsAtOnce(t *testing.T) {
	up := newUpstream(t, overloaded)
	c, _ := newTestClient(t, up.URL, func(cfg *ClientConfig) {
		cfg.Sleep = nil // real, context-aware sleeping
		cfg.BaseBackoff = 5 * time.Second
		cfg.Rand = func() float64 { return 0.99 }
	})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for up.count() == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(20 * time.Millisecond)
		cancel()
	}()
	start := time.Now()
	_, err := c.Do(ctx, messagesCall())
	require.ErrorIs(t, err, context.Canceled)
	require.Less(t, time.Since(start), time.Second)
	require.Equal(t, 1, up.count())
}

func TestDoCancelMidBodyAbortsTheStream(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, sse("message_start", `{"type":"message_start","message":{"model":"m","usage":{"input_tokens":1,"output_tokens":1}}}`))
		http.NewResponseController(w).Flush()
		<-r.Context().Done() // the upstream notices the client went away
	})
	c, _ := newTestClient(t, up.URL, nil)
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := c.Do(ctx, messagesCall())
	require.NoError(t, err)
	defer resp.Body.Close()
	m := NewStreamMeter()
	buf := make([]byte, 4096)
	n, err := resp.Body.Read(buf)
	require.NoError(t, err)
	_, _ = m.Write(buf[:n])
	cancel()
	start := time.Now()
	_, err = io.Copy(m, resp.Body)
	require.Error(t, err)
	require.Less(t, time.Since(start), time.Second)
	require.Equal(t, int64(1), m.Usage().InputTokens)
}

func TestDoSendsOnlyServerKeyAndAllowlistedHeaders(t *testing.T) {
	up := newUpstream(t, okMessage)
	c, _ := newTestClient(t, up.URL, nil)
	call := messagesCall()
	// Raw caller headers, not pre-filtered: Do must filter them itself.
	call.Header = http.Header{
		"X-Api-Key":         {"sk-ant-api03-CALLERKEY"},
		"Authorization":     {"Bearer SENTINEL123"},
		"Cookie":            {"session=abc"},
		"Connection":        {"x-api-key"},
		"X-Forwarded-For":   {"203.0.113.9"},
		"X-Foo":             {"bar"},
		"Anthropic-Version": {"2026-10-21"},
		"Anthropic-Beta":    {"prompt-caching-2024-07-31"},
	}
	resp, err := c.Do(context.Background(), call)
	require.NoError(t, err)
	resp.Body.Close()
	got := up.headers[0]
	require.Equal(t, []string{serverKey}, got.Values("X-Api-Key"), "trimmed server key, exactly once")
	require.Empty(t, got.Get("Authorization"))
	require.Empty(t, got.Get("Cookie"))
	require.Empty(t, got.Get("X-Forwarded-For"))
	require.Empty(t, got.Get("X-Foo"))
	require.Equal(t, "2026-10-21", got.Get("Anthropic-Version"))
	require.Equal(t, "prompt-caching-2024-07-31", got.Get("Anthropic-Beta"))
	require.Equal(t, "application/json", got.Get("Content-Type"))
	for name, vs := range got {
		for _, v := range vs {
			require.NotContains(t, v, "CALLERKEY", name)
			require.NotContains(t, v, "SENTINEL123", name)
		}
	}
}

func TestDoReadsTheKeyOnEveryAttempt(t *testing.T) {
	up := newUpstream(t, overloaded, okMessage)
	var n atomic.Int32
	c, _ := newTestClient(t, up.URL, func(cfg *ClientConfig) {
		cfg.APIKey = func() string { return fmt.Sprintf("key-%d", n.Add(1)) }
	})
	resp, err := c.Do(context.Background(), messagesCall())
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, "key-1", up.headers[0].Get("X-Api-Key"))
	require.Equal(t, "key-2", up.headers[1].Get("X-Api-Key"), "a rotated key applies to the retry")
}

func TestDoRefusesWithoutKey(t *testing.T) {
	up := newUpstream(t, okMessage)
	c, _ := newTestClient(t, up.URL, func(cfg *ClientConfig) { cfg.APIKey = func() string { return " \n" } })
	_, err := c.Do(context.Background(), messagesCall())
	require.ErrorIs(t, err, ErrNoAPIKey)
	require.Equal(t, 0, up.count())
}

func TestDoOnlyAllowedPaths(t *testing.T) {
	up := newUpstream(t, okMessage)
	c, _ := newTestClient(t, up.URL+"/anthropic/", nil)
	for _, p := range []string{"/v1/files", "/v1/messages/batches", "/v1/messages/../files", "/v1/%2e%2e/files",
		"/v1/models", "v1/messages", "/v1/messages/", "/v1/messages?beta=true&x=1", "", "//evil.example/v1/messages"} {
		_, err := c.Do(context.Background(), Call{Path: p})
		require.ErrorIs(t, err, ErrPathNotAllowed, p)
	}
	_, err := c.Do(context.Background(), Call{Method: http.MethodGet, Path: "/v1/messages"})
	require.ErrorIs(t, err, ErrPathNotAllowed)
	require.Equal(t, 0, up.count())

	for _, p := range []string{"/v1/messages", "/v1/messages/count_tokens", "/v1/messages?beta=true"} {
		resp, err := c.Do(context.Background(), Call{Path: p, Body: []byte(`{}`)})
		require.NoError(t, err, p)
		resp.Body.Close()
	}
	require.Equal(t, []string{"/anthropic/v1/messages", "/anthropic/v1/messages/count_tokens", "/anthropic/v1/messages?beta=true"}, up.paths)
}

func TestNewClientReportsEveryProblem(t *testing.T) {
	_, err := NewClient(ClientConfig{BaseURL: "ftp://x", HeaderTimeout: -1, BreakerCooldown: -time.Second})
	require.ErrorContains(t, err, "scheme must be http or https")
	require.ErrorContains(t, err, "no APIKey function")
	require.ErrorContains(t, err, "header timeout")
	require.ErrorContains(t, err, "breaker cooldown")

	for _, u := range []string{"", "http://", "https://user:pw@api.anthropic.com", "http://h/?q=1", "::"} {
		_, err := NewClient(ClientConfig{BaseURL: u, APIKey: func() string { return "k" }})
		require.ErrorContains(t, err, "base URL", u)
	}
	_, err = NewClient(ClientConfig{BaseURL: "https://api.anthropic.com", APIKey: func() string { return "k" }})
	require.NoError(t, err)
}

func TestDefaultTransport(t *testing.T) {
	c, err := NewClient(ClientConfig{BaseURL: "https://api.anthropic.com", APIKey: func() string { return "k" }, HeaderTimeout: 42 * time.Second})
	require.NoError(t, err)
	tr := c.transport
	require.NotNil(t, tr)
	require.GreaterOrEqual(t, tr.MaxIdleConnsPerHost, 64)
	require.Positive(t, tr.MaxConnsPerHost)
	require.Positive(t, tr.TLSHandshakeTimeout)
	require.Equal(t, 42*time.Second, tr.ResponseHeaderTimeout)
	require.True(t, tr.ForceAttemptHTTP2)
}

// The caller's own deadline expiring while waiting for headers is a timeout
// too (504), and still says it was the deadline.
func TestDoCallerDeadlineWhileWaitingForHeaders(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	c, rec := newTestClient(t, up.URL, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := c.Do(ctx, messagesCall())
	require.ErrorIs(t, err, ErrUpstreamTimeout)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Equal(t, 1, up.count())
	require.Empty(t, rec.waits())
	require.False(t, c.BreakerOpen())
}

// A wrapping transport (the gateway's metrics) sees the header timeout as a
// timeout, not as a cancellation.
func TestHeaderTimeoutLooksLikeATimeoutToWrappingTransports(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	inner := &http.Transport{}
	t.Cleanup(inner.CloseIdleConnections)
	var seen error
	var mu sync.Mutex
	wrap := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := inner.RoundTrip(r)
		mu.Lock()
		seen = err
		mu.Unlock()
		return resp, err
	})
	c, _ := newTestClient(t, up.URL, func(cfg *ClientConfig) {
		cfg.Transport = wrap
		cfg.HeaderTimeout = 100 * time.Millisecond
	})
	_, err := c.Do(context.Background(), messagesCall())
	require.ErrorIs(t, err, ErrUpstreamTimeout)
	mu.Lock()
	defer mu.Unlock()
	var te interface{ Timeout() bool }
	require.ErrorAs(t, seen, &te)
	require.True(t, te.Timeout())
	require.NotErrorIs(t, seen, context.Canceled)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
