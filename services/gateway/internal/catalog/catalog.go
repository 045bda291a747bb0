// Package catalog is the whitelist of analytics query types: each type has a
// typed parameter schema, a typed data schema and a prompt template owned by
// the operator. Callers choose a type and supply values; they never supply
// prompt text.
package catalog

import (
	"bytes"
	"fmt"
	"math"
	"sort"
	"strings"
	"text/template"
	"time"
	"unicode/utf8"
)

// Catalog is the whitelist of analytics query types. Lookup is exact: a
// query type is a map key, never a pattern.
type Catalog map[string]*QueryType

// QueryType is one whitelisted analytics query with its parameter schema.
type QueryType struct {
	Name        string
	Description string
	Parameters  map[string]Param
	// Data is the schema of the data the query analyses, by dataset name
	// (nil: the type takes no data).
	Data map[string]*DataSet
	// CacheTTL > 0 opts the type into the shared answer cache.
	CacheTTL time.Duration
	// Source, when set, is where the gateway fetches the type's data
	// itself (source.go); a caller's data is then never read.
	Source *Source
	prompt *template.Template
}

// Param describes one typed parameter.
type Param struct {
	Type      string   `yaml:"type" json:"type"` // enum, string, boolean, integer, number
	Values    []string `yaml:"values" json:"values,omitempty"`
	Required  bool     `yaml:"required" json:"required,omitempty"`
	MaxLength int      `yaml:"max_length" json:"max_length,omitempty"`
	Min       *float64 `yaml:"min" json:"min,omitempty"`
	Max       *float64 `yaml:"max" json:"max,omitempty"`
	Default   any      `yaml:"default" json:"default,omitempty"`
}

// QueryTypeYAML is one catalog entry in the YAML file.
type QueryTypeYAML struct {
	Description string              `yaml:"description"`
	Prompt      string              `yaml:"prompt"`
	Parameters  map[string]Param    `yaml:"parameters"`
	Data        map[string]*DataSet `yaml:"data"`
	// CacheTTL ("10m") opts the type into the shared answer cache.
	CacheTTL string `yaml:"cache_ttl"`
	// Source names an operator's internal URL that serves the type's data
	// (source.go).
	Source *SourceYAML `yaml:"source"`
}

var periods = []string{"last_7_days", "last_30_days", "last_90_days", "last_12_months", "year_to_date"}

// Default is the seed's four query types, each with the data it analyses.
func Default() Catalog {
	cat, errs := Build(builtIns())
	if len(errs) > 0 {
		panic("built-in catalog is invalid: " + strings.Join(errs, "; "))
	}
	return cat
}

// maxCacheTTL bounds cache_ttl: an answer about data is not kept for days.
const maxCacheTTL = 24 * time.Hour

func builtIns() map[string]QueryTypeYAML {
	period := Param{Type: "enum", Values: periods, Required: true}
	segment := Param{Type: "string", MaxLength: 64}
	return map[string]QueryTypeYAML{
		"mrr_analysis": {
			Description: "MRR trends and insights",
			Prompt: "Analyse monthly recurring revenue (MRR) for the period {{.time_period}}{{if .segment}} in the segment {{.segment}}{{end}}. " +
				"Describe the trend, the main drivers (new, expansion, contraction, churn) and anything unusual.{{if .include_forecast}} End with a short forecast for the next period and its assumptions.{{end}}",
			Parameters: map[string]Param{"time_period": period, "segment": segment, "include_forecast": {Type: "boolean"}},
			Data:       map[string]*DataSet{"mrr_series": MRRSeries()},
		},
		"churn_analysis": {
			Description: "Churn rate patterns",
			Prompt: "Analyse customer churn for the period {{.time_period}}{{if .segment}} in the segment {{.segment}}{{end}}. " +
				"Report logo and revenue churn, the patterns behind them and the {{if .top_n}}{{.top_n}}{{else}}3{{end}} most useful retention actions.",
			Parameters: map[string]Param{"time_period": period, "segment": segment, "top_n": {Type: "integer", Min: ptr(1), Max: ptr(10)}},
			Data:       map[string]*DataSet{"churn_series": ChurnSeries()},
		},
		"conversion_analysis": {
			Description: "Funnel performance",
			Prompt: "Analyse funnel conversion for the period {{.time_period}}{{if .funnel_stage}}, focusing on the {{.funnel_stage}} stage{{end}}. " +
				"Give conversion rates between stages, where prospects drop off and what to test next.",
			Parameters: map[string]Param{"time_period": period, "funnel_stage": {Type: "enum", Values: []string{"visitor_to_trial", "trial_to_paid", "paid_to_expansion"}}},
			Data:       map[string]*DataSet{"funnel": Funnel()},
		},
		"cohort_analysis": {
			Description: "Retention patterns",
			Prompt: "Analyse retention by {{if .cohort_by}}{{.cohort_by}}{{else}}signup_month{{end}} cohort over {{.time_period}}. " +
				"Compare cohorts, name the strongest and weakest, and explain what differs between them.",
			Parameters: map[string]Param{"time_period": period, "cohort_by": {Type: "enum", Values: []string{"signup_month", "plan", "acquisition_channel"}}},
			Data:       map[string]*DataSet{"cohorts": Cohorts()},
		},
	}
}

