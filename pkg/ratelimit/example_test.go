package ratelimit_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/keyward/keyward/pkg/ratelimit"
)

func ExampleParseLimit() {
	lim, err := ratelimit.ParseLimit("30/60s") // KEYWARD_RATE_LIMIT
	if err != nil {
		panic(err)
	}
	fmt.Println(lim.Rate, lim.Period, lim.Burst, lim)

	_, err = ratelimit.ParseLimit("30 per minute")
	fmt.Println(err)
	// Output:
	// 30 1m0s 30 30/60s
	// parsing limit "30 per minute": want RATE/PERIOD such as 30/60s
}

func ExampleLimit_String() {
	fmt.Println(ratelimit.Limit{Rate: 100, Period: time.Minute, Burst: 100})
	// Output: 100/60s
}

func ExampleParseFailureMode() {
	mode, err := ratelimit.ParseFailureMode("") // KEYWARD_REDIS_FAILURE_MODE unset
	fmt.Println(mode, err)
	// Output: local <nil>
}

func ExampleRedactURL() {
	fmt.Println(ratelimit.RedactURL("redis://default:s3cret@redis.internal:6379/0"))
	// Output: redis://default:redacted@redis.internal:6379/0
}

// The in-process limiter: reserve before the upstream call, settle after it.
func ExampleNewMemory() {
	ctx := context.Background()
	lim, err := ratelimit.NewMemory(ratelimit.MemoryOptions{})
	if err != nil {
		panic(err)
	}
	defer lim.Close()

	policy := ratelimit.Policy{
		Requests:        ratelimit.Limit{Rate: 3, Period: time.Minute, Burst: 3},
		TokensPerMinute: 10_000,
		DailyBudgetUSD:  1,
	}
	for i := range 4 {
		d, err := lim.Admit(ctx, ratelimit.Request{Key: "sub:alice", Policy: policy, Tokens: 1500, CostUSD: 0.02})
		if err != nil {
			panic(err)
		}
		if !d.Allowed {
			fmt.Printf("call %d: refused (%s), retry in %ds\n", i+1, d.Reason, int(d.RetryAfter.Round(time.Second)/time.Second))
			continue
		}
		fmt.Printf("call %d: allowed, %d left\n", i+1, d.Remaining)
		// ... call the upstream, meter its usage, then:
		if err := lim.Settle(ctx, d.Reservation, ratelimit.Usage{Tokens: 400, CostUSD: 0.005}); err != nil {
			panic(err)
		}
	}
	st, _ := lim.Status(ctx, "sub:alice", policy)
	fmt.Printf("spent today: $%.3f\n", st.BudgetSpentUSD)
	// Output:
	// call 1: allowed, 2 left
	// call 2: allowed, 1 left
	// call 3: allowed, 0 left
	// call 4: refused (requests), retry in 20s
	// spent today: $0.015
}

// A limiter shared by every replica through Redis. (miniredis keeps the
// example self-contained; production code passes NewRedisClient's client.)
func ExampleNewRedis() {
	ctx := context.Background()
	mr := miniredis.NewMiniRedis()
	if err := mr.Start(); err != nil {
		panic(err)
	}
	defer mr.Close()

	client, err := ratelimit.NewRedisClient(ratelimit.RedisConfig{URL: "redis://" + mr.Addr()})
	if err != nil {
		panic(err)
	}
	defer client.Close()
	lim, err := ratelimit.NewRedis(client, ratelimit.RedisOptions{Prefix: "example:"})
	if err != nil {
		panic(err)
	}
	policy := ratelimit.Policy{Requests: ratelimit.Limit{Rate: 2, Period: time.Minute, Burst: 2}}
	for range 3 {
		d, err := lim.Admit(ctx, ratelimit.Request{Key: "ip:203.0.113.9", Policy: policy})
		if err != nil {
			panic(err)
		}
		fmt.Println(d.Allowed, d.Remaining, d.Backend)
	}
	// Output:
	// true 1 redis
	// true 0 redis
	// false 0 redis
}

// Redis with a failure policy: here Redis is unreachable from the start,
// and the replica limits with its share of the limit (KEYWARD_REDIS_LOCAL_SHARE=2).
func ExampleNewResilient() {
	ctx := context.Background()
	client, err := ratelimit.NewRedisClient(ratelimit.RedisConfig{URL: "redis://127.0.0.1:1"})
	if err != nil {
		panic(err)
	}
	defer client.Close()
	shared, err := ratelimit.NewRedis(client, ratelimit.RedisOptions{})
	if err != nil {
		panic(err)
	}
	lim, err := ratelimit.NewResilient(shared, ratelimit.ResilientOptions{
		FailureMode:       ratelimit.FailureLocal,
		LocalShareDivisor: 2,
	})
	if err != nil {
		panic(err)
	}
	defer lim.Close()

	policy := ratelimit.Policy{Requests: ratelimit.Limit{Rate: 4, Period: time.Minute, Burst: 4}}
	for range 3 {
		d, err := lim.Admit(ctx, ratelimit.Request{Key: "sub:bob", Policy: policy})
		if errors.Is(err, ratelimit.ErrBackendUnavailable) {
			fmt.Println("503")
			continue
		}
		fmt.Println(d.Allowed, d.Limit, d.Backend)
	}
	// Output:
	// true 2/60s degraded
	// true 2/60s degraded
	// false 2/60s degraded
}

func ExampleNewRedisClient() {
	// Exactly one of URL, Sentinel or Cluster settings.
	_, err := ratelimit.NewRedisClient(ratelimit.RedisConfig{
		SentinelMaster: "mymaster",
		ClusterAddrs:   []string{"10.0.0.1:7000"},
	})
	fmt.Println(err)
	// Output:
	// configuring redis: sentinel master name given without sentinel addresses
	// give only one of a redis URL, sentinel settings or cluster addresses
}
