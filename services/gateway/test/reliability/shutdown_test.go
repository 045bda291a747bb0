//go:build reliability

package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/pkg/redistest"
	"github.com/keyward/keyward/services/gateway/internal/testenv"
)

// TestReliabilitySIGTERMDrainsRequestsAndStreams: a gateway gets SIGTERM
// while it serves slow non-streaming requests, short streams and long
// streams. It stops being ready at once, every accepted non-streaming
// request still gets its 200, short streams finish normally, long streams end
// with an SSE error event (overloaded_error, "retry") at 90% of
// KEYWARD_SHUTDOWN_TIMEOUT instead of being cut, and the process exits
// within the timeout.
func TestReliabilitySIGTERMDrainsRequestsAndStreams(t *testing.T) {
	mock := testenv.StartMock(t)
	const drain = 5 * time.Second
	// No shutdown delay: the drain starts at the signal, which the stream
	// timings below rely on (the delay has its own test).
	gw := testenv.StartGateway(t, mock.URL, "KEYWARD_SHUTDOWN_TIMEOUT="+drain.String(), "KEYWARD_SHUTDOWN_DELAY=0s",
		"KEYWARD_CONFIG="+writeConfig(t, "limits:\n  max_concurrent_streams: 10\n"))
	c := newClient(t, 30*time.Second)

	const slow, short, long = 8, 3, 2
	var wg sync.WaitGroup
	results := make([]outcome, slow)
	for i := 0; i < slow; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = send(context.Background(), c, gw.URL+"/api/query", queryWith("first_byte_ms=1500"))
		}(i)
	}
	var shorts, longs []*sseStream
	for i := 0; i < short; i++ {
		s := openStream(t, c, gw.URL+"/v1/messages", messagesWith(true, 512, "event_delay_ms=100 output_tokens=30"))
		require.Equal(t, http.StatusOK, s.resp.StatusCode)
		shorts = append(shorts, s)
	}
	for i := 0; i < long; i++ {
		s := openStream(t, c, gw.URL+"/v1/messages", messagesWith(true, 4000, "event_delay_ms=200 output_tokens=3000"))
		require.Equal(t, http.StatusOK, s.resp.StatusCode)
		longs = append(longs, s)
	}
	require.Eventually(t, func() bool { return mockStat(t, mock, "in_flight") >= slow+short+long }, 5*time.Second, 10*time.Millisecond,
		"everything is in flight before the signal")

	gw.Signal(syscall.SIGTERM)
	sigterm := time.Now()
	// Readiness fails at once: a load balancer stops sending new work.
	time.Sleep(50 * time.Millisecond)
	readyCode, readyText := readyBody(gw.URL)
	require.NotEqual(t, http.StatusOK, readyCode, "/ready must not report ready once draining: %s", readyText)
	if readyCode == http.StatusServiceUnavailable {
		require.Contains(t, readyText, `"status":"draining"`)
	}

	type streamEnd struct {
		err      error
		at       time.Duration
		complete bool
		lastName string
		lastData string
	}
	ends := make([]streamEnd, short+long)
	for i, s := range append(append([]*sseStream(nil), shorts...), longs...) {
		wg.Add(1)
		go func(i int, s *sseStream) {
			defer wg.Done()
			err := s.drain()
			name, data := s.last()
			ends[i] = streamEnd{err: err, at: time.Since(sigterm), complete: containsEvent(s.events, "message_stop"), lastName: name, lastData: data}
		}(i, s)
	}
	wg.Wait()
	exited := gw.Wait(drain + 3*time.Second)
	exitedAfter := time.Since(sigterm)
	require.True(t, exited, "the gateway exits within the drain timeout")

	ok := 0
	for i, r := range results {
		require.NoError(t, r.err, "request %d was dropped", i)
		require.Equal(t, http.StatusOK, r.code, "request %d: %s", i, r.body)
		ok++
	}
	for i := 0; i < short; i++ {
		e := ends[i]
		require.NoError(t, e.err)
		require.True(t, e.complete, "short stream %d finished normally (last event %q)", i, e.lastName)
		require.Equal(t, "message_stop", e.lastName)
	}
	var cut []time.Duration
	for i := short; i < short+long; i++ {
		e := ends[i]
		require.NoError(t, e.err, "the long stream ended cleanly, not with a broken connection")
		require.False(t, e.complete)
		require.Equal(t, "error", e.lastName, "the long stream ends with an error event telling the client to retry")
		var ev struct {
			Error struct {
				Type string `json:"type"`
			} `json:"error"`
		}
		require.NoError(t, json.Unmarshal([]byte(e.lastData), &ev))
		require.Equal(t, "overloaded_error", ev.Error.Type)
		require.InDelta(t, float64(drain*9/10), float64(e.at), float64(700*time.Millisecond), "streams end at 90%% of the drain timeout, got %v", e.at)
		cut = append(cut, e.at.Round(10*time.Millisecond))
	}
	require.Less(t, exitedAfter, drain+2*time.Second)
	t.Logf("figure: SIGTERM with %d requests and %d streams in flight: /ready → %s at once; %d/%d requests answered 200; %d/%d short streams complete; %d long streams ended with an error event at %v; exited after %.1f s (timeout %v)",
		slow, short+long, readyDescr(readyCode, readyText), ok, slow, short, short, long, cut, exitedAfter.Seconds(), drain)
}

