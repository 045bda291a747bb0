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

// Merge adds other's families to e: label names are united and series
// counted together, so several dumps (say, of different scenarios) act as one.
func (e Exposition) Merge(other Exposition) {
	for name, f := range other {
		mine, ok := e[name]
		if !ok {
			e[name] = f
			continue
		}
		for l := range f.Labels {
			mine.Labels[l] = true
		}
		mine.Series += f.Series
	}
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

// hint names a metric whose name is a few edits away, to make typos obvious.
func (e Exposition) hint(name string) string {
	best, bestDist := "", 4 // more than 3 edits is a different name, not a typo
	for cand := range e {
		if d := editDistance(cand, name); d < bestDist || (d == bestDist && cand < best) {
			best, bestDist = cand, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (closest: %q)", best)
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
