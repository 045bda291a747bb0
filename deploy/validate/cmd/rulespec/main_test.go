package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRun(t *testing.T) {
	for _, tc := range []struct {
		name, in, want, wantErr string
	}{
		{
			name: "picks the PrometheusRule spec among other objects",
			in: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\n" +
				"apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata: {name: r}\n" +
				"spec:\n  groups:\n    - name: g\n      rules:\n        - alert: A\n          expr: up == 0\n",
			want: "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n",
		},
		{name: "no rule", in: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", wantErr: "no PrometheusRule"},
		{name: "empty spec", in: "kind: PrometheusRule\nspec: {}\n", wantErr: "empty spec"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(strings.NewReader(tc.in), &out)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, out.String())
		})
	}
}

func TestSameYAML(t *testing.T) {
	for _, tc := range []struct {
		name, got, want, wantErr string
	}{
		{name: "same value, different layout", got: "groups:\n- name: g\n  rules: [{alert: A, expr: 'up == 0'}]\n",
			want: "groups:\n  - name: g\n    rules:\n      - expr: up == 0\n        alert: A\n"},
		{name: "a template mangled by Helm", got: "a: 'x  y'\n", want: "a: 'x {{ $value }} y'\n", wantErr: "differs"},
		{name: "a dropped rule", got: "groups: []\n", want: "groups: [{name: g}]\n", wantErr: "differs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := sameYAML([]byte(tc.got), []byte(tc.want))
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
		})
	}
}
