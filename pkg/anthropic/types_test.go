package anthropic

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseMessageRequest(t *testing.T) {
	body := `{"model":"claude-sonnet-4-5","max_tokens":1024,"stream":true,
		"system":[{"type":"text","text":"be brief"}],
		"messages":[{"role":"user","content":"Hello"}],
		"metadata":{"user_id":"u1"},"temperature":0.2,"stop_sequences":["END"],"container":{"id":"c"}}`
	r, err := ParseMessageRequest([]byte(body))
	require.NoError(t, err)
	require.Equal(t, "claude-sonnet-4-5", r.Model)
	require.Equal(t, int64(1024), r.MaxTokens)
	require.True(t, r.Stream)
	require.JSONEq(t, `[{"role":"user","content":"Hello"}]`, string(r.Messages))
	require.JSONEq(t, `[{"type":"text","text":"be brief"}]`, string(r.System))
	require.JSONEq(t, `{"user_id":"u1"}`, string(r.Metadata))
	require.Equal(t, []string{"model", "max_tokens", "stream", "system", "messages", "metadata", "temperature", "stop_sequences", "container"}, r.Fields)
	// Unknown fields survive for the passthrough's allowlist and re-encoding.
	require.Equal(t, map[string]json.RawMessage{
		"temperature":    json.RawMessage(`0.2`),
		"stop_sequences": json.RawMessage(`["END"]`),
		"container":      json.RawMessage(`{"id":"c"}`),
	}, r.Extra)
	require.True(t, r.Has("temperature"))
	require.False(t, r.Has("tools"))
}

func TestParseMessageRequestAccepts(t *testing.T) {
	tests := []struct {
		name string
		body string
		want func(t *testing.T, r MessageRequest)
	}{
		{"count_tokens body without max_tokens", `{"model":"m","messages":[]}`, func(t *testing.T, r MessageRequest) {
			require.Zero(t, r.MaxTokens)
			require.False(t, r.Has("max_tokens"))
		}},
		{"integral float max_tokens", `{"max_tokens":2048.0}`, func(t *testing.T, r MessageRequest) {
			require.Equal(t, int64(2048), r.MaxTokens)
		}},
		{"null optionals", `{"stream":null,"system":null,"metadata":null,"tools":null}`, func(t *testing.T, r MessageRequest) {
			require.False(t, r.Stream)
			require.Nil(t, r.System)
			require.Nil(t, r.Metadata)
			require.True(t, r.Has("system"))
		}},
		{"string system", `{"system":"be brief"}`, func(t *testing.T, r MessageRequest) {
			require.Equal(t, `"be brief"`, string(r.System))
		}},
		{"surrounding whitespace", " \n{\"model\":\"m\"}\n\t ", func(t *testing.T, r MessageRequest) {
			require.Equal(t, "m", r.Model)
		}},
		{"case-variant key is not model", `{"model":"claude-haiku-4-5","MODEL":"claude-opus-4-8"}`, func(t *testing.T, r MessageRequest) {
			require.Equal(t, "claude-haiku-4-5", r.Model)
			require.Contains(t, r.Extra, "MODEL")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseMessageRequest([]byte(tt.body))
			require.NoError(t, err)
			tt.want(t, r)
		})
	}
}

