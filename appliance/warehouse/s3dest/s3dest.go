// Package s3dest stores the event lake in an S3 bucket (Amazon S3, MinIO or
// any S3-compatible endpoint) as a lake.Destination.
//
// Every object lives under Options.Prefix in Options.Bucket, so one bucket can
// hold several lakes, and lake paths map to keys one to one
// ("<prefix>/<path>"), which keeps the Hive layout visible to Trino, Spark or
// DuckDB reading the bucket directly.
//
// S3 gives per-object atomicity only: an object appears when its upload
// completes, whole, under its final key, which is all Put promises. There is
// no multi-object transaction, so Replace and DeletePrefix are sequences of
// single-object steps; their doc comments say what a reader can observe in
// between.
package s3dest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/causality-io/causality/appliance/warehouse/lake"
)

// Addressing styles accepted in Options.Addressing.
const (
	// AddressingAuto lets the client choose: virtual-hosted style for Amazon
	// and Google endpoints, path style for everything else (MinIO, IPs).
	AddressingAuto = "auto"
	// AddressingPath sends the bucket in the path (http://host/bucket/key),
	// which S3-compatible servers without wildcard DNS need.
	AddressingPath = "path"
	// AddressingVirtual sends the bucket in the host name
	// (http://bucket.host/key), which some providers require.
	AddressingVirtual = "virtual"
)

// DefaultEndpoint is used when Options.Endpoint is empty.
const DefaultEndpoint = "s3.amazonaws.com"

// Options configures a Dest. Only Bucket is required.
type Options struct {
	// Endpoint is host or host:port without a scheme; empty means
	// DefaultEndpoint (Amazon S3).
	Endpoint string
	// AccessKey and SecretKey sign requests. Both empty takes credentials
	// from the environment the way AWS tools do (AWS_ACCESS_KEY_ID and
	// AWS_SECRET_ACCESS_KEY, MINIO_ROOT_USER/PASSWORD, ~/.aws/credentials,
	// then the instance or pod role), so a VM with an IAM role needs no
	// keys at all; one without the other is a mistake and New rejects it.
	AccessKey string
	SecretKey string
	// Region is the bucket's region. Empty lets the client ask the server
	// once per bucket (GetBucketLocation); MinIO answers us-east-1.
	Region string
	// Insecure talks plain HTTP instead of HTTPS (a MinIO on localhost or
	// inside a private network).
	Insecure bool
	// Addressing is AddressingAuto (the default when empty), AddressingPath
	// or AddressingVirtual.
	Addressing string
	// Bucket must already exist; Check reports when it does not.
	Bucket string
	// Prefix is prepended to every path with a "/" between them. Empty puts
	// the lake at the bucket's root. It must not start or end with "/".
	Prefix string
}

// Dest is an S3 bucket (under a key prefix) as a lake.Destination. It is
// safe for concurrent use.
type Dest struct {
	client *minio.Client
	// probe is the same endpoint without retries. Check uses it: a caller
	// asking "is S3 reachable?" wants the answer now, not after the ~10
	// retries with backoff that data operations get to ride out a blip.
	probe    *minio.Client
	bucket   string
	prefix   string
	endpoint string
}

var _ lake.Destination = (*Dest)(nil)

