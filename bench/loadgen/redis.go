package main

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// commandStats reads INFO commandstats from the Redis at addr: calls per
// command, lower-case ("evalsha", "eval", "ping", "info", …). A tiny RESP
// exchange keeps this module free of dependencies.
func commandStats(addr string) (map[string]int64, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, fmt.Errorf("connecting to redis: %w", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "*2\r\n$4\r\nINFO\r\n$12\r\ncommandstats\r\n"); err != nil {
		return nil, fmt.Errorf("sending INFO: %w", err)
	}
	r := bufio.NewReader(c)
	head, err := r.ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("reading INFO reply: %w", err)
	}
	head = strings.TrimRight(head, "\r\n")
	if len(head) == 0 || head[0] != '$' {
		return nil, fmt.Errorf("unexpected INFO reply %q", head)
	}
	n, err := strconv.Atoi(head[1:])
	if err != nil || n < 0 {
		return nil, fmt.Errorf("unexpected INFO reply %q", head)
	}
	body := make([]byte, n+2)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("reading INFO body: %w", err)
	}
	return parseCommandStats(string(body[:n]))
}

// parseCommandStats parses lines like
// "cmdstat_evalsha:calls=12,usec=340,usec_per_call=28.33,…".
func parseCommandStats(info string) (map[string]int64, error) {
	out := map[string]int64{}
	for _, line := range strings.Split(info, "\n") {
		line = strings.TrimSpace(line)
		name, rest, ok := strings.Cut(line, ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		for _, kv := range strings.Split(rest, ",") {
			k, v, _ := strings.Cut(kv, "=")
			if k != "calls" {
				continue
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("parsing %s calls %q: %w", name, v, err)
			}
			out[strings.TrimPrefix(name, "cmdstat_")] = n
		}
	}
	return out, nil
}

// scriptInner are the commands the limiter's Lua scripts call. Redis counts
// a command run by redis.call() in commandstats like one a client sent, so
// these are told apart from what the gateway sent by name (the ledger's
// HINCRBY/ZINCRBY/EXPIREAT are sent by the gateway; the revocation poll's
// GET, once a second per replica, is left out with the scripts' GETs).
var scriptInner = map[string]bool{"time": true, "get": true, "set": true, "del": true, "incrby": true, "expire": true,
	// the concurrent-call leases (a sorted set per identity)
	"zremrangebyscore": true, "zcard": true, "zadd": true, "zrem": true}

// cmdDelta is after-before per command (our own INFO calls left out), and
// of those the commands that were round trips from a client, not calls
// from inside a script.
func cmdDelta(before, after map[string]int64) (per map[string]int64, trips int64) {
	per = map[string]int64{}
	for k, v := range after {
		d := v - before[k]
		if d == 0 || k == "info" {
			continue
		}
		per[k] = d
		if !scriptInner[k] {
			trips += d
		}
	}
	return per, trips
}

// breakdown renders per-command counts per request, largest first.
func breakdown(per map[string]int64, n int) string {
	type kv struct {
		k string
		v int64
	}
	var l []kv
	for k, v := range per {
		l = append(l, kv{k, v})
	}
	slices.SortFunc(l, func(a, b kv) int { return cmp.Compare(b.v, a.v) })
	var parts []string
	for _, e := range l {
		parts = append(parts, fmt.Sprintf("%s %.2f", strings.ToUpper(e.k), float64(e.v)/float64(max(1, n))))
	}
	return strings.Join(parts, ", ")
}

// pingRTT is the median of n sequential PING round trips to the Redis at
// addr over one connection: the floor one admission's round trip sits on.
func pingRTT(addr string, n int) (time.Duration, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return 0, fmt.Errorf("connecting to redis: %w", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	rtts := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		if _, err := io.WriteString(c, "PING\r\n"); err != nil {
			return 0, fmt.Errorf("sending PING: %w", err)
		}
		line, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "+PONG") {
			return 0, fmt.Errorf("reading PONG: %q, %v", line, err)
		}
		rtts = append(rtts, time.Since(start))
	}
	slices.Sort(rtts)
	return rtts[len(rtts)/2], nil
}
