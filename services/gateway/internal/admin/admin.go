// Package admin serves the operator API on the admin listener (never the
// public one): revocations, one identity's limits and budget state, and the
// usage ledger. Every route needs the admin token; without a configured
// token the whole API answers 404.
package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keyward/keyward/pkg/ledger"
	"github.com/keyward/keyward/pkg/ratelimit"
	"github.com/keyward/keyward/pkg/revoke"
)

// Revocations is the revocation store the API writes to.
type Revocations interface {
	Add(ctx context.Context, e revoke.Entry) error
	Remove(ctx context.Context, kind, value string) (bool, error)
	List(ctx context.Context) ([]revoke.Entry, error)
	Backend() string
}

// Options configures Handler.
type Options struct {
	// Token returns the current admin token; "" disables the API (404).
	Token       func() string
	Revocations Revocations
	Ledger      ledger.Ledger
	Limiter     ratelimit.Limiter
	// PolicyFor returns the limits of a tier ("" = default).
	PolicyFor func(tier string) ratelimit.Policy
	Now       func() time.Time
	Log       *slog.Logger
}

// DefaultSubjectTTL is how long a subject revocation lasts when no until or
// ttl is given: longer than the tokens a gateway usually sees live.
const DefaultSubjectTTL = 24 * time.Hour

// Handler returns the /admin/ routes.
func Handler(o Options) http.Handler {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	a := &api{o}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/revocations", a.listRevocations)
	mux.HandleFunc("POST /admin/revocations", a.addRevocation)
	mux.HandleFunc("DELETE /admin/revocations", a.removeRevocation)
	// {identity...}: an IPv6 identity is a /64 prefix ("ip:2001:db8::/64").
	mux.HandleFunc("GET /admin/identities/{identity...}", a.identity)
	mux.HandleFunc("GET /admin/usage", a.usage)
	mux.HandleFunc("/admin/", func(w http.ResponseWriter, _ *http.Request) {
		writeErr(w, http.StatusNotFound, "not_found", "no such admin endpoint")
	})
	return a.guard(mux)
}

type api struct{ o Options }

