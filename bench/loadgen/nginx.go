package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// nginx is the second calibration point: Debian's nginx configured as the
// simplest key-injecting proxy many users write instead of a gateway — one
// location that sets the key header and passes everything to the upstream
// over TLS, with a keepalive pool — the floor of a C event-loop proxy on this
// machine. nginx speaks only HTTP/1.1 to upstreams (there is no HTTP/2
// proxy_pass), so its hop to the mock is TLS with HTTP/1.1 where the gateway
// and the bare proxy multiplex HTTP/2.
//
// It runs as Debian runs it: a master process and one worker (the fairest
// match for two cores shared with the load generator, the mock and Redis),
// in the foreground (daemon off) so that loadgen stops it by its pid. CPU,
// read/write calls and RSS are summed over the master and its workers.

// findNginx resolves the -nginx flag: a path, or a name looked up in PATH
// and then in /usr/sbin (where Debian installs it, and which a non-root
// PATH may lack). It returns "" and a note saying why when there is none.
func findNginx(flagValue string) (bin, note string) {
	if flagValue == "" {
		return "", "nginx rows skipped (-nginx \"\")"
	}
	if strings.ContainsRune(flagValue, '/') {
		if isExecutable(flagValue) {
			return flagValue, ""
		}
		return "", fmt.Sprintf("nginx rows skipped: %s is not an executable (scripts/deps.sh nginx installs Debian's)", flagValue)
	}
	if p, err := exec.LookPath(flagValue); err == nil {
		return p, ""
	}
	if p := filepath.Join("/usr/sbin", flagValue); isExecutable(p) {
		return p, ""
	}
	return "", fmt.Sprintf("nginx rows skipped: no %q in PATH or /usr/sbin (scripts/deps.sh nginx installs Debian's)", flagValue)
}

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// nginxVersion is what `nginx -v` prints, e.g. "nginx/1.22.1".
func nginxVersion(bin string) string {
	out, err := exec.Command(bin, "-v").CombinedOutput()
	if err != nil {
		return "nginx (version unknown)"
	}
	v := strings.TrimSpace(string(out))
	if _, after, ok := strings.Cut(v, "version: "); ok {
		return after
	}
	return v
}

// nginxConf is the whole configuration: nothing beyond what a key-injecting
// proxy needs, plus the temp and log paths moved into the run's directory.
// The access log is nginx's default (combined format, one unbuffered write
// per request, as Debian's stock configuration has it), since the gateway
// writes one too.
func nginxConf(dir string, listenPort int, upstreamHostPort, caFile, key string) string {
	q := func(s string) string { return strconv.Quote(s) }
	tmp := func(name string) string { return q(filepath.Join(dir, "nginx-tmp", name)) }
	return `# loadgen: nginx as the simplest key-injecting proxy in front of the mock.
daemon off;
master_process on;
worker_processes 1;
pid ` + q(filepath.Join(dir, "nginx.pid")) + `;
error_log ` + q(filepath.Join(dir, "nginx-error.log")) + ` warn;

events {
    worker_connections 4096;
}

http {
    access_log ` + q(filepath.Join(dir, "nginx-access.log")) + `;
    client_body_temp_path ` + tmp("body") + `;
    proxy_temp_path ` + tmp("proxy") + `;
    fastcgi_temp_path ` + tmp("fastcgi") + `;
    uwsgi_temp_path ` + tmp("uwsgi") + `;
    scgi_temp_path ` + tmp("scgi") + `;

    upstream anthropic {
        server ` + upstreamHostPort + `;
        keepalive 64;
    }

    server {
        listen 127.0.0.1:` + strconv.Itoa(listenPort) + `;

        location / {
            proxy_pass https://anthropic;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header x-api-key ` + q(key) + `;
            proxy_ssl_trusted_certificate ` + q(caFile) + `;
            proxy_ssl_verify on;
            proxy_ssl_server_name on;
            # nginx matches the name against DNS names only; the mock's
            # certificate carries localhost beside its IP addresses.
            proxy_ssl_name localhost;
            # Streams pass through as they arrive.
            proxy_buffering off;
        }
    }
}
`
}

// startNginx writes the configuration and starts nginx in front of the mock.
func (s *stack) startNginx(bin string) (*gateway, error) {
	if s.caFile == "" {
		return nil, errors.New("nginx: the key-injecting configuration proxies to the TLS mock; drop -plain-upstream")
	}
	u, err := url.Parse(s.mockURL)
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(s.dir, "nginx-tmp"), 0o700); err != nil {
		return nil, err
	}
	conf := filepath.Join(s.dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(nginxConf(s.dir, port, u.Host, s.caFile, mockKey)), 0o600); err != nil {
		return nil, fmt.Errorf("writing nginx.conf: %w", err)
	}
	// -e: the error log before the configuration is read (the compiled-in
	// path is /var/log/nginx).
	p, err := startProc("nginx", bin, []string{"-p", s.dir, "-c", conf, "-e", filepath.Join(s.dir, "nginx-error.log")}, nil, s.dir)
	if err != nil {
		return nil, err
	}
	s.procs = append(s.procs, p)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	if err := waitTCP(p, addr); err != nil {
		b, _ := os.ReadFile(filepath.Join(s.dir, "nginx-error.log"))
		return nil, fmt.Errorf("%w\nnginx-error.log:\n%s", err, b)
	}
	return &gateway{proc: p, url: "http://" + addr, withChildren: true}, nil
}

// nginxHeaders are the callers' headers without a key: nginx must add it,
// or the mock answers 401 and the phase fails.
func nginxHeaders() http.Header {
	h := headers()
	h.Del("X-Api-Key")
	return h
}

// childPIDs lists the processes whose parent is pid (nginx's workers), from
// /proc/<n>/stat.
func childPIDs(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var kids []int
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		if ppid, ok := parseStatPPID(b); ok && ppid == pid {
			kids = append(kids, n)
		}
	}
	return kids
}

// parseStatPPID reads field 4 (ppid) of a /proc/<pid>/stat line, counting
// from the last ')' as parseStatCPU does.
func parseStatPPID(stat []byte) (int, bool) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 2 {
		return 0, false
	}
	n, err := strconv.Atoi(f[1])
	return n, err == nil
}
