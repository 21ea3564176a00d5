// Package docs_test checks that changing-the-api.md still holds, by doing
// what it says to a copy of the repository.
package docs_test

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var runGuide = flag.Bool("guide", false, "run every command of changing-the-api.md in a copy of the repository (about a minute; .ci/run does)")

const guideFile = "changing-the-api.md"

// commands are the guide's shell commands in the order it gives them, with
// the exit status each must have. TestGuideCommands keeps the two in step.
var commands = []struct {
	cmd    string
	status int
	silent bool // must print nothing
}{
	{cmd: "scripts/spec-diff HEAD"},
	{cmd: "go generate ./..."},
	{cmd: "go build ./...", status: 1}, // jamtest lacks the new method
	{cmd: "go build ./..."},
	{cmd: "go vet ./..."},
	{cmd: "go test -race -run 'TestSpec|TestOperations|TestRequests|TestResponses|TestCountSessions|TestEmptyArguments|TestTransportFailures|Example' . ./jam/..."},
	{cmd: "git add -A"},
	{cmd: `git commit -q -m "countSessions and expiresIn, from JAM's API 1.1.0"`},
	{cmd: "scripts/spec-diff"},
	{cmd: "rm -rf generated"},
	{cmd: "go generate ./..."},
	{cmd: "git status --porcelain", silent: true},
	{cmd: "scripts/spec-diff HEAD", status: 1}, // a breaking change
	{cmd: "go generate ./..."},
	{cmd: "go build ./..."}, // the compiler does not see it
	{cmd: "go test -run TestRequests ./jam", status: 1},
	{cmd: "scripts/spec-diff HEAD"}, // the major version is raised
}

// A block is a fenced code block of the guide.
type block struct {
	lang string // diff: applied; sh: run, a line a command; text: what the command before printed
	line int    // of the opening fence, for messages
	body string
}

func readGuide(t *testing.T) []block {
	t.Helper()
	f, err := os.Open(guideFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var blocks []block
	var cur *block
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && strings.HasPrefix(line, "```"):
			cur = &block{lang: strings.TrimPrefix(line, "```"), line: n}
		case cur != nil && line == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.body += line + "\n"
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Fatalf("%s:%d: code block not closed", guideFile, cur.line)
	}
	for i, b := range blocks {
		switch b.lang {
		case "diff", "sh":
		case "text":
			if i == 0 || blocks[i-1].lang != "sh" {
				t.Errorf("%s:%d: a text block shows what the command before it printed, but no sh block comes before it", guideFile, b.line)
			}
		default:
			// Code the check would not run is code that can rot.
			t.Errorf("%s:%d: code block of language %q, want diff, sh or text", guideFile, b.line, b.lang)
		}
	}
	return blocks
}

func shellCommands(b block) []string {
	var cmds []string
	for line := range strings.Lines(b.body) {
		if line = strings.TrimSpace(line); line != "" {
			cmds = append(cmds, line)
		}
	}
	return cmds
}

// TestGuideCommands checks that the guide's commands are those this file
// expects, in the same order.
func TestGuideCommands(t *testing.T) {
	var got []string
	for _, b := range readGuide(t) {
		if b.lang == "sh" {
			got = append(got, shellCommands(b)...)
		}
	}
	for i := range max(len(got), len(commands)) {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(commands) {
			w = commands[i].cmd
		}
		if g != w {
			t.Errorf("command %d of %s = %q, want %q", i+1, guideFile, g, w)
		}
	}
}

// TestGuideDiffsApply applies the guide's diffs, in order, to a copy of the
// repository: a quick check that they still fit the code, without the
// builds TestGuide runs.
func TestGuideDiffsApply(t *testing.T) {
	dir := copyRepo(t)
	for _, b := range readGuide(t) {
		if b.lang == "diff" {
			apply(t, dir, b)
		}
	}
}

// TestGuide does what the guide says, in a copy of the repository: applies
// each diff and runs each command, checking its exit status and that it
// prints what the guide shows.
func TestGuide(t *testing.T) {
	if !*runGuide {
		t.Skip("builds and tests a copy of the repository; run with -guide, as .ci/run does")
	}
	dir := copyRepo(t)
	blocks := readGuide(t)
	next := 0               // into commands
	var lastCmd, out string // the command run last, and what it printed
	for _, b := range blocks {
		switch b.lang {
		case "diff":
			apply(t, dir, b)
		case "sh":
			for _, cmd := range shellCommands(b) {
				if next >= len(commands) || commands[next].cmd != cmd {
					t.Fatalf("%s:%d: command %q is not the next in commands; TestGuideCommands says more", guideFile, b.line, cmd)
				}
				want := commands[next]
				next++
				var status int
				start := time.Now()
				lastCmd = cmd
				out, status = run(t, dir, cmd)
				t.Logf("%s: exit status %d, %v", cmd, status, time.Since(start).Round(100*time.Millisecond))
				if status != want.status {
					t.Fatalf("%s:%d: %s = exit status %d, want %d; output:\n%s", guideFile, b.line, cmd, status, want.status, out)
				}
				if want.silent && out != "" {
					t.Errorf("%s:%d: %s printed %q, want nothing", guideFile, b.line, cmd, out)
				}
			}
		case "text":
			if err := matchOutput(b.body, out); err != nil {
				t.Errorf("%s:%d: the output shown is not what %s printed: %v; it printed:\n%s", guideFile, b.line, lastCmd, err, out)
			}
		}
	}
	if next != len(commands) {
		t.Errorf("ran %d commands, want %d", next, len(commands))
	}
}

