package mock

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMessagesJSONReply(t *testing.T) {
	s, err := New(Options{APIKey: testKey})
	require.NoError(t, err)
	req := apiRequest(t, http.MethodPost, "/v1/messages",
		`{"model":"claude-haiku-4-5","max_tokens":512,"system":"You are terse.","metadata":{"user_id":"u1"},"unknown_future_field":{"x":1},`+
			`"messages":[{"role":"user","content":"first"},{"role":"assistant","content":"ok"},{"role":"user","content":[{"type":"text","text":"What is MRR?"}]}]}`)
	rec := serve(s, req)
	m := decodeMessage(t, rec)

	require.True(t, strings.HasPrefix(rec.Header().Get("request-id"), "req_"))
	require.Equal(t, DefaultOrganizationID, rec.Header().Get("anthropic-organization-id"))
	require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	require.True(t, strings.HasPrefix(m.ID, "msg_"), m.ID)
	require.Equal(t, "message", m.Type)
	require.Equal(t, "assistant", m.Role)
	require.Equal(t, "claude-haiku-4-5", m.Model)
	require.Equal(t, "end_turn", m.StopReason)
	require.Nil(t, m.StopSequence)
	require.Len(t, m.Content, 1)
	require.Equal(t, "text", m.Content[0].Type)
	text := m.Content[0].Text
	require.Contains(t, text, "System prompt: 14 characters")
	require.Contains(t, text, "Messages: 3")
	require.Contains(t, text, `"What is MRR?"`, "the answer quotes the last user message")
	require.Equal(t, "standard", m.Usage.ServiceTier)
	// "You are terse." + "first" + "ok" + "What is MRR?" = 14+5+2+12 = 33 bytes → 9 tokens.
	require.EqualValues(t, 9, m.Usage.InputTokens)
	require.EqualValues(t, (len(text)+3)/4, m.Usage.OutputTokens)
	require.Zero(t, m.Usage.CacheCreationInputTokens)
	require.Zero(t, m.Usage.CacheReadInputTokens)

	// Same input, same answer and usage; only the ids differ.
	rec2 := serve(s, apiRequest(t, http.MethodPost, "/v1/messages",
		`{"model":"claude-haiku-4-5","max_tokens":512,"system":"You are terse.","metadata":{"user_id":"u1"},"unknown_future_field":{"x":1},`+
			`"messages":[{"role":"user","content":"first"},{"role":"assistant","content":"ok"},{"role":"user","content":[{"type":"text","text":"What is MRR?"}]}]}`))
	m2 := decodeMessage(t, rec2)
	require.Equal(t, text, m2.Content[0].Text)
	require.Equal(t, m.Usage, m2.Usage)
	require.NotEqual(t, m.ID, m2.ID)
	require.NotEqual(t, rec.Header().Get("request-id"), rec2.Header().Get("request-id"))
}

