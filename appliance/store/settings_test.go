package store

import (
	"testing"

	"github.com/causality-io/causality/appliance/pgembed/pgtest"
)

func TestSettings(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t)
	ctx := pgtest.Context(t)

	type step struct {
		name      string
		do        func() (bool, error) // returns SetSettingIfAbsent's answer; ignored for SetSetting
		wantWrote bool
		key       string
		wantValue string
		wantOK    bool
	}
	set := func(key, value string) func() (bool, error) {
		return func() (bool, error) { return false, s.SetSetting(ctx, key, value) }
	}
	setIfAbsent := func(key, value string) func() (bool, error) {
		return func() (bool, error) { return s.SetSettingIfAbsent(ctx, key, value) }
	}
	steps := []step{
		{name: "absent", key: "colour", wantOK: false},
		{name: "set", do: set("colour", "red"), key: "colour", wantValue: "red", wantOK: true},
		{name: "overwrite", do: set("colour", "blue"), key: "colour", wantValue: "blue", wantOK: true},
		{name: "empty value is a value", do: set("empty", ""), key: "empty", wantValue: "", wantOK: true},
		{name: "if absent, first time", do: setIfAbsent(SettingAdminPasswordHash, "h1"), wantWrote: true, key: SettingAdminPasswordHash, wantValue: "h1", wantOK: true},
		{name: "if absent, second time keeps the first", do: setIfAbsent(SettingAdminPasswordHash, "h2"), wantWrote: false, key: SettingAdminPasswordHash, wantValue: "h1", wantOK: true},
		{name: "if absent over SetSetting", do: setIfAbsent("colour", "green"), wantWrote: false, key: "colour", wantValue: "blue", wantOK: true},
		{name: "other keys untouched", key: "size", wantOK: false},
	}
	for _, st := range steps {
		if st.do != nil {
			wrote, err := st.do()
			if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			if wrote != st.wantWrote {
				t.Errorf("%s: wrote = %v, want %v", st.name, wrote, st.wantWrote)
			}
		}
		value, ok, err := s.Setting(ctx, st.key)
		if err != nil {
			t.Fatalf("%s: Setting(%s): %v", st.name, st.key, err)
		}
		if value != st.wantValue || ok != st.wantOK {
			t.Errorf("%s: Setting(%s) = %q, %v; want %q, %v", st.name, st.key, value, ok, st.wantValue, st.wantOK)
		}
	}
}