// gitEnv keeps the copy's commits away from the user's git configuration.
var gitEnv = []string{
	"GIT_CONFIG_GLOBAL=" + os.DevNull, "GIT_CONFIG_NOSYSTEM=1",
	"GIT_AUTHOR_NAME=guide test", "GIT_AUTHOR_EMAIL=test@example.com",
	"GIT_COMMITTER_NAME=guide test", "GIT_COMMITTER_EMAIL=test@example.com",
}

// copyRepo copies the files git tracks, as they are in the work tree, into a
// new repository with one commit, and returns its directory.
func copyRepo(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	list, err := exec.Command("git", "-C", root, "ls-files", "-z").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	dir := t.TempDir()
	for name := range strings.SplitSeq(strings.TrimSuffix(string(list), "\x00"), "\x00") {
		src := filepath.Join(root, name)
		info, err := os.Lstat(src)
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted, not yet committed
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, info.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{
		{"init", "-q", "-b", "main"},
		{"add", "-A"},
		{"commit", "-q", "-m", "the repository as it is"},
	} {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), gitEnv...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return dir
}

func apply(t *testing.T, dir string, b block) {
	t.Helper()
	cmd := exec.Command("git", "apply", "-")
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(b.body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s:%d: the diff does not apply (%v); the code it changes has moved, so update the guide:\n%s", guideFile, b.line, err, out)
	}
}

// run runs a command line with bash in dir and returns what it printed,
// stdout and stderr together, and its exit status.
func run(t *testing.T, dir, line string) (string, int) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "bash", "-c", line)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), gitEnv...)
	out, err := cmd.CombinedOutput()
	if exit, ok := errors.AsType[*exec.ExitError](err); ok {
		return string(out), exit.ExitCode()
	}
	if err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	return string(out), 0
}

// matchOutput reports whether out has the lines of shown, in order, not
// necessarily next to each other. Runs of spaces and tabs count as one
// space, and … matches anything; a line that is only … is skipped.
func matchOutput(shown, out string) error {
	var lines []string
	for l := range strings.Lines(out) {
		lines = append(lines, strings.Join(strings.Fields(l), " "))
	}
	at := 0
	for want := range strings.Lines(shown) {
		want = strings.Join(strings.Fields(want), " ")
		if want == "" || want == "…" {
			continue
		}
		parts := strings.Split(want, "…")
		for i, p := range parts {
			parts[i] = regexp.QuoteMeta(p)
		}
		re := regexp.MustCompile("^" + strings.Join(parts, ".*") + "$")
		for at < len(lines) && !re.MatchString(lines[at]) {
			at++
		}
		if at == len(lines) {
			return fmt.Errorf("no line %q after the lines before it", want)
		}
		at++
	}
	return nil
}

func TestMatchOutput(t *testing.T) {
	out := "spec-diff: openapi.yaml at HEAD (1.0.0) -> working tree (1.1.0)\n\n" +
		"info\t[endpoint-added] at openapi.yaml\n\tin API GET /{appId}/user/sessions\n\t\tendpoint added\n" +
		"spec-diff: no breaking changes\n"
	tests := []struct {
		shown string
		ok    bool
	}{
		{"", true},
		{"spec-diff: no breaking changes\n", true},
		{"info [endpoint-added] at openapi.yaml\n    in API GET /{appId}/user/sessions\n", true}, // spaces for tabs
		{"spec-diff: openapi.yaml at HEAD (…) -> working tree (1.1.0)\n…\nendpoint added\n", true},
		{"…: no breaking changes\n", true},
		{"spec-diff: no breaking changes\nendpoint added\n", false}, // out of order
		{"endpoint added\nendpoint added\n", false},                 // a line matches once
		{"spec-diff: breaking changes\n", false},
		{"no breaking changes\n", false},                                          // a whole line, not part of one
		{"spec-diff: openapi.yaml at HEAD (.*) -> working tree (1.1.0)\n", false}, // no regexp but …
	}
	for _, tt := range tests {
		if err := matchOutput(tt.shown, out); (err == nil) != tt.ok {
			t.Errorf("matchOutput(%q) = %v, want ok %v", tt.shown, err, tt.ok)
		}
	}
}
