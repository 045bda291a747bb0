package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// BackendRedis is Backend() of the shared Redis limiter.
const BackendRedis = "redis"

// KeyVersion starts every key this package writes. Bump it when the meaning
// of a stored value changes, so a rolling upgrade never reads old state
// with new rules.
const KeyVersion = "keyward:v1:"

// redisRatePrefix is what redis_rate puts in front of its keys; our own
// scripts use it too so both read and write the same request bucket.
const redisRatePrefix = "rate:"

// RedisOptions configures NewRedis. The zero value is ready to use.
type RedisOptions struct {
	// Prefix goes in front of KeyVersion, so tenants sharing a Redis (and
	// tests sharing a server) never see each other's keys, e.g. "tenant-a:".
	// It must not contain '{' or '}' (those are Cluster hash tags).
	Prefix string
	// Now names the UTC day of budget counters (default time.Now). GCRA
	// windows use Redis TIME, never this clock.
	Now func() time.Time
	// ClusterSafe checks the global daily cap in a second script of the same
	// pipeline instead of inside the identity's script, because the global
	// counter lives in another hash slot. It is switched on automatically
	// for *redis.ClusterClient and *redis.Ring.
	ClusterSafe bool
	// Logger reports compensations that could not be written (default: discard).
	Logger *slog.Logger
	// Unbatched sends every script call on its own. By default a call that
	// finds two already in flight waits for one of them to finish and then
	// goes out in one pipeline with every call that queued meanwhile: under
	// load many admissions share one write and one read, while a lone call
	// is sent at once, as without batching (see batcher).
	Unbatched bool
}

// Redis is the Limiter shared by every gateway replica. Each admitted
// request costs one script call (one round trip when alone) for all its
// pre-checks and one for Settle; concurrent calls share round trips unless
// RedisOptions.Unbatched.
//
// Keys (P = Prefix + KeyVersion, ID = the identity, one hash tag per identity
// so its keys share a Cluster slot):
//
//	rate:P{ID}:req        request GCRA TAT (redis_rate's format and key)
//	rate:P{ID}:tok        token GCRA TAT
//	P{ID}:usd:YYYY-MM-DD  identity's spend that UTC day, micro-dollars
//	Pglobal:{global}:usd:YYYY-MM-DD  everyone's spend that day
//
// Budget counters expire 48 hours after their last write.
//
// With async replication (Sentinel failover) recently written TATs and
// counters can be lost, which over-admits by at most what was written in the
// replication lag (about one burst); budgets are affected the same way.
type Redis struct {
	client  redis.UniversalClient
	scripts scripter // client, or batch when batching
	batch   *batcher // nil: unbatched
	rl      *redis_rate.Limiter
	prefix  string
	now     func() time.Time
	split   bool
	log     *slog.Logger
	ttlSecs int64
}

var _ Limiter = (*Redis)(nil)

// scripter is what script calls go through: the client itself or a batcher
// (redis_rate also wants Del).
type scripter interface {
	redis.Scripter
	Del(ctx context.Context, keys ...string) *redis.IntCmd
}

// NewRedis returns a limiter on client. The client stays the caller's: Close
// does not close it. It must have ContextTimeoutEnabled (NewRedisClient sets
// it), otherwise a slow Redis would hold requests for the socket timeout
// whatever deadline the caller's context carries.
func NewRedis(client redis.UniversalClient, opts RedisOptions) (*Redis, error) {
	if client == nil {
		return nil, errors.New("creating redis limiter: nil client")
	}
	if strings.ContainsAny(opts.Prefix, "{}") {
		return nil, errors.New("creating redis limiter: Prefix must not contain '{' or '}'")
	}
	split := opts.ClusterSafe
	ctxTimeouts := true
	switch c := client.(type) {
	case *redis.Client:
		ctxTimeouts = c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		ctxTimeouts = c.Options().ContextTimeoutEnabled
		split = true
	case *redis.Ring:
		ctxTimeouts = c.Options().ContextTimeoutEnabled
		split = true
	}
	if !ctxTimeouts {
		return nil, errors.New("creating redis limiter: client needs ContextTimeoutEnabled so request deadlines bound Redis calls")
	}
	r := &Redis{
		client:  client,
		scripts: client,
		prefix:  opts.Prefix + KeyVersion,
		now:     opts.Now,
		split:   split,
		log:     opts.Logger,
		ttlSecs: int64(budgetTTL / time.Second),
	}
	if !opts.Unbatched {
		r.batch = newBatcher(client)
		r.scripts = r.batch
	}
	r.rl = redis_rate.NewLimiter(r.scripts)
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	return r, nil
}

