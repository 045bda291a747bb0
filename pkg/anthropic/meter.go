package anthropic

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// maxLineBytes caps one SSE line (and one event's data) held by the meter. A
// longer line is skipped, so a hostile or broken upstream cannot make the
// gateway buffer a whole stream.
const maxLineBytes = 1 << 20

// keepBufferBytes is the buffer capacity kept between lines; a buffer grown
// past it by one long line is released rather than held for the stream.
const keepBufferBytes = 64 << 10

type eventKind uint8

const (
	evNone eventKind = iota // no "event:" field seen yet in this event
	evMessageStart
	evMessageDelta
	evMessageStop
	evError
	evContentDelta
	evOther // ping, content_block_start/stop, and types added later
)

// StreamMeter meters usage from a Messages SSE stream as it passes through,
// without buffering it: the gateway tees the upstream body into Write while
// copying it to the caller. Usage follows Anthropic's rule (docs "Where
// final usage lives"): input and cache counts from message_start, overlaid
// by the non-null fields of each message_delta, output being the last
// cumulative value, never a sum.
//
// Only message_start, message_delta and error events are JSON-decoded;
// content_block_delta (nearly every event of a stream) is only scanned for
// the length of its text, which backs the estimate used when a stream is
// cut off before its final message_delta.
//
// A StreamMeter is not safe for concurrent use; the zero value is not ready,
// use NewStreamMeter.
type StreamMeter struct {
	partial  []byte // the current line, when it spans Write calls
	skipping bool   // the current line is over maxLineBytes and being dropped
	afterCR  bool   // the last byte seen was '\r' (a '\n' next is the same line end)

	kind    eventKind
	data    []byte // data lines of the current event, when it is decoded
	hasData bool
	broken  bool // a line of the current event was dropped

	usage      Usage
	model      string
	events     int
	completed  bool
	errType    string
	stopReason string

	// Content seen since the last cumulative output count.
	estUnits  int64
	estDeltas int64
}

// NewStreamMeter returns a meter for one stream.
func NewStreamMeter() *StreamMeter { return &StreamMeter{} }

// Write feeds raw SSE bytes, split anywhere. Lines may end in "\n", "\r\n"
// or "\r". It never fails, so it can sit behind an io.MultiWriter or
// io.TeeReader without ever breaking the stream it observes.
func (m *StreamMeter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if m.afterCR {
			m.afterCR = false
			if p[0] == '\n' {
				p = p[1:]
				continue
			}
		}
		i := lineEnd(p)
		if i < 0 {
			m.buffer(p)
			break
		}
		switch {
		case m.skipping:
			m.broken = true
		case len(m.partial) > 0:
			m.buffer(p[:i])
			if m.skipping {
				m.broken = true
			} else {
				m.line(m.partial)
			}
		case i > maxLineBytes:
			m.broken = true
		default:
			m.line(p[:i]) // the common case: a whole line inside p, no copy
		}
		m.skipping = false
		m.partial = m.partial[:0]
		if cap(m.partial) > keepBufferBytes {
			m.partial = nil
		}
		m.afterCR = p[i] == '\r'
		p = p[i+1:]
	}
	return n, nil
}

// lineEnd is the index of the first '\r' or '\n' in p, or -1.
func lineEnd(p []byte) int {
	nl := bytes.IndexByte(p, '\n')
	limit := nl
	if limit < 0 {
		limit = len(p)
	}
	if cr := bytes.IndexByte(p[:limit], '\r'); cr >= 0 {
		return cr
	}
	return nl
}

func (m *StreamMeter) buffer(b []byte) {
	if m.skipping {
		return
	}
	if len(m.partial)+len(b) > maxLineBytes {
		m.skipping = true
		m.partial = nil
		return
	}
	m.partial = append(m.partial, b...)
}