func TestMessagesValidation(t *testing.T) {
	s, err := New(Options{APIKey: testKey})
	require.NoError(t, err)
	msgs := `"messages":[{"role":"user","content":"hi"}]`
	tests := []struct {
		name    string
		body    string
		status  int
		errType string
		want    string
	}{
		{"empty body", ``, 400, errInvalidRequest, "request body is empty"},
		{"not json", `{"model":`, 400, errInvalidRequest, "not valid JSON"},
		{"not an object", `[1,2]`, 400, errInvalidRequest, "JSON object"},
		{"model missing", `{"max_tokens":10,` + msgs + `}`, 400, errInvalidRequest, "model: Field required"},
		{"model empty", `{"model":"","max_tokens":10,` + msgs + `}`, 400, errInvalidRequest, "model: String should have at least 1 character"},
		{"model not string", `{"model":42,"max_tokens":10,` + msgs + `}`, 400, errInvalidRequest, "model: Input should be a valid string"},
		{"model unknown", `{"model":"claude-nope","max_tokens":10,` + msgs + `}`, 404, errNotFound, "model: claude-nope"},
		{"max_tokens missing", `{"model":"claude-sonnet-4-5",` + msgs + `}`, 400, errInvalidRequest, "max_tokens: Field required"},
		{"max_tokens zero", `{"model":"claude-sonnet-4-5","max_tokens":0,` + msgs + `}`, 400, errInvalidRequest, "max_tokens: Input should be greater than or equal to 1"},
		{"max_tokens float", `{"model":"claude-sonnet-4-5","max_tokens":1.5,` + msgs + `}`, 400, errInvalidRequest, "max_tokens: Input should be a valid integer"},
		{"max_tokens string", `{"model":"claude-sonnet-4-5","max_tokens":"10",` + msgs + `}`, 400, errInvalidRequest, "max_tokens: Input should be a valid integer"},
		{"max_tokens above model limit", `{"model":"claude-haiku-4-5","max_tokens":64001,` + msgs + `}`, 400, errInvalidRequest, "max_tokens: 64001 > 64000"},
		{"messages missing", `{"model":"claude-sonnet-4-5","max_tokens":10}`, 400, errInvalidRequest, "messages: Field required"},
		{"messages empty", `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[]}`, 400, errInvalidRequest, "messages: List should have at least 1 item"},
		{"messages not a list", `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":{}}`, 400, errInvalidRequest, "messages: Input should be a valid list"},
		{"message not an object", `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":["hi"]}`, 400, errInvalidRequest, "messages.0: Input should be a valid dictionary"},
		{"role missing", `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"content":"hi"}]}`, 400, errInvalidRequest, "messages.0.role: Field required"},
		{"role system", `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"a"},{"role":"system","content":"hi"}]}`, 400, errInvalidRequest, "messages.1.role: Input should be 'user' or 'assistant'"},
		{"content missing", `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user"}]}`, 400, errInvalidRequest, "messages.0.content: Field required"},
		{"content number", `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":7}]}`, 400, errInvalidRequest, "messages.0.content: Input should be a valid string or a list of content blocks"},
		{"content empty string", `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":""}]}`, 400, errInvalidRequest, "all messages must have non-empty content"},
		{"block not object", `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":[{"type":"text","text":"a"},5]}]}`, 400, errInvalidRequest, "messages.0.content.1: Input should be a valid dictionary"},
		{"block type missing", `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":[{"text":"a"}]}]}`, 400, errInvalidRequest, "messages.0.content.0.type: Field required"},
		{"text block without text", `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":[{"type":"text"}]}]}`, 400, errInvalidRequest, "messages.0.content.0.text: Field required"},
		{"text block empty", `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":[{"type":"text","text":""}]}]}`, 400, errInvalidRequest, "text content blocks must be non-empty"},
		{"text not string", `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":[{"type":"text","text":1}]}]}`, 400, errInvalidRequest, "messages.0.content.0.text: Input should be a valid string"},
		{"system wrong type", `{"model":"claude-sonnet-4-5","max_tokens":10,"system":5,` + msgs + `}`, 400, errInvalidRequest, "system: Input should be a valid string or a list of content blocks"},
		{"system image block", `{"model":"claude-sonnet-4-5","max_tokens":10,"system":[{"type":"image"}],` + msgs + `}`, 400, errInvalidRequest, "system.0.type: Input should be 'text'"},
		{"stream not bool", `{"model":"claude-sonnet-4-5","max_tokens":10,"stream":"yes",` + msgs + `}`, 400, errInvalidRequest, "stream: Input should be a valid boolean"},
		{"temperature out of range", `{"model":"claude-sonnet-4-5","max_tokens":10,"temperature":1.5,` + msgs + `}`, 400, errInvalidRequest, "temperature: Input should be between 0 and 1"},
		{"top_k negative", `{"model":"claude-sonnet-4-5","max_tokens":10,"top_k":-1,` + msgs + `}`, 400, errInvalidRequest, "top_k"},
		{"stop_sequences not strings", `{"model":"claude-sonnet-4-5","max_tokens":10,"stop_sequences":[1],` + msgs + `}`, 400, errInvalidRequest, "stop_sequences: Input should be a valid list of strings"},
		{"cache_control bad type", `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":[{"type":"text","text":"a","cache_control":{"type":"forever"}}]}]}`, 400, errInvalidRequest, "messages.0.content.0.cache_control.type: Input should be 'ephemeral'"},
		{"cache_control bad ttl", `{"model":"claude-sonnet-4-5","max_tokens":10,"system":[{"type":"text","text":"s","cache_control":{"type":"ephemeral","ttl":"2h"}}],` + msgs + `}`, 400, errInvalidRequest, "system.0.cache_control.ttl: Input should be '5m' or '1h'"},
		{"too many breakpoints", `{"model":"claude-sonnet-4-5","max_tokens":10,"cache_control":{"type":"ephemeral"},"system":[` +
			strings.Repeat(`{"type":"text","text":"s","cache_control":{"type":"ephemeral"}},`, 4) + `{"type":"text","text":"t"}],` + msgs + `}`,
			400, errInvalidRequest, "A maximum of 4 blocks with cache_control may be provided. Found 5."},
		{"bad directive", body("hi [[mock:sttaus=529]]"), 400, errInvalidRequest, `mock directive: unknown key "sttaus"`},
		{"unterminated directive", body("hi [[mock:status=529"), 400, errInvalidRequest, "unterminated"},
		{"directive out of range", body("hi [[mock:status=302]]"), 400, errInvalidRequest, "status 302"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(s, apiRequest(t, http.MethodPost, "/v1/messages", tt.body))
			e := requireAPIError(t, rec, tt.status, tt.errType)
			require.Contains(t, e.Error.Message, tt.want)
		})
	}
}

