//go:build clients

// Package js runs the official clients from npm — the TypeScript SDK (in
// Node and in headless Chromium), the Vercel AI SDK and the Claude Code CLI —
// against the real gateway and mock upstream binaries. `make test-clients`
// installs the pinned packages (scripts/clients-deps.sh) and runs it with
// -tags clients.
package js

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keyward/keyward/services/gateway/internal/testenv"
)

const allowedModels = "claude-sonnet-4-5,claude-haiku-4-5,claude-opus-5-5,claude-sonnet-5-5,claude-haiku-5-5"

const jwtSecret = "clients-secret-clients-secret-0123456789"

var (
	depsOnce sync.Once
	depsErr  error
)

// deps installs the pinned npm packages (idempotent, cached).
func deps(t *testing.T) {
	t.Helper()
	depsOnce.Do(func() {
		// The test runs in this package's directory, four levels below the
		// repository root.
		cmd := exec.Command(filepath.Join("..", "..", "..", "..", "scripts", "clients-deps.sh"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			depsErr = err
			t.Logf("%s", out)
		}
	})
	require.NoError(t, depsErr, "installing the npm packages of the client tests")
}

var tapCount = regexp.MustCompile(`(?m)^# (pass|fail) (\d+)$`)

// nodeTest runs `node --test` on files with env and returns the pass count;
// any failing case fails the Go test with node's report.
func nodeTest(t *testing.T, env []string, files ...string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", append([]string{"--test", "--test-reporter=tap", "--test-concurrency=1"}, files...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	counts := map[string]int{}
	for _, m := range tapCount.FindAllStringSubmatch(string(out), -1) {
		counts[m[1]], _ = strconv.Atoi(m[2])
	}
	if err != nil || counts["fail"] > 0 || counts["pass"] == 0 {
		t.Fatalf("node --test %v: %v, %d passed, %d failed\n%s", files, err, counts["pass"], counts["fail"], out)
	}
	t.Logf("node --test %s: %d passed, 0 failed", strings.Join(files, " "), counts["pass"])
	return counts["pass"]
}

func testEnv(t *testing.T, gw *testenv.Gateway, mock *testenv.Proc, apiKey string) []string {
	return []string{
		"KEYWARD_TEST_GATEWAY_URL=" + gw.URL,
		"KEYWARD_TEST_MOCK_URL=" + mock.URL,
		"KEYWARD_TEST_API_KEY=" + apiKey,
		"KEYWARD_TEST_ALLOWED_MODELS=" + allowedModels,
		// The mock serves HTTPS with a test CA; Node calls its admin API.
		"NODE_EXTRA_CA_CERTS=" + testenv.TLSFiles(t).CA,
	}
}

// mintToken runs the gateway binary's own `gateway token --helper`, as an
// apiKeyHelper would.
func mintToken(t *testing.T, sub string) string {
	t.Helper()
	bin := filepath.Join(testenv.Binaries(t), "gateway")
	cmd := exec.Command(bin, "token", "--helper", "--sub", sub, "--tier", "dev")
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "KEYWARD_JWT_SECRET="+jwtSecret)
	out, err := cmd.Output()
	require.NoError(t, err)
	return strings.TrimSpace(string(out))
}

func TestTypeScriptSDKInNode(t *testing.T) {
	deps(t)
	mock := testenv.StartMock(t)
	for _, mode := range []struct {
		name string
		env  []string
		key  string
	}{
		{"auth off", nil, "anything-the-sdk-insists-on"},
		{"JWT as the SDK key", []string{"KEYWARD_AUTH_REQUIRED=true", "KEYWARD_JWT_SECRET=" + jwtSecret}, ""},
	} {
		t.Run(mode.name, func(t *testing.T) {
			key := mode.key
			if key == "" {
				key = mintToken(t, "dev-sdk")
			}
			gw := testenv.StartGateway(t, mock.URL, append(mode.env, "KEYWARD_ALLOWED_MODELS="+allowedModels)...)
			nodeTest(t, testEnv(t, gw, mock, key), "sdk.test.mjs")
		})
	}
}

func TestVercelAISDK(t *testing.T) {
	deps(t)
	mock := testenv.StartMock(t)
	gw := testenv.StartGateway(t, mock.URL, "KEYWARD_ALLOWED_MODELS="+allowedModels)
	nodeTest(t, testEnv(t, gw, mock, "sk-ant-anything"), "ai-sdk.test.mjs")
}

type browserResult struct {
	Name  string `json:"name"`
	OK    bool   `json:"ok"`
	MS    int    `json:"ms"`
	Error string `json:"error"`
}

