package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/pkg/auth"
	"github.com/keyward/keyward/pkg/redistest"
	"github.com/keyward/keyward/services/gateway/internal/testenv"
)

// Issue 19: who spent what (usage ledger), the admin API, revocation.

const adminToken = "admin-token-e2e-0123456789abcdef"

func adminTokenFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "admin-token")
	require.NoError(t, os.WriteFile(p, []byte(adminToken+"\n"), 0o600))
	return p
}

func adminURL(gw *testenv.Gateway) string { return strings.TrimSuffix(gw.MetricsURL, "/metrics") }

func mintJWT(t *testing.T, sub, jti string) string {
	t.Helper()
	tok, err := auth.MintHS256([]byte(jwtSecret), auth.MintClaims{Subject: sub, ID: jti, TTL: time.Hour})
	require.NoError(t, err)
	return tok
}

func bearer(tok string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + tok, "Content-Type": "application/json"}
}

func gatewayCmd(t *testing.T, env []string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(testenv.Binaries(t), "gateway"), args...)
	cmd.Env = env
	cmd.Dir = t.TempDir()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// refusedEverywhere polls every replica until each refuses tok with 401 and
// returns how long the last one took.
func refusedEverywhere(t *testing.T, gws []*testenv.Gateway, tok string, start time.Time) time.Duration {
	t.Helper()
	var slowest time.Duration
	for _, gw := range gws {
		for {
			code, _, body := testenv.Do(t, http.MethodPost, gw.URL+"/api/query", bearer(tok), query)
			if code == http.StatusUnauthorized {
				require.Contains(t, string(body), "revoked", "the 401 says why")
				break
			}
			require.Equal(t, http.StatusOK, code, string(body))
			require.Less(t, time.Since(start), 5*time.Second, "revocation never reached %s", gw.URL)
			time.Sleep(5 * time.Millisecond) // poll interval: the time is read from the clock, not assumed
		}
		slowest = max(slowest, time.Since(start))
	}
	return slowest
}

