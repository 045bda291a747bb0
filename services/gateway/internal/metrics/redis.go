package metrics

import "github.com/prometheus/client_golang/prometheus"

// RedisProblems are the values of keyward_redis_problem's label: what keeps
// the shared Redis from serving keyward as it needs.
var RedisProblems = []string{"unreachable", "protected_mode", "auth", "eviction_policy"}

// RedisHealth is what the gateway knows about its Redis beyond up/down
// (keyward_ratelimit_backend_up): memory use, and why it cannot be used.
type RedisHealth struct {
	MemoryUsed prometheus.Gauge
	MaxMemory  prometheus.Gauge
	Problem    *prometheus.GaugeVec
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
	}
	reg.MustRegister(r.MemoryUsed, r.MaxMemory, r.Problem)
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
