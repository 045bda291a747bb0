package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/pkg/redistest"
	"github.com/keyward/keyward/services/gateway/internal/testenv"
)

// TestAnswerCacheCoalescesAcrossReplicas: three gateways sharing Redis get
// 20 identical concurrent catalog queries; exactly one reaches the
// upstream, all 20 get its answer, one is charged, and every one counts
// against the caller's request rate.
func TestAnswerCacheCoalescesAcrossReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the gateway and mock binaries")
	}
	rds := redistest.Start(t)
	mock := testenv.StartMock(t)
	cfg := filepath.Join(t.TempDir(), "keyward.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("limits:\n  daily_budget_usd: 5\nanalytics:\n  mrr_analysis: {cache_ttl: 10m}\n  churn_analysis: {}\n"), 0o600))
	gws := testenv.StartReplicas(t, 3, mock.URL, rds.URL(), "KEYWARD_CONFIG="+cfg, "KEYWARD_RATE_LIMIT=100/3600s")
	// The upstream takes a while, so the 20 really overlap the one call.
	mock.MockPost(t, "/_mock/config", `{"first_byte_ms":1500}`)

	body := `{"query_type":"mrr_analysis","parameters":{"time_period":"last_12_months"},` +
		`"data":{"mrr_series":[{"month":"2026-10","value":87234.56},{"month":"2026-11","value":92148.74}]}}`
	hdr := map[string]string{"Content-Type": "application/json"}
	type result struct {
		code   int
		cache  string
		answer string
	}
	results := make([]result, 20)
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, h, b := testenv.Do(t, http.MethodPost, gws[i%3].URL+"/api/analytics-query", hdr, body)
			var a struct {
				Answer string `json:"answer"`
			}
			_ = json.Unmarshal(b, &a)
			results[i] = result{code, h.Get("X-Keyward-Cache"), a.Answer}
		}()
	}
	wg.Wait()

	hits := 0
	for _, r := range results {
		require.Equal(t, http.StatusOK, r.code)
		require.Contains(t, r.answer, "2026-11,92148.74", "every caller got the answer about its data")
		require.Equal(t, results[0].answer, r.answer)
		if r.cache == "hit" {
			hits++
		} else {
			require.Equal(t, "miss", r.cache)
		}
	}
	require.Equal(t, 19, hits, "one miss fills the cache, the other 19 are hits")
	require.Len(t, mock.Requests(t), 1, "exactly one upstream call")

	var hitsMetric, missMetric, cost float64
	for _, g := range gws {
		hitsMetric += g.Metric(t, "keyward_cache_requests_total", `result="hit"`)
		missMetric += g.Metric(t, "keyward_cache_requests_total", `result="miss"`)
		cost += g.Metric(t, "keyward_cost_usd_total")
	}
	require.Equal(t, 19.0, hitsMetric)
	require.Equal(t, 1.0, missMetric)
	require.Positive(t, cost)

	// One charge: the caller's budget holds exactly the one call's cost;
	// and all 20 requests were taken from its rate.
	code, _, b := testenv.Do(t, http.MethodGet, gws[0].URL+"/api/rate-limit-status", nil, "")
	require.Equal(t, http.StatusOK, code)
	var st struct {
		Remaining int `json:"remaining"`
		Budget    struct {
			SpentUSD float64 `json:"spent_usd"`
		} `json:"budget"`
	}
	require.NoError(t, json.Unmarshal(b, &st))
	require.InDelta(t, cost, st.Budget.SpentUSD, 1e-6, "the budget was charged for one call")
	// 100/3600s refills one request per 36 s: the test is over long before.
	require.Equal(t, 80, st.Remaining, "hits count against the request rate")

	// A streamed ask of the same query is the same entry, replayed as the
	// /api stream.
	code, h, sse := testenv.Do(t, http.MethodPost, gws[2].URL+"/api/analytics-query", hdr, strings.Replace(body, `{"query_type"`, `{"stream":true,"query_type"`, 1))
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "hit", h.Get("X-Keyward-Cache"))
	require.Contains(t, h.Get("Content-Type"), "text/event-stream")
	require.Contains(t, string(sse), "event: delta\ndata: {\"text\":")
	require.Contains(t, string(sse), "2026-11,92148.74")
	require.Contains(t, string(sse), "event: done\ndata: {")
	require.Len(t, mock.Requests(t), 1, "the replay made no upstream call")

	// A type without cache_ttl is not cached.
	other := `{"query_type":"churn_analysis","parameters":{"time_period":"last_7_days"}}`
	for range 2 {
		code, h, _ := testenv.Do(t, http.MethodPost, gws[1].URL+"/api/analytics-query", hdr, other)
		require.Equal(t, http.StatusOK, code)
		require.Empty(t, h.Get("X-Keyward-Cache"))
	}
	require.Len(t, mock.Requests(t), 3)
}
