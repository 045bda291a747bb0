package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// gateway is one gateway process and where to reach it.
type gateway struct {
	name, job  string
	url        string // public listener
	metricsURL string
	p          *proc
	down       atomic.Bool
}

var client = &http.Client{Timeout: 30 * time.Second}

const (
	cheapModel = "claude-sonnet-4-5"
	heavyModel = "claude-opus-4-5"
)

// message posts one /v1/messages call whose last user message is text (mock directives go
// there) and returns the HTTP status (0 when the call failed outright).
func message(ctx context.Context, g *gateway, model, text string, maxTokens int, hdr map[string]string) int {
	body, _ := json.Marshal(map[string]any{
		"model":      model,
		"max_tokens": maxTokens,
		"messages":   []map[string]any{{"role": "user", "content": text}},
	})
	return post(ctx, g.url+"/v1/messages", body, hdr)
}

func countTokens(ctx context.Context, g *gateway, text string) int {
	body, _ := json.Marshal(map[string]any{
		"model":    cheapModel,
		"messages": []map[string]any{{"role": "user", "content": text}},
	})
	return post(ctx, g.url+"/v1/messages/count_tokens", body, nil)
}

func post(ctx context.Context, url string, body []byte, hdr map[string]string) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("anthropic-version", "2023-06-01")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// statusCounts counts answers by status, for the phase reports.
type statusCounts struct {
	mu sync.Mutex
	m  map[int]int
}

func (s *statusCounts) add(code int) {
	s.mu.Lock()
	if s.m == nil {
		s.m = map[int]int{}
	}
	s.m[code]++
	s.mu.Unlock()
}

func (s *statusCounts) snapshot() map[int]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[int]int, len(s.m))
	for k, v := range s.m {
		out[k] = v
	}
	s.m = nil
	return out
}

// loop calls fn against the live gateways in turn, every interval, until ctx ends.
// Each call runs in its own goroutine so a slow answer never lowers the rate.
func loop(ctx context.Context, wg *sync.WaitGroup, gws []*gateway, interval time.Duration, fn func(context.Context, *gateway)) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		var calls sync.WaitGroup
		defer calls.Wait()
		i := 0
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			for range gws {
				g := gws[i%len(gws)]
				i++
				if g.down.Load() {
					continue
				}
				calls.Add(1)
				go func() { defer calls.Done(); fn(ctx, g) }()
				break
			}
		}
	}()
}
