package anthropic

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// scannerCases are bodies at the edges of the JSON grammar.
var scannerCases = []string{
	`{}`, ` {} `, `{"a":1}`, `{"a":-0}`, `{"a":0.5e-7}`, `{"a":1E+2}`, `{"a":-12.30}`,
	`{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":-}`, `{"a":1e}`, `{"a":+1}`, `{"a":0x1}`, `{"a":1x}`, `{"a":NaN}`,
	`{"a":true}`, `{"a":truex}`, `{"a":tru}`, `{"a":null,"b":false}`, `{"a":nul}`,
	`{"a":"\u00e9\n\t\"\\\/\b\f\r"}`, `{"a":"\u00g9"}`, `{"a":"\x"}`, `{"a":"\u12"}`, "{\"a\":\"tab\there\"}", "{\"a\":\"nl\nhere\"}",
	`{"a":"unterminated}`, `{"a":[1,2,[3,{"b":[]}]]}`, `{"a":[1,2,]}`, `{"a":[,1]}`, `{"a":{"b":1,}}`, `{"a":1,}`, `{,"a":1}`,
	`{"a" 1}`, `{"a":}`, `{a:1}`, `{'a':1}`, `{"a":1}}`, `{"a":1} {}`, `{"a":1`, `{"a":[1,2}`, `[1]`, `"s"`, `1`, ``, ` `,
	`{"mod\u0065l":"m"}`, `{"model":"a","model":"b"}`, `{"model":"a","mod\u0065l":"b"}`, `{"\ud800":1}`,
	"{\"a\":\"\xff\"}", `{"a":[` + strings.Repeat("[", 600) + strings.Repeat("]", 600) + `]}`,
	`{"model":"claude-haiku-4-5","max_tokens":16,"stream":true,"messages":[{"role":"user","content":"hi"}],"temperature":0.1}`,
	`{"max_tokens":1.0e3,"system":null,"MODEL":"x"}`, `{"model":42}`, `{"stream":"yes"}`, `{"max_tokens":0}`,
}

func TestScanObjectNeverAcceptsInvalidJSON(t *testing.T) {
	for _, c := range scannerCases {
		ok := scanObject([]byte(c), nil)
		if ok {
			require.True(t, json.Valid([]byte(c)), "scanner accepted invalid JSON %q", c)
			require.Equal(t, byte('{'), strings.TrimSpace(c)[0], "scanner accepted a non-object %q", c)
		}
	}
}

// The fast path must actually be taken for ordinary bodies, or it is dead
// weight.
func TestScanObjectAcceptsOrdinaryBodies(t *testing.T) {
	for _, c := range []string{
		string(benchRequestBody()),
		`{"a":"\u00e9\n\t\"\\\/\b\f\r","b":-0.5e+10,"c":[true,false,null,{}],"d":{"e":[]}}`,
		" \n{\"model\":\"m\"}\n\t ",
	} {
		require.True(t, scanObject([]byte(c), nil), "%q", c)
	}
	var keys []string
	require.True(t, scanObject([]byte(`{"a" : [1, {"x":2}] , "b\u0041":"v"}`), func(m jsonMember) bool {
		keys = append(keys, fmt.Sprintf("%s=%s/%v", m.key, m.val, m.escaped))
		return true
	}))
	require.Equal(t, []string{`"a"=[1, {"x":2}]/false`, `"b\u0041"="v"/true`}, keys)
}

// The fast path and the decoder path give identical results, errors
// included, for every body the fast path takes.
func TestParseMessageRequestFastMatchesDecoder(t *testing.T) {
	for _, c := range scannerCases {
		requireSameParse(t, []byte(c))
	}
}

func requireSameParse(t *testing.T, body []byte) {
	t.Helper()
	if !utf8.Valid(body) {
		return // ParseMessageRequest refuses it before either path
	}
	fast, ok, ferr := parseMessageRequestFast(body)
	if !ok {
		return
	}
	slow, serr := parseMessageRequestDecoder(body)
	require.Equal(t, fmt.Sprint(serr), fmt.Sprint(ferr), "errors differ for %q", body)
	require.True(t, reflect.DeepEqual(slow, fast), "results differ for %q:\n%+v\n%+v", body, slow, fast)
}

