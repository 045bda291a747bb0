package main

import (
	"fmt"
	"os"
	"sort"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Family is one metric family of an exposition.
type Family struct {
	Name string
	// Type is the lower-case exposition type: counter, gauge, histogram,
	// gaugehistogram, summary or untyped.
	Type string
	// Labels are the label names seen on any series of the family
	// (without le/quantile, which the format encodes separately).
	Labels map[string]bool
	// Series counts the series exposed. client_golang leaves out a labelled
	// family until its first child exists, so a dump from an idle gateway can
	// lack families that a busy one has.
	Series int
}

// LabelNames returns the family's label names, sorted.
func (f *Family) LabelNames() []string {
	out := make([]string, 0, len(f.Labels))
	for l := range f.Labels {
		out = append(out, l)
	}
	sort.Strings(out)
	return out
}

// Exposition maps family names to families.
type Exposition map[string]*Family

// LoadExposition reads a Prometheus text-format exposition (what
// `curl http://gateway:9464/metrics` returns).
func LoadExposition(path string) (Exposition, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading metrics exposition: %w", err)
	}
	defer f.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(f)
	if err != nil {
		return nil, fmt.Errorf("parsing metrics exposition %s: %w", path, err)
	}
	if len(mfs) == 0 {
		return nil, fmt.Errorf("parsing metrics exposition %s: no metrics in it", path)
	}
	exp := Exposition{}
	for name, mf := range mfs {
		fam := &Family{Name: name, Type: typeName(mf.GetType()), Labels: map[string]bool{}, Series: len(mf.GetMetric())}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				fam.Labels[lp.GetName()] = true
			}
		}
		exp[name] = fam
	}
	return exp, nil
}

func typeName(t dto.MetricType) string {
	return strings.ToLower(strings.ReplaceAll(t.String(), "_", ""))
}

// Lookup finds the family a series name belongs to. suffix is "_bucket",
// "_sum" or "_count" when the name is one of a histogram's or summary's
// series. problem is non-empty when no family fits.
func (e Exposition) Lookup(name string) (fam *Family, suffix, problem string) {
	if fam, ok := e[name]; ok {
		switch fam.Type {
		case "histogram", "gaugehistogram":
			return fam, "", fmt.Sprintf("metric %q is a classic histogram: select %[1]s_bucket, %[1]s_sum or %[1]s_count", name)
		}
		return fam, "", ""
	}
	if m := histogramSuffix.FindStringSubmatch(name); m != nil {
		if fam, ok := e[m[1]]; ok {
			switch {
			case fam.Type == "histogram" || fam.Type == "gaugehistogram":
				return fam, m[2], ""
			case fam.Type == "summary" && m[2] != "_bucket":
				return fam, m[2], ""
			}
			return fam, m[2], fmt.Sprintf("metric %q: %q is a %s, it has no %s series", name, fam.Name, fam.Type, m[2])
		}
	}
	return nil, "", fmt.Sprintf("metric %q is not in the exposition%s", name, e.hint(name))
}

// hint names a metric with a similar name, to make typos obvious.
func (e Exposition) hint(name string) string {
	best, bestScore := "", 0
	for cand := range e {
		if s := commonPrefix(cand, name); s > bestScore || (s == bestScore && cand < best) {
			best, bestScore = cand, s
		}
	}
	if bestScore < len(name)/2 {
		return ""
	}
	return fmt.Sprintf(" (closest: %q)", best)
}

func commonPrefix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}