// line handles one complete SSE line (without its terminator).
func (m *StreamMeter) line(l []byte) {
	if len(l) == 0 {
		m.dispatch()
		return
	}
	if l[0] == ':' { // comment (keep-alive)
		return
	}
	name, value := l, []byte(nil)
	if c := bytes.IndexByte(l, ':'); c >= 0 {
		name, value = l[:c], l[c+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(name) {
	case "event":
		m.kind = classifyEvent(value)
	case "data":
		m.hasData = true
		switch m.kind {
		case evContentDelta:
			m.meterContent(value)
		case evMessageStart, evMessageDelta, evError, evNone:
			m.appendData(value)
		}
	}
}

func (m *StreamMeter) appendData(v []byte) {
	if m.broken {
		return
	}
	if len(m.data)+len(v)+1 > maxLineBytes {
		m.broken = true
		m.data = nil
		return
	}
	if len(m.data) > 0 {
		m.data = append(m.data, '\n')
	}
	m.data = append(m.data, v...)
}

func classifyEvent(name []byte) eventKind {
	switch string(name) {
	case "message_start":
		return evMessageStart
	case "message_delta":
		return evMessageDelta
	case "message_stop":
		return evMessageStop
	case "error":
		return evError
	case "content_block_delta":
		return evContentDelta
	}
	return evOther
}

// dispatch ends the current event (a blank line).
func (m *StreamMeter) dispatch() {
	kind := m.kind
	if kind == evNone && !m.hasData {
		return // extra blank lines
	}
	m.events++
	if kind == evNone && !m.broken {
		// No "event:" line: fall back to the data's own "type".
		var t struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(m.data, &t) == nil {
			kind = classifyEvent([]byte(t.Type))
		}
		if kind == evContentDelta {
			m.meterContent(m.data)
		}
	}
	switch kind {
	case evMessageStart:
		if !m.broken {
			m.onMessageStart(m.data)
		}
	case evMessageDelta:
		if !m.broken {
			m.onMessageDelta(m.data)
		}
	case evMessageStop:
		m.completed = true
	case evError:
		m.errType = "api_error" // also when the payload is unreadable
		if !m.broken {
			m.onError(m.data)
		}
	}
	m.kind = evNone
	m.hasData = false
	m.broken = false
	m.data = m.data[:0]
	if cap(m.data) > keepBufferBytes {
		m.data = nil
	}
}

// usageJSON has pointers so that absent and null fields can be told from 0.
type usageJSON struct {
	InputTokens              *int64         `json:"input_tokens"`
	OutputTokens             *int64         `json:"output_tokens"`
	CacheCreationInputTokens *int64         `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     *int64         `json:"cache_read_input_tokens"`
	CacheCreation            *CacheCreation `json:"cache_creation"`
}

// overlay copies the non-null fields into dst. Negative counts from a broken
// upstream become 0 so that they can never turn into refunds.
func (u *usageJSON) overlay(dst *Usage) {
	set := func(dst *int64, v *int64) {
		if v != nil {
			*dst = max(*v, 0)
		}
	}
	set(&dst.InputTokens, u.InputTokens)
	set(&dst.OutputTokens, u.OutputTokens)
	set(&dst.CacheCreationInputTokens, u.CacheCreationInputTokens)
	set(&dst.CacheReadInputTokens, u.CacheReadInputTokens)
	if u.CacheCreation != nil {
		cc := CacheCreation{
			Ephemeral5m: max(u.CacheCreation.Ephemeral5m, 0),
			Ephemeral1h: max(u.CacheCreation.Ephemeral1h, 0),
		}
		dst.CacheCreation = &cc
	}
}

func (m *StreamMeter) onMessageStart(data []byte) {
	model, uj, ok := messageStartFast(data)
	if !ok {
		if model, uj, ok = messageStartDecoder(data); !ok {
			return
		}
	}
	m.model = model
	if uj != nil {
		m.usage = Usage{}
		uj.overlay(&m.usage)
	}
	m.estUnits, m.estDeltas = 0, 0
}

func messageStartDecoder(data []byte) (string, *usageJSON, bool) {
	var v struct {
		Message struct {
			Model string     `json:"model"`
			Usage *usageJSON `json:"usage"`
		} `json:"message"`
	}
	if json.Unmarshal(data, &v) != nil {
		return "", nil, false
	}
	return v.Message.Model, v.Message.Usage, true
}

// messageStartFast is messageStartDecoder in one pass, for payloads it can
// read exactly as encoding/json would (ok false otherwise): one of the two
// JSON decodes per stream that the meter cannot avoid.
func messageStartFast(data []byte) (model string, uj *usageJSON, ok bool) {
	var msg []byte
	if !fieldsFast(data, messageKeys[:], func(_ int, v []byte) bool { msg = v; return true }) {
		return "", nil, false
	}
	switch {
	case msg == nil || msg[0] == 'n':
		return "", nil, true
	case msg[0] != '{':
		return "", nil, false
	}
	ok = fieldsFast(msg, modelUsageKeys[:], func(i int, v []byte) bool {
		if i == 0 {
			return stringOrNull(v, &model)
		}
		var fine bool
		uj, fine = usageOrNull(v)
		return fine
	})
	return model, uj, ok
}

var (
	messageKeys    = [...]string{"message"}
	modelUsageKeys = [...]string{"model", "usage"}
	deltaUsageKeys = [...]string{"delta", "usage"}
	stopReasonKeys = [...]string{"stop_reason"}
	typeModelUsage = [...]string{"type", "model", "usage"}
)

func (m *StreamMeter) onMessageDelta(data []byte) {
	stop, uj, ok := messageDeltaFast(data)
	if !ok {
		if stop, uj, ok = messageDeltaDecoder(data); !ok {
			return
		}
	}
	if stop != nil {
		m.stopReason = *stop
	}
	if uj != nil {
		uj.overlay(&m.usage)
		if uj.OutputTokens != nil {
			// The cumulative count includes everything seen so far.
			m.estUnits, m.estDeltas = 0, 0
		}
	}
}

func messageDeltaDecoder(data []byte) (*string, *usageJSON, bool) {
	var v struct {
		Delta struct {
			StopReason *string `json:"stop_reason"`
		} `json:"delta"`
		Usage *usageJSON `json:"usage"`
	}
	if json.Unmarshal(data, &v) != nil {
		return nil, nil, false
	}
	return v.Delta.StopReason, v.Usage, true
}

// messageDeltaFast is messageDeltaDecoder in one pass (ok false when unsure).
func messageDeltaFast(data []byte) (stop *string, uj *usageJSON, ok bool) {
	ok = fieldsFast(data, deltaUsageKeys[:], func(i int, v []byte) bool {
		if i == 1 {
			var fine bool
			uj, fine = usageOrNull(v)
			return fine
		}
		switch v[0] {
		case 'n':
			return true
		case '{':
			return fieldsFast(v, stopReasonKeys[:], func(_ int, sv []byte) bool {
				if sv[0] == 'n' {
					stop = nil
					return true
				}
				s := new(string)
				stop = s
				return sv[0] == '"' && unquote(sv, s) == nil
			})
		}
		return false
	})
	return stop, uj, ok
}

// fieldsFast scans the object obj once and hands the value of each wanted
// key (by its index in want) to fn. It gives up — false, so the caller
// falls back to encoding/json — on anything encoding/json might read
// differently: an escaped key, a wanted key twice (encoding/json keeps the
// last), or a key that its case-insensitive matching would take for a
// wanted one ("Usage").
func fieldsFast(obj []byte, want []string, fn func(i int, val []byte) bool) bool {
	var seen uint32
	return scanObject(obj, func(m jsonMember) bool {
		if m.escaped {
			return false
		}
		k := m.key[1 : len(m.key)-1]
		for i, w := range want {
			if string(k) == w {
				if seen&(1<<i) != 0 {
					return false
				}
				seen |= 1 << i
				return fn(i, m.val)
			}
			if bytes.EqualFold(k, []byte(w)) {
				return false
			}
		}
		return true
	})
}

// stringOrNull decodes a JSON string into dst; null leaves dst as it is.
func stringOrNull(v []byte, dst *string) bool {
	switch v[0] {
	case 'n':
		return true
	case '"':
		return unquote(v, dst) == nil
	}
	return false
}

func usageOrNull(v []byte) (*usageJSON, bool) {
	switch v[0] {
	case 'n':
		return nil, true
	case '{':
		return usageFast(v)
	}
	return nil, false
}

func (m *StreamMeter) onError(data []byte) {
	var v struct {
		Error struct {
			Type string `json:"type"`
		} `json:"error"`
	}
	if json.Unmarshal(data, &v) == nil {
		if t := sanitizeToken(v.Error.Type); t != "" {
			m.errType = t
		}
	}
}

// meterContent notes one content delta for the cut-off estimate.
func (m *StreamMeter) meterContent(data []byte) {
	m.estDeltas++
	m.estUnits += contentUnits(data)
}

// contentUnits counts the text carried by a content_block_delta payload
// without decoding it: the bytes of string values other than "type" and
// "signature" (a signature is not generated text), an ASCII byte as one
// unit and a non-ASCII character as four, as in EstimateInputTokens.
func contentUnits(b []byte) int64 {
	var units int64
	skip := false // the pending value belongs to an ignored key
	for i := 0; i < len(b); i++ {
		if b[i] != '"' {
			continue
		}
		var n int64
		j := i + 1
		for ; j < len(b) && b[j] != '"'; j++ {
			switch c := b[j]; {
			case c == '\\':
				if j+1 < len(b) && b[j+1] == 'u' {
					n += 4
					j += 5
				} else {
					n++
					j++
				}
			case c < 0x80:
				n++
			case c >= 0xC0:
				n += 4
			}
		}
		k := j + 1
		for k < len(b) && (b[k] == ' ' || b[k] == '\t') {
			k++
		}
		if k < len(b) && b[k] == ':' { // a key
			s := b[i+1 : min(j, len(b))]
			skip = string(s) == "type" || string(s) == "signature"
		} else {
			if !skip {
				units += n
			}
			skip = false
		}
		i = j
	}
	return units
}

// Usage is the usage metered so far. For a stream cut off before its final
// message_delta (client gone, upstream dropped, error event), OutputTokens is
// the last reported count plus an estimate of the content seen since (see
// Estimated): what was seen is what gets billed.
func (m *StreamMeter) Usage() Usage {
	u := m.usage
	if m.estDeltas > 0 {
		u.OutputTokens += max(m.estDeltas, (m.estUnits+3)/4)
	}
	if u.CacheCreation != nil {
		cc := *u.CacheCreation
		u.CacheCreation = &cc
	}
	return u
}

// Estimated reports whether Usage().OutputTokens includes content the
// upstream has not yet counted (the stream ended early).
func (m *StreamMeter) Estimated() bool { return m.estDeltas > 0 }

// Model is the model named in message_start ("" before it).
func (m *StreamMeter) Model() string { return m.model }

// Events is the number of SSE events seen, pings included.
func (m *StreamMeter) Events() int { return m.events }

// Completed reports whether message_stop was seen.
func (m *StreamMeter) Completed() bool { return m.completed }

// ErrorType is the error.type of a mid-stream error event ("" when none).
func (m *StreamMeter) ErrorType() string { return m.errType }

// StopReason is the last non-null delta.stop_reason ("" before it).
func (m *StreamMeter) StopReason() string { return m.stopReason }

// errNoUsage is returned by MeterJSON for a body without usage.
var errNoUsage = errors.New("response has no usage")

// MeterJSON reads usage and model from a non-streaming Messages response.
func MeterJSON(body []byte) (Usage, string, error) {
	if u, model, ok, err := meterJSONFast(body); ok {
		return u, model, err
	}
	return meterJSONDecoder(body)
}

// meterJSONDecoder is MeterJSON by encoding/json: the definitive path, taken
// whenever the fast path is not sure it would decide the same.
func meterJSONDecoder(body []byte) (Usage, string, error) {
	var v struct {
		Type  string     `json:"type"`
		Model string     `json:"model"`
		Usage *usageJSON `json:"usage"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return Usage{}, "", fmt.Errorf("metering response: %w", err)
	}
	return meterResult(v.Type, v.Model, v.Usage)
}

func meterResult(typ, model string, uj *usageJSON) (Usage, string, error) {
	if typ == "error" {
		return Usage{}, model, errors.New("metering response: body is an error")
	}
	if uj == nil {
		return Usage{}, model, fmt.Errorf("metering response: %w", errNoUsage)
	}
	var u Usage
	uj.overlay(&u)
	return u, model, nil
}

// meterJSONFast reads an answer in one pass and decodes only its small usage
// object (the answer text is most of the bytes). It takes the answer only
// when that is certain to match encoding/json's reading: every key spelled
// plainly, "type", "model" and "usage" once each at most and of the expected
// kinds, no other key that encoding/json's case-insensitive matching would
// take for one of them; otherwise ok is false.
func meterJSONFast(body []byte) (u Usage, model string, ok bool, err error) {
	var typ string
	var uj *usageJSON
	fine := fieldsFast(body, typeModelUsage[:], func(i int, v []byte) bool {
		switch i {
		case 0:
			return stringOrNull(v, &typ)
		case 1:
			return stringOrNull(v, &model)
		}
		var ok bool
		uj, ok = usageOrNull(v)
		return ok
	})
	if !fine {
		return Usage{}, "", false, nil
	}
	u, model, err = meterResult(typ, model, uj)
	return u, model, true, err
}

// usageFields are usageJSON's counters by their exact JSON names.
var usageFields = [...]string{"input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"}

// usageFast decodes a usage object whose counters are plain integers or
// null, under their exact names, as encoding/json would; ok is false for
// anything it is not sure about (a differently-cased name, a fraction, an
// overflow), and the caller falls back.
func usageFast(raw []byte) (*usageJSON, bool) {
	uj := new(usageJSON)
	var vals [len(usageFields)]int64
	ok := scanObject(raw, func(m jsonMember) bool {
		if m.escaped {
			return false
		}
		k := m.key[1 : len(m.key)-1]
		for i, name := range usageFields {
			if string(k) == name {
				dst := [...]**int64{&uj.InputTokens, &uj.OutputTokens, &uj.CacheCreationInputTokens, &uj.CacheReadInputTokens}[i]
				if m.val[0] == 'n' {
					*dst = nil
					return true
				}
				n, err := strconv.ParseInt(string(m.val), 10, 64)
				if err != nil {
					return false
				}
				vals[i] = n
				*dst = &vals[i]
				return true
			}
			if bytes.EqualFold(k, []byte(name)) {
				return false
			}
		}
		switch {
		case string(k) == "cache_creation":
			switch m.val[0] {
			case 'n':
				uj.CacheCreation = nil
				return true
			case '{':
				// A repeated key decodes into the same struct, as in
				// encoding/json: fields it does not name keep their values.
				if uj.CacheCreation == nil {
					uj.CacheCreation = new(CacheCreation)
				}
				return cacheCreationFast(m.val, uj.CacheCreation)
			}
			return false
		case bytes.EqualFold(k, []byte("cache_creation")):
			return false
		}
		return true // service_tier, server_tool_use, …: not metered
	})
	return uj, ok
}

func cacheCreationFast(raw []byte, cc *CacheCreation) bool {
	return scanObject(raw, func(m jsonMember) bool {
		if m.escaped {
			return false
		}
		k := m.key[1 : len(m.key)-1]
		var dst *int64
		switch {
		case string(k) == "ephemeral_5m_input_tokens":
			dst = &cc.Ephemeral5m
		case string(k) == "ephemeral_1h_input_tokens":
			dst = &cc.Ephemeral1h
		case bytes.EqualFold(k, []byte("ephemeral_5m_input_tokens")), bytes.EqualFold(k, []byte("ephemeral_1h_input_tokens")):
			return false
		default:
			return true
		}
		if m.val[0] == 'n' {
			return true // null leaves a plain int64 as it is
		}
		n, err := strconv.ParseInt(string(m.val), 10, 64)
		*dst = n
		return err == nil
	})
}
