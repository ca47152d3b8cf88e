package pgembed

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	embeddedpostgres "github.com/fergusstrange/embedded-postgres"
	"golang.org/x/sys/unix"
)

// supervisorEnv marks the process as the supervisor of Start.
const supervisorEnv = "CAUSALITY_PG_SUPERVISOR"

// IsSupervisor reports whether this process was started by Start as the
// PostgreSQL supervisor; main (and TestMain) must then call RunSupervisor
// and exit with its result, before doing anything else.
func IsSupervisor() bool {
	return os.Getenv(supervisorEnv) == "1"
}

// supervisorConfig is the one JSON line Start writes to the supervisor's
// stdin. It travels over the pipe, not in the environment, because it holds
// the password.
type supervisorConfig struct {
	Binaries string `json:"binaries"`
	Data     string `json:"data"`
	// Fresh means Data is about to be created by this start.
	Fresh    bool   `json:"fresh,omitempty"`
	Runtime  string `json:"runtime"`
	LogDir   string `json:"log_dir"`
	LogFile  string `json:"log_file"`
	Port     uint32 `json:"port"`
	Password string `json:"password"`
}

// supervisorEvent is a JSON line the supervisor writes to its stdout.
type supervisorEvent struct {
	Event     string `json:"event"` // "log", "ready", "failed" or "exited"
	Msg       string `json:"msg,omitempty"`
	PID       int    `json:"pid,omitempty"`         // the postmaster, with "ready"
	PortInUse bool   `json:"port_in_use,omitempty"` // with "failed": worth another port
}

const (
	dbName = "causality"
	dbUser = "causality"
)

// pgHBA replaces the pg_hba.conf initdb writes (which also allows Unix
// sockets and plain-text passwords).
const pgHBA = `# Written by causality (appliance/pgembed). PostgreSQL listens on 127.0.0.1 only
# and every connection authenticates with the generated password.
# TYPE  DATABASE  USER  ADDRESS       METHOD
host    all       all   127.0.0.1/32  scram-sha-256
host    all       all   ::1/128       scram-sha-256
`

// RunSupervisor runs the supervisor process and returns its exit code: it
// reads its configuration from stdin, starts PostgreSQL, reports readiness,
// and stops PostgreSQL on SIGTERM or SIGINT or when stdin closes.
func RunSupervisor() int {
	// Files of the cluster are private; PostgreSQL sets its own umask too.
	syscall.Umask(0o077)
	// A write to a closed stdout (the appliance died) must fail, not kill
	// us before PostgreSQL is stopped.
	signal.Ignore(syscall.SIGPIPE, syscall.SIGHUP)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)

	out := &eventWriter{enc: json.NewEncoder(os.Stdout)}
	fail := func(err error) int {
		out.emit(supervisorEvent{Event: "failed", Msg: err.Error(), PortInUse: portInUse(err)})
		return 1
	}

	in := bufio.NewReader(os.Stdin)
	line, err := in.ReadBytes('\n')
	if err != nil {
		return fail(fmt.Errorf("read configuration: %w", err))
	}
	var cfg supervisorConfig
	if err := json.Unmarshal(line, &cfg); err != nil {
		return fail(fmt.Errorf("read configuration: %w", err))
	}
	stdinClosed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, in)
		close(stdinClosed)
	}()

	// PostgreSQL is started by pg_ctl, which exits once it is up; as a
	// subreaper we inherit the postmaster as a child and learn when it dies.
	subreaper := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == nil

	if _, err := os.Stat(filepath.Join(cfg.Binaries, "bin", "pg_ctl")); err != nil {
		// Without it the library would try to download PostgreSQL.
		return fail(err)
	}
	logFile, err := os.OpenFile(cfg.LogFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fail(err)
	}
	defer logFile.Close()

	// On a fresh cluster the library runs initdb and creates the database.
	pg := embeddedpostgres.NewDatabase(libraryConfig(cfg, logFile))
	if err := pg.Start(); err != nil {
		return fail(fmt.Errorf("start PostgreSQL: %w", err))
	}
	pid, err := readPostmasterPID(cfg.Data)
	if err == nil && cfg.Fresh {
		err = restrictAuthentication(cfg.Data, pid)
	}
	if err != nil {
		_ = pg.Stop()
		return fail(err)
	}
	exited := watchPostmaster(pid, subreaper)
	out.emit(supervisorEvent{Event: "ready", PID: pid})

	select {
	case <-stop:
	case <-stdinClosed:
	case msg := <-exited:
		out.emit(supervisorEvent{Event: "exited", Msg: msg})
		return 1
	}
	if err := pg.Stop(); err != nil {
		return fail(fmt.Errorf("stop PostgreSQL: %w", err))
	}
	return 0
}

// restrictAuthentication replaces the pg_hba.conf of a new cluster and
// makes the postmaster reload it.
func restrictAuthentication(dataDir string, pid int) error {
	if err := os.WriteFile(filepath.Join(dataDir, "pg_hba.conf"), []byte(pgHBA), 0o600); err != nil {
		return err
	}
	return syscall.Kill(pid, syscall.SIGHUP)
}

func libraryConfig(cfg supervisorConfig, logFile *os.File) embeddedpostgres.Config {
	return embeddedpostgres.DefaultConfig().
		Version(embeddedpostgres.V17).
		Port(cfg.Port).
		Database(dbName).
		Username(dbUser).
		Password(cfg.Password).
		BinariesPath(cfg.Binaries).
		DataPath(cfg.Data).
		// Start() deletes RuntimePath every time: it must be a scratch
		// directory of its own.
		RuntimePath(filepath.Join(cfg.Runtime, "pg")).
		CachePath(cfg.Runtime).
		// bin/pg_ctl is checked above, so nothing is fetched; should that
		// ever change, fail rather than download.
		BinaryRepositoryURL("http://127.0.0.1:1/causality-never-downloads").
		Locale("C").
		Encoding("UTF8").
		StartTimeout(30 * time.Second).
		Logger(logFile).
		StartParameters(map[string]string{
			"listen_addresses":        "127.0.0.1",
			"unix_socket_directories": "",
			// PostgreSQL's own log goes to <Dir>/postgres.log; the file is
			// created and owned for us by Start.
			"logging_collector": "on",
			"log_directory":     cfg.LogDir,
			"log_filename":      filepath.Base(cfg.LogFile),
			"log_rotation_age":  "0",
			"log_rotation_size": "0",
		})
}

// watchPostmaster reports, once, that the postmaster exited.
func watchPostmaster(pid int, child bool) <-chan string {
	ch := make(chan string, 1)
	go func() {
		if child {
			if p, err := os.FindProcess(pid); err == nil {
				if st, err := p.Wait(); err == nil {
					ch <- fmt.Sprintf("postmaster (pid %d) exited: %v", pid, st)
					return
				}
			}
		}
		// Not our child (no subreaper): poll.
		for alive(pid) {
			time.Sleep(500 * time.Millisecond)
		}
		ch <- fmt.Sprintf("postmaster (pid %d) exited", pid)
	}()
	return ch
}

func portInUse(err error) bool {
	s := err.Error()
	return strings.Contains(s, "already listening on port") || strings.Contains(s, "could not bind") || strings.Contains(s, "Address already in use")
}

// eventWriter writes supervisor events as JSON lines; a failed write (the
// appliance is gone) is ignored.
type eventWriter struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func (w *eventWriter) emit(ev supervisorEvent) {
	w.mu.Lock()
	defer w.mu.Unlock()
	_ = w.enc.Encode(ev)
}
