package anthropic

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Features is what a Messages request asks the API to do that its body does
// not show the size of, or that changes the price of every token: input the
// API fetches itself (documents and images by URL or Files API id, server
// tools, MCP servers, skills) and the price options (fast mode, data
// residency, price-changing betas).
type Features struct {
	URLDocuments  int // document blocks with source.type "url"
	FileDocuments int // document blocks with source.type "file" (Files API)
	URLImages     int
	FileImages    int
	// ContainerUploads are container_upload blocks: a Files API file put
	// into the code execution container.
	ContainerUploads int
	ServerTools      []ServerTool
	MCPServers       int
	// Skills counts container.skills entries; Container is any container.
	Skills    int
	Container bool
	// Speed and InferenceGeo are the request's values ("" when unset).
	Speed        string
	InferenceGeo string
	// ThinkingBudget is thinking.budget_tokens (0 when unset or adaptive).
	ThinkingBudget int64
	// Betas are the anthropic-beta values, split and trimmed.
	Betas []string
}

// ServerTool is one tools[] entry the API runs itself.
type ServerTool struct {
	Type string // as sent, e.g. "web_search_20250305"
	// Kind groups versions: web_search, web_fetch, code_execution,
	// tool_search, mcp; or the type itself for a typed tool the gateway
	// does not know.
	Kind             string
	MaxUses          int64 // 0 when the request sets none
	MaxContentTokens int64 // web_fetch max_content_tokens; 0 when unset
}

// Tool kinds.
const (
	ToolWebSearch     = "web_search"
	ToolWebFetch      = "web_fetch"
	ToolCodeExecution = "code_execution"
	ToolSearch        = "tool_search"
	ToolMCP           = "mcp"
)

// toolKind classifies a tool's "type". Client tools (run by the caller, so
// their results arrive in a later, visible request) return "".
func toolKind(typ string) string {
	switch {
	case typ == "" || typ == "custom":
		return ""
	case strings.HasPrefix(typ, "web_search_"):
		return ToolWebSearch
	case strings.HasPrefix(typ, "web_fetch_"):
		return ToolWebFetch
	case strings.HasPrefix(typ, "code_execution_"), strings.HasPrefix(typ, "bash_code_execution_"),
		strings.HasPrefix(typ, "text_editor_code_execution_"):
		return ToolCodeExecution
	case strings.HasPrefix(typ, "tool_search_tool_"):
		return ToolSearch
	case typ == "mcp_toolset":
		return ToolMCP
	case strings.HasPrefix(typ, "bash_"), strings.HasPrefix(typ, "text_editor_"), strings.HasPrefix(typ, "computer_"),
		strings.HasPrefix(typ, "memory_"), strings.HasPrefix(typ, "browser_"):
		return ""
	}
	return typ
}

// DetectFeatures reads the features of a parsed request. betaHeaders are the
// values of every anthropic-beta header line. Fields of the wrong JSON shape
// are left to the upstream to reject, except where a wrong shape could hide
// a feature (a tool list that does not decode), which is an error.
func DetectFeatures(req MessageRequest, betaHeaders []string) (Features, error) {
	var f Features
	for _, h := range betaHeaders {
		for _, v := range strings.Split(h, ",") {
			if v = strings.TrimSpace(v); v != "" {
				f.Betas = append(f.Betas, v)
			}
		}
	}
	if len(req.Tools) > 0 {
		var tools []struct {
			Type             string `json:"type"`
			MaxUses          *int64 `json:"max_uses"`
			MaxContentTokens *int64 `json:"max_content_tokens"`
		}
		if err := json.Unmarshal(req.Tools, &tools); err != nil {
			return f, &RequestError{Field: "tools", Problem: "must be an array of tool objects", err: err}
		}
		for _, t := range tools {
			kind := toolKind(t.Type)
			if kind == "" {
				continue
			}
			st := ServerTool{Type: t.Type, Kind: kind}
			if t.MaxUses != nil {
				st.MaxUses = *t.MaxUses
			}
			if t.MaxContentTokens != nil {
				st.MaxContentTokens = *t.MaxContentTokens
			}
			f.ServerTools = append(f.ServerTools, st)
		}
	}
	if raw, ok := req.Extra["speed"]; ok {
		_ = json.Unmarshal(raw, &f.Speed)
	}
	if raw, ok := req.Extra["inference_geo"]; ok {
		_ = json.Unmarshal(raw, &f.InferenceGeo)
	}
	if raw, ok := req.Extra["mcp_servers"]; ok && jsonKind(raw) == '[' {
		var servers []json.RawMessage
		if err := json.Unmarshal(raw, &servers); err != nil {
			return f, &RequestError{Field: "mcp_servers", Problem: "must be an array", err: err}
		}
		f.MCPServers = len(servers)
	}
	if raw, ok := req.Extra["container"]; ok && jsonKind(raw) != 'n' {
		f.Container = true
		if jsonKind(raw) == '{' {
			var c struct {
				Skills []json.RawMessage `json:"skills"`
			}
			_ = json.Unmarshal(raw, &c)
			f.Skills = len(c.Skills)
		}
	}
	if len(req.Thinking) > 0 {
		var th struct {
			BudgetTokens int64 `json:"budget_tokens"`
		}
		_ = json.Unmarshal(req.Thinking, &th)
		f.ThinkingBudget = th.BudgetTokens
	}
	for _, raw := range []json.RawMessage{req.Messages, req.System} {
		if err := f.scanContent(raw); err != nil {
			return f, err
		}
	}
	return f, nil
}

