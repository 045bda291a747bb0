package admin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/pkg/auth"
	"github.com/keyward/keyward/pkg/ledger"
	"github.com/keyward/keyward/pkg/ratelimit"
	"github.com/keyward/keyward/pkg/revoke"
)

const token = "s3cret-admin-token-0123456789"

type fixture struct {
	h    http.Handler
	deny *revoke.Denylist
	led  *ledger.Memory
	tok  string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	now := func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) }
	mem, err := ratelimit.NewMemory(ratelimit.MemoryOptions{})
	require.NoError(t, err)
	f := &fixture{deny: revoke.NewDenylist(now), led: ledger.NewMemory(35, now), tok: token}
	f.h = Handler(Options{
		Token: func() string { return f.tok }, Revocations: revoke.Store{Denylist: f.deny}, Ledger: f.led, Limiter: mem,
		PolicyFor: func(tier string) ratelimit.Policy {
			return ratelimit.Policy{Name: tier, Requests: ratelimit.Limit{Rate: 10, Period: time.Minute, Burst: 10}, DailyBudgetUSD: 5}
		},
		Now: now,
	})
	return f
}

func (f *fixture) do(method, path, auth, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, req)
	return w
}

func TestAdminTokenGuard(t *testing.T) {
	f := newFixture(t)
	for name, h := range map[string]string{
		"missing":    "",
		"wrong":      "Bearer s3cret-admin-token-012345678X",
		"prefix":     "Bearer s3cret",
		"longer":     "Bearer " + token + "x",
		"not bearer": "Basic " + token,
	} {
		w := f.do("GET", "/admin/usage", h, "")
		require.Equal(t, http.StatusUnauthorized, w.Code, name)
		require.JSONEq(t, `{"error":"unauthorized","message":"send the admin token as Authorization: Bearer <token>"}`, w.Body.String(), name)
	}
	require.Equal(t, http.StatusOK, f.do("GET", "/admin/usage", "Bearer "+token, "").Code)
	require.Equal(t, http.StatusNotFound, f.do("GET", "/admin/nothing", "Bearer "+token, "").Code)

	f.tok = "" // no token file: the API does not exist
	w := f.do("GET", "/admin/usage", "Bearer "+token, "")
	require.Equal(t, http.StatusNotFound, w.Code)
	require.Contains(t, w.Body.String(), "KEYWARD_ADMIN_TOKEN_FILE")
}

func TestAdminRevocationsInMemory(t *testing.T) {
	f := newFixture(t)
	bearer := "Bearer " + token
	w := f.do("POST", "/admin/revocations", bearer, `{"jti":"t1","until":"2026-03-01T13:00:00Z"}`)
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	require.Contains(t, w.Body.String(), `"backend":"memory"`)
	require.True(t, f.deny.Revoked(auth.Identity{Subject: "a", TokenID: "t1"}))

	require.Equal(t, http.StatusCreated, f.do("POST", "/admin/revocations", bearer, `{"sub":"bob"}`).Code)
	var list struct {
		Revocations []revoke.Entry `json:"revocations"`
	}
	w = f.do("GET", "/admin/revocations", bearer, "")
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &list))
	require.Len(t, list.Revocations, 2)
	require.Equal(t, time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC), list.Revocations[1].Until, "a subject defaults to 24h")

	for name, body := range map[string]string{
		"both":        `{"jti":"x","sub":"y"}`,
		"neither":     `{"ttl":"1h"}`,
		"bad until":   `{"jti":"x","until":"tomorrow"}`,
		"past until":  `{"jti":"x","until":"2020-01-01T00:00:00Z"}`,
		"bad ttl":     `{"jti":"x","ttl":"-1h"}`,
		"unknown key": `{"jti":"x","email":"y"}`,
		"not json":    `jti=x`,
	} {
		w := f.do("POST", "/admin/revocations", bearer, body)
		require.Equal(t, http.StatusBadRequest, w.Code, "%s: %s", name, w.Body.String())
	}
	w = f.do("DELETE", "/admin/revocations?jti=t1", bearer, "")
	require.JSONEq(t, `{"removed":true}`, w.Body.String())
	require.False(t, f.deny.Revoked(auth.Identity{Subject: "a", TokenID: "t1"}))
	require.Equal(t, http.StatusBadRequest, f.do("DELETE", "/admin/revocations", bearer, "").Code)
}

func TestAdminUsageAndIdentity(t *testing.T) {
	f := newFixture(t)
	bearer := "Bearer " + token
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	for i, id := range []string{"sub:alice", "sub:alice", "sub:bob"} {
		e := ledger.Entry{Identity: id, Tier: "pro", Model: "claude-haiku-4-5", Time: at}
		e.Requests, e.CostMicro, e.InputTokens = 1, []int64{1000, 1000, 5000}[i], 10
		f.led.Record(e)
	}
	w := f.do("GET", "/admin/usage?group_by=identity", bearer, "")
	require.Equal(t, http.StatusOK, w.Code)
	var rep UsageReport
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &rep))
	require.Equal(t, "memory", rep.Backend)
	require.NotEmpty(t, rep.Note, "the memory mode says so")
	require.Equal(t, int64(7000), rep.Total.CostMicro)
	require.Equal(t, "sub:bob", rep.Rows[0].Identity, "the top spender first")
	require.Equal(t, int64(2), rep.Rows[1].Requests)

	w = f.do("GET", "/admin/usage?group_by=identity&top=1&format=csv", bearer, "")
	require.Equal(t, http.StatusOK, w.Code)
	lines := strings.Split(strings.TrimSpace(w.Body.String()), "\n")
	require.Len(t, lines, 2)
	require.Contains(t, lines[1], "0.005000")

	for _, q := range []string{"from=2026-13-01", "to=yesterday", "from=2026-03-02&to=2026-03-01", "group_by=colour", "format=xml", "top=0", "from=2020-01-01"} {
		w := f.do("GET", "/admin/usage?"+q, bearer, "")
		require.Equal(t, http.StatusBadRequest, w.Code, q)
		require.Contains(t, w.Body.String(), `"error":"bad_request"`, q)
	}

	w = f.do("GET", "/admin/identities/sub:alice", bearer, "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var id map[string]any
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &id))
	require.Equal(t, "pro", id["tier"], "the tier the ledger saw today")
	require.Equal(t, "ledger", id["tier_from"])
	require.Equal(t, 5.0, id["limits"].(map[string]any)["daily_budget_usd"])
	require.Equal(t, "memory", id["backend"])

	w = f.do("GET", "/admin/identities/ip:2001:db8:1:2::/64", bearer, "")
	require.Equal(t, http.StatusOK, w.Code, "an IPv6 /64 identity has a slash: %s", w.Body.String())
	require.Contains(t, w.Body.String(), `"identity":"ip:2001:db8:1:2::/64"`)
}
