// Package h1 is the gateway's HTTP/1.1 client transport for cleartext
// upstreams: the mock, or a sidecar or egress proxy that originates TLS.
//
// net/http's Transport runs two goroutines per connection (a read loop and
// a write loop) and hands every request and response between them and the
// caller over channels. For a proxy that makes one upstream call per
// request, those hand-offs cost more CPU than the call's own parsing, and
// the goroutines cost memory per open stream. This transport does the
// write and the read in the caller's goroutine: the request goes out in one
// write, the response is parsed with http.ReadResponse from the
// connection's bufio.Reader, and the connection returns to the idle pool
// when its body has been read to the end.
//
// What it does not do, and who covers it: https (the gateway keeps Go's
// transport, with HTTP/2, for TLS upstreams such as api.anthropic.com),
// proxies from the environment (same), gzip, Expect: 100-continue and
// protocol upgrades. Timeouts come from the request's context (the
// upstream client cancels an attempt whose headers are late); a connection
// idle in the pool is checked for a close by the server (one non-blocking
// peek) before it is reused.
package h1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
)

// Transport is an http.RoundTripper for http:// URLs. The zero value is not
// usable; build one with New.
type Transport struct {
	dial        func(ctx context.Context, network, addr string) (net.Conn, error)
	maxIdle     int
	idleTimeout time.Duration

	mu     sync.Mutex
	idle   map[string][]*conn // per host:port, most recently used last
	closed bool
}

// Options configures a Transport.
type Options struct {
	// DialContext dials the upstream; default: a net.Dialer with a 5 s
	// timeout and 30 s TCP keep-alives.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// MaxIdlePerHost bounds the idle connections kept per host (default 256).
	MaxIdlePerHost int
	// IdleTimeout closes connections idle longer than this (default 90 s).
	IdleTimeout time.Duration
}

// New returns a Transport.
func New(o Options) *Transport {
	t := &Transport{dial: o.DialContext, maxIdle: o.MaxIdlePerHost, idleTimeout: o.IdleTimeout, idle: map[string][]*conn{}}
	if t.dial == nil {
		t.dial = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	if t.maxIdle <= 0 {
		t.maxIdle = 256
	}
	if t.idleTimeout <= 0 {
		t.idleTimeout = 90 * time.Second
	}
	return t
}

type conn struct {
	nc     net.Conn
	lr     *limitedReader // under br: bounds a response head
	br     *bufio.Reader
	probe  *prober
	idleAt time.Time
}

// maxHeaderBytes bounds an upstream response head (status line and
// headers, 1xx heads included).
const maxHeaderBytes = 1 << 20

var errHeadTooLarge = errors.New("h1: response head too large")

// limitedReader passes reads through while left is negative; otherwise it
// allows left more bytes, then fails.
type limitedReader struct {
	r    io.Reader
	left int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left < 0 {
		return l.r.Read(p)
	}
	if l.left == 0 {
		return 0, errHeadTooLarge
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// ErrBodyClosed is returned by a Read after Close, as net/http does.
var ErrBodyClosed = errors.New("http: read on closed response body")

// aLongTimeAgo is a deadline in the past: it makes blocked I/O return at once.
var aLongTimeAgo = time.Unix(1, 0)

// writers holds the buffered writers requests are written with: one per
// request in flight, not one per pooled connection.
var writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4<<10) }}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil || req.URL.Scheme != "http" {
		closeBody(req)
		return nil, fmt.Errorf("h1: unsupported URL scheme in %q (http only)", req.URL.Redacted())
	}
	if req.URL.Host == "" {
		closeBody(req)
		return nil, errors.New("h1: request URL has no host")
	}
	ctx := req.Context()
	if ctx.Err() != nil {
		closeBody(req)
		return nil, context.Cause(ctx)
	}
	addr := canonicalAddr(req.URL.Host)
	trace := httptrace.ContextClientTrace(ctx)
	for retried := false; ; retried = true {
		c, reused, err := t.conn(ctx, addr)
		if err != nil {
			closeBody(req)
			return nil, err
		}
		if trace != nil && trace.GotConn != nil {
			trace.GotConn(httptrace.GotConnInfo{Conn: c.nc, Reused: reused, WasIdle: reused})
		}
		resp, wroteErr, err := t.exchange(ctx, req, c, addr)
		if err == nil {
			return resp, nil
		}
		// A reused connection the server closed while the request was
		// being written processed nothing: send it again on a fresh one,
		// once, if the body can be replayed.
		if wroteErr && reused && !retried && ctx.Err() == nil && req.GetBody != nil {
			body, gerr := req.GetBody()
			if gerr == nil {
				req = req.Clone(ctx)
				req.Body = body
				continue
			}
		}
		closeBody(req)
		return nil, err
	}
}

