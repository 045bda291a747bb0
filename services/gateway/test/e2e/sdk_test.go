package e2e

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/pkg/auth"
	"github.com/keyward/keyward/services/gateway/internal/testenv"
)

const jwtSecret = "e2e-secret-e2e-secret-e2e-secret-0123"

// sdk is the official Anthropic Go SDK pointed at the gateway: the only
// change a user makes.
func sdk(gatewayURL, key string, opts ...option.RequestOption) anthropic.Client {
	return anthropic.NewClient(append([]option.RequestOption{
		option.WithoutEnvironmentDefaults(),
		option.WithBaseURL(gatewayURL),
		option.WithAPIKey(key),
		option.WithRequestTimeout(20 * time.Second),
	}, opts...)...)
}

func ask(text string) anthropic.MessageNewParams {
	return anthropic.MessageNewParams{
		Model:     anthropic.Model("claude-sonnet-4-5"),
		MaxTokens: 512,
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(text))},
	}
}

func TestOfficialSDKThroughTheGateway(t *testing.T) {
	mock := testenv.StartMock(t)
	token, err := auth.MintHS256([]byte(jwtSecret), auth.MintClaims{Subject: "alice", TTL: time.Hour, Now: time.Now()})
	require.NoError(t, err)
	modes := []struct {
		name string
		env  []string
		key  string
	}{
		// SDKs always send a key; with no JWT source the gateway ignores it.
		{"auth off", []string{"KEYWARD_RATE_LIMIT=6/60s"}, "anything-the-sdk-insists-on"},
		{"JWT as the SDK key", []string{"KEYWARD_RATE_LIMIT=6/60s", "KEYWARD_JWT_SECRET=" + jwtSecret, "KEYWARD_AUTH_REQUIRED=true"}, token},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			gw := testenv.StartGateway(t, mock.URL, append(m.env, "KEYWARD_ALLOWED_MODELS=claude-sonnet-4-5,claude-haiku-4-5")...)
			client := sdk(gw.URL, m.key)
			ctx := context.Background()

			var raw *http.Response
			msg, err := client.Messages.New(ctx, ask("What is my MRR?"), option.WithResponseInto(&raw))
			require.NoError(t, err)
			require.Contains(t, msg.Content[0].Text, "What is my MRR?")
			require.Positive(t, msg.Usage.OutputTokens)
			require.True(t, strings.HasPrefix(raw.Header.Get("request-id"), "req_"), "the upstream request-id comes back")
			require.Equal(t, "6", raw.Header.Get("RateLimit-Limit"))

			stream := client.Messages.NewStreaming(ctx, ask("Stream it [[mock:usage_deltas=3 output_tokens=90]]"))
			var acc anthropic.Message
			for stream.Next() {
				require.NoError(t, acc.Accumulate(stream.Current()))
			}
			require.NoError(t, stream.Err())
			require.EqualValues(t, 90, acc.Usage.OutputTokens)
			require.Equal(t, anthropic.StopReasonEndTurn, acc.StopReason)

			n, err := client.Messages.CountTokens(ctx, anthropic.MessageCountTokensParams{
				Model:    anthropic.Model("claude-sonnet-4-5"),
				Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(strings.Repeat("a", 400)))},
			})
			require.NoError(t, err)
			require.Positive(t, n.InputTokens)

			page, err := client.Models.List(ctx, anthropic.ModelListParams{})
			require.NoError(t, err)
			var ids []string
			for _, d := range page.Data {
				ids = append(ids, d.ID)
			}
			require.Equal(t, []string{"claude-haiku-4-5", "claude-sonnet-4-5"}, ids, "the gateway lists what it allows, newest first")

			_, err = client.Messages.New(ctx, anthropic.MessageNewParams{
				Model: anthropic.ModelClaudeOpus4_8, MaxTokens: 10,
				Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))},
			})
			var apiErr *anthropic.Error
			require.True(t, errors.As(err, &apiErr), "%T %v", err, err)
			require.Equal(t, http.StatusBadRequest, apiErr.StatusCode)
			require.EqualValues(t, "invalid_request_error", apiErr.Type())
			require.Contains(t, apiErr.Message, "not allowed")

			// Three admissions so far (message, stream, count_tokens; the model
			// list is served locally and the refused model never got admitted).
			for i := 0; i < 3; i++ {
				_, _ = client.Messages.New(ctx, ask("fill"), option.WithMaxRetries(0))
			}
			_, err = client.Messages.New(ctx, ask("one too many"), option.WithMaxRetries(0), option.WithResponseInto(&raw))
			require.True(t, errors.As(err, &apiErr), "%T %v", err, err)
			require.Equal(t, http.StatusTooManyRequests, apiErr.StatusCode)
			require.EqualValues(t, "rate_limit_error", apiErr.Type())
			require.NotEmpty(t, raw.Header.Get("Retry-After"), "the SDK's retry logic gets its hint")
			require.Equal(t, "true", raw.Header.Get("X-Should-Retry"))

			for _, r := range mock.Requests(t) {
				require.Equal(t, testenv.MockKey, http.Header(r.Headers).Get("X-Api-Key"))
				require.Empty(t, http.Header(r.Headers).Get("Authorization"), "the caller's credential is never forwarded")
			}
		})
	}
}

