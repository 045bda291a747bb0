package proxyclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Error is a refusal from the gateway: any non-2xx answer, or an error
// event inside a stream. Use errors.As to get at it:
//
//	var perr *proxyclient.Error
//	if errors.As(err, &perr) && perr.Status == http.StatusTooManyRequests { … }
type Error struct {
	// Status is the HTTP status code; 0 when the gateway reported the error
	// inside an SSE stream that had already started with 200.
	Status int
	// Code is the gateway's short error label ("Rate limit exceeded",
	// "Invalid request", "budget_exceeded", …), Anthropic's error type on
	// /v1/*, or the HTTP status text in snake case when the body was not
	// the gateway's JSON (a reverse proxy's error page, say).
	Code string
	// Message is the gateway's human-readable explanation.
	Message string
	// RetryAfter is how long the gateway asked the caller to wait (from
	// Retry-After or the body's retry_after); 0 when it did not say.
	RetryAfter time.Duration
	// RequestID identifies the request in the gateway's logs.
	RequestID string
	// Fields names the request fields a validation error is about.
	Fields []string

	noRetry bool // the gateway said x-should-retry: false
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("keyward gateway: ")
	if e.Status != 0 {
		b.WriteString(strconv.Itoa(e.Status))
		b.WriteString(" ")
	}
	b.WriteString(e.Code)
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	if e.RequestID != "" {
		b.WriteString(" [request ")
		b.WriteString(e.RequestID)
		b.WriteString("]")
	}
	return b.String()
}

// RateLimited reports whether err is a 429 from the gateway (request,
// token, budget or stream limits).
func RateLimited(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusTooManyRequests
}

// maxErrorBody bounds how much of an error answer is read: enough for the
// gateway's JSON, not enough for a hostile or broken peer to hurt.
const maxErrorBody = 64 << 10

// errorBody is the gateway's /api/* error shape. Fields is decoded
// loosely because only its string entries are meaningful to a caller.
type errorBody struct {
	Error      json.RawMessage `json:"error"`
	Message    string          `json:"message"`
	RetryAfter any             `json:"retry_after"`
	RequestID  string          `json:"request_id"`
	Fields     json.RawMessage `json:"fields"`
}

// readError turns a non-2xx answer into an *Error and closes its body.
func (c *Client) readError(resp *http.Response) *Error {
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	// Drain a little more so the connection can be reused, within reason.
	_, _ = io.CopyN(io.Discard, resp.Body, maxErrorBody)

	e := &Error{
		Status:    resp.StatusCode,
		RequestID: firstNonEmpty(resp.Header.Get("X-Request-ID"), resp.Header.Get("Request-Id")),
		noRetry:   strings.EqualFold(resp.Header.Get("X-Should-Retry"), "false"),
	}
	e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), c.now())
	fillFromBody(e, raw)
	if e.Code == "" {
		e.Code = strings.ToLower(strings.ReplaceAll(http.StatusText(resp.StatusCode), " ", "_"))
		if e.Code == "" {
			e.Code = "http_" + strconv.Itoa(resp.StatusCode)
		}
	}
	return e
}

// fillFromBody copies what it understands of an error body into e. It
// understands the gateway's /api/* shape and Anthropic's
// {"type":"error","error":{"type","message"}} shape used on /v1/*.
func fillFromBody(e *Error, raw []byte) {
	var b errorBody
	if json.Unmarshal(raw, &b) != nil {
		return
	}
	var short string
	var nested struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	}
	switch {
	case json.Unmarshal(b.Error, &short) == nil:
		e.Code = short
		e.Message = b.Message
	case json.Unmarshal(b.Error, &nested) == nil:
		e.Code, e.Message = nested.Type, nested.Message
	}
	if e.RequestID == "" {
		e.RequestID = b.RequestID
	}
	if e.RetryAfter == 0 {
		if secs, ok := b.RetryAfter.(float64); ok && secs > 0 && secs <= 86400 {
			e.RetryAfter = time.Duration(secs * float64(time.Second))
		}
	}
	e.Fields = decodeFields(b.Fields)
}

// decodeFields accepts the shapes a validation error may use: a list of
// field names (the gateway's), a list of {"field": …} objects, or an object
// keyed by field name.
func decodeFields(raw json.RawMessage) []string {
	if len(raw) == 0 {
		return nil
	}
	var names []string
	if json.Unmarshal(raw, &names) == nil {
		return nilIfEmpty(names)
	}
	names = nil // a failed decode may have filled some of it
	var list []struct {
		Field string `json:"field"`
	}
	if json.Unmarshal(raw, &list) == nil {
		for _, f := range list {
			if f.Field != "" {
				names = append(names, f.Field)
			}
		}
		return nilIfEmpty(names)
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) == nil {
		for k := range obj {
			names = append(names, k)
		}
		slices.Sort(names)
		return nilIfEmpty(names)
	}
	return nil
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// parseRetryAfter reads Retry-After as delay-seconds or an HTTP date
// (RFC 9110 §10.2.3); anything else, or a time already past, means 0.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		// Cap the multiplication: a silly value must not overflow into a
		// negative wait.
		return time.Duration(min(secs, int64(24*time.Hour/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
