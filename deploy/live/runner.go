package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	mockKey   = "mock-server-key-live-0123456789abcdef"
	jwtSecret = "live-stage-jwt-secret-0123456789abcdef"
	// heavySpendUSD is what the heavy-spend phase spends, in calls of about $0.10.
	heavySpendUSD = 4.0
	// spendAlertUSDPerHour is alerts.spend_usd_per_hour: above the baseline traffic's
	// spend, below each job's share of the heavy spend (the canary job gets a third).
	spendAlertUSDPerHour = 0.8
)

type runner struct {
	o        options
	ps       *procs
	failures []string

	redisAddr string
	redis     *proc
	redisArgs []string
	mockURL   string
	gws       []*gateway
	prom      promAPI
	promURL   string

	start       time.Time // first traffic
	scraped     time.Time // every gateway scraped
	burnEnabled bool
	budgetUSD   float64
	expectedAll map[string]bool // every alert key expected so far
}

func (r *runner) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	fmt.Println("  FAIL:", msg)
	r.failures = append(r.failures, msg)
}

func (r *runner) run(ctx context.Context) error {
	if err := r.setup(ctx); err != nil {
		return err
	}
	var wg sync.WaitGroup
	bgCtx, stopBg := context.WithCancel(ctx)
	defer func() { stopBg(); wg.Wait() }()
	baseline := &statusCounts{}
	r.start = time.Now()
	// Baseline traffic for the whole run: cheap messages and count_tokens calls, so every
	// ratio has a denominator and every dashboard panel has data.
	loop(bgCtx, &wg, r.gws, 300*time.Millisecond, func(ctx context.Context, g *gateway) {
		baseline.add(message(ctx, g, cheapModel, "hello [[mock:output_tokens=8]]", 16, nil))
	})
	loop(bgCtx, &wg, r.gws, time.Second, func(ctx context.Context, g *gateway) {
		baseline.add(countTokens(ctx, g, "how many tokens is this"))
	})
	if err := r.waitScraped(ctx); err != nil {
		return err
	}
	r.expectedAll = map[string]bool{}
	for _, ph := range r.phases() {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.runPhase(ctx, ph)
		fmt.Printf("  baseline answers during the phase: %v\n", baseline.snapshot())
	}
	r.checkDashboard(ctx)
	// From here the run mostly waits for a 5-minute boundary: say so to
	// test-live, which starts its other stages meanwhile.
	if f := os.Getenv("KEYWARD_LIVE_WAITING_FILE"); f != "" {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			fmt.Printf("  could not write %s: %v\n", f, err)
		}
	}
	r.checkRecordingRule(ctx)
	r.checkRuleHealth(ctx) // last: it covers every evaluation of the run
	return nil
}

