// Package httperr is the one place where errors become HTTP responses.
// Handlers and middleware return or pass errors here; they never write error
// statuses themselves. /api/* errors use the seed's shape
// ({"error","message",...}); /v1/* errors use Anthropic's shape so SDKs parse
// them.
package httperr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/keyward/keyward/pkg/anthropic"
	"github.com/keyward/keyward/pkg/auth"
	"github.com/keyward/keyward/pkg/ratelimit"
	"github.com/keyward/keyward/services/gateway/internal/reqctx"
)

// Error is an error with an HTTP meaning.
type Error struct {
	Status      int
	Short       string // the seed's "error" field on /api/*
	Message     string // human text; never contains secrets
	Type        string // Anthropic error type on /v1/*
	Fields      []string
	RetryAfter  time.Duration
	ShouldRetry string // "true"/"false" for x-should-retry on /v1/*, "" to omit
	Outcome     string // access-log outcome
	// UpstreamRequestID is set on an upstream error passed through on
	// /v1/*: it is the response's request-id header and body request_id, as
	// the upstream sent them, so the SDK's err.requestID names the call
	// Anthropic's support can look up.
	UpstreamRequestID string
	cause             error
}

func (e *Error) Error() string {
	if e.cause != nil {
		return e.Message + ": " + e.cause.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.cause }

// Invalid is a 400 for a malformed or semantically wrong request.
func Invalid(msg string, fields ...string) *Error {
	return &Error{Status: http.StatusBadRequest, Short: "Invalid request", Message: msg, Type: "invalid_request_error", Fields: fields, Outcome: "invalid"}
}

// MissingFields is the seed's 400 for absent required fields.
func MissingFields(fields ...string) *Error {
	return &Error{Status: http.StatusBadRequest, Short: "Missing required fields", Message: "missing required fields: " + strings.Join(fields, ", "), Type: "invalid_request_error", Fields: fields, Outcome: "invalid"}
}

// UnsupportedMedia is a 415 for bodies that are not application/json.
func UnsupportedMedia() *Error {
	return &Error{Status: http.StatusUnsupportedMediaType, Short: "Unsupported media type", Message: "send the body as application/json", Type: "invalid_request_error", Outcome: "media_type"}
}

// TooLarge is a 413.
func TooLarge(limit int64) *Error {
	return &Error{Status: http.StatusRequestEntityTooLarge, Short: "Request too large", Message: fmt.Sprintf("the request body exceeds %d bytes", limit), Type: "request_too_large", Outcome: "too_large"}
}

// NotFound is a 404.
func NotFound() *Error {
	return &Error{Status: http.StatusNotFound, Short: "Not found", Message: "no such endpoint", Type: "not_found_error", Outcome: "not_found"}
}

// ModelNotFound is the 404 for GET /v1/models/{id} of a model this gateway
// does not offer, worded as Anthropic's API words it.
func ModelNotFound(id string) *Error {
	return &Error{Status: http.StatusNotFound, Short: "Not found", Message: "model: " + id, Type: "not_found_error", Outcome: "not_found"}
}

// Overloaded is a 503 for load shedding and backend outages.
func Overloaded(msg, outcome string, retryAfter time.Duration) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Short: "Service unavailable", Message: msg, Type: "overloaded_error", RetryAfter: retryAfter, ShouldRetry: "true", Outcome: outcome}
}

// LimitExceeded is the 429 for a refused admission.
func LimitExceeded(d ratelimit.Decision, p ratelimit.Policy) *Error {
	e := &Error{Status: http.StatusTooManyRequests, Short: "Rate limit exceeded", Type: "rate_limit_error", RetryAfter: d.RetryAfter, ShouldRetry: "true", Outcome: "limited:" + string(d.Reason)}
	switch d.Reason {
	case ratelimit.ReasonTokens:
		e.Message = fmt.Sprintf("Maximum %d tokens per minute", p.TokensPerMinute)
	case ratelimit.ReasonBudget:
		e.Short, e.ShouldRetry = "budget_exceeded", "false"
		e.Message = fmt.Sprintf("Daily budget of $%.2f reached; it resets at 00:00 UTC", p.DailyBudgetUSD)
	case ratelimit.ReasonGlobalBudget:
		e.Short, e.ShouldRetry = "budget_exceeded", "false"
		e.Message = "The service's daily budget is used up; it resets at 00:00 UTC"
	default:
		e.Message = fmt.Sprintf("Maximum %d requests per %s", d.Limit.Rate, HumanPeriod(d.Limit.Period))
	}
	return e
}

