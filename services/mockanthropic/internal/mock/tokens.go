package mock

import (
	"encoding/binary"
	"hash/maphash"
	"sync"
	"time"
)

// Token accounting. A token is ceil(bytes/4) of the prompt's text, with non-text blocks and
// tool definitions counted by the size of their JSON: not what a real tokenizer does, but
// deterministic, cheap and close enough in size that cost and limit arithmetic is realistic.

func tokensFor(bytes int) int64 { return int64((bytes + 3) / 4) }

// usage is the token bill of one call.
type usage struct {
	input         int64
	output        int64 // includes thinking
	cacheRead     int64
	cacheCreate5m int64
	cacheCreate1h int64
	thinking      int64 // hidden reasoning, part of output
	webSearch     int64
	webFetch      int64
}

func (u *usage) cacheCreation() int64 { return u.cacheCreate5m + u.cacheCreate1h }

// add adds the counts of o (a reply's blocks) to u.
func (u *usage) add(o *usage) {
	u.input += o.input
	u.output += o.output
	u.cacheRead += o.cacheRead
	u.cacheCreate5m += o.cacheCreate5m
	u.cacheCreate1h += o.cacheCreate1h
	u.thinking += o.thinking
	u.webSearch += o.webSearch
	u.webFetch += o.webFetch
}

// breakpoint is a block carrying cache_control: the prompt up to and including it is a
// cacheable prefix, identified by the hash of everything before it.
type breakpoint struct {
	hash  uint64
	bytes int
	ttl   time.Duration
}

func ttlOf(cc *cacheControl) time.Duration {
	if cc.TTL == "1h" {
		return time.Hour
	}
	return 5 * time.Minute
}

// promptShape walks the prompt in the order the real API caches it (tools, system,
// messages) and returns its size in bytes plus its cache breakpoints. The hash covers the
// model too, because caches are per model.
//
// Input the API fetches itself is counted at what it would bill (see hiddenInput): images at
// width × height / 750 and URL or file documents at pages × tokens per page. Such tokens
// count as 4 bytes each, so the byte arithmetic of the cache stays exact.
func (r *messagesRequest) promptShape(seed maphash.Seed, hidden *hiddenInput, bps []breakpoint) (int, []breakpoint) {
	var h maphash.Hash
	h.SetSeed(seed)
	_, _ = h.WriteString(*r.Model)
	var scratch [9]byte
	writeHash := func(kind byte, v uint64) {
		scratch[0] = kind
		binary.LittleEndian.PutUint64(scratch[1:], v)
		_, _ = h.Write(scratch[:])
	}
	writeText := func(kind byte, s string) {
		// Length-prefixed, so that moving bytes between adjacent blocks changes the hash.
		writeHash(kind, uint64(len(s)))
		_, _ = h.WriteString(s)
	}
	size := 0
	mark := func(cc *cacheControl) {
		if cc != nil {
			bps = append(bps, breakpoint{hash: h.Sum64(), bytes: size, ttl: ttlOf(cc)})
		}
	}
	for i := range r.Tools {
		t := &r.Tools[i]
		writeHash('T', t.rawHash)
		size += t.rawLen
		mark(t.CacheControl)
	}
	if r.System.isString {
		writeText('S', r.System.str)
		size += len(r.System.str)
	}
	for j := range r.System.blocks {
		b := &r.System.blocks[j]
		writeText('S', b.Text)
		size += len(b.Text)
		mark(b.CacheControl)
	}
	for i := range r.Messages {
		m := &r.Messages[i]
		role := byte('U')
		if m.Role == "assistant" {
			role = 'A'
		}
		if m.Content.isString {
			writeText(role, m.Content.str)
			size += len(m.Content.str)
			continue
		}
		for j := range m.Content.blocks {
			b := &m.Content.blocks[j]
			if b.Type == "text" {
				writeText(role, b.Text)
				size += len(b.Text)
			} else {
				writeHash(role|0x20, b.rawHash)
				size += hidden.blockBytes(b)
			}
			mark(b.CacheControl)
		}
	}
	// A top-level cache_control is automatic caching: a breakpoint after the last block.
	mark(r.CacheControl)
	return size, bps
}

