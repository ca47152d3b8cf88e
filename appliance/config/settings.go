package config

import (
	"flag"
	"strings"
)

// MinAdminPasswordLength is the shortest admin password accepted, by --admin-password and
// by the admin UI's settings page alike.
const MinAdminPasswordLength = 8

// Where a setting's value came from.
const (
	SourceDefault = "default"
	SourceFlag    = "command line"
	SourceEnv     = "environment"
)

// Setting is one flag of `causality serve` as Parse read it.
type Setting struct {
	Flag   string // the flag's name, without the dashes
	Env    string // the environment variable that sets it
	Value  string // as given, or the default; secrets masked; "" when empty
	Source string // SourceDefault, SourceFlag or SourceEnv
	Usage  string
}

// Effective is the configuration in effect as a person reads it, secrets masked: the
// summary --check-config prints and every setting with where it came from.
type Effective struct {
	Summary  []SummaryLine
	Settings []Setting
}

// Effective describes the configuration for the admin UI's settings page.
func (c *Config) Effective() Effective {
	return Effective{Summary: c.Summary(), Settings: c.Settings()}
}

// Settings lists every flag of `causality serve` but --check-config, by name, with its
// value as Parse read it and where that came from. Passwords, secrets and tokens are
// masked, in URLs too. A Config that Parse did not make has none.
func (c *Config) Settings() []Setting {
	return append([]Setting(nil), c.settings...)
}

func settingsOf(fs *flag.FlagSet, fromEnv map[string]bool) []Setting {
	var out []Setting
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == "check-config" { // a command, not a setting
			return
		}
		s := Setting{Flag: f.Name, Env: EnvName(f.Name), Value: maskSetting(f.Name, f.Value.String()), Source: SourceDefault, Usage: f.Usage}
		if env, set := fromEnv[f.Name]; set {
			s.Source = SourceFlag
			if env {
				s.Source = SourceEnv
			}
		}
		out = append(out, s)
	})
	return out
}

// maskSetting hides a secret value: whole for a flag named for a password, secret or
// token, the credentials for a URL, the middle of an access key id.
func maskSetting(name, value string) string {
	switch {
	case value == "":
		return ""
	case isSecretName(name):
		return "(set, hidden)"
	case strings.HasSuffix(name, "-url"):
		return maskURLs(value)
	case strings.HasSuffix(name, "access-key"):
		return maskMiddle(value)
	}
	return value
}

func isSecretName(name string) bool {
	name = strings.ToLower(name)
	return strings.Contains(name, "password") || strings.Contains(name, "secret") || strings.Contains(name, "token")
}