// TestTypeScriptSDKInChromium runs the same suite in headless Chromium: the
// page is served from an origin the gateway's CORS allows, the SDK built for
// the browser (dangerouslyAllowBrowser), results POSTed back here.
func TestTypeScriptSDKInChromium(t *testing.T) {
	deps(t)
	chromium, err := exec.LookPath("chromium")
	require.NoError(t, err, "chromium is installed by scripts/deps.sh")

	dir := t.TempDir()
	bundle := filepath.Join(dir, "bundle.js")
	out, err := exec.Command("./node_modules/.bin/esbuild", "browser.mjs", "--bundle", "--format=esm",
		"--platform=browser", "--log-level=warning", "--outfile="+bundle).CombinedOutput()
	require.NoError(t, err, "%s", out)

	results := make(chan []browserResult, 1)
	var envJSON []byte
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = io.WriteString(w, `<!doctype html><title>sdk</title><script>window.KEYWARD_TEST_ENV=`+string(envJSON)+`</script><script type="module" src="/bundle.js"></script>`)
		case "/bundle.js":
			w.Header().Set("Content-Type", "text/javascript")
			http.ServeFile(w, r, bundle)
		case "/results":
			var rs []browserResult
			if err := json.NewDecoder(r.Body).Decode(&rs); err != nil {
				rs = []browserResult{{Name: "results", Error: err.Error()}}
			}
			select {
			case results <- rs:
			default:
			}
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(page.Close)

	mock := testenv.StartMock(t)
	gw := testenv.StartGateway(t, mock.URL, "KEYWARD_ALLOWED_MODELS="+allowedModels, "KEYWARD_CORS_ORIGINS="+page.URL)
	envJSON, _ = json.Marshal(map[string]any{
		"gatewayURL": gw.URL, "apiKey": "anything-the-sdk-insists-on",
		"allowedModels": strings.Split(allowedModels, ","),
	})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+filepath.Join(dir, "profile"), page.URL+"/")
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })

	select {
	case rs := <-results:
		passed := 0
		for _, r := range rs {
			if !r.OK {
				t.Errorf("in Chromium: %s: %s", r.Name, r.Error)
				continue
			}
			passed++
		}
		require.Greater(t, passed, 10, "the suite ran")
		t.Logf("TypeScript SDK in Chromium: %d passed, %d failed", passed, len(rs)-passed)
	case <-time.After(2 * time.Minute):
		t.Fatalf("no results from the page\n%s", logs.String())
	}
}

// claude runs the Claude Code CLI in print mode against the gateway, with a
// fresh HOME so no developer settings apply, and nothing but the gateway to
// talk to.
func claude(t *testing.T, gatewayURL, token string, settings string, env ...string) (string, error) {
	t.Helper()
	return claudeIn(t, t.TempDir(), gatewayURL, token, settings, env...)
}

