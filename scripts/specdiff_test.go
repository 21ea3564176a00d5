// Package scripts_test tests the scripts beside it, each run as a user runs
// it, in a git repository of its own.
package scripts_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	gojam "github.com/go-jam/go-jam"
)

// gitEnv keeps the tests' commits away from the user's git configuration.
var gitEnv = []string{
	"GIT_CONFIG_GLOBAL=" + os.DevNull, "GIT_CONFIG_NOSYSTEM=1",
	"GIT_AUTHOR_NAME=spec-diff test", "GIT_AUTHOR_EMAIL=test@example.com",
	"GIT_COMMITTER_NAME=spec-diff test", "GIT_COMMITTER_EMAIL=test@example.com",
}

// repo is a git repository holding scripts/spec-diff and, usually,
// openapi.yaml, as this one does.
type repo struct {
	t   *testing.T
	dir string
}

func newRepo(t *testing.T) *repo {
	t.Helper()
	script, err := os.ReadFile("spec-diff")
	if err != nil {
		t.Fatal(err)
	}
	r := &repo{t: t, dir: t.TempDir()}
	r.git("init", "-q", "-b", "main")
	r.write("scripts/spec-diff", string(script))
	if err := os.Chmod(filepath.Join(r.dir, "scripts/spec-diff"), 0o755); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *repo) write(name, content string) {
	r.t.Helper()
	path := filepath.Join(r.dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

func (r *repo) git(args ...string) {
	r.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = r.dir
	cmd.Env = append(os.Environ(), gitEnv...)
	if out, err := cmd.CombinedOutput(); err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (r *repo) commit(msg string) {
	r.t.Helper()
	r.git("add", "-A")
	r.git("commit", "-q", "--allow-empty", "-m", msg)
}

// specDiff runs the script and returns what it printed, stdout and stderr
// together, and its exit status.
func (r *repo) specDiff(args ...string) (string, int) {
	r.t.Helper()
	cmd := exec.Command(filepath.Join(r.dir, "scripts/spec-diff"), args...)
	cmd.Dir = r.dir
	cmd.Env = append(os.Environ(), gitEnv...)
	out, err := cmd.CombinedOutput()
	if exit, ok := errors.AsType[*exec.ExitError](err); ok {
		return string(out), exit.ExitCode()
	}
	if err != nil {
		r.t.Fatalf("spec-diff %v: %v", args, err)
	}
	return string(out), 0
}

// edit replaces old, which must be in spec, with new.
func edit(t *testing.T, spec, old, new string) string {
	t.Helper()
	if !strings.Contains(spec, old) {
		t.Fatalf("openapi.yaml has no %q to edit", old)
	}
	return strings.Replace(spec, old, new, 1)
}

var versionLine = regexp.MustCompile(`(?m)^  version: .*$`)

// setVersion sets info.version, the only top-level member of info with that
// name in openapi.yaml.
func setVersion(t *testing.T, spec, version string) string {
	t.Helper()
	if n := len(versionLine.FindAllString(spec, -1)); n != 1 {
		t.Fatalf("openapi.yaml has %d lines %q, want 1", n, versionLine)
	}
	return versionLine.ReplaceAllString(spec, "  version: "+version)
}

// TestSpecDiff runs scripts/spec-diff on edits of openapi.yaml, breaking
// and not, committed (compared with HEAD~1, as CI does) or not (with HEAD),
// and on what can go wrong around it.
func TestSpecDiff(t *testing.T) {
	spec := string(gojam.OpenAPI)
	doc, err := openapi3.NewLoader().LoadFromData(gojam.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	var majorN, minorN int
	if _, err := fmt.Sscanf(doc.Info.Version, "%d.%d.", &majorN, &minorN); err != nil {
		t.Fatalf("info.version = %q, want a semantic version: %v", doc.Info.Version, err)
	}
	major := strconv.Itoa(majorN)
	nextMinor := fmt.Sprintf("%d.%d.0", majorN, minorN+1)
	nextMajor := fmt.Sprintf("%d.0.0", majorN+1)

	// JAM's refresh answers how long the new ID token lasts.
	expiresIn := func(t *testing.T, s string) string {
		idToken := "        idToken:\n          type: string\n          description: The new ID token.\n"
		return edit(t, s, idToken, idToken+
			"        expiresIn:\n          type: integer\n          description: Seconds until the ID token expires.\n")
	}
	// JAM wants to know which of the app's redirect URLs to send the user to.
	redirectURL := func(t *testing.T, s string) string {
		return edit(t, s, "      required: [email]\n      properties:\n",
			"      required: [email, redirectUrl]\n      properties:\n        redirectUrl:\n          type: string\n")
	}

	tests := []struct {
		name string
		// edit changes the committed openapi.yaml; nil leaves it be.
		edit func(t *testing.T, spec string) string
		// commit commits the edit, so that the script's default, HEAD~1,
		// sees it; otherwise the edit stays in the working tree.
		commit bool
		args   []string
		status int
		want   []string // in the output, in this order
	}{
		{
			name: "no change", args: []string{"HEAD"}, status: 0,
			want: []string{"No changes detected", "spec-diff: no breaking changes\n"},
		},
		{
			name: "optional response property added",
			edit: expiresIn, args: []string{"HEAD"}, status: 0,
			want: []string{
				"[response-optional-property-added]", "POST /{appId}/refresh", "`expiresIn`",
				"spec-diff: no breaking changes\n",
			},
		},
		{
			name: "request property removed",
			edit: func(t *testing.T, s string) string {
				return edit(t, s, "      required: [email]\n      properties:\n        email:\n", "      properties:\n        emailAddress:\n")
			},
			args: []string{"HEAD"}, status: 0,
			want: []string{
				"[request-property-removed]", "POST /{appId}/authenticate", "`email`",
				"spec-diff: no breaking changes, but read the warnings above",
			},
		},
		{
			name: "operation added, committed",
			edit: func(t *testing.T, s string) string {
				return edit(t, s, "\ncomponents:\n", `
  /{appId}/user/sessions:
    parameters:
      - $ref: '#/components/parameters/AppId'
    get:
      operationId: countSessions
      summary: Count the user's sessions
      responses:
        '200':
          description: The count.
components:
`)
			},
			commit: true, status: 0,
			want: []string{"HEAD~1", "[endpoint-added]", "GET /{appId}/user/sessions", "spec-diff: no breaking changes\n"},
		},
		{
			name: "operation removed, committed",
			edit: func(t *testing.T, s string) string {
				start := strings.Index(s, "\n  /{appId}/user/refresh:\n")
				end := strings.Index(s, "\ncomponents:\n")
				if start < 0 || end < start {
					t.Fatal("openapi.yaml has no /{appId}/user/refresh path before components")
				}
				return s[:start] + s[end:]
			},
			commit: true, status: 1,
			want: []string{
				"[api-path-removed-without-deprecation]", "DELETE /{appId}/user/refresh",
				"breaking changes, but info.version's major part is still " + major,
			},
		},
		{
			name: "required request property added",
			edit: redirectURL, args: []string{"HEAD"}, status: 1,
			want: []string{
				"[new-required-request-property]", "POST /{appId}/authenticate", "`redirectUrl`",
				"== breaking changes", "[new-required-request-property]",
				"major part is still " + major, "clients generated from openapi.yaml at HEAD may fail",
			},
		},
		{
			name: "required request property added, minor version bumped",
			edit: func(t *testing.T, s string) string { return setVersion(t, redirectURL(t, s), nextMinor) },
			args: []string{"HEAD"}, status: 1,
			want: []string{"[new-required-request-property]", "-> " + nextMinor + "):"},
		},
		{
			name: "required request property added, major version bumped",
			edit: func(t *testing.T, s string) string { return setVersion(t, redirectURL(t, s), nextMajor) },
			args: []string{"HEAD"}, status: 0,
			want: []string{
				"(" + doc.Info.Version + ") -> working tree (" + nextMajor + ")",
				"[new-required-request-property]",
				"spec-diff: breaking changes, allowed by the new major version",
			},
		},
		{
			name: "committed edit, REF named",
			edit: expiresIn, commit: true, args: []string{"HEAD~1"}, status: 0,
			want: []string{"[response-optional-property-added]", "spec-diff: no breaking changes\n"},
		},
		{
			name: "working tree spec not YAML",
			edit: func(_ *testing.T, s string) string { return s + "x-unclosed: [\n" },
			args: []string{"HEAD"}, status: 2,
			want: []string{"failed to load revision spec", "spec-diff: oasdiff changelog failed"},
		},
		{
			name: "no info.version",
			edit: func(t *testing.T, s string) string { return versionLine.ReplaceAllString(s, "") },
			args: []string{"HEAD"}, status: 2,
			want: []string{"spec-diff: cannot read info.version of openapi.yaml in the working tree"},
		},
		{
			name: "not a commit", args: []string{"no-such-ref"}, status: 2,
			want: []string{"spec-diff: no-such-ref is not a commit"},
		},
		{
			name: "two refs", args: []string{"HEAD", "HEAD"}, status: 2,
			want: []string{"spec-diff: want at most one REF, got 2"},
		},
		{
			name: "unknown option", args: []string{"--fail-on", "WARN"}, status: 2,
			want: []string{"spec-diff: unknown option --fail-on"},
		},
		{
			name: "help", args: []string{"--help"}, status: 0,
			want: []string{"Usage: scripts/spec-diff [REF]", "Exit status: 0"},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The first run builds oasdiff; the others share the build.
			if i > 0 {
				t.Parallel()
			}
			r := newRepo(t)
			r.write("openapi.yaml", spec)
			r.commit("the contract")
			if tt.edit != nil {
				r.write("openapi.yaml", tt.edit(t, spec))
			}
			if tt.commit {
				r.commit("the change")
			}
			out, status := r.specDiff(tt.args...)
			if status != tt.status {
				t.Errorf("spec-diff %s = status %d, want %d; output:\n%s", strings.Join(tt.args, " "), status, tt.status, out)
			}
			assertInOrder(t, out, tt.want)
		})
	}
}

// TestSpecDiffNothingToCompare: with no previous commit, or none with
// openapi.yaml, there is nothing a change could break.
func TestSpecDiffNothingToCompare(t *testing.T) {
	spec := string(gojam.OpenAPI)
	tests := []struct {
		name   string
		setup  func(r *repo)
		args   []string
		status int
		want   string
	}{
		{"first commit", func(r *repo) {
			r.write("openapi.yaml", spec)
			r.commit("the contract")
		}, nil, 0, "spec-diff: no previous commit to compare openapi.yaml with; nothing to check"},
		{"first commit, HEAD~1 named", func(r *repo) {
			r.write("openapi.yaml", spec)
			r.commit("the contract")
		}, []string{"HEAD~1"}, 2, "spec-diff: HEAD~1 is not a commit"},
		{"spec added in this commit", func(r *repo) {
			r.commit("the script")
			r.write("openapi.yaml", spec)
			r.commit("the contract")
		}, nil, 0, "spec-diff: HEAD~1 has no openapi.yaml; nothing to check"},
		{"no spec in the working tree", func(r *repo) {
			r.write("openapi.yaml", spec)
			r.commit("the contract")
			r.git("rm", "-q", "openapi.yaml")
		}, []string{"HEAD"}, 2, "spec-diff: no openapi.yaml in"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRepo(t)
			tt.setup(r)
			out, status := r.specDiff(tt.args...)
			if status != tt.status || !strings.Contains(out, tt.want) {
				t.Errorf("spec-diff %s = status %d, output:\n%s\nwant status %d and %q", strings.Join(tt.args, " "), status, out, tt.status, tt.want)
			}
		})
	}
}

// TestSpecDiffNotInGit: the script says so rather than failing obscurely.
func TestSpecDiffNotInGit(t *testing.T) {
	dir := t.TempDir()
	script, err := os.ReadFile("spec-diff")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "scripts"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "scripts/spec-diff"), script, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(dir, "scripts/spec-diff"))
	cmd.Env = append(os.Environ(), "GIT_CEILING_DIRECTORIES="+filepath.Dir(dir))
	out, err := cmd.CombinedOutput()
	exit, ok := errors.AsType[*exec.ExitError](err)
	if !ok || exit.ExitCode() != 2 || !strings.Contains(string(out), "is not in a git work tree") {
		t.Errorf("spec-diff outside git = %v, output %q; want status 2, not in a git work tree", err, out)
	}
}

// assertInOrder checks that out holds each of want, one after the other.
func assertInOrder(t *testing.T, out string, want []string) {
	t.Helper()
	rest := out
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Errorf("output lacks %q (after what came before it); output:\n%s", w, out)
			return
		}
		rest = rest[i+len(w):]
	}
}
