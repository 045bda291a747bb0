package mock

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// Defaults for Options fields left zero.
const (
	DefaultAPIKey         = "mock-key"
	DefaultOrganizationID = "5f2b7c1e-0d4a-4e8f-9b36-6a1d2c3e4f50"
	DefaultMaxBodyBytes   = 32 << 20
	DefaultRecordLimit    = 1000
	defaultRecordBodyMax  = 1 << 20
)

// Options configures a Server.
type Options struct {
	// APIKey is the only credential accepted, as x-api-key or Authorization: Bearer.
	APIKey string
	// OrganizationID is sent as anthropic-organization-id on every response.
	OrganizationID string
	// Defaults apply to every /v1/messages call; POST /_mock/config replaces them at run
	// time and POST /_mock/reset restores these.
	Defaults Directives
	// Logger receives one line per API request. Nil discards.
	Logger *slog.Logger
	// Now is the clock for prompt-cache expiry. Nil means time.Now.
	Now func() time.Time
	// MaxBodyBytes is the request size limit answered with 413 (the real API's is 32 MB).
	MaxBodyBytes int64
	// RecordLimit is how many requests GET /_mock/requests keeps (a ring buffer).
	RecordLimit int
	// RecordBodyMax caps the bytes of each recorded body, so recording stays bounded.
	RecordBodyMax int
}

// Server is the emulated Anthropic API plus its /_mock/ admin API. It is an http.Handler.
type Server struct {
	key     []byte
	orgID   []string
	maxBody int64
	log     *slog.Logger
	now     func() time.Time
	seed    maphash.Seed
	cache   *promptCache
	faults  *faultState
	rec     *recorder
	stats   *stats
	billing *billingBook
}

