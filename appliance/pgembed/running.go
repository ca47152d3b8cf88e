package pgembed

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrNotReady means a PostgreSQL runs on the directory but does not take connections
// (it is starting or stopping).
var ErrNotReady = errors.New("embedded PostgreSQL is starting or stopping")

// HasCluster reports whether dir (an Options.Dir) holds a cluster that a Start created
// completely, so that a tool such as `causality backup` can tell "nothing here" from
// "stopped" without Start creating a new cluster.
func HasCluster(dir string) bool {
	l := newLayout(dir)
	if _, err := os.Stat(l.initMarker); err == nil {
		return false
	}
	_, err := os.Stat(filepath.Join(l.data, "PG_VERSION"))
	return err == nil
}

// Running finds the PostgreSQL that Start runs under dir, in this process or another one
// (a `causality serve` on the same data dir), and returns its connection URL, as
// Server.URL would. ok is false when none runs; ErrNotReady when one is starting or
// stopping. It reads postmaster.pid for the port and the password file for the password,
// so the caller needs the rights of the account that started it (or root).
func Running(dir string) (dbURL string, ok bool, err error) {
	dir, err = filepath.Abs(dir)
	if err != nil {
		return "", false, err
	}
	l := newLayout(dir)
	lines, err := readPostmasterFile(l.data)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("embedded PostgreSQL: %w", err)
	}
	pid, err := strconv.Atoi(lines[0])
	if err != nil || pid <= 0 || !alive(pid) || !postgresIn(pid, l.data) {
		return "", false, nil // a lock file left by a PostgreSQL that is gone
	}
	// Lines: PID, data dir, start time, port, socket dir, listen address, shared memory
	// key, status (see PostgreSQL's pidfile.h).
	if len(lines) < 8 || strings.TrimSpace(lines[7]) != "ready" {
		return "", false, fmt.Errorf("%w (pid %d on %s): try again in a moment", ErrNotReady, pid, l.data)
	}
	port, err := strconv.Atoi(strings.TrimSpace(lines[3]))
	if err != nil || port <= 0 {
		return "", false, fmt.Errorf("embedded PostgreSQL: %s: bad port %q", filepath.Join(l.data, "postmaster.pid"), lines[3])
	}
	password, err := clusterPassword(l, false)
	if err != nil {
		return "", false, err
	}
	return connURL(password, port), true, nil
}

// readPostmasterFile returns the lines of the data directory's postmaster.pid.
func readPostmasterFile(dataDir string) ([]string, error) {
	f, err := os.Open(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("%s is empty", f.Name())
	}
	return lines, nil
}

// connURL is how the appliance connects to the embedded PostgreSQL: user and database
// causality over TCP on 127.0.0.1.
func connURL(password string, port int) string {
	return (&url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(dbUser, password),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Path:     "/" + dbName,
		RawQuery: "sslmode=disable",
	}).String()
}