func TestAuthAndVersion(t *testing.T) {
	s, err := New(Options{APIKey: testKey})
	require.NoError(t, err)
	tests := []struct {
		name    string
		headers map[string]string
		status  int
		errType string
		want    string
	}{
		{"x-api-key", map[string]string{"x-api-key": testKey, "anthropic-version": Version2023}, 200, "", ""},
		{"bearer", map[string]string{"authorization": "Bearer " + testKey, "anthropic-version": Version2026}, 200, "", ""},
		{"bearer lower-case scheme", map[string]string{"authorization": "bearer " + testKey, "anthropic-version": Version2026}, 200, "", ""},
		{"no credential", map[string]string{"anthropic-version": Version2023}, 401, errAuthentication, "x-api-key header is required"},
		{"wrong key", map[string]string{"x-api-key": "sk-ant-wrong", "anthropic-version": Version2023}, 401, errAuthentication, "invalid x-api-key"},
		{"wrong bearer", map[string]string{"authorization": "Bearer nope", "anthropic-version": Version2023}, 401, errAuthentication, "invalid x-api-key"},
		{"basic auth is not a key", map[string]string{"authorization": "Basic " + testKey, "anthropic-version": Version2023}, 401, errAuthentication, "x-api-key header is required"},
		{"wrong x-api-key beats right bearer", map[string]string{"x-api-key": "nope", "authorization": "Bearer " + testKey, "anthropic-version": Version2023}, 401, errAuthentication, "invalid x-api-key"},
		{"no version", map[string]string{"x-api-key": testKey}, 400, errInvalidRequest, "anthropic-version: header is required"},
		{"unknown version", map[string]string{"x-api-key": testKey, "anthropic-version": "2024-01-01"}, 400, errInvalidRequest, "2024-01-01 is not a supported version"},
	}
	for _, tt := range tests {
		for _, path := range []string{"/v1/messages", "/v1/messages/count_tokens", "/v1/models", "/v1/models/claude-opus-4-8"} {
			t.Run(tt.name+" "+path, func(t *testing.T) {
				method, b := http.MethodPost, body("hello")
				if strings.HasPrefix(path, "/v1/models") {
					method, b = http.MethodGet, ""
				}
				req := httptest.NewRequest(method, path, strings.NewReader(b))
				for k, v := range tt.headers {
					req.Header.Set(k, v)
				}
				rec := serve(s, req)
				if tt.status == 200 {
					require.Equal(t, 200, rec.Code, rec.Body.String())
					return
				}
				e := requireAPIError(t, rec, tt.status, tt.errType)
				require.Contains(t, e.Error.Message, tt.want)
				require.NotContains(t, rec.Body.String(), testKey)
			})
		}
	}
}