// New validates opts and returns a ready Server.
func New(opts Options) (*Server, error) {
	if opts.APIKey == "" {
		opts.APIKey = DefaultAPIKey
	}
	if strings.TrimSpace(opts.APIKey) != opts.APIKey {
		return nil, errors.New("creating mock server: api key has leading or trailing white space")
	}
	if opts.OrganizationID == "" {
		opts.OrganizationID = DefaultOrganizationID
	}
	if opts.MaxBodyBytes == 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.MaxBodyBytes < 0 {
		return nil, fmt.Errorf("creating mock server: max body bytes %d is negative", opts.MaxBodyBytes)
	}
	if opts.RecordLimit == 0 {
		opts.RecordLimit = DefaultRecordLimit
	}
	if opts.RecordLimit < 0 {
		return nil, fmt.Errorf("creating mock server: record limit %d is negative", opts.RecordLimit)
	}
	if opts.RecordBodyMax == 0 {
		opts.RecordBodyMax = defaultRecordBodyMax
	}
	if err := opts.Defaults.Validate(); err != nil {
		return nil, fmt.Errorf("creating mock server: default directives: %w", err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Server{
		key:     []byte(opts.APIKey),
		orgID:   []string{opts.OrganizationID},
		maxBody: opts.MaxBodyBytes,
		log:     opts.Logger,
		now:     opts.Now,
		seed:    maphash.MakeSeed(),
		cache:   newPromptCache(),
		faults:  newFaultState(opts.Defaults),
		rec:     newRecorder(opts.RecordLimit, opts.RecordBodyMax),
		stats:   newStats(),
		billing: newBillingBook(),
	}, nil
}

// route is a request's endpoint: the stats key, bounded so paths cannot grow the maps.
type route uint8

const (
	routeOther route = iota
	routeMessages
	routeCountTokens
	routeModels
	routeModel
	numRoutes
)

var routeNames = [numRoutes]string{"other", "/v1/messages", "/v1/messages/count_tokens", "/v1/models", "/v1/models/{model_id}"}

// Outcomes of a call other than a complete response.
const (
	outcomeCancelled   = "cancelled"    // the client went away first
	outcomeDropped     = "dropped"      // drop_after closed the connection mid-stream
	outcomeStreamError = "stream_error" // error_after sent an error event mid-stream
)

// call is the bookkeeping of one API request.
type call struct {
	id      string
	route   route
	start   time.Time
	status  int
	model   string
	stream  bool
	usage   usage
	outcome string
	fault   bool
	entry   *recordedRequest

	// Billing truth (see billing.go): accepted once the call reached "the model".
	accepted    bool
	billed      usage
	speed       string    // the request's speed, echoed in usage
	geo         string    // the request's inference_geo, echoed in usage
	serverTools bool      // the request declares a server tool: usage carries server_tool_use
	iterations  int       // iterations=N: usage carries usage.iterations
	midError    *apiError // the error event of error_after, when not the default
	bill        *Billed   // set once the bill is in the billing book (see book)
}

// ServeHTTP routes /_mock/ to the admin API and everything else to the emulated API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_mock/") {
		s.admin(w, r)
		return
	}
	c := &call{id: newID("req_"), start: time.Now()}
	h := w.Header()
	h["Request-Id"] = []string{c.id}
	h["Anthropic-Organization-Id"] = s.orgID
	s.stats.inflight.Add(1)

	path := r.URL.Path
	var allow string
	switch {
	case path == "/v1/messages":
		c.route, allow = routeMessages, http.MethodPost
	case path == "/v1/messages/count_tokens":
		c.route, allow = routeCountTokens, http.MethodPost
	case path == "/v1/models":
		c.route, allow = routeModels, http.MethodGet
	case strings.HasPrefix(path, "/v1/models/") && len(path) > len("/v1/models/") && !strings.Contains(path[len("/v1/models/"):], "/"):
		c.route, allow = routeModel, http.MethodGet
	}

	var body []byte
	switch {
	case c.route == routeOther:
		c.entry = s.rec.add(r, c.id, nil)
		s.fail(w, c, newAPIError(http.StatusNotFound, errNotFound, "Not Found: no route for "+r.Method+" "+path))
	case r.Method != allow:
		c.entry = s.rec.add(r, c.id, nil)
		h["Allow"] = []string{allow}
		s.fail(w, c, newAPIError(http.StatusMethodNotAllowed, errInvalidRequest,
			"Method Not Allowed: "+path+" accepts "+allow+", not "+r.Method))
	default:
		buf, e := s.readBody(r)
		if buf != nil {
			body = *buf
			defer putBuf(buf)
		}
		c.entry = s.rec.add(r, c.id, body)
		switch {
		case e != nil:
			s.fail(w, c, e)
		case c.route == routeMessages:
			s.messages(w, r, c, body)
		case c.route == routeCountTokens:
			s.countTokens(w, r, c, body)
		case c.route == routeModels:
			s.models(w, r, c)
		default:
			s.model(w, r, c, path[len("/v1/models/"):])
		}
	}
	s.finish(r.Context(), c)
	if c.outcome == outcomeDropped {
		// Ends the handler without terminating the chunked body: the client sees the
		// connection close mid-stream, exactly like a network failure.
		panic(http.ErrAbortHandler)
	}
}

// readBody reads the request body into a pooled buffer, enforcing the size limit the way
// the real API's front proxy does: before authentication.
func (s *Server) readBody(r *http.Request) (*[]byte, *apiError) {
	tooLarge := func() *apiError {
		return newAPIError(http.StatusRequestEntityTooLarge, errRequestTooLarge,
			fmt.Sprintf("Request exceeds the maximum allowed number of bytes. The maximum request size is %d MB.", s.maxBody>>20))
	}
	if r.ContentLength > s.maxBody {
		return nil, tooLarge()
	}
	buf := getBuf()
	if r.Body == nil { // only in-process callers build requests without a body
		return buf, nil
	}
	b := *buf
	if r.ContentLength > int64(cap(b)) {
		b = make([]byte, 0, r.ContentLength+1)
	}
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Body.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if int64(len(b)) > s.maxBody {
			*buf = b
			putBuf(buf)
			return nil, tooLarge()
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			*buf = b
			putBuf(buf)
			return nil, invalidRequest("could not read the request body: " + err.Error())
		}
	}
	*buf = b
	return buf, nil
}

