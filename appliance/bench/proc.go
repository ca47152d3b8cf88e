package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Machine is where a run happened: numbers without it mean nothing.
type Machine struct {
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPUModel   string `json:"cpu_model,omitempty"`
	GoVersion  string `json:"go_version"`
}

func thisMachine() Machine {
	m := Machine{OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

func (m Machine) String() string {
	s := fmt.Sprintf("%s/%s, %d CPUs (GOMAXPROCS %d)", m.OS, m.Arch, m.CPUs, m.GOMAXPROCS)
	if m.CPUModel != "" {
		s += ", " + m.CPUModel
	}
	return s + ", " + m.GoVersion
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times: 100 on every Linux port Go
// supports.
const clockTicks = 100

// procCPU reads the CPU time a process used so far, from /proc (Linux only).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces; fields after it
	// start at field 3, so utime (14) and stime (15) are the 12th and 13th.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// procRSS reads a process's resident set size in bytes from /proc/<pid>/status.
func procRSS(pid int) (int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/%d/status VmRSS %q: %w", pid, v, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS (a kernel thread or a zombie?)", pid)
}

// ProcessUsage is what a watched process used during the measured window.
type ProcessUsage struct {
	PID        int     `json:"pid"`
	RSSMaxMiB  float64 `json:"rss_max_mib"`
	RSSMeanMiB float64 `json:"rss_mean_mib"`
	Samples    int     `json:"rss_samples"`
	CPUCores   float64 `json:"cpu_cores"` // CPU seconds per second of the window
}

// cpuMeter measures the CPU a process uses between start and stop.
type cpuMeter struct {
	pid   int
	cpu0  time.Duration
	wall0 time.Time
	ok    bool
}

func startCPU(pid int) cpuMeter {
	c, err := procCPU(pid)
	return cpuMeter{pid: pid, cpu0: c, wall0: time.Now(), ok: err == nil}
}

// cores is the CPU used since start, in cores (0 when /proc is not readable).
func (m cpuMeter) cores() float64 {
	if !m.ok {
		return 0
	}
	c, err := procCPU(m.pid)
	wall := time.Since(m.wall0)
	if err != nil || wall <= 0 {
		return 0
	}
	return (c - m.cpu0).Seconds() / wall.Seconds()
}

// rssSampler samples a process's RSS every interval and its CPU over the whole sampling.
type rssSampler struct {
	pid     int
	stop    chan struct{}
	wg      sync.WaitGroup
	cpu     cpuMeter
	max     int64
	sum     float64
	samples int
	err     error
}

// startRSS begins sampling pid after delay (the warmup), every interval.
func startRSS(pid int, delay, interval time.Duration) (*rssSampler, error) {
	if _, err := procRSS(pid); err != nil {
		return nil, fmt.Errorf("--rss-pid %d: %w", pid, err)
	}
	s := &rssSampler{pid: pid, stop: make(chan struct{})}
	s.wg.Go(func() {
		select {
		case <-time.After(delay):
		case <-s.stop:
			return
		}
		s.cpu = startCPU(pid)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			s.sample()
			select {
			case <-t.C:
			case <-s.stop:
				s.sample()
				return
			}
		}
	})
	return s, nil
}

func (s *rssSampler) sample() {
	v, err := procRSS(s.pid)
	if err != nil {
		s.err = err
		return
	}
	s.max = max(s.max, v)
	s.sum += float64(v)
	s.samples++
}

// finish stops sampling and summarises.
func (s *rssSampler) finish() *ProcessUsage {
	close(s.stop)
	s.wg.Wait()
	u := &ProcessUsage{PID: s.pid, Samples: s.samples, CPUCores: s.cpu.cores()}
	if s.samples > 0 {
		u.RSSMaxMiB = float64(s.max) / (1 << 20)
		u.RSSMeanMiB = s.sum / float64(s.samples) / (1 << 20)
	}
	return u
}

// fsType names the file system dir lives on, from /proc/mounts ("" when unknown). A store
// on tmpfs writes to memory, which flatters every number.
func fsType(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return ""
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		abs = r
	}
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return ""
	}
	best, typ := -1, ""
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		mp := f[1]
		if (abs == mp || strings.HasPrefix(abs, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > best {
			best, typ = len(mp), f[2]
		}
	}
	return typ
}
