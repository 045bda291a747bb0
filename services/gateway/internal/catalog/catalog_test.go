package catalog

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCatalogParameterChecks(t *testing.T) {
	cat := Default()
	q := cat["mrr_analysis"]
	_, err := q.Render(map[string]any{"time_period": "last_30_days", "segment": strings.Repeat("x", 65)})
	require.ErrorContains(t, err, "segment")
	p, err := q.Render(map[string]any{"time_period": "last_7_days", "segment": "enterprise", "include_forecast": true})
	require.NoError(t, err)
	require.Contains(t, p, "last_7_days")
	require.Contains(t, p, "enterprise")
	require.Contains(t, p, "forecast")
	var pe *ParamError
	_, err = q.Render(map[string]any{"time_period": 7.0, "extra": 1})
	require.ErrorAs(t, err, &pe)
	require.Equal(t, []string{"extra"}, pe.Fields)
}

func TestBuildReportsBadEntries(t *testing.T) {
	cat, errs := Build(map[string]Entry{"weekly": {}})
	require.NotEmpty(t, errs, "an entry without a prompt is refused")
	require.NotContains(t, cat, "weekly")
}