func TestVersion2026(t *testing.T) {
	s, err := New(Options{APIKey: testKey})
	require.NoError(t, err)
	tests := []struct {
		name  string
		body  string
		ok    bool
		field string
	}{
		{"plain", body("hi"), true, ""},
		{"temperature", body("hi", `"temperature":1`), false, "temperature"},
		{"temperature zero", body("hi", `"temperature":0`), false, "temperature"},
		{"top_p", body("hi", `"top_p":0.9`), false, "top_p"},
		{"top_k", body("hi", `"top_k":5`), false, "top_k"},
		{"null temperature is absent", body("hi", `"temperature":null`), true, ""},
		{"document in assistant turn", `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"a"},` +
			`{"role":"assistant","content":[{"type":"document","source":{"type":"text","media_type":"text/plain","data":"x"}}]},{"role":"user","content":"b"}]}`, false, "messages.1.content.0"},
		{"user text with citations", `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":[{"type":"text","text":"a","citations":[{"type":"char_location"}]}]}]}`, false, "messages.0.content.0.citations"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := apiRequest(t, http.MethodPost, "/v1/messages", tt.body)
			req.Header.Set("anthropic-version", Version2026)
			rec := serve(s, req)
			if tt.ok {
				decodeMessage(t, rec)
			} else {
				e := requireAPIError(t, rec, 400, errInvalidRequest)
				require.Contains(t, e.Error.Message, tt.field)
				require.Contains(t, e.Error.Message, Version2026)
			}
			// The same body is fine under 2023-06-01: the rule is the version's, not the mock's.
			rec = serve(s, apiRequest(t, http.MethodPost, "/v1/messages", tt.body))
			require.Equal(t, 200, rec.Code, rec.Body.String())
		})
	}
}

func TestRoutingErrors(t *testing.T) {
	s, err := New(Options{APIKey: testKey})
	require.NoError(t, err)
	tests := []struct {
		method, path string
		status       int
		errType      string
		allow        string
	}{
		{"GET", "/v1/messages", 405, errInvalidRequest, "POST"},
		{"PUT", "/v1/messages/count_tokens", 405, errInvalidRequest, "POST"},
		{"POST", "/v1/models", 405, errInvalidRequest, "GET"},
		{"DELETE", "/v1/models/claude-opus-4-8", 405, errInvalidRequest, "GET"},
		{"POST", "/v1/complete", 404, errNotFound, ""},
		{"GET", "/", 404, errNotFound, ""},
		{"GET", "/v1/models/a/b", 404, errNotFound, ""},
		{"POST", "/v1/messages/batches", 404, errNotFound, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			rec := serve(s, apiRequest(t, tt.method, tt.path, ""))
			requireAPIError(t, rec, tt.status, tt.errType)
			require.Equal(t, tt.allow, rec.Header().Get("Allow"))
		})
	}
}

func TestRequestTooLarge(t *testing.T) {
	s, base := newTestServer(t, Options{MaxBodyBytes: 1 << 20})
	big := body(strings.Repeat("a", 1<<20))

	// Declared length over the limit: rejected before the body is read.
	rec := serve(s, apiRequest(t, http.MethodPost, "/v1/messages", big))
	e := requireAPIError(t, rec, 413, errRequestTooLarge)
	require.Contains(t, e.Error.Message, "maximum request size is 1 MB")

	// Chunked body with no declared length: caught while reading. Over a real connection,
	// so the check happens the way a streaming client would hit it.
	req := apiRequest(t, http.MethodPost, base+"/v1/messages", "")
	req.Body = readCloser{strings.NewReader(big)}
	req.ContentLength = -1
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 413, resp.StatusCode)

	// Just under the limit is fine, and no key is needed to learn the size is wrong.
	rec = serve(s, apiRequest(t, http.MethodPost, "/v1/messages", body(strings.Repeat("a", 1<<19))))
	require.Equal(t, 200, rec.Code)
	req = apiRequest(t, http.MethodPost, "/v1/messages", big)
	req.Header.Del("x-api-key")
	requireAPIError(t, serve(s, req), 413, errRequestTooLarge)
}

