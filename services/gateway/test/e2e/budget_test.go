package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/pkg/redistest"
	"github.com/keyward/keyward/services/gateway/internal/testenv"
)

// Each call reserves max_tokens=1000 of claude-haiku-4-5 output ($5/MTok):
// $0.005 plus a little input. The budget fits ten such calls, not eleven.
const budgetYAML = `
models:
  allowed: [claude-haiku-4-5]
  default: claude-haiku-4-5
limits:
  requests: "1000/60s"
  daily_budget_usd: 0.0525
`

func TestConcurrentCallsNeverOverspendTheBudget(t *testing.T) {
	rds := redistest.Start(t)
	mock := testenv.StartMock(t)
	cfg := writeConfig(t, budgetYAML)
	gws := testenv.StartReplicas(t, 3, mock.URL, rds.URL(), "KEYWARD_CONFIG="+cfg, "KEYWARD_RATE_LIMIT=")
	// Each call really uses its whole reservation and is slow, so all
	// twenty are in flight together before any settles.
	body := `{"model":"claude-haiku-4-5","max_tokens":1000,"messages":[{"role":"user","content":"spend [[mock:output_tokens=1000 first_byte_ms=700]]"}]}`
	codes := make([]int, 20)
	bodies := make([]string, 20)
	var wg sync.WaitGroup
	for i := range codes {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, _, b := post(t, gws[i%3].URL+"/v1/messages", nil, body)
			codes[i], bodies[i] = c, string(b)
		}(i)
	}
	wg.Wait()
	admitted := 0
	for i, c := range codes {
		switch c {
		case http.StatusOK:
			admitted++
		case http.StatusTooManyRequests:
			require.Contains(t, bodies[i], "rate_limit_error")
			require.Contains(t, bodies[i], "Daily budget")
		default:
			t.Fatalf("unexpected %d: %s", c, bodies[i])
		}
	}
	t.Logf("figure: admitted %d of 20 concurrent calls against a budget for 10", admitted)
	require.LessOrEqual(t, admitted, 10, "concurrent calls overspent the budget")
	require.GreaterOrEqual(t, admitted, 9)

	// The /api shape says budget_exceeded, and SDKs are told not to retry.
	code, hdr, b := post(t, gws[0].URL+"/v1/messages", nil, body)
	require.Equal(t, http.StatusTooManyRequests, code, string(b))
	require.Equal(t, "false", hdr.Get("X-Should-Retry"))
	code, _, b = post(t, gws[1].URL+"/api/query", nil, query)
	require.Equal(t, http.StatusTooManyRequests, code, string(b))
	var e map[string]any
	require.NoError(t, json.Unmarshal(b, &e))
	require.Equal(t, "budget_exceeded", e["error"])
}

func TestAbortedStreamIsChargedWhatItUsed(t *testing.T) {
	mock := testenv.StartMock(t)
	cfg := writeConfig(t, `
models:
  allowed: [claude-haiku-4-5]
  default: claude-haiku-4-5
limits:
  daily_budget_usd: 5
`)
	gw := testenv.StartGateway(t, mock.URL, "KEYWARD_CONFIG="+cfg, "KEYWARD_RATE_LIMIT=")
	body := `{"model":"claude-haiku-4-5","max_tokens":4000,"stream":true,"messages":[{"role":"user","content":"long story [[mock:output_tokens=3000 event_delay_ms=15 usage_deltas=1]]"}]}`
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, gw.URL+"/v1/messages", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	sc := bufio.NewScanner(resp.Body)
	deltas := 0
	for sc.Scan() && deltas < 20 {
		if strings.HasPrefix(sc.Text(), "event: content_block_delta") {
			deltas++
		}
	}
	cancel() // the caller walks away mid-stream
	resp.Body.Close()

	var spent, cost float64
	require.Eventually(t, func() bool {
		_, _, b := testenv.Do(t, http.MethodGet, gw.URL+"/api/rate-limit-status", nil, "")
		var st struct {
			Budget struct {
				SpentUSD float64 `json:"spent_usd"`
			} `json:"budget"`
		}
		if json.Unmarshal(b, &st) != nil {
			return false
		}
		spent = st.Budget.SpentUSD
		cost = gw.Metric(t, "keyward_cost_usd_total", `model="claude-haiku-4-5"`)
		return cost > 0 && math.Abs(spent-cost) < 1e-6
	}, 5*time.Second, 50*time.Millisecond, "budget spent %v should equal the metered cost %v", spent, cost)
	full := (4000.0*5 + 20*1) / 1e6
	t.Logf("figure: aborted stream charged $%.6f (reservation was ≈ $%.6f)", spent, full)
	require.Less(t, spent, full/2, "the unused part of the reservation was refunded")
	require.Greater(t, gw.Metric(t, "keyward_tokens_total", `kind="output"`), 0.0, "output seen before the abort is metered")
	require.Eventually(t, func() bool {
		return mock.Stats(t)["cancelled"].(float64) >= 1
	}, 2*time.Second, 20*time.Millisecond, "the upstream request was cancelled")
}
