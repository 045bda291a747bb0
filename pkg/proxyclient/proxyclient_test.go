package proxyclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// reply is one scripted answer of a fake gateway.
type reply struct {
	status  int
	headers map[string]string
	body    string
	hangup  bool // close the connection without answering
}

// scripted is a fake gateway that answers attempts in order (the last
// reply repeats) and records what it received.
type scripted struct {
	mu      sync.Mutex
	replies []reply
	reqs    []recorded
	srv     *httptest.Server
}

type recorded struct {
	method, path string
	header       http.Header
	body         []byte
	at           time.Time
}

func newScripted(t testing.TB, replies ...reply) *scripted {
	t.Helper()
	s := &scripted{replies: replies}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *scripted) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	n := len(s.reqs)
	s.reqs = append(s.reqs, recorded{r.Method, r.URL.Path, r.Header.Clone(), body, time.Now()})
	rep := s.replies[min(n, len(s.replies)-1)]
	s.mu.Unlock()
	if rep.hangup {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	w.Header().Set("Content-Type", "application/json")
	for k, v := range rep.headers {
		w.Header().Set(k, v)
	}
	w.WriteHeader(rep.status)
	_, _ = io.WriteString(w, rep.body)
}

func (s *scripted) requests() []recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]recorded(nil), s.reqs...)
}

const okAnswer = `{"answer":"MRR grew 5.6%.","model":"claude-sonnet-4-5","usage":{"input_tokens":12,"output_tokens":7},"request_id":"req-1"}`

// fakeClock records the waits the client asks for and returns at once, so
// retry tests neither sleep nor depend on the scheduler.
type fakeClock struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (f *fakeClock) after(d time.Duration) <-chan time.Time {
	f.mu.Lock()
	f.waits = append(f.waits, d)
	f.mu.Unlock()
	ch := make(chan time.Time, 1)
	ch <- time.Now()
	return ch
}

func (f *fakeClock) recorded() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.waits...)
}

func newTestClient(t *testing.T, url string, opts ...Option) (*Client, *fakeClock) {
	t.Helper()
	c, err := New(url, opts...)
	require.NoError(t, err)
	clk := &fakeClock{}
	c.after = clk.after
	c.jitter = func() float64 { return 0.5 }
	return c, clk
}