func TestRevocationReachesEveryReplicaWithinASecond(t *testing.T) {
	rds := redistest.Start(t)
	mock := testenv.StartMock(t)
	tokFile := adminTokenFile(t)
	gws := testenv.StartReplicas(t, 3, mock.URL, rds.URL(), "KEYWARD_JWT_SECRET="+jwtSecret, "KEYWARD_AUTH_REQUIRED=true", "KEYWARD_ADMIN_TOKEN_FILE="+tokFile, "KEYWARD_RATE_LIMIT=100000/60s")
	stolen, kept, bob := mintJWT(t, "alice", "laptop-1"), mintJWT(t, "alice", "laptop-2"), mintJWT(t, "bob", "")
	for _, gw := range gws {
		for _, tok := range []string{stolen, kept, bob} {
			code, _, body := testenv.Do(t, http.MethodPost, gw.URL+"/api/query", bearer(tok), query)
			require.Equal(t, http.StatusOK, code, string(body))
		}
	}

	// One token, by jti, from the command line (Redis directly).
	start := time.Now()
	out, errOut, err := gatewayCmd(t, []string{"KEYWARD_REDIS_URL=" + rds.URL()}, "revoke", "--jti", "laptop-1", "--ttl", "1h")
	require.NoError(t, err, errOut)
	require.Contains(t, out, "revoked jti laptop-1")
	took := refusedEverywhere(t, gws, stolen, start)
	t.Logf("jti revocation refused by all 3 replicas after %s", took)
	require.Less(t, took, time.Second, "every replica refuses a revoked token within a second")
	for _, gw := range gws {
		code, _, body := testenv.Do(t, http.MethodPost, gw.URL+"/api/query", bearer(kept), query)
		require.Equal(t, http.StatusOK, code, "alice's other token still works: %s", body)
	}

	// A whole subject, through the admin API of one replica.
	start = time.Now()
	code, _, body := testenv.Do(t, http.MethodPost, adminURL(gws[1])+"/admin/revocations",
		map[string]string{"Authorization": "Bearer " + adminToken, "Content-Type": "application/json"}, `{"sub":"bob","ttl":"2h"}`)
	require.Equal(t, http.StatusCreated, code, string(body))
	var created struct {
		Revocation struct {
			RevokedAt time.Time `json:"revoked_at"`
		} `json:"revocation"`
	}
	require.NoError(t, json.Unmarshal(body, &created))
	took = refusedEverywhere(t, gws, bob, start)
	t.Logf("subject revocation refused by all 3 replicas after %s", took)
	require.Less(t, took, time.Second)
	for _, gw := range gws {
		code, _, _ := testenv.Do(t, http.MethodPost, gw.URL+"/api/query", bearer(kept), query)
		require.Equal(t, http.StatusOK, code, "other subjects are untouched")
	}
	// A token bob gets after the revocation (iat in a later second) works.
	for time.Now().Truncate(time.Second).Compare(created.Revocation.RevokedAt.Truncate(time.Second)) <= 0 {
		time.Sleep(20 * time.Millisecond)
	}
	fresh := mintJWT(t, "bob", "")
	code, _, body = testenv.Do(t, http.MethodPost, gws[2].URL+"/api/query", bearer(fresh), query)
	require.Equal(t, http.StatusOK, code, "a token issued after the subject's revocation is accepted: %s", body)

	revoked := 0.0
	for _, gw := range gws {
		revoked += gw.Metric(t, "keyward_auth_failures_total", `reason="revoked"`)
	}
	require.GreaterOrEqual(t, revoked, 6.0, "each replica counted its refusals of both tokens")

	out, errOut, err = gatewayCmd(t, []string{"KEYWARD_REDIS_URL=" + rds.URL()}, "revoke", "--list")
	require.NoError(t, err, errOut)
	require.Contains(t, out, "laptop-1")
	require.Contains(t, out, "bob")
	code, _, body = testenv.Do(t, http.MethodGet, adminURL(gws[0])+"/admin/revocations", bearer(adminToken), "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(body), `"backend":"redis"`)
	require.Contains(t, string(body), "laptop-1")

	// Lifting it works everywhere too.
	code, _, _ = testenv.Do(t, http.MethodDelete, adminURL(gws[2])+"/admin/revocations?jti=laptop-1", bearer(adminToken), "")
	require.Equal(t, http.StatusOK, code)
	for _, gw := range gws {
		require.Eventually(t, func() bool {
			code, _, _ := testenv.Do(t, http.MethodPost, gw.URL+"/api/query", bearer(stolen), query)
			return code == http.StatusOK
		}, 3*time.Second, 20*time.Millisecond)
	}
	require.NotContains(t, gws[0].Logs()+gws[1].Logs()+gws[2].Logs(), adminToken, "the admin token never reaches the logs")
}

// callWithAuth posts body; for a stream it reads events and, with abortAfter
// > 0, hangs up after that many content deltas.
func callWithAuth(t *testing.T, url, tok, body string, abortAfter int) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	deltas := 0
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "event: content_block_delta") {
			deltas++
			if abortAfter > 0 && deltas >= abortAfter {
				cancel()
				return resp.StatusCode
			}
		}
	}
	return resp.StatusCode
}

type logLine struct {
	Msg      string   `json:"msg"`
	Route    string   `json:"route"`
	Identity string   `json:"identity"`
	Model    string   `json:"model"`
	Cost     *float64 `json:"cost_usd"`
	Input    int64    `json:"input_tokens"`
	Output   int64    `json:"output_tokens"`
	CacheRd  int64    `json:"cache_read_tokens"`
	CacheWr  int64    `json:"cache_write_tokens"`
}

// tokenTotals are the access log's token sums.
type tokenTotals struct{ in, out, cacheRead, cacheWrite int64 }

func accessLogTokens(gws []*testenv.Gateway) (t tokenTotals) {
	for _, gw := range gws {
		for _, l := range strings.Split(gw.Logs(), "\n") {
			var ll logLine
			if json.Unmarshal([]byte(l), &ll) != nil || ll.Msg != "request" || ll.Route != "/v1/messages" {
				continue
			}
			t.in, t.out, t.cacheRead, t.cacheWrite = t.in+ll.Input, t.out+ll.Output, t.cacheRead+ll.CacheRd, t.cacheWrite+ll.CacheWr
		}
	}
	return t
}

// accessLogCosts sums cost_usd of the /v1/messages access log lines of gws,
// each rounded to the micro-dollar as the ledger keeps it, per identity.
func accessLogCosts(t *testing.T, gws []*testenv.Gateway) (lines int, micro map[string]int64) {
	t.Helper()
	micro = map[string]int64{}
	for _, gw := range gws {
		for _, l := range strings.Split(gw.Logs(), "\n") {
			var ll logLine
			if json.Unmarshal([]byte(l), &ll) != nil || ll.Msg != "request" || ll.Route != "/v1/messages" {
				continue
			}
			lines++
			if ll.Cost != nil {
				micro[ll.Identity] += int64(math.Round(*ll.Cost * 1e6))
			}
		}
	}
	return lines, micro
}

