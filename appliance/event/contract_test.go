package event

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"

	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
)

// TestProtoFilesMatchGeneratedCode compiles proto/ with protoc and compares
// each file's descriptor with the one compiled into the Go code:
//   - for causality/v1, a difference means gen/ is stale (run make generate);
//   - for buf/validate/validate.proto, a difference means the vendored file
//     no longer matches the protovalidate module in go.mod, whose Go code is
//     what runs.
//
// It is skipped where protoc is not installed.
func TestProtoFilesMatchGeneratedCode(t *testing.T) {
	protoc, err := exec.LookPath("protoc")
	if err != nil {
		t.Skip("protoc not installed")
	}
	root := filepath.Join("..", "..", "proto")
	files := []protoreflect.FileDescriptor{
		validate.File_buf_validate_validate_proto,
		causalityv1.File_causality_v1_device_proto,
		causalityv1.File_causality_v1_user_proto,
		causalityv1.File_causality_v1_screen_proto,
		causalityv1.File_causality_v1_interaction_proto,
		causalityv1.File_causality_v1_commerce_proto,
		causalityv1.File_causality_v1_system_proto,
		causalityv1.File_causality_v1_custom_proto,
		causalityv1.File_causality_v1_event_proto,
		causalityv1.File_causality_v1_ingest_proto,
	}
	if entries, err := filepath.Glob(filepath.Join(root, "causality", "v1", "*.proto")); err != nil || len(entries) != len(files)-1 {
		t.Fatalf("proto/causality/v1 holds %d files, the test knows %d: add the new one here", len(entries), len(files)-1)
	}
	out := filepath.Join(t.TempDir(), "set.pb")
	args := []string{"-I", root, "-o", out}
	for _, f := range files {
		args = append(args, f.Path())
	}
	if b, err := exec.Command(protoc, args...).CombinedOutput(); err != nil {
		t.Fatalf("protoc: %v\n%s", err, b)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(raw, &set); err != nil {
		t.Fatal(err)
	}
	compiled := map[string]*descriptorpb.FileDescriptorProto{}
	for _, f := range set.GetFile() {
		clearJSONNames(f)
		compiled[f.GetName()] = f
	}
	for _, f := range files {
		want := protodesc.ToFileDescriptorProto(f)
		clearJSONNames(want)
		if !proto.Equal(compiled[f.Path()], want) {
			t.Errorf("%s: compiled from proto/ differs from the Go code (stale gen/ or vendored file)", f.Path())
		}
	}
}

// clearJSONNames drops json_name, which protoc leaves out of -o output while
// the Go runtime fills it in.
func clearJSONNames(f *descriptorpb.FileDescriptorProto) {
	var walk func(ms []*descriptorpb.DescriptorProto)
	walk = func(ms []*descriptorpb.DescriptorProto) {
		for _, m := range ms {
			for _, fd := range m.GetField() {
				fd.JsonName = nil
			}
			for _, fd := range m.GetExtension() {
				fd.JsonName = nil
			}
			walk(m.GetNestedType())
		}
	}
	walk(f.GetMessageType())
	for _, fd := range f.GetExtension() {
		fd.JsonName = nil
	}
}
