package mock

import (
	"encoding/json"
	"sort"
	"strconv"
)

// blockKind is the type of one content block of a reply.
type blockKind uint8

const (
	kindText blockKind = iota
	kindThinking
	kindRedactedThinking
	kindToolUse
	kindServerToolUse
	kindSearchResult
	kindFetchResult
)

// citation is a web_search_result_location citing one search result.
type citation struct {
	Type           string `json:"type"`
	URL            string `json:"url"`
	Title          string `json:"title"`
	EncryptedIndex string `json:"encrypted_index"`
	CitedText      string `json:"cited_text"`
}

// searchResult is one web_search_result.
type searchResult struct {
	Type             string `json:"type"`
	URL              string `json:"url"`
	Title            string `json:"title"`
	EncryptedContent string `json:"encrypted_content"`
	PageAge          string `json:"page_age"`
}

// replyBlock is one content block of the reply with what producing it bills.
type replyBlock struct {
	kind      blockKind
	text      string // text, or the thinking summary
	signature string // thinking signature, or the data of redacted_thinking
	id        string // tool_use and server_tool_use id; tool_use_id of a result
	name      string // tool name
	input     string // tool input as JSON
	citations []citation
	results   []searchResult // web_search_tool_result
	url       string         // web_fetch_tool_result

	out      int64 // output tokens
	in       int64 // input tokens it adds (a search's results, a fetched page)
	searches int64
	fetches  int64
	thinking int64 // hidden thinking tokens, part of out
}

// reply is the assistant's whole answer to one call.
type reply struct {
	blocks       []replyBlock
	stopReason   string
	stopSequence string
}

// totals sums what every block bills.
func (r *reply) totals() (t usage) {
	for i := range r.blocks {
		b := &r.blocks[i]
		t.output += b.out
		t.input += b.in
		t.webSearch += b.searches
		t.webFetch += b.fetches
		t.thinking += b.thinking
	}
	return t
}

// buildReply plans the reply: an optional thinking block, web_search and web_fetch calls
// with their results, the text answer (citing the searches), and an optional tool_use.
// Thinking comes out of max_tokens first, then the tool calls, then the text.
func buildReply(r *messagesRequest, d *Directives, toolInput string) reply {
	var rp reply
	budget := *r.MaxTokens
	quote := cutRunes(r.lastUserText(), 60)

	if r.thinks() {
		n := min(thinkingTokens(r, d), budget)
		budget -= n
		b := replyBlock{kind: kindThinking, out: n, thinking: n}
		switch {
		case d.RedactedThinking:
			b.kind, b.signature = kindRedactedThinking, "EmwKAhgBEgy"+newID("")+newID("")+newID("")
		default:
			b.signature = "EqQBCkgIAxABGAIiQ" + newID("") + newID("") + newID("")
			if r.Thinking.Display != "omitted" {
				b.text = "Summary of " + strconv.FormatInt(n, 10) + " tokens of reasoning about: " + strconv.Quote(quote) +
					". The mock weighed the question and chose a direct answer."
			}
		}
		rp.blocks = append(rp.blocks, b)
	}

	var cites []citation
	searchTokens := orDefault(d.SearchResultTokens, defaultSearchResultTokens)
	for i := 1; i <= d.WebSearch; i++ {
		id := "srvtoolu_" + newID("")
		in := jsonObject("query", "mock search "+strconv.Itoa(i)+": "+quote)
		out := max(1, tokensFor(len(in)))
		budget = max(0, budget-out)
		rp.blocks = append(rp.blocks,
			replyBlock{kind: kindServerToolUse, id: id, name: "web_search", input: in, out: out, in: searchTokens, searches: 1})
		var results []searchResult
		for j := 1; j <= 2; j++ {
			n := strconv.Itoa(i) + "/" + strconv.Itoa(j)
			results = append(results, searchResult{
				Type: "web_search_result", URL: "https://example.com/mock/search/" + n,
				Title: "Mock result " + n, EncryptedContent: "EqcCCioIAhgCIiQ" + newID(""), PageAge: "2 days ago",
			})
		}
		rp.blocks = append(rp.blocks, replyBlock{kind: kindSearchResult, id: id, results: results})
		cites = append(cites, citation{
			Type: "web_search_result_location", URL: results[0].URL, Title: results[0].Title,
			EncryptedIndex: "Eo8BCioIAhgB" + newID(""), CitedText: "Mock cited text from search " + strconv.Itoa(i) + ".",
		})
	}
	fetchTokens := orDefault(d.FetchTokens, defaultFetchTokens)
	for i := 1; i <= d.WebFetch; i++ {
		id := "srvtoolu_" + newID("")
		url := "https://example.com/mock/fetch/" + strconv.Itoa(i)
		in := jsonObject("url", url)
		out := max(1, tokensFor(len(in)))
		budget = max(0, budget-out)
		rp.blocks = append(rp.blocks,
			replyBlock{kind: kindServerToolUse, id: id, name: "web_fetch", input: in, out: out, in: fetchTokens, fetches: 1},
			replyBlock{kind: kindFetchResult, id: id, url: url})
	}

	if budget == 0 {
		rp.stopReason = stopMaxToken
		return rp
	}
	a := buildAnswer(r, d, budget)
	rp.blocks = append(rp.blocks, replyBlock{kind: kindText, text: a.text, citations: cites, out: a.outputTokens})
	rp.stopReason, rp.stopSequence = a.stopReason, a.stopSequence
	if d.ToolUse != "" && a.stopReason == stopEndTurn {
		rp.blocks = append(rp.blocks, replyBlock{
			kind: kindToolUse, id: "toolu_" + newID(""), name: d.ToolUse, input: toolInput,
			out: max(1, tokensFor(len(toolInput))),
		})
		rp.stopReason = stopToolUse
	}
	return rp
}