// authenticate checks the credential. It returns the key the caller presented (for the
// echo_key directive) or the 401 to send.
func (s *Server) authenticate(r *http.Request) (string, *apiError) {
	key := r.Header.Get("X-Api-Key")
	if key == "" {
		if auth := r.Header.Get("Authorization"); len(auth) > 7 && strings.EqualFold(auth[:7], "bearer ") {
			key = strings.TrimSpace(auth[7:])
		}
	}
	if key == "" {
		return "", newAPIError(http.StatusUnauthorized, errAuthentication, "x-api-key header is required")
	}
	if subtle.ConstantTimeCompare([]byte(key), s.key) != 1 {
		return key, newAPIError(http.StatusUnauthorized, errAuthentication, "invalid x-api-key")
	}
	return key, nil
}

// apiVersion checks the anthropic-version header, which the real API requires on every call.
func apiVersion(r *http.Request) (string, *apiError) {
	v := r.Header.Get("Anthropic-Version")
	switch v {
	case Version2023, Version2026:
		return v, nil
	case "":
		return "", invalidRequest("anthropic-version: header is required")
	}
	return "", invalidRequest("anthropic-version: " + v + " is not a supported version; use " + Version2023 + " or " + Version2026)
}

// gate runs the checks every API endpoint shares: authentication, then the version header.
func (s *Server) gate(w http.ResponseWriter, r *http.Request, c *call) (key, version string, ok bool) {
	key, e := s.authenticate(r)
	if e == nil {
		version, e = apiVersion(r)
	}
	if e != nil {
		s.fail(w, c, e)
		return "", "", false
	}
	return key, version, true
}

func (s *Server) fail(w http.ResponseWriter, c *call, e *apiError) {
	c.status = e.status
	writeError(w, e, c.id)
}

// wait sleeps for ms milliseconds unless the client goes away first.
func wait(ctx context.Context, ms int) bool {
	if ms <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(time.Duration(ms) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (s *Server) models(w http.ResponseWriter, r *http.Request, c *call) {
	if _, _, ok := s.gate(w, r, c); !ok {
		return
	}
	b, e := listModels(r.URL.Query())
	if e != nil {
		s.fail(w, c, e)
		return
	}
	c.status = http.StatusOK
	writeJSON(w, http.StatusOK, b)
}

func (s *Server) model(w http.ResponseWriter, r *http.Request, c *call, id string) {
	if _, _, ok := s.gate(w, r, c); !ok {
		return
	}
	b, e := getModel(id)
	if e != nil {
		s.fail(w, c, e)
		return
	}
	c.status = http.StatusOK
	writeJSON(w, http.StatusOK, b)
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = jsonContentType
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// book puts the call's bill into the billing book and its request record before the last
// bytes of a complete reply are sent, so a client that has read the whole reply and then
// asks /_mock/billing or /_mock/requests sees it; finish books whatever an ended call left
// unbooked.
func (s *Server) book(c *call) {
	billed := c.billedJSON()
	s.billing.record(c, &billed)
	s.rec.book(c.entry, http.StatusOK, &billed)
	c.bill = &billed
}

// finish records the call's result in stats, the request ring and the log.
func (s *Server) finish(ctx context.Context, c *call) {
	s.stats.inflight.Add(-1)
	s.stats.record(c)
	billed := c.bill
	if billed == nil {
		b := c.billedJSON()
		billed = &b
		s.billing.record(c, billed)
	}
	s.rec.finish(c.entry, c.status, c.outcome, billed)
	if !s.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	// Never the key, never the prompt: only what an operator needs to follow a run.
	attrs := make([]slog.Attr, 0, 12)
	attrs = append(attrs,
		slog.String("request_id", c.id),
		slog.String("route", routeNames[c.route]),
		slog.Int("status", c.status),
		slog.Float64("duration_ms", float64(time.Since(c.start).Microseconds())/1000),
	)
	if c.model != "" {
		attrs = append(attrs,
			slog.String("model", c.model),
			slog.Bool("stream", c.stream),
			slog.Int64("input_tokens", c.usage.input),
			slog.Int64("output_tokens", c.usage.output),
			slog.Int64("cache_read_tokens", c.usage.cacheRead),
			slog.Int64("cache_write_tokens", c.usage.cacheCreation()),
		)
	}
	if c.fault {
		attrs = append(attrs, slog.Bool("injected_fault", true))
	}
	if c.outcome != "" {
		attrs = append(attrs, slog.String("outcome", c.outcome))
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "request", attrs...)
}
