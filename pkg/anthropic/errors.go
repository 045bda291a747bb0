package anthropic

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrorBody is Anthropic's error JSON:
// {"type":"error","error":{"type":"…","message":"…"},"request_id":"…"}.
// The gateway answers /v1/* errors in this shape so SDKs parse them.
type ErrorBody struct {
	Type      string      `json:"type"`
	Error     ErrorDetail `json:"error"`
	RequestID string      `json:"request_id,omitempty"`
}

// ErrorDetail is the inner object of ErrorBody.
type ErrorDetail struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// NewErrorBody returns the marshalled Anthropic error JSON.
func NewErrorBody(errType, message, requestID string) []byte {
	b, err := json.Marshal(ErrorBody{
		Type:      "error",
		Error:     ErrorDetail{Type: errType, Message: message},
		RequestID: requestID,
	})
	if err != nil {
		// Strings always marshal; this is unreachable but must not panic.
		return []byte(`{"type":"error","error":{"type":"api_error","message":"internal error"}}`)
	}
	return b
}

var (
	// ErrCircuitOpen is returned by Client.Do, unwrapped, while the breaker
	// is open: no upstream call was made. Answer 503 with Retry-After
	// (Client.BreakerRetryAfter).
	ErrCircuitOpen = errors.New("upstream circuit breaker open")
	// ErrUpstreamTimeout means no response headers arrived within the header
	// timeout (or the caller's deadline) after the request was sent. The
	// outcome is unknown, so it is never retried. Answer 504.
	ErrUpstreamTimeout = errors.New("upstream timed out before responding")
	// ErrUpstreamConnection means the upstream could not be reached (dial,
	// DNS, TLS, or the connection broke). Answer 502.
	ErrUpstreamConnection = errors.New("upstream connection failed")
	// ErrNoAPIKey means ClientConfig.APIKey returned an empty key; no call
	// was made.
	ErrNoAPIKey = errors.New("no upstream API key configured")
)

// spendLimitCode marks the organisation's tier spend cap: retrying will not
// clear it.
const spendLimitCode = "enforced_spend_limit_reached"

// userSpendLimitPrefix starts the 400 Anthropic returns when a user-set
// organisation or workspace spend limit is hit.
const userSpendLimitPrefix = "You have reached your specified API usage limits"

// maxErrorMessage bounds upstream messages kept in an APIError.
const maxErrorMessage = 512

// APIError is an upstream non-2xx response, parsed. Message is truncated and
// redacted (sk-ant-… strings and the configured key become "[redacted]")
// when the error is built, so every field is safe to log or return.
type APIError struct {
	Status     int           // HTTP status from the upstream
	Type       string        // error.type, e.g. "overloaded_error"
	Message    string        // error.message, redacted and truncated
	RequestID  string        // the upstream request-id header (or body field)
	RetryAfter time.Duration // from retry-after-ms / retry-after, 0 when absent
	// ShouldRetry is the upstream's x-should-retry verdict ("true",
	// "false"), "" when it sent none: passed on to callers that retry.
	ShouldRetry string
	// SpendLimit is set for the tier spend cap (429 with error_code
	// enforced_spend_limit_reached) and for the 400 of a user-set spend
	// limit: the server's account cannot spend more, whoever the caller is.
	SpendLimit bool
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "upstream returned %d", e.Status)
	if e.Type != "" {
		b.WriteString(" " + e.Type)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.RequestID != "" {
		b.WriteString(" (request-id " + e.RequestID + ")")
	}
	return b.String()
}

