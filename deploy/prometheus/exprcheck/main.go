// Command exprcheck proves that the alert rules and the Grafana dashboard
// only ask Prometheus for what the gateway really exports: every PromQL
// expression must parse, and every metric (and label) it names must appear in
// a Prometheus text exposition dump of the gateway's /metrics.
//
// Usage (from this directory; it is its own module, outside go.work, so that
// the Prometheus module's large dependency graph never reaches the gateway's
// go.mod — hence GOWORK=off):
//
//	curl -s http://localhost:9464/metrics > /tmp/metrics.txt
//	GOWORK=off go run . --rules ../../helm/keyward/files/keyward-alerts.yaml \
//	    --dashboard ../../helm/keyward/files/keyward-dashboard.json --metrics /tmp/metrics.txt
//
// --rules, --dashboard and --metrics repeat; several dumps are merged, since
// client_golang only exports a labelled metric once a label set was used.
// Besides metric names, it checks label names in selectors (except the ones
// Prometheus adds at scrape time, --target-labels), that every Grafana
// variable used is defined, that panels and queries use the ${datasource}
// variable, and that panel ids are unique and panels fit the grid.
//
// Exit status: 0 all good, 1 a check failed, 2 bad usage or unreadable input.
//
// `GOWORK=off go test ./...` runs the same checks on the shipped rules and
// dashboard against testdata/contract.prom, a fixture of the metric contract.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("exprcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var rules, dashboards, metrics stringList
	fs.Var(&rules, "rules", "Prometheus rule file (repeatable)")
	fs.Var(&dashboards, "dashboard", "Grafana dashboard JSON (repeatable)")
	fs.Var(&metrics, "metrics", "Prometheus text exposition of the gateway's /metrics (repeatable: dumps are merged)")
	targetLabels := fs.String("target-labels", strings.Join(defaultTargetLabels, ","),
		"labels Prometheus adds at scrape time; matchers on them are not checked against the exposition")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: exprcheck --rules FILE --dashboard FILE --metrics METRICS_TEXT_FILE")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 || len(metrics) == 0 || len(rules)+len(dashboards) == 0 {
		fs.Usage()
		return exitUsage
	}

	exp := Exposition{}
	for _, path := range metrics {
		e, err := LoadExposition(path)
		if err != nil {
			fmt.Fprintf(stderr, "exprcheck: %v\n", err)
			return exitUsage
		}
		exp.Merge(e)
	}
	var (
		exprs    []Expr
		recorded = map[string]bool{}
		problems []string
	)
	for _, path := range rules {
		rs, err := LoadRules(path)
		if err != nil {
			fmt.Fprintf(stderr, "exprcheck: %v\n", err)
			return exitFailed
		}
		exprs = append(exprs, rs.Exprs...)
		for _, name := range rs.Recorded {
			recorded[name] = true
		}
	}
	for _, path := range dashboards {
		d, err := LoadDashboard(path)
		if err != nil {
			fmt.Fprintf(stderr, "exprcheck: %v\n", err)
			return exitFailed
		}
		exprs = append(exprs, d.Exprs...)
		problems = append(problems, d.Problems...)
	}

	c := Checker{Exposition: exp, Recorded: recorded, TargetLabels: splitList(*targetLabels)}
	res := c.Check(exprs)
	problems = append(problems, res.Problems...)

	fmt.Fprintf(stdout, "exprcheck: %d expressions, %d metrics referenced (checked against %s)\n",
		len(exprs), len(res.Uses), metrics.String())
	names := make([]string, 0, len(res.Uses))
	for name := range res.Uses {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(stdout, "  %-50s %d\n", name, len(res.Uses[name]))
	}
	if len(problems)+len(res.Missing) > 0 {
		fmt.Fprintf(stderr, "exprcheck: %d problem(s):\n", len(problems)+len(res.Missing))
		missing := make([]string, 0, len(res.Missing))
		for name := range res.Missing {
			missing = append(missing, name)
		}
		sort.Strings(missing)
		for _, name := range missing {
			m := res.Missing[name]
			fmt.Fprintf(stderr, "  - %s; used by:\n", m.Why)
			for _, src := range m.Sources {
				fmt.Fprintf(stderr, "      %s\n", src)
			}
		}
		for _, p := range problems {
			fmt.Fprintf(stderr, "  - %s\n", p)
		}
		if len(res.Missing) > 0 {
			fmt.Fprintln(stderr, "exprcheck: note: client_golang exports a labelled metric only after its first label set is used;"+
				" dump /metrics after traffic that touches it (or have the gateway pre-initialise known label values).")
		}
		return exitFailed
	}
	fmt.Fprintln(stdout, "exprcheck: ok")
	return exitOK
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
