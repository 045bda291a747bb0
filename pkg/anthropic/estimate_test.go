package anthropic

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func imageBody(mediaType, data string) []byte {
	return []byte(`{"model":"m","max_tokens":10,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"` +
		mediaType + `","data":"` + data + `"}}]}]}`)
}

func encoded(t *testing.T, format string, w, h int) string {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	var b bytes.Buffer
	var err error
	switch format {
	case "png":
		err = png.Encode(&b, img)
	case "jpeg":
		err = jpeg.Encode(&b, img, nil)
	case "gif":
		err = gif.Encode(&b, img, nil)
	}
	require.NoError(t, err)
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

func TestEstimateImageFromHeader(t *testing.T) {
	for _, format := range []string{"png", "jpeg", "gif"} {
		t.Run(format, func(t *testing.T) {
			data := encoded(t, format, 200, 150) // 200·150/750 = 40 tokens
			w, h, ok := imageSize([]byte(data))
			require.True(t, ok)
			require.Equal(t, [2]int64{200, 150}, [2]int64{w, h})
			got := EstimateInputTokens(imageBody("image/"+format, data))
			require.GreaterOrEqual(t, got, int64(40))
			require.Less(t, got, int64(100), "a small image reserves its size, not the fixed reserve")
		})
	}
	t.Run("a large image is capped at the reserve", func(t *testing.T) {
		data := encoded(t, "png", 4000, 3000)
		got := EstimateInputTokens(imageBody("image/png", data))
		require.GreaterOrEqual(t, got, int64(imageReserveTokens))
		require.Less(t, got, int64(imageReserveTokens+100))
	})
	t.Run("an unreadable header keeps the reserve", func(t *testing.T) {
		data := strings.Repeat("QUJD", 200)
		got := EstimateInputTokens(imageBody("image/png", data))
		require.GreaterOrEqual(t, got, int64(imageReserveTokens))
	})
	t.Run("a lying header is capped at the reserve", func(t *testing.T) {
		// A PNG header claiming 100000×100000.
		hdr := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x01\x86\xa0\x00\x01\x86\xa0\x08\x06\x00\x00\x00")
		data := base64.StdEncoding.EncodeToString(append(hdr, make([]byte, 300)...))
		got := EstimateInputTokens(imageBody("image/png", data))
		require.Less(t, got, int64(imageReserveTokens+100))
	})
}

func pdfBody(data string) []byte {
	return []byte(`{"model":"m","max_tokens":10,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"` + data + `"}}]}]}`)
}

func TestEstimatePDF(t *testing.T) {
	t.Run("page objects are counted at pdfPageTokens each", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("%PDF-1.7\n")
		for i := 0; i < 30; i++ {
			// Small, text-only pages: their bytes/4 is far below what the
			// API bills per page.
			fmt.Fprintf(&b, "%d 0 obj\n<< /Type /Page /Parent 2 0 R >>\nendobj\n", i+3)
			b.WriteString(strings.Repeat("x", 500))
		}
		b.WriteString("2 0 obj << /Type/Pages /Kids [] /Count 30 >> endobj\n")
		data := base64.StdEncoding.EncodeToString([]byte(b.String()))
		pages, ok := pdfPages([]byte(data))
		require.True(t, ok)
		require.Equal(t, int64(30), pages)
		require.GreaterOrEqual(t, EstimateInputTokens(pdfBody(data)), int64(30*pdfPageTokens))
	})
	t.Run("matches across decoding windows are counted once", func(t *testing.T) {
		var b strings.Builder
		for i := 0; i < 2000; i++ {
			b.WriteString("/Type /Page ")
			b.WriteString(strings.Repeat("y", i%37))
		}
		data := base64.StdEncoding.EncodeToString([]byte(b.String()))
		pages, ok := pdfPages([]byte(data))
		require.True(t, ok)
		require.Equal(t, int64(2000), pages)
	})
	t.Run("the page tree count wins when pages are compressed", func(t *testing.T) {
		data := base64.StdEncoding.EncodeToString([]byte("%PDF-1.7\n1 0 obj << /Type /Pages /Count 120 >> endobj\n" + strings.Repeat("z", 1000)))
		require.GreaterOrEqual(t, EstimateInputTokens(pdfBody(data)), int64(120*pdfPageTokens))
	})
	t.Run("no page count: a token per decoded byte, capped", func(t *testing.T) {
		data := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x78, 0x9c, 0x01}, 10_000))
		got := EstimateInputTokens(pdfBody(data))
		require.GreaterOrEqual(t, got, int64(30_000))
		big := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x78, 0x9c, 0x01}, 400_000))
		require.LessOrEqual(t, EstimateInputTokens(pdfBody(big)), int64(pdfUnknownPagesCap+100))
	})
}

func TestEstimateDenseText(t *testing.T) {
	msg := func(s string) []byte {
		return []byte(`{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"` + s + `"}]}`)
	}
	digits := strings.Repeat("3141592653 ", 400) // 4,400 bytes
	require.GreaterOrEqual(t, EstimateInputTokens(msg(digits)), int64(len(digits)*2/5),
		"digits are counted at about 2 bytes a token")
	noise := strings.Repeat("aZ3kQ9xP0vB7mN2c", 300) // one space-free 4,800-byte string
	require.GreaterOrEqual(t, EstimateInputTokens(msg(noise)), int64(len(noise)/2))
	prose := strings.Repeat("The quick brown fox jumps over the lazy dog. ", 100)
	require.Less(t, EstimateInputTokens(msg(prose)), int64(len(prose)/4+50), "prose stays at bytes/4")
}

func BenchmarkEstimateInputTokensMedia(b *testing.B) {
	img := image.NewRGBA(image.Rect(0, 0, 800, 600))
	var pngBuf bytes.Buffer
	_ = png.Encode(&pngBuf, img)
	var pdf strings.Builder
	for i := 0; i < 50; i++ {
		fmt.Fprintf(&pdf, "%d 0 obj << /Type /Page >> endobj %s\n", i, strings.Repeat("q", 4000))
	}
	body := []byte(`{"model":"m","max_tokens":10,"messages":[{"role":"user","content":[` +
		`{"type":"image","source":{"type":"base64","media_type":"image/png","data":"` + base64.StdEncoding.EncodeToString(pngBuf.Bytes()) + `"}},` +
		`{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"` + base64.StdEncoding.EncodeToString([]byte(pdf.String())) + `"}},` +
		`{"type":"text","text":"Compare these."}]}]}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		EstimateInputTokens(body)
	}
}

func TestTokenizerFactor(t *testing.T) {
	for m, want := range map[string]float64{
		"claude-sonnet-4-5-20250929": 1, "claude-haiku-4-5": 1, "claude-opus-4-6": 1, "claude-3-5-haiku-20241022": 1,
		"claude-opus-4-7": 1.3, "claude-opus-4-8": 1.3, "claude-sonnet-5": 1.3, "claude-haiku-5-5": 1.3, "claude-fable-5-1": 1.3,
		"claude-something-new": 1.3,
	} {
		require.Equal(t, want, TokenizerFactor(m), m)
	}
}
