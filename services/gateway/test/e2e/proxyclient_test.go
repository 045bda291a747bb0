package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/pkg/auth"
	"github.com/keyward/keyward/pkg/proxyclient"
	"github.com/keyward/keyward/services/gateway/internal/testenv"
)

// pcAttempt is one HTTP exchange as the client's transport saw it.
type pcAttempt struct {
	at         time.Time
	status     int
	retryAfter string
	err        error
}

// pcRecorder is a RoundTripper that logs every pcAttempt, so tests can see
// retries that the client otherwise hides.
type pcRecorder struct {
	mu       sync.Mutex
	attempts []pcAttempt
	next     http.RoundTripper
}

func (r *pcRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	a := pcAttempt{at: time.Now(), err: err}
	if resp != nil {
		a.status, a.retryAfter = resp.StatusCode, resp.Header.Get("Retry-After")
	}
	r.mu.Lock()
	r.attempts = append(r.attempts, a)
	r.mu.Unlock()
	return resp, err
}

func (r *pcRecorder) list() []pcAttempt {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]pcAttempt(nil), r.attempts...)
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

// TestProxyClientAgainstRealGateway runs pkg/proxyclient against the real gateway and mock
// upstream binaries. Each subtest uses its own identity (a JWT subject, an
// HMAC key or the anonymous IP), so their rate limits do not interfere.
func TestProxyClientAgainstRealGateway(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the gateway and mock binaries")
	}
	mock := testenv.StartMock(t)

	jwtSecret := []byte("jwt-" + randomHex(t, 24))
	hmacSecret := []byte("hmac-" + randomHex(t, 24))
	dir := t.TempDir()
	keysFile := filepath.Join(dir, "hmac-keys")
	require.NoError(t, os.WriteFile(keysFile, []byte("svc-reports:"+string(hmacSecret)+"\n"), 0o600))
	cfgFile := filepath.Join(dir, "keyward.yaml")
	require.NoError(t, os.WriteFile(cfgFile, []byte("tiers:\n  slow: {requests: \"1/30s\"}\n"), 0o600))

	gw := testenv.StartGateway(t, mock.URL,
		"KEYWARD_RATE_LIMIT=1/1s",
		"KEYWARD_JWT_SECRET="+string(jwtSecret),
		"KEYWARD_HMAC_KEYS_FILE="+keysFile,
		"KEYWARD_CONFIG="+cfgFile,
		"KEYWARD_UPSTREAM_MAX_RETRIES=0", // so an upstream 529 reaches the client
	)

	// client returns a client for identity sub (tier optional), recording
	// its attempts.
	client := func(t *testing.T, sub, tier string, opts ...proxyclient.Option) (*proxyclient.Client, *pcRecorder) {
		t.Helper()
		rec := &pcRecorder{next: checkedTransport(http.DefaultTransport)}
		all := []proxyclient.Option{proxyclient.WithHTTPClient(&http.Client{Transport: rec})}
		if sub != "" {
			all = append(all, proxyclient.WithTokenSource(func(context.Context) (string, error) {
				return auth.MintHS256(jwtSecret, auth.MintClaims{Subject: sub, Tier: tier, TTL: 5 * time.Minute})
			}))
		}
		c, err := proxyclient.New(gw.URL, append(all, opts...)...)
		require.NoError(t, err)
		return c, rec
	}
	mrr := map[string]any{"current_mrr": 92148.74, "previous_mrr": 87234.56}

	t.Run("health", func(t *testing.T) {
		c, _ := client(t, "", "")
		h, err := c.Health(context.Background())
		require.NoError(t, err)
		require.Equal(t, "healthy", h.Status)
		require.WithinDuration(t, time.Now(), h.Timestamp, time.Minute)
	})

	t.Run("a 429 with Retry-After 1 is retried a second later and succeeds", func(t *testing.T) {
		c, rec := client(t, "", "") // anonymous: the IP's bucket of 1/1s
		ctx := context.Background()
		_, err := c.Query(ctx, proxyclient.QueryRequest{Question: "What is my MRR?", Context: mrr})
		require.NoError(t, err)
		ans, err := c.Query(ctx, proxyclient.QueryRequest{Question: "And last month?", Context: mrr})
		require.NoError(t, err)
		require.Contains(t, ans.Answer, "And last month?")

		at := rec.list()
		require.Len(t, at, 3, "ok, refused, ok")
		require.Equal(t, http.StatusTooManyRequests, at[1].status)
		require.Equal(t, "1", at[1].retryAfter)
		require.Equal(t, http.StatusOK, at[2].status)
		require.GreaterOrEqual(t, at[2].at.Sub(at[1].at), time.Second)
	})

	t.Run("a 400 comes back at once as a typed error", func(t *testing.T) {
		c, rec := client(t, "bad-request-"+randomHex(t, 4), "")
		start := time.Now()
		_, err := c.Query(context.Background(), proxyclient.QueryRequest{Question: "   ", Context: mrr})
		var perr *proxyclient.Error
		require.ErrorAs(t, err, &perr)
		require.Equal(t, http.StatusBadRequest, perr.Status)
		require.Equal(t, "Invalid request", perr.Code)
		require.Equal(t, "question must not be empty", perr.Message)
		require.Equal(t, []string{"question"}, perr.Fields)
		require.NotEmpty(t, perr.RequestID)
		require.Len(t, rec.list(), 1)
		require.Less(t, time.Since(start), time.Second)

		_, err = c.AnalyticsQuery(context.Background(), "mrr_analysis", map[string]any{"time_period": "forever"})
		require.ErrorAs(t, err, &perr)
		require.Equal(t, http.StatusBadRequest, perr.Status)
		require.Equal(t, []string{"time_period"}, perr.Fields)
		require.Len(t, rec.list(), 2)
	})

	t.Run("cancellation stops the wait for a retry at once", func(t *testing.T) {
		c, rec := client(t, "slow-"+randomHex(t, 4), "slow") // 1 per 30 s
		_, err := c.Query(context.Background(), proxyclient.QueryRequest{Question: "first", Context: mrr})
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(300*time.Millisecond, cancel)
		start := time.Now()
		_, err = c.Query(ctx, proxyclient.QueryRequest{Question: "second", Context: mrr})
		require.ErrorIs(t, err, context.Canceled)
		require.Less(t, time.Since(start), 1500*time.Millisecond)
		at := rec.list()
		require.Len(t, at, 2)
		require.Equal(t, http.StatusTooManyRequests, at[1].status)
	})

	t.Run("streaming yields the answer's deltas in order, then usage", func(t *testing.T) {
		q := proxyclient.QueryRequest{Question: "How is MRR trending?", Context: mrr}
		whole, _ := client(t, "whole-"+randomHex(t, 4), "")
		want, err := whole.Query(context.Background(), q)
		require.NoError(t, err)

		c, _ := client(t, "stream-"+randomHex(t, 4), "")
		s, err := c.QueryStream(context.Background(), q)
		require.NoError(t, err)
		defer s.Close()
		var deltas []string
		for s.Next() {
			deltas = append(deltas, s.Text())
		}
		require.NoError(t, s.Err())
		require.Greater(t, len(deltas), 3, "the answer came in pieces")
		// The mock is deterministic, so the pieces in order are the answer.
		require.Equal(t, want.Answer, strings.Join(deltas, ""))
		fin := s.Final()
		require.NotNil(t, fin)
		require.Equal(t, want.Usage, fin.Usage)
		require.Positive(t, fin.Usage.OutputTokens)
		require.NotEmpty(t, fin.RequestID)
		require.Equal(t, want.Model, fin.Model)
	})

	t.Run("an upstream 529 is retried after the gateway's Retry-After", func(t *testing.T) {
		resp, err := http.Post(mock.URL+"/_mock/faults", "application/json", strings.NewReader(`{"queue":[{"status":529}]}`))
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)

		c, rec := client(t, "overloaded-"+randomHex(t, 4), "")
		ans, err := c.Query(context.Background(), proxyclient.QueryRequest{Question: "Still there?", Context: mrr})
		require.NoError(t, err)
		require.Contains(t, ans.Answer, "Still there?")
		at := rec.list()
		require.Len(t, at, 2)
		require.Equal(t, 529, at[0].status)
		require.Equal(t, http.StatusOK, at[1].status)
	})

	t.Run("analytics queries and the catalog", func(t *testing.T) {
		c, _ := client(t, "analyst-"+randomHex(t, 4), "")
		types, err := c.AnalyticsQueryTypes(context.Background())
		require.NoError(t, err)
		require.Contains(t, types, "mrr_analysis")
		require.True(t, types["mrr_analysis"].Parameters["time_period"].Required)

		ans, err := c.AnalyticsQuery(context.Background(), "mrr_analysis", map[string]any{"time_period": "last_30_days"})
		require.NoError(t, err)
		require.Equal(t, "mrr_analysis", ans.QueryType)
		require.Contains(t, ans.Answer, "last_30_days")
		require.Positive(t, ans.Usage.InputTokens)
	})

	t.Run("the quota can be read without using it", func(t *testing.T) {
		c, _ := client(t, "counter-"+randomHex(t, 4), "")
		first, err := c.RateLimitStatus(context.Background())
		require.NoError(t, err)
		require.Equal(t, 1, first.Limit)
		require.Equal(t, 1, first.Remaining)
		require.Equal(t, "jwt", first.Identity)
		require.Equal(t, "1s", first.Window)
		again, err := c.RateLimitStatus(context.Background())
		require.NoError(t, err)
		require.Equal(t, 1, again.Remaining)
		_, err = c.Query(context.Background(), proxyclient.QueryRequest{Question: "q", Context: mrr})
		require.NoError(t, err)
		after, err := c.RateLimitStatus(context.Background())
		require.NoError(t, err)
		require.Equal(t, 0, after.Remaining)
	})

	t.Run("HMAC-signed requests are accepted, and a wrong secret is refused once", func(t *testing.T) {
		signed, rec := client(t, "", "", proxyclient.WithSigner(auth.Signer{KeyID: "svc-reports", Secret: hmacSecret}))
		st, err := signed.RateLimitStatus(context.Background())
		require.NoError(t, err)
		require.Equal(t, "hmac", st.Identity)
		ans, err := signed.Query(context.Background(), proxyclient.QueryRequest{Question: "Signed question", Context: mrr})
		require.NoError(t, err)
		require.Contains(t, ans.Answer, "Signed question")
		require.Len(t, rec.list(), 2)

		forged, rec := client(t, "", "", proxyclient.WithSigner(auth.Signer{KeyID: "svc-reports", Secret: []byte("not-the-secret-" + randomHex(t, 16))}))
		_, err = forged.Query(context.Background(), proxyclient.QueryRequest{Question: "Forged", Context: mrr})
		var perr *proxyclient.Error
		require.ErrorAs(t, err, &perr)
		require.Equal(t, http.StatusUnauthorized, perr.Status)
		require.Len(t, rec.list(), 1, "a 401 is never retried")
	})

	t.Run("an unreachable gateway is reported after the retries", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		dead := "http://" + l.Addr().String()
		l.Close()
		c, err := proxyclient.New(dead, proxyclient.WithBackoff(10*time.Millisecond, 50*time.Millisecond))
		require.NoError(t, err)
		_, err = c.Query(context.Background(), proxyclient.QueryRequest{Question: "anyone?"})
		var perr *proxyclient.Error
		require.False(t, errors.As(err, &perr))
		require.ErrorContains(t, err, "connection refused")
	})

	// The upstream only ever saw the gateway's key, whatever the client sent.
	resp, err := http.Get(mock.URL + "/_mock/stats")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NotContains(t, string(body), `"401"`, "the mock refused a key: %s", body)
}