// tagEscaper keeps an identity from closing its own hash tag early: a "}" in
// it would move the tag, and "{}" would leave it empty (the whole key is then
// hashed, scattering one identity's keys across slots). Escaping % as well
// keeps the mapping one-to-one.
var tagEscaper = strings.NewReplacer("%", "%25", "{", "%7B", "}", "%7D")

func (r *Redis) tag(key string) string {
	if strings.ContainsAny(key, "{}%") {
		key = tagEscaper.Replace(key)
	}
	return r.prefix + "{" + key + "}"
}

// reqKey is the request bucket's key as redis_rate is given it (redis_rate
// prepends "rate:").
func (r *Redis) reqKey(key string) string { return r.tag(key) + ":req" }

func (r *Redis) callsKey(key string) string { return r.tag(key) + ":calls" }

func (r *Redis) identityKeys(key, day string) []string {
	tag := r.tag(key)
	return []string{redisRatePrefix + tag + ":req", redisRatePrefix + tag + ":tok", tag + ":usd:" + day}
}

func (r *Redis) globalKey(day string) string { return r.prefix + "global:{global}:usd:" + day }

func rrLimit(l Limit) redis_rate.Limit {
	return redis_rate.Limit{Rate: l.Rate, Burst: l.Burst, Period: l.Period}
}

// Admit implements Limiter.
func (r *Redis) Admit(ctx context.Context, req Request) (Decision, error) {
	if err := req.validate(); err != nil {
		return Decision{}, fmt.Errorf("admitting request: %w", err)
	}
	p := newPlan(req)
	t := r.now()
	day := utcDay(t)
	d := Decision{Limit: p.requests, Backend: BackendRedis}
	if reason := p.unsatisfiable(); reason != ReasonNone {
		d.Reason, d.Unsatisfiable = reason, true
		return d, nil
	}
	switch {
	case p.onlyRequests() && !p.checkRequest:
		d.Allowed = true
	case p.onlyRequests():
		res, err := r.rl.Allow(ctx, r.reqKey(req.Key), rrLimit(p.requests))
		if err != nil {
			return Decision{}, fmt.Errorf("checking request limit in redis: %w", err)
		}
		d.Allowed = res.Allowed > 0
		d.Remaining = res.Remaining
		d.ResetAfter = durOrZero(res.ResetAfter)
		if !d.Allowed {
			d.Reason, d.RetryAfter = ReasonRequests, durOrZero(res.RetryAfter)
		}
	default:
		var err error
		if d, err = r.admitScripted(ctx, p, req.Key, day, t, d); err != nil {
			return Decision{}, err
		}
	}
	if d.Allowed {
		d.Reservation = p.reservation(req, day, BackendRedis)
	}
	return d, nil
}

// admitResult is admitScript's reply.
type admitResult struct {
	allowed    bool
	reason     int64
	remaining  int
	retryAfter time.Duration
	resetAfter time.Duration
	spent      int64 // µ$ (see admitScript)
	gspent     int64
}

func parseAdmit(v any) (admitResult, error) {
	vals, ok := v.([]any)
	if !ok || len(vals) < 5 {
		return admitResult{}, fmt.Errorf("unexpected admit script reply %T", v)
	}
	allowed, ok1 := vals[0].(int64)
	reason, ok2 := vals[1].(int64)
	remaining, ok3 := vals[2].(int64)
	retryStr, ok4 := vals[3].(string)
	resetStr, ok5 := vals[4].(string)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 {
		return admitResult{}, fmt.Errorf("unexpected admit script reply %v", vals)
	}
	retry, err := strconv.ParseFloat(retryStr, 64)
	if err != nil {
		return admitResult{}, fmt.Errorf("parsing retry_after %q: %w", retryStr, err)
	}
	reset, err := strconv.ParseFloat(resetStr, 64)
	if err != nil {
		return admitResult{}, fmt.Errorf("parsing reset_after %q: %w", resetStr, err)
	}
	res := admitResult{
		allowed:    allowed == 1,
		reason:     reason,
		remaining:  int(remaining),
		retryAfter: durOrZero(seconds(retry)),
		resetAfter: durOrZero(seconds(reset)),
	}
	if len(vals) >= 7 {
		res.spent, _ = vals[5].(int64)
		res.gspent, _ = vals[6].(int64)
	}
	return res, nil
}

