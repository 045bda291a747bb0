package ratelimit

import (
	"math"
	"time"
)

// gcraEpoch is redis_rate's epoch (2017-01-01 UTC). Times are float seconds
// since it, exactly as the Lua script computes them from Redis TIME, so a
// theoretical arrival time (TAT) means the same thing in memory and in Redis.
const gcraEpoch = 1483228800

// gcraSeconds converts t to redis_rate's clock: seconds since gcraEpoch with
// microsecond resolution (what Redis TIME offers).
func gcraSeconds(t time.Time) float64 {
	return float64(t.Unix()-gcraEpoch) + float64(t.Nanosecond()/1000)/1e6
}

// gcraResult is the outcome of one GCRA evaluation, in the units of
// redis_rate.Result (seconds as float; retryAfter is -1 when allowed).
type gcraResult struct {
	allowed    bool
	remaining  int
	retryAfter float64
	resetAfter float64
	newTAT     float64 // TAT to store when allowed
}

// gcra is a line-by-line Go port of redis_rate v10's allowN Lua script
// (itself from rwz/redis-gcra, Copyright (c) 2017 Pavel Pravosud), so the
// memory limiter admits, counts Remaining and reports RetryAfter/ResetAfter
// exactly like the Redis one. tat is the stored TAT, or 0 when there is none.
// cost 0 is a peek.
func gcra(tat, now float64, burst, rate int64, period float64, cost int64) gcraResult {
	emissionInterval := period / float64(rate)
	increment := emissionInterval * float64(cost)
	burstOffset := emissionInterval * float64(burst)

	if tat == 0 {
		tat = now
	}
	tat = math.Max(tat, now)

	newTAT := tat + increment
	allowAt := newTAT - burstOffset
	diff := now - allowAt
	remaining := diff / emissionInterval

	if remaining < 0 {
		return gcraResult{
			allowed:    false,
			remaining:  0,
			retryAfter: -diff,
			resetAfter: tat - now,
			newTAT:     tat,
		}
	}
	return gcraResult{
		allowed: true,
		// Redis truncates a Lua number to an integer reply; remaining >= 0 here.
		remaining:  int(remaining),
		retryAfter: -1,
		resetAfter: newTAT - now,
		newTAT:     newTAT,
	}
}

// gcraShift moves a TAT by delta units (positive charges, negative refunds)
// the way the settle script does: a charge starts from now when the bucket is
// idle, a refund never moves the TAT into the past. It returns 0 when the
// bucket is back to full (nothing worth storing).
func gcraShift(tat, now, emissionInterval float64, delta int64) float64 {
	switch {
	case delta > 0:
		if tat == 0 {
			tat = now
		}
		tat = math.Max(tat, now) + float64(delta)*emissionInterval
	case delta < 0:
		if tat == 0 {
			return 0
		}
		tat += float64(delta) * emissionInterval
	}
	if tat <= now {
		return 0
	}
	return tat
}

// seconds converts redis_rate's float seconds to a Duration the way
// redis_rate's dur does (-1 stays -1ns, meaning "not applicable").
func seconds(f float64) time.Duration {
	if f == -1 {
		return -1
	}
	return time.Duration(f * float64(time.Second))
}
