package main

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// Dashboard is what exprcheck reads from a Grafana dashboard JSON.
type Dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []Panel `json:"panels"`
	Templating struct {
		List []Variable `json:"list"`
	} `json:"templating"`

	// Filled by LoadDashboard.

	// AllPanels is every panel, including those nested in collapsed rows.
	AllPanels []Panel `json:"-"`
	// Exprs holds the targets' and the query variables' PromQL, variables substituted.
	Exprs []Expr `json:"-"`
	// Problems found in the dashboard itself (ids, datasources, variables).
	Problems []string `json:"-"`
}

// Panel is a Grafana panel (rows are panels too).
type Panel struct {
	ID          int             `json:"id"`
	Type        string          `json:"type"`
	Title       string          `json:"title"`
	Datasource  json.RawMessage `json:"datasource"`
	Targets     []Target        `json:"targets"`
	Panels      []Panel         `json:"panels"` // a collapsed row keeps its panels here
	GridPos     GridPos         `json:"gridPos"`
	FieldConfig struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
}

// GridPos places a panel on Grafana's 24-column grid.
type GridPos struct {
	H int `json:"h"`
	W int `json:"w"`
	X int `json:"x"`
	Y int `json:"y"`
}

// Target is one query of a panel.
type Target struct {
	RefID      string          `json:"refId"`
	Expr       string          `json:"expr"`
	Datasource json.RawMessage `json:"datasource"`
}

// Variable is a templating variable.
type Variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Datasource json.RawMessage `json:"datasource"`
	AllValue   string          `json:"allValue"`
	Current    struct {
		Value json.RawMessage `json:"value"`
	} `json:"current"`
	Options []struct {
		Value string `json:"value"`
	} `json:"options"`
}

// datasourceVar is the variable every query must go through, so that the
// dashboard works provisioned (compose) and through the Grafana sidecar (Helm)
// whatever the Prometheus datasource is called there.
const datasourceVar = "${datasource}"

// builtinVars stand in for Grafana's global variables with values of the
// right kind (durations where PromQL wants a duration, numbers for _ms/_s).
var builtinVars = map[string]string{
	"__rate_interval": "5m", "__interval": "1m", "__range": "1d", "__auto": "1m",
	"__rate_interval_ms": "300000", "__interval_ms": "60000",
	"__range_s": "86400", "__range_ms": "86400000",
	"__from": "0", "__to": "86400000",
}

// varRef matches ${name}, ${name:format}, [[name]], [[name:format]] and $name.
var varRef = regexp.MustCompile(`\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]|\$(\w+)`)

// LoadDashboard reads a dashboard, collects its PromQL and checks its
// structure.
func LoadDashboard(path string) (*Dashboard, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading dashboard: %w", err)
	}
	d, err := ParseDashboard(data)
	if err != nil {
		return nil, fmt.Errorf("parsing dashboard %s: %w", path, err)
	}
	for i := range d.Exprs {
		d.Exprs[i].Source = path + ": " + d.Exprs[i].Source
	}
	for i := range d.Problems {
		d.Problems[i] = path + ": " + d.Problems[i]
	}
	return d, nil
}

