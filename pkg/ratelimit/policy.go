package ratelimit

import (
	"fmt"
	"math"
	"time"
)

// maxKeyLen bounds identity keys: they become Redis keys and map keys, and a
// normalised "sub:…" or "ip:…" is far shorter. Longer means a caller bug.
const maxKeyLen = 512

// tokenPeriod is the window of TokensPerMinute.
const tokenPeriod = time.Minute

// budgetTTL keeps a day's spend counters long enough for late settlements
// (streams that end after midnight) and for operators to look at yesterday.
const budgetTTL = 48 * time.Hour

// dayLayout names the UTC day a budget counter belongs to.
const dayLayout = "2006-01-02"

// toMicro converts USD to integer micro-dollars, the unit every budget
// counter uses so that concurrent INCRBYs add up exactly. Rounding (not
// ceiling) keeps 0.1 from becoming 100001 and turning a 10-call budget into 9.
func toMicro(usd float64) int64 {
	if usd <= 0 {
		return 0
	}
	return int64(math.Round(usd * 1e6))
}

// reserveMicro is toMicro for a reservation: a positive estimate always
// reserves at least one micro-dollar, so it is checked against the budget.
func reserveMicro(usd float64) int64 {
	if usd <= 0 {
		return 0
	}
	return max(1, toMicro(usd))
}

func fromMicro(m int64) float64 { return float64(m) / 1e6 }

// utcDay is the budget day of t.
func utcDay(t time.Time) string { return t.UTC().Format(dayLayout) }

// nextMidnight is when the budget day of t ends.
func nextMidnight(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
}

// untilMidnight is the Retry-After of a budget rejection, at least a second
// so callers can send it as an integer header.
func untilMidnight(t time.Time) time.Duration {
	return max(time.Second, nextMidnight(t).Sub(t))
}

func validKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty key", ErrInvalidRequest)
	}
	if len(key) > maxKeyLen {
		return fmt.Errorf("%w: key longer than %d bytes", ErrInvalidRequest, maxKeyLen)
	}
	return nil
}

func validUSD(name string, v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return fmt.Errorf("%w: %s must be a finite amount >= 0", ErrInvalidRequest, name)
	}
	return nil
}

func (p Policy) validate() error {
	if p.Requests.Rate < 0 || p.Requests.Period < 0 || p.Requests.Burst < 0 {
		return fmt.Errorf("%w: negative request limit", ErrInvalidRequest)
	}
	if p.TokensPerMinute < 0 {
		return fmt.Errorf("%w: negative tokens per minute", ErrInvalidRequest)
	}
	if p.MaxConcurrent < 0 {
		return fmt.Errorf("%w: negative concurrency cap", ErrInvalidRequest)
	}
	if err := validUSD("daily budget", p.DailyBudgetUSD); err != nil {
		return err
	}
	return validUSD("global daily budget", p.GlobalDailyUSD)
}

// defaultLease bounds how long a dead replica's call holds a concurrency slot.
const defaultLease = 15 * time.Minute

// maxCallIDLen bounds call ids (sorted-set members).
const maxCallIDLen = 128

func (r Request) validate() error {
	if err := validKey(r.Key); err != nil {
		return err
	}
	if r.Policy.MaxConcurrent > 0 && (r.CallID == "" || len(r.CallID) > maxCallIDLen) {
		return fmt.Errorf("%w: a concurrency cap needs a call id of 1-%d bytes", ErrInvalidRequest, maxCallIDLen)
	}
	if r.Lease < 0 {
		return fmt.Errorf("%w: negative lease", ErrInvalidRequest)
	}
	if r.Tokens < 0 {
		return fmt.Errorf("%w: negative token estimate", ErrInvalidRequest)
	}
	if err := validUSD("cost estimate", r.CostUSD); err != nil {
		return err
	}
	return r.Policy.validate()
}

func (res Reservation) validate() error {
	if err := validKey(res.Key); err != nil {
		return err
	}
	if len(res.CallID) > maxCallIDLen {
		return fmt.Errorf("%w: call id longer than %d bytes", ErrInvalidRequest, maxCallIDLen)
	}
	if res.Tokens < 0 {
		return fmt.Errorf("%w: negative reserved tokens", ErrInvalidRequest)
	}
	if err := validUSD("reserved cost", res.CostUSD); err != nil {
		return err
	}
	if res.Day != "" {
		if _, err := time.Parse(dayLayout, res.Day); err != nil {
			return fmt.Errorf("%w: reservation day %q is not YYYY-MM-DD", ErrInvalidRequest, res.Day)
		}
	}
	return res.Policy.validate()
}

func (u Usage) validate() error {
	if u.Tokens < 0 {
		return fmt.Errorf("%w: negative used tokens", ErrInvalidRequest)
	}
	return validUSD("used cost", u.CostUSD)
}

// plan is what one Admit has to check, derived from a Request the same way by
// every implementation so they agree on what "0 skips the check" means.
type plan struct {
	requests     Limit // zero: no request limit
	tokens       int64 // tokens to reserve; 0: no token check
	tpm          int64
	budgetMicro  int64 // per-identity daily limit; 0: no budget check
	globalMicro  int64 // global daily limit; 0: no global check
	costMicro    int64 // reserved against both budgets
	checkBudget  bool
	checkGlobal  bool
	checkTokens  bool
	checkRequest bool
	concurrency  int     // cap on calls in flight; 0: no check
	callID       string  // the lease this call takes
	leaseSecs    float64 // how long the lease lives without Settle
}

