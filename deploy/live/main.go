package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(run())
}

type options struct {
	bin, prometheus, redisServer, rules, dashboard, workDir string
	shortFor                                                time.Duration
	timeout                                                 time.Duration
	keep                                                    bool
}

func run() int {
	var o options
	flag.StringVar(&o.bin, "bin", "../../bin", "directory with the gateway and mockanthropic binaries (make build)")
	flag.StringVar(&o.prometheus, "prometheus", "", "prometheus binary of the pinned version (deploy/scripts/build-prometheus.sh)")
	flag.StringVar(&o.redisServer, "redis-server", "redis-server", "redis-server binary")
	flag.StringVar(&o.rules, "rules", "../helm/keyward/files/keyward-alerts.yaml", "the shipped alert rules")
	flag.StringVar(&o.dashboard, "dashboard", "../helm/keyward/files/keyward-dashboard.json", "the shipped Grafana dashboard")
	flag.StringVar(&o.workDir, "dir", "", "directory for configs, logs and the TSDB (default: a new temporary one)")
	flag.DurationVar(&o.shortFor, "for", 5*time.Second, "the `for:` every alert gets in the generated rules copy")
	flag.DurationVar(&o.timeout, "timeout", 14*time.Minute, "bound on the whole run")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (logs) after a passing run")
	flag.Parse()
	if o.prometheus == "" {
		fmt.Fprintln(os.Stderr, "live: -prometheus is required")
		return 2
	}

	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	ctx, stopSignals := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stopSignals()

	if o.workDir == "" {
		d, err := os.MkdirTemp("", "keyward-live-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "live:", err)
			return 2
		}
		o.workDir = d
	}
	ps := &procs{dir: o.workDir}
	defer ps.stopAll()

	t0 := time.Now()
	r := &runner{o: o, ps: ps}
	err := r.run(ctx)
	ps.stopAll()
	fmt.Printf("\nlive: stage took %s\n", time.Since(t0).Round(time.Second))
	if err == nil && len(r.failures) == 0 {
		fmt.Println("live: PASS")
		if !o.keep {
			_ = os.RemoveAll(o.workDir)
		}
		return 0
	}
	if err != nil {
		r.failures = append(r.failures, err.Error())
	}
	fmt.Printf("live: FAIL (%d problem(s); logs in %s)\n", len(r.failures), o.workDir)
	for _, f := range r.failures {
		fmt.Println("  -", f)
	}
	return 1
}

var forLine = regexp.MustCompile(`(?m)^(\s+for:\s*)\S+\s*$`)

// shortenFor returns the rules with every alert's `for:` set to d, and how many it changed.
// Nothing else changes: the expressions, their ranges and thresholds stay as shipped.
func shortenFor(rules []byte, d time.Duration) ([]byte, int) {
	n := len(forLine.FindAll(rules, -1))
	return forLine.ReplaceAll(rules, []byte("${1}"+d.String())), n
}

// writePrometheusConfig writes prometheus.yml: job "keyward" (two replicas) and job
// "keyward-canary" (one), both in namespace "live", scraped every second.
func writePrometheusConfig(dir, rulesFile string, gws []*gateway) (string, error) {
	jobs := map[string][]string{}
	var order []string
	for _, g := range gws {
		if _, ok := jobs[g.job]; !ok {
			order = append(order, g.job)
		}
		jobs[g.job] = append(jobs[g.job], strings.TrimPrefix(strings.TrimSuffix(g.metricsURL, "/metrics"), "http://"))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n")
	fmt.Fprintf(&b, "rule_files:\n  - %s\n", rulesFile)
	fmt.Fprintf(&b, "scrape_configs:\n")
	for _, j := range order {
		fmt.Fprintf(&b, "  - job_name: %s\n    static_configs:\n      - targets: [%s]\n        labels:\n          namespace: live\n",
			j, `"`+strings.Join(jobs[j], `", "`)+`"`)
	}
	path := filepath.Join(dir, "prometheus.yml")
	return path, os.WriteFile(path, []byte(b.String()), 0o644)
}
