package mock

import (
	"math/rand/v2"
	"sync"
)

const idAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// newID returns prefix followed by 24 random base62 characters, the shape of Anthropic's
// req_… and msg_… identifiers. Uniqueness matters (tests correlate by id); secrecy does not.
func newID(prefix string) string {
	var buf [32]byte
	n := copy(buf[:], prefix)
	for i := 0; i < 3; i++ {
		v := rand.Uint64()
		for j := 0; j < 8; j++ {
			buf[n] = idAlphabet[v%62]
			v /= 62
			n++
		}
	}
	return string(buf[:n])
}

// Header values shared by every response; never mutated.
var (
	jsonContentType = []string{"application/json"}
	sseContentType  = []string{"text/event-stream; charset=utf-8"}
	noCache         = []string{"no-cache"}
)

// bufPool recycles response buffers; most responses fit well under the initial capacity.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	// Oversized buffers (a 100k-token answer) would pin memory in the pool for no gain.
	if cap(*b) > 1<<20 {
		return
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}
