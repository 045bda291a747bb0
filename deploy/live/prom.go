package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// promAPI is the small part of Prometheus' HTTP API this program reads.
type promAPI struct{ base string }

type promAlert struct {
	Labels   map[string]string `json:"labels"`
	State    string            `json:"state"`
	ActiveAt time.Time         `json:"activeAt"`
	Value    string            `json:"value"`
}

// key names an alert instance by what routing uses: alertname, job, namespace, and route
// where the rule groups by it.
func (a promAlert) key() string {
	k := a.Labels["alertname"] + "{job=" + a.Labels["job"]
	if ns := a.Labels["namespace"]; ns != "" {
		k += ",namespace=" + ns
	}
	if r := a.Labels["route"]; r != "" {
		k += ",route=" + r
	}
	return k + "}"
}

func (p promAPI) get(ctx context.Context, path string, q url.Values, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	u := p.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return fmt.Errorf("%s: %d %s", path, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	if env.Status != "success" {
		return fmt.Errorf("%s: %s", path, env.Error)
	}
	return json.Unmarshal(env.Data, out)
}

func (p promAPI) alerts(ctx context.Context) ([]promAlert, error) {
	var d struct {
		Alerts []promAlert `json:"alerts"`
	}
	err := p.get(ctx, "/api/v1/alerts", nil, &d)
	return d.Alerts, err
}

type sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (s sample) float() float64 {
	str, _ := s.Value[1].(string)
	f, err := strconv.ParseFloat(str, 64)
	if err != nil {
		return 0
	}
	return f
}

// query runs an instant query at t (now when zero) and returns the vector (a scalar
// becomes one sample without labels).
func (p promAPI) query(ctx context.Context, expr string, t time.Time) ([]sample, error) {
	q := url.Values{"query": {expr}}
	if !t.IsZero() {
		q.Set("time", strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64))
	}
	var d struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := p.get(ctx, "/api/v1/query", q, &d); err != nil {
		return nil, err
	}
	switch d.ResultType {
	case "vector":
		var v []sample
		err := json.Unmarshal(d.Result, &v)
		return v, err
	case "scalar":
		var s [2]any
		if err := json.Unmarshal(d.Result, &s); err != nil {
			return nil, err
		}
		return []sample{{Value: s}}, nil
	default:
		return nil, fmt.Errorf("query %q: result type %s", expr, d.ResultType)
	}
}

func (p promAPI) scalar(ctx context.Context, expr string, t time.Time) (float64, bool, error) {
	v, err := p.query(ctx, expr, t)
	if err != nil || len(v) == 0 {
		return 0, false, err
	}
	return v[0].float(), true, nil
}

type ruleHealth struct {
	Name      string `json:"name"`
	Health    string `json:"health"`
	LastError string `json:"lastError"`
	Type      string `json:"type"`
}

func (p promAPI) rules(ctx context.Context) ([]ruleHealth, error) {
	var d struct {
		Groups []struct {
			Rules []ruleHealth `json:"rules"`
		} `json:"groups"`
	}
	if err := p.get(ctx, "/api/v1/rules", nil, &d); err != nil {
		return nil, err
	}
	var out []ruleHealth
	for _, g := range d.Groups {
		out = append(out, g.Rules...)
	}
	return out, nil
}

// metricSum reads a Prometheus-format /metrics page and sums a metric's samples.
func metricSum(ctx context.Context, metricsURL, name string) (float64, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, false, err
	}
	var sum float64
	found := false
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, name) || len(line) <= len(name) || (line[len(name)] != '{' && line[len(name)] != ' ') {
			continue
		}
		f, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err == nil {
			sum += f
			found = true
		}
	}
	return sum, found, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
