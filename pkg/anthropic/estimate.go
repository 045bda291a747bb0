package anthropic

// Token estimation for reservations. The gateway reserves "estimated input +
// max_tokens" against token and budget limits before the call and settles to
// the metered usage after it, so this only has to be cheap, never panic, and
// err high for ordinary prompts without being absurd for images.
const (
	// objectOverheadTokens stands in for the role/turn framing the model sees
	// around each block and message.
	objectOverheadTokens = 3
	// imageReserveTokens is held per image block. Anthropic's docs put a
	// standard image at width·height/750 tokens, about 1,600 at the resize
	// limit; the headroom covers higher-resolution handling on newer models
	// [unverified]. Without this, bytes/4 of a 1 MB base64 photo would
	// reserve ~260k tokens and trip any tokens-per-minute limit.
	imageReserveTokens = 5000
	// base64MinLen is the shortest "data" string treated as encoded bytes.
	base64MinLen = 256
	// maxEstimateDepth bounds the per-level state; deeper levels are still
	// counted, only as plain text.
	maxEstimateDepth = 64
)

type keyKind uint8

const (
	keyOther keyKind = iota
	keyType
	keyData
	keyMediaType
)

type estFrame struct {
	object    bool
	expectKey bool
	key       keyKind
	image     bool  // media_type is image/*
	dataLen   int64 // bytes of a base64 "data" string in this object
}

// EstimateInputTokens guesses the input tokens of a Messages request body in
// one pass without decoding it. It is meant as an over-estimate for
// reservations: ASCII text in JSON strings (keys included) at 4 bytes a
// token, one token per non-ASCII character (CJK runs close to that), a few
// tokens of framing per JSON object, a fixed reserve per image block, and
// base64 documents (PDFs) at 4 encoded bytes a token. It can fall short for
// documents fetched by URL, whose size the body does not show; settling to
// the metered usage corrects that afterwards. The result is at least 1, also
// for malformed input.
func EstimateInputTokens(body []byte) int64 {
	var (
		stack   [maxEstimateDepth]estFrame
		depth   int // may exceed maxEstimateDepth; frames are only kept below it
		units   int64
		objects int64
		fixed   int64
	)
	top := func() *estFrame {
		if depth == 0 || depth > maxEstimateDepth {
			return nil
		}
		return &stack[depth-1]
	}
	for i := 0; i < len(body); i++ {
		switch c := body[i]; c {
		case ' ', '\t', '\n', '\r':
		case '{', '[':
			depth++
			if f := top(); f != nil {
				*f = estFrame{object: c == '{', expectKey: c == '{'}
			}
			if c == '{' {
				objects++
			}
		case '}', ']':
			if f := top(); f != nil && f.dataLen > 0 {
				// Base64 image bytes are covered by the image block's reserve.
				if !f.image {
					units += f.dataLen
				}
			}
			if depth > 0 {
				depth--
			}
		case ',':
			if f := top(); f != nil && f.object {
				f.expectKey = true
			}
		case ':':
			if f := top(); f != nil && f.object {
				f.expectKey = false
			}
		case '"':
			start := i + 1
			ascii, other, b64 := int64(0), int64(0), true
			j := start
			for ; j < len(body); j++ {
				b := body[j]
				if b == '"' {
					break
				}
				if b == '\\' {
					// Some encoders escape the '/' of base64 as "\/".
					if j+1 >= len(body) || body[j+1] != '/' {
						b64 = false
					}
					ascii += 2
					j++
					continue
				}
				switch {
				case b < 0x80:
					ascii++
					if !isBase64Byte(b) {
						b64 = false
					}
				case b >= 0xC0: // a rune's first byte; continuation bytes are skipped
					other++
					b64 = false
				default:
					b64 = false
				}
			}
			s := body[start:min(j, len(body))]
			i = j
			f := top()
			switch {
			case f != nil && f.object && f.expectKey:
				f.key = classifyKey(s)
				units += ascii + 4*other
			case f != nil && f.object && f.key == keyData && b64 && len(s) >= base64MinLen:
				f.dataLen += int64(len(s))
			case f != nil && f.object && f.key == keyMediaType:
				f.image = len(s) >= 6 && string(s[:6]) == "image/"
				units += ascii + 4*other
			case f != nil && f.object && f.key == keyType && string(s) == "image":
				fixed += imageReserveTokens
				units += ascii
			default:
				units += ascii + 4*other
			}
		default: // numbers, true, false, null
			units++
		}
	}
	n := (units+3)/4 + objects*objectOverheadTokens + fixed
	return max(n, 1)
}

func classifyKey(s []byte) keyKind {
	switch string(s) {
	case "type":
		return keyType
	case "data":
		return keyData
	case "media_type":
		return keyMediaType
	}
	return keyOther
}

func isBase64Byte(b byte) bool {
	return b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || b >= '0' && b <= '9' ||
		b == '+' || b == '/' || b == '=' || b == '-' || b == '_'
}