func TestNewRejectsBadConfiguration(t *testing.T) {
	tests := []struct {
		name    string
		base    string
		opts    []Option
		wantErr string
	}{
		{"not a URL", "://x", nil, "parsing base URL"},
		{"no scheme", "localhost:5001", nil, "scheme must be http or https"},
		{"ftp", "ftp://localhost", nil, "scheme must be http or https"},
		{"no host", "http://", nil, "host is missing"},
		{"credentials in URL", "http://user:pw@localhost:5001", nil, "must not carry credentials"},
		{"query in URL", "http://localhost:5001?x=1", nil, "must not carry credentials, a query"},
		{"nil http client", "http://localhost:5001", []Option{WithHTTPClient(nil)}, "http client is nil"},
		{"empty token", "http://localhost:5001", []Option{WithBearerToken(" ")}, "bearer token is empty"},
		{"nil token source", "http://localhost:5001", []Option{WithTokenSource(nil)}, "token source is nil"},
		{"nil signer", "http://localhost:5001", []Option{WithSigner(nil)}, "signer is nil"},
		{"negative retries", "http://localhost:5001", []Option{WithMaxRetries(-1)}, "negative"},
		{"zero backoff", "http://localhost:5001", []Option{WithBackoff(0, time.Second)}, "need 0 < base <= max"},
		{"max below base", "http://localhost:5001", []Option{WithBackoff(time.Second, time.Millisecond)}, "need 0 < base <= max"},
		{"negative retry wait", "http://localhost:5001", []Option{WithMaxRetryWait(-time.Second)}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.base, tt.opts...)
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestNewKeepsPathPrefixAndDoesNotLeakPasswordInError(t *testing.T) {
	_, err := New("http://user:hunter2@localhost:5001")
	require.Error(t, err)
	require.NotContains(t, err.Error(), "hunter2")

	gw := newScripted(t, reply{status: 200, body: okAnswer})
	c, _ := newTestClient(t, gw.srv.URL+"/keyward/")
	_, err = c.Query(context.Background(), QueryRequest{Question: "q"})
	require.NoError(t, err)
	require.Equal(t, "/keyward/api/query", gw.requests()[0].path)
}

func TestRetryPolicy(t *testing.T) {
	tooMany := reply{status: 429, headers: map[string]string{"Retry-After": "2"}, body: `{"error":"rate_limited","message":"Maximum 30 requests per 60 seconds","retry_after":2}`}
	ok := reply{status: 200, body: okAnswer}
	tests := []struct {
		name         string
		replies      []reply
		maxRetries   int
		wantAttempts int
		wantStatus   int // 0: success
		wantWaits    []time.Duration
	}{
		{"429 then success waits Retry-After", []reply{tooMany, ok}, 2, 2, 0, []time.Duration{2 * time.Second}},
		{"503 and 529 are retried with growing backoff", []reply{{status: 503, body: `{}`}, {status: 529, body: `{}`}, ok}, 2, 3, 0,
			// jitter fixed at 0.5: base/2 + 0.5*base/2 = 0.75·base, then 0.75·2·base.
			[]time.Duration{375 * time.Millisecond, 750 * time.Millisecond}},
		{"gives up after max retries with the last refusal", []reply{tooMany}, 2, 3, 429, []time.Duration{2 * time.Second, 2 * time.Second}},
		{"no retries configured", []reply{tooMany, ok}, 0, 1, 429, nil},
		{"400 is returned at once", []reply{{status: 400, body: `{"error":"validation_error","message":"question is required"}`}, ok}, 2, 1, 400, nil},
		{"401 is returned at once", []reply{{status: 401, body: `{"error":"unauthorized","message":"token expired"}`}, ok}, 2, 1, 401, nil},
		{"403 is returned at once", []reply{{status: 403, body: `{"error":"forbidden"}`}, ok}, 2, 1, 403, nil},
		{"413 is returned at once", []reply{{status: 413, body: `{"error":"too_large"}`}, ok}, 2, 1, 413, nil},
		{"500 is not retried", []reply{{status: 500, body: `{"error":"internal"}`}, ok}, 2, 1, 500, nil},
		{"502 is not retried", []reply{{status: 502, body: `{"error":"upstream_error"}`}, ok}, 2, 1, 502, nil},
		{"Retry-After beyond the max wait is handed back", []reply{{status: 429, headers: map[string]string{"Retry-After": "7200"}, body: `{"error":"budget_exhausted"}`}, ok}, 2, 1, 429, nil},
		{"x-should-retry false is obeyed", []reply{{status: 503, headers: map[string]string{"X-Should-Retry": "false"}, body: `{}`}, ok}, 2, 1, 503, nil},
		{"a dropped connection is retried", []reply{{hangup: true}, ok}, 2, 2, 0, []time.Duration{375 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw := newScripted(t, tt.replies...)
			c, clk := newTestClient(t, gw.srv.URL, WithMaxRetries(tt.maxRetries))
			ans, err := c.Query(context.Background(), QueryRequest{Question: "What is my MRR?"})
			require.Len(t, gw.requests(), tt.wantAttempts)
			require.Equal(t, tt.wantWaits, clk.recorded())
			if tt.wantStatus == 0 {
				require.NoError(t, err)
				require.Equal(t, "MRR grew 5.6%.", ans.Answer)
				return
			}
			var perr *Error
			require.ErrorAs(t, err, &perr)
			require.Equal(t, tt.wantStatus, perr.Status)
		})
	}
}

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	c, err := New("http://localhost:5001", WithBackoff(100*time.Millisecond, time.Second))
	require.NoError(t, err)
	for _, j := range []float64{0, 0.999} {
		c.jitter = func() float64 { return j }
		var prev time.Duration
		for attempt := range 8 {
			d := c.backoff(attempt)
			ceiling := min(100*time.Millisecond<<attempt, time.Second)
			require.GreaterOrEqual(t, d, ceiling/2, "attempt %d", attempt)
			require.LessOrEqual(t, d, ceiling, "attempt %d", attempt)
			require.GreaterOrEqual(t, d, prev, "attempt %d", attempt)
			prev = d
		}
	}
	// Real jitter spreads clients apart.
	c.jitter = func() float64 { return 0.1 }
	a := c.backoff(3)
	c.jitter = func() float64 { return 0.9 }
	require.Greater(t, c.backoff(3), a)
}

func TestRetryAfterOneSecondIsWaitedOutForReal(t *testing.T) {
	gw := newScripted(t,
		reply{status: 429, headers: map[string]string{"Retry-After": "1"}, body: `{"error":"rate_limited","message":"slow down"}`},
		reply{status: 200, body: okAnswer})
	c, err := New(gw.srv.URL)
	require.NoError(t, err)
	start := time.Now()
	ans, err := c.Query(context.Background(), QueryRequest{Question: "q"})
	require.NoError(t, err)
	require.Equal(t, "req-1", ans.RequestID)
	reqs := gw.requests()
	require.Len(t, reqs, 2)
	require.GreaterOrEqual(t, reqs[1].at.Sub(reqs[0].at), time.Second)
	require.Less(t, time.Since(start), 3*time.Second)
}

func TestCancellationStopsRetryWaitAtOnce(t *testing.T) {
	gw := newScripted(t, reply{status: 429, headers: map[string]string{"Retry-After": "30"}, body: `{"error":"rate_limited"}`})
	c, err := New(gw.srv.URL)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(150*time.Millisecond, cancel)
	start := time.Now()
	_, err = c.Query(ctx, QueryRequest{Question: "q"})
	require.ErrorIs(t, err, context.Canceled)
	require.Less(t, time.Since(start), time.Second)
	require.Len(t, gw.requests(), 1)
}

func TestDeadlineShorterThanRetryAfterReturnsRefusalWithoutWaiting(t *testing.T) {
	gw := newScripted(t, reply{status: 429, headers: map[string]string{"Retry-After": "20"}, body: `{"error":"rate_limited","message":"Maximum 30 requests per 60 seconds"}`})
	c, err := New(gw.srv.URL)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err = c.Query(ctx, QueryRequest{Question: "q"})
	require.Less(t, time.Since(start), time.Second)
	var perr *Error
	require.ErrorAs(t, err, &perr)
	require.Equal(t, 20*time.Second, perr.RetryAfter)
	require.True(t, RateLimited(err))
}

func TestUnreachableGatewayIsRetriedThenReported(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close() // nothing listens there now

	c, clk := newTestClient(t, "http://"+addr)
	_, err = c.Health(context.Background())
	require.Error(t, err)
	require.Empty(t, clk.recorded(), "Health is a probe and must not retry")

	_, err = c.RateLimitStatus(context.Background())
	require.ErrorContains(t, err, "calling GET /api/rate-limit-status")
	var perr *Error
	require.False(t, errors.As(err, &perr), "a connection failure is not a gateway refusal")
	var opErr *net.OpError
	require.ErrorAs(t, err, &opErr)
	require.Len(t, clk.recorded(), DefaultMaxRetries)
}

func TestErrorDecoding(t *testing.T) {
	tests := []struct {
		name string
		rep  reply
		want Error
	}{
		{
			name: "gateway validation error",
			rep: reply{status: 400, headers: map[string]string{"X-Request-ID": "req-h"},
				body: `{"error":"Missing required fields","message":"missing required fields: question","fields":["question"],"request_id":"req-b"}`},
			want: Error{Status: 400, Code: "Missing required fields", Message: "missing required fields: question", RequestID: "req-h", Fields: []string{"question"}},
		},
		{
			name: "fields as objects, request id from body",
			rep:  reply{status: 400, body: `{"error":"Invalid parameters","message":"bad","fields":[{"field":"time_period","message":"must be one of last_7_days, last_30_days"}],"request_id":"req-b"}`},
			want: Error{Status: 400, Code: "Invalid parameters", Message: "bad", RequestID: "req-b", Fields: []string{"time_period"}},
		},
		{
			name: "fields as an object",
			rep:  reply{status: 422, body: `{"error":"invalid","fields":{"segment":"too long","include_forecast":"not a boolean"}}`},
			want: Error{Status: 422, Code: "invalid", Fields: []string{"include_forecast", "segment"}},
		},
		{
			name: "retry_after in body only",
			rep:  reply{status: 429, body: `{"error":"Rate limit exceeded","message":"Maximum 30 requests per 60 seconds","retry_after":12}`},
			want: Error{Status: 429, Code: "Rate limit exceeded", Message: "Maximum 30 requests per 60 seconds", RetryAfter: 12 * time.Second},
		},
		{
			name: "anthropic shape",
			rep:  reply{status: 404, headers: map[string]string{"Request-Id": "req_01"}, body: `{"type":"error","error":{"type":"not_found_error","message":"no such model"}}`},
			want: Error{Status: 404, Code: "not_found_error", Message: "no such model", RequestID: "req_01"},
		},
		{
			name: "HTML from a proxy in front",
			rep:  reply{status: 404, body: `<html><body>nginx</body></html>`},
			want: Error{Status: 404, Code: "not_found"},
		},
		{
			name: "odd retry_after type does not lose the rest",
			rep:  reply{status: 403, body: `{"error":"ip_denied","message":"not allowed","retry_after":"soon"}`},
			want: Error{Status: 403, Code: "ip_denied", Message: "not allowed"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw := newScripted(t, tt.rep)
			c, _ := newTestClient(t, gw.srv.URL, WithMaxRetries(0))
			_, err := c.AnalyticsQuery(context.Background(), "mrr_analysis", nil)
			var perr *Error
			require.ErrorAs(t, err, &perr)
			perr.noRetry = false
			require.Equal(t, tt.want, *perr)
		})
	}
}

func TestErrorTextIsReadableAndCarriesNoCredentials(t *testing.T) {
	gw := newScripted(t, reply{status: 401, headers: map[string]string{"X-Request-ID": "req-9"},
		body: `{"error":"unauthorized","message":"token expired"}`})
	c, _ := newTestClient(t, gw.srv.URL, WithBearerToken("sentinel-token-123"))
	_, err := c.Query(context.Background(), QueryRequest{Question: "q"})
	require.EqualError(t, err, "keyward gateway: 401 unauthorized: token expired [request req-9]")
	require.NotContains(t, fmt.Sprintf("%+v", err), "sentinel-token-123")
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"1", time.Second},
		{" 12 ", 12 * time.Second},
		{"0", 0},
		{"-5", 0},
		{"1.5", 0},
		{"soon", 0},
		{"99999999999999", 24 * time.Hour},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			require.Equal(t, tt.want, parseRetryAfter(tt.in, now))
		})
	}
}