type usageReport struct {
	Backend string `json:"backend"`
	Rows    []struct {
		Identity     string `json:"identity"`
		Model        string `json:"model"`
		Requests     int64  `json:"requests"`
		CostMicro    int64  `json:"cost_micro_usd"`
		CacheRead    int64  `json:"cache_read_tokens"`
		CacheHits    int64  `json:"cache_hits"`
		OutputTokens int64  `json:"output_tokens"`
	} `json:"rows"`
	Total struct {
		Requests   int64 `json:"requests"`
		CostMicro  int64 `json:"cost_micro_usd"`
		CacheHits  int64 `json:"cache_hits"`
		Input      int64 `json:"input_tokens"`
		Output     int64 `json:"output_tokens"`
		CacheRead  int64 `json:"cache_read_tokens"`
		CacheWrite int64 `json:"cache_write_tokens"`
	} `json:"total"`
}

func TestLedgerMatchesTheAccessLogAndMetricsAcrossReplicas(t *testing.T) {
	rds := redistest.StartPersistent(t)
	mock := testenv.StartMock(t)
	tokFile := adminTokenFile(t)
	cfg := writeConfig(t, `
models:
  allowed: [claude-sonnet-4-5, claude-haiku-4-5]
  default: claude-haiku-4-5
limits:
  requests: "1000/60s"
  daily_budget_usd: 50
  max_concurrent_streams: 50
`)
	gws := testenv.StartReplicas(t, 3, mock.URL, rds.URL(), "KEYWARD_CONFIG="+cfg, "KEYWARD_RATE_LIMIT=", "KEYWARD_JWT_SECRET="+jwtSecret, "KEYWARD_ADMIN_TOKEN_FILE="+tokFile)
	subs := []string{"alice", "bob", "carol"}
	toks := map[string]string{}
	for _, s := range subs {
		toks[s] = mintJWT(t, s, "")
	}
	system := strings.Repeat("You are a careful analyst of subscription metrics. ", 120)
	kinds := []struct {
		body  string
		abort int
	}{
		{`{"model":"claude-haiku-4-5","max_tokens":500,"messages":[{"role":"user","content":"json [[mock:output_tokens=120]]"}]}`, 0},
		{`{"model":"claude-sonnet-4-5","max_tokens":800,"stream":true,"messages":[{"role":"user","content":"stream [[mock:output_tokens=300]]"}]}`, 0},
		{`{"model":"claude-sonnet-4-5","max_tokens":900,"system":[{"type":"text","text":"` + system + `","cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":"cached [[mock:output_tokens=50]]"}]}`, 0},
		{`{"model":"claude-haiku-4-5","max_tokens":600,"stream":true,"messages":[{"role":"user","content":"long [[mock:output_tokens=400 event_delay_ms=2]]"}]}`, 0},
	}
	const calls = 24
	var wg sync.WaitGroup
	var mu sync.Mutex
	sent := 0
	for i := range calls {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			k := kinds[i%len(kinds)]
			tok := toks[subs[i%len(subs)]]
			if i%7 == 6 {
				tok = "" // anonymous: the client IP is the identity
			}
			code := callWithAuth(t, gws[i%3].URL+"/v1/messages", tok, k.body, k.abort)
			mu.Lock()
			defer mu.Unlock()
			if code == http.StatusOK {
				sent++
			}
		}(i)
	}
	wg.Wait()
	// One aborted stream: the caller hangs up after 3 deltas.
	if callWithAuth(t, gws[1].URL+"/v1/messages", toks["alice"],
		`{"model":"claude-sonnet-4-5","max_tokens":2000,"stream":true,"messages":[{"role":"user","content":"abort [[mock:output_tokens=1500 event_delay_ms=5]]"}]}`, 3) == http.StatusOK {
		sent++
	}
	require.Equal(t, calls+1, sent, "every call was admitted")

	// Access log lines are batched: wait for all of them.
	var micro map[string]int64
	require.Eventually(t, func() bool {
		var n int
		n, micro = accessLogCosts(t, gws)
		return n == calls+1
	}, 15*time.Second, 50*time.Millisecond, "one access log line per call")
	var logTotal int64
	for _, m := range micro {
		logTotal += m
	}
	require.Positive(t, logTotal)

	usage := func(gw *testenv.Gateway, query string) usageReport {
		code, _, body := testenv.Do(t, http.MethodGet, adminURL(gw)+"/admin/usage?"+query, bearer(adminToken), "")
		require.Equal(t, http.StatusOK, code, string(body))
		var rep usageReport
		require.NoError(t, json.Unmarshal(body, &rep))
		return rep
	}
	// The aborted stream settles after the hang-up; its log line is written
	// then too, so once every line is there the ledger is complete — unless
	// Redis stalled on a starved machine meanwhile, when the settles (and
	// their ledger writes) wait in the replay queue for it: they arrive
	// within the replay interval.
	var rep usageReport
	require.Eventually(t, func() bool {
		rep = usage(gws[0], "group_by=identity")
		return rep.Total.Requests == int64(calls+1)
	}, 10*time.Second, 50*time.Millisecond, "one ledger request per call, whichever replica served it")
	require.Equal(t, "redis", rep.Backend)
	require.Equal(t, logTotal, rep.Total.CostMicro, "ledger total = sum of the access log's cost_usd, to the micro-dollar")
	for _, r := range rep.Rows {
		require.Equal(t, micro[r.Identity], r.CostMicro, "identity %s", r.Identity)
	}
	require.Len(t, rep.Rows, len(micro), "one row per identity in the log")
	require.Positive(t, rep.Total.CacheHits, "the repeated cached system prompt is a cache hit")
	logTok := accessLogTokens(gws)
	require.Equal(t, tokenTotals{rep.Total.Input, rep.Total.Output, rep.Total.CacheRead, rep.Total.CacheWrite}, logTok,
		"the ledger's tokens are the access log's")
	require.Positive(t, logTok.cacheRead)
	require.Positive(t, logTok.cacheWrite)

	metricUSD := gatewayCost(t, gws, "claude-sonnet-4-5", "claude-haiku-4-5")
	require.InDelta(t, metricUSD, float64(rep.Total.CostMicro)/1e6, 0.5e-6*float64(calls+1),
		"ledger total = keyward_cost_usd_total over the replicas (each call rounded to the micro-dollar)")
	t.Logf("%d calls, ledger $%.6f, access log $%.6f, metrics $%.6f", calls+1, float64(rep.Total.CostMicro)/1e6, float64(logTotal)/1e6, metricUSD)

	// Another replica, another grouping: the same totals.
	byModel := usage(gws[2], "group_by=model,day")
	require.Equal(t, rep.Total.CostMicro, byModel.Total.CostMicro)
	require.Len(t, byModel.Rows, 2)
	one := usage(gws[1], "identity=sub:alice&group_by=model")
	var aliceMicro int64
	for _, r := range one.Rows {
		aliceMicro += r.CostMicro
	}
	require.Equal(t, micro["sub:alice"], aliceMicro)
	top := usage(gws[1], "group_by=identity&top=1")
	require.Len(t, top.Rows, 1)
	require.Equal(t, rep.Rows[0].Identity, top.Rows[0].Identity, "top spender first")

	code, hdr, csvBody := testenv.Do(t, http.MethodGet, adminURL(gws[0])+"/admin/usage?group_by=identity,model&format=csv", bearer(adminToken), "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, hdr.Get("Content-Type"), "text/csv")
	require.True(t, strings.HasPrefix(string(csvBody), "day,identity,model,tier,requests"), string(csvBody))
	require.Contains(t, string(csvBody), "sub:alice")

	// The command line reads the same ledger.
	out, errOut, err := gatewayCmd(t, []string{"KEYWARD_REDIS_URL=" + rds.URL()}, "usage", "--group-by", "identity", "--format", "json")
	require.NoError(t, err, errOut)
	var cli usageReport
	require.NoError(t, json.Unmarshal([]byte(out), &cli), out)
	require.Equal(t, rep.Total.CostMicro, cli.Total.CostMicro)
	out, _, err = gatewayCmd(t, []string{"KEYWARD_REDIS_URL=" + rds.URL()}, "usage")
	require.NoError(t, err)
	require.Contains(t, out, "sub:bob")

	// One identity's limits and budget state.
	code, _, body := testenv.Do(t, http.MethodGet, adminURL(gws[2])+"/admin/identities/sub:alice", bearer(adminToken), "")
	require.Equal(t, http.StatusOK, code, string(body))
	var ident struct {
		Budget struct {
			SpentUSD float64 `json:"spent_usd"`
		} `json:"budget"`
		Limits struct {
			DailyBudgetUSD float64 `json:"daily_budget_usd"`
		} `json:"limits"`
	}
	require.NoError(t, json.Unmarshal(body, &ident))
	require.Equal(t, 50.0, ident.Limits.DailyBudgetUSD)
	require.InDelta(t, float64(micro["sub:alice"])/1e6, ident.Budget.SpentUSD, 1e-5, "the budget spent is what the ledger counted")

	// Without or with a wrong token: 401, nothing leaked; never on the public port.
	for name, hdr := range map[string]map[string]string{
		"no token":    nil,
		"wrong token": bearer("admin-token-e2e-0123456789abcdeX"),
		"caller JWT":  bearer(toks["alice"]),
		"basic":       {"Authorization": "Basic " + adminToken},
	} {
		code, _, body := testenv.Do(t, http.MethodGet, adminURL(gws[0])+"/admin/usage", hdr, "")
		require.Equal(t, http.StatusUnauthorized, code, name)
		require.NotContains(t, string(body), "sub:", name)
		require.NotContains(t, string(body), adminToken[:12], name)
		require.Contains(t, string(body), `"error":"unauthorized"`, name)
	}
	for _, path := range []string{"/admin/usage", "/admin/revocations", "/admin/identities/sub:alice"} {
		code, _, body := testenv.Do(t, http.MethodGet, gws[0].URL+path, bearer(adminToken), "")
		require.Equal(t, http.StatusNotFound, code, "%s on the public port: %s", path, body)
	}
	code, _, _ = testenv.Do(t, http.MethodGet, adminURL(gws[0])+"/admin/usage?from=yesterday", bearer(adminToken), "")
	require.Equal(t, http.StatusBadRequest, code)
	code, _, _ = testenv.Do(t, http.MethodGet, adminURL(gws[0])+"/admin/usage?group_by=colour", bearer(adminToken), "")
	require.Equal(t, http.StatusBadRequest, code)

	// A Redis restart with persistence keeps the ledger.
	rds.Stop()
	rds.Restart()
	require.Eventually(t, func() bool {
		code, _, body := testenv.Do(t, http.MethodGet, adminURL(gws[1])+"/admin/usage?group_by=identity", bearer(adminToken), "")
		var after usageReport
		return code == http.StatusOK && json.Unmarshal(body, &after) == nil && after.Total.CostMicro == rep.Total.CostMicro &&
			after.Total.Requests == rep.Total.Requests
	}, 10*time.Second, 50*time.Millisecond, "the ledger survives a Redis restart")
}