type readCloser struct{ *strings.Reader }

func (readCloser) Close() error { return nil }

func TestCountTokens(t *testing.T) {
	s, err := New(Options{APIKey: testKey})
	require.NoError(t, err)
	tests := []struct {
		name string
		body string
		want int64
	}{
		{"one short message", `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"hi"}]}`, 1},
		{"system and messages", `{"model":"claude-opus-4-8","system":"12345678","messages":[{"role":"user","content":"abcd"},{"role":"assistant","content":"efgh"},{"role":"user","content":"i"}]}`, 5},
		{"blocks", `{"model":"claude-opus-4-8","messages":[{"role":"user","content":[{"type":"text","text":"abcdefgh"},{"type":"text","text":"ijkl"}]}]}`, 3},
		{"tools count by their JSON", `{"model":"claude-opus-4-8","tools":[{"name":"t","input_schema":{"type":"object"}}],"messages":[{"role":"user","content":"abcd"}]}`, 1 + (int64(len(`{"name":"t","input_schema":{"type":"object"}}`))+3)/4},
		{"max_tokens is not required but allowed", `{"model":"claude-opus-4-8","max_tokens":5,"messages":[{"role":"user","content":"abcd"}]}`, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(s, apiRequest(t, http.MethodPost, "/v1/messages/count_tokens", tt.body))
			require.Equal(t, 200, rec.Code, rec.Body.String())
			require.JSONEq(t, `{"input_tokens":`+strconv.FormatInt(tt.want, 10)+`}`, rec.Body.String())
		})
	}

	// count_tokens and messages agree on the prompt's size.
	b := `{"model":"claude-sonnet-4-5","max_tokens":100,"system":"sys prompt here","messages":[{"role":"user","content":"count me please, thirty bytes"}]}`
	ct := serve(s, apiRequest(t, http.MethodPost, "/v1/messages/count_tokens", b))
	var n struct {
		InputTokens int64 `json:"input_tokens"`
	}
	require.NoError(t, json.Unmarshal(ct.Body.Bytes(), &n))
	m := decodeMessage(t, serve(s, apiRequest(t, http.MethodPost, "/v1/messages", b)))
	require.Equal(t, n.InputTokens, m.Usage.InputTokens)

	t.Run("errors", func(t *testing.T) {
		rec := serve(s, apiRequest(t, http.MethodPost, "/v1/messages/count_tokens", `{"model":"claude-x","messages":[{"role":"user","content":"a"}]}`))
		requireAPIError(t, rec, 404, errNotFound)
		rec = serve(s, apiRequest(t, http.MethodPost, "/v1/messages/count_tokens", `{"model":"claude-opus-4-8"}`))
		requireAPIError(t, rec, 400, errInvalidRequest)
		rec = serve(s, apiRequest(t, http.MethodPost, "/v1/messages/count_tokens", `{"model":"claude-opus-4-8","messages":[{"role":"user","content":"x [[mock:status=529 retry_after=3]]"}]}`))
		requireAPIError(t, rec, 529, errOverloaded)
		require.Equal(t, "3", rec.Header().Get("retry-after"))
	})
}