var scriptReasons = map[int64]Reason{1: ReasonRequests, 2: ReasonTokens, 3: ReasonBudget, 4: ReasonGlobalBudget, 5: ReasonConcurrency}

// admitScripted runs the all-or-nothing pre-check script: alone on a single
// Redis, or in one pipeline with the global reservation when the global key
// is in another slot (then a rejection by one side is compensated on the
// other, which costs a second round trip only for rejected requests).
func (r *Redis) admitScripted(ctx context.Context, p plan, key, day string, t time.Time, d Decision) (Decision, error) {
	keys := append(r.identityKeys(key, day), r.callsKey(key))
	global := p.globalMicro
	if r.split {
		global = 0
	} else {
		keys = append(keys, r.globalKey(day))
	}
	args := []any{
		p.requests.Burst, p.requests.Rate, p.requests.Period.Seconds(),
		p.tpm, p.tokens,
		p.budgetMicro, global, p.costMicro, r.ttlSecs,
		p.concurrency, p.callID, p.leaseSecs,
	}
	if !p.checkRequest {
		args[1] = 0
	}
	if !p.checkTokens {
		args[4] = 0
	}
	if !p.checkBudget {
		args[5] = 0
	}
	calls := []scriptCall{{admitScript, keys, args}}
	splitGlobal := r.split && p.checkGlobal
	if splitGlobal {
		calls = append(calls, scriptCall{reserveScript, []string{r.globalKey(day)}, []any{p.globalMicro, p.costMicro, r.ttlSecs}})
	}
	cmds, err := r.run(ctx, calls...)
	if err != nil {
		return Decision{}, fmt.Errorf("checking limits in redis: %w", err)
	}
	res, err := parseAdmit(cmds[0].Val())
	if err != nil {
		return Decision{}, fmt.Errorf("checking limits in redis: %w", err)
	}
	d.Remaining, d.ResetAfter = res.remaining, res.resetAfter
	if p.checkBudget {
		d.BudgetSpentUSD = float64(res.spent) / 1e6
	}
	if p.checkGlobal && !r.split {
		d.GlobalSpentUSD = float64(res.gspent) / 1e6
	}
	if !res.allowed {
		d.Reason = scriptReasons[res.reason]
		d.RetryAfter = res.retryAfter
		if d.Reason == ReasonBudget || d.Reason == ReasonGlobalBudget {
			d.RetryAfter = untilMidnight(t)
		}
	}
	if !splitGlobal {
		d.Allowed = res.allowed
		return d, nil
	}

	globalOK, err := parseReserve(cmds[1].Val())
	if err != nil {
		return Decision{}, fmt.Errorf("checking global budget in redis: %w", err)
	}
	switch {
	case res.allowed && globalOK:
		d.Allowed = true
	case res.allowed:
		// The identity's side committed; give it back.
		d.Reason, d.RetryAfter = ReasonGlobalBudget, untilMidnight(t)
		d.Remaining = min(d.Remaining+1, p.requests.Burst)
		reqDelta := int64(0)
		if p.checkRequest {
			reqDelta = -1
		}
		r.compensate(ctx, scriptCall{adjustScript, keys[:3], []any{
			rateArg(p), p.requests.Period.Seconds(), reqDelta, p.tpm, -p.tokens, -budgetArg(p), r.ttlSecs,
		}})
		if p.concurrency > 0 {
			r.compensate(ctx, scriptCall{releaseScript, []string{r.callsKey(key)}, []any{p.callID}})
		}
	case globalOK:
		r.compensate(ctx, scriptCall{moneyScript, []string{r.globalKey(day)}, []any{-p.costMicro, r.ttlSecs}})
	}
	return d, nil
}