func TestParseMessageRequestRejects(t *testing.T) {
	secret := "TOPSECRETPROMPT"
	tests := []struct {
		name  string
		body  string
		field string
		msg   string
	}{
		{"empty", "  ", "", "body is empty"},
		{"not an object", `["model"]`, "", "must be a JSON object"},
		{"string", `"hi"`, "", "must be a JSON object"},
		{"two objects", `{"model":"a"}{"model":"b"}`, "", "unexpected data after"},
		{"trailing garbage", `{"model":"a"} x`, "", "unexpected data after"},
		{"truncated", `{"model":"a","messages":[{"role":"user"`, "messages", "malformed JSON"},
		{"syntax error", `{"model" "a"}`, "model", "malformed JSON at byte"},
		{"duplicate model", `{"model":"claude-haiku-4-5","model":"claude-opus-4-8"}`, "model", "more than once"},
		{"duplicate max_tokens", `{"max_tokens":10,"max_tokens":100000}`, "max_tokens", "more than once"},
		{"model not a string", `{"model":42}`, "model", "must be a string"},
		{"model null", `{"model":null}`, "model", "must be a string"},
		{"model too long", `{"model":"` + strings.Repeat("m", 257) + `"}`, "model", "at most 256"},
		{"max_tokens string", `{"max_tokens":"1024"}`, "max_tokens", "positive integer"},
		{"max_tokens zero", `{"max_tokens":0}`, "max_tokens", "positive integer"},
		{"max_tokens negative", `{"max_tokens":-5}`, "max_tokens", "positive integer"},
		{"max_tokens fraction", `{"max_tokens":10.5}`, "max_tokens", "positive integer"},
		{"max_tokens huge", `{"max_tokens":1e300}`, "max_tokens", "positive integer"},
		{"stream string", `{"stream":"yes"}`, "stream", "must be a boolean"},
		{"messages object", `{"messages":{"role":"user","content":"` + secret + `"}}`, "messages", "must be an array"},
		{"system number", `{"system":1}`, "system", "string or an array"},
		{"metadata array", `{"metadata":[]}`, "metadata", "must be an object"},
		{"tools object", `{"tools":{}}`, "tools", "must be an array"},
		{"deep nesting", `{"messages":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`, "messages", "malformed JSON"},
		{"invalid UTF-8", "{\"model\":\"m\xff\"}", "", "not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseMessageRequest([]byte(tt.body))
			require.Error(t, err)
			require.True(t, errors.Is(err, ErrInvalidRequest))
			var re *RequestError
			require.ErrorAs(t, err, &re)
			require.Equal(t, tt.field, re.Field)
			require.ErrorContains(t, err, tt.msg)
			require.NotContains(t, err.Error(), secret, "errors never echo content")
			require.Less(t, len(err.Error()), 300)
		})
	}
}

func TestParseMessageRequestBoundsFieldNamesInErrors(t *testing.T) {
	long := strings.Repeat("k", 10_000)
	_, err := ParseMessageRequest([]byte(`{"` + long + `":1,"` + long + `":2}`))
	require.ErrorContains(t, err, "more than once")
	require.Less(t, len(err.Error()), 200)
}

func TestMessageRequestRoundTripKeepsUnknownFields(t *testing.T) {
	in := `{"model":"claude-haiku-4-5","max_tokens":64,"messages":[{"role":"user","content":"hi"}],"temperature":0.5,"metadata":{"user_id":"caller-chosen"}}`
	r, err := ParseMessageRequest([]byte(in))
	require.NoError(t, err)
	r.Metadata = json.RawMessage(`{"user_id":"h:abc"}`) // the gateway sets it itself
	out, err := json.Marshal(r)
	require.NoError(t, err)
	require.JSONEq(t, `{"model":"claude-haiku-4-5","max_tokens":64,"messages":[{"role":"user","content":"hi"}],"temperature":0.5,"metadata":{"user_id":"h:abc"}}`, string(out))

	var back MessageRequest
	require.NoError(t, json.Unmarshal(out, &back))
	require.Equal(t, "claude-haiku-4-5", back.Model)

	r.Extra["bad"] = json.RawMessage(`{`)
	_, err = json.Marshal(r)
	require.Error(t, err, "never emit invalid JSON upstream")
}

