package validate

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// repoRoot is the repository root, two levels above this module.
var repoRoot = func() string {
	abs, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		panic(err)
	}
	return abs
}()

// loadCompose loads a compose file the way `docker compose` does, with compose-go's
// cross-reference (consistency) checks on. env replaces the process environment, so the
// test does not depend on what the developer happens to have exported.
func loadCompose(t *testing.T, file string, env map[string]string) (*types.Project, error) {
	t.Helper()
	var envList []string
	for k, v := range env {
		envList = append(envList, k+"="+v)
	}
	opts, err := cli.NewProjectOptions([]string{file},
		cli.WithWorkingDirectory(filepath.Dir(file)),
		cli.WithEnv(envList),
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
		cli.WithDiscardEnvFile,
	)
	require.NoError(t, err)
	return opts.LoadProject(context.Background())
}

// The services the stack must have, and which of them may publish ports to the host.
var (
	composeServices  = []string{"redis", "mockanthropic", "gateway", "nginx", "dashboard", "prometheus", "grafana"}
	publishingAllow  = []string{"nginx", "dashboard", "prometheus", "grafana"}
	composeFile      = filepath.Join(repoRoot, "docker-compose.yml")
	composeNetwork   = "keyward"
	gatewayReplicas  = 3
	gatewayAdminPort = "9464"
)

// checkStack applies the stack's own rules on top of what compose-go checks: the things a
// user of `docker compose up` would notice if they broke (a port open to the LAN, a
// spoofable client IP, a replica Prometheus never scrapes, a service starting before what it
// needs). It returns every problem, not just the first.
func checkStack(p *types.Project) []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	for _, name := range composeServices {
		if _, ok := p.Services[name]; !ok {
			bad("service %s: missing", name)
		}
	}
	for name, s := range p.Services {
		if s.HealthCheck == nil || len(s.HealthCheck.Test) == 0 || s.HealthCheck.Disable {
			bad("service %s: no healthcheck, so depends_on cannot wait for it", name)
		} else if s.HealthCheck.Test[0] != "CMD" {
			// The keyward images are distroless: there is no shell for CMD-SHELL.
			bad("service %s: healthcheck %q must use the exec form [\"CMD\", ...]", name, s.HealthCheck.Test)
		}
		for _, port := range s.Ports {
			if !slices.Contains(publishingAllow, name) {
				bad("service %s: publishes port %d to the host; only %v may", name, port.Target, publishingAllow)
				continue
			}
			if port.HostIP != "127.0.0.1" {
				bad("service %s: port %d published on %q, want 127.0.0.1 only", name, port.Target, port.HostIP)
			}
		}
		if _, ok := s.Networks[composeNetwork]; !ok {
			bad("service %s: not on the %s network", name, composeNetwork)
		}
		if !s.ReadOnly || !slices.Contains(s.CapDrop, "ALL") || !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
			bad("service %s: want read_only, cap_drop ALL and no-new-privileges", name)
		}
		// Our images set a numeric non-root USER; third-party ones must be told.
		switch uid, _, _ := strings.Cut(s.User, ":"); {
		case s.User == "" && s.Build == nil:
			bad("service %s: no user, so it runs as whatever the image defaults to", name)
		case uid == "0" || uid == "root":
			bad("service %s: runs as root", name)
		}
	}

	gw, ok := p.Services["gateway"]
	if ok {
		if gw.Deploy == nil || gw.Deploy.Replicas == nil || *gw.Deploy.Replicas != gatewayReplicas {
			bad("service gateway: want deploy.replicas %d", gatewayReplicas)
		}
		env := func(k string) string {
			if v := gw.Environment[k]; v != nil {
				return *v
			}
			return ""
		}
		if env("KEYWARD_MOCK_URL") != "http://mockanthropic:8090" {
			bad("service gateway: KEYWARD_MOCK_URL=%q, want the mock service", env("KEYWARD_MOCK_URL"))
		}
		if !strings.HasPrefix(env("KEYWARD_REDIS_URL"), "redis://redis:6379") {
			bad("service gateway: KEYWARD_REDIS_URL=%q, want the redis service", env("KEYWARD_REDIS_URL"))
		}
		if env("KEYWARD_REDIS_LOCAL_SHARE") != fmt.Sprint(gatewayReplicas) {
			bad("service gateway: KEYWARD_REDIS_LOCAL_SHARE=%q, want the replica count %d", env("KEYWARD_REDIS_LOCAL_SHARE"), gatewayReplicas)
		}
		if env("KEYWARD_METRICS_ADDR") != ":"+gatewayAdminPort {
			bad("service gateway: KEYWARD_METRICS_ADDR=%q, want :%s (what Prometheus scrapes)", env("KEYWARD_METRICS_ADDR"), gatewayAdminPort)
		}
		checkTrustedProxy(p, env("KEYWARD_TRUSTED_PROXIES"), bad)
		for _, dep := range []string{"redis", "mockanthropic"} {
			if d, ok := gw.DependsOn[dep]; !ok || d.Condition != types.ServiceConditionHealthy {
				bad("service gateway: must wait for %s to be healthy", dep)
			}
		}
	}
	if ng, ok := p.Services["nginx"]; ok {
		if d, ok := ng.DependsOn["gateway"]; !ok || d.Condition != types.ServiceConditionHealthy {
			bad("service nginx: must wait for the gateway to be healthy")
		}
	}
	if gr, ok := p.Services["grafana"]; ok {
		if d, ok := gr.DependsOn["prometheus"]; !ok || d.Condition != types.ServiceConditionHealthy {
			bad("service grafana: must wait for prometheus to be healthy")
		}
	}
	return errs
}

