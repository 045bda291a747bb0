package ratelimit

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/keyward/keyward/pkg/redistest"
)

func TestMain(m *testing.M) {
	// The outages in these tests are deliberate; go-redis would log each
	// failed dial to stderr.
	redis.SetLogger(quietLogger{})
	goleak.VerifyTestMain(m)
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

// testClock is real time plus an offset the test can move, so budget days
// roll over on demand while GCRA windows (and Redis TIME) still flow.
type testClock struct{ offset atomic.Int64 }

func (c *testClock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *testClock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// fakeClock is fully manual time for memory-only tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newTestClient connects to addr the way NewRedisClient would, and closes
// the client when the test ends.
func newTestClient(t testing.TB, addr string) *redis.Client {
	t.Helper()
	c, err := NewRedisClient(RedisConfig{URL: "redis://" + addr + "/0"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c.(*redis.Client)
}

// testPrefix isolates each (sub)test's keys on a shared server.
func testPrefix(t testing.TB) string {
	return strings.NewReplacer("/", "_", " ", "_", "{", "", "}", "").Replace(t.Name()) + ":"
}

func newTestRedis(t testing.TB, c redis.UniversalClient, clock func() time.Time) *Redis {
	t.Helper()
	r, err := NewRedis(c, RedisOptions{Prefix: testPrefix(t), Now: clock})
	require.NoError(t, err)
	return r
}

// rtCounter counts round trips: every command or pipeline the client sends.
type rtCounter struct{ n atomic.Int64 }

func (c *rtCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *rtCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmd)
	}
}

func (c *rtCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmds)
	}
}

// slowProxy forwards TCP to a Redis and can be told to hold every chunk of
// bytes for a while, which is what a struggling Redis looks like from a client.
type slowProxy struct {
	Addr   string
	ln     net.Listener
	target string
	delay  atomic.Int64
	mu     sync.Mutex
	conns  []net.Conn
	wg     sync.WaitGroup
}

func startSlowProxy(t *testing.T, target string) *slowProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &slowProxy{Addr: ln.Addr().String(), ln: ln, target: target}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

func (p *slowProxy) SetDelay(d time.Duration) { p.delay.Store(int64(d)) }

func (p *slowProxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.DialTimeout("tcp", p.target, time.Second)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(out, in)
		go p.pipe(in, out)
	}
}

func (p *slowProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if d := time.Duration(p.delay.Load()); d > 0 {
				time.Sleep(d)
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF or a closed connection: the defers close both sides
		}
	}
}

func (p *slowProxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// recObserver records what Resilient reports for metrics.
type recObserver struct {
	mu        sync.Mutex
	ups       []bool
	decisions map[string]int // "mode/allowed" or "mode/denied"
}

func (o *recObserver) BackendUp(up bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ups = append(o.ups, up)
}

func (o *recObserver) FallbackDecision(mode string, allowed bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.decisions == nil {
		o.decisions = map[string]int{}
	}
	d := "denied"
	if allowed {
		d = "allowed"
	}
	o.decisions[mode+"/"+d]++
}

func (o *recObserver) snapshot() ([]bool, map[string]int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	m := map[string]int{}
	for k, v := range o.decisions {
		m[k] = v
	}
	return append([]bool(nil), o.ups...), m
}

// startRedis starts a throw-away redis-server for one test.
func startRedis(t *testing.T) *redistest.Server {
	t.Helper()
	return redistest.Start(t)
}

// startRedisTB is startRedis for benchmarks.
func startRedisTB(tb testing.TB) *redistest.Server {
	tb.Helper()
	return redistest.Start(tb)
}
