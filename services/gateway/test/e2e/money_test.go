package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/pkg/redistest"
	"github.com/keyward/keyward/services/gateway/internal/testenv"
)

// The adversarial money suite (issue 13): real gateways, real Redis, the
// mock's billing truth. "Spend" is what the upstream billed — GET
// /_mock/billing, priced here with a hand-computed table — never what the
// gateway believes it charged.

// handPrice is USD per million tokens, from the official pricing page
// (Opus 4.6 fast mode 6×, web search $10 per 1,000, inference_geo "us"
// 1.1×). The calls below stay under the 200k long-context threshold.
type handPrice struct{ in, out, fast float64 }

var handPrices = map[string]handPrice{
	"claude-opus-4-6":   {5, 25, 6},
	"claude-sonnet-4-5": {3, 15, 1},
	"claude-sonnet-4-6": {3, 15, 1},
	"claude-haiku-4-5":  {1, 5, 1},
}

type billingTotals struct {
	Calls                    int64 `json:"calls"`
	InputTokens              int64 `json:"input_tokens"`
	CacheCreationInputTokens int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int64 `json:"cache_read_input_tokens"`
	OutputTokens             int64 `json:"output_tokens"`
	ThinkingTokens           int64 `json:"thinking_tokens"`
	ServerToolUse            struct {
		WebSearchRequests int64 `json:"web_search_requests"`
		WebFetchRequests  int64 `json:"web_fetch_requests"`
	} `json:"server_tool_use"`
}

type billing struct {
	Groups []struct {
		Model        string `json:"model"`
		Speed        string `json:"speed"`
		InferenceGeo string `json:"inference_geo"`
		billingTotals
	} `json:"groups"`
	Total billingTotals `json:"total"`
}

func mockBilling(t *testing.T, mock *testenv.Proc) billing {
	t.Helper()
	code, _, b := testenv.Do(t, http.MethodGet, mock.URL+"/_mock/billing", nil, "")
	require.Equal(t, http.StatusOK, code, string(b))
	var bl billing
	require.NoError(t, json.Unmarshal(b, &bl), string(b))
	return bl
}

// billedUSD prices the mock's billing truth with handPrices.
func billedUSD(t *testing.T, bl billing) float64 {
	t.Helper()
	usd := 0.0
	for _, g := range bl.Groups {
		p, ok := handPrices[g.Model]
		require.True(t, ok, "no hand price for %s", g.Model)
		require.Zero(t, g.CacheCreationInputTokens+g.CacheReadInputTokens, "these tests use no cache")
		mult := 1.0
		if g.Speed == "fast" {
			mult *= p.fast
		}
		if g.InferenceGeo == "us" {
			mult *= 1.1
		}
		usd += (float64(g.InputTokens)*p.in+float64(g.OutputTokens)*p.out)/1e6*mult +
			float64(g.ServerToolUse.WebSearchRequests)*0.01
	}
	return usd
}

type sseEvent struct{ name, data string }

// streamCall posts a streaming call and reads its events until stop says
// to hang up (then the connection is closed at once) or the stream ends.
func streamCall(t *testing.T, url, body string, stop func(sseEvent) bool) (status int, events []sseEvent, hungUp bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil, false
	}
	r := bufio.NewReader(resp.Body)
	var cur sseEvent
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return resp.StatusCode, events, false
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case strings.HasPrefix(line, "event: "):
			cur.name = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			cur.data = line[len("data: "):]
		case line == "" && cur.name != "":
			events = append(events, cur)
			if stop != nil && stop(cur) {
				cancel()
				return resp.StatusCode, events, true
			}
			cur = sseEvent{}
		}
	}
}

func lastEvent(evs []sseEvent) sseEvent {
	if len(evs) == 0 {
		return sseEvent{}
	}
	return evs[len(evs)-1]
}

func gatewayCost(t *testing.T, gws []*testenv.Gateway, models ...string) float64 {
	t.Helper()
	usd := 0.0
	for _, gw := range gws {
		for _, m := range models {
			usd += gw.Metric(t, "keyward_cost_usd_total", "model", m)
		}
	}
	return usd
}