// mayFetch reports whether raw could hold a block the API fetches: such a
// block needs the JSON string "url" or "file" as a source type, or
// "container_upload", unless the sender escaped letters (\u0075rl), which
// JSON allows and the upstream decodes.
func mayFetch(raw []byte) bool {
	return bytes.Contains(raw, []byte(`"url"`)) || bytes.Contains(raw, []byte(`"file"`)) ||
		bytes.Contains(raw, []byte(`"container_upload"`)) || bytes.Contains(raw, []byte(`\u`))
}

// scanContent counts fetched documents and images in messages or system,
// in one pass over the bytes that allocates nothing (a 32 MB body of base64
// is skipped at memory speed, not decoded). Only bodies that may hold such a
// block are scanned at all.
func (f *Features) scanContent(raw json.RawMessage) error {
	if len(raw) == 0 || !mayFetch(raw) {
		return nil
	}
	scanBlocks(raw, f)
	return nil
}

// maxScanDepth bounds the per-level state; blocks deeper than this are not a
// shape the API reads.
const maxScanDepth = 64

// Values of "type" the scan tells apart.
const (
	tOther uint8 = iota
	tDocument
	tImage
	tUpload
	tURL
	tFile
)

type blockFrame struct {
	object    bool
	expectKey bool
	keyType   bool // the current key is "type"
	keySource bool // the current key is "source"
	keyInput  bool // the current key is "input" (tool_use input: caller data, not content)
	source    bool // this object is the value of a "source" key
	typ       uint8
	srcType   uint8
}

// scanBlocks counts document and image blocks whose source.type is "url"
// or "file", and container_upload blocks, in already validated JSON.
func scanBlocks(b []byte, f *Features) {
	var (
		stack [maxScanDepth]blockFrame
		depth int
		buf   [32]byte
	)
	top := func() *blockFrame {
		if depth == 0 || depth > maxScanDepth {
			return nil
		}
		return &stack[depth-1]
	}
	for i := 0; i < len(b); i++ {
		switch c := b[i]; c {
		case '{', '[':
			parent := top()
			if parent != nil && parent.object && parent.keyInput {
				i = skipValue(b, i)
				continue
			}
			depth++
			if fr := top(); fr != nil {
				*fr = blockFrame{object: c == '{', expectKey: c == '{', source: c == '{' && parent != nil && parent.object && parent.keySource}
			}
		case '}', ']':
			if fr := top(); fr != nil && fr.object {
				if fr.source {
					if p := parentOf(stack[:], depth); p != nil {
						p.srcType = fr.typ
					}
				} else {
					countBlock(fr, f)
				}
			}
			if depth > 0 {
				depth--
			}
		case ',':
			if fr := top(); fr != nil && fr.object {
				fr.expectKey = true
			}
		case ':':
			if fr := top(); fr != nil && fr.object {
				fr.expectKey = false
			}
		case '"':
			j, esc := i+1, false
			for ; j < len(b) && b[j] != '"'; j++ {
				if b[j] == '\\' {
					esc = true
					j++
				}
			}
			str := b[i+1 : min(j, len(b))]
			i = j
			fr := top()
			if fr == nil || !fr.object {
				continue
			}
			if esc {
				var ok bool
				if str, ok = unescapeShort(str, buf[:0]); !ok {
					str = nil
				}
			}
			if fr.expectKey {
				fr.keyType = string(str) == "type"
				fr.keySource = string(str) == "source"
				fr.keyInput = string(str) == "input"
				continue
			}
			if fr.keyType {
				fr.typ = classifyType(str)
			}
		}
	}
}

