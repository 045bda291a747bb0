package e2e

import (
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/pkg/redistest"
	"github.com/keyward/keyward/services/gateway/internal/testenv"
)

// A document by URL shows ~100 bytes in the body; the API fetches and bills
// the whole PDF. The default policy reserves 400,000 input tokens for it, at
// Sonnet 4.6's dearest input rate ($6/MTok, a 1-hour cache write): ~$2.42
// a call, so a $5 budget holds two in flight, not three.
const urlDocYAML = `
models:
  allowed: [claude-sonnet-4-6]
  default: claude-sonnet-4-6
limits:
  requests: "1000/60s"
  daily_budget_usd: 5
`

const urlDocBody = `{"model":"claude-sonnet-4-6","max_tokens":1000,"messages":[{"role":"user","content":[
	{"type":"document","source":{"type":"url","url":"https://example.com/annual-report.pdf"}},
	{"type":"text","text":"Summarise it. [[mock:first_byte_ms=4000 output_tokens=50 doc_pages=1 doc_page_tokens=100]]"}]}]}`

func spentUSD(t *testing.T, gw *testenv.Gateway) float64 {
	t.Helper()
	_, _, b := testenv.Do(t, http.MethodGet, gw.URL+"/api/rate-limit-status", nil, "")
	var st struct {
		Budget struct {
			SpentUSD float64 `json:"spent_usd"`
		} `json:"budget"`
	}
	require.NoError(t, json.Unmarshal(b, &st), string(b))
	return st.Budget.SpentUSD
}

func TestURLDocumentReservesItsBound(t *testing.T) {
	rds := redistest.Start(t)
	mock := testenv.StartMock(t)
	cfg := writeConfig(t, urlDocYAML)
	gws := []*testenv.Gateway{
		testenv.StartGateway(t, mock.URL, "KEYWARD_REDIS_URL="+rds.URL(), "KEYWARD_CONFIG="+cfg, "KEYWARD_RATE_LIMIT="),
		testenv.StartGateway(t, mock.URL, "KEYWARD_REDIS_URL="+rds.URL(), "KEYWARD_CONFIG="+cfg, "KEYWARD_RATE_LIMIT="),
	}

	// Two slow calls on two replicas hold their reservations together.
	codes := make([]int, 2)
	var wg sync.WaitGroup
	for i := range codes {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			codes[i], _, _ = post(t, gws[i].URL+"/v1/messages", nil, urlDocBody)
		}(i)
	}
	var spent float64
	require.Eventually(t, func() bool {
		spent = spentUSD(t, gws[0])
		return spent >= 4.8
	}, 3*time.Second, 20*time.Millisecond, "both reservations visible in /api/rate-limit-status")
	t.Logf("figure: two URL-document calls in flight reserve $%.4f", spent)
	require.Less(t, spent, 5.0)

	// A third would pass $5: refused before it reaches the upstream.
	code, hdr, b := post(t, gws[1].URL+"/v1/messages", nil, urlDocBody)
	require.Equal(t, http.StatusTooManyRequests, code, string(b))
	require.Contains(t, string(b), "rate_limit_error")
	require.Contains(t, string(b), "Daily budget")
	require.Equal(t, "false", hdr.Get("X-Should-Retry"))

	wg.Wait()
	require.Equal(t, []int{http.StatusOK, http.StatusOK}, codes)
	// Settled to what the mock billed (the body's visible tokens here),
	// which frees the budget again.
	require.Eventually(t, func() bool { return spentUSD(t, gws[0]) < 0.1 }, 3*time.Second, 20*time.Millisecond)
	code, _, b = post(t, gws[0].URL+"/v1/messages", nil, `{"model":"claude-sonnet-4-6","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}`)
	require.Equal(t, http.StatusOK, code, string(b))
}

func TestUnboundedFeaturesAreRefusedByName(t *testing.T) {
	mock := testenv.StartMock(t)
	cfg := writeConfig(t, `
models:
  allowed: [claude-haiku-4-5]
  default: claude-haiku-4-5
limits:
  daily_budget_usd: 5
features:
  default:
    url_sources: false
`)
	gw := testenv.StartGateway(t, mock.URL, "KEYWARD_CONFIG="+cfg, "KEYWARD_RATE_LIMIT=")
	for _, tt := range []struct{ name, body, want string }{
		{"mcp servers (off by default)", `{"model":"claude-haiku-4-5","max_tokens":100,"mcp_servers":[{"type":"url","url":"https://mcp.example.com","name":"x"}],"messages":[{"role":"user","content":"hi"}]}`, "mcp_servers"},
		{"url sources (off in this YAML)", `{"model":"claude-haiku-4-5","max_tokens":100,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"url","url":"https://example.com/a.png"}}]}]}`, "url source"},
		{"max_uses above the cap", `{"model":"claude-haiku-4-5","max_tokens":100,"tools":[{"type":"web_search_20250305","name":"web_search","max_uses":500}],"messages":[{"role":"user","content":"hi"}]}`, "max_uses 500 is above this gateway's cap of 20"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, b := post(t, gw.URL+"/v1/messages", nil, tt.body)
			require.Equal(t, http.StatusBadRequest, code, string(b))
			var e struct {
				Type  string `json:"type"`
				Error struct {
					Type    string `json:"type"`
					Message string `json:"message"`
				} `json:"error"`
			}
			require.NoError(t, json.Unmarshal(b, &e))
			require.Equal(t, "invalid_request_error", e.Error.Type)
			require.Contains(t, e.Error.Message, tt.want)
		})
	}
	// Claude Code's betas and a bounded web search pass.
	code, _, b := post(t, gw.URL+"/v1/messages", map[string]string{"anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27"},
		`{"model":"claude-haiku-4-5","max_tokens":100,"tools":[{"type":"web_search_20250305","name":"web_search","max_uses":2}],"messages":[{"role":"user","content":"hi"}]}`)
	require.Equal(t, http.StatusOK, code, string(b))
}
