package anthropic

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
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
	evBlockStart
	evBlockStop
	evOther // ping and types added later
)

// StreamPhase is where a stream is, for settling one that ends early.
type StreamPhase uint8

const (
	PhaseBeforeStart   StreamPhase = iota // no message_start yet
	PhaseBetweenBlocks                    // after message_start, outside any content block
	PhaseThinking                         // inside a thinking or redacted_thinking block
	PhaseContent                          // inside text, tool_use or a server-tool block
	PhaseDone                             // message_stop seen
)

// String names the phase (the reason label of an estimated settlement).
func (p StreamPhase) String() string {
	switch p {
	case PhaseBeforeStart:
		return "before_message_start"
	case PhaseThinking:
		return "in_thinking"
	case PhaseContent, PhaseBetweenBlocks:
		return "in_output"
	}
	return "done"
}

// ErrMeterHalted is returned by StreamMeter.Write once its watcher refused
// to go on; the bytes up to the end of the event that triggered it were
// metered (the n Write returns).
var ErrMeterHalted = errors.New("stream meter halted by its watcher")

// A Watcher is called by a StreamMeter at the end of each event that changes
// what the call may cost: message_start, every message_delta, the start of a
// thinking block, and the content delta that takes the output seen past the
// threshold the watcher last returned. It returns the next output threshold
// (tokens, as OutputSoFar counts them) and false to halt the stream.
type Watcher func() (nextOutput int64, ok bool)

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

	phase         StreamPhase
	started       bool // message_start seen
	final         bool // a message_delta carried a cumulative output count
	thinkingSince bool // a thinking block opened since the last output count
	toolUses      int  // server_tool_use / mcp_tool_use blocks seen
	notify        bool // the current event is one the watcher sees

	watch   Watcher
	watchAt int64 // call watch once OutputSoFar reaches this
	halted  bool
}

// NewStreamMeter returns a meter for one stream.
func NewStreamMeter() *StreamMeter { return &StreamMeter{} }

// Watch installs w, first called when the output seen reaches firstOutput
// tokens or at the first event that changes the cost, whichever is first.
func (m *StreamMeter) Watch(w Watcher, firstOutput int64) {
	m.watch, m.watchAt = w, firstOutput
}