// skipValue returns the index of the bracket closing the array or object
// that opens at b[i].
func skipValue(b []byte, i int) int {
	depth := 0
	for ; i < len(b); i++ {
		switch b[i] {
		case '"':
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth--; depth == 0 {
				return i
			}
		}
	}
	return len(b)
}

func parentOf(stack []blockFrame, depth int) *blockFrame {
	if depth < 2 || depth-1 > len(stack) {
		return nil
	}
	return &stack[depth-2]
}

func countBlock(fr *blockFrame, f *Features) {
	switch {
	case fr.typ == tUpload:
		f.ContainerUploads++
	case fr.typ == tDocument && fr.srcType == tURL:
		f.URLDocuments++
	case fr.typ == tDocument && fr.srcType == tFile:
		f.FileDocuments++
	case fr.typ == tImage && fr.srcType == tURL:
		f.URLImages++
	case fr.typ == tImage && fr.srcType == tFile:
		f.FileImages++
	}
}

func classifyType(s []byte) uint8 {
	switch string(s) {
	case "document":
		return tDocument
	case "image":
		return tImage
	case "container_upload":
		return tUpload
	case "url":
		return tURL
	case "file":
		return tFile
	}
	return tOther
}

// unescapeShort decodes the JSON escapes of a short string into dst; the
// values the scan compares are short, so a long string is never one.
func unescapeShort(s, dst []byte) ([]byte, bool) {
	if len(s) > 6*cap(dst) {
		return nil, false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			if len(dst) == cap(dst) {
				return nil, false
			}
			dst = append(dst, c)
			continue
		}
		if i+1 >= len(s) {
			return nil, false
		}
		i++
		switch s[i] {
		case '"', '\\', '/':
			c = s[i]
		case 'b':
			c = '\b'
		case 'f':
			c = '\f'
		case 'n':
			c = '\n'
		case 'r':
			c = '\r'
		case 't':
			c = '\t'
		case 'u':
			if i+4 >= len(s) {
				return nil, false
			}
			var r rune
			for _, h := range s[i+1 : i+5] {
				r <<= 4
				switch {
				case h >= '0' && h <= '9':
					r |= rune(h - '0')
				case h|0x20 >= 'a' && h|0x20 <= 'f':
					r |= rune(h|0x20-'a') + 10
				default:
					return nil, false
				}
			}
			i += 4
			if r >= 0x80 {
				return nil, false // not ASCII: none of the compared values
			}
			c = byte(r)
		default:
			return nil, false
		}
		if len(dst) == cap(dst) {
			return nil, false
		}
		dst = append(dst, c)
	}
	return dst, true
}

// ServerToolUses is the most server tool calls the request allows: the sum
// of each server tool's max_uses, or defaultUses for a tool without one.
func (f Features) ServerToolUses(defaultUses int64) int64 {
	var n int64
	for _, t := range f.ServerTools {
		n += t.uses(defaultUses)
	}
	return n
}

// maxCountedUses caps a tool's max_uses in the arithmetic, so a huge value
// (allowed when the policy sets no cap) cannot overflow; at this many uses
// the reservation is far beyond any budget anyway.
const maxCountedUses = 100_000

// uses is the tool's max_uses, or defaultUses without one.
func (t ServerTool) uses(defaultUses int64) int64 {
	u := t.MaxUses
	if u <= 0 {
		u = defaultUses
	}
	return min(max(u, 0), maxCountedUses)
}

// priceChangingBetas are the anthropic-beta prefixes that change what a
// call can cost: the 1M-context window of Sonnet 4/4.5 (long-context
// rates) and fast mode (a multiplier).
var priceChangingBetas = []string{"context-1m-", "fast-mode-"}

// PriceChangingBeta reports whether an anthropic-beta value changes prices.
func PriceChangingBeta(v string) bool {
	for _, p := range priceChangingBetas {
		if strings.HasPrefix(v, p) {
			return true
		}
	}
	return false
}

