//go:build linux || darwin || freebsd || netbsd || openbsd

package h1

import (
	"errors"
	"net"
	"syscall"
)

// alive reports whether an idle connection is still open and quiet: one
// non-blocking MSG_PEEK. EOF means the server closed it; bytes mean the
// server sent something unasked (the connection's framing can no longer be
// trusted); EAGAIN means nothing is pending, as it should be.
func alive(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var (
		n    int
		perr error
		buf  [1]byte
	)
	err = rc.Read(func(fd uintptr) bool {
		n, _, perr = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true // never wait for readiness
	})
	switch {
	case err != nil:
		return false
	case n > 0:
		return false
	case perr == nil:
		return false // n == 0: EOF
	case errors.Is(perr, syscall.EAGAIN), errors.Is(perr, syscall.EWOULDBLOCK):
		return true
	default:
		return false
	}
}
