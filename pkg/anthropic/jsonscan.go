package anthropic

import "bytes"

// A single-pass scanner for the fast path of ParseMessageRequest, the one
// JSON parse kept twice (issue 15's rule: a second path only where it is
// worth >= 10% of gateway CPU per request; the request parse is ~50 µs with
// encoding/json against ~6 µs here, a quarter of a JSON call's gateway CPU,
// while the response and stream-event decoders were each under 5% and now
// use encoding/json alone). encoding/json's Decoder costs ~15 µs and ~100 allocations for an
// ordinary request body, most of it in token-by-token decoding; this walks a
// body once and hands out the top-level members as sub-slices. It accepts
// only what encoding/json accepts (RFC 8259: the same string escapes, number
// grammar and literals), and gives up — returning false — on anything else or
// on nesting deeper than maxFastDepth; callers then run encoding/json, which
// produces the definitive error. So the fast path changes speed, never
// results. FuzzScanObjectMatchesEncodingJSON holds it to that.

// maxFastDepth bounds the scanner's recursion; deeper bodies take the
// encoding/json path (which allows 10000 levels).
const maxFastDepth = 512

// jsonMember is one top-level member of an object.
type jsonMember struct {
	key     []byte // the key as written, quotes included, escapes not decoded
	escaped bool   // key contains a backslash escape
	val     []byte // the value's bytes without surrounding whitespace
}

// scanObject reports whether b is exactly one JSON object (surrounding
// whitespace allowed) that this scanner can vouch for, calling fn for each
// top-level member in order. It stops with false as soon as fn does.
func scanObject(b []byte, fn func(jsonMember) bool) bool {
	s := jsonScanner{b: b}
	s.ws()
	if s.i >= len(b) || b[s.i] != '{' {
		return false
	}
	if !s.object(fn) {
		return false
	}
	s.ws()
	return s.i == len(b)
}

type jsonScanner struct {
	b     []byte
	i     int
	depth int
}

func (s *jsonScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// str consumes a string starting at the opening quote.
func (s *jsonScanner) str() (escaped, ok bool) {
	b := s.b
	for i := s.i + 1; i < len(b); {
		c := b[i]
		switch {
		case c == '"':
			s.i = i + 1
			return escaped, true
		case c == '\\':
			escaped = true
			if i+1 >= len(b) {
				return false, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					return false, false
				}
				i += 6
			default:
				return false, false
			}
		case c < 0x20:
			return false, false
		default:
			i++
		}
	}
	return false, false
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func (s *jsonScanner) value() bool {
	if s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		_, ok := s.str()
		return ok
	case c == '{':
		return s.object(nil)
	case c == '[':
		return s.array()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || isDigit(c):
		return s.number()
	}
	return false
}

func (s *jsonScanner) literal(lit string) bool {
	if !bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
		return false
	}
	s.i += len(lit)
	return true
}

// number consumes -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?. What may
// follow it is the caller's check (a delimiter, whitespace or the end).
func (s *jsonScanner) number() bool {
	b, i := s.b, s.i
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i++; i < len(b) && isDigit(b[i]); i++ {
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			return false
		}
		for ; i < len(b) && isDigit(b[i]); i++ {
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return false
		}
		for ; i < len(b) && isDigit(b[i]); i++ {
		}
	}
	s.i = i
	return true
}

func (s *jsonScanner) array() bool {
	if s.depth++; s.depth > maxFastDepth {
		return false
	}
	s.i++ // '['
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		s.depth--
		return true
	}
	for {
		s.ws()
		if !s.value() {
			return false
		}
		s.ws()
		if s.i >= len(s.b) {
			return false
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case ']':
			s.i++
			s.depth--
			return true
		default:
			return false
		}
	}
}

// object consumes an object; fn, when set, sees each member.
func (s *jsonScanner) object(fn func(jsonMember) bool) bool {
	if s.depth++; s.depth > maxFastDepth {
		return false
	}
	s.i++ // '{'
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		s.depth--
		return true
	}
	for {
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return false
		}
		keyStart := s.i
		escaped, ok := s.str()
		if !ok {
			return false
		}
		key := s.b[keyStart:s.i]
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return false
		}
		s.i++
		s.ws()
		valStart := s.i
		if !s.value() {
			return false
		}
		if fn != nil && !fn(jsonMember{key: key, escaped: escaped, val: s.b[valStart:s.i]}) {
			return false
		}
		s.ws()
		if s.i >= len(s.b) {
			return false
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			s.depth--
			return true
		default:
			return false
		}
	}
}
