package mock

import (
	"bytes"
	"encoding/json"
	"hash/maphash"
	"strconv"
	"strings"
	"unicode/utf8"
)

// API versions the mock accepts in the anthropic-version header.
const (
	Version2023 = "2023-06-01"
	Version2026 = "2026-10-21"
)

// maxCacheBreakpoints is the real API's limit on blocks carrying cache_control.
const maxCacheBreakpoints = 4

// blockSeed hashes non-text blocks while they are decoded, so the raw bytes need not be kept.
var blockSeed = maphash.MakeSeed()

type cacheControl struct {
	Type string `json:"type"`
	TTL  string `json:"ttl"`
}

// contentBlock keeps what the mock needs from one content block: its text, or for any other
// block type (image, tool_use, tool_result, document, …) the size and hash of its JSON, which
// stand in for its tokens and its identity in the prompt cache.
type contentBlock struct {
	Type         string
	Text         string
	hasText      bool
	hasCitations bool
	CacheControl *cacheControl
	rawLen       int
	rawHash      uint64
	// For image and document blocks: the source type ("base64", "url", "file", "text", …)
	// and, for a base64 image whose header could be read, its size in pixels.
	srcType    string
	imgW, imgH int
}

// blockSource is the part of an image or document source the mock bills by.
type blockSource struct {
	Type      string `json:"type"`
	MediaType string `json:"media_type"`
	Data      string `json:"data"`
}

func (b *contentBlock) UnmarshalJSON(data []byte) error {
	var p struct {
		Type         string          `json:"type"`
		Text         *string         `json:"text"`
		CacheControl *cacheControl   `json:"cache_control"`
		Citations    json.RawMessage `json:"citations"`
		Source       json.RawMessage `json:"source"`
	}
	if err := json.Unmarshal(data, &p); err != nil {
		return err
	}
	b.Type = p.Type
	b.CacheControl = p.CacheControl
	if p.Text != nil {
		b.Text, b.hasText = *p.Text, true
	}
	if (p.Type == "image" || p.Type == "document") && len(p.Source) > 0 && p.Source[0] == '{' {
		var src blockSource
		if json.Unmarshal(p.Source, &src) == nil {
			b.srcType = src.Type
			if p.Type == "image" && src.Type == "base64" {
				b.imgW, b.imgH = base64ImageSize(src.Data)
			}
		}
	}
	b.hasCitations = len(p.Citations) > 0 && !bytes.Equal(p.Citations, []byte("null")) && !bytes.Equal(p.Citations, []byte("[]"))
	if b.Type != "text" {
		b.rawLen = len(data)
		b.rawHash = maphash.Bytes(blockSeed, data)
	}
	return nil
}

// content is a message's content: a plain string or a list of blocks.
type content struct {
	present  bool
	isString bool
	str      string
	blocks   []contentBlock
}

func (c *content) UnmarshalJSON(data []byte) error {
	switch data[0] {
	case 'n': // null: treated as absent
		return nil
	case '"':
		c.present, c.isString = true, true
		return json.Unmarshal(data, &c.str)
	}
	c.present = true
	return json.Unmarshal(data, &c.blocks)
}

type message struct {
	Role    string  `json:"role"`
	Content content `json:"content"`
}

// tool keeps a tool definition's name, type, size and hash; tools come first in the cached
// prefix. Type is empty for a custom tool and names the version of a server tool
// ("web_search_20250305").
type tool struct {
	Name         string
	Type         string
	CacheControl *cacheControl
	rawLen       int
	rawHash      uint64
}

func (t *tool) UnmarshalJSON(data []byte) error {
	var p struct {
		Name         string        `json:"name"`
		Type         string        `json:"type"`
		CacheControl *cacheControl `json:"cache_control"`
	}
	if err := json.Unmarshal(data, &p); err != nil {
		return err
	}
	t.Name, t.Type, t.CacheControl = p.Name, p.Type, p.CacheControl
	t.rawLen = len(data)
	t.rawHash = maphash.Bytes(blockSeed, data)
	return nil
}

// messagesRequest is the part of a Messages API body the mock acts on. Every other field is
// accepted and ignored, as the real API accepts many optional fields the mock has no use for.
type messagesRequest struct {
	Model         *string       `json:"model"`
	MaxTokens     *int64        `json:"max_tokens"`
	Messages      []message     `json:"messages"`
	System        content       `json:"system"`
	Stream        bool          `json:"stream"`
	Temperature   *float64      `json:"temperature"`
	TopP          *float64      `json:"top_p"`
	TopK          *int64        `json:"top_k"`
	StopSequences []string      `json:"stop_sequences"`
	Tools         []tool        `json:"tools"`
	CacheControl  *cacheControl `json:"cache_control"`

	Thinking     *thinkingParam  `json:"thinking"`
	Speed        *string         `json:"speed"`
	InferenceGeo *string         `json:"inference_geo"`
	MCPServers   json.RawMessage `json:"mcp_servers"`
	Container    json.RawMessage `json:"container"`
}

