package metrics

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// RedisProblems are the values of keyward_redis_problem's label: what keeps
// the shared Redis from serving keyward as it needs.
var RedisProblems = []string{"unreachable", "protected_mode", "auth", "eviction_policy"}

// RedisHealth is what the gateway knows about its Redis beyond up/down
// (keyward_ratelimit_backend_up): memory use, and why it cannot be used.
type RedisHealth struct {
	MemoryUsed prometheus.Gauge
	MaxMemory  prometheus.Gauge
	Problem    *prometheus.GaugeVec
	// RoundTrips counts what this replica sent to Redis and waited for: one
	// per command sent alone, one per pipeline (several callers' commands
	// batched together count once). Divided by requests it is the figure
	// make bench reports; background probes are in it too.
	RoundTrips prometheus.Counter
}

// NewRedisHealth creates and registers the Redis collectors, every problem
// at zero.
func NewRedisHealth(reg prometheus.Registerer) *RedisHealth {
	r := &RedisHealth{
		MemoryUsed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "keyward_redis_memory_used_bytes", Help: "Redis used_memory from INFO memory (0 when unknown or no Redis).",
		}),
		MaxMemory: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "keyward_redis_maxmemory_bytes", Help: "Redis maxmemory from INFO memory (0 when unlimited, unknown or no Redis).",
		}),
		Problem: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "keyward_redis_problem", Help: "1 while Redis has this problem: unreachable, protected_mode (DENIED), auth, eviction_policy (maxmemory-policy is not noeviction).",
		}, []string{"problem"}),
		RoundTrips: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyward_redis_round_trips_total", Help: "Round trips to Redis from this replica: a command sent alone or a whole pipeline counts once.",
		}),
	}
	reg.MustRegister(r.MemoryUsed, r.MaxMemory, r.Problem, r.RoundTrips)
	for _, p := range RedisProblems {
		r.Problem.WithLabelValues(p)
	}
	return r
}

// SetProblem marks problem (one of RedisProblems, or "" for none) as the
// current one.
func (r *RedisHealth) SetProblem(problem string) {
	for _, p := range RedisProblems {
		v := 0.0
		if p == problem {
			v = 1
		}
		r.Problem.WithLabelValues(p).Set(v)
	}
}

// Hook is a go-redis hook counting round trips into RoundTrips.
func (r *RedisHealth) Hook() redis.Hook { return roundTripHook{r.RoundTrips} }

type roundTripHook struct{ c prometheus.Counter }

func (roundTripHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h roundTripHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.c.Inc()
		return next(ctx, cmd)
	}
}

func (h roundTripHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.c.Inc()
		return next(ctx, cmds)
	}
}
