//go:build linux || darwin || freebsd || netbsd || openbsd

package h1

import (
	"errors"
	"net"
	"syscall"
)

// prober checks an idle connection for a close by the server with one
// non-blocking MSG_PEEK. It is made once per connection, so a check
// allocates nothing.
type prober struct {
	rc   syscall.RawConn
	fn   func(fd uintptr) bool
	n    int
	err  error
	byte [1]byte
}

func newProber(nc net.Conn) *prober {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	p := &prober{rc: rc}
	p.fn = func(fd uintptr) bool {
		p.n, _, p.err = syscall.Recvfrom(int(fd), p.byte[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true // never wait for readiness
	}
	return p
}

// alive reports whether the connection is still open and quiet. EOF means
// the server closed it; bytes mean the server sent something unasked (the
// connection's framing can no longer be trusted); EAGAIN means nothing is
// pending, as it should be.
func (p *prober) alive() bool {
	if p == nil {
		return true
	}
	if err := p.rc.Read(p.fn); err != nil {
		return false
	}
	switch {
	case p.n > 0:
		return false
	case p.err == nil:
		return false // n == 0: EOF
	case errors.Is(p.err, syscall.EAGAIN), errors.Is(p.err, syscall.EWOULDBLOCK):
		return true
	default:
		return false
	}
}