// New validates opts and builds the client. It makes no request: a bucket
// that is missing or unreachable shows up in Check (or in the first
// operation), so a process can start while S3 is briefly away.
func New(opts Options) (*Dest, error) {
	endpoint := opts.Endpoint
	if endpoint == "" {
		endpoint = DefaultEndpoint
	}
	if strings.Contains(endpoint, "://") {
		return nil, fmt.Errorf("s3 endpoint %q: give host or host:port without a scheme (set Insecure for plain HTTP)", opts.Endpoint)
	}
	if strings.ContainsAny(endpoint, "/?#") {
		return nil, fmt.Errorf("s3 endpoint %q: give host or host:port only, without a path (put the key prefix in Prefix)", opts.Endpoint)
	}
	if opts.Bucket == "" {
		return nil, errors.New("s3 bucket is required")
	}
	if err := s3utils.CheckValidBucketNameStrict(opts.Bucket); err != nil {
		return nil, fmt.Errorf("s3 bucket %q: %w", opts.Bucket, err)
	}
	if opts.Prefix != "" {
		if err := checkPath(opts.Prefix); err != nil {
			return nil, fmt.Errorf("s3 prefix %q: %w", opts.Prefix, err)
		}
	}
	if (opts.AccessKey == "") != (opts.SecretKey == "") {
		return nil, errors.New("s3 credentials: set both the access key and the secret key, or neither")
	}
	var lookup minio.BucketLookupType
	switch opts.Addressing {
	case "", AddressingAuto:
		lookup = minio.BucketLookupAuto
	case AddressingPath:
		lookup = minio.BucketLookupPath
	case AddressingVirtual:
		lookup = minio.BucketLookupDNS
	default:
		return nil, fmt.Errorf("s3 addressing %q: want %q, %q or %q", opts.Addressing, AddressingAuto, AddressingPath, AddressingVirtual)
	}

	transport, err := minio.DefaultTransport(!opts.Insecure)
	if err != nil {
		return nil, fmt.Errorf("s3 transport: %w", err)
	}
	creds := credentials.NewStaticV4(opts.AccessKey, opts.SecretKey, "")
	if opts.AccessKey == "" {
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{},
			&credentials.EnvMinio{},
			&credentials.FileAWSCredentials{},
			&credentials.IAM{},
		})
	}
	newClient := func(maxRetries int) (*minio.Client, error) {
		return minio.New(endpoint, &minio.Options{
			Creds:        creds,
			Secure:       !opts.Insecure,
			Transport:    transport, // one connection pool for both clients
			Region:       opts.Region,
			BucketLookup: lookup,
			MaxRetries:   maxRetries,
		})
	}
	client, err := newClient(0) // 0: the library's default retries
	if err != nil {
		return nil, fmt.Errorf("s3 endpoint %q: %w", endpoint, err)
	}
	probe, err := newClient(1) // 1: a single attempt
	if err != nil {
		return nil, fmt.Errorf("s3 endpoint %q: %w", endpoint, err)
	}
	return &Dest{client: client, probe: probe, bucket: opts.Bucket, prefix: opts.Prefix, endpoint: endpoint}, nil
}

// String names the bucket, prefix and endpoint, never the credentials.
func (d *Dest) String() string {
	return d.url("") + " (" + d.endpoint + ")"
}

// Put uploads data under path, replacing any object there. PutObject gets
// the exact size, so it sends one PUT for small files and a multipart
// upload for large ones (over 16 MiB); either way S3 makes the object
// visible only once the upload has completed, so readers never see part of
// a file, and a returned nil means S3 has stored it durably.
func (d *Dest) Put(ctx context.Context, path string, data []byte) error {
	key, err := d.key(path)
	if err != nil {
		return fmt.Errorf("s3 put: %w", err)
	}
	_, err = d.client.PutObject(ctx, d.bucket, key, bytes.NewReader(data), int64(len(data)),
		minio.PutObjectOptions{ContentType: "application/octet-stream"})
	if err != nil {
		return fmt.Errorf("s3 put %s: %w", d.url(key), err)
	}
	return nil
}

// Get downloads the whole object. A missing object is lake.ErrNotFound.
func (d *Dest) Get(ctx context.Context, path string) ([]byte, error) {
	key, err := d.key(path)
	if err != nil {
		return nil, fmt.Errorf("s3 get: %w", err)
	}
	obj, err := d.client.GetObject(ctx, d.bucket, key, minio.GetObjectOptions{})
	if err == nil {
		// GetObject is lazy: the request is sent, and fails, on first read.
		var data []byte
		data, err = io.ReadAll(obj)
		obj.Close()
		if err == nil {
			return data, nil
		}
	}
	if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
		return nil, fmt.Errorf("s3 get %s: %w", d.url(key), lake.ErrNotFound)
	}
	return nil, fmt.Errorf("s3 get %s: %w", d.url(key), err)
}

// List returns the visible objects under prefix, a directory-like path
// ("events/app_id=shop"; empty for the whole lake): listing "a/hour=1" does
// not return "a/hour=10/...". An object is hidden, as Hive readers hide it,
// when any path element below prefix starts with "." or "_"; elements of
// prefix itself do not count, so listing "_causality/ledger" works.
func (d *Dest) List(ctx context.Context, prefix string) ([]lake.Object, error) {
	dirKey, err := d.dirKey(prefix)
	if err != nil {
		return nil, fmt.Errorf("s3 list: %w", err)
	}
	var out []lake.Object
	for info, err := range d.listKeys(ctx, dirKey) {
		if err != nil {
			return nil, fmt.Errorf("s3 list %s: %w", d.url(dirKey), err)
		}
		if hidden(strings.TrimPrefix(info.Key, dirKey)) {
			continue
		}
		out = append(out, lake.Object{
			Path:    d.path(info.Key),
			Size:    info.Size,
			ModTime: info.LastModified,
		})
	}
	return out, nil
}