// TooManyStreams is the 429 for the per-identity stream cap.
func TooManyStreams(max int) *Error {
	return &Error{Status: http.StatusTooManyRequests, Short: "Rate limit exceeded", Message: fmt.Sprintf("Maximum %d concurrent streams", max), Type: "rate_limit_error", RetryAfter: time.Second, ShouldRetry: "true", Outcome: "limited:streams"}
}

// HumanPeriod renders 60s as "60 seconds", 1h as "3600 seconds": the seed's wording.
func HumanPeriod(d time.Duration) string {
	s := int64(math.Round(d.Seconds()))
	if s == 1 {
		return "second"
	}
	return strconv.FormatInt(s, 10) + " seconds"
}

// RetryAfterSeconds rounds up to whole seconds, at least 1 (RFC 9110 §10.2.3).
func RetryAfterSeconds(d time.Duration) int64 {
	s := int64(math.Ceil(d.Seconds()))
	if s < 1 {
		s = 1
	}
	return s
}

// SetRateLimitHeaders writes the RateLimit-* headers for a decision. The
// four values share one backing array (one allocation, not four), and the
// policy string is cached: it is the same for every caller of a tier.
func SetRateLimitHeaders(h http.Header, d ratelimit.Decision) {
	if d.Limit.IsZero() {
		return
	}
	rem := d.Remaining
	if rem < 0 {
		rem = 0
	}
	reset := int64(math.Ceil(d.ResetAfter.Seconds()))
	if reset < 0 {
		reset = 0
	}
	v := make([]string, 4)
	v[0] = strconv.Itoa(d.Limit.Rate)
	v[1] = strconv.Itoa(rem)
	v[2] = strconv.FormatInt(reset, 10)
	v[3] = Policy(d.Limit)
	h["Ratelimit-Limit"] = v[0:1:1]
	h["Ratelimit-Remaining"] = v[1:2:2]
	h["Ratelimit-Reset"] = v[2:3:3]
	h["Ratelimit-Policy"] = v[3:4:4]
}

type policyString struct {
	limit ratelimit.Limit
	s     string
}

// lastPolicy caches the most recent rendering of Policy.
var lastPolicy atomic.Pointer[policyString]

// Policy renders a limit as an IETF RateLimit-Policy value, e.g. "30;w=60".
func Policy(l ratelimit.Limit) string {
	if p := lastPolicy.Load(); p != nil && p.limit == l {
		return p.s
	}
	s := strconv.Itoa(l.Rate) + ";w=" + strconv.FormatInt(int64(math.Round(l.Period.Seconds())), 10)
	lastPolicy.Store(&policyString{limit: l, s: s})
	return s
}