// hiddenInput is how the mock bills input that a block names but does not contain.
type hiddenInput struct {
	docPages, docPageTokens int64
	imgW, imgH              int
}

func newHiddenInput(d *Directives) hiddenInput {
	h := hiddenInput{
		docPages:      orDefault(d.DocPages, defaultDocPages),
		docPageTokens: orDefault(d.DocPageTokens, defaultDocPageTokens),
	}
	h.imgW, h.imgH = d.imageSize()
	return h
}

// blockBytes is the size a non-text block counts for: 4 bytes per billed token for images
// and fetched documents, else the size of its JSON.
func (h *hiddenInput) blockBytes(b *contentBlock) int {
	fetched := b.srcType == "url" || b.srcType == "file"
	switch {
	case h == nil:
	case b.Type == "image" && b.imgW > 0:
		return 4 * int(imageTokens(b.imgW, b.imgH))
	case b.Type == "image" && fetched:
		return 4 * int(imageTokens(h.imgW, h.imgH))
	case b.Type == "document" && fetched:
		return 4 * int(h.docPages*h.docPageTokens)
	}
	return b.rawLen
}

// inputTokens is what count_tokens reports: the whole prompt, never less than one token.
func inputTokens(size int) int64 { return max(1, tokensFor(size)) }

// promptCache remembers which prompt prefixes this process has seen, so the first call with
// a cache_control prefix is billed as a cache write and later ones as cache reads, with the
// TTL semantics of the real API: an entry lives for its TTL and a read refreshes it.
type promptCache struct {
	mu      sync.Mutex
	entries map[uint64]time.Time // prefix hash → expiry
}

// maxCacheEntries bounds memory under load tests that send endless distinct prompts.
const maxCacheEntries = 100_000

func newPromptCache() *promptCache {
	return &promptCache{entries: make(map[uint64]time.Time)}
}

func (c *promptCache) reset() {
	c.mu.Lock()
	clear(c.entries)
	c.mu.Unlock()
}

// bill splits a prompt of size bytes with the given breakpoints into uncached input, cache
// reads and cache writes, and records the writes.
//
// forced, when not negative, replaces the prompt's size in tokens (input_tokens=N).
func (c *promptCache) bill(size int, bps []breakpoint, forced int64, now time.Time) usage {
	total := inputTokens(size)
	if forced >= 0 {
		total = forced
	}
	if len(bps) == 0 {
		return usage{input: total}
	}
	tokensAt := func(i int) int64 {
		if i < 0 {
			return 0
		}
		return min(tokensFor(bps[i].bytes), total)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// The longest prefix still cached is read; everything after it up to the last breakpoint
	// is written, each segment with the TTL of the breakpoint that closes it.
	hit := -1
	for i := len(bps) - 1; i >= 0; i-- {
		if exp, ok := c.entries[bps[i].hash]; ok && now.Before(exp) {
			hit = i
			break
		}
	}
	u := usage{cacheRead: tokensAt(hit)}
	if hit >= 0 {
		c.entries[bps[hit].hash] = now.Add(bps[hit].ttl)
	}
	if len(c.entries) >= maxCacheEntries {
		c.evict(now)
	}
	for i := hit + 1; i < len(bps); i++ {
		seg := tokensAt(i) - tokensAt(i-1)
		if bps[i].ttl == time.Hour {
			u.cacheCreate1h += seg
		} else {
			u.cacheCreate5m += seg
		}
		c.entries[bps[i].hash] = now.Add(bps[i].ttl)
	}
	u.input = total - tokensAt(len(bps)-1)
	return u
}

// evict drops expired entries, and everything if that is not enough. Caller holds mu.
func (c *promptCache) evict(now time.Time) {
	for k, exp := range c.entries {
		if !now.Before(exp) {
			delete(c.entries, k)
		}
	}
	if len(c.entries) >= maxCacheEntries {
		clear(c.entries)
	}
}