func TestEstimateInputTokens(t *testing.T) {
	msg := func(content string) []byte {
		b, err := json.Marshal(map[string]any{
			"model": "claude-sonnet-4-5", "max_tokens": 100,
			"messages": []any{map[string]any{"role": "user", "content": content}},
		})
		require.NoError(t, err)
		return b
	}
	prose := strings.Repeat("The quick brown fox jumps over the lazy dog. ", 100) // ~1,000 real tokens

	t.Run("at least one, also for garbage", func(t *testing.T) {
		for _, b := range []string{"", "{", `"unterminated`, "]]]]}}}", strings.Repeat("{", 200)} {
			require.GreaterOrEqual(t, EstimateInputTokens([]byte(b)), int64(1), b)
		}
	})
	t.Run("prose is over-estimated at about bytes/4", func(t *testing.T) {
		got := EstimateInputTokens(msg(prose))
		require.GreaterOrEqual(t, got, int64(len(prose)/4))
		require.Less(t, got, int64(len(prose)/4)+50)
	})
	t.Run("grows with the text", func(t *testing.T) {
		require.Greater(t, EstimateInputTokens(msg(prose+prose)), EstimateInputTokens(msg(prose)))
	})
	t.Run("CJK counts a token per character", func(t *testing.T) {
		cjk := strings.Repeat("日本語のテキスト", 100) // 800 characters, 2,400 bytes
		require.GreaterOrEqual(t, EstimateInputTokens(msg(cjk)), int64(800))
	})
	t.Run("a base64 image is a fixed reserve, not bytes/4", func(t *testing.T) {
		img := strings.Repeat("iVBORw0KGgoAAAANSUhEUgAA", 40_000) // ~1 MB of base64
		body := `{"model":"m","max_tokens":10,"messages":[{"role":"user","content":[
			{"type":"image","source":{"type":"base64","data":"` + img + `","media_type":"image/png"}},
			{"type":"text","text":"What is this?"}]}]}`
		got := EstimateInputTokens([]byte(body))
		require.GreaterOrEqual(t, got, int64(imageReserveTokens))
		require.Less(t, got, int64(imageReserveTokens+100))
	})
	t.Run("an image by URL gets the reserve too", func(t *testing.T) {
		body := `{"messages":[{"role":"user","content":[{"type":"image","source":{"type":"url","url":"https://example.com/a.png"}}]}]}`
		require.GreaterOrEqual(t, EstimateInputTokens([]byte(body)), int64(imageReserveTokens))
	})
	t.Run("a base64 PDF counts its bytes", func(t *testing.T) {
		pdf := strings.Repeat("JVBERi0xLjcKJeLjz9MK", 20_000) // 400 KB of base64
		body := `{"messages":[{"role":"user","content":[{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"` + pdf + `"}}]}]}`
		require.GreaterOrEqual(t, EstimateInputTokens([]byte(body)), int64(len(pdf)/4))
	})
	t.Run("escaped slashes in base64 still count as an image", func(t *testing.T) {
		img := strings.Repeat(`ab\/cd+=`, 50_000)
		body := `{"content":[{"type":"image","source":{"media_type":"image/jpeg","type":"base64","data":"` + img + `"}}]}`
		require.Less(t, EstimateInputTokens([]byte(body)), int64(imageReserveTokens+100))
	})
}

// FuzzParseMessageRequest: arbitrary bodies never panic, errors are always
// RequestErrors (→ 400), and an accepted body re-encodes to JSON that parses
// to the same model, max_tokens and stream — what the gateway checked is what
// it would send.
func FuzzParseMessageRequest(f *testing.F) {
	f.Add([]byte(`{"model":"claude-haiku-4-5","max_tokens":16,"stream":true,"messages":[{"role":"user","content":"hi"}],"temperature":0.1}`))
	f.Add([]byte(`{"model":"a","model":"b"}`))
	f.Add([]byte(`{"max_tokens":1.0e3,"system":null,"MODEL":"x"}`))
	f.Add([]byte(`{"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}}]}]}`))
	f.Add([]byte("{\"model\":\"\\ud800\"}"))
	f.Fuzz(func(t *testing.T, body []byte) {
		if EstimateInputTokens(body) < 1 {
			t.Fatal("estimate below 1")
		}
		r, err := ParseMessageRequest(body)
		if err != nil {
			if !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("error %v is not a RequestError", err)
			}
			return
		}
		out, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("re-encoding an accepted body: %v", err)
		}
		back, err := ParseMessageRequest(out)
		if err != nil {
			t.Fatalf("re-encoded body rejected: %v\n%s", err, out)
		}
		if back.Model != r.Model || back.MaxTokens != r.MaxTokens || back.Stream != r.Stream {
			t.Fatalf("round trip changed the inspected fields: %+v vs %+v", r, back)
		}
	})
}

// A crafted body with a huge number of top-level keys is parsed in linear
// time (and a late duplicate is still caught). 150k keys take a few seconds
// on a loaded machine under -race; a quadratic duplicate check needs ~10^10
// comparisons, far beyond the bound.
func TestParseMessageRequestManyKeysIsLinear(t *testing.T) {
	var b strings.Builder
	b.WriteString("{")
	for i := 0; i < 150_000; i++ {
		fmt.Fprintf(&b, `"k%d":1,`, i)
	}
	b.WriteString(`"k17":2}`)
	start := time.Now()
	_, err := ParseMessageRequest([]byte(b.String()))
	require.ErrorContains(t, err, `field "k17": appears more than once`)
	require.Less(t, time.Since(start), 20*time.Second)
}