// From maps any error to an *Error (the single mapping table).
func From(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return TooLarge(mbe.Limit)
	}
	var ae *anthropic.APIError
	switch {
	case errors.Is(err, auth.ErrUnavailable):
		return &Error{Status: http.StatusServiceUnavailable, Short: "Service unavailable", Message: "request signatures cannot be checked right now", Type: "api_error", RetryAfter: time.Second, ShouldRetry: "true", Outcome: "auth_store_down", cause: err}
	case auth.Reason(err) == auth.ReasonIPDenied:
		return &Error{Status: http.StatusForbidden, Short: "Forbidden", Message: "your address is not allowed to use this service", Type: "permission_error", ShouldRetry: "false", Outcome: "ip_denied", cause: err}
	case errors.Is(err, auth.ErrUnauthenticated):
		msg := "missing or invalid credentials"
		switch auth.Reason(err) {
		case auth.ReasonMissing:
			msg = "authentication required: send Authorization: Bearer <token>"
		case auth.ReasonRevoked:
			msg = "this token has been revoked; get a new one"
		}
		// x-should-retry: false — the same credential will be refused again;
		// without it Claude Code keeps retrying a bad token for minutes.
		return &Error{Status: http.StatusUnauthorized, Short: "Unauthorized", Message: msg, Type: "authentication_error", ShouldRetry: "false", Outcome: "auth:" + auth.Reason(err), cause: err}
	case errors.Is(err, ratelimit.ErrBackendUnavailable):
		return Overloaded("rate limits cannot be checked right now; retry shortly", "limiter_down", time.Second)
	case errors.Is(err, anthropic.ErrCircuitOpen):
		return &Error{Status: http.StatusServiceUnavailable, Short: "Upstream unavailable", Message: "the Claude API is failing; requests are paused briefly", Type: "overloaded_error", RetryAfter: 5 * time.Second, ShouldRetry: "true", Outcome: "circuit_open", cause: err}
	case errors.Is(err, anthropic.ErrUpstreamConnection):
		return &Error{Status: http.StatusBadGateway, Short: "Upstream unreachable", Message: "the Claude API cannot be reached right now", Type: "api_error", RetryAfter: time.Second, ShouldRetry: "true", Outcome: "upstream_unreachable", cause: err}
	case errors.Is(err, anthropic.ErrNoAPIKey):
		return &Error{Status: http.StatusServiceUnavailable, Short: "Service unavailable", Message: "the gateway has no Claude API key loaded yet", Type: "api_error", RetryAfter: 5 * time.Second, ShouldRetry: "true", Outcome: "no_key", cause: err}
	case errors.Is(err, anthropic.ErrPathNotAllowed):
		return NotFound()
	case errors.Is(err, anthropic.ErrUpstreamTimeout), errors.Is(err, context.DeadlineExceeded):
		return &Error{Status: http.StatusGatewayTimeout, Short: "Upstream timeout", Message: "the Claude API did not answer in time", Type: "timeout_error", Outcome: "upstream_timeout", cause: err}
	case errors.Is(err, context.Canceled):
		return &Error{Status: 499, Short: "Client closed request", Message: "client closed the request", Type: "api_error", Outcome: "client_gone", cause: err}
	case errors.As(err, &ae):
		return fromUpstream(ae)
	}
	return &Error{Status: http.StatusInternalServerError, Short: "Internal error", Message: "internal error", Type: "api_error", Outcome: "internal", cause: err}
}

// fromUpstream maps an upstream failure. An upstream 401/403 means the
// server's own key is bad: the caller gets a 502 and never the upstream text.
func fromUpstream(ae *anthropic.APIError) *Error {
	e := &Error{cause: ae, RetryAfter: ae.RetryAfter, Outcome: "upstream_" + strconv.Itoa(ae.Status)}
	switch {
	case ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden:
		e.Status, e.Short, e.Type = http.StatusBadGateway, "Upstream error", "api_error"
		e.Message = "the gateway could not authenticate to the Claude API"
	case ae.Status == http.StatusTooManyRequests && ae.SpendLimit:
		e.Status, e.Short, e.Type, e.ShouldRetry = http.StatusServiceUnavailable, "Upstream unavailable", "api_error", "false"
		e.Message = "the Claude API spend limit of this service is reached"
	case ae.Status == http.StatusTooManyRequests || ae.Status == 529 || ae.Status >= 500:
		e.Status, e.Short, e.Type, e.ShouldRetry = http.StatusServiceUnavailable, "Upstream unavailable", "overloaded_error", "true"
		e.Message = "the Claude API is busy; retry shortly"
		if ae.Status == 529 {
			e.Status = 529
		}
		if e.RetryAfter <= 0 {
			e.RetryAfter = 2 * time.Second
		}
	case ae.Status >= 400 && ae.Status < 500:
		// The caller's request was refused upstream (e.g. an invalid field in a
		// passthrough body): pass the status and Anthropic's own wording on.
		e.Status, e.Short, e.Type = ae.Status, "Invalid request", ae.Type
		if e.Type == "" {
			e.Type = "invalid_request_error"
		}
		e.Message = ae.Message
	default:
		e.Status, e.Short, e.Type, e.Message = http.StatusBadGateway, "Upstream error", "api_error", "unexpected answer from the Claude API"
	}
	return e
}

