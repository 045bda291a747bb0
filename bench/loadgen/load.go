package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// target is one kind of request a phase sends.
type target struct {
	url    string
	header http.Header
	body   []byte
	stream bool
}

// result is what a closed-loop phase measured.
type result struct {
	requests int
	errors   int
	firstErr string
	elapsed  time.Duration
	lat      []time.Duration // sorted
	bytes    int64
}

func (r result) rps() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.requests-r.errors) / r.elapsed.Seconds()
}

// pct is the q-quantile (0..1) of the latencies, nearest rank.
func (r result) pct(q float64) time.Duration { return percentile(r.lat, q) }

func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	i = min(max(i, 0), len(sorted)-1)
	return sorted[i]
}

func newClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        conns * 2,
		MaxIdleConnsPerHost: conns * 2,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
		// The direct phases call the mock over TLS and HTTP/2, as the
		// proxies do.
		TLSClientConfig:   upstreamTLS(),
		ForceAttemptHTTP2: true,
	}}
}

// upstreamRoots is the pool trusting the mock's generated CA (nil: the
// system roots, for a plain-http run).
var upstreamRoots *x509.CertPool

// trustUpstreamCA makes every client of this process trust the mock's CA.
func trustUpstreamCA(file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("reading the mock's CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return fmt.Errorf("%s: no certificate", file)
	}
	upstreamRoots = pool
	return nil
}

func upstreamTLS() *tls.Config { return &tls.Config{RootCAs: upstreamRoots} }

// closedLoop sends n requests from c workers, each sending its next request
// as soon as the previous answer has been read completely. Every answer is
// checked (200, and usage or message_stop present) so that a fast error
// path can never pass for throughput.
func closedLoop(ctx context.Context, client *http.Client, t target, n, c int, timeout time.Duration) result {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var next atomic.Int64
	lats := make([]time.Duration, n)
	var mu sync.Mutex
	res := result{requests: n}
	var total atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf bytes.Buffer
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				nb, err := once(ctx, client, t, &buf)
				lats[i] = time.Since(t0)
				total.Add(nb)
				if err != nil {
					mu.Lock()
					res.errors++
					if res.firstErr == "" {
						res.firstErr = err.Error()
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	done := min(int(next.Load()), n)
	if done < n {
		res.errors += n - done
		if res.firstErr == "" {
			res.firstErr = fmt.Sprintf("phase timed out after %d of %d requests", done, n)
		}
	}
	res.lat = lats[:done]
	slices.Sort(res.lat)
	res.bytes = total.Load()
	return res
}

var (
	usageMarker = []byte(`"usage"`)
	stopMarker  = []byte("event: message_stop")
)

// once sends one request and reads the whole answer into buf.
func once(ctx context.Context, client *http.Client, t target, buf *bytes.Buffer) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(t.body))
	if err != nil {
		return 0, err
	}
	req.Header = t.header.Clone()
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	buf.Reset()
	nb, err := buf.ReadFrom(resp.Body)
	if err != nil {
		return nb, fmt.Errorf("reading answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nb, fmt.Errorf("status %d: %.200s", resp.StatusCode, buf.Bytes())
	}
	marker := usageMarker
	if t.stream {
		marker = stopMarker
	}
	if !bytes.Contains(buf.Bytes(), marker) {
		return nb, fmt.Errorf("answer without %s: %.200s", marker, buf.Bytes())
	}
	return nb, nil
}

// openingAtOnce bounds the streams being opened at the same moment. 10,000
// connects in one instant overflow the listener's accept queue (somaxconn,
// 4096 by default), and the dropped SYNs come back only after the dial
// timeout; callers arriving a few hundred at a time do not.
const openingAtOnce = 512

// openStreams opens n streams, at most openingAtOnce of them still opening
// at a time, and holds them open (reading and discarding what arrives)
// until release is called. It returns when every stream has delivered its
// first bytes, or with an error after timeout.
func openStreams(client *http.Client, t target, n int, timeout time.Duration) (release func(), err error) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	ready := make(chan error, n)
	opening := make(chan struct{}, openingAtOnce)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case opening <- struct{}{}:
			case <-ctx.Done():
				ready <- ctx.Err()
				return
			}
			opened := false
			open := func(err error) {
				if !opened {
					opened = true
					<-opening
					ready <- err
				}
			}
			defer open(errors.New("stream ended before its first event"))
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(t.body))
			if err != nil {
				open(err)
				return
			}
			req.Header = t.header.Clone()
			resp, err := client.Do(req)
			if err != nil {
				open(err)
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
				open(fmt.Errorf("status %d: %s", resp.StatusCode, b))
				return
			}
			first := make([]byte, 512)
			if _, err := resp.Body.Read(first); err != nil {
				open(fmt.Errorf("reading the first event: %w", err))
				return
			}
			open(nil)
			_, _ = io.Copy(io.Discard, resp.Body)
		}()
	}
	release = func() { cancel(); wg.Wait() }
	deadline := time.After(timeout)
	var errs []error
	for got := 0; got < n; got++ {
		select {
		case e := <-ready:
			if e != nil {
				errs = append(errs, e)
			}
		case <-deadline:
			release()
			return nil, fmt.Errorf("only %d of %d streams open after %s", got, n, timeout)
		}
	}
	if len(errs) > 0 {
		release()
		return nil, fmt.Errorf("%d of %d streams failed to open, first: %w", len(errs), n, errors.Join(errs[0]))
	}
	return release, nil
}
