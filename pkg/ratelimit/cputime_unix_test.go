//go:build unix

package ratelimit

import (
	"syscall"
	"time"
)

// processCPU is the CPU time (user+system) this process has used: what a
// benchmark of a client must count, since ns/op on a shared box also moves
// with what redis-server burns on the same cores.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