func TestRequestsCarryBodyAndCredentials(t *testing.T) {
	gw := newScripted(t, reply{status: 200, body: okAnswer})
	var calls atomic.Int32
	src := func(ctx context.Context) (string, error) {
		return fmt.Sprintf("jwt-%d", calls.Add(1)), nil
	}
	c, _ := newTestClient(t, gw.srv.URL, WithTokenSource(src), WithUserAgent("test-agent"))

	_, err := c.Query(context.Background(), QueryRequest{Question: "What is my MRR?", Context: map[string]any{"current_mrr": 92148.74}})
	require.NoError(t, err)
	_, err = c.Query(context.Background(), QueryRequest{Question: "And churn?"})
	require.NoError(t, err)
	ans, err := c.AnalyticsQuery(context.Background(), "mrr_analysis", map[string]any{"time_period": "last_30_days"})
	require.NoError(t, err)
	require.Equal(t, "mrr_analysis", ans.QueryType)

	reqs := gw.requests()
	require.Len(t, reqs, 3)
	require.Equal(t, "POST", reqs[0].method)
	require.Equal(t, "/api/query", reqs[0].path)
	require.Equal(t, "application/json", reqs[0].header.Get("Content-Type"))
	require.Equal(t, "test-agent", reqs[0].header.Get("User-Agent"))
	require.JSONEq(t, `{"question":"What is my MRR?","context":{"current_mrr":92148.74}}`, string(reqs[0].body))
	require.JSONEq(t, `{"question":"And churn?","context":{}}`, string(reqs[1].body), "the seed requires a context object")
	require.Equal(t, "/api/analytics-query", reqs[2].path)
	require.JSONEq(t, `{"query_type":"mrr_analysis","parameters":{"time_period":"last_30_days"}}`, string(reqs[2].body))
	// The token source is asked every time, so a refreshed JWT is used.
	require.Equal(t, "Bearer jwt-1", reqs[0].header.Get("Authorization"))
	require.Equal(t, "Bearer jwt-3", reqs[2].header.Get("Authorization"))
}

