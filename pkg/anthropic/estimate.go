package anthropic

import (
	"bytes"
	"encoding/base64"
	"strings"
)

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
	// noiseMinLen is the shortest space-free string of letters and digits
	// counted as dense noise.
	noiseMinLen = 16
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
	pdf       bool  // media_type is application/pdf
	dataStart int   // offset of the base64 "data" string in the body
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
		// imageAdjust corrects the fixed image reserve to the size read
		// from a base64 image's header (≤ 0).
		imageAdjust int64
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
				data := body[f.dataStart : f.dataStart+int(f.dataLen)]
				switch {
				case f.image:
					// The image block's fixed reserve stands in until the
					// header gives the real size.
					if w, h, ok := imageSize(data); ok {
						imageAdjust += imageTokens(w, h) - imageReserveTokens
					}
				case f.pdf:
					fixed += pdfTokens(data)
				default:
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
			ascii, other, digits, b64 := int64(0), int64(0), int64(0), true
			letters := int64(0)
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
				case b >= '0' && b <= '9':
					ascii++
					digits++
				case b < 0x80:
					ascii++
					if b|0x20 >= 'a' && b|0x20 <= 'z' {
						letters++
					} else if !isBase64Byte(b) {
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
			// Digits tokenise at a few per token, and so does noise without
			// spaces (ids, hashes, base64 outside a data field): both are
			// counted at 2 bytes a token instead of 4.
			text := ascii + digits + 4*other
			if b64 && digits > 0 && letters > 0 && len(s) >= noiseMinLen {
				text = 2*ascii + 4*other
			}
			f := top()
			switch {
			case f != nil && f.object && f.expectKey:
				f.key = classifyKey(s)
				units += text
			case f != nil && f.object && f.key == keyData && b64 && len(s) >= base64MinLen:
				if f.dataLen == 0 {
					f.dataStart = start
				}
				if f.dataStart+int(f.dataLen) == start {
					f.dataLen += int64(len(s))
				} else {
					units += int64(len(s)) // a second data string: bytes/4
				}
			case f != nil && f.object && f.key == keyMediaType:
				f.image = len(s) >= 6 && string(s[:6]) == "image/"
				f.pdf = string(s) == "application/pdf"
				units += text
			case f != nil && f.object && f.key == keyType && string(s) == "image":
				fixed += imageReserveTokens
				units += ascii
			default:
				units += text
			}
		default: // numbers, true, false, null
			units++
		}
	}
	n := (units+3)/4 + objects*objectOverheadTokens + max(fixed+imageAdjust, 0)
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

// Sizes of base64 media, read from the encoded bytes without allocating.
const (
	// pdfPageTokens is reserved per PDF page: the PDF docs give
	// 1,500–3,000 text tokens a page plus an image of each page; a 100-page
	// PDF was billed ~385k tokens (issue 13).
	pdfPageTokens = 4000
	// pdfUnknownPagesCap bounds a PDF whose page count cannot be read
	// cheaply (pages inside compressed object streams): one token per
	// decoded byte, up to this.
	pdfUnknownPagesCap = 400_000
	// imageHeaderBytes is how much of a base64 image is decoded to find its
	// size; a JPEG's frame header can follow large EXIF segments.
	imageHeaderBytes = 64 << 10
)

// imageTokens is the docs' width×height/750, rounded up, and at most the
// fixed reserve: the API scales larger images down.
func imageTokens(w, h int64) int64 {
	return min((w*h+749)/750, imageReserveTokens)
}

