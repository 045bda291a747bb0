package config

import (
	"crypto/tls"
	"crypto/x509"
	"os"
)

// TLS is the certificate configuration of the upstream hop and of the
// gateway's own listeners. Files are checked at start-up; the listener
// certificates are re-read when they change (see server.CertReloader).
type TLS struct {
	// UpstreamCAFile (KEYWARD_UPSTREAM_CA_FILE) is a PEM bundle trusted
	// for the upstream in addition to the system roots: a TLS-inspecting
	// egress proxy's CA, or the test mock's.
	UpstreamCAFile string
	UpstreamCAPEM  []byte

	// CertFile/KeyFile (KEYWARD_TLS_CERT_FILE/KEYWARD_TLS_KEY_FILE) make
	// the public listener serve HTTPS (TLS 1.2+, HTTP/2).
	CertFile, KeyFile string
	// MetricsCertFile/MetricsKeyFile (KEYWARD_METRICS_TLS_CERT_FILE/
	// KEYWARD_METRICS_TLS_KEY_FILE) do the same for the admin listener.
	MetricsCertFile, MetricsKeyFile string
}

// Enabled reports whether the public listener serves HTTPS.
func (t TLS) Enabled() bool { return t.CertFile != "" }

// MetricsEnabled reports whether the admin listener serves HTTPS.
func (t TLS) MetricsEnabled() bool { return t.MetricsCertFile != "" }

// UpstreamRootCAs is the pool the upstream client trusts: nil (the system
// roots) without an extra CA, else the system roots plus the bundle.
func (t TLS) UpstreamRootCAs() *x509.CertPool {
	if len(t.UpstreamCAPEM) == 0 {
		return nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	pool.AppendCertsFromPEM(t.UpstreamCAPEM)
	return pool
}

func (c *Config) loadTLS(p *problems, get func(string, string) string) {
	t := &c.TLS
	t.UpstreamCAFile = get("KEYWARD_UPSTREAM_CA_FILE", "")
	if t.UpstreamCAFile != "" {
		b, err := os.ReadFile(t.UpstreamCAFile)
		switch {
		case err != nil:
			p.addf("KEYWARD_UPSTREAM_CA_FILE %q: %v", t.UpstreamCAFile, err)
		case !x509.NewCertPool().AppendCertsFromPEM(b):
			p.addf("KEYWARD_UPSTREAM_CA_FILE %q: no PEM certificate in the file", t.UpstreamCAFile)
		default:
			t.UpstreamCAPEM = b
		}
	}
	t.CertFile, t.KeyFile = keyPair(p, get, "KEYWARD_TLS_CERT_FILE", "KEYWARD_TLS_KEY_FILE")
	t.MetricsCertFile, t.MetricsKeyFile = keyPair(p, get, "KEYWARD_METRICS_TLS_CERT_FILE", "KEYWARD_METRICS_TLS_KEY_FILE")
}

// keyPair reads a certificate/key variable pair: both or neither, and the
// files must load as a matching pair.
func keyPair(p *problems, get func(string, string) string, certVar, keyVar string) (string, string) {
	cert, key := get(certVar, ""), get(keyVar, "")
	switch {
	case cert == "" && key == "":
		return "", ""
	case cert == "" || key == "":
		p.addf("%s and %s: set both or neither", certVar, keyVar)
		return "", ""
	}
	if _, err := tls.LoadX509KeyPair(cert, key); err != nil {
		p.addf("%s %q / %s %q: %v", certVar, cert, keyVar, key, err)
		return "", ""
	}
	return cert, key
}