func estimatedSettlements(t *testing.T, gws []*testenv.Gateway, reason string) float64 {
	t.Helper()
	n := 0.0
	for _, gw := range gws {
		n += gw.Metric(t, "keyward_settlements_estimated_total", "reason", reason)
	}
	return n
}

const hangupYAML = `
models:
  allowed: [claude-sonnet-4-5]
  default: claude-sonnet-4-5
limits:
  requests: "1000/60s"
  daily_budget_usd: 100
`

// A caller that hangs up at any phase of a stream is charged at least what
// the upstream billed: the input (estimated before message_start), the
// output seen, and the whole thinking budget when it left inside a
// display:"omitted" thinking block (billed in full, shown as a signature).
func TestHangUpsAreChargedTheConservativeBound(t *testing.T) {
	mock := testenv.StartMock(t)
	gw := testenv.StartGateway(t, mock.URL, "KEYWARD_CONFIG="+writeConfig(t, hangupYAML), "KEYWARD_RATE_LIMIT=")
	gws := []*testenv.Gateway{gw}
	tests := []struct {
		name, reason, body string
		stop               func(sseEvent) bool
		slack              float64 // how far above the billed cost the bound may be
	}{
		{
			name: "before message_start", reason: "before_message_start",
			body: `{"model":"claude-sonnet-4-5","max_tokens":2000,"stream":true,"messages":[{"role":"user","content":"hang up early [[mock:first_byte_ms=1500]]"}]}`,
			// the request is cut by a client timeout below, before any byte
			slack: 0.002,
		},
		{
			name: "inside thinking (display omitted)", reason: "in_thinking",
			body: `{"model":"claude-sonnet-4-5","max_tokens":8000,"stream":true,"thinking":{"type":"enabled","budget_tokens":4096,"display":"omitted"},
				"messages":[{"role":"user","content":"think hard [[mock:thinking_tokens=4000 event_delay_ms=300]]"}]}`,
			stop: func(e sseEvent) bool {
				return e.name == "content_block_start" && strings.Contains(e.data, `"thinking"`)
			},
			slack: 0.005,
		},
		{
			name: "inside text", reason: "in_output",
			body: `{"model":"claude-sonnet-4-5","max_tokens":4000,"stream":true,"messages":[{"role":"user","content":"talk [[mock:output_tokens=3000 event_delay_ms=30]]"}]}`,
			stop: func() func(sseEvent) bool {
				n := 0
				return func(e sseEvent) bool {
					if e.name == "content_block_delta" {
						n++
					}
					return n == 10
				}
			}(),
			slack: 0.003,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mock.MockPost(t, "/_mock/reset", "{}")
			costBefore := gatewayCost(t, gws, "claude-sonnet-4-5")
			settledBefore := estimatedSettlements(t, gws, tt.reason)
			if tt.stop == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, gw.URL+"/v1/messages", strings.NewReader(tt.body))
				require.NoError(t, err)
				req.Header.Set("Content-Type", "application/json")
				_, err = http.DefaultClient.Do(req)
				cancel()
				require.Error(t, err, "the client gives up before the first byte")
			} else {
				code, evs, hungUp := streamCall(t, gw.URL+"/v1/messages", tt.body, tt.stop)
				require.Equal(t, http.StatusOK, code)
				require.True(t, hungUp, "the stream ended before the hang-up point: %v", evs)
			}
			require.Eventually(t, func() bool {
				return estimatedSettlements(t, gws, tt.reason) == settledBefore+1 && mockBilling(t, mock).Total.Calls == 1
			}, 10*time.Second, 20*time.Millisecond, "the gateway settles the call at an estimate and the mock bills it")
			charged := gatewayCost(t, gws, "claude-sonnet-4-5") - costBefore
			bl := mockBilling(t, mock)
			billed := billedUSD(t, bl)
			t.Logf("figure: hang-up %s: upstream billed $%.6f (%d in, %d out), gateway charged $%.6f", tt.name, billed, bl.Total.InputTokens, bl.Total.OutputTokens, charged)
			require.Greater(t, billed, 0.0, "the upstream accepted and billed the call")
			require.GreaterOrEqual(t, charged, billed, "a hang-up is never charged less than the upstream billed")
			require.LessOrEqual(t, charged, billed+tt.slack, "the bound stays close to the truth")
		})
	}
}

