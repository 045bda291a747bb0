package main

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/url"
	"time"
)

// defaultHealthURL is /health on the gateway's own public listener, as the
// environment configures it: https when KEYWARD_TLS_CERT_FILE is set, the
// port of KEYWARD_ADDR, on loopback.
func defaultHealthURL(getenv func(string) string) string {
	scheme := "http"
	if getenv("KEYWARD_TLS_CERT_FILE") != "" {
		scheme = "https"
	}
	port := "5001"
	if addr := getenv("KEYWARD_ADDR"); addr != "" {
		if _, p, err := net.SplitHostPort(addr); err == nil && p != "" {
			port = p
		}
	}
	return scheme + "://" + net.JoinHostPort("127.0.0.1", port) + "/health"
}

// healthTransport probes an https URL on a loopback address without
// verifying the certificate: the probe runs beside the gateway it checks
// (a container's HEALTHCHECK), whose certificate names the public host,
// not 127.0.0.1, and nothing secret crosses it. Any other URL is verified
// as usual (nil: the default transport).
func healthTransport(raw string) http.RoundTripper {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" {
		return nil
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil
	}
	return &http.Transport{
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true},
		TLSHandshakeTimeout: 3 * time.Second,
		ForceAttemptHTTP2:   true,
	}
}