// b64Window decodes up to len(dst) bytes from the start of base64 text
// without allocating. It stops at the first byte that is not standard
// base64 (an escaped "\/", padding), so it may return fewer bytes.
func b64Window(src []byte, dst []byte) int {
	n := 0
	var acc uint32
	bits := 0
	for _, c := range src {
		var v byte
		switch {
		case c >= 'A' && c <= 'Z':
			v = c - 'A'
		case c >= 'a' && c <= 'z':
			v = c - 'a' + 26
		case c >= '0' && c <= '9':
			v = c - '0' + 52
		case c == '+' || c == '-':
			v = 62
		case c == '/' || c == '_':
			v = 63
		default:
			return n
		}
		acc = acc<<6 | uint32(v)
		bits += 6
		if bits >= 8 {
			bits -= 8
			if n == len(dst) {
				return n
			}
			dst[n] = byte(acc >> bits)
			n++
		}
	}
	return n
}

// imageSize reads width and height from the header of a base64 PNG, GIF,
// WebP or JPEG.
func imageSize(b64 []byte) (w, h int64, ok bool) {
	var head [32]byte
	n := b64Window(b64, head[:])
	b := head[:n]
	le16 := func(p []byte) int64 { return int64(p[0]) | int64(p[1])<<8 }
	be32 := func(p []byte) int64 { return int64(p[0])<<24 | int64(p[1])<<16 | int64(p[2])<<8 | int64(p[3]) }
	switch {
	case n >= 24 && string(b[:8]) == "\x89PNG\r\n\x1a\n" && string(b[12:16]) == "IHDR":
		w, h = be32(b[16:20]), be32(b[20:24])
	case n >= 10 && (string(b[:6]) == "GIF87a" || string(b[:6]) == "GIF89a"):
		w, h = le16(b[6:8]), le16(b[8:10])
	case n >= 30 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		switch string(b[12:16]) {
		case "VP8X":
			w = (int64(b[24]) | int64(b[25])<<8 | int64(b[26])<<16) + 1
			h = (int64(b[27]) | int64(b[28])<<8 | int64(b[29])<<16) + 1
		case "VP8L":
			v := int64(b[21]) | int64(b[22])<<8 | int64(b[23])<<16 | int64(b[24])<<24
			w, h = v&0x3FFF+1, (v>>14)&0x3FFF+1
		case "VP8 ":
			w, h = le16(b[26:28])&0x3FFF, le16(b[28:30])&0x3FFF
		}
	case n >= 4 && b[0] == 0xFF && b[1] == 0xD8:
		return jpegSize(b64)
	}
	if w <= 0 || h <= 0 {
		return 0, 0, false
	}
	return w, h, true
}

// jpegSize walks a base64 JPEG's segments to its frame header, decoding a
// small window at a time.
func jpegSize(b64 []byte) (w, h int64, ok bool) {
	var buf [12]byte
	// at reads n bytes at decoded offset off: base64 maps 3 bytes to 4
	// characters, so decode from the quartet holding off.
	at := func(off int64, n int) []byte {
		q := off / 3 * 4
		if q >= int64(len(b64)) {
			return nil
		}
		got := b64Window(b64[q:], buf[:])
		skip := int(off % 3)
		if got < skip+n {
			return nil
		}
		return buf[skip : skip+n]
	}
	off := int64(2)
	for off < imageHeaderBytes {
		m := at(off, 4)
		if m == nil || m[0] != 0xFF {
			return 0, 0, false
		}
		marker := m[1]
		segLen := int64(m[2])<<8 | int64(m[3])
		switch {
		case marker == 0xFF: // fill byte
			off++
			continue
		case marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC:
			f := at(off+5, 4)
			if f == nil {
				return 0, 0, false
			}
			h, w = int64(f[0])<<8|int64(f[1]), int64(f[2])<<8|int64(f[3])
			return w, h, w > 0 && h > 0
		case marker == 0xD9 || marker == 0xDA: // end of image, start of scan
			return 0, 0, false
		}
		if segLen < 2 {
			return 0, 0, false
		}
		off += 2 + segLen
	}
	return 0, 0, false
}

