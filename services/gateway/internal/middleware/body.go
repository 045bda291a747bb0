package middleware

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"sync"

	"github.com/gin-gonic/gin"

	"github.com/keyward/keyward/services/gateway/internal/httperr"
	"github.com/keyward/keyward/services/gateway/internal/reqctx"
)

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Body reads a POST body exactly once, capped at limit bytes (chunked bodies
// included, via MaxBytesReader), after checking it is application/json (a
// text/plain POST would be a CORS "simple" request that skips the preflight).
// Signature checks hash, and handlers parse, this same buffer.
func Body(limit int64, log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Request.Method != http.MethodPost {
			c.Next()
			return
		}
		if ct := c.GetHeader("Content-Type"); ct != "application/json" {
			// The exact common spelling skips the parser (and its
			// parameter map); everything else is judged by it.
			mt, _, err := mime.ParseMediaType(ct)
			if err != nil || mt != "application/json" {
				httperr.Write(c, log, httperr.UnsupportedMedia())
				return
			}
		}
		if c.Request.ContentLength > limit {
			httperr.Write(c, log, httperr.TooLarge(limit))
			return
		}
		var body []byte
		if n := c.Request.ContentLength; n >= 0 {
			// The length is known and within the limit: one exact
			// allocation. net/http ends the body at Content-Length, so
			// a short body is an error and a longer one impossible.
			body = make([]byte, n)
			_, err := io.ReadFull(c.Request.Body, body)
			if err == nil {
				// Reading on to EOF is what starts net/http's watch
				// for a client that goes away mid-request (context
				// cancellation); it returns at once.
				var one [1]byte
				if m, rerr := c.Request.Body.Read(one[:]); m != 0 || !errors.Is(rerr, io.EOF) {
					err = errors.New("body longer than Content-Length")
				}
			}
			if err != nil {
				httperr.Write(c, log, httperr.Invalid("could not read the request body"))
				return
			}
		} else {
			var ok bool
			if body, ok = readChunked(c, limit, log); !ok {
				return
			}
		}
		reqctx.Get(c).Body = body
		c.Request.Body = io.NopCloser(bytes.NewReader(body))
		c.Next()
	}
}

// readChunked reads a body of unknown length (chunked) up to limit through
// a pooled buffer; it writes the error answer itself when it fails.
func readChunked(c *gin.Context, limit int64, log *slog.Logger) ([]byte, bool) {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	_, err := buf.ReadFrom(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
	if err != nil {
		bufPool.Put(buf)
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			httperr.Write(c, log, httperr.TooLarge(limit))
			return nil, false
		}
		httperr.Write(c, log, httperr.Invalid("could not read the request body"))
		return nil, false
	}
	body := make([]byte, buf.Len())
	copy(body, buf.Bytes())
	if buf.Cap() <= 1<<20 {
		bufPool.Put(buf)
	}
	return body, true
}