func rateArg(p plan) int {
	if !p.checkRequest {
		return 0
	}
	return p.requests.Rate
}

func budgetArg(p plan) int64 {
	if !p.checkBudget {
		return 0
	}
	return p.costMicro
}

func parseReserve(v any) (bool, error) {
	vals, ok := v.([]any)
	if !ok || len(vals) < 1 {
		return false, fmt.Errorf("unexpected reserve script reply %T", v)
	}
	allowed, ok := vals[0].(int64)
	if !ok {
		return false, fmt.Errorf("unexpected reserve script reply %v", vals)
	}
	return allowed == 1, nil
}

// compensate undoes the half of a split admission that committed while the
// other half refused. If it fails the reservation stays counted until the
// keys expire: limits err on the strict side, never the generous one.
func (r *Redis) compensate(ctx context.Context, call scriptCall) {
	if _, err := r.run(ctx, call); err != nil {
		r.log.WarnContext(ctx, "rate-limit compensation not written; the refused request stays counted until its keys expire",
			slog.String("error", err.Error()))
	}
}

// Settle implements Limiter: one round trip (one script, or two in one
// pipeline when the global counter lives in another slot). Counters never go
// below zero, whatever the refund.
func (r *Redis) Settle(ctx context.Context, res Reservation, used Usage) error {
	if err := res.validate(); err != nil {
		return fmt.Errorf("settling reservation: %w", err)
	}
	if err := used.validate(); err != nil {
		return fmt.Errorf("settling reservation: %w", err)
	}
	s := newSettlement(res, used, r.now())
	if s.empty() && res.CallID == "" {
		if used.Record == nil {
			return nil
		}
		p := r.client.Pipeline()
		used.Record.Queue(p)
		if err := r.send(ctx, p); err != nil {
			return fmt.Errorf("settling reservation in redis: %w", err)
		}
		return nil
	}
	identityMoney, globalMoney := int64(0), int64(0)
	if s.checkBudget {
		identityMoney = s.budgetDelta
	}
	if s.checkGlobal {
		globalMoney = s.budgetDelta
	}
	ids := r.identityKeys(res.Key, s.day)
	identity := scriptCall{settleScript, []string{ids[1], ids[2], r.callsKey(res.Key)}, []any{
		s.tpm, s.tokenDelta, identityMoney, r.ttlSecs, res.CallID,
	}}
	var calls []scriptCall
	switch {
	case globalMoney != 0 && !r.split:
		// One script for everything; a single Redis has no slots to respect.
		identity.keys = append(identity.keys, r.globalKey(s.day))
		identity.args = append(identity.args, globalMoney)
		calls = append(calls, identity)
	case globalMoney != 0:
		if s.tokenDelta != 0 || identityMoney != 0 || res.CallID != "" {
			calls = append(calls, identity)
		}
		calls = append(calls, scriptCall{moneyScript, []string{r.globalKey(s.day)}, []any{globalMoney, r.ttlSecs}})
	default:
		calls = append(calls, identity)
	}
	if _, err := r.runWith(ctx, used.Record, calls...); err != nil {
		return fmt.Errorf("settling reservation in redis: %w", err)
	}
	return nil
}