func TestNoCredentialHeadersByDefault(t *testing.T) {
	gw := newScripted(t, reply{status: 200, body: `{"status":"healthy","timestamp":"2026-11-27T12:00:00Z","version":"v1.2.3"}`})
	c, _ := newTestClient(t, gw.srv.URL)
	h, err := c.Health(context.Background())
	require.NoError(t, err)
	require.Equal(t, "v1.2.3", h.Version)
	require.Equal(t, time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC), h.Timestamp)
	hdr := gw.requests()[0].header
	require.Empty(t, hdr.Get("Authorization"))
	require.Empty(t, hdr.Get("X-Keyward-Signature"))
}

func TestTokenSourceErrorIsNotRetried(t *testing.T) {
	gw := newScripted(t, reply{status: 200, body: okAnswer})
	boom := errors.New("refresh endpoint down")
	c, clk := newTestClient(t, gw.srv.URL, WithTokenSource(func(context.Context) (string, error) { return "", boom }))
	_, err := c.Query(context.Background(), QueryRequest{Question: "q"})
	require.ErrorIs(t, err, boom)
	require.ErrorContains(t, err, "getting bearer token")
	require.Empty(t, gw.requests())
	require.Empty(t, clk.recorded())
}

// countingSigner stands in for auth.Signer: it records what it signed.
type countingSigner struct {
	mu     sync.Mutex
	bodies []string
}