// In the in-process mode (no Redis) revocation and the ledger live in the
// gateway's memory, through its admin API only; the CLI says so.
func TestInProcessModeRevokesAndCountsInMemory(t *testing.T) {
	mock := testenv.StartMock(t)
	gw := testenv.StartGateway(t, mock.URL, "KEYWARD_JWT_SECRET="+jwtSecret, "KEYWARD_ADMIN_TOKEN_FILE="+adminTokenFile(t))
	tok := mintJWT(t, "dora", "phone-1")
	require.Equal(t, http.StatusOK, callWithAuth(t, gw.URL+"/v1/messages", tok,
		`{"model":"claude-haiku-4-5","max_tokens":100,"messages":[{"role":"user","content":"hi [[mock:output_tokens=20]]"}]}`, 0))
	code, _, body := testenv.Do(t, http.MethodGet, adminURL(gw)+"/admin/usage?group_by=identity", bearer(adminToken), "")
	require.Equal(t, http.StatusOK, code)
	var rep usageReport
	require.NoError(t, json.Unmarshal(body, &rep))
	require.Equal(t, "memory", rep.Backend, "the in-process ledger says where it lives")
	require.Len(t, rep.Rows, 1)
	require.Equal(t, "sub:dora", rep.Rows[0].Identity)
	require.Positive(t, rep.Rows[0].CostMicro)

	code, _, body = testenv.Do(t, http.MethodPost, adminURL(gw)+"/admin/revocations", bearer(adminToken), `{"jti":"phone-1","ttl":"1h"}`)
	require.Equal(t, http.StatusCreated, code, string(body))
	require.Contains(t, string(body), `"backend":"memory"`)
	code, _, body = testenv.Do(t, http.MethodPost, gw.URL+"/v1/messages", bearer(tok),
		`{"model":"claude-haiku-4-5","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}`)
	require.Equal(t, http.StatusUnauthorized, code, "refused at once on this replica")
	require.Contains(t, string(body), `"type":"authentication_error"`)
	require.Contains(t, string(body), "revoked")

	_, errOut, err := gatewayCmd(t, nil, "revoke", "--jti", "phone-1")
	require.Error(t, err)
	require.Contains(t, errOut, "admin API", "the CLI points at the admin API when there is no Redis")
}