// FeaturePolicy says which features a caller may use and how much input the
// gateway reserves for each, since the body does not show it.
type FeaturePolicy struct {
	// ServerTools are the allowed tool kinds (ToolWebSearch, …), or typed
	// tool names the gateway does not know and the operator allows.
	ServerTools []string
	URLSources  bool // documents and images by URL
	FileSources bool // documents, images and container uploads by Files API id
	MCPServers  bool
	Skills      bool // a container with skills
	FastMode    bool
	// InferenceGeos are the allowed inference_geo values; the default
	// (unset) is always allowed.
	InferenceGeos []string
	// Betas are the allowed price-changing anthropic-beta values; "x-*"
	// allows every value starting with "x-". Betas that change no price
	// are always forwarded.
	Betas []string
	// RequireMaxUses refuses a server tool without max_uses.
	RequireMaxUses bool
	// DefaultMaxUses is assumed for a server tool without max_uses;
	// MaxUses is the highest max_uses a request may set.
	DefaultMaxUses int64
	MaxUses        int64
	// RereadPerToolUse reserves the whole prompt again for every server
	// tool use: each use is another sampling iteration over the context,
	// billed again (mostly as cache reads).
	RereadPerToolUse bool
	Bounds           FeatureBounds
}

// FeatureBounds are input tokens reserved per fetched item.
type FeatureBounds struct {
	DocumentTokens   int64 // per document by URL or file id
	ImageTokens      int64 // per image by URL or file id
	WebSearchTokens  int64 // per web search use (results enter the context)
	WebFetchTokens   int64 // per web fetch use, unless max_content_tokens is lower
	ToolSearchTokens int64 // per tool search use
	CodeExecTokens   int64 // per code execution use (its output enters the context)
	MCPServerTokens  int64 // per MCP tool use
	ContainerTokens  int64 // per container upload or skill loaded into the context
	OtherToolTokens  int64 // per use of an allowed typed tool the gateway does not know
}

// DefaultFeaturePolicy is the built-in policy: what Claude Code and the
// official SDKs send works (server web search and fetch, code execution,
// tool search, URL and Files API sources, fast mode, the 1M-context and
// fast-mode betas, inference_geo "us"), each reserved at a conservative
// bound; MCP servers and skills, whose input has no documented bound, are
// off until the operator allows them.
func DefaultFeaturePolicy() FeaturePolicy {
	return FeaturePolicy{
		ServerTools:      []string{ToolWebSearch, ToolWebFetch, ToolCodeExecution, ToolSearch},
		URLSources:       true,
		FileSources:      true,
		FastMode:         true,
		InferenceGeos:    []string{"global", "us"},
		Betas:            []string{"context-1m-*", "fast-mode-*"},
		DefaultMaxUses:   10,
		MaxUses:          20,
		RereadPerToolUse: true,
		Bounds:           DefaultFeatureBounds(),
	}
}

// DefaultFeatureBounds: each is an upper estimate from the docs, so a
// reservation errs high and settling refunds the difference.
//   - Document 400,000: the PDF docs give 1,500–3,000 text tokens per page
//     plus an image of each page, and a request takes up to 100 pages with
//     full visual support; a 100-page PDF by URL was billed ~385k tokens
//     (issue 13), so 100 pages × 4,000.
//   - Image 5,000: width×height/750 is ~1,600 at the resize limit; headroom
//     for the higher-resolution handling of newer models.
//   - Web search 25,000 per use: results are billed as input, ~17k tokens
//     per search measured by a third party.
//   - Web fetch 125,000 per use: the pricing page's research-paper PDF
//     (500 kB ≈ 125,000 tokens); max_content_tokens lowers it.
//   - Tool search 5,000, code execution 25,000, MCP 50,000, container
//     upload or skill 50,000, unknown typed tool 50,000 per use: no
//     documented size; generous for tool definitions, command output and
//     skill files.
func DefaultFeatureBounds() FeatureBounds {
	return FeatureBounds{
		DocumentTokens:   400_000,
		ImageTokens:      5_000,
		WebSearchTokens:  25_000,
		WebFetchTokens:   125_000,
		ToolSearchTokens: 5_000,
		CodeExecTokens:   25_000,
		MCPServerTokens:  50_000,
		ContainerTokens:  50_000,
		OtherToolTokens:  50_000,
	}
}

// FeatureError is a request the policy refuses, or whose cost it cannot
// bound. It names the feature and is safe to send back.
type FeatureError struct {
	Feature string
	Problem string
}

func (e *FeatureError) Error() string {
	return e.Feature + ": " + e.Problem
}

// Is makes a FeatureError an ErrInvalidRequest (a 400 for the caller).
func (e *FeatureError) Is(target error) bool { return target == ErrInvalidRequest }