func ptr(f float64) *float64 { return &f }

// Build checks the YAML entries and compiles them; errs lists every problem,
// each prefixed with where it is ("analytics.<type>…").
func Build(entries map[string]QueryTypeYAML) (Catalog, []string) {
	var errs []string
	cat := Catalog{}
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		e := entries[name]
		where := "analytics." + name
		if b, ok := builtIns()[name]; ok && e.Prompt == "" && e.Parameters == nil && e.Data == nil {
			// A built-in named without a prompt keeps its definition; the
			// operator sets only what they give (cache_ttl, description,
			// source).
			b.CacheTTL, b.Source = e.CacheTTL, e.Source
			if e.Description != "" {
				b.Description = e.Description
			}
			e = b
		}
		var ttl time.Duration
		if e.CacheTTL != "" {
			d, err := time.ParseDuration(e.CacheTTL)
			if err != nil || d < 0 || d > maxCacheTTL {
				errs = append(errs, fmt.Sprintf("%s.cache_ttl %q: want a duration between 0s and %v", where, e.CacheTTL, maxCacheTTL))
			}
			ttl = d
		}
		if !validName(name) {
			errs = append(errs, fmt.Sprintf("%s: query type names are lower-case letters, digits and underscores", where))
			continue
		}
		if strings.TrimSpace(e.Prompt) == "" {
			errs = append(errs, fmt.Sprintf("%s.prompt is required", where))
			continue
		}
		tmpl, err := template.New(name).Option("missingkey=zero").Parse(e.Prompt)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s.prompt: %v", where, err))
			continue
		}
		pnames := make([]string, 0, len(e.Parameters))
		for pn := range e.Parameters {
			pnames = append(pnames, pn)
		}
		sort.Strings(pnames)
		for _, pn := range pnames {
			p := e.Parameters[pn]
			if !validName(pn) {
				errs = append(errs, fmt.Sprintf("%s.parameters.%s: names are lower-case letters, digits and underscores", where, pn))
			}
			switch p.Type {
			case "enum":
				if len(p.Values) == 0 {
					errs = append(errs, fmt.Sprintf("%s.parameters.%s: enum needs values", where, pn))
				}
			case "string", "boolean", "integer", "number":
			default:
				errs = append(errs, fmt.Sprintf("%s.parameters.%s: type %q: want enum, string, boolean, integer or number", where, pn, p.Type))
			}
		}
		dnames := make([]string, 0, len(e.Data))
		for dn := range e.Data {
			dnames = append(dnames, dn)
		}
		sort.Strings(dnames)
		for _, dn := range dnames {
			if !validName(dn) {
				errs = append(errs, fmt.Sprintf("%s.data.%s: names are lower-case letters, digits and underscores", where, dn))
				continue
			}
			if e.Data[dn] == nil {
				errs = append(errs, fmt.Sprintf("%s.data.%s: a dataset needs fields", where, dn))
				continue
			}
			errs = append(errs, e.Data[dn].check(where+".data."+dn)...)
		}
		var src *Source
		if e.Source != nil {
			var serrs []string
			src, serrs = e.Source.build(where + ".source")
			errs = append(errs, serrs...)
			if len(e.Data) == 0 {
				errs = append(errs, where+".source: the type declares no data for the source to serve")
			}
		}
		cat[name] = &QueryType{Name: name, Description: e.Description, Parameters: e.Parameters, Data: e.Data, CacheTTL: ttl, Source: src, prompt: tmpl}
	}
	if len(entries) > 0 && len(cat) == 0 && len(errs) == 0 {
		errs = append(errs, "analytics: no valid query types")
	}
	return cat, errs
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

