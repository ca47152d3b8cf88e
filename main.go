// Command causality is the Causality event analytics appliance: `causality serve` runs it,
// `causality trino` prints the Trino setup for its warehouse (same flags as serve),
// `causality bench` loads a running one, `causality backup` and `causality restore` save and
// restore its configuration, `causality version` says which build this is.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/causality-io/causality/appliance"
	"github.com/causality-io/causality/appliance/backup"
	"github.com/causality-io/causality/appliance/bench"
	"github.com/causality-io/causality/appliance/config"
	"github.com/causality-io/causality/appliance/pgembed"
)

// Stamped by the release build (-ldflags -X).
var version, commit, date = "dev", "none", "unknown"

const usage = "usage: causality serve|backup|restore|trino|bench|version [flags]  (causality <command> -h lists the flags)"

func main() {
	if pgembed.IsSupervisor() { // this process is the Postgres supervisor child of a serve
		os.Exit(pgembed.RunSupervisor())
	}
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "serve":
		cfg, err := config.Parse(args, os.LookupEnv, os.Stderr)
		if err != nil {
			exit(err)
		}
		if cfg.CheckConfig {
			exit(cfg.CheckAndReport(os.Stdout, version))
		}
		exit(appliance.New(cfg, cfg.Logger(os.Stderr), os.Stdout).WithVersion(version).Run(ctx))
	case "backup":
		exit(backup.BackupMain(ctx, args, version, os.LookupEnv, os.Stdout, os.Stderr))
	case "restore":
		exit(backup.RestoreMain(ctx, args, version, os.LookupEnv, os.Stdout, os.Stderr))
	case "trino":
		cfg, err := config.Parse(args, os.LookupEnv, os.Stderr)
		if err != nil {
			exit(err)
		}
		exit(appliance.WriteTrino(os.Stdout, cfg))
	case "bench":
		exit(bench.Main(ctx, args, os.Stdout, os.Stderr))
	case "version", "--version":
		fmt.Printf("causality %s (commit %s, built %s)\n", version, commit, date)
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n%s\n", cmd, usage)
		os.Exit(2)
	}
}

func exit(err error) {
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		for _, line := range strings.Split(err.Error(), "\n") { // several problems: one a line
			fmt.Fprintln(os.Stderr, "causality:", line)
		}
		if errors.Is(err, config.ErrUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
	os.Exit(0)
}