// checkTrustedProxy: the gateway must trust exactly nginx's fixed address, and that address
// must lie in the network's fixed subnet (or Docker would refuse to start nginx).
func checkTrustedProxy(p *types.Project, trusted string, bad func(string, ...any)) {
	ng, ok := p.Services["nginx"]
	if !ok {
		return
	}
	nc := ng.Networks[composeNetwork]
	if nc == nil || nc.Ipv4Address == "" {
		bad("service nginx: needs a fixed ipv4_address on the %s network", composeNetwork)
		return
	}
	addr, err := netip.ParseAddr(nc.Ipv4Address)
	if err != nil {
		bad("service nginx: ipv4_address %q: %v", nc.Ipv4Address, err)
		return
	}
	if want := addr.String() + "/32"; trusted != want {
		bad("service gateway: KEYWARD_TRUSTED_PROXIES=%q, want exactly nginx's address %s", trusted, want)
	}
	inSubnet := false
	for _, pool := range p.Networks[composeNetwork].Ipam.Config {
		if pfx, err := netip.ParsePrefix(pool.Subnet); err == nil && pfx.Contains(addr) {
			inSubnet = true
		}
	}
	if !inSubnet {
		bad("network %s: nginx's address %s is outside its fixed subnet", composeNetwork, addr)
	}
}

func TestComposeStackLoadsAndFollowsTheRules(t *testing.T) {
	p, err := loadCompose(t, composeFile, nil)
	require.NoError(t, err)
	require.Empty(t, checkStack(p))
}

// With no key the gateway gets an empty ANTHROPIC_API_KEY (and so uses the mock); with one
// the key reaches the gateway — and only the gateway.
func TestComposeAPIKeyReachesOnlyTheGateway(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"without a key the mock is used", nil, ""},
		{"with a key the real API is used", map[string]string{"ANTHROPIC_API_KEY": "sk-ant-test-123"}, "sk-ant-test-123"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := loadCompose(t, composeFile, tc.env)
			require.NoError(t, err)
			v := p.Services["gateway"].Environment["ANTHROPIC_API_KEY"]
			require.NotNil(t, v)
			require.Equal(t, tc.want, *v)
			for name, s := range p.Services {
				if name == "gateway" {
					continue
				}
				for k, v := range s.Environment {
					require.NotContains(t, k, "ANTHROPIC_API_KEY", "service %s", name)
					if v != nil && tc.want != "" {
						require.NotContains(t, *v, tc.want, "service %s leaks the key in %s", name, k)
					}
				}
			}
		})
	}
}