// pdfTokens reserves for a base64 PDF: pdfPageTokens per page when the page
// count can be read from the decoded bytes (page objects, or the page
// tree's /Count), else a token per decoded byte up to pdfUnknownPagesCap;
// never less than 4 encoded bytes a token.
func pdfTokens(b64 []byte) int64 {
	floor := (int64(len(b64)) + 3) / 4
	pages, ok := pdfPages(b64)
	if ok {
		return max(pages*pdfPageTokens, floor)
	}
	return max(min(int64(len(b64))*3/4, pdfUnknownPagesCap), floor)
}

// pdfPages counts "/Type /Page" objects (not /Pages) and the largest
// /Count in the decoded PDF, streaming through a fixed buffer.
func pdfPages(b64 []byte) (int64, bool) {
	const keep = 24 // longest pattern plus its number
	var buf [keep + 3072]byte
	var objects, maxCount int64
	carry := 0
	for pos := 0; pos < len(b64); {
		end := min(pos+4096, len(b64))
		// The standard decoder is table-driven and writes into buf, so
		// this allocates nothing; on a bad byte it reports what it decoded.
		n, _ := base64.StdEncoding.Decode(buf[carry:], b64[pos:end])
		if n == 0 {
			break
		}
		win := buf[:carry+n]
		objects += countPageObjects(win, carry)
		if c := maxPageCount(win); c > maxCount {
			maxCount = c
		}
		if n < (end-pos)/4*3 {
			break // stopped at padding or an escape: the rest is not read
		}
		pos = end
		carry = copy(buf[:], win[max(len(win)-keep, 0):])
	}
	pages := max(objects, maxCount)
	return pages, pages > 0
}

// countPageObjects counts "/Type/Page" and "/Type /Page" not followed by
// "s". The first from bytes of b were the end of the previous window: a
// match is counted in the window where the byte after it is new.
func countPageObjects(b []byte, from int) int64 {
	var n int64
	for i := 0; ; {
		k := bytes.Index(b[i:], typeKey)
		if k < 0 {
			return n
		}
		j := i + k + len(typeKey)
		for j < len(b) && (b[j] == ' ' || b[j] == '\n' || b[j] == '\r') {
			j++
		}
		if j+5 >= len(b) {
			return n // cut by the window end: seen whole in the next one
		}
		if string(b[j:j+5]) == "/Page" && b[j+5] != 's' && j+5 >= from {
			n++
		}
		i = j
	}
}

var (
	typeKey  = []byte("/Type")
	countKey = []byte("/Count")
)

// maxPageCount is the largest number after "/Count" in b.
func maxPageCount(b []byte) int64 {
	var best int64
	for i := 0; ; {
		k := bytes.Index(b[i:], countKey)
		if k < 0 {
			return best
		}
		j := i + k + len(countKey)
		for j < len(b) && b[j] == ' ' {
			j++
		}
		var v int64
		e := j
		for e < len(b) && b[e] >= '0' && b[e] <= '9' && v < 1<<40 {
			v = v*10 + int64(b[e]-'0')
			e++
		}
		if e > j && e < len(b) && v > best {
			best = v
		}
		i = max(e, j)
	}
}

// oldTokenizer lists the models (undated ids) that use the tokenizer the
// estimate's byte ratios were set for.
var oldTokenizer = map[string]bool{
	"claude-opus-4": true, "claude-opus-4-0": true, "claude-opus-4-1": true, "claude-opus-4-5": true, "claude-opus-4-6": true,
	"claude-sonnet-4": true, "claude-sonnet-4-0": true, "claude-sonnet-4-5": true, "claude-sonnet-4-6": true,
	"claude-haiku-4-5": true,
}

// TokenizerFactor scales EstimateInputTokens for a model: Claude 4.7 and
// later models use a newer tokenizer that "produces approximately 30% more
// tokens for the same text" (pricing page, captured 2026-09-01), so they
// get 1.3; the models before it 1. An unknown model gets 1.3, erring high.
func TokenizerFactor(model string) float64 {
	base := model
	if b, ok := undated(model); ok {
		base = b
	}
	if oldTokenizer[base] || strings.HasPrefix(base, "claude-3") {
		return 1
	}
	return 1.3
}