// meterCases and eventCases are response and stream-event payloads.
var meterCases = []string{
	`{"id":"msg_1","type":"message","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Hi \u00e9"}],"usage":{"input_tokens":410,"cache_creation":{"ephemeral_5m_input_tokens":1},"output_tokens":585}}`,
	`{"type":"error","model":"m","error":{"type":"api_error"}}`, `{"type":"message"}`, `{"usage":null}`, `{"usage":{}}`,
	`{"usage":{"input_tokens":"5"}}`, `{"usage":[]}`, `{"type":5,"usage":{}}`, `{"model":null,"usage":{"output_tokens":-3}}`,
	`{"Usage":{"input_tokens":5}}`, `{"u\u0073age":{"input_tokens":5}}`, "{\"u\u017fage\":{\"input_tokens\":5}}",
	`{"usage":{"input_tokens":1},"usage":{"input_tokens":2}}`, `{"model":"a","model":"b","usage":{}}`, "{\"model\":\"\xff\",\"usage\":{}}",
	`{"usage":{"INPUT_TOKENS":7,"output_tokens":1.5}}`, `{"usage":{"output_tokens":3,"output_tokens":null,"input_tokens":1,"input_tokens":2}}`,
	`{"usage":{"cache_creation":{"ephemeral_5m_input_tokens":4},"cache_creation":{"ephemeral_1h_input_tokens":6}}}`,
	`{"usage":{"cache_creation":{"ephemeral_5m_input_tokens":4,"ephemeral_5m_input_tokens":null},"service_tier":"standard","server_tool_use":{"web_search_requests":1}}}`,
	`{"usage":{"cache_creation":{"Ephemeral_5m_input_tokens":4}}}`, `{"usage":{"cache_creation":[]}}`, `{"usage":{"input_tokens":99999999999999999999}}`, `{"usage":{"input_tokens":9e99}}`, `[]`, `<html>`,
}

var eventCases = []string{
	`{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":10,"output_tokens":1}}}`,
	`{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}`,
	`{"message":null}`, `{"message":"x"}`, `{"message":{"model":null,"usage":null}}`, `{"message":{"model":5}}`, `{"Message":{"model":"m"}}`,
	`{"message":{"model":"a"},"message":{"usage":{"input_tokens":1}}}`, `{"delta":null,"usage":{"output_tokens":3}}`, `{"delta":{"stop_reason":null}}`,
	`{"delta":{"stop_reason":7}}`, `{"delta":{"Stop_Reason":"x"}}`, `{"delta":[],"usage":{}}`, `{"usage":{"output_tokens":"9"}}`, `[]`, `{"delta":{"stop_reason":"a\u00e9"}}`,
}

func TestParseMessageRequestDoesNotAliasBody(t *testing.T) {
	body := []byte(`{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.5}`)
	r, err := ParseMessageRequest(body)
	require.NoError(t, err)
	for i := range body {
		body[i] = 'x'
	}
	require.Equal(t, `[{"role":"user","content":"hi"}]`, string(r.Messages))
	require.Equal(t, `0.5`, string(r.Extra["temperature"]))
	r.Messages = append(r.Messages, ',') // must not spill into the next field
	require.Equal(t, `0.5`, string(r.Extra["temperature"]))
}

// FuzzScanObjectMatchesEncodingJSON: the scanner never vouches for a body
// encoding/json rejects, and where it does, ParseMessageRequest gives
// exactly what its encoding/json path gives. (Response and event payloads
// are seeds too: they exercise the grammar.)
func FuzzScanObjectMatchesEncodingJSON(f *testing.F) {
	for _, c := range append(append(scannerCases, meterCases...), eventCases...) {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if scanObject(body, nil) && !json.Valid(body) {
			t.Fatalf("scanner accepted invalid JSON %q", body)
		}
		requireSameParse(t, body)
	})
}
