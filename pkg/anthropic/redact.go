package anthropic

import (
	"bytes"
	"net/http"
	"strings"
)

// redactedText replaces key material in upstream-derived text.
const redactedText = "[redacted]"

// Redactor is the one redaction step for everything derived from the
// upstream — response headers, error fields (type, message, request id),
// stream bytes and the log fields built from them. The upstream, or
// anything between it and the gateway, may echo the server key anywhere;
// nothing it sends reaches a caller or a log line without passing here.
// The zero Redactor still removes sk-ant-… strings.
type Redactor struct {
	key string
}

// NewRedactor returns a Redactor for the server key.
func NewRedactor(key string) Redactor { return Redactor{key: strings.TrimSpace(key)} }

// Redactor returns the Redactor for the key the client currently uses.
func (c *Client) Redactor() Redactor { return NewRedactor(c.cfg.APIKey()) }

// Message redacts, cleans (no control characters, valid UTF-8) and bounds
// a human-readable upstream text such as error.message.
func (r Redactor) Message(s string) string { return redact(s, r.key) }

// Token keeps an identifier-like value (an error type, a request id) when
// it is short, printable and free of key material; otherwise it returns "".
func (r Redactor) Token(s string) string {
	s = sanitizeToken(s)
	if r.carries(s) {
		return ""
	}
	return s
}

// Headers redacts h in place: a header whose name carries key material is
// dropped, and key material in values is replaced.
func (r Redactor) Headers(h http.Header) {
	for k, vs := range h {
		if r.carries(k) {
			delete(h, k)
			continue
		}
		for i, v := range vs {
			if r.carries(v) {
				vs[i] = r.scrub(v)
			}
		}
	}
}

// Bytes returns b with key material replaced, b itself when there is none
// (the usual case: no allocation).
func (r Redactor) Bytes(b []byte) []byte {
	hasKey := r.key != "" && containsString(b, r.key)
	if !hasKey && !bytes.Contains(b, []byte("sk-ant-")) {
		return b
	}
	if hasKey {
		b = bytes.ReplaceAll(b, []byte(r.key), []byte(redactedText))
	}
	return keyPattern.ReplaceAll(b, []byte(redactedText))
}

func (r Redactor) carries(s string) bool {
	return (r.key != "" && strings.Contains(s, r.key)) || strings.Contains(s, "sk-ant-")
}

func (r Redactor) scrub(s string) string {
	if r.key != "" {
		s = strings.ReplaceAll(s, r.key, redactedText)
	}
	return keyPattern.ReplaceAllString(s, redactedText)
}

// containsString is bytes.Contains(b, []byte(s)) without converting s (a
// key is longer than the compiler's stack buffer for the conversion, so
// that would allocate on every call).
func containsString(b []byte, s string) bool {
	for len(b) >= len(s) {
		i := bytes.IndexByte(b, s[0])
		if i < 0 || len(b)-i < len(s) {
			return false
		}
		if string(b[i:i+len(s)]) == s {
			return true
		}
		b = b[i+1:]
	}
	return false
}