// thinkingParam is the request's extended-thinking configuration.
type thinkingParam struct {
	Type         string `json:"type"`
	BudgetTokens *int64 `json:"budget_tokens"`
	Display      string `json:"display"`
}

// thinks reports whether the request turns extended thinking on.
func (r *messagesRequest) thinks() bool {
	return r.Thinking != nil && (r.Thinking.Type == "enabled" || r.Thinking.Type == "adaptive")
}

// serverTool reports whether the request declares the server tool whose type starts with
// prefix ("web_search_", "web_fetch_").
func (r *messagesRequest) serverTool(prefix string) bool {
	for i := range r.Tools {
		if strings.HasPrefix(r.Tools[i].Type, prefix) {
			return true
		}
	}
	return false
}

// usesServerInput reports whether the request has the API load context the body does not
// show: MCP servers or a container (skills, code execution).
func (r *messagesRequest) usesServerInput() bool {
	return (len(r.MCPServers) > 0 && !isNull(r.MCPServers) && string(r.MCPServers) != "[]") ||
		(len(r.Container) > 0 && !isNull(r.Container))
}

// parseRequest decodes and validates a /v1/messages (needMaxTokens) or count_tokens body.
func parseRequest(body []byte, version string, needMaxTokens bool) (*messagesRequest, *apiError) {
	req := new(messagesRequest)
	if err := json.Unmarshal(body, req); err != nil {
		// The fast decode only says that something is wrong; a slower field-by-field pass
		// finds where, so the caller gets a message naming the exact field.
		return nil, invalidRequest(diagnose(body, err))
	}
	if e := req.validate(version, needMaxTokens); e != nil {
		return nil, e
	}
	return req, nil
}

func (r *messagesRequest) validate(version string, needMaxTokens bool) *apiError {
	switch {
	case r.Model == nil:
		return invalidRequest("model: Field required")
	case *r.Model == "":
		return invalidRequest("model: String should have at least 1 character")
	case len(*r.Model) > 256:
		return invalidRequest("model: String should have at most 256 characters")
	case needMaxTokens && r.MaxTokens == nil:
		return invalidRequest("max_tokens: Field required")
	case needMaxTokens && *r.MaxTokens < 1:
		return invalidRequest("max_tokens: Input should be greater than or equal to 1")
	case r.Messages == nil:
		return invalidRequest("messages: Field required")
	case len(r.Messages) == 0:
		return invalidRequest("messages: List should have at least 1 item")
	case len(r.Messages) > 100_000:
		return invalidRequest("messages: List should have at most 100000 items")
	}
	if version == Version2026 {
		// 2026-10-21 removed the sampling parameters: they are rejected even at their defaults.
		for _, p := range [...]struct {
			name string
			set  bool
		}{{"temperature", r.Temperature != nil}, {"top_p", r.TopP != nil}, {"top_k", r.TopK != nil}} {
			if p.set {
				return invalidRequest(p.name + ": is not supported in API version " + Version2026 +
					"; remove it from the request (see the 2026-10-21 migration guide)")
			}
		}
	} else {
		switch {
		case r.Temperature != nil && (*r.Temperature < 0 || *r.Temperature > 1):
			return invalidRequest("temperature: Input should be between 0 and 1")
		case r.TopP != nil && (*r.TopP < 0 || *r.TopP > 1):
			return invalidRequest("top_p: Input should be between 0 and 1")
		case r.TopK != nil && *r.TopK < 0:
			return invalidRequest("top_k: Input should be greater than or equal to 0")
		}
	}

	breakpoints := 0
	// prefix is the JSON path of the object holding cache_control, with a trailing dot.
	checkCC := func(prefix string, cc *cacheControl) *apiError {
		if cc == nil {
			return nil
		}
		breakpoints++
		if cc.Type != "ephemeral" {
			return invalidRequest(prefix + "cache_control.type: Input should be 'ephemeral'")
		}
		if cc.TTL != "" && cc.TTL != "5m" && cc.TTL != "1h" {
			return invalidRequest(prefix + "cache_control.ttl: Input should be '5m' or '1h'")
		}
		return nil
	}
	for i := range r.Tools {
		if e := checkCC("tools."+strconv.Itoa(i)+".", r.Tools[i].CacheControl); e != nil {
			return e
		}
	}
	if !r.System.isString {
		for j := range r.System.blocks {
			b := &r.System.blocks[j]
			path := "system." + strconv.Itoa(j)
			if b.Type != "text" {
				return invalidRequest(path + ".type: Input should be 'text'")
			}
			if !b.hasText {
				return invalidRequest(path + ".text: Field required")
			}
			if e := checkCC(path+".", b.CacheControl); e != nil {
				return e
			}
		}
	}
	last := len(r.Messages) - 1
	for i := range r.Messages {
		m := &r.Messages[i]
		path := "messages." + strconv.Itoa(i)
		switch m.Role {
		case "user", "assistant":
		case "":
			return invalidRequest(path + ".role: Field required")
		default:
			return invalidRequest(path + ".role: Input should be 'user' or 'assistant'")
		}
		if !m.Content.present {
			return invalidRequest(path + ".content: Field required")
		}
		// A trailing assistant message is a prefill and may be empty; nothing else may.
		if m.Content.isString && m.Content.str == "" && !(i == last && m.Role == "assistant") {
			return invalidRequest("messages: all messages must have non-empty content except for the optional final assistant message")
		}
		if !m.Content.isString && len(m.Content.blocks) == 0 && !(i == last && m.Role == "assistant") {
			return invalidRequest("messages: all messages must have non-empty content except for the optional final assistant message")
		}
		for j := range m.Content.blocks {
			b := &m.Content.blocks[j]
			bpath := path + ".content." + strconv.Itoa(j)
			switch {
			case b.Type == "":
				return invalidRequest(bpath + ".type: Field required")
			case b.Type == "text" && !b.hasText:
				return invalidRequest(bpath + ".text: Field required")
			case b.Type == "text" && b.Text == "":
				return invalidRequest("messages: text content blocks must be non-empty")
			case version == Version2026 && m.Role == "assistant" && b.Type == "document":
				return invalidRequest(bpath + ": document blocks are not allowed in assistant messages in API version " + Version2026)
			case version == Version2026 && m.Role == "user" && b.Type == "text" && b.hasCitations:
				return invalidRequest(bpath + ".citations: user text blocks may not carry citations in API version " + Version2026)
			}
			if e := checkCC(bpath+".", b.CacheControl); e != nil {
				return e
			}
		}
	}
	if e := checkCC("", r.CacheControl); e != nil {
		return e
	}
	if e := r.validateFeatures(needMaxTokens); e != nil {
		return e
	}
	if breakpoints > maxCacheBreakpoints {
		return invalidRequest("A maximum of " + strconv.Itoa(maxCacheBreakpoints) +
			" blocks with cache_control may be provided. Found " + strconv.Itoa(breakpoints) + ".")
	}
	return nil
}

