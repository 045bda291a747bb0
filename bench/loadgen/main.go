// Command loadgen is keyward's end-to-end load run: it starts a real
// redis-server, the mock upstream and the gateway on free loopback ports,
// sends the same Anthropic-style requests straight to the mock and through
// the gateway, and reports requests/s, latency percentiles, gateway CPU per
// request (from /proc/<pid>/stat), Redis commands per request (from INFO
// commandstats) and gateway RSS — then checks them against the targets of
// issue 15. The mock serves HTTPS with HTTP/2, as the real upstream does. It is its own module (run with GOWORK=off) with no dependencies
// outside the standard library.
//
//	GOWORK=off go run . -bin ../../bin [-n 20000] [-c 32] [-md summary.md]
//
// Every request goes to 127.0.0.1 and every phase is bounded in count and
// time.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

type options struct {
	bin        string
	redis      string
	n          int
	c          int
	n1         int
	streamN    int
	budgetN    int
	longN      int
	open       int
	warmup     int
	md         string
	phaseLimit time.Duration
	profile    string
	gwEnv      string
	baseline   bool
	plainHTTP  bool
	nginx      string
}

// limits are the gateway's stream and in-flight caps: high enough that the
// open-streams phase is never refused (its target is 10,000 at once).
func (o options) limits() (streams, inflight int) {
	return max(2000, o.open), max(4096, o.open+o.c)
}

