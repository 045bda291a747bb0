package validate

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// instruction is one Dockerfile instruction with its continuation lines joined.
type instruction struct {
	line int
	cmd  string // upper-case keyword
	args string
}

func parseDockerfile(src string) []instruction {
	var out []instruction
	var cur strings.Builder
	start := 0
	for i, raw := range strings.Split(src, "\n") {
		line := strings.TrimSpace(raw)
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

var (
	// Final images: distroless or scratch, nothing with a shell or package manager.
	finalBase = regexp.MustCompile(`^(gcr\.io/distroless/[a-z0-9-]+(:[\w.-]+)?(@sha256:[a-f0-9]{64})?|scratch)$`)
	numericID = regexp.MustCompile(`^(\d+)(:(\d+))?$`)
	urlSource = regexp.MustCompile(`(?i)\bhttps?://`)
)

// lintDockerfile checks the image rules of issue 7: multi-stage, a distroless or scratch
// final stage running as a numeric non-root user, exec-form ENTRYPOINT/HEALTHCHECK (there
// is no shell), no ADD of URLs, pinned base images. It returns every problem.
func lintDockerfile(src string) []error {
	var errs []error
	bad := func(in instruction, format string, a ...any) {
		errs = append(errs, fmt.Errorf("line %d %s: %s", in.line, in.cmd, fmt.Sprintf(format, a...)))
	}
	ins := parseDockerfile(src)
	var froms []int
	for i, in := range ins {
		if in.cmd == "FROM" {
			froms = append(froms, i)
		}
	}
	if len(froms) < 2 {
		return append(errs, fmt.Errorf("want a multi-stage build (a build stage and a final stage), got %d FROM", len(froms)))
	}
	for _, i := range froms {
		image := strings.Fields(ins[i].args)[0]
		if image != "scratch" && !strings.Contains(image, "@sha256:") {
			if _, tag, ok := strings.Cut(lastPathElem(image), ":"); !ok || tag == "latest" {
				bad(ins[i], "base image %q is not pinned to a tag or digest", image)
			}
		}
	}
	final := ins[froms[len(froms)-1]:]
	if image := strings.Fields(final[0].args)[0]; !finalBase.MatchString(image) {
		bad(final[0], "final stage %q: want gcr.io/distroless/* or scratch", image)
	}
	var user, entry *instruction
	for i := range final {
		in := &final[i]
		switch in.cmd {
		case "USER":
			user = in
		case "ENTRYPOINT":
			entry = in
		case "RUN":
			bad(*in, "RUN in the final stage: it has no shell")
		case "HEALTHCHECK":
			if _, cmd, ok := strings.Cut(in.args, "CMD "); !ok || !strings.HasPrefix(strings.TrimSpace(cmd), "[") {
				bad(*in, "want the exec form CMD [\"…\"]: the image has no shell")
			}
		}
	}
	for _, in := range ins {
		if in.cmd == "ADD" && urlSource.MatchString(in.args) {
			bad(in, "ADD of a URL: fetch in a build stage with a checksum, or COPY")
		}
	}
	switch {
	case user == nil:
		errs = append(errs, fmt.Errorf("final stage: no USER, so the container runs as root"))
	default:
		m := numericID.FindStringSubmatch(user.args)
		if m == nil {
			bad(*user, "%q: want a numeric uid[:gid], so Kubernetes can verify runAsNonRoot", user.args)
		} else if uid, _ := strconv.Atoi(m[1]); uid == 0 {
			bad(*user, "uid 0 is root")
		}
	}
	if entry == nil {
		errs = append(errs, fmt.Errorf("final stage: no ENTRYPOINT"))
	} else if !strings.HasPrefix(entry.args, "[") {
		bad(*entry, "want the exec form [\"/path\"]: the image has no shell")
	}
	return errs
}

func lastPathElem(image string) string {
	if i := strings.LastIndex(image, "/"); i >= 0 {
		return image[i+1:]
	}
	return image
}

func TestServiceDockerfiles(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(repoRoot, "services", "*", "Dockerfile"))
	require.NoError(t, err)
	require.Len(t, files, 3, "gateway, mockanthropic, dashboard")
	for _, f := range files {
		svc := filepath.Base(filepath.Dir(f))
		t.Run(svc, func(t *testing.T) {
			src, err := os.ReadFile(f)
			require.NoError(t, err)
			require.Empty(t, lintDockerfile(string(src)))
			// The binary must be the one of this service, built from its cmd package.
			require.Contains(t, string(src), "./services/"+svc+"/cmd/"+svc)
			require.Contains(t, string(src), `ENTRYPOINT ["/usr/local/bin/`+svc+`"]`)
			require.Contains(t, string(src), "CGO_ENABLED=0", "static binary for a libc-less image")
		})
	}
}

func TestDockerfileLintRejectsBadDockerfiles(t *testing.T) {
	for _, tc := range []struct {
		file    string
		wantErr string
	}{
		{"single-stage.bad.Dockerfile", "multi-stage"},
		{"root-user.bad.Dockerfile", "uid 0 is root"},
		{"no-user.bad.Dockerfile", "no USER"},
		{"named-user.bad.Dockerfile", "want a numeric uid"},
		{"shell-final.bad.Dockerfile", "want gcr.io/distroless/* or scratch"},
		{"add-url.bad.Dockerfile", "ADD of a URL"},
		{"shell-entrypoint.bad.Dockerfile", "exec form"},
		{"unpinned.bad.Dockerfile", "not pinned"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join("testdata", "dockerfile", tc.file))
			require.NoError(t, err)
			errs := lintDockerfile(string(src))
			require.NotEmpty(t, errs)
			var msgs []string
			for _, e := range errs {
				msgs = append(msgs, e.Error())
			}
			require.Contains(t, strings.Join(msgs, "\n"), tc.wantErr)
		})
	}
}

// .dockerignore keeps secrets and VCS history out of every build context.
func TestDockerignore(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	require.NoError(t, err)
	lines := map[string]bool{}
	for _, l := range strings.Split(string(src), "\n") {
		lines[strings.TrimSpace(l)] = true
	}
	for _, want := range []string{".env", ".env.*", "**/.env", ".git"} {
		require.True(t, lines[want], ".dockerignore must exclude %s", want)
	}
	for l := range lines {
		require.False(t, strings.HasPrefix(l, "!") && strings.Contains(l, ".env"), "re-includes an env file: %s", l)
	}
}
