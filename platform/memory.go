package platform

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
)

// Memory is a Writer that keeps routes in memory, for tests.
type Memory struct {
	mu      sync.Mutex
	routes  map[netip.Prefix]Route
	foreign map[netip.Prefix]bool
	// Fail, when set, is returned by every call; tests use it to see how
	// callers handle a kernel that refuses.
	Fail error
}

var _ Writer = (*Memory)(nil)

// NewMemory returns an empty in-memory routing table.
func NewMemory() *Memory {
	return &Memory{routes: make(map[netip.Prefix]Route), foreign: make(map[netip.Prefix]bool)}
}

// AddForeign records a route to dst that someone other than faild owns.
func (m *Memory) AddForeign(dst netip.Prefix) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.foreign[dst] = true
}

// Installed implements Writer; routes come sorted by destination.
func (m *Memory) Installed() ([]Route, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Fail != nil {
		return nil, m.Fail
	}
	var out []Route
	for _, r := range m.routes {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Route) int { return a.Dst.Addr().Compare(b.Dst.Addr()) })
	return out, nil
}

// Add implements Writer.
func (m *Memory) Add(r Route) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Fail != nil {
		return m.Fail
	}
	if m.foreign[r.Dst] {
		return fmt.Errorf("failed to add %v: %w", r, ErrForeign)
	}
	m.routes[r.Dst] = r
	return nil
}

// Delete implements Writer.
func (m *Memory) Delete(r Route) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Fail != nil {
		return m.Fail
	}
	delete(m.routes, r.Dst)
	return nil
}