// Extend implements Limiter: one round trip (one script, or two in one
// pipeline when the global counter lives in another slot; then a refusal by
// one side is compensated on the other).
func (r *Redis) Extend(ctx context.Context, res *Reservation, moreTokens int64, moreUSD float64) (bool, error) {
	if res == nil {
		return false, fmt.Errorf("extending reservation: %w: nil reservation", ErrInvalidRequest)
	}
	x, err := newExtension(*res, moreTokens, moreUSD, r.now())
	if err != nil {
		return false, fmt.Errorf("extending reservation: %w", err)
	}
	if x.empty() {
		x.apply(res, moreUSD)
		return true, nil
	}
	ids := r.identityKeys(res.Key, x.day)
	keys := []string{ids[1], ids[2]}
	global := x.globalMicro
	splitGlobal := r.split && x.globalMicro > 0 && x.costMicro > 0
	if r.split {
		global = 0
	} else {
		keys = append(keys, r.globalKey(x.day))
	}
	calls := []scriptCall{{extendScript, keys, []any{x.tpm, x.tokens, x.budgetMicro, global, x.costMicro, r.ttlSecs}}}
	if splitGlobal {
		calls = append(calls, scriptCall{reserveScript, []string{r.globalKey(x.day)}, []any{x.globalMicro, x.costMicro, r.ttlSecs}})
	}
	cmds, err := r.run(ctx, calls...)
	if err != nil {
		return false, fmt.Errorf("extending reservation in redis: %w", err)
	}
	idOK, err := parseReserve(cmds[0].Val())
	if err != nil {
		return false, fmt.Errorf("extending reservation in redis: %w", err)
	}
	if !splitGlobal {
		if idOK {
			x.apply(res, moreUSD)
		}
		return idOK, nil
	}
	globalOK, err := parseReserve(cmds[1].Val())
	if err != nil {
		return false, fmt.Errorf("extending reservation in redis: %w", err)
	}
	switch {
	case idOK && globalOK:
		x.apply(res, moreUSD)
		return true, nil
	case idOK:
		budget := int64(0)
		if x.budgetMicro > 0 {
			budget = -x.costMicro
		}
		r.compensate(ctx, scriptCall{adjustScript, r.identityKeys(res.Key, x.day), []any{0, 0, 0, x.tpm, -x.tokens, budget, r.ttlSecs}})
	case globalOK:
		r.compensate(ctx, scriptCall{moneyScript, []string{r.globalKey(x.day)}, []any{-x.costMicro, r.ttlSecs}})
	}
	return false, nil
}

// Status implements Limiter. The request bucket is peeked with redis_rate's
// AllowN(…, 0); tokens and budget, when configured, with one more pipelined
// read evaluated against Redis TIME.
func (r *Redis) Status(ctx context.Context, key string, policy Policy) (Status, error) {
	if err := validKey(key); err != nil {
		return Status{}, fmt.Errorf("reading quota: %w", err)
	}
	if err := policy.validate(); err != nil {
		return Status{}, fmt.Errorf("reading quota: %w", err)
	}
	t := r.now()
	day := utcDay(t)
	lim := policy.Requests.normalized()
	st := Status{
		Limit:           lim,
		TokensPerMinute: policy.TokensPerMinute,
		TokensRemaining: policy.TokensPerMinute,
		DailyBudgetUSD:  policy.DailyBudgetUSD,
		BudgetResetAt:   nextMidnight(t),
		Backend:         BackendRedis,
	}
	if !lim.IsZero() {
		res, err := r.rl.AllowN(ctx, r.reqKey(key), rrLimit(lim), 0)
		if err != nil {
			return Status{}, fmt.Errorf("reading request quota from redis: %w", err)
		}
		st.Remaining, st.ResetAfter = res.Remaining, durOrZero(res.ResetAfter)
	}
	if policy.TokensPerMinute <= 0 && toMicro(policy.DailyBudgetUSD) <= 0 {
		return st, nil
	}
	keys := r.identityKeys(key, day)
	var timeCmd *redis.TimeCmd
	var tokCmd, budgetCmd *redis.StringCmd
	_, _ = r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		timeCmd = p.Time(ctx)
		tokCmd = p.Get(ctx, keys[1])
		budgetCmd = p.Get(ctx, keys[2])
		return nil
	})
	for _, err := range []error{timeCmd.Err(), tokCmd.Err(), budgetCmd.Err()} {
		if err != nil && !errors.Is(err, redis.Nil) {
			return Status{}, fmt.Errorf("reading token and budget quota from redis: %w", err)
		}
	}
	if policy.TokensPerMinute > 0 {
		tat := 0.0
		if s, err := tokCmd.Result(); err == nil {
			if tat, err = strconv.ParseFloat(s, 64); err != nil {
				return Status{}, fmt.Errorf("reading token quota from redis: %w", err)
			}
		}
		peek := gcra(tat, gcraSeconds(timeCmd.Val()), policy.TokensPerMinute, policy.TokensPerMinute, tokenPeriod.Seconds(), 0)
		st.TokensRemaining = int64(peek.remaining)
	}
	if s, err := budgetCmd.Result(); err == nil {
		micro, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return Status{}, fmt.Errorf("reading budget from redis: %w", err)
		}
		st.BudgetSpentUSD = fromMicro(micro)
	}
	return st, nil
}

