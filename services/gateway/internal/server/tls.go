package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// certReloader serves a listener's certificate and re-reads it when the
// files change, so a rotated Kubernetes Secret or a cert-manager renewal
// takes effect without a restart (connections already open keep the
// certificate they negotiated).
type certReloader struct {
	name, certFile, keyFile string
	log                     *slog.Logger

	mu              sync.RWMutex
	cert            *tls.Certificate
	certPEM, keyPEM []byte
	lastErr         string
	onReload        func(notAfter time.Time)
}

// newCertReloader loads the pair now: a bad certificate is a start-up
// error, never a listener that fails every handshake.
func newCertReloader(name, certFile, keyFile string, log *slog.Logger, onReload func(time.Time)) (*certReloader, error) {
	r := &certReloader{name: name, certFile: certFile, keyFile: keyFile, log: log, onReload: onReload}
	changed, err := r.reload()
	if err != nil {
		return nil, err
	}
	if !changed {
		return nil, fmt.Errorf("%s TLS certificate: nothing loaded", name)
	}
	return r, nil
}

// reload reads both files and swaps the certificate when either changed
// and the pair is valid. A half-written rotation (new certificate, old
// key) fails to load; the old certificate stays until the next poll sees
// a matching pair.
func (r *certReloader) reload() (changed bool, err error) {
	certPEM, err := os.ReadFile(r.certFile)
	if err != nil {
		return false, fmt.Errorf("%s TLS certificate: %w", r.name, err)
	}
	keyPEM, err := os.ReadFile(r.keyFile)
	if err != nil {
		return false, fmt.Errorf("%s TLS key: %w", r.name, err)
	}
	r.mu.RLock()
	same := bytes.Equal(certPEM, r.certPEM) && bytes.Equal(keyPEM, r.keyPEM)
	r.mu.RUnlock()
	if same {
		return false, nil
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return false, fmt.Errorf("%s TLS certificate %s / key %s: %w", r.name, r.certFile, r.keyFile, err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return false, fmt.Errorf("%s TLS certificate %s: %w", r.name, r.certFile, err)
	}
	pair.Leaf = leaf
	r.mu.Lock()
	r.cert, r.certPEM, r.keyPEM, r.lastErr = &pair, certPEM, keyPEM, ""
	r.mu.Unlock()
	if r.onReload != nil {
		r.onReload(leaf.NotAfter)
	}
	return true, nil
}

// Watch polls the files until ctx ends. Polling (rather than inotify)
// also catches Kubernetes' atomic symlink swap of Secret volumes.
func (r *certReloader) Watch(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		changed, err := r.reload()
		switch {
		case err != nil:
			r.mu.Lock()
			repeat := r.lastErr == err.Error()
			r.lastErr = err.Error()
			r.mu.Unlock()
			if !repeat {
				r.log.Warn("TLS certificate reload failed; keeping the current certificate", "listener", r.name, "error", err.Error())
			}
		case changed:
			r.mu.RLock()
			leaf := r.cert.Leaf
			r.mu.RUnlock()
			r.log.Info("TLS certificate reloaded", "listener", r.name, "serial", leaf.SerialNumber.Text(16), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
		}
	}
}

func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.cert, nil
}

// tlsConfig is a listener's TLS: 1.2 or later, the reloaded certificate;
// http.Server.ServeTLS adds h2 to the protocols, so callers get HTTP/2.
func (r *certReloader) tlsConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.getCertificate}
}

// certPollInterval is how often listener certificates are checked for a
// rotation, as the API key file is.
const certPollInterval = 2 * time.Second

// buildTLS loads the listeners' certificates (a bad pair is a start-up
// error), starts watching them, and exports when each expires.
func (s *Server) buildTLS(bg context.Context) error {
	expiry := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "keyward_tls_cert_expiry_timestamp_seconds", Help: "When the certificate a listener serves expires (Unix seconds), by listener.",
	}, []string{"listener"})
	t := s.cfg.TLS
	var err error
	if t.Enabled() {
		if s.pubCert, err = newCertReloader("public", t.CertFile, t.KeyFile, s.log, expirySetter(expiry, "public")); err != nil {
			return err
		}
		go s.pubCert.Watch(bg, certPollInterval)
	}
	if t.MetricsEnabled() {
		if s.admCert, err = newCertReloader("admin", t.MetricsCertFile, t.MetricsKeyFile, s.log, expirySetter(expiry, "admin")); err != nil {
			return err
		}
		go s.admCert.Watch(bg, certPollInterval)
	}
	if s.pubCert != nil || s.admCert != nil {
		s.reg.MustRegister(expiry)
	}
	return nil
}

func expirySetter(g *prometheus.GaugeVec, listener string) func(time.Time) {
	return func(t time.Time) { g.WithLabelValues(listener).Set(float64(t.Unix())) }
}
