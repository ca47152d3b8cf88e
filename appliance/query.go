package appliance

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/causality-io/causality/appliance/admin"
	"github.com/causality-io/causality/appliance/config"
	"github.com/causality-io/causality/appliance/warehouse/trino"
)

// warehouseInfo is what the admin UI's data page shows of the lake: the destination to
// list, and copy-ready queries for this installation.
func (a *Appliance) warehouseInfo() admin.Warehouse {
	w := admin.Warehouse{Dest: a.dest, DuckDB: DuckDBQuery(a.cfg)}
	var b strings.Builder
	if err := WriteTrino(&b, a.cfg); err != nil {
		w.Trino = "-- causality trino failed: " + err.Error() + "\n"
	} else {
		w.Trino = b.String()
	}
	return w
}

// DuckDBQuery is a DuckDB session that counts the lake's events by app, for the warehouse
// cfg names. The S3 secret key is never written: the query asks for it.
func DuckDBQuery(cfg *config.Config) string {
	loc, err := cfg.Warehouse()
	if err != nil {
		return "-- --warehouse-url: " + err.Error() + "\n"
	}
	var b strings.Builder
	root := loc.Dir
	if loc.Kind == config.WarehouseS3 {
		root = strings.TrimRight(cfg.WarehouseURL, "/")
		b.WriteString("INSTALL httpfs; LOAD httpfs;\n")
		b.WriteString("CREATE SECRET causality (TYPE s3")
		if cfg.S3AccessKey != "" {
			fmt.Fprintf(&b, ", KEY_ID %s, SECRET '<the secret key, as in %s>'", sqlQuote(cfg.S3AccessKey), trino.SecretKeyEnv)
		}
		if cfg.S3Endpoint != "" {
			ep := cfg.S3Endpoint
			if u, err := url.Parse(ep); err == nil && u.Host != "" {
				ep = u.Host
			}
			fmt.Fprintf(&b, ",\n    ENDPOINT %s", sqlQuote(ep))
			if cfg.S3Addressing != "virtual" {
				b.WriteString(", URL_STYLE 'path'")
			}
			if cfg.S3Insecure {
				b.WriteString(", USE_SSL false")
			}
		}
		if cfg.S3Region != "" {
			fmt.Fprintf(&b, ", REGION %s", sqlQuote(cfg.S3Region))
		}
		b.WriteString(");\n")
	}
	b.WriteString("SET TimeZone = 'UTC';\n")
	fmt.Fprintf(&b, "SELECT app_id, event_name, count(*) AS events, max(event_time) AS newest\n"+
		"FROM read_parquet(%s,\n"+
		"                  hive_partitioning = true, hive_types = {'app_id': VARCHAR})\n"+
		"GROUP BY ALL\nORDER BY events DESC;\n", sqlQuote(root+"/events/**/*.parquet"))
	return b.String()
}

func sqlQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