func (r *runner) setup(ctx context.Context) error {
	dir := r.o.workDir
	fmt.Printf("live: work directory %s\n", dir)
	for _, b := range []string{"gateway", "mockanthropic"} {
		if _, err := os.Stat(filepath.Join(r.o.bin, b)); err != nil {
			return fmt.Errorf("%s: %w (run make build)", b, err)
		}
	}

	// Redis: loopback, no persistence, a maxmemory with noeviction as deployed.
	port, err := freePort()
	if err != nil {
		return err
	}
	r.redisAddr = "127.0.0.1:" + itoa(port)
	r.redisArgs = []string{"--port", itoa(port), "--bind", "127.0.0.1", "--protected-mode", "yes", "--save", "",
		"--appendonly", "no", "--dir", dir, "--maxmemory", "64mb", "--maxmemory-policy", "noeviction"}
	if err := r.startRedis(ctx); err != nil {
		return err
	}

	// The mock upstream.
	if port, err = freePort(); err != nil {
		return err
	}
	r.mockURL = "http://127.0.0.1:" + itoa(port)
	mock, err := r.ps.start("mockanthropic", filepath.Join(r.o.bin, "mockanthropic"), nil,
		[]string{"MOCKANTHROPIC_ADDR=127.0.0.1:" + itoa(port), "MOCKANTHROPIC_API_KEY=" + mockKey})
	if err != nil {
		return err
	}
	if err := waitHTTP(ctx, mock, r.mockURL+"/_mock/health", "", 20*time.Second); err != nil {
		return err
	}

	// The budget for KeywardDailyBudgetBurn: the alert projects the last hour's spend rate
	// to midnight UTC, so the heavy spend only projects past the cap when enough of the day
	// is left. The cap must stay above what is really spent, or callers get 429.
	now := time.Now().UTC()
	remaining := now.Truncate(24*time.Hour).Add(24*time.Hour).Sub(now).Seconds() - (r.o.timeout + time.Minute).Seconds()
	factor := 1 + remaining/3600
	canaryHeavy := heavySpendUSD / 3
	r.budgetUSD = math.Round(0.6*canaryHeavy*factor*100) / 100
	r.burnEnabled = r.budgetUSD >= 1.6*(heavySpendUSD+1) && remaining > 0
	if !r.burnEnabled {
		r.budgetUSD = 1000
		fmt.Printf("live: %.0f s left of the UTC day: too few for a budget-burn projection to exceed a cap the run stays under; KeywardDailyBudgetBurn is not expected\n", remaining)
	}
	cfgPath := filepath.Join(dir, "keyward.yaml")
	cfg := fmt.Sprintf("limits:\n  global_daily_budget_usd: %g\nalerts:\n  spend_usd_per_hour: %g\n", r.budgetUSD, spendAlertUSDPerHour)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return err
	}

	// Three gateways: job "keyward" (two replicas) and job "keyward-canary" (one).
	for i, job := range []string{"keyward", "keyward", "keyward-canary"} {
		p1, err := freePort()
		if err != nil {
			return err
		}
		p2, err := freePort()
		if err != nil {
			return err
		}
		g := &gateway{name: fmt.Sprintf("gateway%d", i+1), job: job, url: "http://127.0.0.1:" + itoa(p1),
			metricsURL: "http://127.0.0.1:" + itoa(p2) + "/metrics"}
		env := []string{
			"KEYWARD_ADDR=127.0.0.1:" + itoa(p1),
			"KEYWARD_METRICS_ADDR=127.0.0.1:" + itoa(p2),
			"KEYWARD_UPSTREAM_URL=" + r.mockURL,
			"ANTHROPIC_API_KEY=" + mockKey,
			"KEYWARD_REDIS_URL=redis://" + r.redisAddr + "/0",
			"KEYWARD_REDIS_FAILURE_MODE=local",
			"KEYWARD_RATE_LIMIT=100000/60s",
			"KEYWARD_ALLOWED_MODELS=" + cheapModel + "," + heavyModel,
			"KEYWARD_CONFIG=" + cfgPath,
			"KEYWARD_JWT_SECRET=" + jwtSecret,
			// Each error counts once and reaches the upstream: the breaker is left out here
			// (KeywardCircuitBreakerOpen needs it open for 2.5 of 5 minutes; promtool covers it).
			"KEYWARD_UPSTREAM_MAX_RETRIES=0",
			"KEYWARD_UPSTREAM_BREAKER_THRESHOLD=0",
			"KEYWARD_SHUTDOWN_DELAY=0s",
			"KEYWARD_SHUTDOWN_TIMEOUT=5s",
			"KEYWARD_LOG_LEVEL=warn",
		}
		if g.p, err = r.ps.start(g.name, filepath.Join(r.o.bin, "gateway"), nil, env); err != nil {
			return err
		}
		r.gws = append(r.gws, g)
	}
	for _, g := range r.gws {
		if err := waitHTTP(ctx, g.p, g.url+"/ready", `"ratelimit":"redis"`, 30*time.Second); err != nil {
			return err
		}
	}

	// Prometheus of the pinned version, with the rules copy.
	shipped, err := os.ReadFile(r.o.rules)
	if err != nil {
		return err
	}
	short, n := shortenFor(shipped, r.o.shortFor)
	rulesPath := filepath.Join(dir, "keyward-alerts.live.yaml")
	if err := os.WriteFile(rulesPath, short, 0o644); err != nil {
		return err
	}
	fmt.Printf("live: rules copy %s: %d `for:` values set to %s, nothing else changed\n", rulesPath, n, r.o.shortFor)
	promCfg, err := writePrometheusConfig(dir, rulesPath, r.gws)
	if err != nil {
		return err
	}
	if port, err = freePort(); err != nil {
		return err
	}
	r.promURL = "http://127.0.0.1:" + itoa(port)
	r.prom = promAPI{base: r.promURL}
	prom, err := r.ps.start("prometheus", r.o.prometheus, []string{
		"--config.file=" + promCfg,
		"--storage.tsdb.path=" + filepath.Join(dir, "tsdb"),
		"--web.listen-address=127.0.0.1:" + itoa(port),
		"--log.level=warn",
	}, nil)
	if err != nil {
		return err
	}
	if err := waitHTTP(ctx, prom, r.promURL+"/-/ready", "", 60*time.Second); err != nil {
		return err
	}
	out, _ := runCmd(ctx, r.o.prometheus, "--version")
	fmt.Printf("live: %s\n", firstLine(out))
	return nil
}

