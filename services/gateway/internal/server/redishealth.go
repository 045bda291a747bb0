package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keyward/keyward/services/gateway/internal/metrics"
)

// redisHealth checks, every interval, that the shared Redis works the way
// keyward needs: reachable and accepting this client (protected mode
// refuses non-loopback clients with DENIED when no password is set, while
// every health check of Redis itself stays green), and never evicting keys
// (an evicted budget key is a budget reset). It reports on /ready and in
// metrics, and while the limiter is off Redis it says so in the log every
// minute, so "running on per-replica limits" cannot go unnoticed.
type redisHealth struct {
	rc       redis.UniversalClient
	m        *metrics.RedisHealth
	log      *slog.Logger
	backend  func() string // the limiter's state: redis, degraded
	mode     string        // KEYWARD_REDIS_FAILURE_MODE
	interval time.Duration
	warnGap  time.Duration

	mu       sync.Mutex
	problem  string
	detail   string
	lastWarn time.Time
}

func (h *redisHealth) run(ctx context.Context) {
	t := time.NewTicker(h.interval)
	defer t.Stop()
	for {
		h.check(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// state returns the current problem ("" when none) and a human detail.
func (h *redisHealth) state() (string, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.problem, h.detail
}

func (h *redisHealth) check(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	info, err := h.rc.Info(cctx, "memory").Result()
	cancel()
	if ctx.Err() != nil {
		return
	}
	problem, detail := "", ""
	if err != nil {
		h.m.MemoryUsed.Set(0)
		h.m.MaxMemory.Set(0)
		problem, detail = classifyRedisError(err)
		if problem == "unreachable" {
			// Protected mode answers the connection itself with DENIED
			// and closes it; go-redis reports that as EOF. Ask Redis on
			// a connection of our own and read its first line.
			if p, d := rawProbe(ctx, h.rc); p != "" {
				problem, detail = p, d
			}
		}
	} else {
		f := infoFields(info)
		h.m.MemoryUsed.Set(parseBytes(f["used_memory"]))
		h.m.MaxMemory.Set(parseBytes(f["maxmemory"]))
		if p := f["maxmemory_policy"]; p != "" && p != "noeviction" {
			problem = "eviction_policy"
			detail = fmt.Sprintf("Redis maxmemory-policy is %s: a full Redis evicts keys, and an evicted budget key resets a budget; set maxmemory-policy noeviction", p)
		}
	}
	h.m.SetProblem(problem)

	h.mu.Lock()
	changed := problem != h.problem
	h.problem, h.detail = problem, detail
	now := time.Now()
	degraded := h.backend() != "redis"
	warn := changed && problem != "" || degraded && now.Sub(h.lastWarn) >= h.warnGap
	if warn {
		h.lastWarn = now
	}
	h.mu.Unlock()
	switch {
	case warn && degraded:
		h.log.Warn("rate limits are not shared: Redis cannot be used, this replica applies the failure mode on its own",
			"failure_mode", h.mode, "ratelimit_problem", problem, "detail", detail)
	case warn:
		h.log.Warn("Redis is not configured as keyward needs", "ratelimit_problem", problem, "detail", detail)
	case changed:
		h.log.Info("Redis problem cleared")
	}
}

// classifyRedisError names why a Redis command failed. The messages are
// Redis's own: "DENIED Redis is running in protected mode …",
// "NOAUTH …", "WRONGPASS …".
func classifyRedisError(err error) (string, string) {
	msg := err.Error()
	switch {
	case strings.HasPrefix(msg, "DENIED"):
		return "protected_mode", "Redis refuses this client: it runs in protected mode with no password, so only loopback clients are accepted; set a password (KEYWARD_REDIS_PASSWORD_FILE) or protected-mode no on a private network"
	case strings.HasPrefix(msg, "NOAUTH"), strings.HasPrefix(msg, "WRONGPASS"), strings.Contains(msg, "invalid password"):
		return "auth", "Redis refuses the gateway's credentials: check KEYWARD_REDIS_PASSWORD_FILE or the URL's user and password"
	}
	return "unreachable", "Redis cannot be reached"
}

// rawProbe sends PING on a fresh connection made with the client's own
// dialer (TLS, Sentinel resolution included) and classifies Redis's first
// answer line; "" when it cannot tell.
func rawProbe(ctx context.Context, rc redis.UniversalClient) (string, string) {
	c, ok := rc.(*redis.Client)
	if !ok {
		return "", ""
	}
	opts := c.Options()
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	conn, err := opts.Dialer(ctx, opts.Network, opts.Addr)
	if err != nil {
		return "", ""
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	_, _ = conn.Write([]byte("PING\r\n"))
	line, err := bufio.NewReader(io.LimitReader(conn, 4096)).ReadString('\n')
	if err != nil && line == "" {
		return "", ""
	}
	if strings.HasPrefix(line, "-") {
		if p, d := classifyRedisError(errors.New(strings.TrimSpace(line[1:]))); p != "unreachable" {
			return p, d
		}
	}
	return "", ""
}

func infoFields(info string) map[string]string {
	f := make(map[string]string, 32)
	for _, line := range strings.Split(info, "\n") {
		line = strings.TrimSpace(line)
		if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, "#") {
			f[k] = v
		}
	}
	return f
}

func parseBytes(s string) float64 {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0
	}
	return float64(n)
}

// readyRedis adds to /ready's body why Redis cannot be used as it should
// (ratelimit_problem, ratelimit_detail), and, while the limiter is off
// Redis, what it does instead (ratelimit_fallback: local means per-replica
// limits). Readiness itself does not change: a replica on its fallback
// still serves, as KEYWARD_REDIS_FAILURE_MODE says.
func (s *Server) readyRedis(body map[string]any, backend string) {
	if s.redisHealth != nil {
		if p, d := s.redisHealth.state(); p != "" {
			body["ratelimit_problem"], body["ratelimit_detail"] = p, d
		}
	}
	if backend == "degraded" {
		body["ratelimit_fallback"] = s.cfg.FailureMode
	}
}