func newPlan(req Request) plan {
	p := plan{requests: req.Policy.Requests.normalized(), tpm: req.Policy.TokensPerMinute}
	if req.Policy.MaxConcurrent > 0 {
		p.concurrency, p.callID = req.Policy.MaxConcurrent, req.CallID
		lease := req.Lease
		if lease <= 0 {
			lease = defaultLease
		}
		p.leaseSecs = lease.Seconds()
	}
	p.checkRequest = !p.requests.IsZero()
	if req.Tokens > 0 && p.tpm > 0 {
		p.checkTokens, p.tokens = true, req.Tokens
	}
	cost := reserveMicro(req.CostUSD)
	if cost > 0 {
		p.costMicro = cost
		if b := toMicro(req.Policy.DailyBudgetUSD); b > 0 {
			p.checkBudget, p.budgetMicro = true, b
		}
		if g := toMicro(req.Policy.GlobalDailyUSD); g > 0 {
			p.checkGlobal, p.globalMicro = true, g
		}
	}
	return p
}

// onlyRequests reports whether the plan is a plain request-rate check, which
// the Redis limiter hands to redis_rate unchanged.
func (p plan) onlyRequests() bool {
	return !p.checkTokens && !p.checkBudget && !p.checkGlobal && p.concurrency == 0
}

// unsatisfiable returns the limit this request can never fit into, however
// long the caller waits: more tokens than the whole per-minute bucket, or a
// cost above the whole daily budget.
func (p plan) unsatisfiable() Reason {
	switch {
	case p.checkTokens && p.tokens > p.tpm:
		return ReasonTokens
	case p.checkBudget && p.costMicro > p.budgetMicro:
		return ReasonBudget
	case p.checkGlobal && p.costMicro > p.globalMicro:
		return ReasonGlobalBudget
	}
	return ReasonNone
}

// reservation builds what Admit hands back for Settle. The reserved amounts
// are only those actually put aside, so Settle refunds exactly them.
func (p plan) reservation(req Request, day, backend string) Reservation {
	res := Reservation{Key: req.Key, Policy: req.Policy, Day: day, Backend: backend, CallID: p.callID}
	if p.checkTokens {
		res.Tokens = p.tokens
	}
	if p.checkBudget || p.checkGlobal {
		res.CostUSD = req.CostUSD
	}
	return res
}

// settlement is what Settle has to change, in counter units.
type settlement struct {
	tokenDelta  int64 // actual - reserved tokens, applied when TokensPerMinute > 0
	tpm         int64
	budgetDelta int64 // actual - reserved micro-dollars
	checkBudget bool
	checkGlobal bool
	day         string
}

func newSettlement(res Reservation, used Usage, now time.Time) settlement {
	s := settlement{day: res.Day, tpm: res.Policy.TokensPerMinute}
	if s.day == "" {
		s.day = utcDay(now)
	}
	if s.tpm > 0 {
		s.tokenDelta = used.Tokens - res.Tokens
	}
	s.checkBudget = toMicro(res.Policy.DailyBudgetUSD) > 0
	s.checkGlobal = toMicro(res.Policy.GlobalDailyUSD) > 0
	if s.checkBudget || s.checkGlobal {
		s.budgetDelta = toMicro(used.CostUSD) - reserveMicro(res.CostUSD)
	}
	return s
}

func (s settlement) empty() bool {
	return s.tokenDelta == 0 && (s.budgetDelta == 0 || (!s.checkBudget && !s.checkGlobal))
}

// durOrZero turns redis_rate's "-1 = not applicable" into 0 for Decision.
func durOrZero(d time.Duration) time.Duration {
	if d < 0 {
		return 0
	}
	return d
}

// extension is what one Extend has to check and add, in counter units.
type extension struct {
	tokens      int64 // token-bucket charge; 0: none
	tpm         int64
	costMicro   int64 // added to both budgets
	budgetMicro int64 // identity daily limit; 0: no check
	globalMicro int64 // global daily limit; 0: no check
	day         string
}

func newExtension(res Reservation, moreTokens int64, moreUSD float64, now time.Time) (extension, error) {
	if err := res.validate(); err != nil {
		return extension{}, err
	}
	if moreTokens < 0 {
		return extension{}, fmt.Errorf("%w: negative token extension", ErrInvalidRequest)
	}
	if err := validUSD("cost extension", moreUSD); err != nil {
		return extension{}, err
	}
	e := extension{day: res.Day, tpm: res.Policy.TokensPerMinute}
	if e.day == "" {
		e.day = utcDay(now)
	}
	if e.tpm > 0 {
		e.tokens = moreTokens
	}
	e.budgetMicro = toMicro(res.Policy.DailyBudgetUSD)
	e.globalMicro = toMicro(res.Policy.GlobalDailyUSD)
	if e.budgetMicro > 0 || e.globalMicro > 0 {
		// The difference of the rounded totals, so Settle's
		// reserveMicro(res.CostUSD) is exactly what was put aside.
		e.costMicro = reserveMicro(res.CostUSD+moreUSD) - reserveMicro(res.CostUSD)
	}
	return e, nil
}

func (e extension) empty() bool { return e.tokens == 0 && e.costMicro == 0 }

// apply grows res by the extension once it is committed.
func (e extension) apply(res *Reservation, moreUSD float64) {
	res.Tokens += e.tokens
	if e.budgetMicro > 0 || e.globalMicro > 0 {
		res.CostUSD += moreUSD
	}
}
