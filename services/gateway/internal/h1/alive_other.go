//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package h1

import "net"

// alive cannot peek without the Unix socket API; a connection the server
// closed shows up as a failed write, which the transport retries once.
func alive(net.Conn) bool { return true }
