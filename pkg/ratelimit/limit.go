package ratelimit

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Bounds for ParseLimit: a period below a millisecond or a rate above a
// billion is a typo, not a policy, and would only produce float noise in GCRA.
const (
	minPeriod = time.Millisecond
	maxRate   = 1_000_000_000
)

// ParseLimit parses "RATE/PERIOD" as used by KEYWARD_RATE_LIMIT and the tier
// config: "30/60s", "100/1m", "10/s", "5000/1h", "2/500ms". A bare unit (s, m,
// h) means one of it. Burst equals Rate, like redis_rate.PerMinute, so a fresh
// caller may spend the whole window at once.
func ParseLimit(s string) (Limit, error) {
	raw := strings.TrimSpace(s)
	rateStr, periodStr, ok := strings.Cut(raw, "/")
	if !ok {
		return Limit{}, fmt.Errorf("parsing limit %q: want RATE/PERIOD such as 30/60s", s)
	}
	rate, err := strconv.Atoi(strings.TrimSpace(rateStr))
	if err != nil || rate < 1 || rate > maxRate {
		return Limit{}, fmt.Errorf("parsing limit %q: rate must be a whole number from 1 to %d", s, maxRate)
	}
	periodStr = strings.TrimSpace(periodStr)
	var period time.Duration
	switch periodStr {
	case "s", "sec", "second":
		period = time.Second
	case "m", "min", "minute":
		period = time.Minute
	case "h", "hour":
		period = time.Hour
	default:
		period, err = time.ParseDuration(periodStr)
		if err != nil {
			return Limit{}, fmt.Errorf("parsing limit %q: period must be a duration such as 60s, 1m or 1h", s)
		}
	}
	if period < minPeriod {
		return Limit{}, fmt.Errorf("parsing limit %q: period must be at least %s", s, minPeriod)
	}
	return Limit{Rate: rate, Period: period, Burst: rate}, nil
}

// String formats the limit the way ParseLimit reads it, with the period in
// whole seconds when it is one ("30/60s"), so logs and the RateLimit-Policy
// header show what the operator configured. Burst is not shown.
func (l Limit) String() string {
	if l.IsZero() {
		return "unlimited"
	}
	if l.Period%time.Second == 0 {
		return fmt.Sprintf("%d/%ds", l.Rate, int64(l.Period/time.Second))
	}
	return fmt.Sprintf("%d/%s", l.Rate, l.Period)
}

// normalized fills in Burst like ParseLimit does, so a Limit literal written
// without a Burst does not silently block every request (GCRA with burst 0
// admits nothing).
func (l Limit) normalized() Limit {
	if l.Burst <= 0 {
		l.Burst = l.Rate
	}
	return l
}
