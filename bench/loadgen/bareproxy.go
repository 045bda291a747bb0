package main

import (
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// The bare proxy is the calibration point of the run: Go's own
// httputil.ReverseProxy in front of the same mock over the same hop (TLS
// and HTTP/2 unless -plain-upstream), with no limiter, no metrics, no
// access log and no validation — what any Go proxy pays on this machine
// before doing its job. loadgen re-executes itself to run it, so its CPU is
// counted from its own /proc entry like the gateway's.
const (
	bareProxyEnv   = "LOADGEN_BAREPROXY"
	bareProxyCAEnv = "LOADGEN_BAREPROXY_CA"
)

func serveBareProxy(spec string) error {
	addr, upstream, _ := strings.Cut(spec, "|")
	u, err := url.Parse(upstream)
	if err != nil {
		return err
	}
	if ca := os.Getenv(bareProxyCAEnv); ca != "" {
		if err := trustUpstreamCA(ca); err != nil {
			return err
		}
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second,
		TLSClientConfig: upstreamTLS(), ForceAttemptHTTP2: true}
	rp.FlushInterval = -1 // pass SSE through as it arrives, as the gateway does
	srv := &http.Server{Addr: addr, Handler: rp, ReadHeaderTimeout: 10 * time.Second}
	return srv.ListenAndServe()
}

// startBareProxy runs this program again as the bare proxy.
func (s *stack) startBareProxy() (*gateway, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	p, err := startProc("bareproxy", self, nil, []string{bareProxyEnv + "=" + addr + "|" + s.mockURL, bareProxyCAEnv + "=" + s.caFile}, s.dir)
	if err != nil {
		return nil, err
	}
	s.procs = append(s.procs, p)
	g := &gateway{proc: p, url: "http://" + addr}
	if err := waitTCP(p, addr); err != nil {
		return nil, err
	}
	return g, nil
}
