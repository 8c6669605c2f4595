package lab

import (
	"fmt"
	"time"
)

// PollInterval is how often WaitFor checks its condition.
const PollInterval = 5 * time.Millisecond

// WaitFor checks cond every PollInterval until it holds or timeout passes.
// It returns how long that took, or an error once the timeout has passed.
func WaitFor(timeout time.Duration, cond func() bool) (time.Duration, error) {
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		if cond() {
			return time.Since(start), nil
		}
		if time.Now().After(deadline) {
			return time.Since(start), fmt.Errorf("condition not met within %v", timeout)
		}
		time.Sleep(PollInterval)
	}
}
