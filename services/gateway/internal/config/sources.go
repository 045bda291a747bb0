package config

import (
	"crypto/x509"
	"os"

	"github.com/keyward/keyward/services/gateway/internal/catalog"
)

// AnalyticsSources is the operator's allowlist for the catalog's
// server-side data sources (a type's `source:`), and the extra CA an
// https source may be signed by.
type AnalyticsSources struct {
	// Allow (analytics_sources.allow, KEYWARD_ANALYTICS_SOURCES_ALLOW) are
	// the URL prefixes a source URL, and any redirect it answers with,
	// must lie under.
	Allow []string
	// CAFile (analytics_sources.ca_file, KEYWARD_ANALYTICS_SOURCES_CA_FILE)
	// is a PEM bundle trusted for https sources besides the system roots.
	CAFile string
	CAPEM  []byte
}

type analyticsSourcesYAML struct {
	Allow  []string `yaml:"allow"`
	CAFile string   `yaml:"ca_file"`
}

// loadSources applies the env overrides, then checks every type's source
// against the allowlist and connects it; a source outside the allowlist
// stops the gateway at start-up (and fails --check-config).
func (c *Config) loadSources(p *problems, get func(string, string) string) {
	s := &c.AnalyticsSources
	where := "analytics_sources.allow"
	if v := get("KEYWARD_ANALYTICS_SOURCES_ALLOW", ""); v != "" {
		s.Allow, where = splitList(v), "KEYWARD_ANALYTICS_SOURCES_ALLOW"
	}
	caWhere := "analytics_sources.ca_file"
	if v := get("KEYWARD_ANALYTICS_SOURCES_CA_FILE", ""); v != "" {
		s.CAFile, caWhere = v, "KEYWARD_ANALYTICS_SOURCES_CA_FILE"
	}
	allow, errs := catalog.ParseAllowlist(s.Allow, where)
	for _, e := range errs {
		p.addf("%s", e)
	}
	var roots *x509.CertPool
	if s.CAFile != "" {
		b, err := os.ReadFile(s.CAFile)
		switch {
		case err != nil:
			p.addf("%s %q: %v", caWhere, s.CAFile, err)
		case !x509.NewCertPool().AppendCertsFromPEM(b):
			p.addf("%s %q: no PEM certificate in the file", caWhere, s.CAFile)
		default:
			s.CAPEM = b
			roots, err = x509.SystemCertPool()
			if err != nil || roots == nil {
				roots = x509.NewCertPool()
			}
			roots.AppendCertsFromPEM(b)
		}
	}
	for _, e := range c.Catalog.ConnectSources(allow, roots, "keyward/"+c.Version) {
		p.addf("%s", e)
	}
}