// One stream whose output outgrows the budget is stopped cleanly: the
// caller's stream ends with an Anthropic-shaped error event of type
// budget_exceeded, the upstream call is cancelled, and the spend stays
// within the budget.
func TestLiveEnforcementStopsAStreamAtTheBudget(t *testing.T) {
	mock := testenv.StartMock(t)
	gw := testenv.StartGateway(t, mock.URL, "KEYWARD_CONFIG="+writeConfig(t, `
models:
  allowed: [claude-opus-4-6]
  default: claude-opus-4-6
  max_tokens_cap: 32000
limits:
  requests: "1000/60s"
  daily_budget_usd: 1
`), "KEYWARD_RATE_LIMIT=")
	// Fast mode on Opus 4.6 is $150/MTok of output: the first 4,096-token
	// slice ($0.61) fits $1, the second does not. max_tokens 32,000 (what
	// Claude Code sends) is not reserved up front.
	body := `{"model":"claude-opus-4-6","max_tokens":32000,"stream":true,"speed":"fast",
		"messages":[{"role":"user","content":"write a lot [[mock:output_tokens=12000 event_delay_ms=1]]"}]}`
	code, evs, _ := streamCall(t, gw.URL+"/v1/messages", body, nil)
	require.Equal(t, http.StatusOK, code)
	last := lastEvent(evs)
	require.Equal(t, "error", last.name, "the stream ends with an error event")
	var e struct {
		Type  string `json:"type"`
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal([]byte(last.data), &e))
	require.Equal(t, "error", e.Type)
	require.Equal(t, "budget_exceeded", e.Error.Type)
	require.Contains(t, e.Error.Message, "budget")
	for _, ev := range evs[:len(evs)-1] {
		require.True(t, json.Valid([]byte(ev.data)), "every event before the error is whole: %q", ev.data)
		require.NotEqual(t, "message_stop", ev.name)
	}
	require.Eventually(t, func() bool { return mockBilling(t, mock).Total.Calls == 1 }, 10*time.Second, 20*time.Millisecond)
	bl := mockBilling(t, mock)
	billed := billedUSD(t, bl)
	t.Logf("figure: live stop: upstream billed $%.4f (%d output tokens of 12000), %d events reached the caller", billed, bl.Total.OutputTokens, len(evs))
	require.Less(t, bl.Total.OutputTokens, int64(8192), "the upstream call was stopped")
	require.LessOrEqual(t, billed, 1.0*1.05)
	require.Eventually(t, func() bool { return estimatedSettlements(t, []*testenv.Gateway{gw}, "budget_stop") == 1 }, 5*time.Second, 20*time.Millisecond)
	require.Equal(t, 1.0, gw.Metric(t, "keyward_ratelimit_rejections_total", "limit", "budget_live"))
}

