package mock

import (
	"encoding/base64"
	"encoding/binary"
)

// maxImageHeader bounds how much of a base64 image is decoded to find its size: a JPEG's
// frame header may follow a large EXIF segment, but never by more than this in practice.
const maxImageHeader = 256 << 10

// base64ImageSize returns the pixel size written in the header of a base64-encoded PNG,
// JPEG, GIF or WebP image, or 0, 0 when the header cannot be read.
func base64ImageSize(data string) (w, h int) {
	n := min(len(data), base64.StdEncoding.EncodedLen(maxImageHeader))
	n -= n % 4
	buf := make([]byte, base64.StdEncoding.DecodedLen(n))
	// A decode error past the header (padding, a stray character) still leaves the bytes
	// before it decoded, which is all the header needs.
	k, _ := base64.StdEncoding.Decode(buf, []byte(data[:n]))
	return imageSize(buf[:k])
}

// imageSize parses an image header. It never reads past b and never panics.
func imageSize(b []byte) (w, h int) {
	switch {
	case len(b) >= 24 && string(b[:8]) == "\x89PNG\r\n\x1a\n" && string(b[12:16]) == "IHDR":
		w, h = int(binary.BigEndian.Uint32(b[16:])), int(binary.BigEndian.Uint32(b[20:]))
	case len(b) >= 10 && (string(b[:6]) == "GIF87a" || string(b[:6]) == "GIF89a"):
		w, h = int(binary.LittleEndian.Uint16(b[6:])), int(binary.LittleEndian.Uint16(b[8:]))
	case len(b) >= 30 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		w, h = webpSize(b)
	case len(b) >= 4 && b[0] == 0xFF && b[1] == 0xD8:
		w, h = jpegSize(b)
	}
	if w <= 0 || h <= 0 || w > 1<<20 || h > 1<<20 {
		return 0, 0
	}
	return w, h
}

func webpSize(b []byte) (w, h int) {
	switch string(b[12:16]) {
	case "VP8X": // extended: 24-bit canvas width-1 and height-1
		return 1 + (int(b[24]) | int(b[25])<<8 | int(b[26])<<16), 1 + (int(b[27]) | int(b[28])<<8 | int(b[29])<<16)
	case "VP8L": // lossless: signature 0x2f, then 14 bits each of width-1 and height-1
		if b[20] != 0x2f || len(b) < 25 {
			return 0, 0
		}
		v := binary.LittleEndian.Uint32(b[21:])
		return int(v&0x3FFF) + 1, int(v>>14&0x3FFF) + 1
	case "VP8 ": // lossy: frame tag, start code 9d 01 2a, then 14-bit width and height
		if b[23] != 0x9d || b[24] != 0x01 || b[25] != 0x2a {
			return 0, 0
		}
		return int(binary.LittleEndian.Uint16(b[26:]) & 0x3FFF), int(binary.LittleEndian.Uint16(b[28:]) & 0x3FFF)
	}
	return 0, 0
}

// jpegSize walks the JPEG segments to the first start-of-frame marker.
func jpegSize(b []byte) (w, h int) {
	i := 2
	for i+4 <= len(b) {
		if b[i] != 0xFF {
			return 0, 0
		}
		marker := b[i+1]
		if marker == 0xFF { // fill byte
			i++
			continue
		}
		if marker == 0x01 || (marker >= 0xD0 && marker <= 0xD9) { // no length field
			i += 2
			continue
		}
		length := int(binary.BigEndian.Uint16(b[i+2:]))
		if length < 2 {
			return 0, 0
		}
		isSOF := marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC
		if isSOF {
			if i+9 > len(b) {
				return 0, 0
			}
			return int(binary.BigEndian.Uint16(b[i+7:])), int(binary.BigEndian.Uint16(b[i+5:]))
		}
		i += 2 + length
	}
	return 0, 0
}

// imageTokens is what the real API bills for an image: about width × height / 750,
// rounded up here.
func imageTokens(w, h int) int64 { return (int64(w)*int64(h) + 749) / 750 }
