package main

// Plain testing, no testify: this module stays dependency-free so that
// `GOWORK=off go run .` needs no download.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
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

func TestParseStatPPID(t *testing.T) {
	if ppid, ok := parseStatPPID([]byte("4243 (nginx: worker) S 4242 4242 4242 0 -1 4194624 1 0 0 0 3 1 0 0 20 0 1 0")); !ok || ppid != 4242 {
		t.Fatalf("got %d %v, want the master's pid 4242", ppid, ok)
	}
	if _, ok := parseStatPPID([]byte("7 (x)")); ok {
		t.Fatal("a stat line without a ppid must not parse")
	}
}

func TestFindNginxSkipsWithANote(t *testing.T) {
	for _, flagValue := range []string{"", "/nonexistent/nginx", "keyward-no-such-nginx"} {
		bin, note := findNginx(flagValue)
		if bin != "" || !strings.Contains(note, "nginx rows skipped") {
			t.Errorf("findNginx(%q) = %q, %q; want no binary and a note", flagValue, bin, note)
		}
	}
}

// The configuration loadgen writes must be one nginx accepts (nginx -t
// loads the CA file too); skipped where nginx is not installed.
func TestNginxConfIsValid(t *testing.T) {
	bin, note := findNginx("nginx")
	if bin == "" {
		t.Skip(note)
	}
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "loadgen test CA"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(nginxConf(dir, 1, "127.0.0.1:2", ca, "k")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "nginx-tmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-t", "-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log")).CombinedOutput()
	if err != nil {
		t.Fatalf("nginx -t rejects the configuration: %v\n%s", err, out)
	}
}
