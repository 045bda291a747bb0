package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	osexec "os/exec"
	"regexp"
	"strings"
)

type panelQuery struct{ panel, expr string }

type variable struct{ name, metric, label, expr string }

type dashPanel struct {
	Title   string      `json:"title"`
	Panels  []dashPanel `json:"panels"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

// dashboardQueries returns every panel query (rows' nested panels included) and every
// label_values() variable of the dashboard.
func dashboardQueries(path string) ([]panelQuery, []variable, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	var d struct {
		Panels     []dashPanel `json:"panels"`
		Templating struct {
			List []struct {
				Name  string          `json:"name"`
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, nil, err
	}
	var qs []panelQuery
	var walk func([]dashPanel)
	walk = func(ps []dashPanel) {
		for _, p := range ps {
			for _, t := range p.Targets {
				if t.Expr != "" {
					qs = append(qs, panelQuery{panel: p.Title, expr: t.Expr})
				}
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	var vars []variable
	lv := regexp.MustCompile(`^label_values\((.+),\s*(\w+)\)$`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			var s string
			if json.Unmarshal(v.Query, &s) != nil {
				return nil, nil, fmt.Errorf("variable %s: unreadable query", v.Name)
			}
			q.Query = s
		}
		m := lv.FindStringSubmatch(strings.TrimSpace(q.Query))
		if m == nil {
			return nil, nil, fmt.Errorf("variable %s: %q is not label_values(metric, label)", v.Name, q.Query)
		}
		vars = append(vars, variable{name: v.Name, metric: expandGrafana(m[1], "1h"), label: m[2], expr: q.Query})
	}
	return qs, vars, nil
}

// expandGrafana replaces what Grafana fills in: every variable selects everything, the rate
// interval is a minute (4 scrapes of the live stage and more), $__range is the run so far.
func expandGrafana(expr, rng string) string {
	r := strings.NewReplacer(
		`"$job"`, `".+"`, `"$instance"`, `".+"`,
		`${job}`, `.+`, `${instance}`, `.+`,
		`$__rate_interval`, `1m`, `$__range`, rng,
	)
	return r.Replace(expr)
}

func runCmd(ctx context.Context, bin string, args ...string) (string, error) {
	out, err := osexec.CommandContext(ctx, bin, args...).CombinedOutput()
	return string(out), err
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}