// Write feeds raw SSE bytes, split anywhere. Lines may end in "\n", "\r\n"
// or "\r". Without a Watcher it never fails, so it can sit behind an
// io.MultiWriter or io.TeeReader without ever breaking the stream it
// observes.
//
// Once a Watcher has halted the meter, Write returns ErrMeterHalted and the
// number of bytes up to the end of the event that halted it: a proxy
// forwards exactly those and then ends the stream at an event boundary.
func (m *StreamMeter) Write(p []byte) (int, error) {
	if m.halted {
		return 0, ErrMeterHalted
	}
	n := len(p)
	all := p
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
		if m.halted {
			return len(all) - len(p), ErrMeterHalted
		}
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
		case evMessageStart, evMessageDelta, evError, evBlockStart, evNone:
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
	case "content_block_start":
		return evBlockStart
	case "content_block_stop":
		return evBlockStop
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
	case evBlockStart:
		if !m.broken {
			m.onBlockStart(m.data)
		} else {
			m.phase = PhaseContent
		}
	case evBlockStop:
		if m.started {
			m.phase = PhaseBetweenBlocks
		}
	case evContentDelta:
		if m.started && m.phase == PhaseBetweenBlocks {
			m.phase = PhaseContent // a delta without its block start
		}
		if m.watch != nil && m.OutputSoFar() >= m.watchAt {
			m.notify = true
		}
	case evMessageStop:
		m.completed = true
		m.phase = PhaseDone
	case evError:
		m.errType = "api_error" // also when the payload is unreadable
		if !m.broken {
			m.onError(m.data)
		}
	}
	if m.notify {
		m.notify = false
		if m.watch != nil {
			next, ok := m.watch()
			m.watchAt = next
			m.halted = !ok
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
	InputTokens              *int64            `json:"input_tokens"`
	OutputTokens             *int64            `json:"output_tokens"`
	CacheCreationInputTokens *int64            `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     *int64            `json:"cache_read_input_tokens"`
	CacheCreation            *CacheCreation    `json:"cache_creation"`
	ServerToolUse            *ServerToolUse    `json:"server_tool_use"`
	ServiceTier              *string           `json:"service_tier"`
	Speed                    *string           `json:"speed"`
	InferenceGeo             *string           `json:"inference_geo"`
	Iterations               *[]IterationUsage `json:"iterations"`
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
		dst.CacheCreation = u.CacheCreation.nonNegative()
	}
	if u.ServerToolUse != nil {
		dst.ServerToolUse = &ServerToolUse{
			WebSearchRequests:     max(u.ServerToolUse.WebSearchRequests, 0),
			WebFetchRequests:      max(u.ServerToolUse.WebFetchRequests, 0),
			CodeExecutionRequests: max(u.ServerToolUse.CodeExecutionRequests, 0),
		}
	}
	str := func(dst *string, v *string) {
		if v != nil {
			*dst = sanitizeToken(*v)
		}
	}
	str(&dst.ServiceTier, u.ServiceTier)
	str(&dst.Speed, u.Speed)
	str(&dst.InferenceGeo, u.InferenceGeo)
	if u.Iterations != nil {
		its := make([]IterationUsage, len(*u.Iterations))
		for i, it := range *u.Iterations {
			its[i] = IterationUsage{
				Type:                     sanitizeToken(it.Type),
				InputTokens:              max(it.InputTokens, 0),
				OutputTokens:             max(it.OutputTokens, 0),
				CacheCreationInputTokens: max(it.CacheCreationInputTokens, 0),
				CacheReadInputTokens:     max(it.CacheReadInputTokens, 0),
			}
			if it.CacheCreation != nil {
				its[i].CacheCreation = it.CacheCreation.nonNegative()
			}
		}
		dst.Iterations = its
	}
}

func (c *CacheCreation) nonNegative() *CacheCreation {
	return &CacheCreation{Ephemeral5m: max(c.Ephemeral5m, 0), Ephemeral1h: max(c.Ephemeral1h, 0)}
}

func (m *StreamMeter) onMessageStart(data []byte) {
	var v struct {
		Message struct {
			Model string     `json:"model"`
			Usage *usageJSON `json:"usage"`
		} `json:"message"`
	}
	if json.Unmarshal(data, &v) != nil {
		return
	}
	m.model = v.Message.Model
	if v.Message.Usage != nil {
		m.usage = Usage{}
		v.Message.Usage.overlay(&m.usage)
	}
	m.started = true
	m.phase = PhaseBetweenBlocks
	m.estUnits, m.estDeltas, m.thinkingSince = 0, 0, false
	m.notify = true
}

func (m *StreamMeter) onMessageDelta(data []byte) {
	var v struct {
		Delta struct {
			StopReason *string `json:"stop_reason"`
		} `json:"delta"`
		Usage *usageJSON `json:"usage"`
	}
	if json.Unmarshal(data, &v) != nil {
		return
	}
	if v.Delta.StopReason != nil {
		m.stopReason = *v.Delta.StopReason
	}
	if v.Usage != nil {
		v.Usage.overlay(&m.usage)
		if v.Usage.OutputTokens != nil {
			// The cumulative count includes everything seen so far,
			// hidden thinking included.
			m.estUnits, m.estDeltas, m.thinkingSince = 0, 0, false
			m.final = true
		}
	}
	m.notify = true
}

// onBlockStart notes the kind of content block that opens.
func (m *StreamMeter) onBlockStart(data []byte) {
	var v struct {
		ContentBlock struct {
			Type string `json:"type"`
		} `json:"content_block"`
	}
	_ = json.Unmarshal(data, &v) // unreadable: an ordinary content block
	switch v.ContentBlock.Type {
	case "thinking", "redacted_thinking":
		m.phase = PhaseThinking
		m.thinkingSince = true
		m.notify = true
	case "server_tool_use", "mcp_tool_use":
		// Its results enter the context as input the upstream bills and
		// reports only in the final usage.
		m.phase = PhaseContent
		m.toolUses++
		m.notify = true
	default:
		m.phase = PhaseContent
	}
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
	u.OutputTokens = m.OutputSoFar()
	if u.CacheCreation != nil {
		cc := *u.CacheCreation
		u.CacheCreation = &cc
	}
	if u.ServerToolUse != nil {
		st := *u.ServerToolUse
		u.ServerToolUse = &st
	}
	u.Iterations = append([]IterationUsage(nil), u.Iterations...)
	if len(u.Iterations) == 0 {
		u.Iterations = nil
	}
	return u
}

// OutputSoFar is the output metered so far: the last cumulative count plus
// an estimate of the content seen since (hidden thinking not included).
func (m *StreamMeter) OutputSoFar() int64 {
	out := m.usage.OutputTokens
	if m.estDeltas > 0 {
		out += max(m.estDeltas, (m.estUnits+3)/4)
	}
	return out
}

// Phase is where the stream is now.
func (m *StreamMeter) Phase() StreamPhase { return m.phase }

// Started reports whether message_start was seen.
func (m *StreamMeter) Started() bool { return m.started }

// Bounds are what a request allows, for the conservative bound of a stream
// whose final usage never arrived.
type Bounds struct {
	InputTokens    int64 // the input estimate made before the call
	MaxTokens      int64 // the request's max_tokens (output can never exceed it)
	ThinkingBudget int64 // thinking budget_tokens (max_tokens for adaptive thinking); 0 without thinking
	// LateInputTokens bounds the input server tools add during the answer
	// (search results, fetched pages), charged once a server tool block
	// was seen.
	LateInputTokens int64
}

// AbandonedOutputMargin is the output added to the bound of every call that
// ended without its final usage: what the upstream may have generated after
// the last event the gateway saw, before it noticed the cancellation. It is
// also the documented minimum of a call the upstream accepted that ended
// before any usage arrived: such a call is never free.
const AbandonedOutputMargin = 64

// Bound is the usage to settle at: the metered usage when the stream
// reported its final output count, otherwise a conservative bound — never
// less than the input known from message_start (or b.InputTokens before
// it), plus LateInputTokens once a server tool ran; the output seen plus
// AbandonedOutputMargin, plus the whole thinking budget when a thinking
// block opened since the last output count (thinking is billed in full
// even when only a summary or a signature is shown), capped at MaxTokens.
// estimated reports whether it is such a bound.
func (m *StreamMeter) Bound(b Bounds) (u Usage, estimated bool) {
	u = m.Usage()
	if m.final && m.estDeltas == 0 && !m.thinkingSince {
		return u, false // the cumulative count covers everything
	}
	if !m.started {
		u.InputTokens = max(u.InputTokens, b.InputTokens)
	}
	if m.toolUses > 0 {
		u.InputTokens += b.LateInputTokens
	}
	out := u.OutputTokens + AbandonedOutputMargin
	if m.thinkingSince {
		out += b.ThinkingBudget
	}
	if b.MaxTokens > 0 {
		out = min(out, max(b.MaxTokens, u.OutputTokens))
	}
	u.OutputTokens = out
	return u, true
}

// Estimated reports whether Usage().OutputTokens includes content the
// upstream has not yet counted (the stream ended early).
func (m *StreamMeter) Estimated() bool { return m.estDeltas > 0 }

// Halted reports whether the watcher stopped the meter.
func (m *StreamMeter) Halted() bool { return m.halted }

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
	var v struct {
		Type  string     `json:"type"`
		Model string     `json:"model"`
		Usage *usageJSON `json:"usage"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return Usage{}, "", fmt.Errorf("metering response: %w", err)
	}
	if v.Type == "error" {
		return Usage{}, v.Model, errors.New("metering response: body is an error")
	}
	if v.Usage == nil {
		return Usage{}, v.Model, fmt.Errorf("metering response: %w", errNoUsage)
	}
	var u Usage
	v.Usage.overlay(&u)
	return u, v.Model, nil
}
