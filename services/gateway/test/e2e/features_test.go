package e2e

import (
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
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
	// Settled to what the mock billed (its default 10 pages × 3,000 tokens
	// per document, ~$0.09 a call), which frees the budget again.
	require.Eventually(t, func() bool { return spentUSD(t, gws[0]) < 0.5 }, 3*time.Second, 20*time.Millisecond)
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

// billedCost prices what the mock says the real API billed for each call
// by hand, independently of the gateway's price table.
func billedCost(t *testing.T, mock *testenv.Proc) (usd float64, calls int) {
	t.Helper()
	_, _, b := testenv.Do(t, http.MethodGet, mock.URL+"/_mock/requests", nil, "")
	var rec struct {
		Requests []struct {
			Path   string `json:"path"`
			Billed *struct {
				InputTokens   int64 `json:"input_tokens"`
				CacheCreate   int64 `json:"cache_creation_input_tokens"`
				CacheRead     int64 `json:"cache_read_input_tokens"`
				OutputTokens  int64 `json:"output_tokens"`
				ServerToolUse struct {
					WebSearchRequests int64 `json:"web_search_requests"`
				} `json:"server_tool_use"`
				Speed        string            `json:"speed"`
				InferenceGeo string            `json:"inference_geo"`
				Iterations   []json.RawMessage `json:"iterations"`
			} `json:"billed"`
		} `json:"requests"`
	}
	require.NoError(t, json.Unmarshal(b, &rec))
	for _, r := range rec.Requests {
		if r.Path != "/v1/messages" || r.Billed == nil || r.Billed.InputTokens+r.Billed.OutputTokens == 0 {
			continue
		}
		u := r.Billed
		require.Zero(t, u.CacheCreate+u.CacheRead, "these tests use no cache")
		require.Empty(t, u.Iterations, "these tests run no compaction")
		require.Equal(t, "standard", u.Speed)
		require.Empty(t, u.InferenceGeo)
		// Claude Sonnet 4.5 by hand (docs.anthropic.com pricing, 2026-12):
		// $3 / $15 per MTok, $6 / $22.50 once the input reaches 200k
		// tokens; web search $10 per 1,000; web fetch only its tokens.
		in, out := 3.0, 15.0
		if u.InputTokens >= 200_000 {
			in, out = 6, 22.5
		}
		usd += (float64(u.InputTokens)*in+float64(u.OutputTokens)*out)/1e6 + float64(u.ServerToolUse.WebSearchRequests)*0.01
		calls++
	}
	return usd, calls
}

// The attack: 20 concurrent 100-page PDFs by URL (~385k input tokens
// billed each, at Sonnet 4.5's >200k premium) against a $5 budget on three
// replicas. Before reservations saw fetched input, all 20 were admitted and
// $46.65 spent.
func TestURLDocumentsNeverOverspendTheBudget(t *testing.T) {
	rds := redistest.Start(t)
	mock := testenv.StartMock(t)
	cfg := writeConfig(t, `
models:
  allowed: [claude-sonnet-4-5]
  default: claude-sonnet-4-5
limits:
  requests: "1000/60s"
  daily_budget_usd: 5
`)
	gws := testenv.StartReplicas(t, 3, mock.URL, rds.URL(), "KEYWARD_CONFIG="+cfg, "KEYWARD_RATE_LIMIT=")
	body := `{"model":"claude-sonnet-4-5","max_tokens":1000,"messages":[{"role":"user","content":[
		{"type":"document","source":{"type":"url","url":"https://example.com/100-pages.pdf"}},
		{"type":"text","text":"Summarise. [[mock:doc_pages=100 doc_page_tokens=3850 first_byte_ms=1000 output_tokens=200]]"}]}]}`
	codes := make([]int, 20)
	var wg sync.WaitGroup
	for i := range codes {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			var b []byte
			codes[i], _, b = post(t, gws[i%3].URL+"/v1/messages", nil, body)
			if codes[i] != http.StatusOK {
				require.Contains(t, string(b), "Daily budget")
			}
		}(i)
	}
	wg.Wait()
	admitted := 0
	for _, c := range codes {
		if c == http.StatusOK {
			admitted++
		} else {
			require.Equal(t, http.StatusTooManyRequests, c)
		}
	}
	var spent float64
	require.Eventually(t, func() bool {
		spent = spentUSD(t, gws[0])
		return spent > 0
	}, 3*time.Second, 20*time.Millisecond)
	billed, calls := billedCost(t, mock)
	t.Logf("figure: %d of 20 URL-document calls admitted, gateway spent $%.6f, upstream billed $%.6f over %d calls (budget $5)", admitted, spent, billed, calls)
	require.GreaterOrEqual(t, admitted, 1)
	require.Equal(t, admitted, calls, "every upstream call was admitted by the gateway")
	require.LessOrEqual(t, billed, 5.25, "what the upstream billed stays within the budget")
	require.InDelta(t, billed, spent, 2e-6*float64(calls), "the gateway settled to what the upstream billed")
}