// guard checks the admin token. Both sides are hashed first so the compare
// takes the same time whatever the lengths.
func (a *api) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		want := ""
		if a.o.Token != nil {
			want = a.o.Token()
		}
		if want == "" {
			writeErr(w, http.StatusNotFound, "not_found", "the admin API is not enabled (set KEYWARD_ADMIN_TOKEN_FILE)")
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		gh, wh := sha256.Sum256([]byte(strings.TrimSpace(got))), sha256.Sum256([]byte(want))
		if !ok || subtle.ConstantTimeCompare(gh[:], wh[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="keyward-admin"`)
			writeErr(w, http.StatusUnauthorized, "unauthorized", "send the admin token as Authorization: Bearer <token>")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, status int, short, msg string) {
	writeJSON(w, status, map[string]string{"error": short, "message": msg})
}

type revocationRequest struct {
	JTI   string `json:"jti"`
	Sub   string `json:"sub"`
	Until string `json:"until"` // RFC 3339
	TTL   string `json:"ttl"`   // Go duration, e.g. "24h"
}

// ParseTarget turns --jti/--sub (or the JSON fields) into kind and value.
func ParseTarget(jti, sub string) (kind, value string, err error) {
	switch {
	case jti != "" && sub != "":
		return "", "", errors.New("give jti or sub, not both")
	case jti != "":
		return revoke.KindJTI, jti, nil
	case sub != "":
		return revoke.KindSubject, sub, nil
	}
	return "", "", errors.New("give jti or sub")
}

// ParseUntil is when a revocation made at now lapses: until (RFC 3339) or
// now+ttl, default now+DefaultSubjectTTL.
func ParseUntil(now time.Time, until, ttl string) (time.Time, error) {
	switch {
	case until != "" && ttl != "":
		return time.Time{}, errors.New("give until or ttl, not both")
	case until != "":
		t, err := time.Parse(time.RFC3339, until)
		if err != nil {
			return time.Time{}, errors.New("until must be an RFC 3339 time, e.g. 2026-01-02T15:04:05Z")
		}
		return t, nil
	case ttl != "":
		d, err := time.ParseDuration(ttl)
		if err != nil || d <= 0 {
			return time.Time{}, errors.New("ttl must be a positive duration, e.g. 24h")
		}
		return now.Add(d), nil
	}
	return now.Add(DefaultSubjectTTL), nil
}

func (a *api) addRevocation(w http.ResponseWriter, r *http.Request) {
	var req revocationRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeErr(w, http.StatusBadRequest, "bad_request", "body must be JSON: {\"jti\"|\"sub\": string, \"until\"?: RFC 3339, \"ttl\"?: duration}")
		return
	}
	kind, value, err := ParseTarget(req.JTI, req.Sub)
	if err != nil {
		writeErr(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	now := a.o.Now()
	until, err := ParseUntil(now, req.Until, req.TTL)
	if err != nil {
		writeErr(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	e := revoke.Entry{Kind: kind, Value: value, RevokedAt: now.UTC(), Until: until.UTC()}
	if err := a.o.Revocations.Add(r.Context(), e); err != nil {
		a.storeErr(w, err)
		return
	}
	a.o.Log.Info("revocation added", "kind", kind, "until", e.Until.Format(time.RFC3339))
	writeJSON(w, http.StatusCreated, map[string]any{"revocation": e, "backend": a.o.Revocations.Backend()})
}

func (a *api) removeRevocation(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	kind, value, err := ParseTarget(q.Get("jti"), q.Get("sub"))
	if err != nil {
		writeErr(w, http.StatusBadRequest, "bad_request", err.Error()+" as a query parameter")
		return
	}
	ok, err := a.o.Revocations.Remove(r.Context(), kind, value)
	if err != nil {
		a.storeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"removed": ok})
}

func (a *api) listRevocations(w http.ResponseWriter, r *http.Request) {
	es, err := a.o.Revocations.List(r.Context())
	if err != nil {
		a.storeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"backend": a.o.Revocations.Backend(), "revocations": es})
}

func (a *api) storeErr(w http.ResponseWriter, err error) {
	if errors.Is(err, revoke.ErrInvalid) || errors.Is(err, ledger.ErrInvalidQuery) || errors.Is(err, ratelimit.ErrInvalidRequest) {
		writeErr(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	a.o.Log.Warn("admin API store call failed", "error", err.Error())
	writeErr(w, http.StatusServiceUnavailable, "unavailable", "the store (Redis) did not answer; try again")
}

// identity reports one identity's limits and current state. The tier is the
// tier query parameter, else the one the ledger saw it use today.
func (a *api) identity(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("identity")
	if id == "" || len(id) > 512 {
		writeErr(w, http.StatusBadRequest, "bad_request", "identity must be 1 to 512 bytes, e.g. sub:alice")
		return
	}
	tier, tierFrom := r.URL.Query().Get("tier"), "query"
	now := a.o.Now()
	var today []ledger.Row
	if a.o.Ledger != nil {
		rows, err := a.o.Ledger.Rows(r.Context(), ledger.Query{From: now, To: now, Identity: id})
		if err != nil {
			a.storeErr(w, err)
			return
		}
		today, _ = ledger.Group(rows, []string{ledger.ByModel})
		if tier == "" && len(rows) > 0 {
			tier, tierFrom = rows[0].Tier, "ledger"
		}
	}
	if tier == "" {
		tierFrom = "default"
	}
	pol := a.o.PolicyFor(tier)
	st, err := a.o.Limiter.Status(r.Context(), id, pol)
	if err != nil {
		a.storeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"identity":  id,
		"tier":      tier,
		"tier_from": tierFrom,
		"limits": map[string]any{
			"requests":           st.Limit.Rate,
			"window_seconds":     st.Limit.Period.Seconds(),
			"burst":              st.Limit.Burst,
			"tokens_per_minute":  pol.TokensPerMinute,
			"daily_budget_usd":   pol.DailyBudgetUSD,
			"global_daily_usd":   pol.GlobalDailyUSD,
			"requests_remaining": st.Remaining,
			"reset_seconds":      st.ResetAfter.Seconds(),
		},
		"tokens_remaining": st.TokensRemaining,
		"budget": map[string]any{
			"spent_usd":     st.BudgetSpentUSD,
			"remaining_usd": max(0, pol.DailyBudgetUSD-st.BudgetSpentUSD),
			"reset_at":      st.BudgetResetAt.UTC().Format(time.RFC3339),
		},
		"today":   today,
		"backend": st.Backend,
	})
}

// UsageParams is a parsed /admin/usage query (shared with `gateway usage`).
type UsageParams struct {
	Query   ledger.Query
	GroupBy []string
	Format  string // json or csv
	Top     int    // > 0: only the first Top rows (by cost)
}

// ParseUsage reads from, to (YYYY-MM-DD, UTC; default today), identity,
// group_by (comma separated; default identity,model), format and top.
func ParseUsage(now time.Time, get func(string) string) (UsageParams, error) {
	p := UsageParams{Format: "json", GroupBy: []string{ledger.ByIdentity, ledger.ByModel}}
	today := now.UTC().Truncate(24 * time.Hour)
	day := func(name string) (time.Time, error) {
		v := get(name)
		if v == "" {
			return today, nil
		}
		t, err := time.Parse(time.DateOnly, v)
		if err != nil {
			return time.Time{}, fmt.Errorf("%s must be a date YYYY-MM-DD", name)
		}
		return t, nil
	}
	var err error
	if p.Query.From, err = day("from"); err != nil {
		return p, err
	}
	if p.Query.To, err = day("to"); err != nil {
		return p, err
	}
	if _, err := p.Query.Days(); err != nil {
		return p, err
	}
	p.Query.Identity = get("identity")
	if g := get("group_by"); g != "" {
		p.GroupBy = nil
		for _, f := range strings.Split(g, ",") {
			if f = strings.TrimSpace(f); f != "" {
				p.GroupBy = append(p.GroupBy, f)
			}
		}
		if _, err := ledger.Group(nil, p.GroupBy); err != nil {
			return p, err
		}
	}
	switch f := get("format"); f {
	case "", "json":
	case "csv":
		p.Format = "csv"
	default:
		return p, errors.New("format must be json or csv")
	}
	if t := get("top"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 1 || n > 10000 {
			return p, errors.New("top must be an integer from 1 to 10000")
		}
		p.Top = n
	}
	return p, nil
}

// UsageReport is /admin/usage's JSON answer.
type UsageReport struct {
	Backend       string       `json:"backend"`
	From          string       `json:"from"`
	To            string       `json:"to"`
	Identity      string       `json:"identity,omitempty"`
	GroupBy       []string     `json:"group_by"`
	RetentionDays int          `json:"retention_days"`
	Rows          []ledger.Row `json:"rows"`
	Total         ledger.Row   `json:"total"`
	Note          string       `json:"note,omitempty"`
}

// BuildUsage runs p against l.
func BuildUsage(ctx context.Context, l ledger.Ledger, p UsageParams) (UsageReport, error) {
	rows, err := l.Rows(ctx, p.Query)
	if err != nil {
		return UsageReport{}, err
	}
	grouped, err := ledger.Group(rows, p.GroupBy)
	if err != nil {
		return UsageReport{}, err
	}
	rep := UsageReport{
		Backend: l.Backend(), From: p.Query.From.Format(time.DateOnly), To: p.Query.To.Format(time.DateOnly),
		Identity: p.Query.Identity, GroupBy: p.GroupBy, RetentionDays: l.Retention(),
		Total: ledger.Total(rows), Rows: grouped,
	}
	if rep.Rows == nil {
		rep.Rows = []ledger.Row{}
	}
	if p.Top > 0 && len(rep.Rows) > p.Top {
		rep.Rows = rep.Rows[:p.Top]
	}
	if l.Backend() == ledger.BackendMemory {
		rep.Note = "in-process mode: this replica's usage since it started, kept in memory"
	}
	return rep, nil
}

// WriteCSV writes rows with a header line.
func WriteCSV(w http.ResponseWriter, rep UsageReport) {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="keyward-usage.csv"`)
	w.Header().Set("Cache-Control", "no-store")
	_ = EncodeCSV(csv.NewWriter(w), rep.Rows)
}

// EncodeCSV writes rows to cw and flushes.
func EncodeCSV(cw *csv.Writer, rows []ledger.Row) error {
	_ = cw.Write([]string{"day", "identity", "model", "tier", "requests", "input_tokens", "output_tokens",
		"cache_read_tokens", "cache_write_tokens", "cache_hits", "server_tool_uses", "cost_micro_usd", "cost_usd"})
	for _, r := range rows {
		i := func(n int64) string { return strconv.FormatInt(n, 10) }
		_ = cw.Write([]string{r.Day, r.Identity, r.Model, r.Tier, i(r.Requests), i(r.InputTokens), i(r.OutputTokens),
			i(r.CacheReadTokens), i(r.CacheWriteTokens), i(r.CacheHits), i(r.ServerToolUses), i(r.CostMicro),
			strconv.FormatFloat(float64(r.CostMicro)/1e6, 'f', 6, 64)})
	}
	cw.Flush()
	return cw.Error()
}

func (a *api) usage(w http.ResponseWriter, r *http.Request) {
	if a.o.Ledger == nil {
		writeErr(w, http.StatusNotFound, "not_found", "the usage ledger is not enabled")
		return
	}
	p, err := ParseUsage(a.o.Now(), r.URL.Query().Get)
	if err != nil {
		writeErr(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	rep, err := BuildUsage(r.Context(), a.o.Ledger, p)
	if err != nil {
		a.storeErr(w, err)
		return
	}
	if p.Format == "csv" {
		WriteCSV(w, rep)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}
