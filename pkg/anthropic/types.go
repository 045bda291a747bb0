package anthropic

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Usage is the token accounting of one Messages call, as Anthropic reports it.
type Usage struct {
	InputTokens              int64          `json:"input_tokens"`
	OutputTokens             int64          `json:"output_tokens"`
	CacheCreationInputTokens int64          `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int64          `json:"cache_read_input_tokens"`
	CacheCreation            *CacheCreation `json:"cache_creation,omitempty"`
	UsageExt
}

// CacheCreation splits cache writes by TTL; the two are priced differently.
type CacheCreation struct {
	Ephemeral5m int64 `json:"ephemeral_5m_input_tokens"`
	Ephemeral1h int64 `json:"ephemeral_1h_input_tokens"`
}

// TotalInputTokens is everything the model read: input_tokens only counts the
// tokens after the last cache breakpoint, so the cache fields are added.
func (u Usage) TotalInputTokens() int64 {
	return u.InputTokens + u.CacheCreationInputTokens + u.CacheReadInputTokens
}

// TotalTokens is input + cache creation + cache read + output: what a token
// limit charges for one call.
func (u Usage) TotalTokens() int64 { return u.TotalInputTokens() + u.OutputTokens }

// ErrInvalidRequest is matched (errors.Is) by every *RequestError.
var ErrInvalidRequest = errors.New("invalid request body")

// RequestError says what is wrong with a caller's request body. It names the
// field but never quotes the caller's content, so it is safe to send back.
type RequestError struct {
	Field   string // top-level field name; "" when the body as a whole is wrong
	Problem string // what is wrong, e.g. "must be a string"
	err     error
}

func (e *RequestError) Error() string {
	if e.Field == "" {
		return "invalid request body: " + e.Problem
	}
	return fmt.Sprintf("invalid request body: field %q: %s", e.Field, e.Problem)
}

// Is makes errors.Is(err, ErrInvalidRequest) true for every RequestError.
func (e *RequestError) Is(target error) bool { return target == ErrInvalidRequest }

// Unwrap exposes the JSON decoder's error, when there was one.
func (e *RequestError) Unwrap() error { return e.err }

// MessageRequest is the part of a Messages (or count_tokens) request body the
// gateway inspects. The passthrough forwards the caller's bytes, not this
// value, so fields it does not name are kept verbatim in Extra and the order
// of keys in Fields rather than dropped.
//
// Keys are matched exactly as spelled ("Model" is an unknown field, not
// model), unlike encoding/json's case-insensitive struct matching: the
// gateway must judge the same field the upstream will read.
type MessageRequest struct {
	Model      string
	MaxTokens  int64
	Stream     bool
	Messages   json.RawMessage // a JSON array
	System     json.RawMessage // a JSON string or array
	Metadata   json.RawMessage // a JSON object
	Tools      json.RawMessage // a JSON array
	ToolChoice json.RawMessage // a JSON object
	Thinking   json.RawMessage // a JSON object

	// Fields lists every top-level key in body order, so callers can
	// allowlist them.
	Fields []string
	// Extra holds the top-level fields not named above (temperature,
	// stop_sequences, …), verbatim.
	Extra map[string]json.RawMessage
}

// maxModelLen is the docs' schema limit for the model id.
const maxModelLen = 256

// ParseMessageRequest checks that body is a single well-formed JSON object in
// valid UTF-8 with no trailing data, that no top-level key repeats (two
// "model" keys could let the gateway check one value while the upstream uses
// the other), and that the fields it knows have the right JSON types. It does
// not check which fields are required or allowed: that is the gateway's
// policy (count_tokens has no max_tokens, for one).
func ParseMessageRequest(body []byte) (MessageRequest, error) {
	var r MessageRequest
	if len(bytes.TrimSpace(body)) == 0 {
		return r, &RequestError{Problem: "body is empty"}
	}
	if !utf8.Valid(body) {
		return r, &RequestError{Problem: "body is not valid UTF-8"}
	}
	if fast, ok, err := parseMessageRequestFast(body); ok {
		return fast, err
	}
	return parseMessageRequestDecoder(body)
}

// parseMessageRequestDecoder is the encoding/json path: it words every
// syntax error (with its byte offset) for bodies the fast path gives up on.
func parseMessageRequestDecoder(body []byte) (MessageRequest, error) {
	var r MessageRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil {
		return r, syntaxError("", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return r, &RequestError{Problem: "body must be a JSON object"}
	}
	var seen map[string]struct{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return r, syntaxError("", err)
		}
		key, ok := tok.(string)
		if !ok {
			return r, &RequestError{Problem: "malformed JSON: object key is not a string"}
		}
		var raw json.RawMessage
		if err := r.addField(key, &seen); err != nil {
			return r, err
		}
		if err := dec.Decode(&raw); err != nil {
			return r, syntaxError(shortField(key), err)
		}
		if err := r.set(key, raw); err != nil {
			return r, err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return r, syntaxError("", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return r, &RequestError{Problem: "unexpected data after the JSON object"}
	}
	return r, nil
}

// parseMessageRequestFast is ParseMessageRequest for a body the single-pass
// scanner can vouch for (a well-formed object, as nearly every real body
// is): ~10x faster, a handful of allocations. ok is false when the scanner
// gives up before judging the body; the decoder path then runs and words the
// syntax error. Errors about fields are the same on both paths: the members
// are the same and arrive in the same order.
func parseMessageRequestFast(body []byte) (r MessageRequest, ok bool, err error) {
	// One copy of the body backs every RawMessage, as the decoder's copies
	// did: the result never aliases the caller's buffer. Full slice
	// expressions keep an append to one field from overwriting the next.
	own := bytes.Clone(body)
	r.Fields = make([]string, 0, 8)
	var seen map[string]struct{}
	ok = scanObject(own, func(m jsonMember) bool {
		key := internKey(m.key[1 : len(m.key)-1])
		if m.escaped {
			// Keys are compared decoded ("mod\u0065l" is model), as the
			// decoder's Token does. (Its own variable: taking key's address
			// would move key to the heap for every member.)
			var decoded string
			if json.Unmarshal(m.key, &decoded) != nil {
				return false
			}
			key = decoded
		}
		if err = r.addField(key, &seen); err != nil {
			return false
		}
		if err = r.set(key, m.val[:len(m.val):len(m.val)]); err != nil {
			return false
		}
		return true
	})
	if len(r.Fields) == 0 {
		r.Fields = nil // as the decoder path leaves it
	}
	if err != nil {
		return r, true, err
	}
	return r, ok, nil
}

// internKey avoids an allocation for the field names nearly every body uses.
func internKey(k []byte) string {
	switch string(k) {
	case "model":
		return "model"
	case "max_tokens":
		return "max_tokens"
	case "stream":
		return "stream"
	case "messages":
		return "messages"
	case "system":
		return "system"
	case "metadata":
		return "metadata"
	case "tools":
		return "tools"
	case "tool_choice":
		return "tool_choice"
	case "thinking":
		return "thinking"
	case "temperature":
		return "temperature"
	}
	return string(k)
}

// addField records key in Fields, refusing a repeat: two "model" keys could
// let the gateway check one value while the upstream uses the other. A map
// only once there are many keys: real bodies have a handful, and a linear
// scan over thousands of keys would make a crafted body quadratic.
func (r *MessageRequest) addField(key string, seen *map[string]struct{}) error {
	if len(r.Fields) == 16 {
		*seen = make(map[string]struct{}, 64)
		for _, f := range r.Fields {
			(*seen)[f] = struct{}{}
		}
	}
	dup := false
	if *seen != nil {
		_, dup = (*seen)[key]
		(*seen)[key] = struct{}{}
	} else {
		dup = slices.Contains(r.Fields, key)
	}
	if dup {
		return &RequestError{Field: shortField(key), Problem: "appears more than once"}
	}
	r.Fields = append(r.Fields, key)
	return nil
}

// Has reports whether the body had the top-level key, even with a null value.
func (r MessageRequest) Has(field string) bool { return slices.Contains(r.Fields, field) }

func (r *MessageRequest) set(key string, raw json.RawMessage) error {
	kind := jsonKind(raw)
	bad := func(problem string) error { return &RequestError{Field: key, Problem: problem} }
	switch key {
	case "model":
		if kind != '"' {
			return bad("must be a string")
		}
		if err := unquote(raw, &r.Model); err != nil {
			return bad("must be a string")
		}
		if len(r.Model) > maxModelLen {
			return bad(fmt.Sprintf("must be at most %d characters", maxModelLen))
		}
	case "max_tokens":
		n, ok := parseCount(raw)
		if !ok {
			return bad("must be a positive integer")
		}
		r.MaxTokens = n
	case "stream":
		switch string(raw) {
		case "true":
			r.Stream = true
		case "false", "null":
			r.Stream = false
		default:
			return bad("must be a boolean")
		}
	case "messages":
		if kind != '[' {
			return bad("must be an array")
		}
		r.Messages = raw
	case "system":
		if kind != '"' && kind != '[' && kind != 'n' {
			return bad("must be a string or an array of text blocks")
		}
		r.System = nullToNil(raw, kind)
	case "metadata":
		if kind != '{' && kind != 'n' {
			return bad("must be an object")
		}
		r.Metadata = nullToNil(raw, kind)
	case "tools":
		if kind != '[' && kind != 'n' {
			return bad("must be an array")
		}
		r.Tools = nullToNil(raw, kind)
	case "tool_choice":
		if kind != '{' && kind != 'n' {
			return bad("must be an object")
		}
		r.ToolChoice = nullToNil(raw, kind)
	case "thinking":
		if kind != '{' && kind != 'n' {
			return bad("must be an object")
		}
		r.Thinking = nullToNil(raw, kind)
	default:
		if r.Extra == nil {
			r.Extra = make(map[string]json.RawMessage)
		}
		r.Extra[key] = raw
	}
	return nil
}

// MarshalJSON writes the known fields followed by Extra (sorted), so a
// gateway that rewrites one field (metadata.user_id, say) keeps the rest.
func (r MessageRequest) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	field := func(name string, v []byte) {
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		// A JSON string, not strconv.Quote: Go's \x escapes (for a key
		// holding a control character or DEL) are not JSON. Marshalling a
		// string cannot fail.
		q, _ := json.Marshal(name)
		b.Write(q)
		b.WriteByte(':')
		b.Write(v)
	}
	if r.Model != "" {
		m, err := json.Marshal(r.Model)
		if err != nil {
			return nil, fmt.Errorf("encoding model: %w", err)
		}
		field("model", m)
	}
	if r.MaxTokens > 0 {
		field("max_tokens", strconv.AppendInt(nil, r.MaxTokens, 10))
	}
	if r.Stream {
		field("stream", []byte("true"))
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
	}{
		{"system", r.System}, {"messages", r.Messages}, {"metadata", r.Metadata},
		{"tools", r.Tools}, {"tool_choice", r.ToolChoice}, {"thinking", r.Thinking},
	} {
		if len(f.raw) == 0 {
			continue
		}
		if !json.Valid(f.raw) {
			return nil, fmt.Errorf("encoding %s: invalid JSON", f.name)
		}
		field(f.name, f.raw)
	}
	keys := make([]string, 0, len(r.Extra))
	for k := range r.Extra {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !json.Valid(r.Extra[k]) {
			return nil, fmt.Errorf("encoding %s: invalid JSON", shortField(k))
		}
		field(k, r.Extra[k])
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON applies ParseMessageRequest's rules to json.Unmarshal.
func (r *MessageRequest) UnmarshalJSON(b []byte) error {
	parsed, err := ParseMessageRequest(b)
	if err != nil {
		return err
	}
	*r = parsed
	return nil
}

// unquote decodes a JSON string, without encoding/json's reflection for the
// common string that has no escapes and is valid UTF-8 (otherwise
// encoding/json decodes it, replacing invalid bytes as it always does).
func unquote(raw []byte, dst *string) error {
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' {
		in := raw[1 : len(raw)-1]
		if bytes.IndexByte(in, '\\') < 0 && bytes.IndexByte(in, '"') < 0 && utf8.Valid(in) {
			*dst = string(in)
			return nil
		}
	}
	return json.Unmarshal(raw, dst)
}

// jsonKind is the first byte of a JSON value: '"', '[', '{', 'n', 't', 'f',
// or a digit/'-' for numbers. raw comes from the decoder, so it is trimmed.
func jsonKind(raw []byte) byte {
	if len(raw) == 0 {
		return 0
	}
	return raw[0]
}

func nullToNil(raw json.RawMessage, kind byte) json.RawMessage {
	if kind == 'n' {
		return nil
	}
	return raw
}

// parseCount accepts a JSON number that is a whole number ≥ 1 (1024 or
// 1024.0, which lenient upstream parsers take as an int) within int64.
func parseCount(raw []byte) (int64, bool) {
	s := string(raw)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, n >= 1
	}
	if len(s) == 0 || (s[0] != '-' && (s[0] < '0' || s[0] > '9')) {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || f < 1 || f > math.MaxInt64/2 {
		return 0, false
	}
	return int64(f), true
}

// shortField bounds a caller-chosen key before it goes into an error message.
func shortField(key string) string {
	const max = 64
	if len(key) <= max {
		return key
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(key[cut]) {
		cut--
	}
	return key[:cut] + "…"
}

func syntaxError(field string, err error) error {
	var se *json.SyntaxError
	problem := "malformed JSON"
	switch {
	case errors.As(err, &se):
		problem = fmt.Sprintf("malformed JSON at byte %d: %s", se.Offset, se.Error())
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		problem = "malformed JSON: unexpected end of body"
	case err != nil:
		// Depth limits and the like: the decoder's messages carry no content.
		problem = "malformed JSON: " + err.Error()
	}
	return &RequestError{Field: field, Problem: problem, err: err}
}