func (r *runner) startRedis(ctx context.Context) error {
	p, err := r.ps.start("redis", r.o.redisServer, r.redisArgs, nil)
	if err != nil {
		return err
	}
	r.redis = p
	return waitRedis(ctx, p, r.redisAddr, 15*time.Second)
}

// waitScraped waits until Prometheus scrapes every gateway and has evaluated the rules on
// that data, so the healthy phase starts from a steady state.
func (r *runner) waitScraped(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		v, ok, err := r.prom.scalar(ctx, `count(up{job=~"keyward.*"} == 1)`, time.Time{})
		if err == nil && ok && int(v) == len(r.gws) {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("prometheus does not scrape all %d gateways after 60 s (err %v)", len(r.gws), err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	r.scraped = time.Now()
	// A few evaluation rounds on real data (rules are evaluated every second).
	time.Sleep(3 * time.Second)
	return nil
}

// phase is one scripted situation and the alerts it must raise.
type phase struct {
	name    string
	expect  []string // alert keys (promAlert.key) that must start firing
	quiet   time.Duration
	timeout time.Duration
	skip    string
	// act starts the situation and returns what ends it (called once the alerts fired).
	act func(ctx context.Context) (end func(), err error)
}

func key(alert, job string, extra ...string) string {
	k := alert + "{job=" + job + ",namespace=live"
	for _, e := range extra {
		k += "," + e
	}
	return k + "}"
}

func both(alert string, extra ...string) []string {
	return []string{key(alert, "keyward", extra...), key(alert, "keyward-canary", extra...)}
}

func (r *runner) runPhase(ctx context.Context, ph phase) {
	fmt.Printf("\n== phase %q\n", ph.name)
	if ph.skip != "" {
		fmt.Printf("  skipped: %s\n", ph.skip)
		return
	}
	before := map[string]bool{}
	if als, err := r.prom.alerts(ctx); err == nil {
		for _, a := range als {
			if a.State == "firing" {
				before[a.key()] = true
			}
		}
	}
	for _, k := range ph.expect {
		r.expectedAll[k] = true
	}
	start := time.Now()
	end, err := ph.act(ctx)
	if err != nil {
		r.fail("phase %s: %v", ph.name, err)
		return
	}
	fired := map[string]time.Duration{}
	pendingAt := map[string]time.Duration{}
	unexpected := map[string]bool{}
	deadline := start.Add(ph.timeout)
	for {
		als, err := r.prom.alerts(ctx)
		if err != nil {
			r.fail("phase %s: /api/v1/alerts: %v", ph.name, err)
			break
		}
		for _, a := range als {
			k := a.key()
			if ph.quiet > 0 {
				// The healthy phase: nothing may even be pending.
				if !unexpected[k] {
					unexpected[k] = true
					r.fail("phase %s: %s is %s (value %s) on a healthy stack", ph.name, k, a.State, a.Value)
				}
				continue
			}
			if a.State != "firing" || before[k] {
				continue
			}
			if _, seen := fired[k]; !seen {
				fired[k] = time.Since(start)
				pendingAt[k] = a.ActiveAt.Sub(start)
			}
		}
		done := true
		for _, k := range ph.expect {
			if _, ok := fired[k]; !ok {
				done = false
			}
		}
		if ph.quiet > 0 {
			done = time.Since(start) >= ph.quiet
		}
		if done || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if end != nil {
		end()
	}
	if ph.quiet > 0 && len(unexpected) == 0 {
		fmt.Printf("  no alert pending or firing during %s of traffic\n", ph.quiet)
	}
	for _, k := range sortedKeys(fired) {
		tag := ""
		switch {
		case contains(ph.expect, k):
			tag = "expected"
		case r.expectedAll[k]:
			tag = "re-fired: an earlier phase's condition"
		default:
			tag = "UNEXPECTED"
			r.fail("phase %s: %s fired but this phase does not cause it", ph.name, k)
		}
		fmt.Printf("  fired %-72s after %5.1f s (pending from %5.1f s) [%s]\n", k, fired[k].Seconds(), math.Max(0, pendingAt[k].Seconds()), tag)
	}
	for _, k := range ph.expect {
		if _, ok := fired[k]; !ok {
			r.fail("phase %s: %s did not fire within %s", ph.name, k, ph.timeout)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// burst runs fn every interval against the live gateways until the returned end is called.
func (r *runner) burst(ctx context.Context, interval time.Duration, fn func(context.Context, *gateway) int) (func(), *statusCounts) {
	c, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	counts := &statusCounts{}
	loop(c, &wg, r.gws, interval, func(ctx context.Context, g *gateway) { counts.add(fn(ctx, g)) })
	return func() { cancel(); wg.Wait() }, counts
}

func (r *runner) phases() []phase {
	var phs []phase
	phs = append(phs, phase{
		name: "healthy", quiet: 20 * time.Second, timeout: 30 * time.Second,
		act: func(ctx context.Context) (func(), error) { return nil, nil },
	})
	phs = append(phs, phase{
		name:    "error storm (upstream 500s)",
		expect:  append(both("KeywardHighErrorRate"), both("KeywardUpstreamErrors")...),
		timeout: 90 * time.Second,
		act: func(ctx context.Context) (func(), error) {
			end, counts := r.burst(ctx, 50*time.Millisecond, func(ctx context.Context, g *gateway) int {
				return message(ctx, g, cheapModel, "fail [[mock:status=500]]", 16, nil)
			})
			return func() { end(); fmt.Printf("  storm answers: %v\n", counts.snapshot()) }, nil
		},
	})
	phs = append(phs, phase{
		name:    "upstream rejects the API key (401)",
		expect:  both("KeywardUpstreamKeyRejected"),
		timeout: 60 * time.Second,
		act: func(ctx context.Context) (func(), error) {
			// Exactly 10 rejected calls per job: the alert's value must say so.
			counts := &statusCounts{}
			var wg sync.WaitGroup
			for _, g := range r.gws {
				n := 5
				if g.job == "keyward-canary" {
					n = 10
				}
				for range n {
					wg.Add(1)
					go func() {
						defer wg.Done()
						counts.add(message(ctx, g, cheapModel, "key [[mock:status=401]]", 16, nil))
					}()
				}
			}
			wg.Wait()
			return func() {
				fmt.Printf("  answers to the 20 rejected calls: %v\n", counts.snapshot())
				r.reportKeyRejectedValues(ctx)
			}, nil
		},
	})
	phs = append(phs, phase{
		name:    "slow upstream (count_tokens answers after 2.5 s)",
		expect:  both("KeywardHighLatency", "route=/v1/messages/count_tokens"),
		timeout: 90 * time.Second,
		act: func(ctx context.Context) (func(), error) {
			end, counts := r.burst(ctx, 200*time.Millisecond, func(ctx context.Context, g *gateway) int {
				return countTokens(ctx, g, "slow [[mock:first_byte_ms=2500]]")
			})
			return func() { end(); fmt.Printf("  slow answers (0: cut off at the phase's end): %v\n", counts.snapshot()) }, nil
		},
	})
	heavy := phase{
		name:    fmt.Sprintf("heavy spend ($%.0f of %s output)", heavySpendUSD, heavyModel),
		expect:  both("KeywardTokenSpendHigh"),
		timeout: 120 * time.Second,
		act: func(ctx context.Context) (func(), error) {
			before := r.totalCost(ctx)
			counts := &statusCounts{}
			var wg sync.WaitGroup
			sem := make(chan struct{}, 4)
			calls := int(heavySpendUSD / 0.1)
			live := r.gws
			for i := range calls {
				g := live[i%len(live)]
				wg.Add(1)
				sem <- struct{}{}
				go func() {
					defer func() { <-sem; wg.Done() }()
					counts.add(message(ctx, g, heavyModel, "spend [[mock:output_tokens=4000]]", 4096, nil))
				}()
			}
			wg.Wait()
			fmt.Printf("  %d heavy calls: %v, spent $%.2f (cap $%.2f, spend alert $%.2f/h)\n", calls, counts.snapshot(),
				r.totalCost(ctx)-before, r.budgetUSD, spendAlertUSDPerHour)
			return nil, nil
		},
	}
	if r.burnEnabled {
		heavy.expect = append(heavy.expect, both("KeywardDailyBudgetBurn")...)
	}
	phs = append(phs, heavy)

	memSkip := ""
	if _, ok, _ := metricSum(context.Background(), r.gws[0].metricsURL, "keyward_redis_memory_used_bytes"); !ok {
		memSkip = "this gateway build does not export keyward_redis_memory_used_bytes (the hardening branch adds it; make test-metrics-names reports the same)"
	}
	phs = append(phs, phase{
		name:    "Redis memory above 80% of maxmemory",
		expect:  both("KeywardRedisMemoryHigh"),
		timeout: 120 * time.Second,
		skip:    memSkip,
		act:     r.fillRedis,
	})
	phs = append(phs, phase{
		name:    "Redis down",
		expect:  both("KeywardRateLimitBackendDown"),
		timeout: 90 * time.Second,
		act: func(ctx context.Context) (func(), error) {
			r.redis.stop(5 * time.Second)
			return func() {
				if err := r.startRedis(ctx); err != nil {
					r.fail("restarting redis: %v", err)
					return
				}
				t := time.Now()
				for _, g := range r.gws {
					if err := waitHTTP(ctx, g.p, g.url+"/ready", `"ratelimit":"redis"`, 60*time.Second); err != nil {
						r.fail("after Redis came back: %v", err)
					}
				}
				fmt.Printf("  Redis restarted; every replica reports \"ratelimit\":\"redis\" again after %.1f s\n", time.Since(t).Seconds())
			}, nil
		},
	})
	phs = append(phs, phase{
		name:    "authentication failures (forged bearer tokens)",
		expect:  both("KeywardAuthFailureSpike"),
		timeout: 90 * time.Second,
		act: func(ctx context.Context) (func(), error) {
			hdr := map[string]string{"Authorization": "Bearer not-a-jwt"}
			end, counts := r.burst(ctx, 20*time.Millisecond, func(ctx context.Context, g *gateway) int {
				return message(ctx, g, cheapModel, "hello", 16, hdr)
			})
			return func() { end(); fmt.Printf("  forged-token answers: %v\n", counts.snapshot()) }, nil
		},
	})
	phs = append(phs, phase{
		name:    "one replica of job keyward down",
		expect:  []string{key("KeywardReplicaDown", "keyward")},
		timeout: 60 * time.Second,
		act: func(ctx context.Context) (func(), error) {
			r.gws[1].down.Store(true)
			r.gws[1].p.stop(10 * time.Second)
			return nil, nil
		},
	})
	phs = append(phs, phase{
		name:    "whole job keyward-canary down while job keyward is up",
		expect:  []string{key("KeywardDown", "keyward-canary")},
		timeout: 60 * time.Second,
		act: func(ctx context.Context) (func(), error) {
			r.gws[2].down.Store(true)
			r.gws[2].p.stop(10 * time.Second)
			return nil, nil
		},
	})
	return phs
}

// reportKeyRejectedValues prints the value KeywardUpstreamKeyRejected reports per job, next
// to the number of rejected calls really made; the alert used to undercount them. The alert
// fires on the first evaluation that sees one replica's 401s, so the value is polled until
// every replica's have been scraped (a few seconds), then compared.
func (r *runner) reportKeyRejectedValues(ctx context.Context) {
	want := map[string]float64{"keyward": 10, "keyward-canary": 10}
	got := map[string]float64{}
	deadline := time.Now().Add(15 * time.Second)
	for {
		als, err := r.prom.alerts(ctx)
		if err != nil {
			r.fail("reading KeywardUpstreamKeyRejected: %v", err)
			return
		}
		for _, a := range als {
			if a.Labels["alertname"] == "KeywardUpstreamKeyRejected" {
				var v float64
				fmt.Sscan(a.Value, &v)
				got[a.Labels["job"]] = v
			}
		}
		settled := true
		for job, w := range want {
			if math.Abs(got[job]-w) > 0.5 {
				settled = false
			}
		}
		if settled || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	for _, job := range sortedKeys(want) {
		fmt.Printf("  KeywardUpstreamKeyRejected{job=%s} reports %.3g rejected calls (made: %.0f)\n", job, got[job], want[job])
		if math.Abs(got[job]-want[job]) > 0.5 {
			r.fail("KeywardUpstreamKeyRejected{job=%s} counts %.3g rejected calls, %.0f were made", job, got[job], want[job])
		}
	}
}

func (r *runner) totalCost(ctx context.Context) float64 {
	var sum float64
	for _, g := range r.gws {
		if g.down.Load() {
			continue
		}
		v, _, _ := metricSum(ctx, g.metricsURL, "keyward_cost_usd_total")
		sum += v
	}
	return sum
}

// fillRedis writes 1 MiB values until Redis itself reports 85% of its maxmemory in use
// (INFO memory, not the gateway's gauge, which lags by its refresh interval); the end, or a
// failure half-way, deletes them again.
func (r *runner) fillRedis(ctx context.Context) (func(), error) {
	val := strings.Repeat("x", 1<<20)
	var keys []string
	clean := func() {
		for _, k := range keys {
			_, _ = redisCmd(r.redisAddr, "DEL", k)
		}
	}
	for i := 0; i < 64; i++ {
		used, err := redisInfoField(r.redisAddr, "memory", "used_memory")
		if err != nil {
			clean()
			return nil, err
		}
		if u, _ := strconv.ParseFloat(used, 64); u > 0.85*float64(64<<20) {
			fmt.Printf("  Redis used_memory %.1f MiB of 64 MiB after %d MiB written\n", u/(1<<20), len(keys))
			return clean, nil
		}
		k := fmt.Sprintf("live:fill:%d", i)
		if _, err := redisCmd(r.redisAddr, "SET", k, val); err != nil {
			clean()
			return nil, fmt.Errorf("filling redis: %w", err)
		}
		keys = append(keys, k)
	}
	clean()
	return nil, fmt.Errorf("redis never reached 85%% of maxmemory")
}

func (r *runner) checkRuleHealth(ctx context.Context) {
	fmt.Printf("\n== rule evaluation\n")
	v, ok, err := metricSum(ctx, r.promURL+"/metrics", "prometheus_rule_evaluation_failures_total")
	switch {
	case err != nil || !ok:
		r.fail("reading prometheus_rule_evaluation_failures_total: %v (found %v)", err, ok)
	case v != 0:
		r.fail("prometheus_rule_evaluation_failures_total = %g", v)
	default:
		fmt.Println("  prometheus_rule_evaluation_failures_total = 0")
	}
	rules, err := r.prom.rules(ctx)
	if err != nil {
		r.fail("/api/v1/rules: %v", err)
		return
	}
	bad := 0
	for _, rl := range rules {
		if rl.Health != "ok" {
			bad++
			r.fail("rule %s: health %q: %s", rl.Name, rl.Health, rl.LastError)
		}
	}
	fmt.Printf("  %d rules, %d unhealthy\n", len(rules), bad)
}

// checkRecordingRule compares keyward:cost_usd:spent_today_utc with the summed cost
// counters at the last 5-minute boundary the rule's subquery has reached. Counters of
// replicas stopped earlier count with their last value. The boundary must lie at least
// 150 s after the first scrape: increase() extrapolates each slot up to one scrape interval
// beyond its samples, which is 1/150 = 0.7% of a slot in which the series only existed for
// 150 s (and about 0.3% of a whole slot), so the 1% bound holds for a freshly started stack.
func (r *runner) checkRecordingRule(ctx context.Context) {
	fmt.Printf("\n== recording rule keyward:cost_usd:spent_today_utc\n")
	const step = 5 * time.Minute
	earliest := r.scraped.Add(150 * time.Second)
	var tb time.Time
	for {
		tb = time.Now().Add(-3 * time.Second).Truncate(step)
		if !tb.Before(earliest) {
			break
		}
		next := earliest.Truncate(step).Add(step)
		if next.Before(earliest) {
			next = next.Add(step)
		}
		fmt.Printf("  no 5-minute boundary 150 s after the first scrape yet: waiting until %s\n", next.Add(3*time.Second).UTC().Format("15:04:05"))
		select {
		case <-ctx.Done():
			r.fail("recording rule: run ended before a 5-minute boundary passed")
			return
		case <-time.After(time.Until(next.Add(3500 * time.Millisecond))):
		}
	}
	if tb.UTC().Truncate(24*time.Hour) != r.start.UTC().Truncate(24*time.Hour) {
		fmt.Println("  skipped: the run crossed midnight UTC, so 'today' is not the whole run")
		return
	}
	rec, ok1, err1 := r.prom.scalar(ctx, `sum(keyward:cost_usd:spent_today_utc)`, tb.Add(3*time.Second))
	cnt, ok2, err2 := r.prom.scalar(ctx, `sum(last_over_time(keyward_cost_usd_total[1d]))`, tb)
	if err1 != nil || err2 != nil || !ok1 || !ok2 {
		r.fail("recording rule: query failed (%v, %v; data %v %v)", err1, err2, ok1, ok2)
		return
	}
	diff := 0.0
	if cnt > 0 {
		diff = (rec - cnt) / cnt
	}
	fmt.Printf("  at %s: recorded $%.4f, summed counters $%.4f, difference %+.3f%%\n", tb.UTC().Format("15:04:05"), rec, cnt, 100*diff)
	if cnt <= 0 || math.Abs(diff) > 0.01 {
		r.fail("recording rule: $%.4f recorded vs $%.4f counted (%+.2f%%, allowed 1%%)", rec, cnt, 100*diff)
	}
}

func (r *runner) checkDashboard(ctx context.Context) {
	fmt.Printf("\n== dashboard queries\n")
	qs, vars, err := dashboardQueries(r.o.dashboard)
	if err != nil {
		r.fail("dashboard: %v", err)
		return
	}
	rng := fmt.Sprintf("%ds", int(time.Since(r.start).Seconds()))
	empty := 0
	for _, q := range qs {
		expr := expandGrafana(q.expr, rng)
		v, err := r.prom.query(ctx, expr, time.Time{})
		switch {
		case err != nil:
			empty++
			r.fail("dashboard panel %q: %v", q.panel, err)
		case len(v) == 0:
			empty++
			r.fail("dashboard panel %q returns no data: %s", q.panel, expr)
		}
	}
	for _, v := range vars {
		expr := expandGrafana(v.expr, rng)
		series, err := r.prom.query(ctx, "count by ("+v.label+") ("+v.metric+")", time.Time{})
		if err != nil || len(series) == 0 {
			empty++
			r.fail("dashboard variable %s (%s): no values (%v)", v.name, expr, err)
		}
	}
	sort.Slice(qs, func(i, j int) bool { return qs[i].panel < qs[j].panel })
	fmt.Printf("  %d panel queries and %d variables, %d without data\n", len(qs), len(vars), empty)
}
