package pgembed

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// supervisorProcess is the appliance's handle on a running supervisor.
type supervisorProcess struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	events chan supervisorEvent // "ready", "failed", "exited"; each at most once
	eof    chan struct{}        // closed when the supervisor's stdout is at EOF
	done   chan struct{}        // closed when the process has exited
	err    error                // its exit status, once done is closed

	mu     sync.Mutex
	stderr []string // last lines, for error messages
	reason string   // why it exited, when it said so
}

// spawnSupervisor re-executes this binary as the supervisor, as acct when
// not nil, and sends it cfg.
func spawnSupervisor(cfg supervisorConfig, acct *account, workDir string, logger *slog.Logger) (*supervisorProcess, error) {
	exe := selfExecutable()
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, err
	}
	cmd := &exec.Cmd{
		Path: exe,
		Args: []string{"causality-postgres-supervisor"},
		Env: []string{
			supervisorEnv + "=1",
			"PATH=/usr/local/bin:/usr/bin:/bin",
			"HOME=" + cfg.Runtime,
			// The library puts a temporary log file there.
			"TMPDIR=" + cfg.Runtime,
			"TZ=UTC",
			"LC_ALL=C",
		},
		Dir:    workDir,
		Stdout: outW,
		Stderr: errW,
		SysProcAttr: &syscall.SysProcAttr{
			Credential: acct.credential(),
			// Ctrl-C in a terminal goes to the foreground process group;
			// the appliance decides when PostgreSQL stops, not the tty.
			Setpgid: true,
			// If the appliance dies (even by SIGKILL), stop PostgreSQL.
			Pdeathsig: syscall.SIGTERM,
		},
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	p := &supervisorProcess{
		cmd:    cmd,
		stdin:  stdin,
		events: make(chan supervisorEvent, 4),
		eof:    make(chan struct{}),
		done:   make(chan struct{}),
	}

	started := make(chan error, 1)
	go func() {
		// The parent-death signal fires when the thread that forked the
		// child exits, not when the process does. Keep this goroutine, and
		// so its thread, locked and alive for as long as the child runs.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	err = <-started
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		stdin.Close()
		if acct != nil && errors.Is(err, fs.ErrPermission) {
			return nil, fmt.Errorf("start the PostgreSQL supervisor as user %s: %w: that user must be able to execute this binary (chmod 755 it)", acct, err)
		}
		return nil, fmt.Errorf("start the PostgreSQL supervisor: %w", err)
	}
	go p.readEvents(outR, logger)
	go p.readStderr(errR, logger)

	line, err := json.Marshal(cfg)
	if err == nil {
		_, err = stdin.Write(append(line, '\n'))
	}
	if err != nil {
		p.kill()
		return nil, fmt.Errorf("configure the PostgreSQL supervisor: %w", err)
	}
	return p, nil
}

// selfExecutable names this binary. /proc/self/exe works even when a
// directory above the binary (say /root) is closed to the account the
// supervisor runs as: the kernel resolves it without walking the path.
func selfExecutable() string {
	if _, err := os.Stat("/proc/self/exe"); err == nil {
		return "/proc/self/exe"
	}
	exe, err := os.Executable()
	if err != nil {
		return os.Args[0]
	}
	return exe
}

func (p *supervisorProcess) readEvents(r io.ReadCloser, logger *slog.Logger) {
	defer close(p.eof)
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20) // failures carry PostgreSQL's log
	for sc.Scan() {
		var ev supervisorEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			logger.Warn("postgres supervisor: " + sc.Text())
			continue
		}
		switch ev.Event {
		case "log":
			logger.Info(ev.Msg)
			continue
		case "exited", "failed":
			p.mu.Lock()
			p.reason = ev.Msg
			p.mu.Unlock()
		}
		select {
		case p.events <- ev:
		default:
		}
	}
}

func (p *supervisorProcess) readStderr(r io.ReadCloser, logger *slog.Logger) {
	defer r.Close()
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		logger.Warn("postgres supervisor: " + sc.Text())
		p.mu.Lock()
		p.stderr = append(p.stderr, sc.Text())
		if len(p.stderr) > 20 {
			p.stderr = p.stderr[1:]
		}
		p.mu.Unlock()
	}
}

// waitReady waits until PostgreSQL accepts connections and returns the
// postmaster's PID. portInUse tells that another port is worth a try.
func (p *supervisorProcess) waitReady(ctx context.Context) (pid int, portInUse bool, err error) {
	var ev supervisorEvent
	select {
	case ev = <-p.events:
	case <-p.eof:
		// Exited; an event it wrote before is in the buffer already.
		select {
		case ev = <-p.events:
		default:
		}
	case <-ctx.Done():
		p.terminate(30 * time.Second)
		return 0, false, ctx.Err()
	}
	if ev.Event == "ready" {
		return ev.PID, false, nil
	}
	p.terminate(30 * time.Second)
	if ev.Msg != "" {
		return 0, ev.PortInUse, errors.New(ev.Msg)
	}
	return 0, false, fmt.Errorf("the PostgreSQL supervisor exited (%v) before PostgreSQL was ready%s", p.err, p.stderrTail())
}

// why says why the supervisor exited.
func (p *supervisorProcess) why() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reason != "" {
		return p.reason
	}
	return fmt.Sprintf("%v%s", p.err, strings.Join(append([]string{""}, p.stderr...), "\n"))
}

func (p *supervisorProcess) stderrTail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.stderr) == 0 {
		return ""
	}
	return ":\n" + strings.Join(p.stderr, "\n")
}

// terminate asks the supervisor to stop PostgreSQL and exit, and kills it
// when it has not done so within grace.
func (p *supervisorProcess) terminate(grace time.Duration) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.kill()
	}
}

func (p *supervisorProcess) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}