// thinkingTokens is the billed size of the hidden reasoning: thinking_tokens, or half the
// budget (enabled) or min(1024, max_tokens/2) (adaptive).
func thinkingTokens(r *messagesRequest, d *Directives) int64 {
	if d.ThinkingTokens != nil {
		return int64(*d.ThinkingTokens)
	}
	if r.Thinking.Type == "enabled" {
		return *r.Thinking.BudgetTokens / 2
	}
	return min(1024, *r.MaxTokens/2)
}

func jsonObject(key, value string) string {
	b, _ := json.Marshal(map[string]string{key: value})
	return string(b)
}

// sampleToolInput builds the input of a tool_use for the tool called name: one value per
// property of its input_schema, by type (strings "mock", numbers 1, booleans true, the first
// enum value when there is one). It decodes the body again, which only calls with a tool_use
// directive pay for.
func sampleToolInput(body []byte, name string) string {
	var p struct {
		Tools []struct {
			Name        string `json:"name"`
			InputSchema struct {
				Properties map[string]struct {
					Type json.RawMessage   `json:"type"`
					Enum []json.RawMessage `json:"enum"`
				} `json:"properties"`
			} `json:"input_schema"`
		} `json:"tools"`
	}
	if json.Unmarshal(body, &p) != nil {
		return "{}"
	}
	for _, t := range p.Tools {
		if t.Name != name {
			continue
		}
		keys := make([]string, 0, len(t.InputSchema.Properties))
		for k := range t.InputSchema.Properties {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if len(keys) > 64 {
			keys = keys[:64]
		}
		in := make(map[string]json.RawMessage, len(keys))
		for _, k := range keys {
			prop := t.InputSchema.Properties[k]
			if len(prop.Enum) > 0 {
				in[k] = prop.Enum[0]
				continue
			}
			var typ string
			_ = json.Unmarshal(prop.Type, &typ)
			switch typ {
			case "string":
				in[k] = json.RawMessage(`"mock"`)
			case "integer", "number":
				in[k] = json.RawMessage(`1`)
			case "boolean":
				in[k] = json.RawMessage(`true`)
			case "array":
				in[k] = json.RawMessage(`[]`)
			case "object":
				in[k] = json.RawMessage(`{}`)
			default:
				in[k] = json.RawMessage(`null`)
			}
		}
		b, err := json.Marshal(in)
		if err != nil {
			return "{}"
		}
		return string(b)
	}
	return "{}"
}
