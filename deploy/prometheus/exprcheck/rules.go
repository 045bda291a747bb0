package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// RuleSet is a parsed Prometheus rule file.
type RuleSet struct {
	Groups []rulefmt.RuleGroup
	// Exprs holds one entry per rule.
	Exprs []Expr
	// Recorded lists the series names the file's recording rules create.
	Recorded []string
}

// LoadRules reads a rule file the way Prometheus does (strict YAML, every
// expression and template validated) and collects its expressions.
func LoadRules(path string) (*RuleSet, error) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	groups, errs := rulefmt.ParseFile(path, false, model.UTF8Validation, parser.NewParser(parser.Options{}), logger)
	if len(errs) > 0 {
		return nil, fmt.Errorf("loading rule file: %w", errors.Join(errs...))
	}
	rs := &RuleSet{Groups: groups.Groups}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			src := fmt.Sprintf("%s: group %q alert %q", path, g.Name, r.Alert)
			if r.Record != "" {
				src = fmt.Sprintf("%s: group %q record %q", path, g.Name, r.Record)
				rs.Recorded = append(rs.Recorded, r.Record)
			}
			rs.Exprs = append(rs.Exprs, Expr{Source: src, Query: r.Expr})
		}
	}
	if len(rs.Exprs) == 0 {
		return nil, fmt.Errorf("loading rule file %s: no rules in it", path)
	}
	return rs, nil
}
