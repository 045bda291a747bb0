package main

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// Expr is one PromQL expression and where it came from.
type Expr struct {
	// Source names the place for humans, e.g. `rule "KeywardHighErrorRate"`
	// or `dashboard panel "Requests/s" (id 2) target A`.
	Source string
	// Query is the PromQL text as Prometheus will see it (Grafana variables
	// already substituted).
	Query string
}

// defaultTargetLabels are attached by Prometheus (and the Prometheus Operator)
// when scraping, so they never appear in the gateway's own output.
var defaultTargetLabels = []string{"job", "instance", "namespace", "pod", "service", "container", "endpoint"}

// syntheticMetrics are produced by Prometheus itself, not by the target.
var syntheticMetrics = map[string]bool{
	"up": true, "scrape_duration_seconds": true, "scrape_samples_scraped": true,
	"scrape_samples_post_metric_relabeling": true, "scrape_series_added": true,
	"ALERTS": true, "ALERTS_FOR_STATE": true,
}

// Checker checks expressions against one exposition.
type Checker struct {
	Exposition Exposition
	// Recorded holds the names written by recording rules: they exist once
	// the rules run, although the gateway never exports them.
	Recorded     map[string]bool
	TargetLabels []string
}

// Result of a check.
type Result struct {
	// Uses maps every metric name referenced to the sources using it.
	Uses     map[string][]string
	Problems []string
}

// Check parses every expression and resolves every selector in it.
func (c Checker) Check(exprs []Expr) Result {
	res := Result{Uses: map[string][]string{}}
	p := parser.NewParser(parser.Options{})
	targetLabel := map[string]bool{}
	for _, l := range c.TargetLabels {
		targetLabel[l] = true
	}
	for _, e := range exprs {
		ast, err := p.ParseExpr(e.Query)
		if err != nil {
			res.Problems = append(res.Problems, fmt.Sprintf("%s: parsing %q: %v", e.Source, e.Query, err))
			continue
		}
		seen := map[string]bool{}
		parser.Inspect(ast, func(node parser.Node, _ []parser.Node) error {
			vs, ok := node.(*parser.VectorSelector)
			if !ok {
				return nil
			}
			names, problems := c.resolve(vs, targetLabel)
			for _, pr := range problems {
				res.Problems = append(res.Problems, e.Source+": "+pr)
			}
			for _, n := range names {
				if !seen[n] {
					seen[n] = true
					res.Uses[n] = append(res.Uses[n], e.Source)
				}
			}
			return nil
		})
	}
	sort.Strings(res.Problems)
	res.Problems = dedupe(res.Problems)
	return res
}

// resolve returns the metric names a selector refers to and what is wrong
// with it. Names are reported the way the exposition lists them: a
// histogram's `_bucket` series count as a use of the histogram.
func (c Checker) resolve(vs *parser.VectorSelector, targetLabel map[string]bool) ([]string, []string) {
	var (
		nameMatcher *labels.Matcher
		others      []*labels.Matcher
	)
	for _, m := range vs.LabelMatchers {
		if m.Name == labels.MetricName {
			nameMatcher = m
		} else {
			others = append(others, m)
		}
	}
	if nameMatcher == nil {
		// {job="x"} selects every metric of a target: nothing to resolve.
		return nil, nil
	}
	if nameMatcher.Type != labels.MatchEqual {
		return c.resolveRegex(nameMatcher)
	}
	name := nameMatcher.Value
	if c.Recorded[name] || syntheticMetrics[name] {
		return []string{name}, nil
	}
	fam, suffix, problem := c.Exposition.Lookup(name)
	if problem != "" {
		return []string{name}, []string{problem}
	}
	var problems []string
	if fam.Series > 0 { // a family without series has no labels to compare with
		for _, m := range others {
			if targetLabel[m.Name] || fam.Labels[m.Name] || (suffix == "_bucket" && m.Name == "le") ||
				(fam.Type == "summary" && suffix == "" && m.Name == "quantile") {
				continue
			}
			problems = append(problems, fmt.Sprintf("metric %q has no label %q (it has: %s)",
				fam.Name, m.Name, strings.Join(fam.LabelNames(), ", ")))
		}
	}
	return []string{fam.Name}, problems
}

func (c Checker) resolveRegex(m *labels.Matcher) ([]string, []string) {
	var names []string
	for name := range c.Exposition {
		if m.Matches(name) {
			names = append(names, name)
		}
	}
	for name := range c.Recorded {
		if m.Matches(name) {
			names = append(names, name)
		}
	}
	if len(names) == 0 && m.Type != labels.MatchNotEqual && m.Type != labels.MatchNotRegexp {
		return nil, []string{fmt.Sprintf("metric name matcher %s matches no metric in the exposition", m)}
	}
	sort.Strings(names)
	return names, nil
}

func dedupe(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// histogramSuffix splits a series name into family name and the suffix a
// classic histogram or summary adds.
var histogramSuffix = regexp.MustCompile(`^(.+)(_bucket|_sum|_count)$`)
