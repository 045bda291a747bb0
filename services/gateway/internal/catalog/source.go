package catalog

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// A data source is an operator's internal HTTP(S) endpoint that serves a
// query type's data, so the numbers the model sees come from the operator's
// systems and never from the browser. The gateway calls it with the checked
// parameters, bounds the call (timeout, size read), and checks the answer
// against the type's data schema exactly as it checks a caller's data.

const (
	// DefaultSourceTimeout bounds a source call when the YAML sets none.
	DefaultSourceTimeout = 5 * time.Second
	// DefaultSourceMaxBytes bounds a source answer when the YAML sets none.
	DefaultSourceMaxBytes = 1 << 20
	maxSourceTimeout      = time.Minute
	maxSourceMaxBytes     = 16 << 20
	maxSourceRedirects    = 3
)

// SourceYAML is a type's `source:` in the YAML catalog.
type SourceYAML struct {
	// URL is the endpoint; it must lie under an entry of the operator's
	// allowlist (analytics_sources.allow).
	URL string `yaml:"url"`
	// Method is GET (the parameters as the query string, the default) or
	// POST (a JSON body {"query_type","parameters"}).
	Method string `yaml:"method"`
	// Timeout ("5s") bounds the whole call, body included.
	Timeout string `yaml:"timeout"`
	// MaxBytes bounds the answer body; reading stops past it.
	MaxBytes int64 `yaml:"max_bytes"`
}

// Source is a checked SourceYAML. Connect gives it its HTTP client.
type Source struct {
	URL      *url.URL
	Method   string
	Timeout  time.Duration
	MaxBytes int64
	client   *http.Client
	ua       string
}

func (y *SourceYAML) build(where string) (*Source, []string) {
	var errs []string
	s := &Source{Method: strings.ToUpper(strings.TrimSpace(y.Method)), Timeout: DefaultSourceTimeout, MaxBytes: y.MaxBytes}
	u, problem := parseSourceURL(y.URL)
	if problem != "" {
		errs = append(errs, fmt.Sprintf("%s.url: %s", where, problem))
	}
	s.URL = u
	switch s.Method {
	case "":
		s.Method = http.MethodGet
	case http.MethodGet, http.MethodPost:
	default:
		errs = append(errs, fmt.Sprintf("%s.method %q: want GET or POST", where, truncateRunes(y.Method, 16)))
	}
	if y.Timeout != "" {
		d, err := time.ParseDuration(y.Timeout)
		if err != nil || d <= 0 || d > maxSourceTimeout {
			errs = append(errs, fmt.Sprintf("%s.timeout %q: want a duration above 0s and at most %v", where, truncateRunes(y.Timeout, 16), maxSourceTimeout))
		}
		s.Timeout = d
	}
	switch {
	case y.MaxBytes == 0:
		s.MaxBytes = DefaultSourceMaxBytes
	case y.MaxBytes < 1 || y.MaxBytes > maxSourceMaxBytes:
		errs = append(errs, fmt.Sprintf("%s.max_bytes %d: want 1 to %d", where, y.MaxBytes, maxSourceMaxBytes))
	}
	return s, errs
}

// parseSourceURL checks a source URL; problems never quote the URL, which
// may carry credentials.
func parseSourceURL(raw string) (*url.URL, string) {
	if strings.TrimSpace(raw) == "" {
		return nil, "is required"
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, "is not a valid URL"
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, "want an http:// or https:// URL"
	case u.Host == "" || u.Hostname() == "":
		return nil, "has no host"
	case u.Fragment != "":
		return nil, "must not have a #fragment"
	case hasDotSegment(u.Path):
		return nil, "must not contain . or .. path segments"
	}
	return u, ""
}

func hasDotSegment(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

// SafeURL renders a source URL for logs and errors: scheme, host and path,
// without userinfo or query (either may hold a credential).
func SafeURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}

// Allowlist is the operator's list of URL prefixes sources may use: the
// scheme and host:port must be equal and the path must lie under the
// prefix's path (on a segment boundary, so /api does not admit /apix).
type Allowlist []*url.URL

// ParseAllowlist checks the prefixes; problems name them by position.
func ParseAllowlist(prefixes []string, where string) (Allowlist, []string) {
	var out Allowlist
	var errs []string
	for i, p := range prefixes {
		u, problem := parseSourceURL(p)
		switch {
		case problem != "":
			errs = append(errs, fmt.Sprintf("%s[%d]: %s", where, i, problem))
			continue
		case u.User != nil || u.RawQuery != "" || u.ForceQuery:
			errs = append(errs, fmt.Sprintf("%s[%d]: a prefix is scheme://host[:port]/path, with no credentials or query", where, i))
			continue
		}
		out = append(out, u)
	}
	return out, errs
}

// Allows reports whether u lies under one of the prefixes.
func (a Allowlist) Allows(u *url.URL) bool {
	if u == nil || hasDotSegment(u.Path) {
		return false
	}
	for _, p := range a {
		if !strings.EqualFold(p.Scheme, u.Scheme) || hostPort(p) != hostPort(u) {
			continue
		}
		pp := p.Path
		switch {
		case pp == "" || pp == "/":
			return true
		case strings.HasSuffix(pp, "/"):
			if strings.HasPrefix(u.Path, pp) {
				return true
			}
		case u.Path == pp || strings.HasPrefix(u.Path, pp+"/"):
			return true
		}
	}
	return false
}

// String lists the prefixes (they hold no credentials).
func (a Allowlist) String() string {
	s := make([]string, len(a))
	for i, u := range a {
		s[i] = u.String()
	}
	return strings.Join(s, ", ")
}

func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "80"
		if strings.EqualFold(u.Scheme, "https") {
			port = "443"
		}
	}
	return net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

