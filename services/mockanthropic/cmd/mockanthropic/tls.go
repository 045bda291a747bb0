package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/keyward/keyward/pkg/devtls"
)

// serverTLS is the listener's TLS configuration: nil for plain http, the
// given certificate, or a freshly generated one whose CA is written to
// cfg.tlsGenerate/ca.pem.
func serverTLS(cfg *config) (*tls.Config, error) {
	certFile, keyFile := cfg.tlsCert, cfg.tlsKey
	if cfg.tlsGenerate != "" {
		f, err := devtls.WriteFiles(cfg.tlsGenerate)
		if err != nil {
			return nil, fmt.Errorf("TLS: generating a certificate: %w", err)
		}
		certFile, keyFile = f.Cert, f.Key
	}
	if certFile == "" {
		return nil, nil
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS: loading %s and %s: %w", certFile, keyFile, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}

// healthTransport probes an https URL on a loopback address without
// verifying the certificate: the probe runs beside the process it checks
// (a container's HEALTHCHECK), often against a self-signed certificate, and
// nothing secret crosses it. Anything else is verified as usual.
func healthTransport(raw string) http.RoundTripper {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" {
		return nil
	}
	host := u.Hostname()
	ip := net.ParseIP(host)
	if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil
	}
	return &http.Transport{
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true},
		TLSHandshakeTimeout: 3 * time.Second,
	}
}
