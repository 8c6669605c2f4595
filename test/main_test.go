// Package test holds the end-to-end scenarios: the real faild binary in the
// namespace lab of test/lab, with failures injected at the switch. They need
// root and skip without it.
package test

import (
	"os"
	"testing"
	"time"

	"github.com/faild/faild/test/lab"
)

// TestMain removes the labs also when the run is interrupted, which
// t.Cleanup does not cover.
func TestMain(m *testing.M) {
	stop := lab.CleanupOnSignal()
	code := m.Run()
	removeSharedBin()
	stop()
	os.Exit(code)
}

// budget bounds a whole scenario: every wait takes at most what is left of
// it, so a scenario ends in time whatever faild does.
type budget struct {
	t        *testing.T
	deadline time.Time
}

func newBudget(t *testing.T, d time.Duration) *budget {
	return &budget{t: t, deadline: time.Now().Add(d)}
}

// wait polls cond for up to d (less if the budget runs out first), fails
// the test with what it waited for if cond never held, and returns how long
// it took.
func (b *budget) wait(what string, d time.Duration, cond func() bool) time.Duration {
	b.t.Helper()
	if left := time.Until(b.deadline); d > left {
		d = left
	}
	took, err := lab.WaitFor(d, cond)
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	return took
}
