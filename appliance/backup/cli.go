package backup

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/causality-io/causality/appliance/config"
)

// BackupMain runs `causality backup --to FILE [--data-dir DIR | --database-url URL]`:
// progress on stderr, the result on stdout.
func BackupMain(ctx context.Context, args []string, version string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) error {
	var to string
	opts, err := parseFlags("backup", args, lookupEnv, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&to, "to", "", "the backup file to write (replaced whole when complete), e.g. /var/backups/causality-$(date +%F).zip")
	})
	if err != nil {
		return err
	}
	if to == "" {
		return errors.New("--to: required: the backup file to write, e.g. --to causality-backup.zip")
	}
	opts.Version, opts.Progress = version, prefixed(stderr, "causality backup: ")
	res, err := Backup(ctx, opts, to)
	if err != nil {
		return err
	}
	opts.say("%d tables, %d rows", res.Tables, res.Rows)
	fmt.Fprintf(stdout, "backup written to %s (%d bytes, schema version %d)\n", res.File, res.Bytes, res.SchemaVersion)
	return nil
}

// RestoreMain runs `causality restore --from FILE [--data-dir DIR | --database-url URL]`.
func RestoreMain(ctx context.Context, args []string, version string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) error {
	var from string
	opts, err := parseFlags("restore", args, lookupEnv, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&from, "from", "", "the backup file to restore")
	})
	if err != nil {
		return err
	}
	if from == "" {
		return errors.New("--from: required: the backup file to restore")
	}
	opts.Version, opts.Progress = version, prefixed(stderr, "causality restore: ")
	res, err := Restore(ctx, opts, from)
	if err != nil {
		return err
	}
	var rows int64
	for _, t := range res.Manifest.Tables {
		rows += t.Rows
	}
	migrated := ""
	if res.SchemaVersion != res.Manifest.SchemaVersion {
		migrated = fmt.Sprintf(", migrated to %d", res.SchemaVersion)
	}
	fmt.Fprintf(stdout, "restored %s into %s (%d tables, %d rows, schema version %d%s)\n",
		from, res.Target, len(res.Manifest.Tables), rows, res.Manifest.SchemaVersion, migrated)
	if opts.DatabaseURL == "" {
		opts.say("start it with: causality serve --data-dir %s (the admin password is the one of the backup)", opts.DataDir)
	}
	return nil
}

// parseFlags reads the flags serve uses to find the configuration database (and their
// CAUSALITY_* variables; flags win) plus the command's own.
func parseFlags(cmd string, args []string, lookupEnv func(string) (string, bool), stderr io.Writer, own func(*flag.FlagSet)) (Options, error) {
	var o Options
	fs := flag.NewFlagSet("causality "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	own(fs)
	fs.StringVar(&o.DataDir, "data-dir", "./causality-data", "the appliance's data dir (its embedded PostgreSQL is under postgres/)")
	fs.StringVar(&o.DatabaseURL, "database-url", "", "an external PostgreSQL instead of the embedded one")
	fs.StringVar(&o.PGBinaries, "pg-binaries", "", "directory holding bin/, lib/ and share/ of PostgreSQL 17, for a binary built without the bundled Postgres")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q (flags start with --)", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, name := range []string{"data-dir", "database-url", "pg-binaries"} {
		if v, ok := lookupEnv(config.EnvName(name)); ok && !given[name] {
			_ = fs.Set(name, v) // string flags take any value
		}
	}
	if strings.TrimSpace(o.DataDir) == "" && o.DatabaseURL == "" {
		return o, errors.New("--data-dir: must not be empty")
	}
	return o, nil
}

// prefixed writes each line with a prefix, so that progress reads apart from other output.
func prefixed(w io.Writer, prefix string) io.Writer {
	return &prefixWriter{w: w, prefix: prefix, atStart: true}
}

type prefixWriter struct {
	w       io.Writer
	prefix  string
	atStart bool
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	var out []byte
	for _, c := range b {
		if p.atStart {
			out = append(out, p.prefix...)
		}
		out = append(out, c)
		p.atStart = c == '\n'
	}
	if _, err := p.w.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}
