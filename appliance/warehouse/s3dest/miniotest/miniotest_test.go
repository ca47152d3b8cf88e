package miniotest_test

import (
	"net/http"
	"os"
	"regexp"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/causality-io/causality/appliance/warehouse/s3dest/miniotest"
)

func TestVersionMatchesMakefile(t *testing.T) {
	// `make minio` installs what the skip message tells people to install.
	data, err := os.ReadFile("../../../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^MINIO_VERSION\s*:?=\s*(\S+)\s*$`).FindSubmatch(data)
	if m == nil {
		t.Fatal("Makefile has no MINIO_VERSION")
	}
	if got := string(m[1]); got != miniotest.Version {
		t.Errorf("Makefile MINIO_VERSION = %s, miniotest.Version = %s; keep them equal", got, miniotest.Version)
	}
}

func TestStopStart(t *testing.T) {
	srv := miniotest.Start(t)
	bucket := srv.Bucket(t, "")
	ctx := t.Context()
	c := srv.Client(t)
	if _, err := c.PutObject(ctx, bucket, "k", http.NoBody, 0, minio.PutObjectOptions{}); err != nil {
		t.Fatalf("put: %v", err)
	}

	srv.Stop()
	if srv.Running() {
		t.Error("Running after Stop")
	}
	if resp, err := http.Get("http://" + srv.Endpoint + "/minio/health/live"); err == nil {
		resp.Body.Close()
		t.Fatalf("server still answers on %s after Stop", srv.Endpoint)
	}
	srv.Stop() // a second Stop is harmless

	endpoint := srv.Endpoint
	srv.Start(t)
	if srv.Endpoint != endpoint || !srv.Running() {
		t.Fatalf("after Start: endpoint %s (was %s), running %v", srv.Endpoint, endpoint, srv.Running())
	}
	// Same data directory: the bucket and the object survived.
	if _, err := c.StatObject(ctx, bucket, "k", minio.StatObjectOptions{}); err != nil {
		t.Errorf("object after restart: %v", err)
	}
	if named := srv.Bucket(t, "named-bucket"); named != "named-bucket" {
		t.Errorf("Bucket returned %q", named)
	}
}