func claudeIn(t *testing.T, home, gatewayURL, token string, settings string, env ...string) (string, error) {
	t.Helper()
	if settings != "" {
		require.NoError(t, os.MkdirAll(filepath.Join(home, ".claude"), 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(home, ".claude", "settings.json"), []byte(settings), 0o600))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin, err := filepath.Abs("node_modules/@anthropic-ai/claude-code-linux-x64/claude")
	require.NoError(t, err)
	cmd := exec.CommandContext(ctx, bin, "-p", "Say hello", "--model", "claude-sonnet-4-5")
	cmd.Dir = home
	cmd.Env = []string{
		"HOME=" + home, "PATH=" + os.Getenv("PATH"),
		"ANTHROPIC_BASE_URL=" + gatewayURL,
		"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1", "DISABLE_AUTOUPDATER=1",
	}
	if token != "" {
		cmd.Env = append(cmd.Env, "ANTHROPIC_AUTH_TOKEN="+token)
	}
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// waitLog waits for an access-log line: the gateway writes its log through
// a buffer, so a line may land shortly after the response.
func waitLog(t *testing.T, gw *testenv.Gateway, re *regexp.Regexp, msg string) {
	t.Helper()
	require.Eventually(t, func() bool { return re.MatchString(gw.Logs()) }, 5*time.Second, 20*time.Millisecond, msg)
}

func messagesCalls(t *testing.T, mock *testenv.Proc) []testenv.MockRequest {
	var out []testenv.MockRequest
	for _, r := range mock.Requests(t) {
		if strings.HasPrefix(r.Path, "/v1/messages") && !strings.Contains(r.Path, "count_tokens") {
			out = append(out, r)
		}
	}
	return out
}

func TestClaudeCodeCLI(t *testing.T) {
	deps(t)
	mock := testenv.StartMock(t)

	t.Run("default settings", func(t *testing.T) {
		// "NAME=" drops testenv's generous default, so the gateway runs with
		// its own defaults: only the upstream is configured.
		gw := testenv.StartGateway(t, mock.URL, "KEYWARD_RATE_LIMIT=")
		mock.MockPost(t, "/_mock/reset", `{}`)
		start := time.Now()
		out, err := claude(t, gw.URL, "anything", "")
		require.NoError(t, err, out)
		require.Contains(t, out, "Mock answer from claude-sonnet-4-5", "the mock's answer, printed by claude")
		t.Logf("claude -p through the gateway (default settings): %s", time.Since(start).Round(time.Millisecond))

		calls := messagesCalls(t, mock)
		require.NotEmpty(t, calls)
		var body struct {
			MaxTokens int64 `json:"max_tokens"`
			Stream    bool  `json:"stream"`
		}
		last := calls[len(calls)-1]
		require.NoError(t, json.Unmarshal([]byte(last.Body), &body))
		require.Contains(t, last.Body, "Say hello", "the prompt reached the upstream")
		require.True(t, body.Stream, "Claude Code streams")
		require.Greater(t, body.MaxTokens, int64(8192), "Claude Code's max_tokens passed the default ceiling")
		h := http.Header(last.Headers)
		require.Equal(t, testenv.MockKey, h.Get("X-Api-Key"), "the server key, injected")
		require.Empty(t, h.Get("Authorization"), "the caller's token never goes upstream")
		require.Contains(t, h.Get("Anthropic-Beta"), "claude-code-", "betas forwarded")
		require.True(t, strings.HasPrefix(h.Get("User-Agent"), "keyward/"), "the gateway's User-Agent: %q", h.Get("User-Agent"))
		waitLog(t, gw, regexp.MustCompile(`"session_id":"[0-9a-f-]{36}"`), "the Claude Code session id is in the access log")
	})

	t.Run("auth required with a minted JWT", func(t *testing.T) {
		gw := testenv.StartGateway(t, mock.URL, "KEYWARD_RATE_LIMIT=", "KEYWARD_AUTH_REQUIRED=true", "KEYWARD_JWT_SECRET="+jwtSecret)
		mock.MockPost(t, "/_mock/reset", `{}`)
		out, err := claude(t, gw.URL, mintToken(t, "dev-alice"), "")
		require.NoError(t, err, out)
		require.Contains(t, out, "Mock answer from claude-sonnet-4-5")
		waitLog(t, gw, regexp.MustCompile(`"identity":"sub:dev-alice"`), "limits apply per developer")

		mock.MockPost(t, "/_mock/reset", `{}`)
		start := time.Now()
		out, err = claude(t, gw.URL, "not-a-jwt", "")
		require.Error(t, err, "a bad token is refused: %s", out)
		require.Contains(t, out, "401", "claude says why")
		// The gateway's 401 carries x-should-retry: false, so Claude Code
		// gives up at once instead of retrying a bad token for minutes.
		require.Less(t, time.Since(start), 30*time.Second, "refused promptly")
		require.Empty(t, messagesCalls(t, mock), "nothing reached the upstream")
		waitLog(t, gw, regexp.MustCompile(`"status":401`), "the refusal is logged")
	})

	t.Run("gateway model discovery lists what the gateway allows", func(t *testing.T) {
		cfg := filepath.Join(t.TempDir(), "keyward.yaml")
		require.NoError(t, os.WriteFile(cfg, []byte("models:\n  allowed: [claude-sonnet-4-5, claude-haiku-4-5]\n  aliases:\n    claude-team-default: claude-sonnet-4-5\n"), 0o600))
		gw := testenv.StartGateway(t, mock.URL, "KEYWARD_CONFIG="+cfg)
		home := t.TempDir()
		out, err := claudeIn(t, home, gw.URL, "anything", "", "CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY=1")
		require.NoError(t, err, out)
		b, err := os.ReadFile(filepath.Join(home, ".claude", "cache", "gateway-models.json"))
		require.NoError(t, err, "Claude Code cached the gateway's model list")
		var cache struct {
			Models []struct {
				ID string `json:"id"`
			} `json:"models"`
		}
		require.NoError(t, json.Unmarshal(b, &cache), string(b))
		var ids []string
		for _, m := range cache.Models {
			ids = append(ids, m.ID)
		}
		require.ElementsMatch(t, []string{"claude-sonnet-4-5", "claude-haiku-4-5", "claude-team-default"}, ids)
	})

	t.Run("apiKeyHelper runs gateway token --helper", func(t *testing.T) {
		// The managed-settings rollout of the README: Claude Code gets its
		// key from the helper, the developer never holds the API key.
		gw := testenv.StartGateway(t, mock.URL, "KEYWARD_AUTH_REQUIRED=true", "KEYWARD_JWT_SECRET="+jwtSecret)
		helper := filepath.Join(testenv.Binaries(t), "gateway") + " token --helper --sub dev-carol"
		settings, _ := json.Marshal(map[string]any{"apiKeyHelper": helper})
		out, err := claude(t, gw.URL, "", string(settings), "KEYWARD_JWT_SECRET="+jwtSecret)
		require.NoError(t, err, out)
		require.Contains(t, out, "Mock answer from claude-sonnet-4-5")
		waitLog(t, gw, regexp.MustCompile(`"identity":"sub:dev-carol"`), "the helper's sub is the identity")
	})
}