// TestReliabilityReadinessFailsBeforeTheListenerCloses: the contract says
// GET /ready answers 503 {"status":"draining"} during shutdown, so a load
// balancer's health check (docker-compose's nginx, an L7 ingress, a kube
// readiness probe without a preStop hook) takes the replica out before it
// stops accepting connections. With KEYWARD_SHUTDOWN_DELAY=2s, right after
// SIGTERM /ready must say 503 draining and a request sent in that window —
// by a balancer that has not noticed yet — must still be served.
func TestReliabilityReadinessFailsBeforeTheListenerCloses(t *testing.T) {
	mock := testenv.StartMock(t)
	const delay = 2 * time.Second
	gw := testenv.StartGateway(t, mock.URL, "KEYWARD_SHUTDOWN_DELAY="+delay.String(), "KEYWARD_SHUTDOWN_TIMEOUT=5s")
	c := newClient(t, 10*time.Second)
	o := send(context.Background(), c, gw.URL+"/api/query", queryBody)
	require.Equal(t, http.StatusOK, o.code, string(o.body))

	gw.Signal(syscall.SIGTERM)
	sigterm := time.Now()
	time.Sleep(200 * time.Millisecond)
	readyCode, readyText := readyBody(gw.URL)
	late := send(context.Background(), c, gw.URL+"/api/query", queryBody)
	require.True(t, gw.Wait(delay+7*time.Second), "the gateway exits")
	exitedAfter := time.Since(sigterm)
	lateDescr := fmt.Sprint(late.code)
	if late.err != nil {
		lateDescr = late.err.Error()
	}
	t.Logf("figure: SIGTERM with a %v shutdown delay: /ready → %s 200 ms later; a request sent then → %s; exited after %.1f s",
		delay, readyDescr(readyCode, readyText), lateDescr, exitedAfter.Seconds())
	require.Equal(t, http.StatusServiceUnavailable, readyCode, "/ready answers 503 while the gateway drains: %s", readyText)
	require.Contains(t, readyText, `"status":"draining"`)
	require.NoError(t, late.err, "a request sent before the balancer noticed is still accepted")
	require.Equal(t, http.StatusOK, late.code, string(late.body))
	require.GreaterOrEqual(t, exitedAfter, delay, "the listener stays open for the whole delay")
}

func containsEvent(events []string, name string) bool {
	for _, e := range events {
		if e == name {
			return true
		}
	}
	return false
}

func readyDescr(code int, text string) string {
	if code == 0 {
		if strings.Contains(text, "connection refused") {
			return "connection refused"
		}
		return "unreachable"
	}
	return fmt.Sprint(code)
}

// lb is the load balancer of the rolling-restart test. It models a
// Kubernetes Service endpoint list: each replica is polled on /ready every
// 100 ms (the endpoints controller's view) and only ready replicas receive
// requests, round-robin, over keep-alive connections. A send that fails to
// connect (connection refused: the replica's listener is already closed) was
// never accepted by anyone, so — like kube-proxy retrying another endpoint or
// nginx's proxy_next_upstream on connect errors — it is sent to the next
// ready replica. Any other failure (a reset or EOF after the request was
// sent, a non-200 answer) counts as dropped.
type lb struct {
	client *http.Client
	mu     sync.Mutex
	eps    []*endpoint
	next   int
	stop   chan struct{}
	wg     sync.WaitGroup
}

type endpoint struct {
	url      string
	ready    atomic.Bool
	inflight atomic.Int64
	served   atomic.Int64
}

func newLB(t *testing.T) *lb {
	return &lb{client: newClient(t, 30*time.Second), stop: make(chan struct{})}
}

func (l *lb) add(url string) *endpoint {
	ep := &endpoint{url: url}
	ep.ready.Store(readyCodeOf(url) == http.StatusOK)
	l.mu.Lock()
	l.eps = append(l.eps, ep)
	l.mu.Unlock()
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-tick.C:
				ep.ready.Store(readyCodeOf(url) == http.StatusOK)
			}
		}
	}()
	return ep
}

func readyCodeOf(url string) int {
	c, _ := readyBody(url)
	return c
}