// Multipliers apply to the reservation: 8,000 output tokens of Opus 4.6 at
// $25/MTok reserve $0.20, fits a $1 budget; in fast mode (6x) the same call
// could cost $1.20 and is refused before it is made.
func TestFastModeIsReservedAtItsMultiplier(t *testing.T) {
	mock := testenv.StartMock(t)
	cfg := writeConfig(t, `
models:
  allowed: [claude-opus-4-6]
  default: claude-opus-4-6
limits:
  daily_budget_usd: 1
`)
	gw := testenv.StartGateway(t, mock.URL, "KEYWARD_CONFIG="+cfg, "KEYWARD_RATE_LIMIT=")
	call := func(extra string) (int, string) {
		code, _, b := post(t, gw.URL+"/v1/messages", map[string]string{"anthropic-beta": "fast-mode-2026-02-01"},
			`{"model":"claude-opus-4-6","max_tokens":8000`+extra+`,"messages":[{"role":"user","content":"hi [[mock:output_tokens=10]]"}]}`)
		return code, string(b)
	}
	code, b := call(`,"speed":"fast"`)
	require.Equal(t, http.StatusBadRequest, code, b)
	require.Contains(t, b, "daily budget")
	code, b = call(`,"inference_geo":"us"`)
	require.Equal(t, http.StatusOK, code, b)
	code, b = call(``)
	require.Equal(t, http.StatusOK, code, b)
}

