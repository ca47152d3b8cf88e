//go:build unix

package event

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time (user and system) the process has used. The
// benchmarks report it per event next to the wall time: on a machine shared
// with other work the wall time says more about the neighbours than the code.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