// Every file the stack mounts from the repository must exist: a missing bind source makes
// Docker create an empty directory in its place and the service fails in confusing ways.
func TestComposeBindMountsExist(t *testing.T) {
	p, err := loadCompose(t, composeFile, nil)
	require.NoError(t, err)
	var n int
	for name, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			n++
			_, err := os.Stat(v.Source)
			require.NoError(t, err, "service %s mounts %s", name, v.Source)
			require.True(t, v.ReadOnly, "service %s: bind mount %s should be read-only", name, v.Target)
		}
	}
	require.GreaterOrEqual(t, n, 5, "nginx.conf, prometheus.yml, alert rules, grafana provisioning, dashboard")
}

// Prometheus must scrape every replica through DNS service discovery on the admin port and
// load the rule file at the path compose mounts the chart's rules to.
func TestComposePrometheusConfig(t *testing.T) {
	p, err := loadCompose(t, composeFile, nil)
	require.NoError(t, err)
	var rulesTarget string
	for _, v := range p.Services["prometheus"].Volumes {
		if strings.HasSuffix(v.Source, filepath.Join("deploy", "helm", "keyward", "files", "keyward-alerts.yaml")) {
			rulesTarget = v.Target
		}
	}
	require.NotEmpty(t, rulesTarget, "prometheus must mount the chart's alert rules")

	raw, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "compose", "prometheus", "prometheus.yml"))
	require.NoError(t, err)
	var cfg struct {
		RuleFiles     []string `json:"rule_files"`
		ScrapeConfigs []struct {
			JobName      string `json:"job_name"`
			DNSSDConfigs []struct {
				Names []string `json:"names"`
				Type  string   `json:"type"`
				Port  int      `json:"port"`
			} `json:"dns_sd_configs"`
		} `json:"scrape_configs"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &cfg))
	require.Contains(t, cfg.RuleFiles, rulesTarget)
	found := false
	for _, sc := range cfg.ScrapeConfigs {
		for _, sd := range sc.DNSSDConfigs {
			if slices.Contains(sd.Names, "gateway") && sd.Type == "A" && fmt.Sprint(sd.Port) == gatewayAdminPort {
				found = true
			}
		}
	}
	require.True(t, found, "a dns_sd_configs entry for gateway (type A, port %s)", gatewayAdminPort)
}

// nginx must set the forwarding headers the gateway trusts (overwriting, not appending to,
// the client's), stream SSE unbuffered and re-resolve the replicas.
func TestComposeNginxConfig(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "compose", "nginx", "nginx.conf"))
	require.NoError(t, err)
	conf := stripNginxComments(string(raw))
	for _, want := range []string{
		`proxy_set_header X-Forwarded-For $remote_addr;`,
		`proxy_set_header X-Real-IP $remote_addr;`,
		`proxy_buffering off;`,
		`server gateway:5001 resolve`,
		`resolver 127.0.0.11`,
		`listen 8080;`,
	} {
		require.Contains(t, conf, want)
	}
	require.NotContains(t, conf, "$proxy_add_x_forwarded_for", "appending keeps the client's forged entries")
	p, err := loadCompose(t, composeFile, nil)
	require.NoError(t, err)
	ports := p.Services["nginx"].Ports
	require.Len(t, ports, 1)
	require.EqualValues(t, 8080, ports[0].Target, "nginx publishes the port it listens on")
}

func stripNginxComments(s string) string {
	return regexp.MustCompile(`(?m)#.*$`).ReplaceAllString(s, "")
}

