package pgembed

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"

	"github.com/klauspost/compress/zstd"

	"github.com/causality-io/causality/appliance/pgembed/bundlefmt"
)

// The bundle format is shared with tools/pgbundle, which writes it.
const manifestName = bundlefmt.ManifestName

type manifest = bundlefmt.Manifest

// bundleName is the bundle for the architecture this binary runs on.
func bundleName() string {
	return "bundle/linux-" + runtime.GOARCH + "/postgres.tar.zst"
}

var safeVersion = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z.+_-]*$`)

// resolveBinaries returns a directory holding bin/, lib/ and share/ of
// PostgreSQL 17: override when given, else the embedded bundle unpacked under
// binariesRoot (once).
func resolveBinaries(override string, bundle fs.FS, binariesRoot string, logger *slog.Logger) (string, error) {
	if override != "" {
		return checkBinariesDir(override)
	}
	m, err := readBundleManifest(bundle)
	if err != nil {
		return "", err
	}
	dest := filepath.Join(binariesRoot, m.PackageVersion)
	if unpacked(dest, m) {
		return dest, nil
	}
	logger.Info("unpacking PostgreSQL "+MajorVersion+" (first start)...", "version", m.PostgresVersion, "dir", dest)
	if err := unpackBundle(bundle, m, binariesRoot, dest); err != nil {
		return "", fmt.Errorf("unpack PostgreSQL to %s: %w", dest, err)
	}
	return dest, nil
}

// checkBinariesDir checks a --pg-binaries directory: the programs the
// library runs are there, and they are PostgreSQL 17.
func checkBinariesDir(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for _, prog := range []string{"pg_ctl", "initdb", "postgres"} {
		if _, err := os.Stat(filepath.Join(dir, "bin", prog)); err != nil {
			return "", fmt.Errorf("--pg-binaries %s: want a PostgreSQL %s installation with bin/, lib/ and share/: %w", dir, MajorVersion, err)
		}
	}
	out, err := exec.Command(filepath.Join(dir, "bin", "postgres"), "--version").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("--pg-binaries %s: run postgres --version: %w: %s", dir, err, strings.TrimSpace(string(out)))
	}
	// "postgres (PostgreSQL) 17.10"
	m := regexp.MustCompile(`\(PostgreSQL\) (\d+)`).FindSubmatch(out)
	if m == nil || string(m[1]) != MajorVersion {
		return "", fmt.Errorf("--pg-binaries %s: want PostgreSQL %s, found %q", dir, MajorVersion, strings.TrimSpace(string(out)))
	}
	return dir, nil
}

// readBundleManifest reads the manifest of the embedded bundle for this
// architecture, or says how to get PostgreSQL when there is none.
func readBundleManifest(bundle fs.FS) (manifest, error) {
	var m manifest
	f, err := bundle.Open(bundleName())
	if errors.Is(err, fs.ErrNotExist) {
		return m, fmt.Errorf("%w for linux/%s in this binary (it was built without `make bundle`): run `make bundle` and rebuild, "+
			"or pass --pg-binaries with a PostgreSQL %s directory holding bin/, lib/ and share/, "+
			"or use an external PostgreSQL with --database-url", ErrNoBinaries, runtime.GOARCH, MajorVersion)
	}
	if err != nil {
		return m, err
	}
	defer f.Close()
	if m, err = bundlefmt.ReadManifest(f); err != nil {
		return m, fmt.Errorf("read %s: %w", bundleName(), err)
	}
	switch {
	case m.MajorVersion != MajorVersion:
		return m, fmt.Errorf("%s holds PostgreSQL %s; this package runs PostgreSQL %s: rebuild the bundle with `make bundle`", bundleName(), m.PostgresVersion, MajorVersion)
	case m.Arch != runtime.GOARCH:
		return m, fmt.Errorf("%s is for %s, not %s: rebuild the bundle with `make bundle`", bundleName(), m.Arch, runtime.GOARCH)
	case !safeVersion.MatchString(m.PackageVersion):
		return m, fmt.Errorf("%s: bad package version %q", bundleName(), m.PackageVersion)
	}
	return m, nil
}

// unpacked reports whether dest holds a complete copy of the bundle m: the
// manifest is written last, so its presence means the rest is there.
func unpacked(dest string, m manifest) bool {
	data, err := os.ReadFile(filepath.Join(dest, manifestName))
	if err != nil {
		return false
	}
	var have manifest
	if json.Unmarshal(data, &have) != nil || have != m {
		return false
	}
	_, err = os.Stat(filepath.Join(dest, "bin", "pg_ctl"))
	return err == nil
}

// unpackBundle unpacks the bundle into a temporary directory next to dest
// and renames it into place, so that dest is complete or absent.
func unpackBundle(bundle fs.FS, m manifest, root, dest string) error {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(root, ".unpack-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}

	f, err := bundle.Open(bundleName())
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := zstd.NewReader(f)
	if err != nil {
		return err
	}
	defer zr.Close()
	var manifestData []byte
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if hdr.Name == manifestName {
			if manifestData, err = io.ReadAll(tr); err != nil {
				return err
			}
			continue
		}
		if err := extractEntry(tmp, hdr, tr); err != nil {
			return err
		}
	}
	if manifestData == nil {
		return fmt.Errorf("%s has no %s", bundleName(), manifestName)
	}
	if err := os.WriteFile(filepath.Join(tmp, manifestName), manifestData, 0o644); err != nil {
		return err
	}
	// A leftover from an interrupted unpack of the same version has no
	// manifest (or a different one); replace it.
	if err := os.RemoveAll(dest); err != nil {
		return err
	}
	if err := os.Rename(tmp, dest); err != nil {
		return err
	}
	return syncDir(root)
}

// extractEntry writes one tar entry below dir, refusing anything that would
// land outside it.
func extractEntry(dir string, hdr *tar.Header, r io.Reader) error {
	name := filepath.Clean(filepath.FromSlash(hdr.Name))
	if !filepath.IsLocal(name) {
		return fmt.Errorf("bundle entry %q: path outside the bundle", hdr.Name)
	}
	target := filepath.Join(dir, name)
	switch hdr.Typeflag {
	case tar.TypeDir:
		return os.MkdirAll(target, 0o755)
	case tar.TypeReg:
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if hdr.Mode&0o111 != 0 {
			mode = 0o755
		}
		out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, r); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	case tar.TypeSymlink:
		if filepath.IsAbs(hdr.Linkname) || !filepath.IsLocal(filepath.Join(filepath.Dir(name), hdr.Linkname)) {
			return fmt.Errorf("bundle entry %q: symlink to %q leaves the bundle", hdr.Name, hdr.Linkname)
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		return os.Symlink(hdr.Linkname, target)
	}
	return fmt.Errorf("bundle entry %q: unexpected type %q", hdr.Name, hdr.Typeflag)
}

// removeOldBinaries deletes binaries of other package versions, left by
// earlier releases of causality.
func removeOldBinaries(root, keep string, logger *slog.Logger) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range entries {
		p := filepath.Join(root, e.Name())
		if p == keep {
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			logger.Warn("remove old PostgreSQL binaries", "dir", p, "err", err)
			continue
		}
		logger.Info("removed old PostgreSQL binaries", "dir", p)
	}
}

// syncDir makes a rename or a new file in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
