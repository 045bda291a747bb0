package mock

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
)

// diagnose explains why body failed to decode into messagesRequest, naming the offending
// field the way the real API does ("messages.1.content: Input should be …"). It runs only
// on the error path, so it can afford to decode everything a second time.
func diagnose(body []byte, decodeErr error) string {
	if len(bytes.TrimSpace(body)) == 0 {
		return "request body is empty: expected a JSON object"
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return "request body is not valid JSON: " + syn.Error() + " (at byte " + strconv.FormatInt(syn.Offset, 10) + ")"
		}
		return "request body: Input should be a JSON object"
	}
	checks := []struct {
		field string
		check func(path string, raw json.RawMessage) string
	}{
		{"model", want[string]("a valid string")},
		{"max_tokens", want[int64]("a valid integer")},
		{"messages", checkMessages},
		{"system", checkSystem},
		{"stream", want[bool]("a valid boolean")},
		{"temperature", want[float64]("a valid number")},
		{"top_p", want[float64]("a valid number")},
		{"top_k", want[int64]("a valid integer")},
		{"stop_sequences", want[[]string]("a valid list of strings")},
		{"tools", checkTools},
		{"cache_control", checkCacheControl},
		{"thinking", checkThinking},
		{"speed", want[string]("a valid string")},
		{"inference_geo", want[string]("a valid string")},
	}
	for _, c := range checks {
		raw, ok := top[c.field]
		if !ok || isNull(raw) {
			continue
		}
		if msg := c.check(c.field, raw); msg != "" {
			return msg
		}
	}
	return "request body: " + decodeErr.Error()
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

// want returns a check that raw decodes into a T.
func want[T any](what string) func(string, json.RawMessage) string {
	return func(path string, raw json.RawMessage) string {
		var v T
		if json.Unmarshal(raw, &v) != nil {
			return path + ": Input should be " + what
		}
		return ""
	}
}

// object decodes raw as a JSON object, or returns a message saying it is not one.
func object(path string, raw json.RawMessage) (map[string]json.RawMessage, string) {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil || m == nil {
		return nil, path + ": Input should be a valid dictionary"
	}
	return m, ""
}

// list decodes raw as a JSON array, or returns a message saying it is not one.
func list(path string, raw json.RawMessage) ([]json.RawMessage, string) {
	var l []json.RawMessage
	if json.Unmarshal(raw, &l) != nil {
		return nil, path + ": Input should be a valid list"
	}
	return l, ""
}

func checkMessages(path string, raw json.RawMessage) string {
	items, msg := list(path, raw)
	if msg != "" {
		return msg
	}
	for i, item := range items {
		ipath := path + "." + strconv.Itoa(i)
		m, msg := object(ipath, item)
		if msg != "" {
			return msg
		}
		if r, ok := m["role"]; ok {
			if msg := want[string]("'user' or 'assistant'")(ipath+".role", r); msg != "" {
				return msg
			}
		}
		if c, ok := m["content"]; ok && !isNull(c) {
			if msg := checkContent(ipath+".content", c); msg != "" {
				return msg
			}
		}
	}
	return ""
}

func checkSystem(path string, raw json.RawMessage) string {
	return checkContent(path, raw)
}

// checkContent accepts a string or a list of content blocks.
func checkContent(path string, raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return ""
	}
	blocks, msg := list(path, raw)
	if msg != "" {
		return path + ": Input should be a valid string or a list of content blocks"
	}
	for j, b := range blocks {
		bpath := path + "." + strconv.Itoa(j)
		m, msg := object(bpath, b)
		if msg != "" {
			return msg
		}
		if t, ok := m["type"]; ok {
			if msg := want[string]("a valid string")(bpath+".type", t); msg != "" {
				return msg
			}
		}
		if t, ok := m["text"]; ok {
			if msg := want[string]("a valid string")(bpath+".text", t); msg != "" {
				return msg
			}
		}
		if cc, ok := m["cache_control"]; ok && !isNull(cc) {
			if msg := checkCacheControl(bpath+".cache_control", cc); msg != "" {
				return msg
			}
		}
	}
	return ""
}

func checkTools(path string, raw json.RawMessage) string {
	items, msg := list(path, raw)
	if msg != "" {
		return msg
	}
	for i, item := range items {
		ipath := path + "." + strconv.Itoa(i)
		m, msg := object(ipath, item)
		if msg != "" {
			return msg
		}
		if cc, ok := m["cache_control"]; ok && !isNull(cc) {
			if msg := checkCacheControl(ipath+".cache_control", cc); msg != "" {
				return msg
			}
		}
	}
	return ""
}

func checkCacheControl(path string, raw json.RawMessage) string {
	m, msg := object(path, raw)
	if msg != "" {
		return msg
	}
	for _, f := range []string{"type", "ttl"} {
		if v, ok := m[f]; ok {
			if msg := want[string]("a valid string")(path+"."+f, v); msg != "" {
				return msg
			}
		}
	}
	return ""
}

func checkThinking(path string, raw json.RawMessage) string {
	m, msg := object(path, raw)
	if msg != "" {
		return msg
	}
	for _, f := range []struct{ name, what string }{{"type", "string"}, {"display", "string"}, {"budget_tokens", "integer"}} {
		v, ok := m[f.name]
		if !ok || isNull(v) {
			continue
		}
		check := want[string]("a valid string")
		if f.what == "integer" {
			check = want[int64]("a valid integer")
		}
		if msg := check(path+"."+f.name, v); msg != "" {
			return msg
		}
	}
	return ""
}