// Retryable reports whether the status is one the client retries.
func (e *APIError) Retryable() bool {
	if e.SpendLimit {
		return false
	}
	switch e.Status {
	case http.StatusTooManyRequests, 529, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// upstreamErrorJSON is what parseAPIError reads from an error body.
type upstreamErrorJSON struct {
	Type  string `json:"type"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
		Details *struct {
			ErrorCode string `json:"error_code"`
		} `json:"details"`
	} `json:"error"`
	RequestID string `json:"request_id"`
}

// parseAPIError builds the APIError for a non-2xx response whose (bounded)
// body has been read. A body that is not Anthropic's JSON (Cloudflare's 413
// page, a proxy's HTML) is not quoted: the message is generic.
func parseAPIError(status int, h http.Header, body []byte, retryAfter time.Duration, key string) *APIError {
	rd := NewRedactor(key)
	e := &APIError{
		Status:     status,
		RequestID:  h.Get("request-id"),
		RetryAfter: retryAfter,
	}
	switch strings.ToLower(strings.TrimSpace(h.Get("x-should-retry"))) {
	case "true":
		e.ShouldRetry = "true"
	case "false":
		e.ShouldRetry = "false"
	}
	var j upstreamErrorJSON
	if err := json.Unmarshal(body, &j); err == nil && j.Error.Type != "" {
		e.Type = rd.Token(j.Error.Type)
		if e.Type == "" {
			e.Type = typeForStatus(status)
		}
		e.Message = rd.Message(j.Error.Message)
		if j.Error.Details != nil && j.Error.Details.ErrorCode == spendLimitCode {
			e.SpendLimit = true
		}
		if status == http.StatusBadRequest && strings.HasPrefix(j.Error.Message, userSpendLimitPrefix) {
			e.SpendLimit = true
		}
		if e.RequestID == "" {
			e.RequestID = rd.Token(j.RequestID)
		}
	} else {
		e.Type = typeForStatus(status)
		e.Message = fmt.Sprintf("upstream returned HTTP %d", status)
	}
	e.RequestID = rd.Token(e.RequestID)
	return scrubKey(e, key)
}

// scrubKey drops identifier fields that carry the key: sanitizeToken keeps
// any identifier-shaped value, and an upstream (or something posing as one)
// can echo the key it received there. These fields reach callers verbatim
// on /v1/*, as error.type and request-id.
func scrubKey(e *APIError, key string) *APIError {
	if key == "" {
		return e
	}
	if strings.Contains(e.Type, key) || keyPattern.MatchString(e.Type) {
		e.Type = typeForStatus(e.Status)
	}
	if strings.Contains(e.RequestID, key) || keyPattern.MatchString(e.RequestID) {
		e.RequestID = ""
	}
	return e
}

// typeForStatus is Anthropic's error type for a status, for bodies that do
// not say.
func typeForStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "invalid_request_error"
	case http.StatusUnauthorized:
		return "authentication_error"
	case http.StatusPaymentRequired:
		return "billing_error"
	case http.StatusForbidden:
		return "permission_error"
	case http.StatusNotFound:
		return "not_found_error"
	case http.StatusConflict:
		return "conflict_error"
	case http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case http.StatusTooManyRequests:
		return "rate_limit_error"
	case http.StatusGatewayTimeout:
		return "timeout_error"
	case 529:
		return "overloaded_error"
	}
	if status >= 500 {
		return "api_error"
	}
	return "invalid_request_error"
}

// keyPattern matches Anthropic key material (sk-ant-api03-…, sk-ant-admin01-…).
var keyPattern = regexp.MustCompile(`sk-ant-[A-Za-z0-9_\-]*`)

// redact removes key material and bounds the length of an upstream message.
// The configured key is removed even when it does not look like an
// Anthropic key (the mock's, a proxy's), and before truncation, so a key cut
// in half by the length limit cannot survive.
func redact(msg, key string) string {
	if key != "" {
		msg = strings.ReplaceAll(msg, key, "[redacted]")
	}
	msg = keyPattern.ReplaceAllString(msg, "[redacted]")
	msg = strings.ToValidUTF8(msg, "\uFFFD")
	msg = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' ' // no control characters into logs
		}
		return r
	}, msg)
	if len(msg) > maxErrorMessage {
		cut := maxErrorMessage
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut] + "…"
	}
	return msg
}

// sanitizeToken keeps identifier-like values (error types, request ids)
// short and printable; anything else is dropped.
func sanitizeToken(s string) string {
	if len(s) > 128 {
		return ""
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return ""
		}
	}
	return s
}