// lastUserText returns the text of the last user message: where directives are read from
// and what the answer quotes.
func (r *messagesRequest) lastUserText() string {
	for i := len(r.Messages) - 1; i >= 0; i-- {
		m := &r.Messages[i]
		if m.Role != "user" {
			continue
		}
		if m.Content.isString {
			return m.Content.str
		}
		var texts []string
		for j := range m.Content.blocks {
			if b := &m.Content.blocks[j]; b.Type == "text" {
				texts = append(texts, b.Text)
			}
		}
		if len(texts) == 1 {
			return texts[0]
		}
		return strings.Join(texts, "\n")
	}
	return ""
}

// systemChars is the length of the system prompt in characters, which the answer reports so
// a test can see that the system prompt arrived intact.
func (r *messagesRequest) systemChars() int {
	if r.System.isString {
		return utf8.RuneCountInString(r.System.str)
	}
	n := 0
	for j := range r.System.blocks {
		n += utf8.RuneCountInString(r.System.blocks[j].Text)
	}
	return n
}

// validateFeatures checks thinking, speed and inference_geo as the real API does.
func (r *messagesRequest) validateFeatures(needMaxTokens bool) *apiError {
	if t := r.Thinking; t != nil {
		switch t.Type {
		case "enabled":
			switch {
			case t.BudgetTokens == nil:
				return invalidRequest("thinking.enabled.budget_tokens: Field required")
			case *t.BudgetTokens < 1024:
				return invalidRequest("thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
			case needMaxTokens && *t.BudgetTokens >= *r.MaxTokens:
				return invalidRequest("`max_tokens` must be greater than `thinking.budget_tokens`")
			}
		case "adaptive", "disabled":
		case "":
			return invalidRequest("thinking.type: Field required")
		default:
			return invalidRequest("thinking.type: Input should be 'enabled', 'adaptive' or 'disabled'")
		}
		switch t.Display {
		case "", "summarized", "omitted":
		default:
			return invalidRequest("thinking.display: Input should be 'summarized' or 'omitted'")
		}
	}
	if r.Speed != nil && *r.Speed != "standard" && *r.Speed != "fast" {
		return invalidRequest("speed: Input should be 'standard' or 'fast'")
	}
	if g := r.InferenceGeo; g != nil && (*g == "" || len(*g) > 32 || !isSnakeWord(*g)) {
		return invalidRequest("inference_geo: Input should be a region name such as 'us' or 'global'")
	}
	return nil
}