// Delete removes paths with multi-object DELETE requests (up to 1000 keys
// each). S3 reports a missing key as deleted, which matches the contract;
// any key S3 could not delete fails the call, naming the first such key.
func (d *Dest) Delete(ctx context.Context, paths ...string) error {
	keys := make([]string, 0, len(paths))
	for _, p := range paths {
		key, err := d.key(p)
		if err != nil {
			return fmt.Errorf("s3 delete: %w", err)
		}
		keys = append(keys, key)
	}
	return d.removeKeys(ctx, "s3 delete", keys)
}

// Replace uploads every file in add into dir, then deletes the names in
// remove (relative to dir, like File.Name) in one batch.
//
// S3 cannot swap several objects atomically. Uploading first means a reader
// listing dir in between sees the old and the new files together (rows
// twice) rather than neither (rows missing): duplicates are recoverable by
// running the swap again, lost rows are not. If an upload fails, nothing is
// removed, and the files already uploaded stay; calling Replace again with
// the same arguments finishes the job because Put overwrites.
func (d *Dest) Replace(ctx context.Context, dir string, add []lake.File, remove []string) error {
	// Validate everything before touching the bucket, so a bad name does
	// not leave a half-done swap behind.
	dirKey, err := d.dirKey(dir)
	if err != nil {
		return fmt.Errorf("s3 replace: %w", err)
	}
	added := make(map[string]bool, len(add))
	for _, f := range add {
		if err := checkPath(f.Name); err != nil {
			return fmt.Errorf("s3 replace in %s: add %w", d.url(dirKey), err)
		}
		added[f.Name] = true
	}
	removeKeys := make([]string, 0, len(remove))
	for _, name := range remove {
		if err := checkPath(name); err != nil {
			return fmt.Errorf("s3 replace in %s: remove %w", d.url(dirKey), err)
		}
		if added[name] {
			// Uploading then deleting it would lose the new file.
			return fmt.Errorf("s3 replace in %s: %q is both added and removed", d.url(dirKey), name)
		}
		removeKeys = append(removeKeys, dirKey+name)
	}

	for _, f := range add {
		key := dirKey + f.Name
		_, err := d.client.PutObject(ctx, d.bucket, key, bytes.NewReader(f.Data), int64(len(f.Data)),
			minio.PutObjectOptions{ContentType: "application/octet-stream"})
		if err != nil {
			return fmt.Errorf("s3 replace: put %s: %w", d.url(key), err)
		}
	}
	return d.removeKeys(ctx, "s3 replace: delete", removeKeys)
}

// DeletePrefix removes every object under prefix, hidden ones included
// (a partition's leftover temporary files go with it). It lists first, then
// deletes in batches; S3 has no directories, so the partition is gone once
// its last object is. A reader listing meanwhile may see part of it. The
// root of the lake is refused: dropping everything is never retention's job,
// and an empty prefix reaching here is a bug.
func (d *Dest) DeletePrefix(ctx context.Context, prefix string) error {
	if strings.Trim(prefix, "/") == "" {
		return errors.New("s3 delete prefix: refusing to delete the whole lake (empty prefix)")
	}
	dirKey, err := d.dirKey(prefix)
	if err != nil {
		return fmt.Errorf("s3 delete prefix: %w", err)
	}
	// Collect before deleting rather than deleting while paginating, so
	// the listing is never read across its own deletions.
	var keys []string
	for info, err := range d.listKeys(ctx, dirKey) {
		if err != nil {
			return fmt.Errorf("s3 delete prefix %s: list: %w", d.url(dirKey), err)
		}
		keys = append(keys, info.Key)
	}
	return d.removeKeys(ctx, "s3 delete prefix "+d.url(dirKey)+":", keys)
}

// Check asks S3 whether the bucket exists, with a single attempt bounded by
// ctx. A missing bucket is an error that names it: retrying will not help
// until someone creates it.
func (d *Dest) Check(ctx context.Context) error {
	ok, err := d.probe.BucketExists(ctx, d.bucket)
	if err != nil {
		return fmt.Errorf("s3 check %s: %w", d, err)
	}
	if !ok {
		return fmt.Errorf("s3 check %s: bucket %q does not exist (create it first)", d, d.bucket)
	}
	return nil
}

