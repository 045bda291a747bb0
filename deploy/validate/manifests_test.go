package validate

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
)

// strictDecoder refuses unknown fields and wrong types, like the API server's strict field
// validation, without needing a cluster. Semantic checks (selectors, Pod Security) are the
// real kube-apiserver's job in deploy/scripts/kube-check.sh.
var strictDecoder = serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()

// decodeManifests strict-decodes every document of a multi-document YAML file.
func decodeManifests(path string) ([]runtime.Object, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := utilyaml.NewYAMLReader(bufio.NewReader(f))
	var objs []runtime.Object
	for i := 0; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading document %d of %s: %w", i, path, err)
		}
		if isBlankYAML(doc) {
			continue
		}
		obj, _, err := strictDecoder.Decode(doc, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("decoding document %d of %s: %w", i, path, err)
		}
		objs = append(objs, obj)
	}
}

func isBlankYAML(doc []byte) bool {
	for _, line := range bytes.Split(doc, []byte("\n")) {
		l := bytes.TrimSpace(line)
		if len(l) > 0 && l[0] != '#' && string(l) != "---" {
			return false
		}
	}
	return true
}

func TestPlainManifestsStrictDecode(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(repoRoot, "deploy", "k8s", "manifests", "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "run `make k8s-manifests`")
	kinds := map[string]int{}
	for _, f := range files {
		objs, err := decodeManifests(f)
		require.NoError(t, err)
		for _, o := range objs {
			kinds[fmt.Sprintf("%T", o)]++
			// The manifests are applied with `kubectl -n <ns>`: a hard-coded namespace
			// would send objects elsewhere or make kubectl refuse the mismatch.
			if m, ok := o.(interface{ GetNamespace() string }); ok {
				require.Empty(t, m.GetNamespace(), "%s: no metadata.namespace in plain manifests", f)
			}
			// No Secret data in the manifests: keys come from existing Secrets.
			_, isSecret := o.(*corev1.Secret)
			require.False(t, isSecret, "%s: a Secret in the plain manifests would put a key in git", f)
		}
	}
	for _, want := range []string{"*v1.Deployment", "*v1.StatefulSet", "*v1.Service", "*v1.ConfigMap",
		"*v1.ServiceAccount", "*v1.NetworkPolicy", "*v1.PodDisruptionBudget"} {
		require.Positive(t, kinds[want], "kind %s missing from deploy/k8s/manifests", want)
	}
}

// The gateway Deployment in the plain manifests keeps the properties the chart promises.
func TestPlainManifestsGatewayDeployment(t *testing.T) {
	objs, err := decodeManifests(filepath.Join(repoRoot, "deploy", "k8s", "manifests", "deployment.yaml"))
	require.NoError(t, err)
	require.Len(t, objs, 1)
	d, ok := objs[0].(*appsv1.Deployment)
	require.True(t, ok)
	require.EqualValues(t, 3, *d.Spec.Replicas)
	pod := d.Spec.Template.Spec
	require.False(t, *pod.AutomountServiceAccountToken)
	require.Greater(t, *pod.TerminationGracePeriodSeconds, int64(300+30), "longer than stream cap + drain")
	c := pod.Containers[0]
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	require.Equal(t, "/var/run/secrets/keyward/anthropic/api-key", env["ANTHROPIC_API_KEY_FILE"].Value)
	require.Equal(t, "3", env["KEYWARD_REDIS_LOCAL_SHARE"].Value)
	require.Equal(t, "10.244.0.0/16", env["KEYWARD_TRUSTED_PROXIES"].Value)
	require.NotNil(t, env["GOMEMLIMIT"].ValueFrom)
	require.Equal(t, "limits.memory", env["GOMEMLIMIT"].ValueFrom.ResourceFieldRef.Resource)
	for _, m := range c.VolumeMounts {
		require.Empty(t, m.SubPath, "mount %s: subPath mounts never see Secret rotation", m.Name)
	}
	require.Equal(t, "/health", c.LivenessProbe.HTTPGet.Path)
	require.Equal(t, "/ready", c.ReadinessProbe.HTTPGet.Path)
}

// The strict decoder must be able to fail: a typo'd field and a wrong type are refused.
func TestStrictDecodeRejectsBrokenManifests(t *testing.T) {
	for _, tc := range []struct {
		file    string
		wantErr string
	}{
		{"unknown-field.bad.yaml", `unknown field "spec.replicass"`},
		{"wrong-type.bad.yaml", "replicas"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			_, err := decodeManifests(filepath.Join("testdata", "decode", tc.file))
			require.Error(t, err)
			require.True(t, strings.Contains(err.Error(), tc.wantErr), "got %v", err)
		})
	}
}
