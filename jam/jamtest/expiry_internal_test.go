package jamtest

import (
	"fmt"
	"log/slog"
	"testing"
	"time"
)

// TestMagicLinkPurge checks that sending a magic link forgets the expired
// ones, and only those, however the clock moved while they were sent.
func TestMagicLinkPurge(t *testing.T) {
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := NewClock(t0)
	srv, err := Start(WithLogger(slog.New(slog.DiscardHandler)), WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	live := func() (links, queued int) {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		return len(srv.links), len(srv.expiries)
	}
	code := func(email string) string {
		link, _ := srv.MagicLink(email)
		return link[len(srv.URL+magicLinkPath):]
	}

	steps := []struct {
		name        string
		at          time.Duration // since t0
		send        []string
		use         string
		links, heap int // after the step
	}{
		{"three at once", 0, []string{"a@example.com", "b@example.com", "c@example.com"}, "", 3, 3},
		{"one used", time.Minute, nil, "b@example.com", 2, 3},
		{"later, before expiry", 10 * time.Minute, []string{"d@example.com"}, "", 3, 4},
		{"the clock goes back", 5 * time.Minute, []string{"e@example.com"}, "", 4, 5},
		{"at the first expiry", MagicLinkTTL, []string{"f@example.com"}, "", 3, 3},
		{"past e's, before d's", 5*time.Minute + MagicLinkTTL, []string{"g@example.com"}, "", 3, 3},
		{"past every one", 2 * time.Hour, []string{"h@example.com"}, "", 1, 1},
	}
	for _, st := range steps {
		clock.Set(t0.Add(st.at))
		for _, email := range st.send {
			srv.sendMagicLink(email)
		}
		if st.use != "" {
			if _, ok := srv.useMagicLink(code(st.use)); !ok {
				t.Fatalf("%s: useMagicLink(%s's link) = false, want true", st.name, st.use)
			}
		}
		if links, queued := live(); links != st.links || queued != st.heap {
			t.Errorf("%s: %d links, %d queued; want %d and %d", st.name, links, queued, st.links, st.heap)
		}
	}
	// What is left is what has not expired.
	clock.Set(t0.Add(2 * time.Hour))
	if _, ok := srv.useMagicLink(code("h@example.com")); !ok {
		t.Error("useMagicLink(the link not expired) = false, want true")
	}
}

// BenchmarkSendMagicLink sends links to a server holding many that are
// not expired: the cost of one must not grow with their number.
func BenchmarkSendMagicLink(b *testing.B) {
	for _, held := range []int{100, 10000} {
		b.Run(fmt.Sprint(held), func(b *testing.B) {
			srv, err := Start(WithLogger(slog.New(slog.DiscardHandler)))
			if err != nil {
				b.Fatal(err)
			}
			defer srv.Close()
			for i := range held {
				srv.sendMagicLink(fmt.Sprintf("user%d@example.com", i))
			}
			for b.Loop() {
				srv.sendMagicLink("ann@example.com")
			}
		})
	}
}