func TestJWTAuthThroughTheGateway(t *testing.T) {
	mock := testenv.StartMock(t)
	gw := testenv.StartGateway(t, mock.URL, "KEYWARD_JWT_SECRET="+jwtSecret, "KEYWARD_AUTH_REQUIRED=true")
	good, _ := auth.MintHS256([]byte(jwtSecret), auth.MintClaims{Subject: "bob", TTL: time.Minute, Now: time.Now()})
	forged, _ := auth.MintHS256([]byte("another-secret-another-secret-0123456"), auth.MintClaims{Subject: "bob", TTL: time.Minute, Now: time.Now()})
	expired, _ := auth.MintHS256([]byte(jwtSecret), auth.MintClaims{Subject: "bob", TTL: time.Minute, Now: time.Now().Add(-time.Hour)})

	forgedClient := sdk(gw.URL, forged)
	_, err := forgedClient.Messages.New(context.Background(), ask("hi"))
	var apiErr *anthropic.Error
	require.True(t, errors.As(err, &apiErr))
	require.Equal(t, http.StatusUnauthorized, apiErr.StatusCode)
	require.EqualValues(t, "authentication_error", apiErr.Type())

	// x-api-key carries the JWT too (some SDK modes use it).
	viaXAPIKey := sdk(gw.URL, "unused", option.WithHeaderDel("authorization"), option.WithHeader("x-api-key", good))
	_, err = viaXAPIKey.Messages.New(context.Background(), ask("hi"))
	require.NoError(t, err)

	for name, hdr := range map[string]map[string]string{
		"anonymous":      {},
		"expired":        {"Authorization": "Bearer " + expired},
		"garbage":        {"Authorization": "Bearer not.a.jwt"},
		"query string":   {},
		"basic scheme":   {"Authorization": "Basic Ym9iOmJvYg=="},
		"forged on /api": {"Authorization": "Bearer " + forged},
	} {
		url := gw.URL + "/api/query"
		if name == "query string" {
			url += "?access_token=" + good
		}
		code, _, b := post(t, url, hdr, query)
		require.Equal(t, http.StatusUnauthorized, code, "%s: %s", name, b)
		require.NotContains(t, string(b), good)
	}
	code, _, b := post(t, gw.URL+"/api/query", map[string]string{"Authorization": "Bearer " + good}, query)
	require.Equal(t, http.StatusOK, code, string(b))
	require.Greater(t, gw.Metric(t, "keyward_auth_failures_total", `reason="missing"`), 0.0)
	require.Greater(t, gw.Metric(t, "keyward_auth_failures_total", `reason="bad_signature"`), 0.0)
	require.Greater(t, gw.Metric(t, "keyward_auth_failures_total", `reason="expired"`), 0.0)
	gw.Stop() // flush every log line before searching them
	require.NotContains(t, gw.Logs(), good, "tokens never reach the logs")
	require.NotContains(t, gw.Logs(), forged)
}

// TestStreamEventsArriveAsProduced: the mock produces events slowly; the first
// text delta must reach the client long before the last one is produced.
func TestStreamEventsArriveAsProduced(t *testing.T) {
	mock := testenv.StartMock(t)
	gw := testenv.StartGateway(t, mock.URL)
	body := `{"model":"claude-sonnet-4-5","max_tokens":512,"stream":true,"messages":[{"role":"user","content":"slow [[mock:event_delay_ms=80 output_tokens=100]]"}]}`
	req, _ := http.NewRequest(http.MethodPost, gw.URL+"/v1/messages", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, "no", resp.Header.Get("X-Accel-Buffering"))
	require.Contains(t, resp.Header.Get("Content-Type"), "text/event-stream")
	require.NotEmpty(t, resp.Header.Get("RateLimit-Remaining"), "rate-limit headers go out before the first byte")
	var first, last time.Duration
	deltas := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "event: content_block_delta") {
			if deltas == 0 {
				first = time.Since(start)
			}
			deltas++
			last = time.Since(start)
		}
	}
	t.Logf("figure: %d deltas; first after %v, last after %v", deltas, first.Round(time.Millisecond), last.Round(time.Millisecond))
	require.Greater(t, deltas, 8)
	require.Greater(t, last-first, time.Duration(deltas-2)*70*time.Millisecond, "the stream really was slow")
	require.Less(t, first, last/3, "the first delta reached the client long before the last was produced")
}