func (s *countingSigner) Sign(req *http.Request, body []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bodies = append(s.bodies, string(body))
	req.Header.Set("X-Keyward-Nonce", fmt.Sprintf("n%d", len(s.bodies)))
	return nil
}

func TestSignerSignsEveryAttemptAfresh(t *testing.T) {
	gw := newScripted(t, reply{status: 503, body: `{"error":"overloaded"}`}, reply{status: 200, body: okAnswer})
	s := &countingSigner{}
	c, _ := newTestClient(t, gw.srv.URL, WithSigner(s))
	_, err := c.Query(context.Background(), QueryRequest{Question: "q"})
	require.NoError(t, err)
	reqs := gw.requests()
	require.Len(t, reqs, 2)
	// A replayed nonce would be refused by the gateway's replay check.
	require.Equal(t, "n1", reqs[0].header.Get("X-Keyward-Nonce"))
	require.Equal(t, "n2", reqs[1].header.Get("X-Keyward-Nonce"))
	require.Equal(t, []string{string(reqs[0].body), string(reqs[1].body)}, s.bodies)
}

func TestRateLimitStatusAndCatalogDecode(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/rate-limit-status", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"limit":30,"remaining":29,"reset":1796000000,"reset_after_seconds":2,"window":"60s","policy":"30;w=60",
			"identity":"jwt","tier":"pro","tokens":{"limit_per_minute":20000,"remaining":19000},
			"budget":{"daily_usd":5,"spent_usd":0.5,"remaining_usd":4.5,"resets_at":"2026-11-28T00:00:00Z"},"backend":"redis"}`)
	})
	mux.HandleFunc("GET /api/analytics-query-types", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"query_types":{"mrr_analysis":{"description":"MRR trends and insights","parameters":{
			"time_period":{"type":"enum","values":["last_7_days","last_30_days"],"required":true},
			"segment":{"type":"string","max_length":64},"include_forecast":{"type":"boolean"}}}}}`)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c, _ := newTestClient(t, srv.URL)

	st, err := c.RateLimitStatus(context.Background())
	require.NoError(t, err)
	require.Equal(t, 30, st.Limit)
	require.Equal(t, 29, st.Remaining)
	require.Equal(t, "redis", st.Backend)
	require.Equal(t, int64(1796000000), st.ResetTime().Unix())
	require.Equal(t, int64(19000), st.Tokens.Remaining)
	require.Equal(t, int64(20000), st.Tokens.LimitPerMinute)
	require.InDelta(t, 4.5, st.Budget.RemainingUSD, 1e-9)
	require.Equal(t, time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC), st.Budget.ResetsAt)
	require.Equal(t, "jwt", st.Identity)
	require.Equal(t, "pro", st.Tier)

	cat, err := c.AnalyticsQueryTypes(context.Background())
	require.NoError(t, err)
	p := cat["mrr_analysis"].Parameters
	require.Equal(t, []string{"last_7_days", "last_30_days"}, p["time_period"].Values)
	require.True(t, p["time_period"].Required)
	require.Equal(t, 64, p["segment"].MaxLength)
	require.Equal(t, "boolean", p["include_forecast"].Type)
}

func TestAnalyticsQueryNeedsAType(t *testing.T) {
	c, _ := newTestClient(t, "http://127.0.0.1:1")
	_, err := c.AnalyticsQuery(context.Background(), "", nil)
	require.ErrorContains(t, err, "query type is empty")
	_, err = c.AnalyticsQueryStream(context.Background(), "", nil)
	require.ErrorContains(t, err, "query type is empty")
}

func TestMalformedSuccessBodyIsAnError(t *testing.T) {
	gw := newScripted(t, reply{status: 200, body: `{"answer":`})
	c, _ := newTestClient(t, gw.srv.URL)
	_, err := c.Query(context.Background(), QueryRequest{Question: "q"})
	require.ErrorContains(t, err, "decoding answer of POST /api/query")
}

func TestConcurrentUseIsSafe(t *testing.T) {
	gw := newScripted(t, reply{status: 200, body: okAnswer})
	c, _ := newTestClient(t, gw.srv.URL, WithBearerToken("t"))
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			_, err := c.Query(context.Background(), QueryRequest{Question: "q", Context: map[string]any{"n": 1}})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Len(t, gw.requests(), 16)
}
