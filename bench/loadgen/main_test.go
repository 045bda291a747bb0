package main

// Plain testing, no testify: this module stays dependency-free so that
// `GOWORK=off go run .` needs no download.

import (
	"strings"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	for _, tc := range []struct {
		name, stat string
		want       time.Duration
		wantErr    bool
	}{
		{"plain", "4242 (gateway) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 50 0 0 20 0 9 0", 3 * time.Second, false},
		{"name with spaces and parens", "7 (a b) c)) R 1 7 7 0 -1 0 0 0 0 0 1 2 0 0", 30 * time.Millisecond, false},
		{"truncated", "7 (x) R 1 7", 0, true},
		{"no command", "garbage", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tc.stat), 100)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestParseStatusMem(t *testing.T) {
	rss, hwm, err := parseStatusMem(strings.NewReader("Name:\tgateway\nVmHWM:\t   40960 kB\nVmRSS:\t   30720 kB\nThreads:\t9\n"))
	if err != nil || rss != 30720 || hwm != 40960 {
		t.Fatalf("got rss %d hwm %d err %v", rss, hwm, err)
	}
	if _, _, err := parseStatusMem(strings.NewReader("Name:\tzombie\n")); err == nil {
		t.Fatal("a status without VmRSS must be an error, not 0 MB")
	}
}

func TestCommandStatsRoundTrips(t *testing.T) {
	before, err := parseCommandStats("# Commandstats\r\ncmdstat_evalsha:calls=10,usec=100,usec_per_call=10.00,rejected_calls=0,failed_calls=0\r\ncmdstat_info:calls=3,usec=1\r\n")
	if err != nil {
		t.Fatal(err)
	}
	after, err := parseCommandStats("cmdstat_evalsha:calls=110,usec=900\r\ncmdstat_time:calls=100,usec=9\r\ncmdstat_get:calls=100,usec=9\r\ncmdstat_set:calls=100,usec=9\r\ncmdstat_ping:calls=2,usec=1\r\ncmdstat_info:calls=4,usec=1\r\n")
	if err != nil {
		t.Fatal(err)
	}
	per, trips := cmdDelta(before, after)
	// The script's TIME/GET/SET ran inside Redis; INFO was ours.
	if trips != 102 || per["evalsha"] != 100 || per["get"] != 100 {
		t.Fatalf("trips %d, per %v", trips, per)
	}
	if _, ok := per["info"]; ok {
		t.Fatal("our own INFO calls must not count")
	}
	if _, err := parseCommandStats("cmdstat_get:calls=x,usec=1"); err == nil {
		t.Fatal("a non-numeric count must be an error")
	}
}

func TestPercentile(t *testing.T) {
	var lat []time.Duration
	for i := 1; i <= 100; i++ {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	for q, want := range map[float64]time.Duration{.5: 50 * time.Millisecond, .9: 90 * time.Millisecond, .99: 99 * time.Millisecond, 1: 100 * time.Millisecond} {
		if got := percentile(lat, q); got != want {
			t.Errorf("p%.0f = %s, want %s", q*100, got, want)
		}
	}
	if percentile(nil, .5) != 0 {
		t.Error("no samples must give 0")
	}
}
