package main

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/causality-io/causality/appliance/pgembed/bundlefmt"
)

// The bundle format is shared with appliance/pgembed, which reads it.
const manifestName = bundlefmt.ManifestName

type manifest = bundlefmt.Manifest

// fixedTime is the modification time of every entry, so that the same
// package always gives the same bundle (npm normalises its own mtimes too).
var fixedTime = time.Date(1985, 10, 26, 8, 15, 0, 0, time.UTC)

// skipped reports files that only serve to build extensions against this
// PostgreSQL (static libraries, pkg-config, PGXS makefiles): never used at
// run time, so they stay out of the binary.
func skipped(rel string, d fs.DirEntry) bool {
	if rel == "lib/pkgconfig" || rel == "lib/postgresql/pgxs" {
		return true
	}
	return !d.IsDir() && strings.HasPrefix(rel, "lib/") && strings.HasSuffix(rel, ".a")
}

// writeBundle writes the bundle to out (via a temporary file and a rename)
// and returns its sha256 and size.
func writeBundle(out, native string, m manifest) (string, int64, error) {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", 0, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), ".pgbundle-*")
	if err != nil {
		return "", 0, err
	}
	defer os.Remove(tmp.Name())

	h := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(tmp, h), 1<<20)
	zw, err := zstd.NewWriter(bw, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
	if err != nil {
		return "", 0, err
	}
	tw := tar.NewWriter(zw)

	mj, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return "", 0, err
	}
	mj = append(mj, '\n')
	if err := tw.WriteHeader(&tar.Header{Name: manifestName, Mode: 0o644, Size: int64(len(mj)), ModTime: fixedTime, Typeflag: tar.TypeReg}); err != nil {
		return "", 0, err
	}
	if _, err := tw.Write(mj); err != nil {
		return "", 0, err
	}
	for _, top := range []string{"bin", "lib", "share"} {
		if err := addTree(tw, native, top); err != nil {
			return "", 0, err
		}
	}
	if err := tw.Close(); err != nil {
		return "", 0, err
	}
	if err := zw.Close(); err != nil {
		return "", 0, err
	}
	if err := bw.Flush(); err != nil {
		return "", 0, err
	}
	if err := tmp.Sync(); err != nil {
		return "", 0, err
	}
	info, err := tmp.Stat()
	if err != nil {
		return "", 0, err
	}
	if err := tmp.Close(); err != nil {
		return "", 0, err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return "", 0, err
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), info.Size(), nil
}

// addTree adds native/top and everything below it, in lexical order.
func addTree(tw *tar.Writer, native, top string) error {
	return filepath.WalkDir(filepath.Join(native, top), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(native, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if skipped(rel, d) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: rel, ModTime: fixedTime}
		switch {
		case d.IsDir():
			hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, rel+"/", 0o755
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, target, 0o777
		case info.Mode().IsRegular():
			hdr.Typeflag, hdr.Size, hdr.Mode = tar.TypeReg, info.Size(), 0o644
			if info.Mode()&0o111 != 0 {
				hdr.Mode = 0o755
			}
		default:
			return fmt.Errorf("%s: unexpected file type %s", p, info.Mode().Type())
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag != tar.TypeReg {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
}

// readManifest reads the manifest of an existing bundle.
func readManifest(name string) (manifest, error) {
	f, err := os.Open(name)
	if err != nil {
		return manifest{}, err
	}
	defer f.Close()
	m, err := bundlefmt.ReadManifest(f)
	if err != nil {
		return m, fmt.Errorf("%s: %w", name, err)
	}
	return m, nil
}