var errOffAllowlist = errors.New("redirected outside the allowlist")

// ConnectSources checks every type's source against the allowlist and gives
// the sources one HTTP client, which trusts roots (nil: the system roots),
// uses no proxy from the environment and follows a redirect only to a URL
// the allowlist admits. It returns every problem, each naming the type.
func (c Catalog) ConnectSources(allow Allowlist, roots *x509.CertPool, userAgent string) []string {
	var errs []string
	var sourced []string
	for _, name := range c.Names() {
		s := c[name].Source
		if s == nil || s.URL == nil {
			continue
		}
		sourced = append(sourced, name)
		if !allow.Allows(s.URL) {
			errs = append(errs, fmt.Sprintf("analytics.%s.source.url %s is not under any prefix of analytics_sources.allow (%s)", name, SafeURL(s.URL), allowOrNone(allow)))
		}
	}
	if len(sourced) == 0 {
		return errs
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // internal endpoints: never through an egress proxy from the environment
	tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	tr.MaxResponseHeaderBytes = 64 << 10
	client := &http.Client{Transport: tr, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= maxSourceRedirects {
			return errOffAllowlist
		}
		if !allow.Allows(req.URL) {
			return errOffAllowlist
		}
		return nil
	}}
	for _, name := range sourced {
		c[name].Source.client, c[name].Source.ua = client, userAgent
	}
	return errs
}

func allowOrNone(a Allowlist) string {
	if len(a) == 0 {
		return "none configured"
	}
	return "allowed: " + a.String()
}

// SourceError is a failed source call. Kind is a short result name
// (unreachable, redirect, timeout, bad_status, bad_content_type, too_large,
// bad_json, schema_mismatch); Message is for the caller and never holds
// the URL; Detail is for the operator's log.
type SourceError struct {
	Kind    string
	Message string
	Detail  string
}

func (e *SourceError) Error() string { return e.Message }

// Timeout reports whether the source did not answer in time.
func (e *SourceError) Timeout() bool { return e.Kind == "timeout" }

// FetchData calls the type's source with the checked values (from Values)
// and returns the data it served, checked against the type's data schema.
// An error is a *SourceError, or the caller's context error when the caller
// went away first.
func (q *QueryType) FetchData(ctx context.Context, values map[string]any) (any, error) {
	s := q.Source
	who := "the data source of " + q.Name
	fail := func(kind, msg, detail string) error {
		return &SourceError{Kind: kind, Message: who + " " + msg, Detail: detail}
	}
	if s == nil || s.client == nil {
		return nil, fail("unreachable", "is not connected", "no client: ConnectSources was not called")
	}
	cctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	req, err := s.request(cctx, q.Name, values)
	if err != nil {
		return nil, fail("unreachable", "could not be called", err.Error())
	}
	timedOut := func() error {
		return fail("timeout", "did not answer within "+s.Timeout.String(), "")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.Is(cctx.Err(), context.DeadlineExceeded):
			return nil, timedOut()
		case errors.Is(err, errOffAllowlist):
			return nil, fail("redirect", "redirected to a URL outside the allowlist (or too often)", innerError(err))
		}
		return nil, fail("unreachable", "could not be reached", innerError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fail("bad_status", "answered with HTTP "+strconv.Itoa(resp.StatusCode), "")
	}
	if !isJSON(resp.Header.Get("Content-Type")) {
		return nil, fail("bad_content_type", "answered with a Content-Type that is not JSON", "Content-Type: "+truncateRunes(resp.Header.Get("Content-Type"), 64))
	}
	tooLarge := fail("too_large", fmt.Sprintf("answered with more than %d bytes", s.MaxBytes), "")
	if resp.ContentLength > s.MaxBytes {
		return nil, tooLarge
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, s.MaxBytes+1))
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.Is(cctx.Err(), context.DeadlineExceeded):
			return nil, timedOut()
		}
		return nil, fail("unreachable", "broke off its answer", innerError(err))
	}
	if int64(len(body)) > s.MaxBytes {
		return nil, tooLarge
	}
	var data any
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&data); err != nil {
		return nil, fail("bad_json", "answered with malformed JSON", truncateRunes(err.Error(), 120))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fail("bad_json", "answered with data after the JSON value", "")
	}
	if _, err := q.DataBlock(data); err != nil {
		var pe *ParamError
		if errors.As(err, &pe) {
			return nil, fail("schema_mismatch", "answered with data that does not match the type's schema: "+strings.TrimPrefix(pe.Message, "invalid data for "+q.Name+": "), "")
		}
		return nil, fail("schema_mismatch", "answered with data that does not match the type's schema", err.Error())
	}
	return data, nil
}

// request builds the call: GET with the values as the query string (added
// to any the URL has), or POST with {"query_type","parameters"}.
func (s *Source) request(ctx context.Context, name string, values map[string]any) (*http.Request, error) {
	u := *s.URL
	var body io.Reader
	if s.Method == http.MethodGet {
		q := u.Query()
		keys := make([]string, 0, len(values))
		for k := range values {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			q.Set(k, queryValue(values[k]))
		}
		u.RawQuery = q.Encode()
	} else {
		b, err := json.Marshal(map[string]any{"query_type": name, "parameters": values})
		if err != nil {
			return nil, fmt.Errorf("encoding the parameters: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, s.Method, u.String(), body)
	if err != nil {
		return nil, errors.New("building the request failed")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", s.ua)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

func queryValue(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case int:
		return strconv.Itoa(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// innerError drops the *url.Error wrapper, whose text repeats the URL with
// its query (which may hold a credential).
func innerError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return truncateRunes(err.Error(), 200)
}

func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