// TestReservationCoversWhatTheUpstreamBills: for each feature that makes the
// API read input the body does not show, at the large end of real sizes,
// the reservation held while the call runs (seen in /api/rate-limit-status)
// is at least what the upstream then bills, priced with every fee.
func TestReservationCoversWhatTheUpstreamBills(t *testing.T) {
	mock := testenv.StartMock(t)
	cfg := writeConfig(t, `
models:
  allowed: [claude-sonnet-4-5]
  default: claude-sonnet-4-5
limits:
  requests: "1000/60s"
  daily_budget_usd: 50
`)
	gw := testenv.StartGateway(t, mock.URL, "KEYWARD_CONFIG="+cfg, "KEYWARD_RATE_LIMIT=")
	const hold = "first_byte_ms=1500 output_tokens=800"
	for _, tt := range []struct{ name, content, tools string }{
		{"100-page URL PDF", `[{"type":"document","source":{"type":"url","url":"https://e/a.pdf"}},{"type":"text","text":"sum [[mock:doc_pages=100 doc_page_tokens=3850 ` + hold + `]]"}]`, ""},
		{"Files API PDF", `[{"type":"document","source":{"type":"file","file_id":"file_1"}},{"type":"text","text":"sum [[mock:doc_pages=60 doc_page_tokens=3000 ` + hold + `]]"}]`, ""},
		{"URL image", `[{"type":"image","source":{"type":"url","url":"https://e/a.png"}},{"type":"text","text":"what [[mock:image_size=1568x1568 ` + hold + `]]"}]`, ""},
		{"web search", `"news [[mock:web_search=3 search_result_tokens=20000 ` + hold + `]]"`, `,"tools":[{"type":"web_search_20250305","name":"web_search","max_uses":3}]`},
		{"web fetch", `"read https://e/x [[mock:web_fetch=2 fetch_tokens=100000 ` + hold + `]]"`, `,"tools":[{"type":"web_fetch_20250910","name":"web_fetch","max_uses":2}]`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mock.MockPost(t, "/_mock/reset", "{}")
			before := spentUSD(t, gw)
			done := make(chan int, 1)
			go func() {
				code, _, b := post(t, gw.URL+"/v1/messages", nil, `{"model":"claude-sonnet-4-5","max_tokens":1000`+tt.tools+`,"messages":[{"role":"user","content":`+tt.content+`}]}`)
				if code != http.StatusOK {
					t.Errorf("%d: %s", code, b)
				}
				done <- code
			}()
			var reserved float64
			require.Eventually(t, func() bool {
				reserved = spentUSD(t, gw) - before
				return reserved > 0
			}, 1200*time.Millisecond, 10*time.Millisecond, "the reservation is held while the call runs")
			<-done
			billed, calls := billedCost(t, mock)
			require.Equal(t, 1, calls)
			t.Logf("figure: %s reserved $%.4f, upstream billed $%.4f", tt.name, reserved, billed)
			require.GreaterOrEqual(t, reserved, billed, "the reservation covers the bill")
		})
	}
}

// TestFeaturePolicyPerTier: the JWT tier claim picks the tier's feature
// policy; a tier without one gets the default.
func TestFeaturePolicyPerTier(t *testing.T) {
	mock := testenv.StartMock(t)
	cfg := writeConfig(t, `
models:
  allowed: [claude-haiku-4-5]
  default: claude-haiku-4-5
limits:
  requests: "100/60s"
tiers:
  free:
    requests: "100/60s"
features:
  tiers:
    free: {url_sources: false, server_tools: []}
`)
	gw := testenv.StartGateway(t, mock.URL, "KEYWARD_CONFIG="+cfg, "KEYWARD_RATE_LIMIT=", "KEYWARD_JWT_SECRET="+jwtSecret)
	mint := func(args ...string) string {
		cmd := exec.Command(filepath.Join(testenv.Binaries(t), "gateway"), append([]string{"token", "--ttl", "10m"}, args...)...)
		cmd.Env = []string{"KEYWARD_JWT_SECRET=" + jwtSecret}
		cmd.Dir = t.TempDir()
		out, err := cmd.Output()
		require.NoError(t, err)
		return strings.TrimSpace(string(out))
	}
	free, paid := mint("--sub", "erin", "--tier", "free"), mint("--sub", "frank")
	urlDoc := `{"model":"claude-haiku-4-5","max_tokens":100,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"url","url":"https://e/a.pdf"}},{"type":"text","text":"sum"}]}]}`
	search := `{"model":"claude-haiku-4-5","max_tokens":100,"tools":[{"type":"web_search_20250305","name":"web_search","max_uses":1}],"messages":[{"role":"user","content":"news"}]}`
	for _, tt := range []struct {
		tok, body string
		code      int
		want      string
	}{
		{free, urlDoc, http.StatusBadRequest, "url source"},
		{free, search, http.StatusBadRequest, `tool \"web_search_20250305\"`},
		{paid, urlDoc, http.StatusOK, ""},
		{paid, search, http.StatusOK, ""},
	} {
		code, _, b := post(t, gw.URL+"/v1/messages", map[string]string{"Authorization": "Bearer " + tt.tok}, tt.body)
		require.Equal(t, tt.code, code, string(b))
		require.Contains(t, string(b), tt.want)
	}
}