// listKeys yields every object under dirKey, hidden ones included, and
// stops at the first error. It uses the iterator form of listing, which
// runs no goroutine, so stopping early leaks nothing.
func (d *Dest) listKeys(ctx context.Context, dirKey string) iter.Seq2[minio.ObjectInfo, error] {
	return func(yield func(minio.ObjectInfo, error) bool) {
		opts := minio.ListObjectsOptions{Prefix: dirKey, Recursive: true}
		for info := range d.client.ListObjectsIter(ctx, d.bucket, opts) {
			if info.Err != nil {
				yield(info, info.Err)
				return
			}
			// A key ending in "/" is a folder marker some tools create;
			// it holds no data and has no lake path.
			if strings.HasSuffix(info.Key, "/") {
				continue
			}
			if !yield(info, nil) {
				return
			}
		}
	}
}

// removeKeys deletes keys in multi-object requests and reports the first
// key that failed (with how many failed in all).
func (d *Dest) removeKeys(ctx context.Context, op string, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	objects := func(yield func(minio.ObjectInfo) bool) {
		for _, k := range keys {
			if !yield(minio.ObjectInfo{Key: k}) {
				return
			}
		}
	}
	results, err := d.client.RemoveObjectsWithIter(ctx, d.bucket, objects, minio.RemoveObjectsOptions{})
	if err != nil {
		return fmt.Errorf("%s %s: %w", op, d.url(""), err)
	}
	var first error
	failed := 0
	for r := range results {
		if r.Err == nil {
			continue
		}
		failed++
		if first == nil {
			first = fmt.Errorf("%s %s: %w", op, d.url(r.ObjectName), r.Err)
		}
	}
	if failed > 1 {
		return fmt.Errorf("%w (%d more failed)", first, failed-1)
	}
	return first
}

// key maps a lake path to its object key.
func (d *Dest) key(path string) (string, error) {
	if err := checkPath(path); err != nil {
		return "", err
	}
	if d.prefix == "" {
		return path, nil
	}
	return d.prefix + "/" + path, nil
}

// dirKey maps a directory-like lake path ("" for the root) to the key
// prefix that lists it, ending in "/" (or "" for the root of a bucket
// without Prefix). The trailing "/" is what keeps "hour=1" from matching
// "hour=10". A trailing "/" on dir is accepted.
func (d *Dest) dirKey(dir string) (string, error) {
	dir = strings.TrimSuffix(dir, "/")
	if dir != "" {
		if err := checkPath(dir); err != nil {
			return "", err
		}
		dir += "/"
	}
	if d.prefix == "" {
		return dir, nil
	}
	return d.prefix + "/" + dir, nil
}

// path maps an object key back to its lake path.
func (d *Dest) path(key string) string {
	if d.prefix == "" {
		return key
	}
	return strings.TrimPrefix(key, d.prefix+"/")
}

// url names a key for errors and logs.
func (d *Dest) url(key string) string {
	if key == "" {
		key = d.prefix
	}
	if key == "" {
		return "s3://" + d.bucket
	}
	return "s3://" + d.bucket + "/" + key
}

// checkPath rejects paths that a local directory and S3 would treat
// differently ("a//b", "./a", "/a", "a/../b"), so both destinations hold the
// same lake for the same calls.
func checkPath(p string) error {
	if p == "" {
		return errors.New("empty path")
	}
	for _, elem := range strings.Split(p, "/") {
		switch elem {
		case "":
			return fmt.Errorf("path %q: empty element (leading, trailing or double slash)", p)
		case ".", "..":
			return fmt.Errorf("path %q: %q element", p, elem)
		}
	}
	if strings.ContainsRune(p, 0) {
		return fmt.Errorf("path %q: NUL byte", p)
	}
	return nil
}

// hidden reports whether a path relative to the listed prefix has an
// element starting with "." or "_" (Hive's and Spark's hidden files:
// uploads in progress, _SUCCESS markers, _causality bookkeeping).
func hidden(rel string) bool {
	for _, elem := range strings.Split(rel, "/") {
		if strings.HasPrefix(elem, ".") || strings.HasPrefix(elem, "_") {
			return true
		}
	}
	return false
}