// The mixed adversarial burst: 20 concurrent streams spread over three
// replicas sharing one Redis — fast mode at 6×, thinking hidden behind
// display:"omitted", 100-page URL documents the body does not show, web
// searches with their fees — against one $5 daily budget. Together they
// would cost ~$17; the upstream must bill at most $5.25.
func TestAdversarialMixHoldsTheBudgetAcrossReplicas(t *testing.T) {
	rds := redistest.Start(t)
	mock := testenv.StartMock(t)
	cfg := writeConfig(t, `
models:
  allowed: [claude-opus-4-6, claude-sonnet-4-5, claude-sonnet-4-6, claude-haiku-4-5]
  default: claude-haiku-4-5
  max_tokens_cap: 32000
limits:
  requests: "1000/60s"
  daily_budget_usd: 5
  max_concurrent_streams: 50
`)
	// closed: a Redis call slower than 100 ms on a starved CPU would
	// otherwise put a replica on its local share of the budget, which
	// cannot see the other replicas' spend (README "What local means for
	// money"); this test is about the shared books.
	gws := testenv.StartReplicas(t, 3, mock.URL, rds.URL(), "KEYWARD_CONFIG="+cfg, "KEYWARD_RATE_LIMIT=", "KEYWARD_REDIS_FAILURE_MODE=closed")
	kinds := []string{
		// fast mode: 12,000 tokens of output at $150/MTok, $1.80 each
		`{"model":"claude-opus-4-6","max_tokens":32000,"stream":true,"speed":"fast","messages":[{"role":"user","content":"fast [[mock:output_tokens=12000 event_delay_ms=1]]"}]}`,
		// hidden thinking, data residency: 12,000 thinking + 2,000 text tokens
		`{"model":"claude-sonnet-4-5","max_tokens":32000,"stream":true,"inference_geo":"us","thinking":{"type":"enabled","budget_tokens":16000,"display":"omitted"},
			"messages":[{"role":"user","content":"think [[mock:thinking_tokens=12000 output_tokens=2000 event_delay_ms=1]]"}]}`,
		// a URL document of 40 pages × 2,500 tokens the body does not show
		`{"model":"claude-sonnet-4-6","max_tokens":2000,"stream":true,"messages":[{"role":"user","content":[
			{"type":"document","source":{"type":"url","url":"https://example.com/report.pdf"}},
			{"type":"text","text":"summarise [[mock:doc_pages=40 doc_page_tokens=2500 output_tokens=500 event_delay_ms=1]]"}]}]}`,
		// three web searches of 8,000 result tokens each, plus their fees
		`{"model":"claude-haiku-4-5","max_tokens":4000,"stream":true,"tools":[{"type":"web_search_20250305","name":"web_search","max_uses":3}],
			"messages":[{"role":"user","content":"search [[mock:web_search=3 search_result_tokens=8000 output_tokens=1000 event_delay_ms=1]]"}]}`,
		// fast mode again, through the Claude Code-sized max_tokens
		`{"model":"claude-opus-4-6","max_tokens":32000,"stream":true,"speed":"fast","messages":[{"role":"user","content":"fast again [[mock:output_tokens=12000 event_delay_ms=1]]"}]}`,
	}
	type result struct {
		code    int
		stopped bool
		done    bool
	}
	results := make([]result, 20)
	var wg sync.WaitGroup
	// A call refused while others are still running may have been refused
	// for their reservations, not for spent money: like a client honouring
	// Retry-After, it tries again until nothing else is in flight, so how
	// much of the budget gets used does not depend on how the 20 calls
	// happen to overlap on a loaded machine. A 503 (Redis slower than its
	// 100 ms deadline, in closed mode) is retried the same way.
	var inflight atomic.Int32
	for i := range results {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			deadline := time.Now().Add(30 * time.Second)
			for {
				inflight.Add(1)
				code, evs, _ := streamCall(t, gws[i%3].URL+"/v1/messages", kinds[i%len(kinds)], nil)
				others := inflight.Add(-1)
				last := lastEvent(evs)
				results[i] = result{code: code, stopped: last.name == "error" && strings.Contains(last.data, "budget_exceeded"), done: last.name == "message_stop"}
				retry := code == http.StatusServiceUnavailable || (code == http.StatusTooManyRequests && others > 0)
				if !retry || time.Now().After(deadline) {
					return
				}
				time.Sleep(time.Duration(20+rand.IntN(20)) * time.Millisecond)
			}
		}(i)
	}
	wg.Wait()
	admitted, refused, stopped, done := 0, 0, 0, 0
	for i, r := range results {
		switch r.code {
		case http.StatusOK:
			admitted++
		case http.StatusTooManyRequests:
			refused++
		default:
			t.Fatalf("call %d: unexpected status %d", i, r.code)
		}
		if r.stopped {
			stopped++
		}
		if r.done {
			done++
		}
	}
	var bl billing
	require.Eventually(t, func() bool {
		bl = mockBilling(t, mock)
		return bl.Total.Calls == int64(admitted)
	}, 15*time.Second, 50*time.Millisecond, "every admitted call reaches the mock's bill")
	spend := billedUSD(t, bl)
	t.Logf("figure: adversarial mix: %d admitted (%d completed, %d stopped at the budget), %d refused; upstream billed $%.4f against $5 (%d in, %d out, %d searches)",
		admitted, done, stopped, refused, spend, bl.Total.InputTokens, bl.Total.OutputTokens, bl.Total.ServerToolUse.WebSearchRequests)
	require.LessOrEqual(t, spend, 5.25, "the upstream billed more than the budget plus one metering step")
	require.Greater(t, spend, 2.5, "the budget was actually used")
	require.Positive(t, refused+stopped, "something had to be refused or stopped")
	require.Equal(t, admitted, done+stopped, "every admitted stream completed or was stopped cleanly")

	// The gateway's own books never show less than the upstream billed.
	charged := gatewayCost(t, gws, "claude-opus-4-6", "claude-sonnet-4-5", "claude-sonnet-4-6", "claude-haiku-4-5")
	t.Logf("figure: adversarial mix: gateways charged $%.4f", charged)
	require.GreaterOrEqual(t, charged+1e-6, spend)
}