// TestMeteringFromStreamsAndCaches: output tokens are the last cumulative
// message_delta value (never the sum), and cache reads and writes are
// counted apart from plain input.
func TestMeteringFromStreamsAndCaches(t *testing.T) {
	mock := testenv.StartMock(t)
	gw := testenv.StartGateway(t, mock.URL, "KEYWARD_ALLOWED_MODELS=claude-haiku-4-5")
	client := sdk(gw.URL, "x")
	params := anthropic.MessageNewParams{
		Model: anthropic.ModelClaudeHaiku4_5, MaxTokens: 512,
		System: []anthropic.TextBlockParam{{
			Text:         strings.Repeat("Context about the customer base. ", 100),
			CacheControl: anthropic.CacheControlEphemeralParam{TTL: anthropic.CacheControlEphemeralTTLTTL1h},
		}},
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("q [[mock:usage_deltas=3 output_tokens=120]]"))},
	}
	for i := 0; i < 2; i++ {
		stream := client.Messages.NewStreaming(context.Background(), params)
		for stream.Next() {
		}
		require.NoError(t, stream.Err())
	}
	out := gw.Metric(t, "keyward_tokens_total", `kind="output"`)
	require.Equal(t, 240.0, out, "two streams of 120 output tokens: the last cumulative value each, not 3× it")
	require.Equal(t, 825.0, gw.Metric(t, "keyward_tokens_total", `kind="cache_write"`))
	require.Equal(t, 825.0, gw.Metric(t, "keyward_tokens_total", `kind="cache_read"`))
	in := gw.Metric(t, "keyward_tokens_total", `kind="input"`)
	require.Greater(t, in, 0.0)
	require.Less(t, in, 100.0, "cached tokens are not counted as plain input")
	// Haiku 4.5: 1h write $2/MTok, read $0.10, input $1, output $5.
	want := (825*2.0 + 825*0.10 + in*1 + 240*5) / 1e6
	require.InDelta(t, want, gw.Metric(t, "keyward_cost_usd_total"), 1e-9)
}

// TestClientDisconnectCancelsUpstream: closing the client mid-stream cancels
// the upstream call within a second, and the gateway's goroutines return to
// their baseline.
func TestClientDisconnectCancelsUpstream(t *testing.T) {
	mock := testenv.StartMock(t)
	gw := testenv.StartGateway(t, mock.URL)
	base := gw.Metric(t, "go_goroutines")
	body := `{"model":"claude-sonnet-4-5","max_tokens":4000,"stream":true,"messages":[{"role":"user","content":"long [[mock:event_delay_ms=50 output_tokens=3000]]"}]}`
	const cycles = 20
	var worst time.Duration
	for i := 0; i < cycles; i++ {
		before := mock.Stats(t)["cancelled"].(float64)
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, gw.URL+"/v1/messages", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() && !strings.HasPrefix(sc.Text(), "event: content_block_delta") {
		}
		closed := time.Now()
		cancel()
		resp.Body.Close()
		require.Eventually(t, func() bool { return mock.Stats(t)["cancelled"].(float64) > before }, time.Second, 10*time.Millisecond,
			"cycle %d: the upstream call was not cancelled within 1s", i)
		if d := time.Since(closed); d > worst {
			worst = d
		}
	}
	require.Eventually(t, func() bool { return gw.Metric(t, "go_goroutines") <= base+2 }, 5*time.Second, 50*time.Millisecond,
		"goroutines back to baseline (%v)", base)
	t.Logf("figure: %d disconnects, upstream cancelled within %v each, goroutines %v → %v", cycles, worst.Round(time.Millisecond), base, gw.Metric(t, "go_goroutines"))
	require.Zero(t, gw.Metric(t, "keyward_streams_active"))
}