// ParamError names what is wrong with the parameters or the data of a
// query: Fields are the parameter names or the data paths
// (data.mrr_series[3].value).
type ParamError struct {
	Fields  []string
	Message string
	// Data is set when the problem is in the data rather than the parameters.
	Data bool
}

func (e *ParamError) Error() string { return e.Message }

// Render checks params against the schema and renders the prompt. Unknown
// parameters, missing required ones and values of the wrong type are errors
// that name the parameter. It renders no data block; see RenderWithData.
func (q *QueryType) Render(params map[string]any) (string, error) {
	values, err := q.Values(params)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if err := q.prompt.Execute(&buf, values); err != nil {
		return "", fmt.Errorf("rendering prompt %s: %w", q.Name, err)
	}
	return buf.String(), nil
}

// Values checks params against the schema and returns the checked values:
// enum and string values as strings, booleans, integers as int64, numbers
// as float64, with the declared defaults of absent optional parameters.
func (q *QueryType) Values(params map[string]any) (map[string]any, error) {
	var unknown, bad []string
	var msgs []string
	for k := range params {
		if _, ok := q.Parameters[k]; !ok {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	if len(unknown) > 0 {
		return nil, &ParamError{Fields: unknown, Message: fmt.Sprintf("unknown parameters for %s: %s", q.Name, strings.Join(unknown, ", "))}
	}
	values := map[string]any{}
	names := make([]string, 0, len(q.Parameters))
	for n := range q.Parameters {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := q.Parameters[n]
		v, ok := params[n]
		if !ok || v == nil {
			if p.Required {
				bad = append(bad, n)
				msgs = append(msgs, n+" is required")
			} else if p.Default != nil {
				values[n] = p.Default
			}
			continue
		}
		norm, msg := p.check(v)
		if msg != "" {
			bad = append(bad, n)
			msgs = append(msgs, n+" "+msg)
			continue
		}
		values[n] = norm
	}
	if len(bad) > 0 {
		return nil, &ParamError{Fields: bad, Message: "invalid parameters for " + q.Name + ": " + strings.Join(msgs, "; ")}
	}
	return values, nil
}

// RenderWithData checks params and data and renders the data block the
// gateway writes itself followed by the prompt. data is the decoded JSON value of
// the request's "data" field (nil when absent).
func (q *QueryType) RenderWithData(params map[string]any, data any) (string, error) {
	prompt, err := q.Render(params)
	if err != nil {
		return "", err
	}
	block, err := q.DataBlock(data)
	if err != nil {
		return "", err
	}
	switch {
	case block == "":
		return prompt, nil
	case len(q.dataSupplied(data)) == 0:
		return prompt + "\n\n" + block, nil
	}
	// The data goes first and the request last, as Anthropic advises for
	// long inputs.
	return block + "\n\n" + prompt, nil
}

func (p Param) check(v any) (any, string) {
	switch p.Type {
	case "enum":
		s, ok := v.(string)
		if !ok {
			return nil, "must be one of: " + strings.Join(p.Values, ", ")
		}
		for _, allowed := range p.Values {
			if s == allowed {
				return s, ""
			}
		}
		return nil, "must be one of: " + strings.Join(p.Values, ", ")
	case "string":
		s, ok := v.(string)
		if !ok {
			return nil, "must be a string"
		}
		max := p.MaxLength
		if max <= 0 {
			max = 256
		}
		if !utf8.ValidString(s) || utf8.RuneCountInString(s) > max {
			return nil, fmt.Sprintf("must be valid text of at most %d characters", max)
		}
		for _, r := range s {
			if r < 0x20 || r == 0x7f {
				return nil, "must not contain control characters"
			}
		}
		return s, ""
	case "boolean":
		b, ok := v.(bool)
		if !ok {
			return nil, "must be true or false"
		}
		return b, ""
	case "integer", "number":
		f, ok := v.(float64)
		if !ok || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, "must be a number"
		}
		if p.Type == "integer" && f != math.Trunc(f) {
			return nil, "must be a whole number"
		}
		if p.Min != nil && f < *p.Min || p.Max != nil && f > *p.Max {
			return nil, fmt.Sprintf("must be between %v and %v", deref(p.Min), deref(p.Max))
		}
		if p.Type == "integer" {
			return int64(f), ""
		}
		return f, ""
	}
	return nil, "has an unsupported type"
}

func deref(f *float64) any {
	if f == nil {
		return "any"
	}
	return *f
}

// Names lists the query types in order.
func (c Catalog) Names() []string {
	out := make([]string, 0, len(c))
	for n := range c {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