// The same burst against a tokens-per-minute limit: the upstream bills at
// most the limit (plus what the bucket refilled meanwhile, plus 5%).
func TestAdversarialMixHoldsTokensPerMinute(t *testing.T) {
	rds := redistest.Start(t)
	mock := testenv.StartMock(t)
	const tpm = 60_000
	cfg := writeConfig(t, fmt.Sprintf(`
models:
  allowed: [claude-haiku-4-5, claude-sonnet-4-5]
  default: claude-haiku-4-5
  max_tokens_cap: 32000
limits:
  requests: "1000/60s"
  tokens_per_minute: %d
  max_concurrent_streams: 50
`, tpm))
	gws := testenv.StartReplicas(t, 3, mock.URL, rds.URL(), "KEYWARD_CONFIG="+cfg, "KEYWARD_RATE_LIMIT=")
	kinds := []string{
		`{"model":"claude-haiku-4-5","max_tokens":32000,"stream":true,"messages":[{"role":"user","content":"long [[mock:output_tokens=12000 event_delay_ms=1]]"}]}`,
		`{"model":"claude-sonnet-4-5","max_tokens":32000,"stream":true,"thinking":{"type":"enabled","budget_tokens":8000,"display":"omitted"},
			"messages":[{"role":"user","content":"think [[mock:thinking_tokens=7000 output_tokens=1000 event_delay_ms=1]]"}]}`,
	}
	start := time.Now()
	codes := make([]int, 20)
	var wg sync.WaitGroup
	for i := range codes {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			codes[i], _, _ = streamCall(t, gws[i%3].URL+"/v1/messages", kinds[i%len(kinds)], nil)
		}(i)
	}
	wg.Wait()
	elapsed := time.Since(start)
	admitted := 0
	for i, c := range codes {
		switch c {
		case http.StatusOK:
			admitted++
		case http.StatusTooManyRequests:
		default:
			t.Fatalf("call %d: unexpected status %d", i, c)
		}
	}
	var bl billing
	require.Eventually(t, func() bool {
		bl = mockBilling(t, mock)
		return bl.Total.Calls == int64(admitted)
	}, 15*time.Second, 50*time.Millisecond)
	billedTokens := bl.Total.InputTokens + bl.Total.OutputTokens
	allowance := float64(tpm) * (1 + elapsed.Minutes()) * 1.05
	t.Logf("figure: tokens/min mix: %d admitted in %s; upstream billed %d tokens against an allowance of %.0f", admitted, elapsed.Round(time.Millisecond), billedTokens, allowance)
	require.LessOrEqual(t, float64(billedTokens), allowance)
	require.Greater(t, billedTokens, int64(tpm/2), "the limit was actually used")
}