func (l *lb) pick() *endpoint {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := 0; i < len(l.eps); i++ {
		ep := l.eps[(l.next+i)%len(l.eps)]
		if ep.ready.Load() {
			l.next = (l.next + i + 1) % len(l.eps)
			return ep
		}
	}
	return nil
}

// do sends one request through the balancer and reports the final outcome
// and how many sends were re-routed after a refused connection.
func (l *lb) do(path, body string) (outcome, int) {
	rerouted := 0
	for try := 0; try < 5; try++ {
		ep := l.pick()
		if ep == nil {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		ep.inflight.Add(1)
		o := send(context.Background(), l.client, ep.url+path, body)
		ep.inflight.Add(-1)
		if o.err != nil && isConnRefused(o.err) {
			ep.ready.Store(false)
			rerouted++
			continue
		}
		if o.err == nil {
			ep.served.Add(1)
		}
		return o, rerouted
	}
	return outcome{err: fmt.Errorf("no ready replica after 5 tries")}, rerouted
}

func (l *lb) close() {
	close(l.stop)
	l.wg.Wait()
}

// TestReliabilityRollingRestartDropsNothing: three replicas behind the
// balancer above serve steady traffic; one is sent SIGTERM while requests are
// in flight on it, exits, and is replaced by a new process. Every request the
// clients sent is answered 200: the requests in flight on the stopped replica
// complete, and new ones go to the other replicas.
func TestReliabilityRollingRestartDropsNothing(t *testing.T) {
	rds := redistest.Start(t)
	mock := testenv.StartMock(t)
	// The shutdown delay is what production runs (2 s by default), shortened:
	// /ready answers 503 for 500 ms (five of the balancer's polls) before the
	// listener closes. With none (the harness's default), a request can race
	// onto a keep-alive connection the stopping replica is closing and get
	// EOF, which no balancer can retry for a POST.
	env := []string{"KEYWARD_REDIS_URL=" + rds.URL(), "KEYWARD_RATE_LIMIT=100000/60s", "KEYWARD_SHUTDOWN_TIMEOUT=10s", "KEYWARD_SHUTDOWN_DELAY=500ms"}
	// Each answer takes 150 ms upstream, so a SIGTERM always finds work in flight.
	mock.MockPost(t, "/_mock/config", `{"first_byte_ms":150}`)
	var gws []*testenv.Gateway
	for i := 0; i < 3; i++ {
		gws = append(gws, testenv.StartGateway(t, mock.URL, env...))
	}
	bal := newLB(t)
	defer bal.close()
	var eps []*endpoint
	for _, g := range gws {
		eps = append(eps, bal.add(g.URL))
	}

	all := newTally()
	var rerouted atomic.Int64
	var dropped []string
	var dmu sync.Mutex
	stop := make(chan struct{})
	wg := load(8, 10*time.Millisecond, stop, func(int) {
		o, r := bal.do("/api/query", queryBody)
		rerouted.Add(int64(r))
		all.add(o)
		if o.err != nil || o.code != http.StatusOK {
			dmu.Lock()
			dropped = append(dropped, fmt.Sprintf("%d %v %s", o.code, o.err, o.body))
			dmu.Unlock()
		}
	})
	time.Sleep(time.Second)

	victim := eps[0]
	require.Eventually(t, func() bool { return victim.inflight.Load() > 0 }, 2*time.Second, time.Millisecond)
	inflightAtSignal := victim.inflight.Load()
	servedBefore := victim.served.Load()
	gws[0].Signal(syscall.SIGTERM)
	sigterm := time.Now()
	require.True(t, gws[0].Wait(12*time.Second), "the stopped replica exits")
	exitedAfter := time.Since(sigterm)
	finishedOnVictim := victim.served.Load() - servedBefore

	replacement := testenv.StartGateway(t, mock.URL, env...)
	newEp := bal.add(replacement.URL)
	require.Eventually(t, func() bool { return newEp.served.Load() >= 10 }, 10*time.Second, 20*time.Millisecond, "the replacement takes traffic")
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()

	t.Logf("figure: rolling restart of 1 of 3 replicas under load: %d/%d requests answered 200, %d dropped; %d in flight on the stopped replica at SIGTERM, %d finished there after it; exited after %.2f s; %d sends re-routed after connection refused (never accepted); replacement served %d",
		all.count(http.StatusOK), all.total(), len(dropped), inflightAtSignal, finishedOnVictim, exitedAfter.Seconds(), rerouted.Load(), newEp.served.Load())
	require.Empty(t, dropped, "zero dropped non-streaming requests")
	require.Equal(t, all.total(), all.count(http.StatusOK))
	require.GreaterOrEqual(t, finishedOnVictim, inflightAtSignal, "the requests in flight at SIGTERM were answered by the stopping replica")
}
