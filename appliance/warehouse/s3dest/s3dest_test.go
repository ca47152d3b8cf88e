package s3dest_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/causality-io/causality/appliance/warehouse/desttest"
	"github.com/causality-io/causality/appliance/warehouse/lake"
	"github.com/causality-io/causality/appliance/warehouse/s3dest"
	"github.com/causality-io/causality/appliance/warehouse/s3dest/miniotest"
)

// newDest returns a Dest on srv's bucket, or fails t.
func newDest(t testing.TB, srv *miniotest.Server, bucket, prefix, addressing string) *s3dest.Dest {
	t.Helper()
	d, err := s3dest.New(s3dest.Options{
		Endpoint:   srv.Endpoint,
		AccessKey:  srv.AccessKey,
		SecretKey:  srv.SecretKey,
		Insecure:   true,
		Addressing: addressing,
		Bucket:     bucket,
		Prefix:     prefix,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return d
}

func TestConformance(t *testing.T) {
	srv := miniotest.Start(t)
	// One MinIO for the whole suite; each subtest gets a fresh bucket or
	// prefix, so they can't see each other's objects.
	t.Run("Prefix", func(t *testing.T) {
		bucket := srv.Bucket(t, "")
		var n atomic.Int64
		desttest.Run(t, func(t *testing.T) lake.Destination {
			return newDest(t, srv, bucket, "lakes/lake-"+strconv.FormatInt(n.Add(1), 10), "")
		})
	})
	t.Run("BucketRoot", func(t *testing.T) {
		desttest.Run(t, func(t *testing.T) lake.Destination {
			return newDest(t, srv, srv.Bucket(t, ""), "", "")
		})
	})
}

func TestPrefixIsolation(t *testing.T) {
	// Two lakes in one bucket, one prefix the string prefix of the other:
	// neither sees nor deletes the other's objects.
	srv := miniotest.Start(t)
	bucket := srv.Bucket(t, "")
	a := newDest(t, srv, bucket, "lake", "")
	b := newDest(t, srv, bucket, "lake2", "")
	ctx := t.Context()
	for _, d := range []*s3dest.Dest{a, b} {
		if err := d.Put(ctx, "events/x.parquet", []byte(d.String())); err != nil {
			t.Fatal(err)
		}
	}
	objs, err := a.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 || objs[0].Path != "events/x.parquet" {
		t.Errorf("List on prefix %q = %v, want only its own events/x.parquet", "lake", objs)
	}
	if err := a.DeletePrefix(ctx, "events"); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Get(ctx, "events/x.parquet"); err != nil || string(got) != b.String() {
		t.Errorf("other lake's object after DeletePrefix: %q, %v", got, err)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	good := s3dest.Options{Endpoint: "127.0.0.1:9000", AccessKey: "k", SecretKey: "secret", Bucket: "lake"}
	cases := []struct {
		name    string
		edit    func(o *s3dest.Options)
		wantErr string
	}{
		{"no bucket", func(o *s3dest.Options) { o.Bucket = "" }, "bucket is required"},
		{"bad bucket", func(o *s3dest.Options) { o.Bucket = "Has_Upper" }, `bucket "Has_Upper"`},
		{"scheme in endpoint", func(o *s3dest.Options) { o.Endpoint = "https://s3.example.com" }, "without a scheme"},
		{"path in endpoint", func(o *s3dest.Options) { o.Endpoint = "s3.example.com/lake" }, "without a path"},
		{"leading slash prefix", func(o *s3dest.Options) { o.Prefix = "/lake" }, `prefix "/lake"`},
		{"trailing slash prefix", func(o *s3dest.Options) { o.Prefix = "lake/" }, `prefix "lake/"`},
		{"dot-dot prefix", func(o *s3dest.Options) { o.Prefix = "a/../b" }, `prefix "a/../b"`},
		{"access key alone", func(o *s3dest.Options) { o.SecretKey = "" }, "both the access key and the secret key"},
		{"secret key alone", func(o *s3dest.Options) { o.AccessKey = "" }, "both the access key and the secret key"},
		{"unknown addressing", func(o *s3dest.Options) { o.Addressing = "dns" }, `addressing "dns"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := good
			c.edit(&o)
			d, err := s3dest.New(o)
			if err == nil {
				t.Fatalf("New(%+v) = %v, want an error containing %q", o, d, c.wantErr)
			}
			if !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("New error = %q, want it to contain %q", err, c.wantErr)
			}
			if strings.Contains(err.Error(), "secret") && !strings.Contains(c.wantErr, "secret") {
				t.Errorf("error leaks the secret key: %q", err)
			}
		})
	}

	t.Run("good", func(t *testing.T) {
		for _, addressing := range []string{"", "auto", "path", "virtual"} {
			o := good
			o.Addressing = addressing
			if _, err := s3dest.New(o); err != nil {
				t.Errorf("New with Addressing %q: %v", addressing, err)
			}
		}
		o := good
		o.Endpoint, o.AccessKey, o.SecretKey = "", "", ""
		if _, err := s3dest.New(o); err != nil {
			t.Errorf("New for anonymous Amazon S3: %v", err)
		}
	})
}

func TestString(t *testing.T) {
	cases := []struct {
		opts s3dest.Options
		want string
	}{
		{s3dest.Options{Endpoint: "minio:9000", AccessKey: "AKIA", SecretKey: "s3cr3t-value", Bucket: "lake", Prefix: "prod/events"},
			"s3://lake/prod/events (minio:9000)"},
		{s3dest.Options{Bucket: "lake"}, "s3://lake (s3.amazonaws.com)"},
	}
	for _, c := range cases {
		d, err := s3dest.New(c.opts)
		if err != nil {
			t.Fatal(err)
		}
		if got := d.String(); got != c.want {
			t.Errorf("String() = %q, want %q", got, c.want)
		}
		if c.opts.SecretKey != "" && strings.Contains(d.String(), c.opts.SecretKey) {
			t.Errorf("String() leaks the secret key")
		}
	}
}

func TestBadPaths(t *testing.T) {
	// Rejected before any request, so no server is needed.
	d, err := s3dest.New(s3dest.Options{Endpoint: "127.0.0.1:1", Insecure: true, Bucket: "lake", Prefix: "p"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, p := range []string{"", "/abs", "a//b", "a/", "a/../b", "./a"} {
		if err := d.Put(ctx, p, []byte("x")); err == nil {
			t.Errorf("Put(%q) succeeded, want a path error", p)
		}
		if _, err := d.Get(ctx, p); err == nil || errors.Is(err, lake.ErrNotFound) {
			t.Errorf("Get(%q) = %v, want a path error", p, err)
		}
	}
	if err := d.DeletePrefix(ctx, ""); err == nil || !strings.Contains(err.Error(), "whole lake") {
		t.Errorf("DeletePrefix(\"\") = %v, want a refusal", err)
	}
	err = d.Replace(ctx, "dir", []lake.File{{Name: "a", Data: nil}}, []string{"a"})
	if err == nil || !strings.Contains(err.Error(), "both added and removed") {
		t.Errorf("Replace adding and removing the same name = %v, want a refusal", err)
	}
}

func TestCheckMissingBucket(t *testing.T) {
	srv := miniotest.Start(t)
	d := newDest(t, srv, "no-such-bucket", "lake", "")
	err := d.Check(t.Context())
	if err == nil {
		t.Fatal("Check on a missing bucket succeeded")
	}
	if !strings.Contains(err.Error(), `bucket "no-such-bucket" does not exist`) {
		t.Errorf("Check error = %q, want it to name the missing bucket", err)
	}
	if strings.Contains(err.Error(), srv.SecretKey) {
		t.Errorf("Check error leaks the secret key: %q", err)
	}
}

func TestCheckWrongCredentials(t *testing.T) {
	srv := miniotest.Start(t)
	bucket := srv.Bucket(t, "")
	d, err := s3dest.New(s3dest.Options{
		Endpoint: srv.Endpoint, Insecure: true, Bucket: bucket,
		AccessKey: srv.AccessKey, SecretKey: "wrong-secret-key",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Check(t.Context()); err == nil {
		t.Error("Check with a wrong secret key succeeded")
	} else if strings.Contains(err.Error(), "wrong-secret-key") {
		t.Errorf("Check error leaks the secret key: %q", err)
	}
}

func TestCheckServerDown(t *testing.T) {
	srv := miniotest.Start(t)
	d := newDest(t, srv, srv.Bucket(t, ""), "lake", "")
	ctx := t.Context()
	if err := d.Put(ctx, "events/a.parquet", []byte("before")); err != nil {
		t.Fatal(err)
	}

	srv.Stop()
	start := time.Now()
	err := d.Check(ctx)
	took := time.Since(start)
	if err == nil {
		t.Fatal("Check with the server stopped succeeded")
	}
	if !strings.Contains(err.Error(), srv.Endpoint) {
		t.Errorf("Check error = %q, want it to name the endpoint %s", err, srv.Endpoint)
	}
	// Check is the cheap "is it back?" probe: one attempt, not the
	// retries with backoff that data operations get.
	if took > 3*time.Second {
		t.Errorf("Check took %v with the server down, want a prompt answer", took)
	}
	// A data operation honours the caller's deadline while it retries.
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if err := d.Put(short, "events/b.parquet", []byte("during")); err == nil {
		t.Error("Put with the server stopped succeeded")
	}

	// Back on the same port and data: the old object is there, and the same
	// Dest works again without being rebuilt.
	srv.Start(t)
	if err := d.Check(ctx); err != nil {
		t.Fatalf("Check after restart: %v", err)
	}
	if got, err := d.Get(ctx, "events/a.parquet"); err != nil || string(got) != "before" {
		t.Errorf("Get after restart = %q, %v; want %q", got, err, "before")
	}
}

func TestAddressing(t *testing.T) {
	// MinIO on an IP answers path-style requests; "auto" must choose path
	// style for it. (Virtual-hosted style needs DNS for bucket.host, which a
	// loopback IP can't have.)
	srv := miniotest.Start(t)
	for _, addressing := range []string{"auto", "path", ""} {
		t.Run("addressing="+addressing, func(t *testing.T) {
			d := newDest(t, srv, srv.Bucket(t, ""), "lake", addressing)
			ctx := t.Context()
			if err := d.Check(ctx); err != nil {
				t.Fatalf("Check: %v", err)
			}
			if err := d.Put(ctx, "events/x.parquet", []byte("x")); err != nil {
				t.Fatalf("Put: %v", err)
			}
			objs, err := d.List(ctx, "events")
			if err != nil || len(objs) != 1 {
				t.Fatalf("List = %v, %v; want one object", objs, err)
			}
			if got, err := d.Get(ctx, "events/x.parquet"); err != nil || string(got) != "x" {
				t.Errorf("Get = %q, %v", got, err)
			}
		})
	}
}

func TestLargeObjectMultipart(t *testing.T) {
	// Over 16 MiB, PutObject switches to a multipart upload; the object
	// must still appear whole under its name, and only once complete.
	if testing.Short() {
		t.Skip("uploads 20 MiB")
	}
	srv := miniotest.Start(t)
	d := newDest(t, srv, srv.Bucket(t, ""), "lake", "")
	ctx := t.Context()
	data := make([]byte, 20<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if err := d.Put(ctx, "events/big.parquet", data); err != nil {
		t.Fatal(err)
	}
	got, err := d.Get(ctx, "events/big.parquet")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(data) || string(got) != string(data) {
		t.Errorf("Get returned %d bytes that differ from the %d put", len(got), len(data))
	}
	objs, err := d.List(ctx, "events")
	if err != nil || len(objs) != 1 || objs[0].Size != int64(len(data)) {
		t.Errorf("List = %v, %v; want one object of %d bytes", objs, err, len(data))
	}
}

func TestListRoot(t *testing.T) {
	// List("") is the whole lake; the conformance suite leaves the root out
	// (a local directory refuses it), so it is checked here.
	srv := miniotest.Start(t)
	d := newDest(t, srv, srv.Bucket(t, ""), "lake", "")
	ctx := t.Context()
	for _, p := range []string{"events/a/x.parquet", "other/y", "_causality/ledger/seq-1", ".tmp-z"} {
		if err := d.Put(ctx, p, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	objs, err := d.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range objs {
		got = append(got, o.Path)
	}
	slices.Sort(got)
	if want := []string{"events/a/x.parquet", "other/y"}; !slices.Equal(got, want) {
		t.Errorf("List(\"\") = %q, want %q", got, want)
	}
}