// With Redis persistence on (AOF, as compose and the chart now default to),
// a Redis restart keeps today's spend: the budget still refuses.
func TestRedisRestartKeepsTodaysSpend(t *testing.T) {
	rds := redistest.StartPersistent(t)
	mock := testenv.StartMock(t)
	cfg := writeConfig(t, `
models:
  allowed: [claude-haiku-4-5]
  default: claude-haiku-4-5
limits:
  requests: "1000/60s"
  daily_budget_usd: 0.02
`)
	gw := testenv.StartGateway(t, mock.URL, "KEYWARD_REDIS_URL="+rds.URL(), "KEYWARD_CONFIG="+cfg, "KEYWARD_RATE_LIMIT=", "KEYWARD_REDIS_FAILURE_MODE=closed")
	// $0.005 of output each ($5/MTok × 1,000).
	body := `{"model":"claude-haiku-4-5","max_tokens":1000,"messages":[{"role":"user","content":"spend [[mock:output_tokens=1000]]"}]}`
	for range 3 {
		code, _, b := post(t, gw.URL+"/v1/messages", nil, body)
		require.Equal(t, http.StatusOK, code, string(b))
	}
	before := spentUSD(t, gw)
	require.Greater(t, before, 0.015)

	rds.Stop()
	rds.Restart()
	var after float64
	require.Eventually(t, func() bool {
		code, _, _ := testenv.Do(t, http.MethodGet, gw.URL+"/api/rate-limit-status", nil, "")
		if code != http.StatusOK {
			return false
		}
		after = spentUSD(t, gw)
		return true
	}, 10*time.Second, 50*time.Millisecond, "the gateway is back on Redis")
	t.Logf("figure: spend before the Redis restart $%.6f, after $%.6f", before, after)
	require.InDelta(t, before, after, 1e-9, "today's spend survives the restart")
	code, _, b := post(t, gw.URL+"/v1/messages", nil, body)
	require.Equal(t, http.StatusTooManyRequests, code, string(b))
	require.Contains(t, string(b), "Daily budget")
	require.False(t, math.IsNaN(after))
}

// The per-identity cap on concurrent upstream calls holds across replicas
// (one Redis sorted set of leases, in the admission round trip), for JSON
// calls and streams alike, and settling gives the slots back.
func TestConcurrentCallCapIsSharedAcrossReplicas(t *testing.T) {
	rds := redistest.Start(t)
	mock := testenv.StartMock(t)
	cfg := writeConfig(t, `
models:
  allowed: [claude-haiku-4-5]
  default: claude-haiku-4-5
limits:
  requests: "1000/60s"
  max_concurrent_streams: 50
`)
	gws := testenv.StartReplicas(t, 3, mock.URL, rds.URL(), "KEYWARD_CONFIG="+cfg, "KEYWARD_RATE_LIMIT=", "KEYWARD_MAX_CONCURRENT_CALLS=3")
	slowJSON := `{"model":"claude-haiku-4-5","max_tokens":50,"messages":[{"role":"user","content":"slow [[mock:first_byte_ms=2000]]"}]}`
	slowStream := `{"model":"claude-haiku-4-5","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"slow [[mock:first_byte_ms=2000]]"}]}`
	codes := make([]int, 9)
	bodies := make([]string, 9)
	var wg sync.WaitGroup
	for i := range codes {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if i%2 == 0 {
				c, _, b := post(t, gws[i%3].URL+"/v1/messages", nil, slowJSON)
				codes[i], bodies[i] = c, string(b)
				return
			}
			codes[i], _, _ = streamCall(t, gws[i%3].URL+"/v1/messages", slowStream, nil)
		}(i)
	}
	wg.Wait()
	ok, limited := 0, 0
	for i, c := range codes {
		switch c {
		case http.StatusOK:
			ok++
		case http.StatusTooManyRequests:
			limited++
			if bodies[i] != "" {
				require.Contains(t, bodies[i], "Maximum 3 concurrent calls")
			}
		default:
			t.Fatalf("call %d: unexpected %d %s", i, c, bodies[i])
		}
	}
	t.Logf("figure: 9 concurrent calls over 3 replicas with a cap of 3: %d admitted, %d refused", ok, limited)
	require.Equal(t, 3, ok)
	require.Equal(t, 6, limited)
	limitedMetric := 0.0
	for _, gw := range gws {
		limitedMetric += gw.Metric(t, "keyward_ratelimit_rejections_total", "limit", "concurrency")
	}
	require.Equal(t, 6.0, limitedMetric)
	// Every slot was given back at settle.
	for i := range 3 {
		code, _, b := post(t, gws[i].URL+"/v1/messages", nil, `{"model":"claude-haiku-4-5","max_tokens":50,"messages":[{"role":"user","content":"hi"}]}`)
		require.Equal(t, http.StatusOK, code, string(b))
	}
}

