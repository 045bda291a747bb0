package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/services/gateway/internal/openapi"
	"github.com/keyward/keyward/services/gateway/internal/testenv"
)

// apiDoc validates the responses of this package's HTTP calls; see TestMain.
var apiDoc *apiValidator

// TestMain puts the OpenAPI check under the HTTP calls of this package:
// http.DefaultClient (which testenv.Do and plain http.Get use) and the
// clients built with checkedTransport (the proxyclient tests') validate each
// response of a documented path (/api/*, /health, /ready, /openapi.json)
// against openapi.json, and the run fails listing every response that does
// not match. So a handler that grows a field, a status or an error shape the
// document lacks fails the suite. http.DefaultTransport itself stays an
// *http.Transport: code clones it.
func TestMain(m *testing.M) {
	v, err := newAPIValidator(openapi.Document)
	if err != nil {
		fmt.Fprintln(os.Stderr, "openapi:", err)
		os.Exit(1)
	}
	apiDoc = v
	http.DefaultClient.Transport = checkedTransport(http.DefaultTransport)
	code := m.Run()
	checked, problems := v.report()
	fmt.Fprintf(os.Stderr, "openapi: %d gateway responses validated against openapi.json (%s)\n", checked, v.summary())
	if len(problems) > 0 {
		fmt.Fprintf(os.Stderr, "openapi: %d responses do not match openapi.json:\n  %s\n", len(problems), strings.Join(problems, "\n  "))
		code = 1
	}
	os.Exit(code)
}

// apiValidator checks gateway responses against the OpenAPI document with
// kin-openapi (v0.153.0: openapi3filter validates a 3.1 document's schemas
// with its JSON Schema 2020-12 validator).
type apiValidator struct {
	router routers.Router

	mu       sync.Mutex
	checked  int
	byRoute  map[string]int
	problems []string
}

func newAPIValidator(doc []byte) (*apiValidator, error) {
	t, err := openapi3.NewLoader().LoadFromData(doc)
	if err != nil {
		return nil, fmt.Errorf("loading openapi.json: %w", err)
	}
	if err := t.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("validating openapi.json: %w", err)
	}
	r, err := legacy.NewRouter(t)
	if err != nil {
		return nil, fmt.Errorf("building the openapi router: %w", err)
	}
	return &apiValidator{router: r, byRoute: map[string]int{}}, nil
}

// documented is whether the gateway's document covers the request: its own
// API on a loopback address. Preflights (OPTIONS) are CORS middleware, not
// API operations.
func documented(req *http.Request) bool {
	if req.Method == http.MethodOptions {
		return false
	}
	host := req.URL.Hostname()
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return false
	}
	p := req.URL.Path
	return strings.HasPrefix(p, "/api/") || p == "/health" || p == "/ready" || p == "/openapi.json"
}

// check validates resp (whose body it may read and replace) and returns
// the problem, or "" when it matches.
func (v *apiValidator) check(req *http.Request, resp *http.Response) string {
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		return fmt.Sprintf("%s %s → %d: not in openapi.json (%v)", req.Method, req.URL.Path, resp.StatusCode, err)
	}
	opts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}
	ct := resp.Header.Get("Content-Type")
	var body []byte
	switch {
	case strings.HasPrefix(ct, "text/event-stream"):
		// A stream is read by the test as it arrives; its status and
		// headers are checked, its events are the translator's tests' job.
		opts.ExcludeResponseBody = true
	default:
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		if err != nil {
			return "" // the test sees the read error itself
		}
		if len(body) == 0 && resp.StatusCode == http.StatusForbidden && resp.Header.Get("Access-Control-Allow-Origin") == "" {
			// the documented CORS refusal: a 403 with no body
			opts.ExcludeResponseBody = true
		}
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                opts,
	}
	v.mu.Lock()
	v.checked++
	v.byRoute[fmt.Sprintf("%s %s %d", req.Method, route.Path, resp.StatusCode)]++
	v.mu.Unlock()
	if err := openapi3filter.ValidateResponse(req.Context(), in); err != nil {
		b := string(body)
		if len(b) > 300 {
			b = b[:300] + "…"
		}
		return fmt.Sprintf("%s %s → %d: %v; body %s", req.Method, req.URL.Path, resp.StatusCode, err, b)
	}
	return ""
}

func (v *apiValidator) record(problem string) {
	v.mu.Lock()
	v.problems = append(v.problems, problem)
	v.mu.Unlock()
}

func (v *apiValidator) report() (int, []string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.checked, append([]string(nil), v.problems...)
}

func (v *apiValidator) summary() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	keys := make([]string, 0, len(v.byRoute))
	for k := range v.byRoute {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s ×%d", k, v.byRoute[k])
	}
	return strings.Join(parts, ", ")
}

// checkedTransport wraps next so the responses it carries are validated
// against openapi.json.
func checkedTransport(next http.RoundTripper) http.RoundTripper {
	return &validatingTransport{next: next, v: apiDoc}
}

type validatingTransport struct {
	next http.RoundTripper
	v    *apiValidator
}

func (t *validatingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil || !documented(req) {
		return resp, err
	}
	if p := t.v.check(req, resp); p != "" {
		t.v.record(p)
	}
	return resp, nil
}

// TestOpenAPIValidatorCatchesDrift: the validator refuses a response the
// document does not describe (an extra field, a missing one, an
// undocumented status), so the suite's check can fail; and the served
// document is the committed one.
func TestOpenAPIValidatorCatchesDrift(t *testing.T) {
	v, err := newAPIValidator(openapi.Document)
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodGet, "http://127.0.0.1:1/health", nil)
	require.NoError(t, err)
	resp := func(status int, body string) *http.Response {
		return &http.Response{StatusCode: status, Body: io.NopCloser(strings.NewReader(body)),
			Header: http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {"r1"}, "Request-Id": {"r1"}}}
	}
	require.Empty(t, v.check(req, resp(200, `{"status":"healthy","timestamp":"2026-12-04T04:00:00Z","version":"dev"}`)))
	require.Contains(t, v.check(req, resp(200, `{"status":"healthy","timestamp":"2026-12-04T04:00:00Z","version":"dev","uptime":3}`)), "uptime")
	require.NotEmpty(t, v.check(req, resp(200, `{"status":"healthy","version":"dev"}`)))
	require.Contains(t, v.check(req, resp(418, `{}`)), "status is not supported")
	noID := resp(200, `{"status":"healthy","timestamp":"2026-12-04T04:00:00Z","version":"dev"}`)
	noID.Header.Del("X-Request-Id")
	require.NotEmpty(t, v.check(req, noID), "the request id header is required")

	post, err := http.NewRequest(http.MethodPost, "http://127.0.0.1:1/api/analytics-query", nil)
	require.NoError(t, err)
	require.NotEmpty(t, v.check(post, resp(400, `{"error":"Invalid data","message":"m","request_id":"r1","field":"x"}`)), "the error shape is closed")

	if testing.Short() {
		return
	}
	mock := testenv.StartMock(t)
	gw := testenv.StartGateway(t, mock.URL)
	code, _, served := testenv.Do(t, http.MethodGet, gw.URL+"/openapi.json", nil, "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, openapi.Document, served)
}