// exchange writes req on c and reads the response head. wroteErr reports
// that the write failed (nothing reached a live server).
func (t *Transport) exchange(ctx context.Context, req *http.Request, c *conn, addr string) (resp *http.Response, wroteErr bool, err error) {
	// Cancelling the request's context interrupts whatever I/O is blocked.
	stop := context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(aLongTimeAgo) })
	fail := func(err error, wrote bool) (*http.Response, bool, error) {
		stop()
		c.nc.Close()
		if ctx.Err() != nil {
			return nil, false, context.Cause(ctx)
		}
		return nil, wrote, err
	}
	if err := writeRequest(c.nc, req); err != nil {
		var he headerError
		if errors.As(err, &he) {
			// Refused before a byte was sent; the connection is intact
			// but unused, so it is closed rather than trusted.
			return fail(err, false)
		}
		return fail(err, true)
	}
	// A response head larger than maxHeaderBytes is refused, as Go's
	// transport refuses one beyond MaxResponseHeaderBytes: the reads under
	// the buffer stop there, and the body is read unbounded afterwards.
	c.lr.left = maxHeaderBytes
	defer func() { c.lr.left = -1 }()
	for {
		resp, err = http.ReadResponse(c.br, req)
		if err != nil {
			switch {
			case errors.Is(err, errHeadTooLarge):
				err = fmt.Errorf("h1: upstream response head larger than %d bytes", maxHeaderBytes)
			case errors.Is(err, io.EOF):
				err = fmt.Errorf("h1: server closed the connection before answering: %w", io.ErrUnexpectedEOF)
			}
			return fail(err, false)
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
		// 1xx informational answers precede the real one.
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return fail(errors.New("h1: upstream switched protocols"), false)
	}
	b := &body{rc: resp.Body, t: t, c: c, addr: addr, ctx: ctx, stop: stop, reusable: !resp.Close && !req.Close}
	if resp.Body == http.NoBody {
		b.finish(true)
		return resp, false, nil
	}
	resp.Body = b
	return resp, false, nil
}

// conn returns an idle connection to addr that the server has not closed,
// or dials a new one.
func (t *Transport) conn(ctx context.Context, addr string) (*conn, bool, error) {
	now := time.Now()
	for {
		t.mu.Lock()
		list := t.idle[addr]
		if len(list) == 0 {
			t.mu.Unlock()
			break
		}
		c := list[len(list)-1]
		list[len(list)-1] = nil
		t.idle[addr] = list[:len(list)-1]
		t.mu.Unlock()
		if now.Sub(c.idleAt) > t.idleTimeout || !c.probe.alive() {
			c.nc.Close()
			continue
		}
		return c, true, nil
	}
	nc, err := t.dial(ctx, "tcp", addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, false, context.Cause(ctx)
		}
		return nil, false, err
	}
	lr := &limitedReader{r: nc, left: -1}
	return &conn{nc: nc, lr: lr, br: bufio.NewReaderSize(lr, 4<<10), probe: newProber(nc)}, false, nil
}

// put returns c to the idle pool, closing it when the pool is full or shut.
func (t *Transport) put(addr string, c *conn) {
	c.idleAt = time.Now()
	t.mu.Lock()
	list := t.idle[addr]
	if t.closed || len(list) >= t.maxIdle {
		t.mu.Unlock()
		c.nc.Close()
		return
	}
	// The oldest idle connection is at the front; one past its idle time
	// is closed here, so the pool sheds connections without a timer.
	var expired *conn
	if len(list) > 0 && c.idleAt.Sub(list[0].idleAt) > t.idleTimeout {
		expired = list[0]
		list = append(list[:0], list[1:]...)
	}
	t.idle[addr] = append(list, c)
	t.mu.Unlock()
	if expired != nil {
		expired.nc.Close()
	}
}

// CloseIdleConnections closes every idle connection.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = map[string][]*conn{}
	t.mu.Unlock()
	for _, list := range idle {
		for _, c := range list {
			c.nc.Close()
		}
	}
}

// Close closes the idle connections and keeps none from now on.
func (t *Transport) Close() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.CloseIdleConnections()
}

