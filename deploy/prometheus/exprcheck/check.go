package main

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/prometheus/common/model"
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

// Missing is a metric name that no family of the exposition provides.
type Missing struct {
	Why     string
	Sources []string
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
	Uses map[string][]string
	// Missing holds the metric names no family of the exposition provides.
	Missing map[string]*Missing
	// Problems are all other findings, each naming its source.
	Problems []string
}

// Check parses every expression and resolves every selector in it.
func (c Checker) Check(exprs []Expr) Result {
	res := Result{Uses: map[string][]string{}, Missing: map[string]*Missing{}}
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
			names, missing, problems := c.resolve(vs, targetLabel)
			if missing != "" {
				m := res.Missing[names[0]]
				if m == nil {
					m = &Missing{Why: missing}
					res.Missing[names[0]] = m
				}
				if !seen[names[0]] {
					m.Sources = append(m.Sources, e.Source)
				}
			}
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

// resolve returns the metric names a selector refers to, why the name is
// missing from the exposition (if it is), and what else is wrong with it.
// Names are reported the way the exposition lists them: a histogram's
// `_bucket` series count as a use of the histogram.
func (c Checker) resolve(vs *parser.VectorSelector, targetLabel map[string]bool) (names []string, missing string, problems []string) {
	var (
		nameMatcher *labels.Matcher
		others      []*labels.Matcher
	)
	for _, m := range vs.LabelMatchers {
		if m.Name == model.MetricNameLabel {
			nameMatcher = m
		} else {
			others = append(others, m)
		}
	}
	if nameMatcher == nil {
		// {job="x"} selects every metric of a target: nothing to resolve.
		return nil, "", nil
	}
	if nameMatcher.Type != labels.MatchEqual {
		names, problems = c.resolveRegex(nameMatcher)
		return names, "", problems
	}
	name := nameMatcher.Value
	if c.Recorded[name] || syntheticMetrics[name] {
		return []string{name}, "", nil
	}
	fam, suffix, problem := c.Exposition.Lookup(name)
	if fam == nil {
		return []string{name}, problem, nil
	}
	if problem != "" {
		return []string{fam.Name}, "", []string{problem}
	}
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
	return []string{fam.Name}, "", problems
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
