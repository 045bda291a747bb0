// Command checkconfig runs the real gateway's `--check-config` against the environment and
// KEYWARD_CONFIG file that a rendered chart gives the gateway container. It proves that
// every env name and value format the chart writes (durations, CIDR lists, rate limits,
// file paths, the config YAML) is one the gateway accepts — the contract between chart and
// binary, which neither helm lint nor the API server can see.
//
//	helm template ... | checkconfig -gateway bin/gateway
//	checkconfig -gateway bin/gateway -compose docker-compose.yml
//
// With -compose it checks the gateway service's environment from the compose file instead
// (once without and once with an ANTHROPIC_API_KEY, the two ways the stack is started).
//
// Secret files the chart mounts are replaced by generated stand-ins of the right shape; the
// gateway runs in an empty temporary directory so no developer .env leaks in.
package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Where the chart mounts things in the pod, and what a stand-in file must contain.
const (
	secretsDir = "/var/run/secrets/keyward/"
	configDir  = "/etc/keyward/"
)

func main() {
	gateway := flag.String("gateway", "", "path to the gateway binary")
	composeFile := flag.String("compose", "", "check the gateway service of this compose file instead of manifests on stdin")
	flag.Parse()
	if *gateway == "" {
		fmt.Fprintln(os.Stderr, "checkconfig: -gateway is required")
		os.Exit(2)
	}
	var out []byte
	var err error
	if *composeFile != "" {
		out, err = runCompose(*composeFile, *gateway)
	} else {
		out, err = run(os.Stdin, *gateway)
	}
	os.Stdout.Write(out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "checkconfig:", err)
		os.Exit(1)
	}
}

// pod is what the gateway container gets from the rendered chart.
type pod struct {
	container corev1.Container
	config    string // config.yaml from the ConfigMap mounted at /etc/keyward
}

func run(in io.Reader, gatewayBin string) ([]byte, error) {
	p, err := parse(in)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "keyward-checkconfig-")
	if err != nil {
		return nil, fmt.Errorf("creating a work directory: %w", err)
	}
	defer os.RemoveAll(dir)
	env, err := environment(p, dir)
	if err != nil {
		return nil, err
	}
	return checkConfig(gatewayBin, dir, env)
}

// checkConfig runs `gateway --check-config` in dir with exactly env.
func checkConfig(gatewayBin, dir string, env []string) ([]byte, error) {
	cmd := exec.Command(gatewayBin, "--check-config")
	cmd.Dir = dir
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("gateway --check-config refused the settings (%w); environment:\n  %s",
			err, strings.Join(redact(env), "\n  "))
	}
	return out, nil
}

// redact hides key values in the report: a real key may be exported when this runs.
func redact(env []string) []string {
	out := make([]string, len(env))
	for i, kv := range env {
		if k, v, _ := strings.Cut(kv, "="); strings.HasSuffix(k, "_KEY") && v != "" {
			kv = k + "=<redacted>"
		}
		out[i] = kv
	}
	return out
}

// runCompose checks the compose gateway service's environment, without a key (the mock
// is used) and with one (the real API).
func runCompose(file, gatewayBin string) ([]byte, error) {
	var all []byte
	for _, key := range []string{"", "sk-ant-checkconfig-" + randomHex(16)} {
		opts, err := cli.NewProjectOptions([]string{file},
			cli.WithWorkingDirectory(filepath.Dir(file)),
			cli.WithEnv([]string{"ANTHROPIC_API_KEY=" + key}),
			cli.WithDiscardEnvFile,
		)
		if err != nil {
			return nil, fmt.Errorf("loading %s: %w", file, err)
		}
		p, err := opts.LoadProject(context.Background())
		if err != nil {
			return nil, fmt.Errorf("loading %s: %w", file, err)
		}
		svc, ok := p.Services["gateway"]
		if !ok {
			return nil, fmt.Errorf("%s has no gateway service", file)
		}
		dir, err := os.MkdirTemp("", "keyward-checkconfig-")
		if err != nil {
			return nil, fmt.Errorf("creating a work directory: %w", err)
		}
		env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
		for k, v := range svc.Environment {
			if v != nil {
				env = append(env, k+"="+*v)
			}
		}
		sort.Strings(env[2:])
		out, err := checkConfig(gatewayBin, dir, env)
		os.RemoveAll(dir)
		all = append(all, out...)
		if err != nil {
			return all, fmt.Errorf("compose gateway with key=%t: %w", key != "", err)
		}
	}
	return all, nil
}