// The stack rules must be able to fail: each mutation breaks one rule a user would notice.
func TestCheckStackRejectsBrokenStacks(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mutate  func(p *types.Project)
		wantErr string
	}{
		{"redis published to the host", func(p *types.Project) {
			s := p.Services["redis"]
			s.Ports = []types.ServicePortConfig{{Target: 6379, Published: "6379", HostIP: "127.0.0.1"}}
			p.Services["redis"] = s
		}, "service redis: publishes port 6379"},
		{"dashboard on all interfaces", func(p *types.Project) {
			s := p.Services["dashboard"]
			s.Ports[0].HostIP = ""
			p.Services["dashboard"] = s
		}, `want 127.0.0.1 only`},
		{"gateway trusts the whole subnet", func(p *types.Project) {
			s := p.Services["gateway"]
			v := "172.28.5.0/24"
			s.Environment["KEYWARD_TRUSTED_PROXIES"] = &v
			p.Services["gateway"] = s
		}, "want exactly nginx's address"},
		{"nginx outside the subnet", func(p *types.Project) {
			s := p.Services["nginx"]
			s.Networks[composeNetwork].Ipv4Address = "10.9.9.9"
			p.Services["nginx"] = s
		}, "outside its fixed subnet"},
		{"shell healthcheck", func(p *types.Project) {
			s := p.Services["gateway"]
			s.HealthCheck.Test = types.HealthCheckTest{"CMD-SHELL", "curl -f localhost:5001/health"}
			p.Services["gateway"] = s
		}, "must use the exec form"},
		{"no healthcheck", func(p *types.Project) {
			s := p.Services["mockanthropic"]
			s.HealthCheck = nil
			p.Services["mockanthropic"] = s
		}, "service mockanthropic: no healthcheck"},
		{"two replicas", func(p *types.Project) {
			s := p.Services["gateway"]
			two := 2
			s.Deploy.Replicas = &two
			p.Services["gateway"] = s
		}, "want deploy.replicas 3"},
		{"gateway starts before redis is healthy", func(p *types.Project) {
			s := p.Services["gateway"]
			s.DependsOn["redis"] = types.ServiceDependency{Condition: types.ServiceConditionStarted, Required: true}
			p.Services["gateway"] = s
		}, "must wait for redis"},
		{"writable root filesystem", func(p *types.Project) {
			s := p.Services["grafana"]
			s.ReadOnly = false
			p.Services["grafana"] = s
		}, "service grafana: want read_only"},
		{"third-party image as its default user", func(p *types.Project) {
			s := p.Services["nginx"]
			s.User = ""
			p.Services["nginx"] = s
		}, "service nginx: no user"},
		{"root", func(p *types.Project) {
			s := p.Services["redis"]
			s.User = "0:0"
			p.Services["redis"] = s
		}, "service redis: runs as root"},
		{"missing service", func(p *types.Project) {
			delete(p.Services, "prometheus")
		}, "service prometheus: missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := loadCompose(t, composeFile, nil)
			require.NoError(t, err)
			tc.mutate(p)
			errs := checkStack(p)
			require.NotEmpty(t, errs)
			var msgs []string
			for _, e := range errs {
				msgs = append(msgs, e.Error())
			}
			require.Contains(t, strings.Join(msgs, "\n"), tc.wantErr)
		})
	}
}

// compose-go itself must refuse broken files: proof that the loader gate can fail.
func TestComposeLoaderRejectsBrokenFiles(t *testing.T) {
	for _, tc := range []struct {
		file    string
		wantErr string
	}{
		{"unknown-key.bad.yml", "enviroment"},
		{"bad-duration.bad.yml", "fivesec"},
		{"undefined-dependency.bad.yml", "depends on undefined service"},
		{"undefined-volume.bad.yml", "undefined volume"},
		{"bad-port.bad.yml", "abc"},
		{"replicas-string.bad.yml", "replicas"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			_, err := loadCompose(t, filepath.Join("testdata", "compose", tc.file), nil)
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}
