//go:build !linux

package miniotest

import "os/exec"

// setDeathSignal does nothing where the kernel has no parent-death signal;
// t.Cleanup still stops the server on a normal test exit.
func setDeathSignal(cmd *exec.Cmd) {}
