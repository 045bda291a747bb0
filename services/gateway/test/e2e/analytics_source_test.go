package e2e

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/services/gateway/internal/testenv"
)

// sourceServer is an operator's internal analytics service: it serves the
// numbers per query type and records what the gateway asked it.
type sourceServer struct {
	mu    sync.Mutex
	calls []string // "METHOD path?query body"
	// mode picks what /analytics/funnel answers (the failure cases).
	mode    atomic.Value
	mrrLast atomic.Value // the last month's MRR /analytics/mrr serves
	release chan struct{}
}

func (s *sourceServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.calls = append(s.calls, strings.TrimSpace(r.Method+" "+r.URL.RequestURI()+" "+string(b)))
	s.mu.Unlock()
	json := func(body string) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	}
	switch r.URL.Path {
	case "/analytics/mrr":
		json(`{"mrr_series":[{"month":"2026-10","value":123456.78},{"month":"2026-11","value":` + s.mrrLast.Load().(string) + `}]}`)
	case "/analytics/churn":
		json(`{"churn_series":[{"month":"2026-11","customers_start":4321,"churned":87}]}`)
	case "/analytics/funnel":
		switch s.mode.Load() {
		case "ok":
			json(`{"funnel":[{"stage":"Visitors","count":50000},{"stage":"Paid","count":777}]}`)
		case "500":
			http.Error(w, "database is down", http.StatusInternalServerError)
		case "html":
			w.Header().Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, "<html>login</html>")
		case "bad_json":
			json(`{"funnel":[{"stage":"Visitors",`)
		case "schema":
			json(`{"funnel":[{"stage":"Visitors","count":10},{"stage":"Paid","count":11}]}`)
		case "oversize":
			json(`{"funnel":[` + strings.Repeat(`{"stage":"Visitors","count":10},`, 200) + `]}`)
		case "redirect":
			http.Redirect(w, r, "/admin/funnel", http.StatusFound)
		case "slow":
			select {
			case <-r.Context().Done():
			case <-s.release:
			}
		}
	default:
		http.Error(w, "not here", http.StatusForbidden)
	}
}

func (s *sourceServer) Calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

