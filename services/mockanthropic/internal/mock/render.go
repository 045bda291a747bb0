package mock

import (
	"bytes"
	"encoding/json"
	"sync"
)

// The response shapes, encoded with encoding/json. Field order is the order the real API
// sends; optional fields are omitted when a call does not use the feature, so a plain call
// looks exactly as it always did.

// CacheCreation splits cache writes by TTL.
type CacheCreation struct {
	Ephemeral5m int64 `json:"ephemeral_5m_input_tokens"`
	Ephemeral1h int64 `json:"ephemeral_1h_input_tokens"`
}

// ServerToolUse counts server tool requests, each billed as a fee on top of tokens.
type ServerToolUse struct {
	WebSearchRequests int64 `json:"web_search_requests"`
	WebFetchRequests  int64 `json:"web_fetch_requests"`
}

// Iteration is one sampling iteration of usage.iterations.
type Iteration struct {
	Type                     string        `json:"type"`
	InputTokens              int64         `json:"input_tokens"`
	OutputTokens             int64         `json:"output_tokens"`
	CacheCreationInputTokens int64         `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int64         `json:"cache_read_input_tokens"`
	CacheCreation            CacheCreation `json:"cache_creation"`
}

type outputDetailsJSON struct {
	ThinkingTokens int64 `json:"thinking_tokens"`
}

type usageJSON struct {
	InputTokens              int64              `json:"input_tokens"`
	CacheCreationInputTokens int64              `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int64              `json:"cache_read_input_tokens"`
	CacheCreation            *CacheCreation     `json:"cache_creation,omitempty"`
	OutputTokens             int64              `json:"output_tokens"`
	OutputTokensDetails      *outputDetailsJSON `json:"output_tokens_details,omitempty"`
	ServerToolUse            *ServerToolUse     `json:"server_tool_use,omitempty"`
	ServiceTier              string             `json:"service_tier,omitempty"`
	Speed                    string             `json:"speed,omitempty"`
	InferenceGeo             string             `json:"inference_geo,omitempty"`
	Iterations               []Iteration        `json:"iterations,omitempty"`
}

// usagePhase selects which fields a usage object carries.
type usagePhase uint8

const (
	usageStart   usagePhase = iota // message_start: input side, provisional output
	usageDelta                     // a message_delta before the last one
	usageFinal                     // the last message_delta
	usageMessage                   // a non-streamed Message
)

// usageJSON renders u as the given phase shows it.
func (c *call) usageJSON(u *usage, phase usagePhase) *usageJSON {
	j := &usageJSON{
		InputTokens:              u.input,
		CacheCreationInputTokens: u.cacheCreation(),
		CacheReadInputTokens:     u.cacheRead,
		OutputTokens:             u.output,
	}
	if phase == usageStart || phase == usageMessage {
		j.CacheCreation = &CacheCreation{u.cacheCreate5m, u.cacheCreate1h}
		j.ServiceTier = "standard"
		j.Speed = c.speed
		j.InferenceGeo = c.geo
	}
	if c.serverTools {
		j.ServerToolUse = &ServerToolUse{u.webSearch, u.webFetch}
	}
	if phase == usageStart {
		j.OutputTokens = 1
		return j
	}
	if u.thinking > 0 {
		j.OutputTokensDetails = &outputDetailsJSON{u.thinking}
	}
	if phase != usageDelta {
		j.Iterations = splitIterations(u, c.iterations)
	}
	return j
}

// splitIterations divides u over n sampling iterations: input and output evenly (the
// remainder in the last), cache reads and writes in the first, where the prompt is read.
// The entries sum to the totals.
func splitIterations(u *usage, n int) []Iteration {
	if n <= 0 {
		return nil
	}
	its := make([]Iteration, n)
	for i := range its {
		its[i] = Iteration{Type: "message", InputTokens: u.input / int64(n), OutputTokens: u.output / int64(n)}
	}
	last := &its[n-1]
	last.InputTokens += u.input % int64(n)
	last.OutputTokens += u.output % int64(n)
	its[0].CacheReadInputTokens = u.cacheRead
	its[0].CacheCreationInputTokens = u.cacheCreation()
	its[0].CacheCreation = CacheCreation{u.cacheCreate5m, u.cacheCreate1h}
	return its
}

type textJSON struct {
	Type      string     `json:"type"`
	Text      string     `json:"text"`
	Citations []citation `json:"citations,omitempty"`
}

type thinkingJSON struct {
	Type      string `json:"type"`
	Thinking  string `json:"thinking"`
	Signature string `json:"signature"`
}

type thinkingStartJSON struct {
	Type     string `json:"type"`
	Thinking string `json:"thinking"`
}

type redactedJSON struct {
	Type string `json:"type"`
	Data string `json:"data"`
}

type toolUseJSON struct {
	Type  string          `json:"type"`
	ID    string          `json:"id"`
	Name  string          `json:"name"`
	Input json.RawMessage `json:"input"`
}

type searchResultsJSON struct {
	Type      string         `json:"type"`
	ToolUseID string         `json:"tool_use_id"`
	Content   []searchResult `json:"content"`
}

type fetchResultJSON struct {
	Type      string `json:"type"`
	ToolUseID string `json:"tool_use_id"`
	Content   struct {
		Type        string `json:"type"`
		URL         string `json:"url"`
		RetrievedAt string `json:"retrieved_at"`
		Content     struct {
			Type   string `json:"type"`
			Source struct {
				Type      string `json:"type"`
				MediaType string `json:"media_type"`
				Data      string `json:"data"`
			} `json:"source"`
			Title string `json:"title"`
		} `json:"content"`
	} `json:"content"`
}