func main() {
	if spec := os.Getenv(bareProxyEnv); spec != "" {
		fmt.Fprintln(os.Stderr, "bare proxy:", serveBareProxy(spec))
		os.Exit(1)
	}
	var o options
	flag.StringVar(&o.bin, "bin", "bin", "directory holding the gateway and mockanthropic binaries")
	flag.StringVar(&o.redis, "redis-server", "redis-server", "redis-server binary")
	flag.IntVar(&o.n, "n", 30000, "requests per throughput phase")
	flag.IntVar(&o.c, "c", 32, "concurrency of the throughput phases")
	flag.IntVar(&o.n1, "n1", 2000, "requests per concurrency-1 latency phase")
	flag.IntVar(&o.streamN, "stream-n", 5000, "streams per streaming phase")
	flag.IntVar(&o.budgetN, "budget-n", 4000, "requests in the token+budget limits phase")
	flag.IntVar(&o.longN, "long-n", 100, "20,000-token streams in the live-enforcement phase")
	flag.IntVar(&o.open, "open", 10000, "streams held open at once in the memory phase (issue 15's target is for 10,000)")
	flag.IntVar(&o.warmup, "warmup", 1000, "warm-up requests before measuring")
	flag.StringVar(&o.md, "md", "", "also write the summary as Markdown to this file")
	flag.DurationVar(&o.phaseLimit, "phase-timeout", 90*time.Second, "upper bound on each phase")
	flag.BoolVar(&o.plainHTTP, "plain-upstream", false, "serve the mock over plain http instead of HTTPS with HTTP/2 (the hop production runs to api.anthropic.com)")
	flag.BoolVar(&o.baseline, "baseline", true, "also measure a bare httputil.ReverseProxy (no limiter, metrics or log) as the calibration point")
	flag.StringVar(&o.nginx, "nginx", "nginx", "nginx binary for the nginx calibration rows, looked up in PATH and /usr/sbin (\"\" skips them)")
	flag.StringVar(&o.gwEnv, "gateway-env", "", "extra environment for the gateways, space-separated NAME=VALUE pairs (e.g. GOGC=200), for A/B runs")
	flag.StringVar(&o.profile, "profile", "", "write a CPU profile of the gateway per gateway phase into this directory (needs a gateway built with -tags pprof)")
	flag.Parse()
	if err := run(o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

const mockKey = "bench-mock-key"

// prompt is an ordinary short question; the directive makes the mock's
// answer a fixed length, so JSON and stream sizes are the same every run.
var prompt = strings.Repeat("Summarise last quarter's churn drivers for the enterprise segment. ", 6)

func messageBody(stream bool, outputTokens int, extra string) []byte {
	return messageBodyMax(stream, outputTokens, 1024, extra)
}

func messageBodyMax(stream bool, outputTokens, maxTokens int, extra string) []byte {
	text := prompt + "[[mock:output_tokens=" + strconv.Itoa(outputTokens) + extra + "]]"
	return fmt.Appendf(nil, `{"model":"claude-sonnet-4-5","max_tokens":%d,"stream":%t,"messages":[{"role":"user","content":%q}]}`, maxTokens, stream, text)
}

func headers() http.Header {
	return http.Header{
		"Content-Type":      {"application/json"},
		"Anthropic-Version": {"2023-06-01"},
		// The gateway ignores a caller's key (auth off); the mock needs its own.
		"X-Api-Key": {mockKey},
	}
}

type stack struct {
	dir     string
	redis   *proc
	rAddr   string
	mock    *proc
	mockURL string
	// caFile is the mock's generated CA (empty over plain http): the
	// gateway and the bare proxy trust it for the upstream hop.
	caFile string
	procs  []*proc
}

func (s *stack) close() {
	for i := len(s.procs) - 1; i >= 0; i-- {
		s.procs[i].stop()
	}
	_ = os.RemoveAll(s.dir)
}

type gateway struct {
	*proc
	url        string
	metricsURL string
	pprofURL   string // set with -profile
	profileDir string
	// withChildren: the work is done by child processes too (nginx's
	// workers); CPU, system calls and RSS are summed over all of them.
	withChildren bool
}

// pids is the process to measure, and with withChildren its children.
func (g *gateway) pids() []int {
	if !g.withChildren {
		return []int{g.pid()}
	}
	return append([]int{g.pid()}, childPIDs(g.pid())...)
}

// profile starts a CPU profile of the gateway for one phase and returns the
// function that stops it; without -profile both do nothing.
// longStreamTokens is the output of each stream in the live-enforcement
// phase: five 4,096-token slices.
const (
	longStreamTokens    = 20000
	longStreamMaxTokens = 32000 // what Claude Code sends
	longStreamPhase     = "gateway long stream, tokens+budgets"
	longStreamFullPhase = "gateway long stream, max_tokens reserved"
	budgetYAML          = "limits:\n  tokens_per_minute: 1000000000\n  daily_budget_usd: 1000000\n  global_daily_budget_usd: 10000000\n"
)

// roundTrips is the gateway's keyward_redis_round_trips_total; -1 when it
// has no metrics listener (the bare proxy).
func (g *gateway) roundTrips() float64 {
	if g.metricsURL == "" {
		return -1
	}
	return metricSum(g.metricsURL, "keyward_redis_round_trips_total")
}

func (g *gateway) profile(name string) func() {
	if g.pprofURL == "" {
		return func() {}
	}
	file := filepath.Join(g.profileDir, strings.NewReplacer(" ", "-", ",", "", "=", "", "+", "-").Replace(name)+".prof")
	resp, err := http.Post(g.pprofURL+"/cpu/start?file="+file, "", nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		fmt.Fprintf(os.Stderr, "loadgen: profile %s not started (gateway built with -tags pprof?)\n", name)
		return func() {}
	}
	resp.Body.Close()
	return func() {
		if resp, err := http.Post(g.pprofURL+"/cpu/stop", "", nil); err == nil {
			resp.Body.Close()
			fmt.Fprintf(os.Stderr, "loadgen: CPU profile of %q in %s\n", name, file)
		}
	}
}

func (s *stack) startGateway(o options, name, yaml string, extraEnv ...string) (*gateway, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	mport, err := freePort()
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(s.dir, name+".yaml")
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		return nil, fmt.Errorf("writing gateway config: %w", err)
	}
	env := []string{
		"KEYWARD_ADDR=127.0.0.1:" + strconv.Itoa(port),
		"KEYWARD_METRICS_ADDR=127.0.0.1:" + strconv.Itoa(mport),
		"KEYWARD_UPSTREAM_URL=" + s.mockURL,
		"KEYWARD_UPSTREAM_CA_FILE=" + s.caFile,
		"ANTHROPIC_API_KEY=" + mockKey,
		"KEYWARD_REDIS_URL=redis://" + s.rAddr + "/0",
		"KEYWARD_RATE_LIMIT=10000000/60s",
		// The per-identity call cap stays on (its lease is part of every
		// call's cost) but high enough that one load identity never hits it.
		"KEYWARD_MAX_CONCURRENT_CALLS=100000",
		"KEYWARD_CONFIG=" + cfgPath,
		"KEYWARD_LOG_LEVEL=info",
	}
	env = append(env, extraEnv...)
	env = append(env, strings.Fields(o.gwEnv)...)
	var pprofURL string
	if o.profile != "" {
		pport, err := freePort()
		if err != nil {
			return nil, err
		}
		env = append(env, "KEYWARD_PPROF_ADDR=127.0.0.1:"+strconv.Itoa(pport))
		pprofURL = "http://127.0.0.1:" + strconv.Itoa(pport)
	}
	p, err := startProc(name, filepath.Join(o.bin, "gateway"), nil, env, s.dir)
	if err != nil {
		return nil, err
	}
	s.procs = append(s.procs, p)
	g := &gateway{proc: p, url: "http://127.0.0.1:" + strconv.Itoa(port), metricsURL: "http://127.0.0.1:" + strconv.Itoa(mport) + "/metrics",
		pprofURL: pprofURL, profileDir: o.profile}
	if err := waitHTTP(p, g.url+"/ready"); err != nil {
		return nil, err
	}
	return g, nil
}

func startStack(o options) (*stack, error) {
	dir, err := os.MkdirTemp("", "keyward-bench-")
	if err != nil {
		return nil, err
	}
	s := &stack{dir: dir}
	rport, err := freePort()
	if err != nil {
		return s, err
	}
	s.rAddr = "127.0.0.1:" + strconv.Itoa(rport)
	s.redis, err = startProc("redis", o.redis, []string{"--port", strconv.Itoa(rport), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--protected-mode", "yes", "--daemonize", "no"}, nil, dir)
	if err != nil {
		return s, err
	}
	s.procs = append(s.procs, s.redis)
	if err := waitTCP(s.redis, s.rAddr); err != nil {
		return s, err
	}
	mport, err := freePort()
	if err != nil {
		return s, err
	}
	maddr := "127.0.0.1:" + strconv.Itoa(mport)
	s.mockURL = "http://" + maddr
	env := []string{
		"MOCKANTHROPIC_ADDR=" + maddr,
		"MOCKANTHROPIC_API_KEY=" + mockKey,
		// The mock is the stand-in upstream: its own request log is not
		// what is measured, and both paths hit the same mock.
		"MOCKANTHROPIC_LOG_LEVEL=warn",
	}
	if !o.plainHTTP {
		tlsDir := filepath.Join(dir, "mock-tls")
		env = append(env, "MOCKANTHROPIC_TLS_GENERATE="+tlsDir)
		s.mockURL = "https://" + maddr
		s.caFile = filepath.Join(tlsDir, "ca.pem")
	}
	s.mock, err = startProc("mockanthropic", filepath.Join(o.bin, "mockanthropic"), nil, env, dir)
	if err != nil {
		return s, err
	}
	s.procs = append(s.procs, s.mock)
	if s.caFile != "" {
		// The mock writes ca.pem before it listens.
		if err := waitTCP(s.mock, maddr); err != nil {
			return s, err
		}
		if err := trustUpstreamCA(s.caFile); err != nil {
			return s, err
		}
	}
	if err := waitHTTP(s.mock, s.mockURL+"/_mock/health"); err != nil {
		return s, err
	}
	return s, nil
}

// phase is one measured row of the report.
type phase struct {
	name       string
	conc       int
	res        result
	gwCPU      time.Duration // gateway CPU during the phase (0: not through the gateway)
	mockCPU    time.Duration
	redisCPU   time.Duration
	redisTrips int64 // round trips to Redis, as the gateway counts them (keyward_redis_round_trips_total)
	redisCmds  int64 // commands Redis served from clients (INFO commandstats, script-internal calls left out)
	evalCmds   int64
	redisPer   map[string]int64
	rssPeakKB  int64
	via        bool  // through the gateway
	gwReads    int64 // gateway read(2) calls during the phase
	gwWrites   int64 // gateway write(2) calls during the phase
}

func (p phase) perReq(d time.Duration) float64 { return p.perCount(d.Microseconds()) }

func (p phase) perCount(n int64) float64 {
	ok := p.res.requests - p.res.errors
	if ok <= 0 {
		return 0
	}
	return float64(n) / float64(ok)
}

// step is one phase to run: n requests at concurrency conc to t.
type step struct {
	name string
	conc int
	via  bool // through the gateway (or the bare proxy): its CPU is measured
	t    target
	n    int
}

// measure runs fn while recording gateway and mock CPU, Redis command
// deltas and the gateway's peak RSS.
func measure(s *stack, g *gateway, name string, conc int, via bool, fn func() result) (phase, error) {
	p := phase{name: name, conc: conc, via: via}
	pids := g.pids()
	trips0 := g.roundTrips()
	cmdsBefore, err := commandStats(s.rAddr)
	if err != nil {
		return p, err
	}
	gw0, err := cpuTime(pids...)
	if err != nil {
		return p, err
	}
	m0, err := cpuTime(s.mock.pid())
	if err != nil {
		return p, err
	}
	rc0, err := cpuTime(s.redis.pid())
	if err != nil {
		return p, err
	}
	r0, w0, err := ioSyscalls(pids...)
	if err != nil {
		return p, err
	}
	sampler := sampleRSS(pids, 20*time.Millisecond)
	stopProfile := func() {}
	if via {
		stopProfile = g.profile(name)
	}
	p.res = fn()
	stopProfile()
	p.rssPeakKB = sampler.stop()
	gw1, err := cpuTime(pids...)
	if err != nil {
		return p, err
	}
	m1, err := cpuTime(s.mock.pid())
	if err != nil {
		return p, err
	}
	rc1, err := cpuTime(s.redis.pid())
	if err != nil {
		return p, err
	}
	cmdsAfter, err := commandStats(s.rAddr)
	if err != nil {
		return p, err
	}
	p.gwCPU, p.mockCPU, p.redisCPU = gw1-gw0, m1-m0, rc1-rc0
	r1, w1, err := ioSyscalls(pids...)
	if err != nil {
		return p, err
	}
	p.gwReads, p.gwWrites = r1-r0, w1-w0
	per, cmds := cmdDelta(cmdsBefore, cmdsAfter)
	p.redisCmds, p.redisPer = cmds, per
	if trips0 >= 0 {
		if trips1 := g.roundTrips(); trips1 >= trips0 {
			p.redisTrips = int64(trips1 - trips0)
		}
	}
	p.evalCmds = per["evalsha"] + per["eval"]
	if p.res.errors > 0 {
		return p, fmt.Errorf("phase %q: %d of %d requests failed, first: %s", name, p.res.errors, p.res.requests, p.res.firstErr)
	}
	return p, nil
}

func run(o options, out io.Writer) error {
	started := time.Now()
	load0 := loadAvg()
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return fmt.Errorf("resolving -bin: %w", err)
	}
	o.bin = bin
	if o.profile != "" {
		if o.profile, err = filepath.Abs(o.profile); err != nil {
			return fmt.Errorf("resolving -profile: %w", err)
		}
		if err := os.MkdirAll(o.profile, 0o755); err != nil {
			return err
		}
	}
	// Every open stream is one socket here and one in the gateway (its
	// upstream side multiplexes on a few HTTP/2 connections); children
	// inherit the raised limit.
	if err := raiseNoFile(uint64(o.open + 4096)); err != nil {
		return err
	}
	s, err := startStack(o)
	if s != nil {
		defer s.close()
	}
	if err != nil {
		return err
	}
	streamsCap, inflightCap := o.limits()
	g, err := s.startGateway(o, "gateway", fmt.Sprintf("limits:\n  max_concurrent_streams: %d\n  max_inflight: %d\n", streamsCap, inflightCap))
	if err != nil {
		return err
	}

	ctx := context.Background()
	client := newClient(o.c)
	direct := func(stream bool, tokens int) target {
		return target{url: s.mockURL + "/v1/messages", header: headers(), body: messageBody(stream, tokens, ""), stream: stream}
	}
	through := func(url string, stream bool, tokens int) target {
		return target{url: url + "/v1/messages", header: headers(), body: messageBody(stream, tokens, ""), stream: stream}
	}
	const jsonTokens, streamTokens = 64, 240

	warm := func(t target, n int) error {
		if r := closedLoop(ctx, client, t, n, o.c, o.phaseLimit); r.errors > 0 {
			return fmt.Errorf("warm-up against %s: %d errors, first: %s", t.url, r.errors, r.firstErr)
		}
		return nil
	}
	var phases []phase
	// runSteps measures each step against g, keeping every phase for the
	// report. With tolerate, a phase with at most 1 % failed requests is
	// reported rather than fatal.
	runSteps := func(g *gateway, steps []step, tolerate bool) error {
		for _, st := range steps {
			p, err := measure(s, g, st.name, st.conc, st.via, func() result {
				return closedLoop(ctx, client, st.t, st.n, st.conc, o.phaseLimit)
			})
			if err != nil && tolerate && p.res.errors*100 <= p.res.requests {
				fmt.Fprintln(os.Stderr, "loadgen: (tolerated)", err)
				err = nil
			}
			phases = append(phases, p)
			if err != nil {
				return err
			}
		}
		return nil
	}

	// Warm up both paths: connection pools, script cache, JIT-free but
	// page-cache and GC-pacer warm.
	for _, t := range []target{direct(false, jsonTokens), through(g.url, false, jsonTokens), through(g.url, true, streamTokens)} {
		if err := warm(t, o.warmup); err != nil {
			return err
		}
	}
	_, hwmWarm, _ := memKB(g.pid())

	if err := runSteps(g, []step{
		{"direct JSON", o.c, false, direct(false, jsonTokens), o.n},
		{"gateway JSON", o.c, true, through(g.url, false, jsonTokens), o.n},
		{"direct JSON c=1", 1, false, direct(false, jsonTokens), o.n1},
		{"gateway JSON c=1", 1, true, through(g.url, false, jsonTokens), o.n1},
		{"direct stream", o.c, false, direct(true, streamTokens), o.streamN},
		{"gateway stream", o.c, true, through(g.url, true, streamTokens), o.streamN},
	}, false); err != nil {
		return err
	}
	_, hwmLoad, _ := memKB(g.pid())
	okJSON := metricSum(g.metricsURL, "keyward_http_requests_total", `route="/v1/messages"`, `code="200"`)

	// Token and budget limits on: admission reserves and settlement
	// refunds, each one script in one round trip.
	gb, err := s.startGateway(o, "gateway-budget", budgetYAML)
	if err != nil {
		return err
	}
	if err := warm(through(gb.url, false, jsonTokens), o.warmup/4); err != nil {
		return err
	}
	// Long streams under live enforcement: 20,000 output tokens with the
	// max_tokens Claude Code sends reserve a 4,096-token slice and extend it
	// as output flows, one round trip per extension (issue 13).
	long := target{url: gb.url + "/v1/messages", header: headers(), body: messageBodyMax(true, longStreamTokens, longStreamMaxTokens, ""), stream: true}
	if err := runSteps(gb, []step{
		{"gateway JSON, tokens+budgets", o.c, true, through(gb.url, false, jsonTokens), o.budgetN},
		{longStreamPhase, 1, true, long, o.longN},
	}, false); err != nil {
		return err
	}
	gb.stop()

	// The same streams with the whole max_tokens reserved at admission, as
	// before live enforcement: no extension, so the difference in CPU per
	// stream is what live enforcement costs.
	gf, err := s.startGateway(o, "gateway-budget-full", budgetYAML, "KEYWARD_RESERVE_OUTPUT_TOKENS="+strconv.Itoa(longStreamMaxTokens))
	if err != nil {
		return err
	}
	if err := warm(through(gf.url, false, jsonTokens), o.warmup/4); err != nil {
		return err
	}
	long.url = gf.url + "/v1/messages"
	if err := runSteps(gf, []step{{longStreamFullPhase, 1, true, long, o.longN}}, false); err != nil {
		return err
	}
	gf.stop()

	// The same gateway with its in-memory limiter (no KEYWARD_REDIS_URL):
	// what the shared Redis limiter costs, for a single replica.
	gm, err := s.startGateway(o, "gateway-memory", "", "KEYWARD_REDIS_URL=")
	if err != nil {
		return err
	}
	if err := warm(through(gm.url, false, jsonTokens), o.warmup); err != nil {
		return err
	}
	if err := runSteps(gm, []step{
		{"gateway JSON, no Redis", o.c, true, through(gm.url, false, jsonTokens), o.n},
		{"gateway JSON c=1, no Redis", 1, true, through(gm.url, false, jsonTokens), o.n1},
	}, false); err != nil {
		return err
	}
	gm.stop()

	var bareHeld heldStreams
	if o.baseline {
		bp, err := s.startBareProxy()
		if err != nil {
			return err
		}
		if err := warm(through(bp.url, false, jsonTokens), o.warmup); err != nil {
			return err
		}
		// Go's ReverseProxy with its stock transport drops the odd stream
		// on this machine; it is the yardstick, not the product, so a few
		// failures are tolerated.
		if err := runSteps(bp, []step{
			{"bare proxy JSON", o.c, true, through(bp.url, false, jsonTokens), o.n},
			{"bare proxy JSON c=1", 1, true, through(bp.url, false, jsonTokens), o.n1},
			{"bare proxy stream", o.c, true, through(bp.url, true, streamTokens), o.streamN},
		}, true); err != nil {
			return err
		}
		// The same open streams through the bare proxy: what net/http
		// itself holds per stream, beside the gateway's figure.
		if bareHeld, err = holdStreams(o, bp); err != nil {
			return fmt.Errorf("bare proxy: %w", err)
		}
		bp.stop()
	}

	// nginx as the simplest key-injecting proxy: its callers send no key.
	nginxBin, nginxNote := findNginx(o.nginx)
	if nginxBin != "" && o.plainHTTP {
		nginxBin, nginxNote = "", "nginx rows skipped: its configuration proxies to the TLS mock (-plain-upstream)"
	}
	if nginxNote != "" {
		fmt.Fprintln(os.Stderr, "loadgen:", nginxNote)
	}
	if nginxBin != "" {
		ng, err := s.startNginx(nginxBin)
		if err != nil {
			return err
		}
		viaNginx := func(stream bool, tokens int) target {
			return target{url: ng.url + "/v1/messages", header: nginxHeaders(), body: messageBody(stream, tokens, ""), stream: stream}
		}
		if err := warm(viaNginx(false, jsonTokens), o.warmup); err != nil {
			return err
		}
		if err := runSteps(ng, []step{
			{"nginx JSON", o.c, true, viaNginx(false, jsonTokens), o.n},
			{"nginx JSON c=1", 1, true, viaNginx(false, jsonTokens), o.n1},
			{"nginx stream", o.c, true, viaNginx(true, streamTokens), o.streamN},
		}, false); err != nil {
			return err
		}
		ng.stop()
		// Its warnings (an upstream error, a full buffer) say the rows
		// measured something else than the plain path.
		if b, _ := os.ReadFile(filepath.Join(s.dir, "nginx-error.log")); len(b) > 0 {
			fmt.Fprintf(os.Stderr, "loadgen: nginx-error.log:\n%.2000s\n", b)
		}
		nginxNote = nginxVersion(nginxBin)
	}

	// Many open streams: the mock paces events so each stream stays open,
	// and the gateway's memory is read while all of them are.
	t0 := time.Now()
	held, err := holdStreams(o, g)
	if err != nil {
		return err
	}
	held.took = time.Since(t0)

	rtt, err := pingRTT(s.rAddr, 2000)
	if err != nil {
		return err
	}

	accessLines := countLines(g.log, `"msg":"request"`)
	rep := report{
		started: started, load0: load0, load1: loadAvg(), o: o, phases: phases,
		hwmWarmKB: hwmWarm, hwmLoadKB: hwmLoad, open: held, bareOpen: bareHeld,
		okJSON: okJSON, accessLines: accessLines, redisVersion: redisVersion(o.redis), redisRTT: rtt,
		nginx: nginxNote, nginxRan: nginxBin != "",
	}
	rep.write(out)
	if o.md != "" {
		f, err := os.Create(o.md)
		if err != nil {
			return fmt.Errorf("writing markdown: %w", err)
		}
		rep.markdown(f)
		if err := f.Close(); err != nil {
			return fmt.Errorf("writing markdown: %w", err)
		}
	}
	return nil
}

// heldStreams is what the open-streams phase measured.
type heldStreams struct {
	rssKB  int64         // the gateway's peak VmRSS with all of them open
	active float64       // keyward_streams_active then
	opened time.Duration // until every stream had delivered its first event
	took   time.Duration // the whole phase, closing included
}

// holdStreams opens o.open streams through the gateway at once, waits until
// the gateway counts them all as active, and returns its RSS then.
func holdStreams(o options, g *gateway) (h heldStreams, err error) {
	client := newClient(o.open)
	// ~225 events, 100 ms apart for 1,000 streams and 1 s apart for 10,000
	// (about 10,000 events a second in all, which two shared cores carry
	// while the streams open): each stream stays open 22 s or more unless
	// released.
	delay := max(100, o.open/10)
	t := target{url: g.url + "/v1/messages", header: headers(), body: messageBody(true, 1200, fmt.Sprintf(" event_delay_ms=%d", delay)), stream: true}
	t0 := time.Now()
	release, err := openStreams(client, t, o.open, 60*time.Second)
	if err != nil {
		return h, fmt.Errorf("opening %d streams: %w", o.open, err)
	}
	defer release()
	h.opened = time.Since(t0)
	// Every stream has delivered its first event; the gateway's own count
	// (the bare proxy has none) confirms that it holds them all.
	h.active = float64(o.open)
	deadline := time.Now().Add(10 * time.Second)
	for g.metricsURL != "" && time.Now().Before(deadline) {
		h.active = metricSum(g.metricsURL, "keyward_streams_active")
		if int(h.active) >= o.open {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The peak over two seconds of paced events flowing through every
	// stream (RSS moves with the GC cycle; the highest reading is reported).
	sampler := sampleRSS(g.pids(), 100*time.Millisecond)
	time.Sleep(2 * time.Second)
	h.rssKB = sampler.stop()
	return h, nil
}

// metricSum scrapes url and sums the samples of name whose line contains
// every filter; -1 when the scrape fails.
func metricSum(url, name string, filters ...string) float64 {
	resp, err := http.Get(url)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var sum float64
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, name) || len(line) <= len(name) || (line[len(name)] != '{' && line[len(name)] != ' ') {
			continue
		}
		ok := true
		for _, f := range filters {
			ok = ok && strings.Contains(line, f)
		}
		if !ok {
			continue
		}
		if v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64); err == nil {
			sum += v
		}
	}
	return sum
}

func countLines(path, substr string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func redisVersion(bin string) string {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return "redis-server (version unknown)"
	}
	for _, f := range strings.Fields(string(out)) {
		if v, ok := strings.CutPrefix(f, "v="); ok {
			return "redis-server " + v
		}
	}
	return strings.TrimSpace(string(out))
}

// machine describes where the run happened.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%d cores (%s), %s %s/%s", runtime.NumCPU(), model, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
