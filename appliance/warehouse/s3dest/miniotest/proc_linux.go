package miniotest

import (
	"os/exec"
	"syscall"
)

// setDeathSignal makes the kernel kill MinIO if the test process dies
// without running its cleanups (a panic, a timeout, kill -9), so no server
// outlives the test that started it. (Strictly, the signal follows the OS
// thread that started MinIO; Go keeps its threads alive unless a goroutine
// exits while locked to one, which nothing here does.)
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