// IdleConns reports how many connections to addr ("host:port") are idle
// (tests).
func (t *Transport) IdleConns(addr string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.idle[addr])
}

// body is a response body whose connection goes back to the pool at EOF.
// Close may be called from another goroutine to interrupt a blocked Read.
type body struct {
	rc       io.ReadCloser
	t        *Transport
	c        *conn
	addr     string
	ctx      context.Context
	stop     func() bool
	reusable bool
	state    atomic.Int32 // bodyOpen, bodyDone or bodyClosed
}

const (
	bodyOpen int32 = iota
	bodyDone
	bodyClosed
)

func (b *body) Read(p []byte) (int, error) {
	switch b.state.Load() {
	case bodyDone:
		return 0, io.EOF
	case bodyClosed:
		return 0, ErrBodyClosed
	}
	n, err := b.rc.Read(p)
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		b.finish(true)
		return n, io.EOF
	default:
		if b.state.Load() == bodyClosed {
			err = ErrBodyClosed
		} else if b.ctx.Err() != nil {
			err = context.Cause(b.ctx)
		}
		b.finish(false)
	}
	return n, err
}

// finish ends the body once: a fully read body on a reusable connection
// returns it to the pool, anything else closes it.
func (b *body) finish(complete bool) {
	if !b.state.CompareAndSwap(bodyOpen, bodyDone) {
		return
	}
	// stop reports false when the context's callback has run or is
	// running: the connection's deadline is spoiled, so it is not reused.
	if b.stop() && complete && b.reusable && b.c.br.Buffered() == 0 {
		b.t.put(b.addr, b.c)
		return
	}
	b.c.nc.Close()
}

func (b *body) Close() error {
	if b.state.CompareAndSwap(bodyOpen, bodyClosed) {
		b.stop()
		b.c.nc.Close()
	}
	return nil
}

// headerError is a request header the transport refuses to send.
type headerError struct{ msg string }

func (e headerError) Error() string { return e.msg }

// writeRequest writes req as HTTP/1.1 in one buffered write (the body too,
// when it fits the buffer).
func writeRequest(w io.Writer, req *http.Request) error {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	if !httpguts.ValidHostHeader(host) {
		return headerError{"h1: invalid Host header"}
	}
	for k, vs := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return headerError{fmt.Sprintf("h1: invalid header field name %q", k)}
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				return headerError{fmt.Sprintf("h1: invalid header field value for %q", k)}
			}
		}
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	bw := writers.Get().(*bufio.Writer)
	bw.Reset(w)
	defer func() { bw.Reset(nil); writers.Put(bw) }()

	bw.WriteString(method)
	bw.WriteByte(' ')
	bw.WriteString(req.URL.RequestURI())
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")
	hasUA := false
	for k, vs := range req.Header {
		switch k {
		case "Host", "Content-Length", "Transfer-Encoding", "Connection", "Trailer":
			continue // written by the transport
		case "User-Agent":
			hasUA = true
		}
		for _, v := range vs {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	if !hasUA {
		bw.WriteString("User-Agent: Go-http-client/1.1\r\n")
	}
	if req.Close {
		bw.WriteString("Connection: close\r\n")
	}
	chunked := false
	switch {
	case req.Body == nil || req.Body == http.NoBody:
		if method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch {
			bw.WriteString("Content-Length: 0\r\n")
		}
	case req.ContentLength > 0:
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), req.ContentLength, 10))
		bw.WriteString("\r\n")
	default:
		chunked = true
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	bw.WriteString("\r\n")
	if req.Body != nil && req.Body != http.NoBody {
		var err error
		if chunked {
			cw := httputil.NewChunkedWriter(bw)
			if _, err = io.Copy(cw, req.Body); err == nil {
				if err = cw.Close(); err == nil {
					_, err = bw.WriteString("\r\n")
				}
			}
		} else {
			var n int64
			n, err = io.Copy(bw, io.LimitReader(req.Body, req.ContentLength))
			if err == nil && n != req.ContentLength {
				err = fmt.Errorf("h1: request body is %d bytes, ContentLength says %d", n, req.ContentLength)
			}
		}
		req.Body.Close()
		if err != nil {
			return err
		}
	}
	return bw.Flush()
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// canonicalAddr is host:port with the default port 80.
func canonicalAddr(host string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	return net.JoinHostPort(trimBrackets(host), "80")
}

func trimBrackets(h string) string {
	if len(h) > 1 && h[0] == '[' && h[len(h)-1] == ']' {
		return h[1 : len(h)-1]
	}
	return h
}
