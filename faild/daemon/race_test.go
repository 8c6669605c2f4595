//go:build race

package daemon

// raceEnabled: the race detector slows the simulation ten times over, so
// a race run simulates fewer schedules.
const raceEnabled = true