// scriptCalls is how many Lua scripts Redis has run (EVALSHA and EVAL),
// not counting an EVALSHA refused with NOSCRIPT (the first use of a script
// is an EVALSHA and an EVAL in the same round trip's fallback).
func scriptCalls(t *testing.T, rds *redistest.Server) int64 {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: rds.Addr})
	defer c.Close()
	info, err := c.Info(context.Background(), "commandstats").Result()
	require.NoError(t, err)
	var n int64
	for _, line := range strings.Split(info, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "cmdstat_evalsha:") && !strings.HasPrefix(line, "cmdstat_eval:") {
			continue
		}
		_, fields, _ := strings.Cut(line, ":")
		for _, f := range strings.Split(fields, ",") {
			k, v, _ := strings.Cut(f, "=")
			var x int64
			switch k {
			case "calls":
				_, err = fmt.Sscanf(v, "%d", &x)
				n += x
			case "failed_calls":
				_, err = fmt.Sscanf(v, "%d", &x)
				n -= x
			}
			require.NoError(t, err)
		}
	}
	return n
}

// Live metering costs at most one Redis round trip per 4,096 output tokens
// on top of admission and settlement.
func TestLiveMeteringRoundTripsPerStream(t *testing.T) {
	rds := redistest.Start(t)
	mock := testenv.StartMock(t)
	gw := testenv.StartGateway(t, mock.URL, "KEYWARD_REDIS_URL="+rds.URL(), "KEYWARD_RATE_LIMIT=", "KEYWARD_CONFIG="+writeConfig(t, `
models:
  allowed: [claude-haiku-4-5]
  default: claude-haiku-4-5
  max_tokens_cap: 32000
limits:
  requests: "1000/60s"
  tokens_per_minute: 1000000
  daily_budget_usd: 100
`))
	for _, out := range []int{500, 20000} {
		before := scriptCalls(t, rds)
		body := fmt.Sprintf(`{"model":"claude-haiku-4-5","max_tokens":32000,"stream":true,"messages":[{"role":"user","content":"go [[mock:output_tokens=%d]]"}]}`, out)
		code, evs, _ := streamCall(t, gw.URL+"/v1/messages", body, nil)
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, "message_stop", lastEvent(evs).name)
		var trips int64
		require.Eventually(t, func() bool {
			trips = scriptCalls(t, rds) - before
			return trips >= 2 // admission and settlement
		}, 5*time.Second, 20*time.Millisecond)
		extra := trips - 2
		allowed := int64(math.Ceil(float64(out) / 4096))
		t.Logf("figure: a %d-token stream: %d Redis round trips (admit, settle and %d extensions; at most %d allowed)", out, trips, extra, allowed)
		require.LessOrEqual(t, extra, allowed)
	}
}

// Input the gateway could not see coming (server-side context, here the
// mock's input_tokens: 400k tokens, $1.20 against a $1 budget) shows up in
// message_start: the upstream has billed it already, but the stream is
// stopped right there, before any output is paid for.
func TestLiveEnforcementStopsAtMessageStartForUnseenInput(t *testing.T) {
	mock := testenv.StartMock(t)
	gw := testenv.StartGateway(t, mock.URL, "KEYWARD_CONFIG="+writeConfig(t, `
models:
  allowed: [claude-sonnet-4-6]
  default: claude-sonnet-4-6
  max_tokens_cap: 32000
limits:
  requests: "1000/60s"
  daily_budget_usd: 1
`), "KEYWARD_RATE_LIMIT=")
	body := `{"model":"claude-sonnet-4-6","max_tokens":32000,"stream":true,
		"messages":[{"role":"user","content":"big context [[mock:input_tokens=400000 output_tokens=5000 event_delay_ms=1]]"}]}`
	code, evs, _ := streamCall(t, gw.URL+"/v1/messages", body, nil)
	require.Equal(t, http.StatusOK, code)
	require.GreaterOrEqual(t, len(evs), 2)
	require.Equal(t, "message_start", evs[0].name)
	require.Equal(t, "error", lastEvent(evs).name)
	require.Contains(t, lastEvent(evs).data, "budget_exceeded")
	require.Eventually(t, func() bool { return mockBilling(t, mock).Total.Calls == 1 }, 10*time.Second, 20*time.Millisecond)
	bl := mockBilling(t, mock)
	t.Logf("figure: unseen input: upstream billed %d input, %d output tokens ($%.4f); %d events reached the caller", bl.Total.InputTokens, bl.Total.OutputTokens, billedUSD(t, bl), len(evs))
	require.Less(t, bl.Total.OutputTokens, int64(100), "no output was paid for after the input showed the budget was gone")
}