func TestModels(t *testing.T) {
	s, err := New(Options{APIKey: testKey})
	require.NoError(t, err)
	type page struct {
		Data []struct {
			Type        string `json:"type"`
			ID          string `json:"id"`
			DisplayName string `json:"display_name"`
			CreatedAt   string `json:"created_at"`
			MaxTokens   int64  `json:"max_tokens"`
		} `json:"data"`
		HasMore bool    `json:"has_more"`
		FirstID *string `json:"first_id"`
		LastID  *string `json:"last_id"`
	}
	get := func(t *testing.T, q string) page {
		rec := serve(s, apiRequest(t, http.MethodGet, "/v1/models"+q, ""))
		require.Equal(t, 200, rec.Code, rec.Body.String())
		var p page
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p))
		return p
	}
	ids := func(p page) []string {
		var out []string
		for _, m := range p.Data {
			out = append(out, m.ID)
		}
		return out
	}

	all := get(t, "?limit=1000")
	require.False(t, all.HasMore)
	for _, id := range []string{"claude-opus-4-8", "claude-opus-4-7", "claude-opus-4-6", "claude-opus-4-5", "claude-sonnet-4-6",
		"claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-5", "claude-sonnet-5", "claude-sonnet-5-5", "claude-haiku-5-5"} {
		require.Contains(t, ids(all), id)
	}
	for _, m := range all.Data {
		require.Equal(t, "model", m.Type)
		require.NotEmpty(t, m.DisplayName)
		require.Positive(t, m.MaxTokens)
	}

	// Default page size is 20; walking with after_id visits every model once, in order.
	first := get(t, "")
	require.Len(t, first.Data, min(20, len(catalog)))
	var walked []string
	cursor := ""
	for {
		p := get(t, "?limit=5"+cursor)
		walked = append(walked, ids(p)...)
		require.Equal(t, p.Data[0].ID, *p.FirstID)
		require.Equal(t, p.Data[len(p.Data)-1].ID, *p.LastID)
		if !p.HasMore {
			break
		}
		cursor = "&after_id=" + *p.LastID
	}
	require.Equal(t, ids(all), walked)

	// before_id pages backwards: the entries just before the cursor.
	back := get(t, "?limit=2&before_id="+all.Data[5].ID)
	require.Equal(t, []string{all.Data[3].ID, all.Data[4].ID}, ids(back))
	require.True(t, back.HasMore)

	for _, q := range []string{"?limit=0", "?limit=1001", "?limit=x", "?after_id=a&before_id=b"} {
		requireAPIError(t, serve(s, apiRequest(t, http.MethodGet, "/v1/models"+q, "")), 400, errInvalidRequest)
	}
	requireAPIError(t, serve(s, apiRequest(t, http.MethodGet, "/v1/models?after_id=claude-2", "")), 404, errNotFound)

	rec := serve(s, apiRequest(t, http.MethodGet, "/v1/models/claude-sonnet-4-5", ""))
	require.Equal(t, 200, rec.Code)
	require.Contains(t, rec.Body.String(), `"id":"claude-sonnet-4-5"`)
	rec = serve(s, apiRequest(t, http.MethodGet, "/v1/models/claude-sonnet-4-5-20250929", ""))
	require.Equal(t, 200, rec.Code, "dated ids resolve to their model")
	e := requireAPIError(t, serve(s, apiRequest(t, http.MethodGet, "/v1/models/claude-2.1", "")), 404, errNotFound)
	require.Equal(t, "model: claude-2.1", e.Error.Message)
}

func TestInjectedStatuses(t *testing.T) {
	s, err := New(Options{APIKey: testKey})
	require.NoError(t, err)
	tests := []struct {
		status  int
		errType string
	}{
		{400, errInvalidRequest}, {401, errAuthentication}, {402, errBilling}, {403, errPermission},
		{404, errNotFound}, {409, errConflict}, {413, errRequestTooLarge}, {429, errRateLimit},
		{500, errAPI}, {502, errAPI}, {503, errAPI}, {504, errTimeout}, {529, errOverloaded},
	}
	for _, tt := range tests {
		for _, stream := range []bool{false, true} {
			t.Run(strconv.Itoa(tt.status)+map[bool]string{true: " stream"}[stream], func(t *testing.T) {
				b := body("x [[mock:status=" + strconv.Itoa(tt.status) + "]]")
				if stream {
					b = streamBody("x [[mock:status=" + strconv.Itoa(tt.status) + "]]")
				}
				rec := serve(s, apiRequest(t, http.MethodPost, "/v1/messages", b))
				requireAPIError(t, rec, tt.status, tt.errType)
				require.Empty(t, rec.Header().Get("retry-after"), "retry-after only when asked for")
			})
		}
	}
}