// Backend implements Limiter.
func (r *Redis) Backend() string { return BackendRedis }

// Close implements Limiter. It leaves the client open: it belongs to the caller.
func (r *Redis) Close() error { return nil }

// Ping checks that Redis answers (Resilient's probe).
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("pinging redis: %w", err)
	}
	return nil
}

// scriptCall is one script invocation for run.
type scriptCall struct {
	script *redis.Script
	keys   []string
	args   []any
}

// run executes calls in one round trip: a single script directly (Script.Run
// falls back from EVALSHA to EVAL by itself), several in one pipeline. In a
// pipeline EVALSHA's NOSCRIPT arrives too late for that fallback, so the
// calls that got it (after a restart or failover emptied the script cache)
// are sent again with EVAL, which also re-caches them. With batching the
// pipeline may carry other callers' scripts too.
func (r *Redis) run(ctx context.Context, calls ...scriptCall) ([]*redis.Cmd, error) {
	switch len(calls) {
	case 0:
		return nil, nil
	case 1:
		c := calls[0]
		cmd := c.script.Run(ctx, r.scripts, c.keys, c.args...)
		return []*redis.Cmd{cmd}, cmd.Err()
	}
	cmds := make([]*redis.Cmd, len(calls))
	p := r.client.Pipeline()
	for i, c := range calls {
		cmds[i] = c.script.EvalSha(ctx, p, c.keys, c.args...)
	}
	if err := r.send(ctx, p); err != nil {
		return nil, err
	}
	var again []int
	for i, cmd := range cmds {
		if isNoScript(cmd.Err()) {
			again = append(again, i)
		}
	}
	if len(again) > 0 {
		p := r.client.Pipeline()
		for _, i := range again {
			cmds[i] = calls[i].script.Eval(ctx, p, calls[i].keys, calls[i].args...)
		}
		if err := r.send(ctx, p); err != nil {
			return nil, err
		}
	}
	for _, cmd := range cmds {
		if err := cmd.Err(); err != nil {
			return cmds, err
		}
	}
	return cmds, nil
}

// runWith is run with extra commands queued after the scripts in the same
// pipeline. Only the scripts are retried after NOSCRIPT: the extra commands
// went through the first time and must not be applied twice.
func (r *Redis) runWith(ctx context.Context, extra Recorder, calls ...scriptCall) ([]*redis.Cmd, error) {
	if extra == nil {
		return r.run(ctx, calls...)
	}
	cmds := make([]*redis.Cmd, len(calls))
	p := r.client.Pipeline()
	for i, c := range calls {
		cmds[i] = c.script.EvalSha(ctx, p, c.keys, c.args...)
	}
	extra.Queue(p)
	if err := r.send(ctx, p); err != nil {
		return nil, err
	}
	var again []scriptCall
	var at []int
	for i, cmd := range cmds {
		if isNoScript(cmd.Err()) {
			again, at = append(again, calls[i]), append(at, i)
		}
	}
	if len(again) > 0 {
		redo, err := r.run(ctx, again...)
		for j, i := range at {
			if j < len(redo) {
				cmds[i] = redo[j]
			}
		}
		if err != nil {
			return cmds, err
		}
	}
	for _, cmd := range cmds {
		if err := cmd.Err(); err != nil {
			return cmds, err
		}
	}
	return cmds, nil
}

// send executes the commands queued in p, through the batcher if there is
// one. An error means ctx ended while they waited, and they must not be read.
func (r *Redis) send(ctx context.Context, p redis.Pipeliner) error {
	if r.batch == nil {
		_, _ = p.Exec(ctx)
		return nil
	}
	return r.batch.do(ctx, p.Cmds()...)
}

func isNoScript(err error) bool {
	return err != nil && (errors.Is(err, redis.ErrNoScript) || redis.HasErrorPrefix(err, "NOSCRIPT"))
}