// ParseDashboard is LoadDashboard on bytes.
func ParseDashboard(data []byte) (*Dashboard, error) {
	var d Dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, err
	}
	if len(d.Panels) == 0 {
		return nil, fmt.Errorf("no panels")
	}
	var flatten func([]Panel)
	flatten = func(ps []Panel) {
		for _, p := range ps {
			d.AllPanels = append(d.AllPanels, p)
			flatten(p.Panels)
		}
	}
	flatten(d.Panels)

	vars := d.variableValues()
	sub := func(q string) string { return d.substitute(q, vars) }

	hasDatasourceVar := false
	for _, v := range d.Templating.List {
		if v.Type == "datasource" && "${"+v.Name+"}" == datasourceVar {
			hasDatasourceVar = true
			if q := rawString(v.Query); q != "prometheus" {
				d.Problems = append(d.Problems, fmt.Sprintf("variable %q must select prometheus datasources, not %q", v.Name, q))
			}
		}
		if v.Type != "query" {
			continue
		}
		src := fmt.Sprintf("variable %q", v.Name)
		if len(v.Datasource) > 0 && !isTemplatedDatasource(v.Datasource) {
			d.Problems = append(d.Problems, fmt.Sprintf("%s: datasource must be %s, got %s", src, datasourceVar, v.Datasource))
		}
		if q, ok := variableQueryPromQL(v.Query); ok {
			d.Exprs = append(d.Exprs, Expr{Source: src, Query: sub(q)})
		}
	}
	if !hasDatasourceVar {
		d.Problems = append(d.Problems, fmt.Sprintf("no datasource variable: add one named \"datasource\" of type datasource (query prometheus) and use %s everywhere", datasourceVar))
	}

	byID := map[int]string{}
	for _, p := range d.AllPanels {
		name := fmt.Sprintf("panel %q (id %d)", p.Title, p.ID)
		if p.ID <= 0 {
			d.Problems = append(d.Problems, fmt.Sprintf("panel %q has no id", p.Title))
		} else if other, dup := byID[p.ID]; dup {
			d.Problems = append(d.Problems, fmt.Sprintf("panel id %d is used twice: %q and %q", p.ID, other, p.Title))
		} else {
			byID[p.ID] = p.Title
		}
		if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X < 0 || p.GridPos.X+p.GridPos.W > 24 {
			d.Problems = append(d.Problems, fmt.Sprintf("%s: gridPos %+v does not fit the 24-column grid", name, p.GridPos))
		}
		if len(p.Targets) == 0 {
			continue
		}
		if !isTemplatedDatasource(p.Datasource) {
			d.Problems = append(d.Problems, fmt.Sprintf("%s: datasource must be %s, got %s", name, datasourceVar, nullIfEmpty(p.Datasource)))
		}
		refs := map[string]bool{}
		for _, t := range p.Targets {
			tname := fmt.Sprintf("%s target %s", name, t.RefID)
			if t.RefID == "" || refs[t.RefID] {
				d.Problems = append(d.Problems, fmt.Sprintf("%s: refId must be set and unique within the panel", tname))
			}
			refs[t.RefID] = true
			if len(t.Datasource) > 0 && !isTemplatedDatasource(t.Datasource) {
				d.Problems = append(d.Problems, fmt.Sprintf("%s: datasource must be %s, got %s", tname, datasourceVar, t.Datasource))
			}
			if strings.TrimSpace(t.Expr) == "" {
				d.Problems = append(d.Problems, fmt.Sprintf("%s: empty expr", tname))
				continue
			}
			d.Exprs = append(d.Exprs, Expr{Source: tname, Query: sub(t.Expr)})
		}
	}
	return &d, nil
}

// variableValues gives each dashboard variable a stand-in value that keeps
// the PromQL it appears in parseable: its own value for interval and
// constant-like variables, a match-all regex for the rest (they are used in
// =~ matchers).
func (d *Dashboard) variableValues() map[string]string {
	vals := map[string]string{}
	for _, v := range d.Templating.List {
		val := ".*"
		switch v.Type {
		case "interval":
			val = "5m"
			if cur := firstValue(v.Current.Value); cur != "" && !strings.HasPrefix(cur, "$__") {
				val = cur
			} else if len(v.Options) > 0 {
				val = v.Options[0].Value
			}
		case "constant", "custom", "textbox":
			if cur := firstValue(v.Current.Value); cur == "$__all" {
				if v.AllValue != "" {
					val = v.AllValue
				}
			} else if cur != "" {
				val = cur
			}
		}
		vals[v.Name] = val
	}
	return vals
}

func (d *Dashboard) substitute(q string, vars map[string]string) string {
	return varRef.ReplaceAllStringFunc(q, func(ref string) string {
		m := varRef.FindStringSubmatch(ref)
		name := m[1] + m[2] + m[3]
		if v, ok := builtinVars[name]; ok {
			return v
		}
		if v, ok := vars[name]; ok {
			return v
		}
		d.Problems = append(d.Problems, fmt.Sprintf("undefined variable %s in %q", ref, q))
		return ".*"
	})
}

// variableQueryPromQL extracts the PromQL part of a Prometheus query
// variable: the selector of label_values(selector, label) or the expression of
// query_result(expr). label_values(label) and metrics(re) have none.
func variableQueryPromQL(raw json.RawMessage) (string, bool) {
	q := rawString(raw)
	if q == "" {
		var obj struct {
			Query string `json:"query"`
		}
		if json.Unmarshal(raw, &obj) == nil {
			q = obj.Query
		}
	}
	q = strings.TrimSpace(q)
	if m := labelValuesRe.FindStringSubmatch(q); m != nil {
		return m[1], true
	}
	if m := queryResultRe.FindStringSubmatch(q); m != nil {
		return m[1], true
	}
	return "", false
}

var (
	labelValuesRe = regexp.MustCompile(`^label_values\(\s*(.+)\s*,\s*\w+\s*\)$`)
	queryResultRe = regexp.MustCompile(`^query_result\(\s*(.+)\s*\)$`)
)

func isTemplatedDatasource(raw json.RawMessage) bool {
	if s := rawString(raw); s != "" {
		return s == datasourceVar
	}
	var ds struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	}
	if err := json.Unmarshal(raw, &ds); err != nil {
		return false
	}
	return ds.UID == datasourceVar && (ds.Type == "" || ds.Type == "prometheus")
}

func rawString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

func firstValue(raw json.RawMessage) string {
	if s := rawString(raw); s != "" {
		return s
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil && len(list) > 0 {
		return list[0]
	}
	return ""
}

func nullIfEmpty(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "nothing"
	}
	return string(raw)
}
