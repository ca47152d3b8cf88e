package appliance

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/causality-io/causality/appliance/config"
)

// banner tells a person where to point a browser, the SDKs and tools, and where data lives.
// The generated admin password is printed here, once, and never logged.
func (a *Appliance) banner(generatedPassword string) {
	base := a.baseURL()
	abs, err := filepath.Abs(a.cfg.DataDir)
	if err != nil {
		abs = a.cfg.DataDir
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nCausality is ready (started in %s).\n\n", time.Since(a.startedAt).Round(10*time.Millisecond))
	fmt.Fprintf(&b, "  Admin UI         %s/admin/  (open in a browser; user admin)\n", base)
	fmt.Fprintf(&b, "  Admin API        %s/api/v1/admin/  (HTTP Basic, user admin)\n", base)
	fmt.Fprintf(&b, "  Ingest (SDKs)    POST %s/v1/events/batch  and  %s/v1/events/ingest  (header X-API-Key)\n", base, base)
	fmt.Fprintf(&b, "  Rules, webhooks  %s/api/v1/admin/rules, /webhooks, /detectors  (docs/reactions.md)\n", base)
	fmt.Fprintf(&b, "  Health           %s/healthz  %s/readyz  %s/metrics\n", base, base, base)
	if a.cfg.TLSEnabled() {
		fmt.Fprintf(&b, "  TLS              %s\n", a.https.mode)
	} else {
		b.WriteString("  TLS              off, plain http (for local use; --tls-cert/--tls-key or --tls-domain turn on https)\n")
	}
	if u := a.bus.ClientURL(); u != "" {
		fmt.Fprintf(&b, "  NATS             %s  (stream EVENTS, subjects events.<app>.<category>.<type>; alerts.> and anomalies.> for rule matches and anomalies)\n", u)
	} else {
		b.WriteString("  NATS             embedded, in-process only (set --nats-listen 127.0.0.1:4222 to let tools connect)\n")
	}
	if a.pg != nil {
		fmt.Fprintf(&b, "  Postgres         embedded, %s\n", filepath.Join(abs, "postgres"))
	} else {
		b.WriteString("  Postgres         external (--database-url)\n")
	}
	if a.dest != nil {
		fmt.Fprintf(&b, "  Warehouse        %s  (Parquet, Hive partitions; flushed every %s)\n", a.dest, a.cfg.FlushInterval)
		if loc, err := a.cfg.Warehouse(); err == nil && loc.Kind == config.WarehouseFile {
			fmt.Fprintf(&b, "  DuckDB           SELECT count(*) FROM read_parquet('%s/events/**/*.parquet', hive_partitioning = true, hive_types = {'app_id': VARCHAR});\n", loc.Dir)
		}
		b.WriteString("  Trino            causality trino  (prints the catalog file and table DDL for this warehouse)\n")
	}
	fmt.Fprintf(&b, "  Data dir         %s\n", abs)
	if generatedPassword != "" {
		fmt.Fprintf(&b, "\n  Admin password (generated, shown only this once): %s\n", generatedPassword)
		fmt.Fprintf(&b, "  Sign in at %s/admin/ with it.\n", base)
		b.WriteString("  Change it with --admin-password; create an API key with:\n")
		fmt.Fprintf(&b, "    curl -u admin:%s -X POST %s/api/v1/admin/keys -d '{\"app_id\":\"shop\",\"name\":\"web\"}'\n", generatedPassword, base)
	}
	b.WriteString("\n")
	fmt.Fprint(a.out, b.String())
}

// displayHost turns a listen address into one a person can open on this machine: the
// wildcard address becomes localhost.
func displayHost(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
