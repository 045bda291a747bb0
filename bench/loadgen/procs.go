package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is one child process the run started (and stops, by its own pid).
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string // file holding its stdout and stderr
	done chan struct{}
}

func startProc(name, bin string, args, env []string, dir string) (*proc, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("creating %s log: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	// A clean environment: no stray KEYWARD_* or GOGC from the caller's
	// shell changes what is measured.
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	cmd.Dir = dir // no stray .env file is read
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(p.done) }()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM and waits up to 10 s, then SIGKILL.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) tail(n int) string {
	b, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freePort asks the kernel for an unused loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitHTTP polls url until it answers 200, the process exits, or 20 s pass.
func waitHTTP(p *proc, url string) error {
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: upstreamTLS()}}
	defer c.CloseIdleConnections()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if p.exited() {
			return fmt.Errorf("%s exited during start-up:\n%s", p.name, p.tail(20))
		}
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer 200 at %s:\n%s", p.name, url, p.tail(20))
}

// waitTCP polls addr until it accepts a connection.
func waitTCP(p *proc, addr string) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if p.exited() {
			return fmt.Errorf("%s exited during start-up:\n%s", p.name, p.tail(20))
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s did not listen on %s", p.name, addr)
}

// cpuTime is the user+system CPU time so far of the processes, summed,
// from /proc/<pid>/stat (fields 14 and 15, in clock ticks). It includes
// exited threads.
func cpuTime(pids ...int) (time.Duration, error) {
	var sum time.Duration
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0, fmt.Errorf("reading cpu time: %w", err)
		}
		d, err := parseStatCPU(b, clockTicks)
		if err != nil {
			return 0, err
		}
		sum += d
	}
	return sum, nil
}

// parseStatCPU reads utime+stime from a /proc/<pid>/stat line. The command
// name (field 2) may hold spaces and parentheses, so fields are counted
// from the last ')'.
func parseStatCPU(stat []byte, ticksPerSec int64) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("parsing /proc stat: no command field")
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state), so utime (14) is f[11] and stime (15) f[12].
	if len(f) < 13 {
		return 0, errors.New("parsing /proc stat: too few fields")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("parsing /proc stat: utime/stime not numbers")
	}
	return time.Duration((ut + st) * int64(time.Second) / ticksPerSec), nil
}

// clockTicks is USER_HZ. Linux has used 100 on every mainstream
// architecture for decades; getconf confirms it where available.
var clockTicks = func() int64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && n > 0 {
			return n
		}
	}
	return 100
}()

// memKB returns VmRSS and VmHWM (peak RSS) of pid in KiB.
func memKB(pid int) (rss, hwm int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("reading memory: %w", err)
	}
	defer f.Close()
	return parseStatusMem(f)
}

func parseStatusMem(r interface{ Read([]byte) (int, error) }) (rss, hwm int64, err error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch k {
		case "VmRSS", "VmHWM":
			fs := strings.Fields(v)
			if len(fs) == 0 {
				continue
			}
			n, perr := strconv.ParseInt(fs[0], 10, 64)
			if perr != nil {
				return 0, 0, fmt.Errorf("parsing %s: %w", k, perr)
			}
			if k == "VmRSS" {
				rss = n
			} else {
				hwm = n
			}
		}
	}
	if rss == 0 {
		return 0, 0, errors.New("parsing /proc status: no VmRSS")
	}
	return rss, hwm, sc.Err()
}

// rssSampler records the largest VmRSS of the processes (summed) seen while
// it runs.
type rssSampler struct {
	cancel context.CancelFunc
	done   chan int64
}

func sampleRSS(pids []int, every time.Duration) *rssSampler {
	ctx, cancel := context.WithCancel(context.Background())
	s := &rssSampler{cancel: cancel, done: make(chan int64, 1)}
	go func() {
		var peak int64
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			var sum int64
			for _, pid := range pids {
				if rss, _, err := memKB(pid); err == nil {
					sum += rss
				}
			}
			peak = max(peak, sum)
			select {
			case <-ctx.Done():
				s.done <- peak
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// stop returns the peak VmRSS in KiB.
func (s *rssSampler) stop() int64 {
	s.cancel()
	return <-s.done
}

// ioSyscalls returns the read and write system calls the processes have
// made so far, summed (syscr and syscw of /proc/<pid>/io; reads and writes
// on sockets count).
func ioSyscalls(pids ...int) (reads, writes int64, err error) {
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
		if err != nil {
			return 0, 0, fmt.Errorf("reading /proc io: %w", err)
		}
		r, w := parseIO(b)
		reads, writes = reads+r, writes+w
	}
	return reads, writes, nil
}

func parseIO(b []byte) (reads, writes int64) {
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n, perr := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if perr != nil {
			continue
		}
		switch k {
		case "syscr":
			reads = n
		case "syscw":
			writes = n
		}
	}
	return reads, writes
}

// raiseNoFile lifts this process's RLIMIT_NOFILE to at least n (the hard
// limit too, where it is lower and the process may: a container without
// CAP_SYS_RESOURCE may not, even as root). Once a Go program has set it,
// its children inherit the new limit.
func raiseNoFile(n uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("reading RLIMIT_NOFILE: %w", err)
	}
	if lim.Cur >= n {
		return nil
	}
	want := syscall.Rlimit{Cur: n, Max: max(lim.Max, n)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		return fmt.Errorf("raising RLIMIT_NOFILE from %d (hard %d) to %d for -open: %w", lim.Cur, lim.Max, n, err)
	}
	return nil
}
