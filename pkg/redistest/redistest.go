// Package redistest starts a real, throw-away redis-server on a free loopback
// port for tests (never 6379, never a shared database), the way httptest
// starts an HTTP server.
package redistest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Server is a running redis-server process.
type Server struct {
	Addr string // 127.0.0.1:port
	Port int
	dir  string
	args []string // the caller's extra arguments, kept for Restart
	cmd  *exec.Cmd
	logf *os.File
	tb   testing.TB
	// ownDir: StartMain made dir, so Stop removes it.
	ownDir bool
}

// URL returns a redis:// URL for the server.
func (s *Server) URL() string { return "redis://" + s.Addr + "/0" }

// Start launches redis-server on a free loopback port and stops it when the
// test ends. It fails the test when redis-server is not installed: `make test`
// installs it, and silently skipping would hide missing coverage.
func Start(tb testing.TB, extraArgs ...string) *Server {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatalf("redis-server not found on PATH (install it: apt-get install -y redis-server, or run `make test`): %v", err)
	}
	s := &Server{dir: tb.TempDir(), tb: tb, args: extraArgs}
	s.Port = FreePort(tb)
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port))
	s.start(bin, extraArgs...)
	tb.Cleanup(s.Stop)
	return s
}

func (s *Server) start(bin string, extraArgs ...string) {
	s.tb.Helper()
	if err := s.launch(bin, extraArgs...); err != nil {
		s.tb.Fatalf("%v", err)
	}
}

// StartMain is Start for a TestMain, which has no testing.TB (a package
// whose examples need a real Redis): the caller calls Stop, which also
// removes the server's directory.
func StartMain(extraArgs ...string) (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not found on PATH (install it: apt-get install -y redis-server, or run `make test`): %w", err)
	}
	dir, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		return nil, fmt.Errorf("creating redis directory: %w", err)
	}
	s := &Server{dir: dir, ownDir: true}
	for s.Port == 0 || s.Port == 6379 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		s.Port = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port))
	if err := s.launch(bin, extraArgs...); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

func (s *Server) launch(bin string, extraArgs ...string) error {
	args := []string{
		"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir,
		"--daemonize", "no", "--protected-mode", "yes",
	}
	args = append(args, extraArgs...)
	cmd := exec.Command(bin, args...)
	logf, err := os.Create(filepath.Join(s.dir, "redis.log"))
	if err != nil {
		return fmt.Errorf("creating redis log: %w", err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting redis-server: %w", err)
	}
	s.cmd = cmd
	s.logf = logf
	if err := WaitReady(s.Addr, 10*time.Second); err != nil {
		s.Stop()
		return fmt.Errorf("redis-server on %s not ready: %w", s.Addr, err)
	}
	return nil
}

// Stop kills the server (SIGKILL: an outage, not a clean shutdown). Safe to call twice.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
	if s.logf != nil {
		_ = s.logf.Close()
		s.logf = nil
	}
	if s.ownDir {
		_ = os.RemoveAll(s.dir)
	}
}

// StartPersistent is Start with the append-only file on (fsync on every
// write), as a production Redis holding budgets runs: Restart after Stop
// (a SIGKILL) reloads every key from the same data directory.
func StartPersistent(tb testing.TB, extraArgs ...string) *Server {
	tb.Helper()
	return Start(tb, append([]string{"--appendonly", "yes", "--appendfsync", "always"}, extraArgs...)...)
}

// Restart starts the server again on the same port and data directory
// (after Stop), with the arguments it was started with: empty, unless it
// was started with StartPersistent.
func (s *Server) Restart() {
	s.tb.Helper()
	bin, _ := exec.LookPath("redis-server")
	s.start(bin, s.args...)
}

// Do sends one inline command and returns the raw first reply line
// (enough for PING, FLUSHALL, CONFIG, INFO headers in tests).
func (s *Server) Do(args ...string) (string, error) {
	conn, err := net.DialTimeout("tcp", s.Addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	cmd := fmt.Sprintf("*%d\r\n", len(args))
	for _, a := range args {
		cmd += fmt.Sprintf("$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write([]byte(cmd)); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	return line, err
}

// WaitReady polls addr with PING until it answers PONG or timeout passes.
func WaitReady(addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last error
	for ctx.Err() == nil {
		conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			_ = conn.SetDeadline(time.Now().Add(time.Second))
			_, err = conn.Write([]byte("PING\r\n"))
			if err == nil {
				var line string
				line, err = bufio.NewReader(conn).ReadString('\n')
				if err == nil && line == "+PONG\r\n" {
					conn.Close()
					return nil
				}
				if err == nil {
					err = fmt.Errorf("unexpected reply %q", line)
				}
			}
			conn.Close()
		}
		last = err
		time.Sleep(25 * time.Millisecond)
	}
	return fmt.Errorf("waiting for %s: %w", addr, last)
}

// FreePort returns a free TCP port on 127.0.0.1 (never 6379).
func FreePort(tb testing.TB) int {
	tb.Helper()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("finding a free port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if port != 6379 {
			return port
		}
	}
}