var (
	emptyInput    = json.RawMessage("{}")
	textStart     = &textJSON{Type: "text"} // shared, never modified
	thinkingStart = &thinkingStartJSON{Type: "thinking"}
)

// blockJSON renders b as it appears in a Message's content, or with start as the
// content_block_start event opens it (empty text, thinking and tool input, to be filled by
// deltas).
func blockJSON(b *replyBlock, start bool) any {
	switch b.kind {
	case kindThinking:
		if start {
			return thinkingStart
		}
		return &thinkingJSON{Type: "thinking", Thinking: b.text, Signature: b.signature}
	case kindRedactedThinking:
		return &redactedJSON{Type: "redacted_thinking", Data: b.signature}
	case kindToolUse, kindServerToolUse:
		j := &toolUseJSON{Type: "tool_use", ID: b.id, Name: b.name, Input: json.RawMessage(b.input)}
		if b.kind == kindServerToolUse {
			j.Type = "server_tool_use"
		}
		if start {
			j.Input = emptyInput
		}
		return j
	case kindSearchResult:
		return &searchResultsJSON{Type: "web_search_tool_result", ToolUseID: b.id, Content: b.results}
	case kindFetchResult:
		j := &fetchResultJSON{Type: "web_fetch_tool_result", ToolUseID: b.id}
		j.Content.Type, j.Content.URL, j.Content.RetrievedAt = "web_fetch_result", b.url, "2026-01-01T00:00:00Z"
		j.Content.Content.Type, j.Content.Content.Title = "document", "Mock page "+b.url
		j.Content.Content.Source.Type, j.Content.Content.Source.MediaType = "text", "text/plain"
		j.Content.Content.Source.Data = "Mock content of " + b.url + "."
		return j
	}
	if start {
		return textStart
	}
	return &textJSON{Type: "text", Text: b.text, Citations: b.citations}
}

type messageJSON struct {
	ID           string     `json:"id"`
	Type         string     `json:"type"`
	Role         string     `json:"role"`
	Model        string     `json:"model"`
	Content      []any      `json:"content"`
	StopReason   *string    `json:"stop_reason"`
	StopSequence *string    `json:"stop_sequence"`
	Usage        *usageJSON `json:"usage"`
}

// stopFields returns the stop_reason and stop_sequence of a finished reply.
func stopFields(rp *reply) (*string, *string) {
	reason := rp.stopReason
	if rp.stopReason == stopSequence {
		seq := rp.stopSequence
		return &reason, &seq
	}
	return &reason, nil
}

// messageBody renders the complete non-streamed reply.
func (c *call) messageBody(id string, rp *reply, u *usage) *messageJSON {
	m := &messageJSON{ID: id, Type: "message", Role: "assistant", Model: c.model,
		Content: make([]any, len(rp.blocks)), Usage: c.usageJSON(u, usageMessage)}
	for i := range rp.blocks {
		m.Content[i] = blockJSON(&rp.blocks[i], false)
	}
	m.StopReason, m.StopSequence = stopFields(rp)
	return m
}

type messageStartEvent struct {
	Type    string       `json:"type"`
	Message *messageJSON `json:"message"`
}

type blockStartEvent struct {
	Type         string `json:"type"`
	Index        int    `json:"index"`
	ContentBlock any    `json:"content_block"`
}

type blockDeltaEvent struct {
	Type  string `json:"type"`
	Index int    `json:"index"`
	Delta any    `json:"delta"`
}

type blockStopEvent struct {
	Type  string `json:"type"`
	Index int    `json:"index"`
}

type textDelta struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type thinkingDelta struct {
	Type     string `json:"type"`
	Thinking string `json:"thinking"`
}

type signatureDelta struct {
	Type      string `json:"type"`
	Signature string `json:"signature"`
}

type inputJSONDelta struct {
	Type        string `json:"type"`
	PartialJSON string `json:"partial_json"`
}

type citationsDelta struct {
	Type     string    `json:"type"`
	Citation *citation `json:"citation"`
}

type messageDeltaEvent struct {
	Type  string `json:"type"`
	Delta struct {
		StopReason   *string `json:"stop_reason"`
		StopSequence *string `json:"stop_sequence"`
	} `json:"delta"`
	Usage *usageJSON `json:"usage"`
}

// jsonBuf is a reusable buffer with an encoder writing into it.
type jsonBuf struct {
	buf bytes.Buffer
	enc *json.Encoder
}

var jsonBufPool = sync.Pool{New: func() any {
	j := &jsonBuf{}
	j.buf.Grow(4096)
	j.enc = json.NewEncoder(&j.buf)
	return j
}}

func getJSONBuf() *jsonBuf { j := jsonBufPool.Get().(*jsonBuf); j.buf.Reset(); return j }

func putJSONBuf(j *jsonBuf) {
	// Oversized buffers (a 100k-token answer) would pin memory in the pool for no gain.
	if j.buf.Cap() > 1<<20 {
		return
	}
	jsonBufPool.Put(j)
}

// encode appends v as JSON without the encoder's trailing newline.
func (j *jsonBuf) encode(v any) {
	// Encoding the mock's own types cannot fail: no channels, funcs or cyclic values.
	_ = j.enc.Encode(v)
	j.buf.Truncate(j.buf.Len() - 1)
}

// event replaces the buffer's content with one SSE event and returns it.
func (j *jsonBuf) event(name string, v any) []byte {
	j.buf.Reset()
	j.buf.WriteString("event: ")
	j.buf.WriteString(name)
	j.buf.WriteString("\ndata: ")
	_ = j.enc.Encode(v)
	j.buf.WriteByte('\n')
	return j.buf.Bytes()
}