func allowed(list []string, v string) bool {
	for _, a := range list {
		if a == v || (strings.HasSuffix(a, "*") && strings.HasPrefix(v, strings.TrimSuffix(a, "*"))) {
			return true
		}
	}
	return false
}

// Check returns every feature the policy refuses, joined, or nil.
func (pol FeaturePolicy) Check(f Features) error {
	var errs []error
	refuse := func(feature, problem string) {
		errs = append(errs, &FeatureError{Feature: feature, Problem: problem})
	}
	if !pol.URLSources && f.URLDocuments+f.URLImages > 0 {
		refuse("url source", "documents and images by URL are not allowed by this gateway")
	}
	if !pol.FileSources && f.FileDocuments+f.FileImages+f.ContainerUploads > 0 {
		refuse("file source", "Files API documents, images and container uploads are not allowed by this gateway")
	}
	for _, t := range f.ServerTools {
		name := quoteFeature(t.Type)
		switch {
		case t.Kind == ToolMCP:
			if !pol.MCPServers {
				refuse("tool "+name, "MCP toolsets are not allowed by this gateway")
			}
		case !allowed(pol.ServerTools, t.Kind):
			refuse("tool "+name, "this server tool is not allowed by this gateway")
		case t.MaxUses < 0:
			refuse("tool "+name, "max_uses must be positive")
		case t.MaxUses == 0 && pol.RequireMaxUses:
			refuse("tool "+name, "set max_uses: this gateway reserves the cost of every use up front")
		case pol.MaxUses > 0 && t.MaxUses > pol.MaxUses:
			refuse("tool "+name, fmt.Sprintf("max_uses %d is above this gateway's cap of %d", t.MaxUses, pol.MaxUses))
		}
	}
	if f.MCPServers > 0 && !pol.MCPServers {
		refuse("mcp_servers", "MCP servers are not allowed by this gateway: their results have no size the gateway can reserve")
	}
	if f.Skills > 0 && !pol.Skills {
		refuse("container.skills", "skills are not allowed by this gateway")
	}
	if f.Speed == "fast" && !pol.FastMode {
		refuse("speed", `"fast" is not allowed by this gateway`)
	}
	if f.InferenceGeo != "" && !allowed(pol.InferenceGeos, f.InferenceGeo) {
		refuse("inference_geo", quoteFeature(f.InferenceGeo)+" is not allowed by this gateway")
	}
	for _, b := range f.Betas {
		if PriceChangingBeta(b) && !allowed(pol.Betas, b) {
			refuse("anthropic-beta "+quoteFeature(b), "this beta changes prices and is not allowed by this gateway")
		}
	}
	return errors.Join(errs...)
}

// quoteFeature quotes a caller-supplied name for an error, cut short.
func quoteFeature(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return fmt.Sprintf("%q", s)
}

// perUseTokens is the input one use of a server tool may add.
func (pol FeaturePolicy) perUseTokens(t ServerTool) int64 {
	b := pol.Bounds
	switch t.Kind {
	case ToolWebSearch:
		return b.WebSearchTokens
	case ToolWebFetch:
		if t.MaxContentTokens > 0 && t.MaxContentTokens < b.WebFetchTokens {
			return t.MaxContentTokens
		}
		return b.WebFetchTokens
	case ToolCodeExecution:
		return b.CodeExecTokens
	case ToolSearch:
		return b.ToolSearchTokens
	case ToolMCP:
		return b.MCPServerTokens
	}
	return b.OtherToolTokens
}

// HiddenInputTokens is the input the request makes the API fetch, as
// reserved under the policy's bounds: per fetched document, image and
// upload, plus per server tool use (max_uses, or DefaultMaxUses).
func (pol FeaturePolicy) HiddenInputTokens(f Features) int64 {
	b := pol.Bounds
	n := int64(f.URLDocuments+f.FileDocuments)*b.DocumentTokens +
		int64(f.URLImages+f.FileImages)*b.ImageTokens +
		int64(f.ContainerUploads+f.Skills)*b.ContainerTokens
	for _, t := range f.ServerTools {
		uses := t.uses(pol.DefaultMaxUses)
		per := pol.perUseTokens(t)
		n += uses * per
	}
	if f.MCPServers > 0 {
		// Tools of mcp_servers not listed as a toolset still run.
		n += int64(f.MCPServers) * pol.DefaultMaxUses * b.MCPServerTokens
	}
	return n
}