// TestAnalyticsDataSource: with a server-side data source, the numbers the
// model sees are the source's even when the browser sends others; the
// source gets the checked parameters (GET over HTTPS with the operator's
// CA, or POST); every way the source fails is a clear 502 (504 for its
// timeout) that names the problem and never the URL, with no upstream call
// and no charge.
func TestAnalyticsDataSource(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the gateway and mock binaries")
	}
	mock := testenv.StartMock(t)
	src := &sourceServer{release: make(chan struct{})}
	src.mode.Store("ok")
	src.mrrLast.Store("131313.13")
	// The HTTPS source serves the test certificate; the gateway trusts it
	// only through KEYWARD_ANALYTICS_SOURCES_CA_FILE.
	files := testenv.TLSFiles(t)
	cert, err := tls.LoadX509KeyPair(files.Cert, files.Key)
	require.NoError(t, err)
	secure := httptest.NewUnstartedServer(src)
	secure.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	secure.StartTLS()
	defer secure.Close()
	plain := httptest.NewServer(src)
	defer plain.Close()
	defer close(src.release)
	// A port nothing listens on, for the unreachable source.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := l.Addr().String()
	require.NoError(t, l.Close())

	cfg := filepath.Join(t.TempDir(), "keyward.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
limits:
  daily_budget_usd: 5
analytics_sources:
  allow: ["%[1]s/analytics/", "%[2]s/analytics/", "http://%[3]s/analytics/"]
analytics:
  mrr_analysis:
    cache_ttl: 10m
    source: {url: "%[1]s/analytics/mrr?token=source-secret-0123"}
  churn_analysis:
    source: {url: "%[2]s/analytics/churn", method: POST}
  conversion_analysis:
    source: {url: "%[2]s/analytics/funnel", timeout: 400ms, max_bytes: 2048}
  cohort_analysis:
    source: {url: "http://%[3]s/analytics/cohorts"}
`, secure.URL, plain.URL, closed)), 0o600))
	gw := testenv.StartGateway(t, mock.URL, "KEYWARD_CONFIG="+cfg, "KEYWARD_ANALYTICS_SOURCES_CA_FILE="+files.CA)
	hdr := map[string]string{"Content-Type": "application/json"}
	ask := func(body string) (int, http.Header, []byte) {
		return testenv.Do(t, http.MethodPost, gw.URL+"/api/analytics-query", hdr, body)
	}

	code, _, b := testenv.Do(t, http.MethodGet, gw.URL+"/api/analytics-query-types", nil, "")
	require.Equal(t, http.StatusOK, code)
	var types struct {
		QueryTypes map[string]struct {
			DataSource string `json:"data_source"`
		} `json:"query_types"`
	}
	require.NoError(t, json.Unmarshal(b, &types))
	require.Equal(t, "server", types.QueryTypes["mrr_analysis"].DataSource)
	require.NotContains(t, string(b), "source-secret", "the catalog never shows a source URL")

	// The browser sends its own numbers; the model sees the source's.
	mrr := `{"query_type":"mrr_analysis","parameters":{"time_period":"last_90_days","segment":"smb"},` +
		`"data":{"mrr_series":[{"month":"2026-10","value":1},{"month":"2026-11","value":999999999}]}}`
	code, h, b := ask(mrr)
	require.Equal(t, http.StatusOK, code, "%s", b)
	require.Equal(t, "server", h.Get("X-Keyward-Data-Source"))
	require.Equal(t, "miss", h.Get("X-Keyward-Cache"))
	var ans struct {
		Answer string `json:"answer"`
	}
	require.NoError(t, json.Unmarshal(b, &ans))
	require.Contains(t, ans.Answer, "2026-11,131313.13", "the mock quotes back the source's numbers")
	require.NotContains(t, ans.Answer, "999999999")
	reqs := mock.Requests(t)
	require.Len(t, reqs, 1)
	require.Contains(t, reqs[0].Body, `month,value\n2026-10,123456.78\n2026-11,131313.13\n\u003c/data\u003e`)
	require.NotContains(t, reqs[0].Body, "999999999", "the browser's numbers never reached Claude")
	require.Contains(t, src.Calls(), "GET /analytics/mrr?segment=smb&time_period=last_90_days&token=source-secret-0123")

	// The answer cache keys on the fetched data as rendered: the same
	// numbers are a hit (whatever the browser sends), new numbers a miss.
	code, h, _ = ask(strings.Replace(mrr, "999999999", "5", 1))
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "hit", h.Get("X-Keyward-Cache"))
	require.Len(t, mock.Requests(t), 1)
	src.mrrLast.Store("140000")
	code, h, b = ask(mrr)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "miss", h.Get("X-Keyward-Cache"))
	require.Contains(t, string(b), "2026-11,140000")
	require.Len(t, mock.Requests(t), 2)

	// POST: the checked parameters, with the default of top_n absent.
	code, _, b = ask(`{"query_type":"churn_analysis","parameters":{"time_period":"last_30_days","top_n":4}}`)
	require.Equal(t, http.StatusOK, code, "%s", b)
	require.Contains(t, src.Calls(), `POST /analytics/churn {"parameters":{"time_period":"last_30_days","top_n":4},"query_type":"churn_analysis"}`)
	require.Contains(t, mock.Requests(t)[2].Body, `2026-11,4321,87`)

	// Bad parameters are refused before the source is called.
	before := len(src.Calls())
	code, _, b = ask(`{"query_type":"churn_analysis","parameters":{"time_period":"forever"}}`)
	require.Equal(t, http.StatusBadRequest, code, "%s", b)
	require.Contains(t, string(b), `"fields":["time_period"]`)
	require.Len(t, src.Calls(), before)

	spent := func() float64 {
		code, _, b := testenv.Do(t, http.MethodGet, gw.URL+"/api/rate-limit-status", nil, "")
		require.Equal(t, http.StatusOK, code)
		var st struct {
			Budget struct {
				SpentUSD float64 `json:"spent_usd"`
			} `json:"budget"`
		}
		require.NoError(t, json.Unmarshal(b, &st))
		return st.Budget.SpentUSD
	}
	spentBefore := spent()
	require.Positive(t, spentBefore)
	upstreamBefore := len(mock.Requests(t))

	funnel := `{"query_type":"conversion_analysis","parameters":{"time_period":"last_7_days"},"data":{"funnel":[{"stage":"A","count":2},{"stage":"B","count":1}]}}`
	for _, tc := range []struct {
		mode, body string
		code       int
		short      string
		want       string
		result     string
	}{
		{"500", funnel, 502, "Data source error", "the data source of conversion_analysis answered with HTTP 500", "bad_status"},
		{"html", funnel, 502, "Data source error", "answered with a Content-Type that is not JSON", "bad_content_type"},
		{"bad_json", funnel, 502, "Data source error", "answered with malformed JSON", "bad_json"},
		{"schema", funnel, 502, "Data source error", "does not match the type's schema: data.funnel[1].count must not be larger than the previous item's", "schema_mismatch"},
		{"oversize", funnel, 502, "Data source error", "answered with more than 2048 bytes", "too_large"},
		{"redirect", funnel, 502, "Data source error", "redirected to a URL outside the allowlist", "redirect"},
		{"slow", funnel, 504, "Data source timeout", "the data source of conversion_analysis did not answer within 400ms", "timeout"},
		{"ok", `{"query_type":"cohort_analysis","parameters":{"time_period":"last_7_days"}}`, 502, "Data source error", "the data source of cohort_analysis could not be reached", "unreachable"},
	} {
		src.mode.Store(tc.mode)
		code, _, b := ask(tc.body)
		require.Equal(t, tc.code, code, "%s: %s", tc.mode, b)
		var e struct {
			Error, Message string
		}
		require.NoError(t, json.Unmarshal(b, &e))
		require.Equal(t, tc.short, e.Error, tc.mode)
		require.Contains(t, e.Message, tc.want, tc.mode)
		for _, leak := range []string{"127.0.0.1", "source-secret", "/analytics/"} {
			require.NotContains(t, string(b), leak, tc.mode)
		}
		require.Equal(t, 1.0, gw.Metric(t, "keyward_analytics_source_requests_total", `result="`+tc.result+`"`), tc.mode)
		t.Logf("figure: source %s → %d %s", tc.mode, code, e.Message)
	}
	require.Len(t, mock.Requests(t), upstreamBefore, "no failed source reached the upstream")
	require.InDelta(t, spentBefore, spent(), 1e-9, "no failed source was charged")
	require.Equal(t, 4.0, gw.Metric(t, "keyward_analytics_source_requests_total", `result="ok"`))
	require.NotContains(t, gw.Logs(), "source-secret", "the source URL's credential is never logged")
	require.Contains(t, gw.Logs(), "analytics data source failed")

	// A source outside the allowlist: the gateway refuses to start, and
	// --check-config says why.
	off := filepath.Join(t.TempDir(), "off.yaml")
	require.NoError(t, os.WriteFile(off, []byte(fmt.Sprintf(`
analytics_sources:
  allow: ["%s/analytics/"]
analytics:
  mrr_analysis:
    source: {url: "http://metrics.example/analytics/mrr?token=source-secret-0123"}
`, plain.URL)), 0o600))
	cmd := exec.Command(filepath.Join(testenv.Binaries(t), "gateway"), "--check-config")
	cmd.Dir = t.TempDir()
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + cmd.Dir, "ANTHROPIC_API_KEY=" + testenv.MockKey, "KEYWARD_CONFIG=" + off}
	out, _ := cmd.CombinedOutput()
	require.Equal(t, 1, cmd.ProcessState.ExitCode(), "%s", out)
	require.Contains(t, string(out), "analytics.mrr_analysis.source.url http://metrics.example/analytics/mrr is not under any prefix of analytics_sources.allow")
	require.NotContains(t, string(out), "source-secret")
	t.Logf("figure: --check-config: %s", strings.TrimSpace(string(out)))
}

// TestAnalyticsDataSourceSparedForALimitedCaller: a caller whose request
// rate is used up gets its 429 without the source being called, so
// refused traffic cannot drive the operator's internal service; and a
// streamed answer is about the source's numbers too.
func TestAnalyticsDataSourceSparedForALimitedCaller(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the gateway and mock binaries")
	}
	mock := testenv.StartMock(t)
	src := &sourceServer{release: make(chan struct{})}
	src.mrrLast.Store("131313.13")
	plain := httptest.NewServer(src)
	defer plain.Close()
	cfg := filepath.Join(t.TempDir(), "keyward.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
analytics_sources:
  allow: ["%[1]s/analytics/"]
analytics:
  mrr_analysis:
    source: {url: "%[1]s/analytics/mrr"}
`, plain.URL)), 0o600))
	// 2 per hour: the test is over long before one request refills.
	gw := testenv.StartGateway(t, mock.URL, "KEYWARD_CONFIG="+cfg, "KEYWARD_RATE_LIMIT=2/3600s")
	hdr := map[string]string{"Content-Type": "application/json"}
	body := `{"query_type":"mrr_analysis","parameters":{"time_period":"last_7_days"},"stream":true}`

	code, h, sse := testenv.Do(t, http.MethodPost, gw.URL+"/api/analytics-query", hdr, body)
	require.Equal(t, http.StatusOK, code, "%s", sse)
	require.Contains(t, h.Get("Content-Type"), "text/event-stream")
	require.Equal(t, "server", h.Get("X-Keyward-Data-Source"))
	var text strings.Builder
	for _, ev := range strings.Split(string(sse), "\n\n") {
		if d, ok := strings.CutPrefix(ev, "event: delta\ndata: "); ok {
			var delta struct{ Text string }
			require.NoError(t, json.Unmarshal([]byte(d), &delta))
			text.WriteString(delta.Text)
		}
	}
	require.Contains(t, text.String(), "2026-11,131313.13", "the streamed answer quotes the source's numbers")
	code, _, b := testenv.Do(t, http.MethodPost, gw.URL+"/api/analytics-query", hdr, body)
	require.Equal(t, http.StatusOK, code, "%s", b)
	require.Len(t, src.Calls(), 2)

	code, h, b = testenv.Do(t, http.MethodPost, gw.URL+"/api/analytics-query", hdr, body)
	require.Equal(t, http.StatusTooManyRequests, code, "%s", b)
	require.NotEmpty(t, h.Get("Retry-After"))
	require.Contains(t, string(b), "Maximum 2 requests per 3600 seconds")
	require.Len(t, src.Calls(), 2, "the limited request did not reach the source")
	require.Len(t, mock.Requests(t), 2)
}