// FromV1 maps an error on the Anthropic-compatible surface: an upstream
// answer is passed through as sent (status, error.type, error.message,
// request-id, retry-after), so SDKs raise the error class the upstream meant
// (RateLimitError for a 429) and Claude Code's recovery sees the upstream's
// own wording. Only an upstream 401 — the gateway's key is bad, which the
// caller cannot fix — becomes a 502. Everything else maps as From does.
func FromV1(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var ae *anthropic.APIError
	if !errors.As(err, &ae) {
		return From(err)
	}
	if ae.Status == http.StatusUnauthorized {
		return &Error{Status: http.StatusBadGateway, Short: "Upstream error", Type: "api_error", Outcome: "upstream_401", cause: ae,
			Message: "the gateway could not authenticate to the Claude API (upstream 401 authentication_error): its server key is invalid or revoked; the gateway operator must replace it"}
	}
	out := &Error{Status: ae.Status, Short: "Upstream error", Type: ae.Type, Message: ae.Message, RetryAfter: ae.RetryAfter,
		Outcome: "upstream_" + strconv.Itoa(ae.Status), UpstreamRequestID: ae.RequestID, cause: ae}
	if out.Status < 400 || out.Status > 599 {
		// Not an error status a client can act on (a 3xx, or nonsense):
		// the upstream answered unexpectedly.
		out.Status, out.Type, out.Message = http.StatusBadGateway, "api_error", "unexpected answer from the Claude API"
	}
	if out.Type == "" {
		out.Type = "api_error"
	}
	switch {
	case ae.SpendLimit || ae.ShouldRetry == "false":
		// The upstream's own verdict wins, as it does in the SDKs.
		out.ShouldRetry = "false"
	case ae.Retryable() || ae.ShouldRetry == "true":
		out.ShouldRetry = "true"
		if out.RetryAfter <= 0 {
			// The upstream named no wait: a short one keeps every SDK
			// from retrying in the same instant.
			out.RetryAfter = 2 * time.Second
		}
	}
	return out
}

// Write renders err for the request and aborts the chain. It is the only
// place that writes error responses.
func Write(c *gin.Context, log *slog.Logger, err error) {
	v1 := IsV1(c.Request.URL.Path)
	var e *Error
	if v1 {
		e = FromV1(err)
	} else {
		e = From(err)
	}
	st := reqctx.Get(c)
	st.Outcome = e.Outcome
	switch {
	case e.Status == http.StatusBadGateway:
		log.Error("bad gateway: "+e.Short, "request_id", st.RequestID, "upstream_request_id", upstreamID(err), "error", e.Error())
	case e.Status == http.StatusInternalServerError:
		log.Error("request failed", "request_id", st.RequestID, "error", e.Error())
	}
	if c.Writer.Written() {
		c.Abort()
		return
	}
	h := c.Writer.Header()
	// Anthropic's header name, which the SDKs read into err.requestID: the
	// upstream's id for a passed-through error, else the gateway's own.
	requestID := st.RequestID
	if e.UpstreamRequestID != "" {
		requestID = e.UpstreamRequestID
	}
	h["Request-Id"] = []string{requestID}
	if e.RetryAfter > 0 || e.Status == http.StatusTooManyRequests {
		h.Set("Retry-After", strconv.FormatInt(RetryAfterSeconds(e.RetryAfter), 10))
	}
	if e.Status == 499 {
		c.AbortWithStatus(e.Status)
		return
	}
	if v1 {
		if e.ShouldRetry != "" {
			h.Set("x-should-retry", e.ShouldRetry)
		}
		c.Data(e.Status, "application/json", anthropic.NewErrorBody(e.Type, e.Message, requestID))
		c.Abort()
		return
	}
	body := gin.H{"error": e.Short, "message": e.Message, "request_id": st.RequestID}
	if len(e.Fields) > 0 {
		body["fields"] = e.Fields
	}
	if e.Status == http.StatusTooManyRequests || e.RetryAfter > 0 {
		body["retry_after"] = RetryAfterSeconds(e.RetryAfter)
	}
	c.AbortWithStatusJSON(e.Status, body)
}

func upstreamID(err error) string {
	var ae *anthropic.APIError
	if errors.As(err, &ae) {
		return ae.RequestID
	}
	return ""
}

// IsV1 reports whether path is on the Anthropic-compatible surface.
func IsV1(path string) bool { return strings.HasPrefix(path, "/v1/") || path == "/v1" }