func parse(in io.Reader) (*pod, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(in))
	var deploys []appsv1.Deployment
	configMaps := map[string]corev1.ConfigMap{}
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading manifests: %w", err)
		}
		var meta struct{ Kind string }
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			return nil, fmt.Errorf("parsing a manifest: %w", err)
		}
		switch meta.Kind {
		case "Deployment":
			var d appsv1.Deployment
			if err := yaml.Unmarshal(doc, &d); err != nil {
				return nil, fmt.Errorf("parsing a Deployment: %w", err)
			}
			deploys = append(deploys, d)
		case "ConfigMap":
			var cm corev1.ConfigMap
			if err := yaml.Unmarshal(doc, &cm); err != nil {
				return nil, fmt.Errorf("parsing a ConfigMap: %w", err)
			}
			configMaps[cm.Name] = cm
		}
	}
	for _, d := range deploys {
		spec := d.Spec.Template.Spec
		for _, c := range spec.Containers {
			if c.Name != "gateway" {
				continue
			}
			p := &pod{container: c}
			for _, v := range spec.Volumes {
				if v.Name == "config" && v.ConfigMap != nil {
					cm, ok := configMaps[v.ConfigMap.Name]
					if !ok {
						return nil, fmt.Errorf("the gateway mounts ConfigMap %s, which is not rendered", v.ConfigMap.Name)
					}
					p.config = cm.Data["config.yaml"]
				}
			}
			return p, nil
		}
	}
	return nil, errors.New("no Deployment with a gateway container in the input")
}

// environment turns the container's env into the gateway's process environment, with pod
// paths mapped into dir and stand-ins written for the mounted files.
func environment(p *pod, dir string) ([]string, error) {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	for _, e := range p.container.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.ResourceFieldRef != nil:
			// What the kubelet would put there: the limit in units of the divisor.
			rf := e.ValueFrom.ResourceFieldRef
			q, ok := p.container.Resources.Limits[corev1.ResourceName(strings.TrimPrefix(rf.Resource, "limits."))]
			if !ok {
				return nil, fmt.Errorf("%s refers to %s, which the container does not set", e.Name, rf.Resource)
			}
			div := rf.Divisor.Value()
			if div == 0 {
				div = 1
			}
			env = append(env, fmt.Sprintf("%s=%d", e.Name, q.Value()/div))
		case e.ValueFrom != nil:
			return nil, fmt.Errorf("%s: valueFrom other than resourceFieldRef would put a secret in the environment", e.Name)
		default:
			v := e.Value
			if strings.HasPrefix(v, secretsDir) || strings.HasPrefix(v, configDir) {
				local := filepath.Join(dir, "pod", v)
				if err := standIn(e.Name, local, p.config); err != nil {
					return nil, err
				}
				v = local
			}
			env = append(env, e.Name+"="+v)
		}
	}
	sort.Strings(env[2:])
	return env, nil
}

// standIn writes a file of the shape the gateway expects at a mounted path.
func standIn(name, path, config string) error {
	var content []byte
	switch name {
	case "KEYWARD_CONFIG":
		content = []byte(config)
	case "ANTHROPIC_API_KEY_FILE":
		content = []byte("sk-ant-checkconfig-" + randomHex(16) + "\n")
	case "KEYWARD_REDIS_PASSWORD_FILE", "KEYWARD_ADMIN_TOKEN_FILE":
		content = []byte(randomHex(16) + "\n")
	case "KEYWARD_JWT_SECRET_FILE":
		content = []byte(randomHex(32) + "\n")
	case "KEYWARD_HMAC_KEYS_FILE":
		content = []byte("ci:" + randomHex(32) + "\n")
	case "KEYWARD_JWT_PUBLIC_KEY_FILE":
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return fmt.Errorf("generating a key for %s: %w", name, err)
		}
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			return fmt.Errorf("encoding a key for %s: %w", name, err)
		}
		content = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	default:
		return fmt.Errorf("%s points into a mount (%s) that checkconfig has no stand-in for", name, path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", filepath.Dir(path), err)
	}
	if err := os.WriteFile(path, content, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
